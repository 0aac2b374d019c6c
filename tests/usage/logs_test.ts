/**
 * Request logs and traffic through the aggregator: what the middleware and the verify fast path
 * record, the search, export, test and prune routes, the aggregator's status, sampling, the
 * disabled switch, a failed write kept for the next flush, and daily traffic exact to the request.
 */
import assert from "node:assert/strict";
import { Aggregator } from "../../domain/usage/aggregator.ts";
import { entriesOf } from "../../domain/usage/log_pages.ts";
import { SumBuffer } from "../../kv/sum_buffer.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";

const DAY = 86_400_000;

const logs = async (h: Harness, query = "", token = h.root) => {
  const res = await h.call("GET", `/v1/admin/logs${query}`, { token });
  assert.equal(res.status, 200, res.text);
  return res.body.data as Record<string, unknown>[];
};

async function verifyKey(h: Harness) {
  await h.tenant("acme");
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  return key.body.data.key as string;
}

Deno.test("logs: every request is recorded with its route, status, level, sizes and error code", async () => {
  await using h = await setup();
  const key = await verifyKey(h);
  await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key }, ip: "203.0.113.9" });
  await h.call("GET", "/v1/tenants/ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", { token: h.root });
  await h.svc.aggregator.flush();

  const entries = await logs(h);
  const verify = entries.find((e) => e.path === "/v1/keys/verify")!;
  assert.equal(verify.route, "/v1/keys/verify");
  assert.equal(verify.status, 200);
  assert.equal(verify.level, "info");
  assert.equal(verify.ip, "203.0.113.9");
  assert.ok((verify.bytes_in as number) > 0 && (verify.bytes_out as number) > 300);
  const missing = entries.find((e) => e.status === 404)!;
  assert.equal(missing.route, "/v1/tenants/{tenant}");
  assert.equal(missing.level, "warn");
  assert.equal(missing.error_code, "NOT_FOUND");
  assert.ok((missing.bytes_out as number) > 0);
  const created = entries.find((e) => e.method === "POST" && e.route === "/v1/tenants")!;
  assert.equal(created.status, 201);
  assert.equal(created.tenant_id, null, "made by a platform token, about no tenant yet");
  const keyMade = entries.find((e) => e.route === "/v1/tenants/{tenant}/api-keys")!;
  assert.match(keyMade.tenant_id as string, /^ten_/);
  // Newest first, and no key or token in clear anywhere in the store.
  assert.ok(entries[0].id as string > (entries.at(-1)!.id as string));
  const dump = await h.dump();
  assert.ok(!dump.includes(key) && !dump.includes(h.root));
});

Deno.test("logs: filters by level, status, tenant, path prefix and time; 400 on bad filters", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.call("GET", "/v1/tenants/acme", { token: h.root });
  await h.call("GET", "/v1/tenants/nope", { token: h.root });
  const before = new Date(h.clock.now).toISOString();
  h.advance(60_000);
  await h.call("GET", "/v1/plans", { token: h.root });
  await h.svc.aggregator.flush();

  assert.deepEqual((await logs(h, "?level=warn")).map((e) => e.path), ["/v1/tenants/nope"]);
  assert.deepEqual((await logs(h, "?status=404")).map((e) => e.path), ["/v1/tenants/nope"]);
  assert.ok((await logs(h, `?tenant_id=${t.id}`)).every((e) => e.tenant_id === t.id));
  assert.deepEqual((await logs(h, "?path=/v1/plans")).map((e) => e.path), ["/v1/plans"]);
  const early = await logs(h, `?to=${encodeURIComponent(before)}`);
  assert.ok(early.length >= 3 && early.every((e) => (e.at as string) <= before));
  assert.deepEqual(
    (await logs(h, `?from=${encodeURIComponent(before)}&path=/v1/plans`)).length,
    1,
  );

  const bad = (q: string) => h.call("GET", `/v1/admin/logs${q}`, { token: h.root });
  assertInvalid(await bad("?level=fatal"), "query.level");
  assertInvalid(await bad("?status=99"), "query.status");
  assertInvalid(await bad("?path=v1"), "query.path");
  assertInvalid(await bad("?from=yesterday"), "query.from");
  assertError(await bad(`?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`), 400, "BAD_REQUEST");
  assertError(await bad("?cursor=nope"), 400, "BAD_REQUEST");
});

