/**
 * Maintained list counts (kv/keys.ts, issue 22): after creates, changes and deletions, each
 * counted list's `total` equals the items paged through to its end, exact; concurrent creates
 * each count once; a store written before the counts gets them from the start-up backfill.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { keys } from "../../kv/keys.ts";
import { backfillListCounts } from "../../domain/platform/list_counts.ts";
import { expireApiKeys } from "../../domain/keys/api_keys.ts";

/** Pages `path` to its end (limit 7, by cursor): the items seen, and the first page's total. */
async function walk(h: Harness, path: string) {
  const sep = path.includes("?") ? "&" : "?";
  let url = `${path}${sep}limit=7`;
  let seen = 0;
  let total: number | undefined;
  const ids = new Set<string>();
  for (let pages = 0; pages < 200; pages++) {
    const res = await h.call("GET", url, { token: h.root });
    assert.equal(res.status, 200, `${url}: ${res.text}`);
    assert.equal(res.body.pagination.total_is_estimate, undefined, url);
    total ??= res.body.pagination.total;
    for (const item of res.body.data) ids.add(item.id);
    seen += res.body.data.length;
    const next = res.body.pagination.next_cursor;
    if (!next) break;
    url = `${path}${sep}limit=7&cursor=${encodeURIComponent(next)}`;
  }
  assert.equal(ids.size, seen, `${path}: no item twice`);
  return { seen, total };
}

async function assertCounted(h: Harness, paths: string[]) {
  for (const path of paths) {
    const { seen, total } = await walk(h, path);
    assert.equal(total, seen, `${path}: total ${total}, paged ${seen}`);
  }
}

/** Creates, suspends, deletes tenants; makes, blocks, suspends, erases users; keys, revokes. */
async function busyStore(h: Harness) {
  const as = { token: h.root };
  const tenants = [];
  for (let i = 0; i < 9; i++) tenants.push(await h.tenant(`count-${i}`));
  for (const t of tenants.slice(0, 3)) {
    await h.call("POST", `/v1/tenants/${t.id}/suspend`, { ...as, body: { reason: "test" } });
  }
  await h.call("POST", `/v1/tenants/${tenants[0].id}/resume`, as);
  for (const t of tenants.slice(6, 8)) await h.call("DELETE", `/v1/tenants/${t.id}`, as);
  const users = [];
  for (let i = 0; i < 8; i++) users.push(await h.user(null));
  for (const u of users.slice(0, 2)) {
    const res = await h.call("POST", `/v1/users/${u.id}/block`, { ...as, body: { blocked: true } });
    assert.equal(res.status, 200, res.text);
  }
  const until = new Date(h.svc.now() + 3_600_000).toISOString();
  const suspended = await h.call("POST", `/v1/users/${users[2].id}/suspend`, {
    ...as,
    body: { until, reason: "test" },
  });
  assert.equal(suspended.status, 200, suspended.text);
  assert.equal((await h.call("DELETE", `/v1/users/${users[3].id}`, as)).status, 200);
  const project = await h.call("POST", `/v1/tenants/${tenants[1].id}/projects`, {
    ...as,
    body: { name: "Web" },
  });
  assert.equal(project.status, 201, project.text);
  const keyIds = [];
  for (let i = 0; i < 10; i++) {
    const res = await h.call("POST", `/v1/tenants/${tenants[1].id}/api-keys`, {
      ...as,
      body: {
        name: `k${i}`,
        environment: i % 3 === 0 ? "test" : "live",
        ...(i % 2 ? { project_id: project.body.data.id } : {}),
        ...(i % 4 === 1 ? { external_id: "cus_1" } : {}),
      },
    });
    assert.equal(res.status, 201, res.text);
    keyIds.push(res.body.data.id);
  }
  for (const id of keyIds.slice(0, 4)) {
    await h.call("DELETE", `/v1/tenants/${tenants[1].id}/api-keys/${id}`, as);
  }
  return { tenant: tenants[1], projectId: project.body.data.id as string };
}

