/**
 * The console's Operations section in-process: queues and jobs (pause, resume, retry, delete
 * with the id typed), alerts (acknowledge), infrastructure health, request logs (search, export
 * through the session, test entry), the usage pipeline and cost; support reads without buttons
 * and with addresses masked, forged forms and forms without their CSRF token are refused.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { enqueueJob } from "../../domain/jobs/jobs.ts";
import { evaluateAlerts } from "../../domain/platform/alerts.ts";
import { signedIn, textOf } from "./_console.ts";

let nonces = 0;
const nonce = () => `nonce-${++nonces}`;
const QUEUE = "console-test";

/** A job in QUEUE whose only attempt failed: dead. */
async function deadJob(h: Harness): Promise<string> {
  const op = h.kv.atomic();
  const job = enqueueJob(op, h.clock.now, {
    queue: QUEUE,
    type: "test.job",
    payload: { note: "ada@example.com" },
    maxAttempts: 1,
  });
  assert.ok((await op.commit()).ok);
  await h.runJobs({ "test.job": () => Promise.resolve({ ok: false, error: "nope" }) }, {
    queue: QUEUE,
  });
  return job.id;
}

const queueOf = async (h: Harness) =>
  ((await h.call("GET", "/v1/admin/system/queues", { token: h.root })).body.data as {
    name: string;
    paused: boolean;
  }[]).find((q) => q.name === QUEUE)!;

Deno.test("console operations: the section opens on queues, its local nav lists every sub-page", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "ops");
  const open = await client.get("/console/operations");
  assert.equal(open.status, 303);
  assert.equal(open.headers.get("Location"), "/console/operations/queues");
  for (const tab of ["queues", "alerts", "health", "logs", "usage", "cost"]) {
    const page = await client.get(`/console/operations/${tab}`);
    assert.equal(page.status, 200, `${tab}: ${page.text}`);
    assert.match(page.text, /<nav aria-label="Operations"/);
    assert.match(page.text, new RegExp(`href="/console/operations/${tab}" aria-current="page"`));
    assert.match(page.text, /href="\/console\/operations\/cost"/);
  }
  const health = await client.get("/console/operations/health");
  assert.match(textOf(health.text), /KV store ok probe/);
  assert.match(textOf(health.text), /Scheduled tasks/);
  const usage = await client.get("/console/operations/usage");
  assert.match(textOf(usage.text), /Aggregator/);
  assert.match(textOf(usage.text), /Counter drift/);
  const cost = await client.get("/console/operations/cost?period=2026-01");
  assert.match(textOf(cost.text), /Total 2026-01/);
  assert.match(cost.text, /value="2026-01"/);

  // Finance reads usage and cost only: no Operations in the nav, only those two sub-pages.
  const { client: finance } = await signedIn(h, "finance");
  assert.doesNotMatch((await finance.get("/console")).text, /href="\/console\/operations"/);
  const opened = await finance.get("/console/operations");
  assert.equal(opened.headers.get("Location"), "/console/operations/usage");
  const costs = await finance.get("/console/operations/cost");
  assert.equal(costs.status, 200);
  assert.doesNotMatch(costs.text, /href="\/console\/operations\/queues"/);
  assert.equal((await finance.get("/console/operations/queues")).status, 403);
});

Deno.test("console operations: pause and resume a queue, retry a dead job, delete it with its id typed", async () => {
  await using h = await setup();
  const id = await deadJob(h);
  const { client, user } = await signedIn(h, "ops");

  const queues = await client.get("/console/operations/queues");
  assert.match(textOf(queues.text), new RegExp(`${QUEUE} 0 0 0 0 1 running`));
  const paused = await client.post(`/console/operations/queues/${QUEUE}/pause`, {
    _nonce: nonce(),
  });
  assert.equal(paused.status, 303, paused.text);
  assert.equal(paused.headers.get("Location"), "/console/operations/queues?notice=paused");
  assert.equal((await queueOf(h)).paused, true);
  const after = await client.get(paused.headers.get("Location")!);
  assert.match(textOf(after.text), /The queue is paused/);
  assert.match(after.text, new RegExp(`Resume ${QUEUE}`));
  await client.post(`/console/operations/queues/${QUEUE}/resume`, { _nonce: nonce() });
  assert.equal((await queueOf(h)).paused, false);
  const audit = await h.call("GET", `/v1/admin/audit?actor=${user.id}`, { token: h.root });
  assert.equal(audit.status, 200, audit.text);
  assert.deepEqual(
    (audit.body.data as { action: string }[]).map((e) => e.action)
      .filter((a) => a.startsWith("job_queue.")).sort(),
    ["job_queue.paused", "job_queue.resumed"],
  );

  const dead = await client.get(`/console/operations/queues/${QUEUE}?status=dead`);
  assert.match(textOf(dead.text), new RegExp(`${id} test\\.job dead 1 of 1`));
  assert.match(dead.text, /<option value="dead" selected(="")?>dead<\/option>/);
  const retried = await client.post(`/console/operations/jobs/${id}/retry`, { _nonce: nonce() });
  assert.equal(retried.status, 303, retried.text);
  const job = await client.get(retried.headers.get("Location")!);
  assert.match(textOf(job.text), /pending again/);
  assert.match(textOf(job.text), /Status pending Attempts 0 of 1/);
  assert.match(job.text, /ada@example\.com/);
  const again = await client.post(`/console/operations/jobs/${id}/retry`, { _nonce: nonce() });
  assert.equal(again.status, 409, "a pending job is not retried");

  const wrong = await client.post(`/console/operations/jobs/${id}/delete`, {
    confirm: "job_nope",
    _nonce: nonce(),
  });
  assert.equal(wrong.status, 422);
  const deleted = await client.post(`/console/operations/jobs/${id}/delete`, {
    confirm: id,
    _nonce: nonce(),
  });
  assert.equal(deleted.status, 303, deleted.text);
  assert.equal(
    deleted.headers.get("Location"),
    `/console/operations/queues/${QUEUE}?notice=deleted`,
  );
  assert.equal((await h.call("GET", `/v1/admin/system/jobs/${id}`, { token: h.root })).status, 404);
});

