/**
 * Operating the usage pipeline: GET /v1/admin/usage/diagnostics (flush lag, drift of the
 * per-key counters against the tenant's, maintenance runs), GET /v1/admin/cost (modeled from
 * counted requests, KV units and the store's size; live from a billing source, with fallback;
 * cached), and the KV meter that counts the units.
 */
import assert from "node:assert/strict";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { keys } from "../../kv/keys.ts";
import { meterKv } from "../../kv/metered.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const TODAY = "2026-03-01";

async function tenantWithKey(h: Harness, slug: string, plan?: string) {
  const t = await h.tenant(slug);
  if (plan) {
    const res = await h.call("PATCH", `/v1/tenants/${slug}/billing`, {
      token: h.root,
      body: { plan_code: plan, override: false },
    });
    assert.equal(res.status, 200, res.text);
  }
  const key = await h.call("POST", `/v1/tenants/${slug}/api-keys`, {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  return { tenantId: t.id, keyId: key.body.data.id as string, secret: key.body.data.key as string };
}

const verify = (h: Harness, key: string, cost = 1) =>
  h.call("POST", "/v1/keys/verify", { token: h.root, body: { key, cost } });

async function diagnostics(h: Harness, query = "") {
  const res = await h.call("GET", `/v1/admin/usage/diagnostics${query}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  return res.body.data;
}

// ── Diagnostics ────────────────────────────────────────────────────────────────

Deno.test("diagnostics: no drift on a healthy pipeline, persisted or pending, in day and period", async () => {
  await using h = await setup();
  const a = await tenantWithKey(h, "acme");
  const b = await tenantWithKey(h, "globex", "starter");
  for (const cost of [1, 3, 0, 2]) await verify(h, a.secret, cost);
  await verify(h, b.secret, 5);
  await h.call("POST", "/v1/usage/events", {
    token: h.root,
    body: {
      events: [{
        id: "v1",
        key_id: a.keyId,
        metric: "verifications",
        quantity: 7,
        timestamp: new Date(h.clock.now).toISOString(),
      }],
    },
  });
  // The tenants' counters written, the keys' (lazy) still pending: still no drift.
  await h.svc.counters.flush(true);
  const pending = await diagnostics(h);
  assert.deepEqual(pending.drift, {
    day: TODAY,
    checked_tenants: 2,
    more_tenants: false,
    drifting_tenants: [],
  });
  await h.svc.aggregator.flush();
  await verify(h, a.secret, 4); // and some still pending after a full flush
  const flushed = await diagnostics(h);
  assert.deepEqual(flushed.drift.drifting_tenants, []);
  assert.equal(flushed.drift.checked_tenants, 2);

  const bounded = await diagnostics(h, "?drift_tenants=1");
  assert.equal(bounded.drift.checked_tenants, 1);
  assert.equal(bounded.drift.more_tenants, true);
});

Deno.test("diagnostics: a tampered counter shows as drift, with both sides and the difference", async () => {
  await using h = await setup();
  const a = await tenantWithKey(h, "acme");
  for (let i = 0; i < 3; i++) await verify(h, a.secret, 2);
  await h.svc.aggregator.flush();
  await h.kv.set(keys.usageDaily(a.tenantId, "verifications", TODAY), new Deno.KvU64(10n));
  await h.kv.set(keys.keyUsageDaily(a.tenantId, a.keyId, "2026-02-27"), new Deno.KvU64(1n));
  const { drift } = await diagnostics(h);
  assert.deepEqual(drift.drifting_tenants, [
    {
      tenant_id: a.tenantId,
      scope: "day",
      label: TODAY,
      per_key: 6,
      per_tenant: 10,
      difference: 4,
    },
    // A day of February is outside March's period: the period still adds up.
  ]);
  await h.kv.set(keys.keyUsageDaily(a.tenantId, a.keyId, "2026-03-02"), new Deno.KvU64(1n));
  const later = (await diagnostics(h)).drift.drifting_tenants;
  assert.deepEqual(
    later.map((d: { scope: string; difference: number }) => [d.scope, d.difference]),
    [
      ["day", 4],
      ["period", -1],
    ],
  );
  assert.equal(later[1].label, "2026-03");
});

Deno.test("diagnostics: flush lag, pending work, errors, the gate and every maintenance task's last run", async () => {
  await using h = await setup();
  await h.call("GET", "/v1/plans", { token: h.root });
  const before = await diagnostics(h);
  assert.equal(before.generated_at, new Date(h.clock.now).toISOString());
  assert.equal(before.pipeline.last_flush_at, null);
  assert.equal(before.pipeline.flush_lag_ms, null);
  assert.ok(before.pipeline.pending_buckets > 0 && before.pipeline.pending_logs > 0);
  assert.equal(before.pipeline.flush_errors, 0);
  assert.equal(before.threshold_gate.interval_ms, 5_000);
  assert.equal(before.postgres, null);
  assert.deepEqual(
    before.maintenance.map((m: { task: string; last_run: unknown }) => [m.task, m.last_run]),
    MAINTENANCE_TASKS.map((t) => [t.name, null]),
  );

  await h.svc.aggregator.flush();
  h.advance(4_000);
  const task = MAINTENANCE_TASKS.find((t) => t.name === "expire-invitations")!;
  const run = await runMaintenance(h.svc, task, "w1");
  const after = await diagnostics(h);
  assert.equal(after.pipeline.flush_lag_ms, 4_000);
  assert.equal(after.pipeline.pending_logs, 0);
  assert.equal(after.pipeline.pending_buckets, 1, "this call's own request count");
  const shown = after.maintenance.find((m: { task: string }) => m.task === task.name);
  assert.deepEqual(shown, {
    task: task.name,
    schedule: task.schedule,
    last_run: {
      started_at: run!.started_at,
      duration_ms: run!.duration_ms,
      result: { invitations_expired: 0 },
      error: null,
    },
  });
});

Deno.test("diagnostics: 400 on bad input; 401; 403", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const get = (query: string, token = h.root) =>
    h.call("GET", `/v1/admin/usage/diagnostics${query}`, { token });
  assertInvalid(await get("?drift_tenants=0"), "query.drift_tenants");
  assertInvalid(await get("?drift_tenants=1001"), "query.drift_tenants");
  assertInvalid(await get("?verbose=1"), "query");
  assertError(await get("", ""), 401, "UNAUTHORIZED");
  const bound = await h.serviceToken(["usage:read"], t.id);
  assertError(await get("", bound.token), 403, "FORBIDDEN");
  assertError(await get("", (await memberOf(h, t.id, "owner")).token), 403, "FORBIDDEN");
  assertError(await get("", (await h.user("qa")).token), 403, "FORBIDDEN");
  assert.equal((await get("", (await h.user("ops")).token)).status, 200);
});

// ── The KV meter ───────────────────────────────────────────────────────────────

Deno.test("kv meter: read units of 4 KiB, write units of 1 KiB, counted as Deno Deploy bills them", async () => {
  await using kv = await Deno.openKv(":memory:");
  const meter = meterKv(kv);
  const big = "x".repeat(5_000);
  await kv.set(["small"], { a: 1 }); // 1 write unit
  await kv.set(["big"], big); // 5 KB: 5 write units
  assert.deepEqual(meter.take(), { reads: 0, writes: 6 });
  await kv.get(["small"]); // 1
  await kv.get(["big"]); // 2 (over 4 KiB)
  await kv.get(["missing"]); // a miss costs 1
  await kv.getMany([["small"], ["missing"]]); // 1 + 1
  assert.deepEqual(meter.take(), { reads: 6, writes: 0 });
  for (let i = 0; i < 10; i++) await kv.set(["many", i], i);
  meter.take();
  await Array.fromAsync(kv.list({ prefix: ["many"] })); // ten small entries: one unit
  await Array.fromAsync(kv.list({ prefix: ["none"] })); // nothing returned: still one
  assert.deepEqual(meter.take(), { reads: 2, writes: 0 });
  const ok = await kv.atomic().set(["a"], big).sum(["n"], 1n).delete(["small"]).commit();
  assert.ok(ok.ok);
  assert.deepEqual(meter.take(), { reads: 0, writes: 5 + 1 + 1 });
  const refused = await kv.atomic().check({ key: ["a"], versionstamp: null }).set(["b"], 1)
    .commit();
  assert.equal(refused.ok, false);
  assert.deepEqual(meter.take(), { reads: 0, writes: 0 }, "a refused commit writes nothing");
});

Deno.test("kv meter: units join the day's traffic (kv_reads, kv_writes) and persist", async () => {
  await using h = await setup();
  await h.call("GET", "/v1/plans", { token: h.root });
  await h.svc.aggregator.flush();
  const stored = async (metric: string) =>
    Number((await h.kv.get<Deno.KvU64>(keys.traffic(metric, TODAY))).value?.value ?? 0n);
  assert.ok(await stored("kv_reads") > 0);
  assert.ok(await stored("kv_writes") > 0);
  assert.equal(h.meter.reads, 2, "the two reads above, not yet folded");
  assert.equal(
    h.svc.aggregator.pendingTraffic("kv_reads", TODAY),
    2,
    "reads add what the meter holds",
  );
});

// ── Cost ───────────────────────────────────────────────────────────────────────

const PRICES = {
  COST_PER_MILLION_REQUESTS: "3",
  COST_PER_MILLION_KV_READS: "1.5",
  COST_PER_MILLION_KV_WRITES: "2.5",
  COST_PER_GIB_MONTH: "0.75",
  COST_CURRENCY: "EUR",
};

const micros = (n: number) => Math.round(n * 1e6) / 1e6;

async function cost(h: Harness, query = "") {
  const res = await h.call("GET", `/v1/admin/cost${query}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  return res.body.data;
}

Deno.test("cost: modeled from counted requests, KV units and the store's size at the configured prices", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/steward.kv`;
  await Deno.writeFile(kvPath, new Uint8Array(3 * 1024 * 1024));
  await Deno.writeFile(`${kvPath}-wal`, new Uint8Array(4096));
  try {
    await using h = await setup({ env: { ...PRICES, STEWARD_KV_PATH: kvPath } });
    const a = await tenantWithKey(h, "acme");
    for (let i = 0; i < 5; i++) await verify(h, a.secret);
    h.advance(86_400_000); // March 2nd: the month so far
    const metrics = await h.call("GET", "/v1/admin/metrics/daily?from=2026-03-01", {
      token: h.root,
    });
    const report = await cost(h);
    assert.equal(report.period, "2026-03");
    assert.equal(report.cost_source, "modeled");
    assert.equal(report.cost_confidence, "medium");
    assert.equal(report.fallback_reason, null);
    assert.equal(report.cache_age_ms, 0);
    assert.equal(report.fetched_at, new Date(h.clock.now).toISOString());
    const u = report.usage;
    assert.equal(u.requests, metrics.body.data.totals.requests + 1, "and the metrics call");
    assert.equal(u.stored_bytes, 3 * 1024 * 1024 + 4096);
    assert.ok(u.kv_reads > 0 && u.kv_writes > 0);
    const c = {
      requests_cost: micros(u.requests * 3 / 1e6),
      kv_read_cost: micros(u.kv_reads * 1.5 / 1e6),
      kv_write_cost: micros(u.kv_writes * 2.5 / 1e6),
      storage_cost: micros(u.stored_bytes / 2 ** 30 * 0.75),
    };
    assert.deepEqual(report.cost, {
      ...c,
      total_cost: micros(c.requests_cost + c.kv_read_cost + c.kv_write_cost + c.storage_cost),
      currency: "EUR",
    });
    assert.deepEqual(report.unit_prices, {
      requests: 3,
      kv_reads: 1.5,
      kv_writes: 2.5,
      storage_gib_month: 0.75,
      currency: "EUR",
    });

    // Kept 10 minutes per period; cache_age_ms says how old.
    await verify(h, a.secret);
    h.advance(60_000);
    const cached = await cost(h, "?period=2026-03");
    assert.deepEqual({ ...cached, cache_age_ms: 0 }, report);
    assert.equal(cached.cache_age_ms, 60_000);
    h.advance(9 * 60_000);
    const fresh = await cost(h);
    assert.equal(fresh.cache_age_ms, 0);
    assert.ok(fresh.usage.requests > report.usage.requests);

    // Another month: its counters, today's size (low confidence).
    const february = await cost(h, "?period=2026-02");
    assert.equal(february.usage.requests, 0);
    assert.equal(february.cost.requests_cost, 0);
    assert.equal(february.cost_confidence, "low");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cost: without a measurable store the confidence is low", async () => {
  await using h = await setup();
  const report = await cost(h);
  assert.equal(report.usage.stored_bytes, null);
  assert.equal(report.cost.storage_cost, 0);
  assert.equal(report.cost_confidence, "low");
  assert.equal(report.cost.currency, "USD");
});

/** A billing source on a local port, answering with `answer`; `seen` records each request. */
function liveSource(answer: (period: string | null) => Response | Promise<Response>) {
  const seen: { period: string | null; authorization: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const period = new URL(req.url).searchParams.get("period");
    seen.push({ period, authorization: req.headers.get("authorization") });
    return answer(period);
  });
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}/cost` };
}

const LIVE = {
  requests_cost: 12.5,
  kv_read_cost: 1.25,
  kv_write_cost: 3,
  storage_cost: 0.5,
  total_cost: 17.25,
  currency: "USD",
};

Deno.test("cost: live from COST_LIVE_URL when it answers", async () => {
  const source = liveSource(() => Response.json(LIVE));
  await using _server = source.server;
  await using h = await setup({
    env: { COST_LIVE_URL: source.url, COST_LIVE_TOKEN: "billing-secret" },
  });
  const report = await cost(h, "?period=2026-02");
  assert.equal(report.cost_source, "live");
  assert.equal(report.cost_confidence, "high");
  assert.deepEqual(report.cost, LIVE);
  assert.equal(report.fallback_reason, null);
  assert.deepEqual(source.seen, [{ period: "2026-02", authorization: "Bearer billing-secret" }]);
  await cost(h, "?period=2026-02");
  assert.equal(source.seen.length, 1, "cached");
});

Deno.test("cost: a failing live source falls back to the model and says why; asked again a minute later", async () => {
  let answer: () => Response = () => new Response("boom", { status: 500 });
  const source = liveSource(() => answer());
  await using _server = source.server;
  await using h = await setup({ env: { COST_LIVE_URL: source.url, COST_LIVE_TIMEOUT_MS: "200" } });

  const failed = await cost(h);
  assert.equal(failed.cost_source, "modeled");
  assert.match(failed.fallback_reason, /answered 500/);

  answer = () => new Response("<html>not json</html>", { status: 200 });
  h.advance(60_000);
  assert.match((await cost(h)).fallback_reason, /not JSON/);

  answer = () => Response.json({ ...LIVE, currency: "dollars", kv_read_cost: -1 });
  h.advance(60_000);
  assert.match((await cost(h)).fallback_reason, /unexpected shape: kv_read_cost/);

  answer = () => Response.json(LIVE);
  h.advance(30_000);
  assert.equal((await cost(h)).cost_source, "modeled", "a fallback is kept for a minute");
  h.advance(30_000);
  assert.equal((await cost(h)).cost_source, "live");
});

Deno.test("cost: a live source that does not answer in time is given up on", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const source = liveSource(async () => {
    await held;
    return Response.json(LIVE);
  });
  await using _server = source.server;
  await using h = await setup({ env: { COST_LIVE_URL: source.url, COST_LIVE_TIMEOUT_MS: "100" } });
  const report = await cost(h);
  release();
  assert.equal(report.cost_source, "modeled");
  assert.match(report.fallback_reason, /did not answer within 100 ms/);
});

Deno.test("cost: 400 for a malformed or future period and unknown parameters; 401; 403", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const get = (query: string, token = h.root) => h.call("GET", `/v1/admin/cost${query}`, { token });
  for (const period of ["2026-13", "2026-3", "March", "2026-03-01"]) {
    assertInvalid(await get(`?period=${period}`), "query.period");
  }
  assertInvalid(await get("?period=2026-04"), "query.period");
  assertInvalid(await get("?month=2026-03"), "query");
  assertError(await get("", ""), 401, "UNAUTHORIZED");
  const bound = await h.serviceToken(["usage:read"], t.id);
  assertError(await get("", bound.token), 403, "FORBIDDEN");
  assertError(await get("", (await h.user(null)).token), 403, "FORBIDDEN");
  assertError(await get("", (await h.user("qa")).token), 403, "FORBIDDEN");
  for (const role of ["finance", "ops"] as const) {
    assert.equal((await get("", (await h.user(role)).token)).status, 200, role);
  }
});