function countedPaths(tenantId: string, projectId: string) {
  const keyList = `/v1/tenants/${tenantId}/api-keys`;
  return [
    "/v1/tenants",
    "/v1/tenants?status=active",
    "/v1/tenants?status=suspended",
    "/v1/tenants?status=deleted",
    "/v1/tenants?plan=free",
    "/v1/users",
    "/v1/users?status=active",
    "/v1/users?status=blocked",
    "/v1/users?status=suspended",
    "/v1/users?status=deleted",
    `/v1/tenants/${tenantId}/api-keys`,
    `/v1/tenants/${tenantId}/api-keys?environment=live`,
    `/v1/tenants/${tenantId}/api-keys?environment=test`,
    `/v1/tenants/${tenantId}/api-keys?status=active`,
    `/v1/tenants/${tenantId}/api-keys?status=revoked`,
    `/v1/tenants/${tenantId}/api-keys?status=expired`,
    `${keyList}?project_id=${projectId}`,
    `${keyList}?external_id=cus_1`,
    `${keyList}?project_id=${projectId}&status=active`,
    `${keyList}?external_id=cus_1&environment=live`,
    `${keyList}?environment=test&status=revoked`,
    "/v1/admin/audit",
    "/v1/admin/audit?resource_type=tenant",
    "/v1/admin/audit?resource_type=api_key",
    "/v1/admin/audit?action=tenant.suspended",
    "/v1/admin/audit?action=tenant.created,tenant.deleted",
    `/v1/tenants/${tenantId}/audit`,
  ];
}

Deno.test("list counts: each counted list's total is the number of items it pages through", async () => {
  await using h = await setup();
  assert.equal(await backfillListCounts(h.svc) >= 0, true);
  const { tenant, projectId } = await busyStore(h);
  await assertCounted(h, countedPaths(tenant.id, projectId));
  // The counts, not a walk: a count moved by hand shows in the total.
  await h.kv.atomic().sum(keys.tenantStatusCount("suspended"), 5n).commit();
  const res = await h.call("GET", "/v1/tenants?status=suspended&limit=1", { token: h.root });
  assert.equal(res.body.pagination.total, 2 + 5);
  const total = async (query: string) =>
    (await h.call("GET", `/v1/tenants/${tenant.id}/api-keys?${query}&limit=1`, { token: h.root }))
      .body.pagination.total;
  const [byProject, byCustomer] = [
    await total(`project_id=${projectId}`),
    await total("external_id=cus_1"),
  ];
  await h.kv.atomic()
    .sum(keys.tenantKeyProjectCount(tenant.id, projectId), 5n)
    .sum(keys.tenantKeyExternalIdCount(tenant.id, "cus_1"), 5n)
    .commit();
  assert.equal(await total(`project_id=${projectId}`), byProject + 5);
  assert.equal(await total("external_id=cus_1"), byCustomer + 5);
  // A combination of filters is walked, so it stays exact.
  assert.equal(await total(`project_id=${projectId}&status=active`), byProject - 2);
});

Deno.test("list counts: a suspension past its end counts as active before the cron lifts it", async () => {
  await using h = await setup();
  await backfillListCounts(h.svc);
  const user = await h.user(null);
  const until = new Date(h.svc.now() + 60_000).toISOString();
  const res = await h.call("POST", `/v1/users/${user.id}/suspend`, {
    token: h.root,
    body: { until, reason: "test" },
  });
  assert.equal(res.status, 200, res.text);
  await assertCounted(h, ["/v1/users?status=suspended", "/v1/users?status=active"]);
  h.advance(120_000);
  assert.equal((await walk(h, "/v1/users?status=suspended")).total, 0);
  await assertCounted(h, ["/v1/users?status=suspended", "/v1/users?status=active"]);
});

