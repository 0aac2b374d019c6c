import assert from "node:assert/strict";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { enqueueJob } from "../../domain/jobs/jobs.ts";
import { WEBHOOK_QUEUE } from "../../domain/jobs/names.ts";
import { PLATFORM_ROLE_GRANTS, PLATFORM_ROLES } from "../../domain/access/permissions.ts";
import { newId } from "../../domain/shared/ids.ts";
import type { Services, StripeAccess } from "../../domain/shared/services.ts";
import { iso } from "../../domain/shared/time.ts";
import type { EmailMessage } from "../../domain/email/outbox.ts";
import { MAINTENANCE_TASKS, type MaintenanceRun } from "../../domain/platform/maintenance.ts";
import {
  infraHealth,
  type InfraHealthOptions,
  nextCronRun,
  worstOf,
} from "../../domain/platform/infra_health.ts";
import { InfraHealth } from "../../routes/platform/infra_health.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError } from "../_assert.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const opts: InfraHealthOptions = { kvPath: ":memory:" };
const at = (s: string) => Date.parse(s);

Deno.test("nextCronRun: *, */n, numbers, lists and ranges in the minute and hour fields", () => {
  const t = at("2026-03-01T12:00:30.000Z");
  assert.equal(iso(nextCronRun("* * * * *", t)), "2026-03-01T12:01:00.000Z");
  assert.equal(iso(nextCronRun("* * * * *", at("2026-03-01T12:00:00.000Z"))), iso(t + 30_000));
  assert.equal(iso(nextCronRun("*/10 * * * *", t)), "2026-03-01T12:10:00.000Z");
  assert.equal(
    iso(nextCronRun("*/10 * * * *", at("2026-03-01T12:59:00.000Z"))),
    "2026-03-01T13:00:00.000Z",
  );
  assert.equal(iso(nextCronRun("7 * * * *", t)), "2026-03-01T12:07:00.000Z");
  assert.equal(
    iso(nextCronRun("7 * * * *", at("2026-03-01T12:07:00.000Z"))),
    "2026-03-01T13:07:00.000Z",
  );
  assert.equal(iso(nextCronRun("37 3 * * *", t)), "2026-03-02T03:37:00.000Z");
  assert.equal(
    iso(nextCronRun("37 3 * * *", at("2026-03-01T03:00:00.000Z"))),
    "2026-03-01T03:37:00.000Z",
  );
  assert.equal(
    iso(nextCronRun("20 0 * * *", at("2026-12-31T23:59:00.000Z"))),
    "2027-01-01T00:20:00.000Z",
  );
  assert.equal(iso(nextCronRun("0 */6 * * *", t)), "2026-03-01T18:00:00.000Z");
  assert.equal(iso(nextCronRun("5,35 1-2 * * *", t)), "2026-03-02T01:05:00.000Z");
  assert.equal(
    iso(nextCronRun("5,35 1-2 * * *", at("2026-03-02T01:05:00.000Z"))),
    "2026-03-02T01:35:00.000Z",
  );
  for (const task of MAINTENANCE_TASKS) {
    const next = nextCronRun(task.schedule, t);
    assert.ok(next > t && next <= t + 24 * HOUR, task.name);
  }
  for (
    const bad of ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "0 0 1 * *", "x * * * *"]
  ) {
    assert.throws(() => nextCronRun(bad, t), /unsupported cron/, bad);
  }
});

Deno.test("worstOf: down over degraded over ok; off left out", () => {
  assert.equal(worstOf([]), "ok");
  assert.equal(worstOf(["off", "off"]), "ok");
  assert.equal(worstOf(["ok", "off", "degraded"]), "degraded");
  assert.equal(worstOf(["degraded", "down", "ok"]), "down");
});

const health = (svc: Services, o: InfraHealthOptions = opts) => infraHealth(svc, o);