Deno.test("logs: export streams NDJSON or CSV, oldest first", async () => {
  await using h = await setup();
  await h.call("GET", "/v1/plans", { token: h.root });
  await h.call("GET", "/v1/tenants/nope", { token: h.root });
  await h.svc.aggregator.flush();

  const nd = await h.call("GET", "/v1/admin/logs/export?level=warn", { token: h.root });
  assert.equal(nd.status, 200);
  assert.equal(nd.headers.get("content-type"), "application/x-ndjson");
  const lines = nd.text.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.path), ["/v1/tenants/nope"]);

  const csv = await h.call("GET", "/v1/admin/logs/export", {
    token: h.root,
    headers: { Accept: "text/csv" },
  });
  assert.match(csv.headers.get("content-type")!, /^text\/csv/);
  const rows = csv.text.trim().split("\r\n");
  assert.equal(rows[0].split(",")[0], "id");
  assert.ok(rows.length >= 3);
  assert.ok(rows[1] < rows[2], "oldest first (ids are time-ordered)");
  assertInvalid(
    await h.call("GET", "/v1/admin/logs/export?format=xml", { token: h.root }),
    "query.format",
  );
});

Deno.test("logs: POST /logs/test writes a marked entry through the pipeline", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/admin/logs/test", { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.ok, true);
  const id = res.body.data.id;
  assert.match(id, /^log_/);
  assert.equal((await logs(h)).find((e) => e.id === id), undefined, "written behind");
  await h.svc.aggregator.flush();
  const entry = (await logs(h)).find((e) => e.id === id)!;
  assert.equal(entry.test, true);
  assert.equal(entry.route, "/v1/admin/logs/test");
});

Deno.test("logs: prune deletes exactly what is past retention, and says how many", async () => {
  await using h = await setup();
  for (let i = 0; i < 3; i++) await h.call("GET", "/v1/plans", { token: h.root });
  await h.svc.aggregator.flush();
  const old = (await logs(h)).length + 1; // and the listing itself
  h.advance(20 * DAY);
  for (let i = 0; i < 2; i++) await h.call("GET", "/v1/plans", { token: h.root });
  await h.svc.aggregator.flush();
  h.advance(11 * DAY); // the first batch is 31 days old, the second 11

  const prune = (body?: unknown) => h.call("POST", "/v1/admin/logs/prune", { token: h.root, body });
  const first = await prune({});
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.body.data, { ok: true, deleted: old });
  assert.deepEqual((await prune()).body.data, { ok: true, deleted: 0 }, "nothing twice");
  const left = await logs(h, "?limit=100");
  assert.ok(left.every((e) => Date.parse(e.at as string) >= h.clock.now - 30 * DAY));
  const second = await prune({ retention_days: 10 });
  assert.equal(second.body.data.deleted, left.filter((e) => e.path === "/v1/plans").length);
  assertInvalid(await prune({ retention_days: 0 }), "json.retention_days");
  assertInvalid(await prune({ keep: 1 }), "json");

  const status = await h.call("GET", "/v1/admin/usage/aggregator-status", { token: h.root });
  assert.equal(status.body.data.aggregator.prunes, 3);
  assert.equal(status.body.data.aggregator.last_prune_rows_deleted, second.body.data.deleted);
});

