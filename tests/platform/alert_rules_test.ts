/**
 * The alert rules of usage flushes, webhook failure rates, Postgres, answer rates and the
 * store's size: each fires and resolves on the harness clock; each transition is delivered once.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { ADMIN, createHook, drain, receiver } from "../_webhooks.ts";
import { keys } from "../../kv/keys.ts";
import { WEBHOOK_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { evaluateAlerts, firingAlerts, listAlertRules } from "../../domain/platform/alerts.ts";
import type { Aggregator } from "../../domain/usage/aggregator.ts";
import { PgSync } from "../../domain/usage/pg_sync.ts";
import type { AnalyticsCopy } from "../../domain/shared/services.ts";
import { dayOf } from "../../domain/shared/time.ts";
import { PgAnalytics } from "../../pg/analytics.ts";
import { connectPostgres, type PgStore } from "../../pg/client.ts";

const MIN = 60_000;

/** One evaluation (no flush first: these rules watch the flushes themselves). */
async function evaluate(h: Harness) {
  const result = await evaluateAlerts(h.svc);
  await h.runJobs(JOB_HANDLERS, { queue: WEBHOOK_QUEUE });
  return result;
}

/** The flush a running process makes every second, then an evaluation. */
async function tick(h: Harness) {
  await h.svc.aggregator.flush();
  return await evaluate(h);
}

const rule = async (h: Harness, name: string) =>
  (await listAlertRules(h.svc)).find((r) => r.name === name)!;

const firing = async (h: Harness, name: string) =>
  (await firingAlerts(h.svc)).find((a) => a.rule === name);

Deno.test("alert rules: usage flush lag fires while counters wait for a flush, resolves once one wrote", async () => {
  await using h = await setup();
  await h.svc.aggregator.flush();
  h.svc.counters.add(keys.traffic("requests", dayOf(h.clock.now)), 1);
  await evaluate(h);
  assert.equal((await rule(h, "usage_flush_lag")).last_value, 0, "nothing waited yet");
  h.advance(4 * MIN);
  assert.equal((await evaluate(h)).alerts_fired, 0);
  h.advance(MIN);
  assert.equal((await evaluate(h)).alerts_fired, 1);
  const alert = (await firing(h, "usage_flush_lag"))!;
  assert.equal(alert.value, 300);
  assert.equal(alert.link, "/v1/admin/usage/aggregator-status");
  await h.svc.aggregator.flush();
  h.advance(MIN);
  assert.equal((await evaluate(h)).alerts_resolved, 1);
  // Nothing waiting is no lag, however long since the last flush.
  h.advance(60 * MIN);
  await evaluate(h);
  assert.equal((await rule(h, "usage_flush_lag")).last_value, 0);
});

Deno.test("alert rules: usage flush errors in a row fire after their duration and resolve on a success", async () => {
  await using h = await setup();
  await h.svc.aggregator.flush();
  // A counter whose key holds a plain value: every sum on it fails its commit.
  const bad = keys.traffic("requests", "1999-01-01");
  await h.kv.set(bad, "not a counter");
  h.svc.counters.add(bad, 1);
  const failFlush = () => h.svc.aggregator.flush().then(() => assert.fail("flushed"), () => {});
  for (let i = 0; i < 3; i++) await failFlush();
  await evaluate(h);
  const pending = await rule(h, "usage_flush_errors");
  assert.equal(pending.state, "pending");
  assert.equal(pending.last_value, 3);
  h.advance(MIN);
  await failFlush();
  assert.equal((await evaluate(h)).alerts_fired, 0);
  h.advance(MIN);
  await failFlush();
  assert.equal((await evaluate(h)).alerts_fired, 1);
  assert.equal((await firing(h, "usage_flush_errors"))!.value, 5);

  await h.kv.delete(bad);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 1);
  assert.equal((await rule(h, "usage_flush_errors")).last_value, 0);
});