Deno.test("console operations: a firing alert is listed, linked to its queue, and acknowledged", async () => {
  await using h = await setup();
  await deadJob(h);
  await evaluateAlerts(h.svc);
  const { client, user } = await signedIn(h, "ops");
  const page = await client.get("/console/operations/alerts?state=firing");
  assert.equal(page.status, 200);
  assert.match(textOf(page.text), /dead_jobs firing 1 1/);
  assert.match(page.text, new RegExp(`href="/console/operations/queues/${QUEUE}\\?status=dead"`));
  assert.match(textOf(page.text), /Alert rules/);
  const alertId = /action="\/console\/operations\/alerts\/(alr_[0-9A-Za-z]+)\/acknowledge"/
    .exec(page.text)![1];
  const ack = await client.post(`/console/operations/alerts/${alertId}/acknowledge`, {
    _nonce: nonce(),
  });
  assert.equal(ack.status, 303, ack.text);
  const alert = await h.call("GET", `/v1/admin/system/alerts/${alertId}`, { token: h.root });
  assert.equal(alert.body.data.acknowledged_by, user.id);
  const after = await client.get(ack.headers.get("Location")!);
  assert.match(textOf(after.text), /The alert is acknowledged\./);
  assert.doesNotMatch(after.text, /<button[^>]*>Acknowledge/);
  const resolved = await client.get("/console/operations/alerts?state=resolved");
  assert.match(textOf(resolved.text), /No alert\./);
});

Deno.test("console operations: request logs are searched, exported through the session, masked for support", async () => {
  await using h = await setup();
  await h.call("GET", "/v1/tenants/nope", { token: h.root, ip: "203.0.113.9" });
  await h.svc.aggregator.flush();
  const { client } = await signedIn(h, "ops");
  const found = await client.get("/console/operations/logs?status=404&path=%2Fv1%2Ftenants");
  assert.equal(found.status, 200, found.text);
  assert.match(textOf(found.text), /warn GET \/v1\/tenants\/nope 404/);
  assert.match(found.text, /203\.0\.113\.9/);
  assert.match(
    found.text,
    /href="\/console\/operations\/logs\/export\?status=404&amp;path=%2Fv1%2Ftenants&amp;format=csv"/,
  );
  const bad = await client.get("/console/operations/logs?level=loud");
  assert.equal(bad.status, 400);

  const csv = await client.get("/console/operations/logs/export?status=404&format=csv");
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get("Content-Type")!, /text\/csv/);
  assert.match(csv.headers.get("Content-Disposition")!, /request-logs\.csv/);
  assert.match(csv.text, /^id,at,/);
  assert.match(csv.text, /\/v1\/tenants\/nope/);
  const ndjson = await client.get("/console/operations/logs/export?status=404&format=ndjson");
  assert.equal(JSON.parse(ndjson.text.trim().split("\n")[0]).status, 404);

  const test = await client.post("/console/operations/logs/test", { _nonce: nonce() });
  assert.equal(test.status, 303, test.text);
  assert.equal(test.headers.get("Location"), "/console/operations/logs?notice=test-queued");

  const { client: support } = await signedIn(h, "support");
  const masked = await support.get("/console/operations/logs?status=404");
  assert.equal(masked.status, 200);
  assert.doesNotMatch(masked.text, /203\.0\.113\.9/);
  assert.match(textOf(masked.text), /\/v1\/tenants\/nope/);
  const exported = await support.get("/console/operations/logs/export?status=404");
  assert.doesNotMatch(exported.text, /203\.0\.113\.9/);
});

Deno.test("console operations: support reads without buttons; forged forms 403; no CSRF token 403", async () => {
  await using h = await setup();
  const id = await deadJob(h);
  await evaluateAlerts(h.svc);
  const { client: support } = await signedIn(h, "support");
  const queues = await support.get("/console/operations/queues");
  assert.equal(queues.status, 200);
  assert.doesNotMatch(queues.text, /<button[^>]*>(Pause|Resume)/);
  const jobs = await support.get(`/console/operations/queues/${QUEUE}`);
  assert.doesNotMatch(jobs.text, /<button[^>]*>Retry/);
  const job = await support.get(`/console/operations/jobs/${id}`);
  assert.doesNotMatch(job.text, /<button[^>]*>(Retry|Delete)/);
  assert.doesNotMatch(job.text, /ada@example\.com/, "the payload is masked");
  const alerts = await support.get("/console/operations/alerts");
  assert.doesNotMatch(alerts.text, /<button[^>]*>Acknowledge/);
  const logs = await support.get("/console/operations/logs");
  assert.doesNotMatch(logs.text, /Write a test entry|Prune/);

  const forged = await support.post(`/console/operations/queues/${QUEUE}/pause`, {
    _nonce: nonce(),
  });
  assert.equal(forged.status, 403);
  assert.equal(
    (await support.post(`/console/operations/jobs/${id}/retry`, { _nonce: nonce() })).status,
    403,
  );
  assert.equal((await queueOf(h)).paused, false);

  const { client: ops } = await signedIn(h, "ops");
  const noToken = await ops.post(`/console/operations/queues/${QUEUE}/pause`, {
    _nonce: nonce(),
  }, { csrf: false });
  assert.equal(noToken.status, 403);
  assert.equal((await queueOf(h)).paused, false);
});
