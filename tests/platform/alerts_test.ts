/** Alerts: each rule fires and resolves on the harness clock; the API; webhooks and mails. */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { ADMIN, createHook, receiver } from "../_webhooks.ts";
import { keys } from "../../kv/keys.ts";
import { enqueueJob } from "../../domain/jobs/jobs.ts";
import { WEBHOOK_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { evaluateAlerts, firingAlerts } from "../../domain/platform/alerts.ts";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { loadConfig } from "../../config.ts";
import type { Harness } from "../_harness.ts";
import type { StripeAccess } from "../../domain/shared/services.ts";
import { dayOf, iso } from "../../domain/shared/time.ts";

const MIN = 60_000;
const QUEUE = "alerts-test";

/**
 * One evaluation tick, after a flush (a running process flushes every second: nothing it
 * counted waits); then the webhook jobs its events brought run (they are not a backlog).
 */
async function tick(h: Harness) {
  await h.svc.aggregator.flush();
  const result = await evaluateAlerts(h.svc);
  await h.runJobs(JOB_HANDLERS, { queue: WEBHOOK_QUEUE });
  return result;
}

async function enqueue(h: Harness, n: number, maxAttempts = 5) {
  const op = h.kv.atomic();
  for (let i = 0; i < n; i++) {
    enqueueJob(op, h.clock.now, { queue: QUEUE, type: "test.job", payload: {}, maxAttempts });
  }
  assert.ok((await op.commit()).ok);
}

const runTestJobs = (h: Harness, ok: boolean) =>
  h.runJobs(
    { "test.job": () => Promise.resolve(ok ? { ok: true } : { ok: false, error: "nope" }) },
    { queue: QUEUE },
  );

async function alertsOf(h: Harness, query = "") {
  const res = await h.call("GET", `/v1/admin/system/alerts${query}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

const ruleState = async (h: Harness, name: string) => {
  const res = await h.call("GET", "/v1/admin/system/alert-rules", { token: h.root });
  assert.equal(res.status, 200, res.text);
  return (res.body.data as { name: string }[]).find((r) => r.name === name) as Record<
    string,
    unknown
  >;
};

Deno.test("alerts: dead jobs fire and resolve, once each: one webhook and one mail per admin", async () => {
  await using h = await setup();
  const received = receiver(h);
  await createHook(h, ADMIN, { event_types: ["alert.fired", "alert.resolved"] });
  await h.user("admin", "ops-admin@example.com");
  await h.user("super_admin", "root@example.com");
  await h.user("support", "support@example.com"); // not mailed
  const task = MAINTENANCE_TASKS.find((t) => t.name === "evaluate-alerts")!;
  assert.equal(task.schedule, "* * * * *");

  await enqueue(h, 1, 1);
  await runTestJobs(h, false);
  // Through the maintenance task (its lease): the rule has no duration, it fires at once.
  const run = await runMaintenance(h.svc, task, "test");
  assert.equal(run?.result?.alerts_fired, 1);
  await h.runJobs(JOB_HANDLERS, { queue: WEBHOOK_QUEUE });
  const [firing] = await firingAlerts(h.svc);
  assert.equal(firing.rule, "dead_jobs");
  assert.equal(firing.value, 1);
  assert.match(firing.link, /\/v1\/admin\/system\/queues\/alerts-test\/jobs\?status=dead/);
  assert.equal((await ruleState(h, "dead_jobs")).state, "firing");

  // Still firing next minute: no second alert, no second event.
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_fired, 0);

  // The dead job deleted: it resolves.
  const dead = await h.call("GET", `/v1/admin/system/queues/${QUEUE}/jobs?status=dead`, {
    token: h.root,
  });
  const del = await h.call("DELETE", `/v1/admin/system/jobs/${dead.body.data[0].id}`, {
    token: h.root,
  });
  assert.equal(del.status, 200, del.text);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 1);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 0);
  assert.deepEqual(await firingAlerts(h.svc), []);
  const resolved = (await h.call("GET", `/v1/admin/system/alerts/${firing.id}`, { token: h.root }))
    .body.data;
  assert.equal(resolved.state, "resolved");
  assert.equal(resolved.resolved_at, iso(h.clock.now - MIN));

  const types = received.map((r) => JSON.parse(r.body).type);
  assert.deepEqual(types, ["alert.fired", "alert.resolved"]);
  assert.equal(JSON.parse(received[0].body).data.id, firing.id);

  const mails = await h.call("GET", "/v1/admin/emails?template=alert&limit=100", {
    token: h.root,
  });
  assert.equal(mails.status, 200, mails.text);
  const admins = mails.body.data as { to: string; subject: string }[];
  // The super admin and the admin, for each of the two transitions.
  const to = admins.map((m) => m.to).sort();
  assert.equal(admins.length, 4, JSON.stringify(admins));
  assert.ok(to.includes("ops-admin@example.com"));
  assert.ok(!to.includes("support@example.com"));
  assert.equal(admins.filter((m) => m.subject.startsWith("[FIRING]")).length, 2);
  assert.equal(admins.filter((m) => m.subject.startsWith("[RESOLVED]")).length, 2);
});

Deno.test("alerts: queue backlog waits for its duration (overridden), then fires and resolves", async () => {
  await using h = await setup();
  h.svc.alertRules = { job_queue_backlog: { threshold: 3, duration_seconds: 120 } };
  await enqueue(h, 3);
  await tick(h);
  let rule = await ruleState(h, "job_queue_backlog");
  assert.equal(rule.source, "override");
  assert.equal(rule.threshold, 3);
  assert.equal(rule.state, "pending");
  assert.equal(rule.last_value, 3);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_fired, 0);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_fired, 1);
  const [alert] = await firingAlerts(h.svc);
  assert.equal(alert.rule, "job_queue_backlog");
  assert.equal(alert.threshold, 3);
  rule = await ruleState(h, "job_queue_backlog");
  assert.equal(rule.alert_id, alert.id);

  await runTestJobs(h, true);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 1);
  assert.equal((await ruleState(h, "job_queue_backlog")).state, "ok");

  // A condition that stops holding before its duration never fires.
  await enqueue(h, 3);
  await tick(h);
  h.advance(MIN);
  await runTestJobs(h, true);
  await tick(h);
  h.advance(5 * MIN);
  assert.equal((await tick(h)).alerts_fired, 0);
  assert.equal((await alertsOf(h, "?rule=job_queue_backlog")).pagination.total, 1);
});

Deno.test("alerts: the oldest due job's age fires past 10 minutes and resolves once it ran", async () => {
  await using h = await setup();
  await enqueue(h, 1);
  await tick(h);
  h.advance(9 * MIN);
  assert.equal((await tick(h)).alerts_fired, 0);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_fired, 1);
  const [alert] = await firingAlerts(h.svc);
  assert.equal(alert.rule, "job_oldest_due_age");
  assert.equal(alert.value, 600);
  await runTestJobs(h, true);
  assert.equal((await tick(h)).alerts_resolved, 1);
});

Deno.test("alerts: a platform webhook endpoint disabled by Steward fires until it is enabled", async () => {
  await using h = await setup();
  receiver(h);
  const hook = await createHook(h, ADMIN);
  const key = keys.webhookEndpoint(null, hook.id);
  const entry = await h.kv.get<Record<string, unknown>>(key);
  await h.kv.set(key, {
    ...entry.value,
    enabled: false,
    disabled_reason: "failing",
    disabled_at: iso(h.clock.now),
  });
  assert.equal((await tick(h)).alerts_fired, 1);
  const [alert] = await firingAlerts(h.svc);
  assert.equal(alert.rule, "webhook_endpoints_disabled");
  assert.equal(alert.link, `/v1/admin/webhooks/${hook.id}`);
  const res = await h.call("PATCH", `${ADMIN}/${hook.id}`, {
    token: h.root,
    body: { enabled: true },
  });
  assert.equal(res.status, 200, res.text);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 1);
});

Deno.test("alerts: Stripe signature failures and event lag, only with Stripe configured", async () => {
  await using h = await setup();
  await h.kv.atomic().sum(keys.stripeSignatureFailures(dayOf(h.clock.now)), 10n).commit();
  await h.kv.set(keys.stripeSync(), {
    last_event_at: iso(h.clock.now - 2 * 86_400_000),
    last_api_success_at: null,
  });
  // Without Stripe the rules do not apply.
  assert.equal((await tick(h)).alerts_fired, 0);
  assert.equal((await ruleState(h, "stripe_event_lag")).last_value, null);

  h.svc.stripe = { webhookSecret: "whsec_test" } as unknown as StripeAccess;
  assert.equal((await tick(h)).alerts_fired, 2);
  const rules = (await firingAlerts(h.svc)).map((a) => a.rule).sort();
  assert.deepEqual(rules, ["stripe_event_lag", "stripe_signature_failures"]);

  // A new UTC day starts the failures over; a fresh event ends the lag.
  h.advance(86_400_000);
  await h.kv.set(keys.stripeSync(), { last_event_at: iso(h.clock.now), last_api_success_at: null });
  assert.equal((await tick(h)).alerts_resolved, 2);
});

Deno.test("alerts: the vault sealed fires (no mail can be sealed) and resolves", async () => {
  await using h = await setup();
  await h.user("admin");
  const real = h.svc.vault;
  h.svc.vault = new Proxy(real, {
    get: (t, p) => p === "state" ? { ...t.state, sealed: true } : Reflect.get(t, p, t),
  });
  assert.equal((await tick(h)).alerts_fired, 1);
  assert.equal((await firingAlerts(h.svc))[0].rule, "vault_sealed");
  h.svc.vault = real;
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 1);
  const mails = await h.call("GET", "/v1/admin/emails?template=alert", { token: h.root });
  // The resolution is mailed (to the admin); the firing could not be.
  assert.equal(mails.body.data.length, 1);
});

Deno.test("alerts: a backup older than 48 hours fires, only with backups enabled", async () => {
  await using h = await setup();
  const backup = (id: string, at: number) =>
    h.kv.set(keys.backup(id), {
      id,
      status: "succeeded",
      started_at: iso(at),
      finished_at: iso(at),
    });
  await backup("bkp_01JQ3V5W7X9Y1Z3A5B7C9D1E3W", h.clock.now);
  h.advance(48 * 3_600_000);
  assert.equal((await tick(h)).alerts_fired, 0); // backups off
  h.svc.backups = { dir: "/nonexistent/backups", keep: 7, store: ":memory:" };
  assert.equal((await tick(h)).alerts_fired, 1);
  const [alert] = await firingAlerts(h.svc);
  assert.equal(alert.rule, "backup_age");
  assert.equal(alert.value, 48);
  await backup("bkp_01JQ3V5W7X9Y1Z3A5B7C9D1E3X", h.clock.now);
  h.advance(MIN);
  assert.equal((await tick(h)).alerts_resolved, 1);
});

Deno.test("alerts: list filters, pagination with total, get, acknowledge, access", async () => {
  await using h = await setup();
  h.svc.alertRules = { job_oldest_due_age: { threshold: 1_000_000 } };
  // Three dead_jobs alerts (fire, resolve, fire, resolve, fire), one a minute apart.
  const t0 = h.clock.now;
  for (let i = 0; i < 3; i++) {
    await enqueue(h, 1, 1);
    await runTestJobs(h, false);
    await tick(h);
    h.advance(MIN);
    if (i < 2) {
      const dead = await h.call("GET", `/v1/admin/system/queues/${QUEUE}/jobs?status=dead`, {
        token: h.root,
      });
      await h.call("DELETE", `/v1/admin/system/jobs/${dead.body.data[0].id}`, { token: h.root });
      await tick(h);
      h.advance(MIN);
    }
  }
  const all = await alertsOf(h);
  assert.equal(all.pagination.total, 3);
  assert.deepEqual(all.data.map((a: { state: string }) => a.state), [
    "firing",
    "resolved",
    "resolved",
  ]);
  assert.equal((await alertsOf(h, "?state=resolved")).pagination.total, 2);
  assert.equal((await alertsOf(h, "?state=firing&rule=dead_jobs")).data.length, 1);
  assert.equal((await alertsOf(h, "?rule=vault_sealed")).pagination.total, 0);
  const since = encodeURIComponent(iso(t0 + 2 * MIN));
  assert.equal((await alertsOf(h, `?since=${since}`)).pagination.total, 2);
  const page2 = await alertsOf(h, "?limit=2&offset=2");
  assert.equal(page2.data.length, 1);
  assert.equal(page2.pagination.total, 3);
  assert.equal(page2.data[0].id, all.data[2].id);
  assert.equal(
    (await h.call("GET", "/v1/admin/system/alerts?state=open", { token: h.root }))
      .status,
    400,
  );

  const id = all.data[0].id;
  const ops = await h.user("ops");
  const ack = await h.call("POST", `/v1/admin/system/alerts/${id}/acknowledge`, {
    token: ops.token,
  });
  assert.equal(ack.status, 200, ack.text);
  assert.equal(ack.body.data.acknowledged_by, ops.id);
  h.advance(MIN);
  const again = await h.call("POST", `/v1/admin/system/alerts/${id}/acknowledge`, {
    token: h.root,
  });
  assert.equal(again.status, 200);
  assert.deepEqual(again.body.data, ack.body.data);
  assert.equal((await h.auditFor(id)).filter((e) => e.action === "alert.acknowledged").length, 1);

  const missing = "alr_01JQ3V5W7X9Y1Z3A5B7C9D1E3X";
  assert.equal(
    (await h.call("GET", `/v1/admin/system/alerts/${missing}`, { token: h.root }))
      .status,
    404,
  );

  // Access: support reads but does not acknowledge; finance does neither; no token is 401.
  const support = await h.user("support");
  const finance = await h.user("finance");
  assert.equal(
    (await h.call("GET", "/v1/admin/system/alerts", { token: support.token })).status,
    200,
  );
  assert.equal(
    (await h.call("POST", `/v1/admin/system/alerts/${id}/acknowledge`, { token: support.token }))
      .status,
    403,
  );
  assert.equal(
    (await h.call("GET", "/v1/admin/system/alerts", { token: finance.token })).status,
    403,
  );
  assert.equal(
    (await h.call("GET", "/v1/admin/system/alert-rules", { token: finance.token })).status,
    403,
  );
  assert.equal((await h.call("GET", "/v1/admin/system/alerts")).status, 401);
});

Deno.test("alerts: STEWARD_ALERT_RULES is checked at start-up", () => {
  const base = { STEWARD_KV_PATH: ":memory:" };
  const ok = loadConfig({
    ...base,
    STEWARD_ALERT_RULES: '{"dead_jobs":{"threshold":5,"duration_seconds":300}}',
  });
  assert.deepEqual(ok.STEWARD_ALERT_RULES, { dead_jobs: { threshold: 5, duration_seconds: 300 } });
  assert.deepEqual(loadConfig(base).STEWARD_ALERT_RULES, {});
  for (
    const bad of ["{", '{"nope":{}}', '{"dead_jobs":{"threshold":-1}}', '{"dead_jobs":{"x":1}}']
  ) {
    assert.throws(() => loadConfig({ ...base, STEWARD_ALERT_RULES: bad }), bad);
  }
});