Deno.test("logs and traffic routes: 401 without a token, 403 without the permission", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const finance = await h.user("finance");
  const support = await h.user("support");
  const bound = await h.serviceToken(["usage:read"], t.id);
  const routes: [string, string, string][] = [
    ["GET", "/v1/admin/logs", "logs:read"],
    ["GET", "/v1/admin/logs/export", "logs:read"],
    ["POST", "/v1/admin/logs/test", "logs:write"],
    ["POST", "/v1/admin/logs/prune", "logs:write"],
    ["GET", "/v1/admin/usage/aggregator-status", "usage:read"],
    ["GET", "/v1/admin/metrics/daily", "usage:read"],
    ["GET", "/v1/admin/bandwidth/daily", "usage:read"],
  ];
  for (const [method, path, permission] of routes) {
    assertError(await h.call(method, path), 401, "UNAUTHORIZED");
    // A tenant-bound token never holds a platform-wide grant.
    assertError(await h.call(method, path, { token: bound.token }), 403, "FORBIDDEN");
    if (permission.startsWith("logs")) {
      assertError(await h.call(method, path, { token: finance.token }), 403, "FORBIDDEN");
    }
  }
  assertError(
    await h.call("POST", "/v1/admin/logs/test", { token: support.token }),
    403,
    "FORBIDDEN",
  );
  // Support reads logs with IPs masked.
  await h.call("GET", "/v1/plans", { token: h.root, ip: "198.51.100.23" });
  await h.svc.aggregator.flush();
  const seen = await logs(h, "?path=/v1/plans", support.token);
  assert.equal(seen[0].ip, "198.51.x.x");
});

Deno.test("traffic: requests, verifications, 4xx and 5xx and bytes per day, exact to the request", async () => {
  await using h = await setup();
  const key = await verifyKey(h); // 2 requests
  for (let i = 0; i < 5; i++) {
    await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key } });
  }
  await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: 42 } }); // full chain, 400
  await h.svc.counters.flush(); // part persisted, part pending: reads add both
  await h.call("GET", "/v1/plans", { token: h.root });

  const today = new Date(h.clock.now).toISOString().slice(0, 10);
  const metrics = await h.call("GET", `/v1/admin/metrics/daily?from=${today}`, { token: h.root });
  assert.equal(metrics.status, 200, metrics.text);
  assert.deepEqual(metrics.body.data.days, [
    { date: today, requests: 9, verifications: 6, errors: 0, client_errors: 1 },
  ]);
  assert.deepEqual(metrics.body.data.totals, {
    requests: 9,
    verifications: 6,
    errors: 0,
    client_errors: 1,
  });

  const bw = await h.call("GET", `/v1/admin/bandwidth/daily?from=${today}`, { token: h.root });
  const day = bw.body.data.days[0];
  assert.ok(day.bytes_in > 5 * 40 && day.bytes_out > 5 * 300, JSON.stringify(day));

  const yesterday = new Date(h.clock.now - DAY).toISOString().slice(0, 10);
  const two = await h.call("GET", `/v1/admin/metrics/daily?from=${yesterday}&to=${today}`, {
    token: h.root,
  });
  assert.deepEqual(two.body.data.days.map((d: { requests: number }) => d.requests), [0, 11]);
  const q = (s: string) => h.call("GET", `/v1/admin/bandwidth/daily${s}`, { token: h.root });
  assertError(await q(`?from=${today}&to=${yesterday}`), 400, "BAD_REQUEST");
  assertError(await q(`?from=2024-01-01&to=${today}`), 400, "BAD_REQUEST");
  assertInvalid(await q("?from=2026-02-30"), "query.from");
});

Deno.test("traffic: a verify answer's bytes out are its UTF-8 bytes, also for non-ASCII meta", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const created = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live", meta: { city: "Zürich ☃" } },
  });
  const res = await h.call("POST", "/v1/keys/verify", {
    token: h.root,
    body: { key: created.body.data.key },
  });
  assert.equal(res.body.data.meta.city, "Zürich ☃");
  await h.svc.aggregator.flush();
  const logs = await h.call("GET", "/v1/admin/logs?path=/v1/keys/verify", { token: h.root });
  assert.equal(logs.body.data.length, 1, logs.text);
  const bytes = new TextEncoder().encode(res.text).length;
  assert.ok(bytes > res.text.length);
  assert.equal(logs.body.data[0].bytes_out, bytes);
});

