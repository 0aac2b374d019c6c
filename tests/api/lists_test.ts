/**
 * Every list operation in /openapi.json, called after every kind of record a tenant can own
 * exists (projects with rotated signing keys, API keys live, rotated and revoked, members,
 * invitations, webhook endpoints with deliveries and attempts, usage, tokens): each item
 * validates against the list's documented item schema, a tenant's list holds that tenant's
 * records only, and a complete page's total counts what it shows. A list whose prefix also
 * holds another record type fails here (signing keys were once listed as projects).
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { setup } from "../_harness.ts";
import { createHook, HOOK_URL } from "../_webhooks.ts";
import { populate } from "./_world.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** The documented item schema of every list operation (a 200 whose `data` is an array). */
function listOperations(doc: Json): Map<string, Json> {
  const lists = new Map<string, Json>();
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    const schema = item.get?.responses?.["200"]?.content?.["application/json"]?.schema;
    const data = schema?.properties?.data;
    if (data?.type === "array" && schema.properties.pagination) lists.set(path, data.items);
  }
  return lists;
}

Deno.test("lists: every item validates against its list's schema and belongs to the list's tenant", async () => {
  await using h = await setup();
  const a = await populate(h, "tenant-a");
  const b = await populate(h, "tenant-b");
  const platformHook = await createHook(h, "/v1/admin/webhooks", { url: HOOK_URL });
  await h.runJobs();
  const platformMessage = (await h.call("GET", `/v1/admin/webhooks/${platformHook.id}/deliveries`, {
    token: h.root,
  })).body.data[0]?.id;
  await h.svc.aggregator.flush();

  const doc = (await h.call("GET", "/openapi.json")).body;
  const defs = JSON.parse(
    JSON.stringify(doc.components.schemas).replaceAll('"#/components/schemas/', '"#/$defs/'),
  );
  const ajv = new Ajv2020({ allErrors: true, validateFormats: false, strict: false });
  const lists = listOperations(doc);
  assert.ok(lists.size >= 20, `${lists.size} list operations`);

  const untotalled: string[] = [];
  for (const [template, itemSchema] of lists) {
    const tenantList = template.includes("{tenant}");
    const path = template
      .replace("{tenant}", a.slug)
      .replace("/v1/admin/webhooks/{id}", `/v1/admin/webhooks/${platformHook.id}`)
      .replace("/webhooks/{id}", `/webhooks/${a.hook}`)
      .replace("/projects/{id}", `/projects/${a.project}`)
      .replace("{message_id}", template.startsWith("/v1/admin/") ? platformMessage : a.message)
      .replace("/queues/{name}", "/queues/webhooks")
      .replace("/users/{id}", `/users/${a.user}`);
    assert.doesNotMatch(path, /\{/, `${template}: a path parameter this test does not fill`);
    const res = await h.call("GET", `${path}?limit=100`, { token: h.root });
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    const validate = ajv.compile<Json>({
      ...JSON.parse(JSON.stringify(itemSchema).replaceAll('"#/components/schemas/', '"#/$defs/')),
      $defs: defs,
    });
    for (const item of res.body.data as Json[]) {
      assert.ok(
        validate(item),
        `${path}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(item)}`,
      );
      if (tenantList && "tenant_id" in item) assert.equal(item.tenant_id, a.id, path);
    }
    if (tenantList) {
      for (const trace of [b.id, b.slug, b.project, b.hook]) {
        assert.ok(!res.text.includes(trace), `${path} shows tenant B's ${trace}`);
      }
    }
    const { total, has_more } = res.body.pagination;
    if (total === undefined) untotalled.push(template);
    if (total !== undefined && !has_more && !res.body.pagination.total_is_estimate) {
      assert.equal(total, res.body.data.length, `${path}: total against the items shown`);
    }
  }
  // Every list answers its total, but the usage stream (a cursor over time, not a page).
  assert.deepEqual(untotalled, ["/v1/admin/usage/stream"]);
});