Deno.test("plan change across quota intervals: the new period's counter starts at the usage so far", async () => {
  await using h = await setup();
  const a = await tenantWithKey(h, "acme"); // free: a monthly quota
  for (let i = 0; i < 6; i++) await verify(h, a.secret);
  const used = async () =>
    (await h.call("GET", "/v1/tenants/acme/usage", { token: h.root })).body.data.metrics
      .find((m: { metric: string }) => m.metric === "verifications").used;
  assert.equal(await used(), 6);
  const moveTo = (plan_code: string) =>
    h.call("PATCH", "/v1/tenants/acme/billing", {
      token: h.root,
      body: { plan_code, override: false },
    });
  // Monthly to yearly: the year so far (this month's 6), not zero.
  assert.equal((await moveTo("starter")).status, 200);
  assert.equal(await used(), 6);
  await verify(h, a.secret, 2);
  assert.equal(await used(), 8);
  await h.svc.aggregator.flush();
  assert.deepEqual((await diagnostics(h)).drift.drifting_tenants, []);
  // Next month, yearly back to monthly: this month's usage only.
  h.advance(31 * 86_400_000);
  await verify(h, a.secret, 3);
  assert.equal(await used(), 11, "the year counts on");
  assert.equal((await moveTo("free")).status, 200);
  assert.equal(await used(), 3, "April holds 3");
  await h.svc.aggregator.flush();
  assert.deepEqual((await diagnostics(h)).drift.drifting_tenants, []);
  // Same interval: nothing is carried or reset.
  assert.equal((await moveTo("pro")).status, 200);
  assert.equal(await used(), 3);
});