Deno.test("aggregator status: from memory, pending until a flush, then flushed", async () => {
  await using h = await setup();
  await h.call("GET", "/v1/plans", { token: h.root });
  const status = async () =>
    (await h.call("GET", "/v1/admin/usage/aggregator-status", { token: h.root })).body.data;
  const before = await status();
  assert.equal(before.aggregator.enabled, true);
  assert.equal(before.aggregator.request_log_sample_rate, 1);
  assert.equal(before.aggregator.pending_logs, 1, "the plans call (this one is logged after)");
  assert.ok(before.aggregator.enqueued_deltas >= 2);
  assert.equal(before.aggregator.last_flush_at, null);
  assert.equal(before.threshold_gate.enabled, true);
  assert.equal(before.threshold_gate.interval_ms, 5_000);
  await h.svc.aggregator.flush();
  const after = await status();
  assert.equal(after.aggregator.pending_logs, 0);
  assert.ok(after.aggregator.flushes >= 1);
  assert.equal(after.aggregator.last_flush_log_count, 2, "the plans call and the first status");
  assert.equal(after.aggregator.flush_errors, 0);
  assert.equal(after.generated_at, new Date(h.clock.now).toISOString());
});

/** An aggregator on its own store, with a chosen sample draw. */
async function lone(opts: { enabled?: boolean; sampleRate?: number; draw?: number }) {
  const kv = await Deno.openKv(":memory:");
  const counters = new SumBuffer(kv, { flushIntervalMs: 60_000, maxEntries: 1_000 });
  const aggregator = new Aggregator(counters, kv, {
    enabled: opts.enabled ?? true,
    flushIntervalMs: 60_000,
    flushMaxEntries: 1_000,
    sampleRate: opts.sampleRate ?? 1,
    retentionDays: 30,
    random: () => opts.draw ?? 0,
  });
  const stored = async () =>
    (await Array.fromAsync(kv.list({ prefix: ["request_logs"] }))).flatMap((e) =>
      entriesOf(e.value)
    )
      .length;
  return { kv, aggregator, stored, [Symbol.dispose]: () => kv.close() };
}

const request = (status: number) => ({
  method: "GET",
  route: "/x",
  path: "/x",
  status,
  duration_ms: 1,
  bytes_in: 0,
  bytes_out: 10,
  tenant_id: null,
  principal_id: null,
  ip: null,
  user_agent: null,
  request_id: "req_1",
  error_code: null,
});

Deno.test("aggregator: successes are sampled, warnings and errors always kept", async () => {
  using a = await lone({ sampleRate: 0.25, draw: 0.5 });
  for (const status of [200, 201, 404, 500]) a.aggregator.record(request(status));
  await a.aggregator.flush();
  assert.equal(await a.stored(), 2);
  assert.equal(a.aggregator.stats.skipped_logs, 2);
  assert.equal(a.aggregator.stats.sampled_logs, 2);
  using b = await lone({ sampleRate: 0.25, draw: 0.1 });
  b.aggregator.record(request(200));
  await b.aggregator.flush();
  assert.equal(await b.stored(), 1, "a draw under the rate keeps the entry");
});

Deno.test("aggregator: disabled, it drops logs and traffic (counted); usage counters still go", async () => {
  using a = await lone({ enabled: false });
  a.aggregator.record(request(200));
  a.aggregator.counters.add(["usage"], 3);
  await a.aggregator.flush();
  assert.equal(await a.stored(), 0);
  assert.equal(a.aggregator.status().dropped_when_disabled, 1);
  assert.equal(((await a.kv.get<Deno.KvU64>(["usage"])).value!).value, 3n);
});

Deno.test("aggregator: a failed log write keeps its entries for the next flush", async () => {
  using a = await lone({});
  for (let i = 0; i < 3; i++) a.aggregator.record(request(200));
  const atomic = a.kv.atomic.bind(a.kv);
  let fail = true;
  a.kv.atomic = () => {
    const op = atomic();
    if (fail) op.commit = () => Promise.reject(new Error("database is locked"));
    return op;
  };
  await assert.rejects(a.aggregator.flush(), /database is locked/);
  assert.equal(a.aggregator.pendingLogs, 3);
  assert.equal(a.aggregator.status().flush_errors, 2, "the counters' commit failed too");
  assert.equal(a.aggregator.status().last_error, "database is locked");
  fail = false;
  await a.aggregator.flush();
  assert.equal(await a.stored(), 3);
  assert.equal(a.aggregator.pendingLogs, 0);
});

