/**
 * Usage: POST /v1/usage/events (per-event outcomes, 24 h dedupe also under concurrency,
 * tenant binding) and the reads GET /v1/tenants/{tenant}/usage and …/usage/daily, which add
 * verify's write-behind counts to what is persisted.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const at = (h: Harness, offsetMs = 0) => new Date(h.clock.now + offsetMs).toISOString();
const ingest = (h: Harness, events: unknown[], token = h.root) =>
  h.call("POST", "/v1/usage/events", { token, body: { events } });

Deno.test("usage events: accepted, duplicate or rejected per event; one bad event stops nothing", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  const res = await ingest(h, [
    { id: "e1", tenant_id: t.id, metric: "storage.gb", quantity: 5, timestamp: at(h) },
    { id: "e2", key_id: key.body.data.id, metric: "storage.gb", quantity: 2, timestamp: at(h) },
    { id: "e1", tenant_id: t.id, metric: "storage.gb", quantity: 5, timestamp: at(h) },
    { id: "e3", tenant_id: t.id, metric: "Bad Metric", quantity: 1, timestamp: at(h) },
    { id: "e4", tenant_id: t.id, metric: "x", quantity: 1, timestamp: at(h, -36 * 86_400_000) },
    { id: "e5", tenant_id: t.id, metric: "x", quantity: 1, timestamp: at(h, 6 * 60_000) },
    { id: "e6", tenant_id: "ten_nope", metric: "x", quantity: 1, timestamp: at(h) },
    { id: "e7", metric: "x", quantity: 1, timestamp: at(h) },
    "not an object",
  ]);
  assert.equal(res.status, 200, res.text);
  const results = res.body.data.results;
  assert.deepEqual(results.map((r: { status: string }) => r.status), [
    "accepted",
    "accepted",
    "duplicate",
    "rejected",
    "rejected",
    "rejected",
    "rejected",
    "rejected",
    "rejected",
  ]);
  assert.match(results[3].reason, /metric/);
  assert.match(results[4].reason, /35 days/);
  assert.match(results[5].reason, /5 minutes/);
  assert.match(results[6].reason, /unknown tenant_id/);
  assert.match(results[7].reason, /exactly one/);
  assert.equal(results[8].id, null);
  const usage = await h.call("GET", "/v1/tenants/acme/usage", { token: h.root });
  const storage = usage.body.data.metrics.find((m: { metric: string }) =>
    m.metric === "storage.gb"
  );
  assert.equal(storage.used, 7);
  assert.equal(storage.quota, null);
});

Deno.test("usage events: the next batch sees a plan change and a deletion made by this process", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const event = (id: string) => ({
    id,
    tenant_id: t.id,
    metric: "api.calls",
    quantity: 1,
    timestamp: at(h),
  });
  const calls = async () =>
    (await h.call("GET", "/v1/tenants/acme/usage", { token: h.root })).body.data.metrics.find((
      m: { metric: string },
    ) => m.metric === "api.calls");
  // The first batch warms the lookups (tenant, plan) in memory.
  assert.equal((await ingest(h, [event("a")])).body.data.results[0].status, "accepted");
  assert.equal((await calls()).period_start, "2026-03-01T00:00:00.000Z");
  const billing = await h.call("PATCH", "/v1/tenants/acme/billing", {
    token: h.root,
    body: { plan_code: "starter", override: false },
  });
  assert.equal(billing.status, 200, billing.text);
  // A yearly plan: the next event counts in the year's counter, not the month's.
  assert.equal((await ingest(h, [event("b")])).body.data.results[0].status, "accepted");
  assert.deepEqual(
    { used: (await calls()).used, start: (await calls()).period_start },
    { used: 1, start: "2026-01-01T00:00:00.000Z" },
  );
  assert.equal((await h.call("DELETE", "/v1/tenants/acme", { token: h.root })).status, 200);
  const after = (await ingest(h, [event("c")])).body.data.results[0];
  assert.deepEqual(after, { id: "c", status: "rejected", reason: "unknown tenant_id" });
});

Deno.test("usage events: a retried batch counts once, also when two copies race", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const batch = Array.from({ length: 30 }, (_, i) => ({
    id: `evt-${i}`,
    tenant_id: t.id,
    metric: "api.calls",
    quantity: 1,
    timestamp: at(h),
  }));
  const [a, b] = await Promise.all([ingest(h, batch), ingest(h, batch)]);
  const accepted = [...a.body.data.results, ...b.body.data.results]
    .filter((r: { status: string }) => r.status === "accepted").length;
  assert.equal(accepted, 30);
  const again = await ingest(h, batch);
  assert.ok(again.body.data.results.every((r: { status: string }) => r.status === "duplicate"));
  const usage = await h.call("GET", "/v1/tenants/acme/usage", { token: h.root });
  assert.equal(
    usage.body.data.metrics.find((m: { metric: string }) => m.metric === "api.calls").used,
    30,
  );
  // After 24 h the id counts again.
  h.advance(86_400_000);
  const later = await ingest(h, [{ ...batch[0], timestamp: at(h) }]);
  assert.equal(later.body.data.results[0].status, "accepted");
});

Deno.test("usage events: full batches overlapping across the 100-event boundary, raced, count each id once per tenant", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const globex = await h.tenant("globex");
  const event = (tenant_id: string, n: number) => ({
    id: `evt-${n}`,
    tenant_id,
    metric: "api.calls",
    quantity: 1 + n % 3,
    timestamp: at(h),
  });
  const range = (tenant: string, from: number) =>
    Array.from({ length: 100 }, (_, i) => event(tenant, from + i));
  // ids 0–99 and 50–149 of acme twice each, ids 0–99 of globex (the same ids, another tenant),
  // and a batch repeating one id of the overlap within itself.
  const batches = [
    range(acme.id, 0),
    range(acme.id, 50),
    range(acme.id, 0),
    range(acme.id, 50),
    range(globex.id, 0),
    [...range(acme.id, 60).slice(0, 50), ...Array(50).fill(event(acme.id, 99))],
  ];
  const replies = await Promise.all(batches.map((events) => ingest(h, events)));
  const accepted = new Map<string, number>();
  for (const [b, reply] of replies.entries()) {
    assert.equal(reply.status, 200, reply.text);
    for (const [i, r] of reply.body.data.results.entries()) {
      assert.notEqual(r.status, "rejected", r.reason);
      if (r.status !== "accepted") continue;
      const name = `${batches[b][i].tenant_id}/${r.id}`;
      accepted.set(name, (accepted.get(name) ?? 0) + 1);
    }
  }
  assert.equal(accepted.size, 250);
  assert.ok([...accepted.values()].every((n) => n === 1));
  const sum = (from: number, to: number) => {
    let n = 0;
    for (let i = from; i < to; i++) n += 1 + i % 3;
    return n;
  };
  const used = async (slug: string) =>
    (await h.call("GET", `/v1/tenants/${slug}/usage`, { token: h.root })).body.data.metrics
      .find((m: { metric: string }) => m.metric === "api.calls").used;
  assert.equal(await used("acme"), sum(0, 150));
  assert.equal(await used("globex"), sum(0, 100));
  // Sent again, every one of them is a duplicate.
  for (const reply of await Promise.all(batches.map((events) => ingest(h, events)))) {
    assert.ok(reply.body.data.results.every((r: { status: string }) => r.status === "duplicate"));
  }
  assert.equal(await used("acme"), sum(0, 150));
});

Deno.test("usage events: a bound token reports for its own tenant only; 400, 401, 403", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const g = await h.tenant("globex");
  const bound = await h.serviceToken(["usage:write"], t.id);
  const res = await ingest(h, [
    { id: "a", tenant_id: t.id, metric: "x", quantity: 1, timestamp: at(h) },
    { id: "b", tenant_id: g.id, metric: "x", quantity: 1, timestamp: at(h) },
  ], bound.token);
  assert.deepEqual(res.body.data.results.map((r: { status: string }) => r.status), [
    "accepted",
    "rejected",
  ]);
  assertInvalid(await ingest(h, []), "json.events");
  assertInvalid(await ingest(h, Array(101).fill({})), "json.events");
  assertInvalid(await h.call("POST", "/v1/usage/events", { token: h.root, body: { event: [] } }));
  assertError(
    await h.call("POST", "/v1/usage/events", { body: { events: [{}] } }),
    401,
    "UNAUTHORIZED",
  );
  const reader = await h.serviceToken(["usage:read"]);
  assertError(await ingest(h, [{}], reader.token), 403, "FORBIDDEN");
  const owner = await memberOf(h, t.id, "owner");
  assertError(await ingest(h, [{}], owner.token), 403, "FORBIDDEN");
});

Deno.test("GET usage: verifications against the plan's quota, pending and persisted alike", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  for (let i = 0; i < 3; i++) {
    await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: key.body.data.key } });
  }
  const before = await h.call("GET", "/v1/tenants/acme/usage", { token: h.root });
  assert.deepEqual(before.body.data.metrics, [{
    metric: "verifications",
    used: 3,
    quota: 10_000,
    remaining: 9_997,
    percent: 0.03,
    period_start: "2026-03-01T00:00:00.000Z",
    period_end: "2026-04-01T00:00:00.000Z",
  }]);
  await h.svc.counters.flush();
  const after = await h.call("GET", "/v1/tenants/acme/usage", { token: h.root });
  assert.deepEqual(after.body.data.metrics, before.body.data.metrics);
});

Deno.test("GET usage/daily: zero-filled days of one metric; ranges checked; roles", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await ingest(h, [
    { id: "1", tenant_id: t.id, metric: "api.calls", quantity: 4, timestamp: at(h, -86_400_000) },
    { id: "2", tenant_id: t.id, metric: "api.calls", quantity: 6, timestamp: at(h) },
  ]);
  const res = await h.call(
    "GET",
    "/v1/tenants/acme/usage/daily?metric=api.calls&from=2026-02-28&to=2026-03-02",
    { token: h.root },
  );
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.days, [
    { date: "2026-02-28", used: 4 },
    { date: "2026-03-01", used: 6 },
    { date: "2026-03-02", used: 0 },
  ]);
  assert.equal(res.body.data.total, 10);
  const path = "/v1/tenants/acme/usage/daily";
  assertInvalid(
    await h.call("GET", `${path}?from=2026-03-02&to=2026-03-01`, { token: h.root }),
    "query.from",
  );
  assertInvalid(await h.call("GET", `${path}?metric=Bad`, { token: h.root }), "query.metric");
  const viewer = await memberOf(h, t.id, "viewer");
  assert.equal((await h.call("GET", path, { token: viewer.token })).status, 200);
  const g = await h.tenant("globex");
  const stranger = await memberOf(h, g.id, "owner");
  assertError(await h.call("GET", path, { token: stranger.token }), 404, "NOT_FOUND");
  assertError(await h.call("GET", path), 401, "UNAUTHORIZED");
});
