/**
 * The maintenance tasks of issue 5: expiring invitations and API keys past their deadlines
 * (records, counters, audit and events, the verify cache), and the daily rollup (one record per
 * day, rewritten identically by a rerun; GET /v1/admin/usage/rollups). Each does exactly its
 * job and a second run changes nothing.
 */
import assert from "node:assert/strict";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { rollupDay } from "../../domain/usage/rollups.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Runs `name` as the cron would, in the next minute's tick (each tick runs once). */
async function run(h: Harness, name: string) {
  h.advance(60_000);
  const task = MAINTENANCE_TASKS.find((t) => t.name === name)!;
  const done = await runMaintenance(h.svc, task, "worker");
  assert.ok(done, "the lease was free");
  assert.equal(done.error, null);
  return done.result;
}

async function eventsOf(h: Harness, type: string) {
  const found = [];
  for await (
    const e of h.kv.list<{ type: string; data: Record<string, unknown> }>({ prefix: ["events"] })
  ) {
    if (e.value.type === type) found.push(e.value);
  }
  return found;
}

/** The store as text, but for the cron's own leases and run records. */
const withoutRuns = async (h: Harness) =>
  (await h.dump()).split("\n").filter((l) => !/^\["(leases|maintenance_runs)"/.test(l)).join("\n");

/** Every key and value under `prefix`, as text. */
async function dumpOf(h: Harness, prefix: Deno.KvKey) {
  const lines = [];
  for await (const e of h.kv.list({ prefix })) lines.push(JSON.stringify([e.key, e.value]));
  return lines.join("\n");
}

Deno.test("expire-invitations: pending invitations past their deadline are marked expired, once", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const invite = async (email: string, days: number) => {
    const res = await h.call("POST", "/v1/tenants/acme/invitations", {
      token: h.root,
      body: { email, role: "member", expires_in_days: days },
    });
    assert.equal(res.status, 201, res.text);
    return res.body.data as { id: string; token: string };
  };
  const soon = await invite("soon@example.com", 1);
  const later = await invite("later@example.com", 7);
  const revoked = await invite("revoked@example.com", 1);
  await h.call("DELETE", `/v1/tenants/acme/invitations/${revoked.id}`, { token: h.root });
  h.advance(2 * DAY);

  assert.deepEqual(await run(h, "expire-invitations"), { invitations_expired: 1 });
  const stored = await h.kv.get<{ status: string; updated_at: string }>(
    keys.invitation(t.id, soon.id),
  );
  assert.equal(stored.value?.status, "expired");
  assert.equal(stored.value?.updated_at, new Date(h.clock.now).toISOString());
  const audit = await h.auditFor(soon.id);
  assert.equal(audit[0].action, "invitation.expired");
  assert.equal(audit[0].actor_id, "system");
  assert.deepEqual(audit[0].changes, { status: { before: "pending", after: "expired" } });
  const [event] = await eventsOf(h, "invitation.expired");
  assert.equal(event.data.id, soon.id);
  assert.equal("token_hash" in event.data, false);
  for (const id of [later.id, revoked.id]) {
    assert.notEqual((await h.auditFor(id))[0].action, "invitation.expired");
  }

  const before = await withoutRuns(h);
  assert.deepEqual(await run(h, "expire-invitations"), { invitations_expired: 0 });
  assert.equal(await withoutRuns(h), before, "a second run changes nothing");

  const accept = await h.call("POST", "/v1/invitations/accept", {
    body: { token: soon.token, name: "Soon", password: "a long enough passphrase" },
  });
  assertError(accept, 409, "CONFLICT");
  assert.match(accept.body.error.message, /expired/);
  const listed = await h.call("GET", "/v1/tenants/acme/invitations?status=expired", {
    token: h.root,
  });
  assert.deepEqual(listed.body.data.map((i: { id: string }) => i.id), [soon.id]);
  // Revoking an expired invitation still works.
  const revoke = await h.call("DELETE", `/v1/tenants/acme/invitations/${soon.id}`, {
    token: h.root,
  });
  assert.equal(revoke.body.data.status, "revoked");
});

