/**
 * Postgres as a health dependency. The live tests run when DATABASE_URL is set (.ci/run sets
 * it when PostgreSQL is installed) and say so when skipped.
 */
import assert from "node:assert/strict";
import { TRAFFIC_METRICS } from "../../domain/usage/aggregator.ts";
import { migrateKvToPostgres } from "../../domain/usage/pg_migration.ts";
import { PgSync } from "../../domain/usage/pg_sync.ts";
import type { AnalyticsCopy } from "../../domain/shared/services.ts";
import { rollupDay } from "../../domain/usage/rollups.ts";
import { dailyTraffic } from "../../domain/usage/traffic.ts";
import { PgAnalytics, type RequestLog } from "../../pg/analytics.ts";
import { connectPostgres, type PgStore } from "../../pg/client.ts";
import { migrate, SCHEMA_VERSION } from "../../pg/migrations.ts";
import { type Harness, type Reply, setup } from "../_harness.ts";
import { assertError } from "../_assert.ts";
import { entriesOf } from "../../domain/usage/log_pages.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) {
  console.log("postgres_test: DATABASE_URL is not set; the live Postgres tests are skipped");
}

Deno.test({
  name: "postgres: /health and /health/ready report a reachable Postgres with its latency",
  ignore: !url,
  fn: async () => {
    const pg = connectPostgres(url!);
    try {
      await using h = await setup({ probes: [{ name: "postgres", check: pg.ping }] });
      const ready = await h.call("GET", "/health/ready");
      assert.equal(ready.status, 200);
      assert.equal(ready.body.data.checks.postgres.status, "ok");
      assert.equal(typeof ready.body.data.checks.postgres.latency_ms, "number");
      const health = await h.call("GET", "/health");
      assert.equal(health.body.data.status, "ok");
      assert.equal(health.body.data.checks.postgres.status, "ok");
    } finally {
      await pg.close();
    }
  },
});

Deno.test("postgres: an unreachable Postgres makes /health/ready 503 and /health degraded", async () => {
  // Nothing listens on port 1: the connection is refused at once.
  const pg = connectPostgres("postgres://steward@127.0.0.1:1/none");
  try {
    await using h = await setup({ probes: [{ name: "postgres", check: pg.ping }] });
    const ready = await h.call("GET", "/health/ready");
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error.code, "UNAVAILABLE");
    assert.equal(ready.body.error.details.postgres.status, "failing");
    assert.equal(ready.body.error.details.kv.status, "ok");
    assert.equal(ready.headers.get("Retry-After"), "5");
    const health = await h.call("GET", "/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.data.status, "degraded");
  } finally {
    await pg.close();
  }
});

// ── The analytics store ─────────────────────────────────────────────────────────────────────

