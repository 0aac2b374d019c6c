/**
 * The event catalog (domain/audit/event_catalog.ts) against the code: every event type the domain
 * emits is listed (and nothing else), and the examples have the fields real events carry.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { EVENT_CATALOG } from "../../domain/audit/event_catalog.ts";
import type { DomainEvent } from "../../domain/audit/events.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { CREATION_HOOKS } from "../../domain/shared/services.ts";
import { STRIPE_EVENT_TYPES } from "../../domain/billing/stripe_objects.ts";
import { keys } from "../../kv/keys.ts";
import { setup } from "../_harness.ts";
import { ADMIN, createHook, HOOK_URL, tenantHooks } from "../_webhooks.ts";

const DOMAIN = fileURLToPath(new URL("../../domain/", import.meta.url));
/** `"noun.verb"` literals: in domain/ they are event types, or job types (the handlers' keys). */
const DOTTED = /"([a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*)"/g;

/** Every `.ts` file below `dir`, context folders included. */
async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) yield* sourceFiles(`${path}/`);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

async function typesInCode(): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const path of sourceFiles(DOMAIN)) {
    if (path.endsWith("/event_catalog.ts")) continue;
    const source = await Deno.readTextFile(path);
    for (const [, type] of source.matchAll(DOTTED)) {
      // Plugins' hook names (`tenant.creating`) name calls to plugins, not events.
      const hook = (CREATION_HOOKS as readonly string[]).includes(type);
      if (!Object.hasOwn(JOB_HANDLERS, type) && !hook) found.add(type);
    }
  }
  return found;
}

Deno.test("catalog: every event type the code emits is listed, and every listed one is emitted", async () => {
  const inCode = await typesInCode();
  const listed = new Set(EVENT_CATALOG.map((e) => e.type));
  assert.equal(listed.size, EVENT_CATALOG.length, "a type is listed twice");
  // Stripe's own event types are named where Steward receives them; they are not emitted.
  const received = new Set(STRIPE_EVENT_TYPES);
  const missing = [...inCode].filter((t) => !listed.has(t) && !received.has(t)).sort();
  const stale = [...listed].filter((t) => !inCode.has(t)).sort();
  assert.deepEqual(missing, [], "emitted but not in domain/audit/event_catalog.ts");
  assert.deepEqual(stale, [], "in the catalog but emitted nowhere");
  for (const t of ["webhook.test", "webhook.endpoint_disabled", "tenant.created"]) {
    assert.ok(listed.has(t), t);
  }
});

Deno.test("catalog: examples have exactly the fields of the events the API emits", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Acme 2" } });
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    token: h.root,
    body: { name: "Storefront" },
  });
  await h.call("PATCH", `/v1/tenants/acme/projects/${project.body.data.id}`, {
    token: h.root,
    body: { name: "Shop" },
  });
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "checkout", environment: "live" },
  });
  await h.call("DELETE", `/v1/tenants/acme/api-keys/${key.body.data.id}`, { token: h.root });
  await h.serviceToken(["tenants:read"]);
  await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: "ada@example.com", name: "Ada", password: "a long enough password 1" },
  });
  await h.call("POST", "/v1/tenants/acme/invitations", {
    token: h.root,
    body: { email: "dev@acme.test", role: "member" },
  });
  const hook = await createHook(h, tenantHooks("acme"));
  await h.call("PATCH", `${tenantHooks("acme")}/${hook.id}`, {
    token: h.root,
    body: { description: "x" },
  });
  await h.call("POST", `${tenantHooks("acme")}/${hook.id}/rotate-secret`, { token: h.root });
  await h.call("DELETE", `${tenantHooks("acme")}/${hook.id}`, { token: h.root });
  const platform = await h.call("POST", ADMIN, { token: h.root, body: { url: HOOK_URL } });
  await h.call("POST", `${ADMIN}/${platform.body.data.id}/test`, { token: h.root });
  await h.call("POST", `/v1/tenants/acme/suspend`, { token: h.root, body: { reason: "x" } });

  const examples = new Map(EVENT_CATALOG.map((e) => [e.type, e.example]));
  const seen = new Set<string>();
  for await (const entry of h.kv.list<DomainEvent>({ prefix: keys.events() })) {
    const event = entry.value;
    const example = examples.get(event.type);
    assert.ok(example, `${event.type} is not in the catalog`);
    assert.deepEqual(
      Object.keys(event.data).sort(),
      Object.keys(example).sort(),
      `the fields of ${event.type}`,
    );
    seen.add(event.type);
  }
  for (
    const type of [
      "tenant.created",
      "tenant.updated",
      "tenant.suspended",
      "project.created",
      "project.updated",
      "api_key.created",
      "api_key.revoked",
      "token.created",
      "user.created",
      "invitation.created",
      "webhook.created",
      "webhook.updated",
      "webhook.secret_rotated",
      "webhook.deleted",
      "webhook.test",
    ]
  ) {
    assert.ok(seen.has(type), `the scenario emitted no ${type}`);
  }
  assert.ok(t.id);
});