Deno.test("list counts: a key in a rotation's grace reads active and one past its expiry expired, before any write", async () => {
  await using h = await setup();
  await backfillListCounts(h.svc);
  const t = await h.tenant("acme");
  const make = async (body: Record<string, unknown> = {}) => {
    const res = await h.call("POST", `/v1/tenants/${t.id}/api-keys`, {
      token: h.root,
      body: { name: "k", environment: "live", ...body },
    });
    assert.equal(res.status, 201, res.text);
    return res.body.data.id as string;
  };
  await make();
  await make({ expires_at: new Date(h.svc.now() + 60_000).toISOString() });
  const rotated = await make();
  const rotation = await h.call("POST", `/v1/tenants/${t.id}/api-keys/${rotated}/rotate`, {
    token: h.root,
    body: { grace_seconds: 120 },
  });
  assert.equal(rotation.status, 201, rotation.text);
  const statuses = ["active", "revoked", "expired"];
  const paths = statuses.map((s) => `/v1/tenants/${t.id}/api-keys?status=${s}`);
  const totals = async () => {
    await assertCounted(h, paths);
    return Promise.all(paths.map(async (p) => (await walk(h, p)).total));
  };
  assert.deepEqual(await totals(), [4, 0, 0], "the rotated key is in its grace");
  h.advance(90_000);
  assert.deepEqual(await totals(), [3, 0, 1], "the expiry passed; the cron has not run");
  h.advance(60_000);
  assert.deepEqual(await totals(), [2, 1, 1], "the grace is over");
  assert.equal(await expireApiKeys(h.svc), 1);
  assert.deepEqual(await totals(), [2, 1, 1], "marked by the cron: the same");
  // The count, not a walk: a count moved by hand shows in the total.
  await h.kv.atomic().sum(keys.tenantKeyStateCount(t.id, "revoked"), 5n).commit();
  assert.equal((await walk(h, paths[1])).total, 1 + 5);
});

Deno.test("list counts: concurrent creates each count once", async () => {
  await using h = await setup();
  await backfillListCounts(h.svc);
  const N = 25;
  await Promise.all(Array.from({ length: N }, (_, i) => h.tenant(`conc-${i}`)));
  const tenants = await walk(h, "/v1/tenants?status=active");
  assert.equal(tenants.total, N);
  assert.equal(tenants.seen, N);
  const t = (await h.call("GET", "/v1/tenants/conc-0", { token: h.root })).body.data;
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      h.call("POST", `/v1/tenants/${t.id}/api-keys`, {
        token: h.root,
        body: { name: `k${i}`, environment: "test" },
      })),
  );
  const keyList = await walk(h, `/v1/tenants/${t.id}/api-keys?environment=test`);
  assert.deepEqual(keyList, { seen: N, total: N });
  await assertCounted(h, ["/v1/admin/audit?resource_type=api_key", `/v1/tenants/${t.id}/audit`]);
});

/** Deletes every list-count family: the store as code before them left it. */
async function forgetCounts(h: Harness) {
  const families = [
    ["tenants_by_status"],
    ["tenants_by_plan"],
    ["users_by_status"],
    ["audit_by_type"],
    ["audit_by_action"],
    ["counters", "tenant_status"],
    ["counters", "user_status"],
    ["counters", "audit_type"],
    ["counters", "audit_action"],
  ];
  for (const prefix of families) {
    for await (const e of h.kv.list({ prefix })) await h.kv.delete(e.key);
  }
  for await (const e of h.kv.list({ prefix: ["t"] })) {
    const part = e.key[2];
    if (
      part === "api_keys_by_env" || part === "key_total" || part === "key_env_count" ||
      part === "audit_count" || part === "api_keys_by_state" || part === "key_state_count" ||
      part === "api_key_revocations" || part === "api_keys_by_project" ||
      part === "key_project_count" || part === "api_keys_by_external_id" ||
      part === "key_external_id_count"
    ) await h.kv.delete(e.key);
  }
  await h.kv.delete(keys.listCountsReady());
}

Deno.test("list counts: an older store counts by walking, then the backfill gives it its counts", async () => {
  await using h = await setup();
  const { tenant, projectId } = await busyStore(h);
  await forgetCounts(h);
  await assertCounted(h, countedPaths(tenant.id, projectId));
  const given = await backfillListCounts(h.svc);
  assert.ok(given > 0);
  assert.equal(await backfillListCounts(h.svc), 0, "runs once");
  await assertCounted(h, countedPaths(tenant.id, projectId));
  // Run again by two processes at once on a store not marked ready: nothing counts twice.
  await h.kv.delete(keys.listCountsReady());
  await Promise.all([backfillListCounts(h.svc), backfillListCounts(h.svc)]);
  await assertCounted(h, countedPaths(tenant.id, projectId));
});