Deno.test("overview: tenants by status and plan, users, active keys, traffic today and this month", async () => {
  await using h = await setup();
  const key = await verifyKey(h); // acme, one key: 2 requests
  await h.tenant("globex");
  await h.call("POST", "/v1/tenants/globex/suspend", { token: h.root, body: { reason: "late" } });
  await h.tenant("gone");
  await h.call("DELETE", "/v1/tenants/gone", { token: h.root });
  const revoked = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "old", environment: "live" },
  });
  await h.call("DELETE", `/v1/tenants/acme/api-keys/${revoked.body.data.id}`, { token: h.root });
  await h.user(null);
  for (let i = 0; i < 3; i++) {
    await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key } });
  }
  // Yesterday's traffic counts in the month, not today (the harness clock is 1 March, noon).
  h.advance(DAY);

  const res = await h.call("GET", "/v1/admin/overview", { token: h.root });
  assert.equal(res.status, 200, res.text);
  const o = res.body.data;
  assert.deepEqual(o.tenants, {
    total: 2,
    by_status: { active: 1, suspended: 1 },
    by_plan: { free: 2 },
  });
  assert.equal(o.users, 1);
  assert.equal(o.active_keys, 1);
  assert.deepEqual(o.today, {
    requests: 0,
    verifications: 0,
    errors: 0,
    bytes_in: 0,
    bytes_out: 0,
    error_rate: 0,
  });
  assert.equal(o.period.start, "2026-03-01T00:00:00.000Z");
  assert.equal(o.period.requests, 11, "8 setup calls (h.user makes none) and 3 verifies");
  assert.equal(o.period.verifications, 3);
  assert.equal(o.period.month, "2026-03");
  // Another month: its own figures (none in February), a future one is 400.
  const february = await h.call("GET", "/v1/admin/overview?period=2026-02", { token: h.root });
  assert.equal(february.body.data.period.start, "2026-02-01T00:00:00.000Z");
  assert.equal(february.body.data.period.end, "2026-02-28T23:59:59.999Z");
  assert.equal(february.body.data.period.requests, 0);
  assertError(
    await h.call("GET", "/v1/admin/overview?period=2026-04", { token: h.root }),
    400,
    "BAD_REQUEST",
  );
  assertError(
    await h.call("GET", "/v1/admin/overview?period=2026-13", { token: h.root }),
    400,
    "BAD_REQUEST",
  );
  assertError(await h.call("GET", "/v1/admin/overview"), 401, "UNAUTHORIZED");
  const bound = await h.serviceToken(["usage:read"], (await h.tenant("initech")).id);
  assertError(await h.call("GET", "/v1/admin/overview", { token: bound.token }), 403, "FORBIDDEN");
});

Deno.test("aggregator: past maxPendingLogs the oldest entries go in bulk, counted; the newest stay", () => {
  const kv = {} as Deno.Kv;
  const counters = new SumBuffer(kv, { flushIntervalMs: 60_000, maxEntries: 1_000 });
  const aggregator = new Aggregator(counters, kv, {
    enabled: true,
    // Above the log count: no write is started.
    flushIntervalMs: 60_000,
    flushMaxEntries: 1_000,
    sampleRate: 1,
    retentionDays: 30,
    maxPendingLogs: 100,
  });
  for (let i = 0; i < 101; i++) aggregator.log(request(500));
  // One over the bound: the oldest go down to 90 % at once, not one per request.
  assert.equal(aggregator.pendingLogs, 90);
  assert.equal(aggregator.stats.dropped_logs, 11);
  for (let i = 0; i < 149; i++) aggregator.log(request(500));
  assert.ok(aggregator.pendingLogs <= 100);
  assert.equal(aggregator.stats.dropped_logs + aggregator.pendingLogs, 250);
});