Deno.test("alert rules: the platform endpoint failing most fires with its failure rate and link", async () => {
  await using h = await setup();
  let up = false;
  const OTHER = "https://hooks.example.com/other";
  receiver(h, (req) => new Response(null, { status: up || req.url === OTHER ? 204 : 500 }));
  const hook = await createHook(h, ADMIN, { event_types: ["tenant.created"] });
  // A healthy endpoint next to it: the worst one is named.
  await createHook(h, ADMIN, { url: OTHER, event_types: ["tenant.created"] });
  /** Tenants created, their events delivered (the jobs due run), then a tick. */
  const created = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++) await h.tenant(`${prefix}-${i}`);
    await drain(h);
    return await tick(h);
  };
  // Four failed attempts are too few for a rate.
  assert.equal((await created("a", 4)).alerts_fired, 0);
  assert.equal((await rule(h, "webhook_failure_rate")).last_value, 0);

  await created("b", 1);
  assert.equal((await rule(h, "webhook_failure_rate")).state, "pending");
  assert.equal((await rule(h, "webhook_failure_rate")).last_value, 100);
  h.advance(5 * MIN);
  assert.equal((await created("c", 0)).alerts_fired, 1);
  const alert = (await firing(h, "webhook_failure_rate"))!;
  assert.equal(alert.value, 100);
  assert.equal(alert.link, `/v1/admin/webhooks/${hook.id}`);

  // The endpoint answers again: successes bring its rate under half (10 attempts failed: each
  // message's first, and its retry 5 s later).
  up = true;
  h.advance(MIN);
  assert.equal((await created("d", 15)).alerts_resolved, 1);
  assert.ok((await rule(h, "webhook_failure_rate")).last_value! < 50);
});

Deno.test("alert rules: Postgres unreachable and its buffer filling, only with DATABASE_URL", async () => {
  await using h = await setup();
  await tick(h);
  assert.equal((await rule(h, "postgres_unreachable")).last_value, null);
  assert.equal((await rule(h, "postgres_buffer")).last_value, null);

  // Nothing listens on port 1: the ping is refused.
  const dead = connectPostgres("postgres://steward@127.0.0.1:1/none");
  const url = Deno.env.get("DATABASE_URL");
  const live = url ? connectPostgres(url) : null;
  let target: Pick<PgStore, "ping"> = dead;
  const store = { ...dead, ping: () => target.ping() } as PgStore;
  try {
    const sync = new PgSync(h.kv, new PgAnalytics(store), { maxBuffered: 100 });
    h.svc.pg = sync;
    await tick(h);
    const down = await rule(h, "postgres_unreachable");
    assert.equal(down.state, "pending");
    assert.equal(down.last_value, 1);
    h.advance(MIN);
    assert.equal((await tick(h)).alerts_fired, 1);
    assert.equal((await firing(h, "postgres_unreachable"))!.link, "/v1/admin/system/health");
    // The live server when there is one, else a ping that answers.
    target = live ?? { ping: () => Promise.resolve() };
    h.advance(MIN);
    assert.equal((await tick(h)).alerts_resolved, 1);

    // The buffer: 80 rows of a bound of 100 fire at once.
    sync.addLogs(Array.from({ length: 80 }, () => ({}) as never));
    assert.equal((await tick(h)).alerts_fired, 1);
    const full = (await firing(h, "postgres_buffer"))!;
    assert.equal(full.value, 80);
    assert.equal(full.link, "/v1/admin/usage/aggregator-status");
    h.svc.pg = {
      ...sync,
      status: () => ({ ...sync.status(), buffered: { logs: 0, daily_counters: 0 } }),
    } as unknown as AnalyticsCopy;
    h.advance(MIN);
    assert.equal((await tick(h)).alerts_resolved, 1);
  } finally {
    await dead.close();
    await live?.close();
  }
});

/** Counts `n` answers of `status` as the request middleware and verify's fast path do. */
function answer(h: Harness, status: number, n: number) {
  for (let i = 0; i < n; i++) h.svc.aggregator.count({ status, bytes_in: 10, bytes_out: 10 });
}