Deno.test("infraHealth: a fresh store is ok; off components are said so", async () => {
  await using h = await setup();
  const r = await health(h.svc);
  assert.equal(r.status, "ok");
  const c = r.components;
  assert.equal(c.kv.status, "ok");
  assert.ok(c.kv.latency_ms >= 0);
  assert.equal(c.kv.size, null, "a store in memory has no file");
  assert.deepEqual(c.postgres, { status: "off" });
  assert.equal(c.vault.status, "ok");
  assert.equal(c.vault.source, "memory");
  assert.equal(c.stripe.status, "off");
  assert.equal(c.email.status, "off");
  assert.equal(c.email.mode, "captured");
  assert.equal(c.aggregator.status, "ok");
  assert.equal(c.webhooks.status, "ok");
  assert.equal(c.crons.tasks.length, MAINTENANCE_TASKS.length);
  const backup = c.crons.tasks.find((t) => t.name === "backup-store")!;
  assert.equal(backup.status, "off", "backups are off for a store in memory");
  assert.equal(backup.next_run_at, null);
  const sweep = c.crons.tasks.find((t) => t.name === "sweep-jobs")!;
  assert.equal(sweep.last_run, null);
  assert.equal(sweep.next_run_at, "2026-03-01T12:01:00.000Z");
  // The probe key is deleted after the probe.
  assert.deepEqual(await Array.fromAsync(h.kv.list({ prefix: ["health"] })), []);
  assert.deepEqual(r.alerts, { firing: 0, items: [] });
});