/** A Postgres store in a schema of its own, dropped afterwards. */
async function freshStore(): Promise<PgStore & AsyncDisposable> {
  const schema = `steward_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const store = connectPostgres(url!, { schema });
  await store.sql`create schema ${store.sql(schema)}`;
  return {
    ...store,
    async [Symbol.asyncDispose]() {
      await store.sql`drop schema ${store.sql(schema)} cascade`;
      await store.close();
    },
  };
}

const ingest = (h: Harness, events: unknown[]) =>
  h.call("POST", "/v1/usage/events", { token: h.root, body: { events } });

/** Tenants, keys, verifies, usage events (today and days ago), failures: something of each. */
async function activity(h: Harness) {
  const acme = await h.tenant("acme");
  await h.tenant("globex");
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  for (let i = 0; i < 5; i++) {
    await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: key.body.data.key } });
  }
  await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: "sk_live_nope" } });
  await h.call("GET", "/v1/tenants/nope", { token: h.root });
  await h.call("GET", "/v1/tenants", {});
  const day = 86_400_000;
  await ingest(
    h,
    [0, 1, 2, 3].map((n) => ({
      id: `e${n}`,
      tenant_id: acme.id,
      metric: "storage.gb",
      quantity: n + 1,
      timestamp: new Date(h.clock.now - n * day).toISOString(),
    })),
  );
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Acme Inc" } });
  await h.svc.aggregator.flush();
}

/** The same call answered from KV (svc.pg set aside) and from Postgres. */
async function bothStores(h: Harness, pg: AnalyticsCopy, read: () => Promise<unknown>) {
  h.svc.pg = null;
  const fromKv = await read();
  h.svc.pg = pg;
  const fromPg = await read();
  return { fromKv, fromPg };
}

const pageOf = (r: Reply) => ({ data: r.body.data, pagination: r.body.pagination });

/** Every page of a list, walked by cursor. */
async function walk(h: Harness, path: string) {
  const pages = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res: Reply = await h.call("GET", `${path}${cursor ? `${sep}cursor=${cursor}` : ""}`, {
      token: h.root,
    });
    assert.equal(res.status, 200, res.text);
    pages.push(res.body.data);
    cursor = res.body.pagination.next_cursor;
  } while (cursor);
  return pages.flat();
}

Deno.test({
  name: "postgres: db-init applies the schema once; a second run applies nothing",
  ignore: !url,
  fn: async () => {
    await using store = await freshStore();
    await using h = await setup({ pg: store });
    const first = await h.call("POST", "/v1/admin/maintenance/db-init", { token: h.root });
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.body.data, { ok: true, applied: [SCHEMA_VERSION], schema_version: 1 });
    const again = await h.call("POST", "/v1/admin/maintenance/db-init", { token: h.root });
    assert.deepEqual(again.body.data.applied, []);
    // Two instances starting together: the advisory lock lets one apply, the other none.
    await using other = await freshStore();
    const both = await Promise.all([migrate(other), migrate(other)]);
    assert.deepEqual(both.map((r) => r.applied).sort(), [[], [SCHEMA_VERSION]]);
  },
});

Deno.test("postgres: db-init and migrate answer 409 without DATABASE_URL, and need system:write", async () => {
  await using h = await setup();
  for (const path of ["db-init", "migrate-kv-to-postgres"]) {
    const url = `/v1/admin/maintenance/${path}`;
    assertError(await h.call("POST", url, { token: h.root }), 409, "CONFLICT");
    assertError(await h.call("POST", url), 401, "UNAUTHORIZED");
    const support = await h.user("support");
    assertError(await h.call("POST", url, { token: support.token }), 403, "FORBIDDEN");
    const reader = await h.serviceToken(["logs:read", "usage:read"]);
    assertError(await h.call("POST", url, { token: reader.token }), 403, "FORBIDDEN");
  }
});

Deno.test({
  name: "postgres: migrate-kv-to-postgres copies KV's history once; logs, audit and daily reads " +
    "answer the same from either store",
  ignore: !url,
  fn: async () => {
    await using store = await freshStore();
    await using h = await setup();
    await activity(h);
    const pg = new PgSync(h.kv, new PgAnalytics(store), { maxBuffered: 1_000 });
    h.svc.pg = pg;
    const first = await h.call("POST", "/v1/admin/maintenance/migrate-kv-to-postgres", {
      token: h.root,
    });
    assert.equal(first.status, 200, first.text);
    const copied = first.body.data.copied;
    const kvLogs = [];
    for await (const e of h.kv.list({ prefix: ["request_logs"] })) {
      kvLogs.push(...entriesOf(e.value));
    }
    const kvAudit = [];
    for await (const e of h.kv.list({ prefix: ["audit"] })) kvAudit.push(e);
    assert.equal(copied.request_logs, kvLogs.length);
    assert.equal(copied.audit_events, kvAudit.length);
    // The usage stream's items: 4 events and the key's flushed verifications.
    assert.equal(copied.usage_events, 5);
    assert.ok(copied.usage_daily >= 5, JSON.stringify(copied)); // storage.gb × 4 days + verifications
    assert.ok(copied.traffic_daily >= 4, JSON.stringify(copied));
    // Resumable and idempotent: nothing new, nothing copied.
    const second = await h.call("POST", "/v1/admin/maintenance/migrate-kv-to-postgres", {
      token: h.root,
    });
    assert.deepEqual(second.body.data.copied, {
      request_logs: 0,
      audit_events: 0,
      usage_events: 0,
      usage_daily: 0,
      traffic_daily: 0,
    });

    const lists = [
      "/v1/admin/logs?limit=3",
      "/v1/admin/logs?level=warn",
      "/v1/admin/logs?status=404",
      "/v1/admin/logs?path=/v1/keys",
      `/v1/admin/logs?tenant_id=${
        (await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data.id
      }`,
      `/v1/admin/logs?from=${new Date(h.clock.now - 60_000).toISOString()}&to=${
        new Date(h.clock.now).toISOString()
      }`,
    ];
    for (const path of lists) {
      const { fromKv, fromPg } = await bothStores(h, pg, () => walk(h, path));
      assert.ok((fromKv as unknown[]).length > 0, path);
      assert.deepEqual(fromPg, fromKv, path);
    }
    const exports = [
      "/v1/admin/logs/export",
      "/v1/admin/logs/export?format=csv&level=warn",
      "/v1/admin/audit/export",
      "/v1/admin/audit/export?action=tenant.updated",
      "/v1/admin/audit/export?format=csv&resource_type=tenant",
    ];
    for (const path of exports) {
      const { fromKv, fromPg } = await bothStores(
        h,
        pg,
        async () => (await h.call("GET", path, { token: h.root })).text,
      );
      assert.ok((fromKv as string).length > 0, path);
      assert.equal(fromPg, fromKv, path);
    }
    const from = new Date(h.clock.now - 5 * 86_400_000).toISOString().slice(0, 10);
    const usage = await bothStores(h, pg, async () =>
      pageOf(
        await h.call("GET", `/v1/tenants/acme/usage/daily?metric=storage.gb&from=${from}`, {
          token: h.root,
        }),
      ));
    assert.deepEqual(usage.fromPg, usage.fromKv);
    assert.equal((usage.fromPg as { data: { total: number } }).data.total, 10);
    // The traffic reads add what this process still holds: compared with nothing pending (this
    // harness's counters do not copy to Postgres by themselves: the migration catches up).
    await h.svc.aggregator.flush();
    await migrateKvToPostgres(h.svc);
    const range = { from: h.clock.now - 2 * 86_400_000, to: h.clock.now };
    const traffic = await bothStores(h, pg, () => dailyTraffic(h.svc, TRAFFIC_METRICS, range));
    assert.deepEqual(traffic.fromPg, traffic.fromKv);
  },
});

Deno.test({
  name:
    "postgres: the flush writes logs to Postgres, copies touched daily counters and the audit " +
    "trail; test entries and prune work there",
  ignore: !url,
  fn: async () => {
    await using store = await freshStore();
    await migrate(store);
    await using h = await setup({ pg: store });
    await activity(h);
    // Logs went to Postgres, not KV.
    for await (const _ of h.kv.list({ prefix: ["request_logs"] })) assert.fail("a log in KV");
    const logs = await walk(h, "/v1/admin/logs");
    assert.ok(logs.some((l: { status: number }) => l.status === 404));
    const marked = await h.call("POST", "/v1/admin/logs/test", { token: h.root });
    await h.svc.aggregator.flush();
    const found = await walk(h, "/v1/admin/logs?path=/v1/admin/logs/test");
    assert.ok(
      found.some((l: { id: string; test?: boolean }) => l.id === marked.body.data.id && l.test),
    );

    const pg = h.svc.pg!;
    const audit = await bothStores(
      h,
      pg,
      async () => (await h.call("GET", "/v1/admin/audit/export", { token: h.root })).text,
    );
    assert.equal(audit.fromPg, audit.fromKv);
    const from = new Date(h.clock.now - 5 * 86_400_000).toISOString().slice(0, 10);
    const usage = await bothStores(h, pg, async () =>
      pageOf(
        await h.call("GET", `/v1/tenants/acme/usage/daily?metric=verifications&from=${from}`, {
          token: h.root,
        }),
      ));
    assert.deepEqual(usage.fromPg, usage.fromKv);
    assert.equal((usage.fromPg as { data: { total: number } }).data.total, 5);
    // The usage stream's items, tailed: the events and the key's verifications.
    const sums = await store.sql<{ source: string; n: number }[]>`
      select source, sum(quantity)::bigint as n from usage_events group by source order by source`;
    assert.deepEqual(sums.map((r) => [r.source, r.n]), [["event", 1 + 2 + 3 + 4], ["verify", 5]]);

    // Prune: entries past retention go from Postgres.
    h.advance(31 * 86_400_000);
    const before =
      (await store.sql<{ n: number }[]>`select count(*)::bigint as n from request_logs`)[0].n;
    const pruned = await h.call("POST", "/v1/admin/logs/prune", { token: h.root, body: {} });
    assert.equal(pruned.body.data.deleted, before);
  },
});

Deno.test({
  name: "postgres: while Postgres fails, rows wait in a bounded buffer and nothing else fails; " +
    "they are written once it is back",
  ignore: !url,
  fn: async () => {
    // No schema yet: every write fails, as when Postgres is down.
    await using store = await freshStore();
    await using h = await setup({ pg: store });
    const acme = await h.tenant("acme");
    const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
      token: h.root,
      body: { name: "k", environment: "live" },
    });
    const verify = await h.call("POST", "/v1/keys/verify", {
      token: h.root,
      body: { key: key.body.data.key },
    });
    assert.equal(verify.body.data.code, "VALID");
    await assert.rejects(h.svc.aggregator.flush());
    const status = h.svc.pg!.status();
    assert.ok(status.write_errors >= 1);
    assert.ok(status.buffered.logs > 0);
    assert.ok(status.last_error);
    // KV kept the counters: the quota and the usage read are exact without Postgres.
    const stored = await h.kv.get<Deno.KvU64>([
      "t",
      acme.id,
      "usage_daily",
      "verifications",
      new Date(h.clock.now).toISOString().slice(0, 10),
    ]);
    assert.equal(stored.value?.value, 1n);

    await migrate(store);
    await h.svc.aggregator.flush();
    assert.equal(h.svc.pg!.status().buffered.logs, 0);
    const [{ n }] = await store.sql<
      { n: number }[]
    >`select count(*)::bigint as n from request_logs`;
    assert.ok(n >= 3);
    const [{ q }] = await store.sql<{ q: number }[]>`
      select quantity as q from usage_daily where metric = 'verifications'`;
    assert.equal(q, 1);
  },
});

Deno.test("postgres: the buffer is bounded: past maxBuffered the oldest entries go, counted", () => {
  const sync = new PgSync({} as Deno.Kv, {} as PgAnalytics, { maxBuffered: 3 });
  const entry = (id: string) => ({ id }) as RequestLog;
  sync.addLogs([entry("a"), entry("b")]);
  sync.addLogs([entry("c"), entry("d"), entry("e")]);
  assert.deepEqual(sync.buffered, { logs: 3, daily_counters: 0 });
  assert.equal(sync.stats.dropped_rows, 2);
});

Deno.test({
  name: "postgres: the daily rollup writes the day's counters to Postgres too (mends a lost copy)",
  ignore: !url,
  fn: async () => {
    await using store = await freshStore();
    await migrate(store);
    await using h = await setup();
    await activity(h);
    // Attached after the fact: no flush copied anything, as after a crash between the two.
    h.svc.pg = new PgSync(h.kv, new PgAnalytics(store), { maxBuffered: 1_000 });
    const day = new Date(h.clock.now).toISOString().slice(0, 10);
    const rollup = await rollupDay(h.svc, day);
    const usage = await store.sql<{ metric: string; quantity: number }[]>`
      select metric, quantity from usage_daily where day = ${day} order by metric`;
    assert.deepEqual(usage.map((r) => [r.metric, r.quantity]), [["storage.gb", 1], [
      "verifications",
      5,
    ]]);
    const [{ quantity }] = await store.sql<{ quantity: number }[]>`
      select quantity from traffic_daily where day = ${day} and metric = 'requests'`;
    assert.equal(quantity, rollup.traffic.requests);
  },
});