Deno.test("alert rules: 5xx and 401 rates over whole minutes fire and resolve; webhooks once per transition", async () => {
  await using h = await setup();
  const received = receiver(h);
  await createHook(h, ADMIN, { event_types: ["alert.fired", "alert.resolved"] });
  h.advance(30_000); // 12:00:30
  answer(h, 200, 840);
  answer(h, 500, 100);
  answer(h, 401, 560); // 112 a minute over five minutes
  await tick(h);
  // The minute is still filling: not counted yet.
  assert.equal((await rule(h, "server_error_rate")).last_value, 0);
  assert.equal((await rule(h, "auth_failures")).last_value, 0);

  h.advance(30_000); // 12:01:00
  assert.equal((await tick(h)).alerts_fired, 2);
  const errors = (await firing(h, "server_error_rate"))!;
  assert.equal(errors.value, 7); // 100 of 1500
  assert.equal(
    errors.link,
    `/v1/admin/logs?level=error&from=${encodeURIComponent("2026-03-01T11:56:00.000Z")}`,
  );
  assert.equal((await firing(h, "auth_failures"))!.value, 112);
  assert.match((await firing(h, "auth_failures"))!.link, /^\/v1\/admin\/logs\?status=401&from=/);
  // Repeated ticks while they hold: no second alert, no second webhook.
  for (let i = 0; i < 3; i++) {
    h.advance(MIN);
    assert.equal((await tick(h)).alerts_fired, 0);
  }
  // 12:05: the 12:00 minute leaves the five-minute window at 12:06.
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 0);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 2);
  h.advance(MIN);
  await tick(h);
  const events = received.map((r) =>
    JSON.parse(r.body) as { type: string; data: { rule: string } }
  );
  assert.deepEqual(
    events.map((e) => `${e.type} ${e.data.rule}`).sort(),
    [
      "alert.fired auth_failures",
      "alert.fired server_error_rate",
      "alert.resolved auth_failures",
      "alert.resolved server_error_rate",
    ],
  );
});

Deno.test("alert rules: a 429 share held for five minutes fires; few answers make no rate; shed analytics none", async () => {
  await using h = await setup();
  h.svc.alertRules = { server_error_rate: { threshold: 101 } };
  // 30 % rate limited, minute after minute.
  const minute = async () => {
    answer(h, 200, 70);
    answer(h, 429, 30);
    h.advance(MIN);
    return await tick(h);
  };
  await minute();
  assert.equal((await rule(h, "rate_limited_rate")).state, "pending");
  assert.equal((await rule(h, "rate_limited_rate")).last_value, 30);
  for (let i = 0; i < 4; i++) assert.equal((await minute()).alerts_fired, 0);
  assert.equal((await minute()).alerts_fired, 1);
  const alert = (await firing(h, "rate_limited_rate"))!;
  assert.equal(alert.value, 30);
  assert.match(alert.link, /status=429/);
  // Only a handful of answers: under 50 in the window, no rate.
  for (let i = 0; i < 5; i++) {
    answer(h, 429, 5);
    h.advance(MIN);
    await tick(h);
  }
  assert.equal((await rule(h, "rate_limited_rate")).last_value, 0);
  assert.equal((await rule(h, "rate_limited_rate")).state, "ok");
  // Analytics shed: nothing is counted, the rate rules do not apply.
  (h.svc.aggregator as Aggregator).options.enabled = false;
  h.advance(MIN);
  await tick(h);
  for (const name of ["server_error_rate", "rate_limited_rate", "auth_failures"]) {
    assert.equal((await rule(h, name)).last_value, null, name);
  }
});

Deno.test("alert rules: the store's size, only for a store in a local file", async () => {
  await using h = await setup();
  await tick(h);
  assert.equal((await rule(h, "kv_store_size")).last_value, null, "a store in memory");
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/steward.kv`;
    await Deno.writeFile(path, new Uint8Array(2 * 1_048_576));
    await Deno.writeFile(`${path}-wal`, new Uint8Array(1_048_576));
    h.svc.backups = { ...h.svc.backups, store: path };
    h.svc.alertRules = { kv_store_size: { threshold: 3 } };
    assert.equal((await tick(h)).alerts_fired, 1);
    const alert = (await firing(h, "kv_store_size"))!;
    assert.equal(alert.value, 3);
    assert.equal(alert.threshold, 3);
    assert.equal(alert.link, "/v1/admin/system/health");
    await Deno.writeFile(`${path}-wal`, new Uint8Array(0));
    h.advance(MIN);
    assert.equal((await tick(h)).alerts_resolved, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