Deno.test("infraHealth: the store's size is its file and its WAL", async () => {
  await using h = await setup();
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/steward.kv`;
    await Deno.writeFile(path, new Uint8Array(4096));
    await Deno.writeFile(`${path}-wal`, new Uint8Array(1000));
    const { size } = (await health(h.svc, { kvPath: path })).components.kv;
    assert.deepEqual(size, { file_bytes: 4096, wal_bytes: 1000, total_bytes: 5096 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function enqueue(h: Harness, queue: string, runAt?: number) {
  const op = h.kv.atomic();
  const job = enqueueJob(op, h.clock.now, {
    queue,
    type: "test.fail",
    payload: {},
    runAt,
    maxAttempts: 1,
  });
  assert.ok(await commit(op));
  return job;
}

Deno.test("infraHealth: a paused queue, a dead job and a late job make the queues degraded", async () => {
  await using h = await setup();
  await enqueue(h, "quiet");
  let r = await health(h.svc);
  assert.equal(r.components.queues.status, "ok");
  assert.deepEqual(r.components.queues.queues.map((q) => [q.name, q.status, q.depth]), [[
    "quiet",
    "ok",
    1,
  ]]);

  // Late: due six minutes ago and not run.
  h.advance(6 * MINUTE);
  r = await health(h.svc);
  assert.equal(r.components.queues.queues[0].status, "degraded");
  assert.equal(r.components.queues.queues[0].oldest_due_age_ms, 6 * MINUTE);
  assert.equal(r.status, "degraded");

  // Dead: its only attempt failed.
  await h.runJobs({ "test.fail": () => Promise.resolve({ ok: false, error: "boom" }) }, {
    queue: "quiet",
  });
  r = await health(h.svc);
  const quiet = r.components.queues.queues[0];
  assert.equal(quiet.dead, 1);
  assert.equal(quiet.depth, 0);
  assert.equal(quiet.status, "degraded");

  // Paused.
  await enqueue(h, "paused");
  const pause = await h.call("POST", "/v1/admin/system/queues/paused/pause", { token: h.root });
  assert.equal(pause.status, 200, pause.text);
  r = await health(h.svc);
  const paused = r.components.queues.queues.find((q) => q.name === "paused")!;
  assert.equal(paused.paused, true);
  assert.equal(paused.status, "degraded");
  assert.equal(r.components.queues.status, "degraded");
});

Deno.test("infraHealth: webhook deliveries from the webhooks queue, failing endpoints from their marks", async () => {
  await using h = await setup();
  const tenant = await h.tenant("acme");
  const before = (await health(h.svc)).components.webhooks.pending_deliveries;
  await enqueue(h, WEBHOOK_QUEUE, h.clock.now + MINUTE);
  await h.kv.set(keys.webhookHealth(tenant.id, "whk_1"), { failing_since: h.clock.now - HOUR });
  await h.kv.set(keys.webhookHealth(null, "whk_2"), { failing_since: h.clock.now - MINUTE });
  const w = (await health(h.svc)).components.webhooks;
  assert.equal(w.status, "ok");
  assert.equal(w.pending_deliveries, before + 1);
  assert.equal(w.dead_deliveries, 0);
  assert.equal(w.failing_endpoints, 2);
  assert.equal(w.oldest_failing_age_ms, HOUR);
  assert.equal(w.truncated, false);
  await h.kv.set(keys.webhookEndpoint(tenant.id, "whk_3"), { id: "whk_3", enabled: false });
  assert.equal((await health(h.svc)).components.webhooks.disabled_endpoints, 1);
});

Deno.test("infraHealth: the firing alerts are listed", async () => {
  await using h = await setup();
  const alert = {
    id: "alr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
    rule: "dead_jobs",
    state: "firing",
    value: 3,
    threshold: 1,
    link: "/v1/admin/system/queues",
    started_at: iso(h.clock.now - MINUTE),
    resolved_at: null,
    acknowledged_at: null,
    acknowledged_by: null,
  };
  await h.kv.set(keys.alert(alert.id), alert);
  await h.kv.set(keys.alertOpen(alert.rule), alert.id);
  const r = await health(h.svc);
  assert.deepEqual(r.alerts, {
    firing: 1,
    items: [{
      id: alert.id,
      rule: "dead_jobs",
      value: 3,
      threshold: 1,
      link: "/v1/admin/system/queues",
      started_at: alert.started_at,
      acknowledged_at: null,
    }],
  });
});

Deno.test("infraHealth: a sealed vault is down, and so is the whole", async () => {
  await using h = await setup();
  const sealed = {
    ...h.svc,
    vault: {
      ...h.svc.vault,
      state: { sealed: true, key_id: null, source: null, previous_key_id: null },
    },
  } as Services;
  const r = await health(sealed);
  assert.deepEqual(r.components.vault, {
    status: "down",
    sealed: true,
    key_id: null,
    source: null,
    previous_key_id: null,
  });
  assert.equal(r.status, "down");
});

Deno.test("infraHealth: Stripe off, configured and silent, configured with an old last event", async () => {
  await using h = await setup();
  const withStripe = { ...h.svc, stripe: {} as StripeAccess };
  assert.deepEqual((await health(h.svc)).components.stripe, {
    status: "off",
    last_event_at: null,
    last_event_age_ms: null,
  });
  assert.equal((await health(withStripe)).components.stripe.status, "ok");
  await h.kv.set(keys.stripeSync(), {
    last_event_at: iso(h.clock.now - HOUR),
    last_api_success_at: null,
  });
  assert.deepEqual((await health(withStripe)).components.stripe, {
    status: "ok",
    last_event_at: iso(h.clock.now - HOUR),
    last_event_age_ms: HOUR,
  });
  h.advance(25 * HOUR);
  const s = (await health(withStripe)).components.stripe;
  assert.equal(s.status, "degraded");
  assert.equal(s.last_event_age_ms, 26 * HOUR);
});

Deno.test("infraHealth: a failed cron run is degraded; a late one too; next run from the schedule", async () => {
  await using h = await setup();
  const run = (
    task: string,
    error: string | null,
    startedAt = h.clock.now - 30_000,
  ): MaintenanceRun => ({
    task,
    started_at: iso(startedAt),
    duration_ms: 12,
    result: error ? null : { n: 1 },
    error,
  });
  await h.kv.set(keys.maintenanceRun("expire-sessions"), run("expire-sessions", "KV unavailable"));
  await h.kv.set(
    keys.maintenanceRun("prune-jobs"),
    run("prune-jobs", null, at("2026-03-01T03:37:00.000Z")),
  );
  await h.kv.set(
    keys.maintenanceRun("sweep-jobs"),
    run("sweep-jobs", null, h.clock.now - 10 * MINUTE),
  );
  const crons = (await health(h.svc)).components.crons;
  const task = (name: string) => crons.tasks.find((t) => t.name === name)!;
  assert.equal(crons.status, "degraded");
  assert.deepEqual(task("expire-sessions"), {
    name: "expire-sessions",
    schedule: "*/10 * * * *",
    status: "degraded",
    last_run: {
      started_at: "2026-03-01T11:59:30.000Z",
      age_ms: 30_000,
      duration_ms: 12,
      outcome: "failed",
      error: "KV unavailable",
    },
    next_run_at: "2026-03-01T12:10:00.000Z",
  });
  assert.equal(task("prune-jobs").status, "ok");
  assert.equal(task("prune-jobs").last_run!.outcome, "succeeded");
  assert.equal(task("prune-jobs").next_run_at, "2026-03-02T03:37:00.000Z");
  assert.equal(task("sweep-jobs").status, "degraded", "due every minute, last ran 10 minutes ago");
});

Deno.test("infraHealth: email's last send is the newest sent message; a last failure is degraded", async () => {
  await using h = await setup();
  const smtp = { ...h.svc, mailer: { ...h.svc.mailer, sends: true } } as Services;
  assert.equal((await health(smtp)).components.email.status, "ok");
  const message = (status: EmailMessage["status"], offset: number) => {
    const now = h.clock.now - offset;
    const m = {
      id: newId("eml", now),
      status,
      sent_at: status === "sent" ? iso(now) : null,
      updated_at: iso(now),
      expires_at: iso(now + 86_400_000),
    } as EmailMessage;
    return h.kv.set(keys.email(m.id), m);
  };
  await message("sent", 2 * HOUR);
  await message("sent", HOUR);
  await message("queued", MINUTE);
  let e = (await health(smtp)).components.email;
  assert.equal(e.status, "ok");
  assert.equal(e.mode, "smtp");
  assert.equal(e.last_sent_at, iso(h.clock.now - HOUR));
  assert.equal(e.last_sent_age_ms, HOUR);
  assert.equal(e.recent_queued, 1);
  await message("failed", 30_000);
  e = (await health(smtp)).components.email;
  assert.equal(e.status, "degraded");
  assert.equal(e.recent_failed, 1);
  assert.equal((await health(h.svc)).components.email.status, "off", "captured mail is off");
});

Deno.test("infraHealth: Postgres's ping and the copy's lag and buffer", async () => {
  await using h = await setup();
  const status = {
    enabled: true as const,
    writes: 10,
    write_errors: 0,
    last_write_at: iso(h.clock.now - 2_000),
    last_write_duration_ms: 3,
    last_error: null as string | null,
    dropped_rows: 0,
    logs_written: 10,
    daily_rows_written: 0,
    audit_events_copied: 0,
    usage_items_copied: 0,
    buffered: { logs: 3, daily_counters: 1 },
    max_buffered: 100,
  };
  const svc = { ...h.svc, pg: { status: () => status } } as unknown as Services;
  let failing = false;
  const o = {
    kvPath: ":memory:",
    probes: [{
      name: "postgres",
      check: () => failing ? Promise.reject(new Error("refused")) : Promise.resolve(),
    }],
  };
  let pg = (await health(svc, o)).components.postgres;
  assert.equal(pg.status, "ok");
  assert.equal(pg.lag_ms, 2_000);
  assert.equal(pg.buffered, 4);
  assert.ok(pg.latency_ms! >= 0);
  status.buffered.logs = 90;
  assert.equal((await health(svc, o)).components.postgres.status, "degraded", "buffer filling");
  failing = true;
  pg = (await health(svc, o)).components.postgres;
  assert.equal(pg.status, "down");
  assert.equal(pg.error, "refused");
});

Deno.test("GET /v1/admin/system/health: the documented answer; 401; 403 without system:read", async () => {
  await using h = await setup();
  await enqueue(h, "quiet");
  const res = await h.call("GET", "/v1/admin/system/health", { token: h.root });
  assert.equal(res.status, 200, res.text);
  const parsed = InfraHealth.safeParse(res.body.data);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  assert.equal(res.body.data.status, "ok");
  assert.equal(res.body.data.components.queues.queues[0].name, "quiet");
  assertError(await h.call("GET", "/v1/admin/system/health"), 401, "UNAUTHORIZED");
  for (const role of PLATFORM_ROLES) {
    const { token } = await h.user(role);
    const reply = await h.call("GET", "/v1/admin/system/health", { token });
    if (PLATFORM_ROLE_GRANTS[role].platform.has("system:read")) {
      assert.equal(reply.status, 200, role);
    } else assertError(reply, 403, "FORBIDDEN");
  }
  const bound = await h.serviceToken(["usage:read"]);
  assertError(
    await h.call("GET", "/v1/admin/system/health", { token: bound.token }),
    403,
    "FORBIDDEN",
  );
  // /health stays the cheap summary.
  const cheap = await h.call("GET", "/health");
  assert.deepEqual(Object.keys(cheap.body.data.checks).sort(), ["kv", "vault"]);
});