Deno.test("expire-api-keys: keys past expires_at are recorded expired; counts, audit, event and cache follow", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const create = async (body: Record<string, unknown>) => {
    const res = await h.call("POST", "/v1/tenants/acme/api-keys", {
      token: h.root,
      body: { name: "k", environment: "live", ...body },
    });
    assert.equal(res.status, 201, res.text);
    return res.body.data as { id: string; key: string };
  };
  const inAnHour = new Date(h.clock.now + HOUR).toISOString();
  const expiring = await create({ expires_at: inAnHour });
  await create({});
  const revoked = await create({ expires_at: inAnHour });
  await h.call("DELETE", `/v1/tenants/acme/api-keys/${revoked.id}`, { token: h.root });
  const count = async () =>
    Number((await h.kv.get<Deno.KvU64>(keys.tenantKeyCount(t.id))).value?.value);
  assert.equal(await count(), 2);
  const verify = async () =>
    (await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: expiring.key } }))
      .body.data.code;
  assert.equal(await verify(), "VALID"); // the record is now in the verify cache
  assert.ok(h.svc.cache.peek(keys.apiKey(t.id, expiring.id)));

  h.advance(2 * HOUR);
  assert.equal(await verify(), "EXPIRED", "reads said so before the cron");
  assert.deepEqual(await run(h, "expire-api-keys"), { api_keys_expired: 1 });
  assert.equal(await count(), 1, "only the key without an expiry is live");
  assert.equal(h.svc.cache.peek(keys.apiKey(t.id, expiring.id)), undefined, "forgotten");
  const key = await h.call("GET", `/v1/tenants/acme/api-keys/${expiring.id}`, { token: h.root });
  assert.equal(key.body.data.status, "expired");
  assert.equal(key.body.data.expired_at, new Date(h.clock.now).toISOString());
  const audit = await h.auditFor(expiring.id);
  assert.equal(audit[0].action, "api_key.expired");
  assert.equal(audit[0].actor_id, "system");
  assert.deepEqual(Object.keys(audit[0].changes!), ["expired_at"]);
  const [event] = await eventsOf(h, "api_key.expired");
  assert.equal(event.data.id, expiring.id);
  assert.equal(event.data.tenant_id, t.id);
  const overview = await h.call("GET", "/v1/admin/overview", { token: h.root });
  assert.equal(overview.body.data.active_keys, 1);

  const before = await withoutRuns(h);
  assert.deepEqual(await run(h, "expire-api-keys"), { api_keys_expired: 0 });
  assert.equal(await withoutRuns(h), before, "a second run changes nothing");

  // A new deadline revives the key, and it counts again.
  const revived = await h.call("PATCH", `/v1/tenants/acme/api-keys/${expiring.id}`, {
    token: h.root,
    body: { expires_at: new Date(h.clock.now + DAY).toISOString() },
  });
  assert.equal(revived.status, 200, revived.text);
  assert.equal(revived.body.data.status, "active");
  assert.equal(revived.body.data.expired_at, null);
  assert.equal(await count(), 2);
  assert.equal(await verify(), "VALID");
});

async function dayOfTraffic(h: Harness) {
  const a = await h.tenant("acme");
  const g = await h.tenant("globex");
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  for (const cost of [1, 2, 3]) {
    await h.call("POST", "/v1/keys/verify", {
      token: h.root,
      body: { key: key.body.data.key, cost },
    });
  }
  const at = new Date(h.clock.now).toISOString();
  await h.call("POST", "/v1/usage/events", {
    token: h.root,
    body: {
      events: [
        { id: "a1", tenant_id: a.id, metric: "api.calls", quantity: 4, timestamp: at },
        { id: "g1", tenant_id: g.id, metric: "api.calls", quantity: 5, timestamp: at },
        { id: "g2", tenant_id: g.id, metric: "storage.gb", quantity: 2, timestamp: at },
      ],
    },
  });
  await h.tenant("idle");
  return { a, g };
}

Deno.test("rollup-daily: yesterday's traffic and each tenant's usage in one record; a rerun rewrites it identically", async () => {
  await using h = await setup();
  const { a, g } = await dayOfTraffic(h);
  const day = "2026-03-01";
  const metrics = await h.call("GET", `/v1/admin/metrics/daily?from=${day}&to=${day}`, {
    token: h.root,
  });
  await h.svc.aggregator.flush(); // as the timer would, before midnight
  h.advance(DAY);

  // Yesterday, and the week before it that had no rollup yet.
  assert.deepEqual(await run(h, "rollup-daily"), { days_rolled_up: 8 });
  const record = (await h.kv.get<Record<string, unknown>>(keys.rollup(day))).value!;
  const traffic = record.traffic as Record<string, number>;
  assert.equal(traffic.requests, metrics.body.data.totals.requests + 1, "and the metrics call");
  assert.equal(traffic.verifications, 3);
  assert.ok(traffic.kv_reads > 0 && traffic.kv_writes > 0);
  assert.deepEqual(record.usage, { "api.calls": 9, "storage.gb": 2, verifications: 6 });
  assert.equal(record.tenant_count, 2);
  const tenants = (await Array.fromAsync(h.kv.list({ prefix: keys.tenantRollups(day) })))
    .map((e) => e.value);
  assert.deepEqual(
    tenants,
    [
      { day, tenant_id: a.id, usage: { "api.calls": 4, verifications: 6 } },
      { day, tenant_id: g.id, usage: { "api.calls": 5, "storage.gb": 2 } },
    ].sort((x, y) => x.tenant_id.localeCompare(y.tenant_id)),
  );
  const empty = (await h.kv.get<{ tenant_count: number }>(keys.rollup("2026-02-28"))).value;
  assert.equal(empty?.tenant_count, 0);

  const before = await dumpOf(h, keys.rollups()) + await dumpOf(h, ["rollup_tenants"]);
  const again = await rollupDay(h.svc, day);
  assert.deepEqual({ ...again, tenants: undefined }, { ...record, tenants: undefined });
  assert.deepEqual(again.tenants, tenants);
  assert.deepEqual(await run(h, "rollup-daily"), { days_rolled_up: 1 }, "only yesterday again");
  const after = await dumpOf(h, keys.rollups()) + await dumpOf(h, ["rollup_tenants"]);
  assert.equal(after, before);
});

Deno.test("GET /v1/admin/usage/rollups: the rolled-up days in range; 400; 401; 403", async () => {
  await using h = await setup();
  await dayOfTraffic(h);
  h.advance(DAY);
  await h.svc.aggregator.flush();
  await run(h, "rollup-daily");
  const get = (query: string, token = h.root) =>
    h.call("GET", `/v1/admin/usage/rollups${query}`, { token });
  const res = await get("?from=2026-03-01&to=2026-03-02");
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.from, "2026-03-01");
  assert.equal(res.body.data.to, "2026-03-02");
  assert.deepEqual(
    res.body.data.days,
    [(await h.kv.get(keys.rollup("2026-03-01"))).value],
    "March 2nd is not over",
  );
  assert.equal((await get("")).body.data.days.length, 8, "the last 30 days by default");
  assertInvalid(await get("?from=2026-02-30"), "query.from");
  assertInvalid(await get("?day=2026-03-01"), "query");
  assertError(await get("?from=2026-03-02&to=2026-03-01"), 400, "BAD_REQUEST");
  assertError(await get("", ""), 401, "UNAUTHORIZED");
  const bound = await h.serviceToken(["usage:read"], (await h.tenant("other")).id);
  assertError(await get("", bound.token), 403, "FORBIDDEN");
  assertError(await get("", (await h.user("qa")).token), 403, "FORBIDDEN");
});
