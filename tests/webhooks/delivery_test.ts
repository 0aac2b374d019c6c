/**
 * Webhook delivery on an injected clock and HTTP sender (no network, no sleeping): fan-out to
 * the endpoints that want an event, Standard Webhooks signatures, the retry schedule with its
 * jitter and Retry-After, the 410 rule, the 5-day auto-disable, refused addresses at delivery,
 * and what the deliveries, attempts, retry, recover and test routes show and do.
 */
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { keys } from "../../kv/keys.ts";
import { emitEvent } from "../../domain/audit/events.ts";
import { enqueueJob, getJob } from "../../domain/jobs/jobs.ts";
import { FANOUT_JOB, WEBHOOK_QUEUE } from "../../domain/jobs/names.ts";
import {
  DISABLE_AFTER_MS,
  MAX_ATTEMPTS,
  parseRetryAfter,
  RETRY_DELAYS_MS,
  retryDelay,
} from "../../domain/webhooks/schedule.ts";
import { commit } from "../../kv/commit.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError } from "../_assert.ts";
import { ADMIN, createHook, drain, type Received, receiver, tenantHooks } from "../_webhooks.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The signatures in `req` that `secret` produces (standardwebhooks computes them). */
function signedBy(req: Received, secret: string): boolean {
  const id = req.headers["webhook-id"];
  const ts = Number(req.headers["webhook-timestamp"]);
  const expected = new Webhook(secret).sign(id, new Date(ts * 1000), req.body);
  return req.headers["webhook-signature"].split(" ").includes(expected);
}

const typesOf = (received: Received[]) => received.map((r) => JSON.parse(r.body).type);

async function deliveries(h: Harness, base: string, id: string, query = "") {
  const res = await h.call("GET", `${base}/${id}/deliveries${query}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  return res.body.data as {
    id: string;
    status: string;
    attempts: number;
    event_type: string;
    next_attempt_at: string | null;
    failure_reason: string | null;
  }[];
}

async function attempts(h: Harness, base: string, id: string, messageId: string) {
  const res = await h.call("GET", `${base}/${id}/deliveries/${messageId}/attempts?limit=100`, {
    token: h.root,
  });
  assert.equal(res.status, 200, res.text);
  return res.body.data as {
    status: string;
    response_status_code: number;
    response_body: string;
    error: string | null;
    trigger: string;
    next_attempt_at: string | null;
    duration_ms: number;
  }[];
}

Deno.test("schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %; then none", () => {
  assert.deepEqual(RETRY_DELAYS_MS, [
    5_000,
    5 * MINUTE,
    30 * MINUTE,
    2 * HOUR,
    5 * HOUR,
    10 * HOUR,
    10 * HOUR,
  ]);
  assert.equal(MAX_ATTEMPTS, 8);
  RETRY_DELAYS_MS.forEach((base, i) => {
    assert.equal(retryDelay(i + 1, null, () => 0), Math.round(base * 0.8));
    assert.equal(retryDelay(i + 1, null, () => 1), Math.round(base * 1.2));
    assert.equal(retryDelay(i + 1, null, () => 0.5), base);
  });
  assert.equal(retryDelay(8), null);
  // Retry-After lengthens the wait (up to 10 h), never shortens it.
  assert.equal(retryDelay(1, HOUR, () => 0.5), HOUR);
  assert.equal(retryDelay(2, 1_000, () => 0.5), 5 * MINUTE);
  assert.equal(retryDelay(1, 30 * DAY, () => 0.5), 10 * HOUR);
  const now = Date.parse("2026-03-01T12:00:00Z");
  assert.equal(parseRetryAfter("120", now), 120_000);
  assert.equal(parseRetryAfter("Sun, 01 Mar 2026 13:00:00 GMT", now), HOUR);
  assert.equal(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter(null, now), null);
});

Deno.test("fan-out: a tenant's event goes to its endpoints and the platform's, filtered; signed", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.tenant("globex");
  const received = receiver(h);
  const mine = await createHook(h, tenantHooks("acme"), { event_types: ["project.created"] });
  const all = await createHook(h, tenantHooks("acme"));
  const platform = await createHook(h, ADMIN);
  const theirs = await createHook(h, tenantHooks("globex"));
  const off = await createHook(h, tenantHooks("acme"), { enabled: false });
  await drain(h);
  received.length = 0;

  const created = await h.call("POST", `/v1/tenants/acme/projects`, {
    token: h.root,
    body: { name: "Storefront" },
  });
  assert.equal(created.status, 201);
  await h.call("PATCH", `/v1/tenants/acme/projects/${created.body.data.id}`, {
    token: h.root,
    body: { name: "Shop" },
  });
  await drain(h);

  const byUrlType = received.map((r) => [r.headers["webhook-id"], JSON.parse(r.body).type]);
  assert.equal(received.length, 5, JSON.stringify(byUrlType));
  const secretOf = new Map([mine, all, platform, theirs, off].map((e) => [e.id, e.secret]));
  const messagesOf = async (e: { id: string }, base: string) =>
    (await deliveries(h, base, e.id)).map((m) => m.event_type).filter((t) =>
      t.startsWith("project.")
    ).sort();
  assert.deepEqual(await messagesOf(mine, tenantHooks("acme")), ["project.created"]);
  assert.deepEqual(await messagesOf(all, tenantHooks("acme")), [
    "project.created",
    "project.updated",
  ]);
  assert.deepEqual(await messagesOf(platform, ADMIN), ["project.created", "project.updated"]);
  assert.deepEqual(await messagesOf(theirs, tenantHooks("globex")), []);
  assert.deepEqual(await messagesOf(off, tenantHooks("acme")), []);

  // Each request: the Standard Webhooks headers, signed with the endpoint's secret; the body.
  for (const r of received) {
    const payload = JSON.parse(r.body);
    assert.deepEqual(Object.keys(payload), ["type", "timestamp", "data"]);
    assert.equal(payload.data.tenant_id, acme.id);
    assert.match(r.headers["webhook-id"], /^msg_[0-9A-Z]{26}$/);
    assert.equal(r.headers["webhook-timestamp"], String(Math.floor(h.clock.now / 1000)));
    assert.equal(r.headers["content-type"], "application/json");
    const owner = [...secretOf].find(([, secret]) => signedBy(r, secret));
    assert.ok(owner, "signed by one of the endpoints' secrets");
    assert.ok(!signedBy(r, theirs.secret) || owner[0] === theirs.id);
  }

  // A platform event (no tenant) goes to platform endpoints only.
  received.length = 0;
  const plan = await h.call("POST", "/v1/plans", {
    token: h.root,
    body: {
      code: "team",
      name: "Team",
      price: { amount: 100, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 20, burst: 40 },
      quota: { units: 1000, period: "month" },
      sla: 99.5,
    },
  });
  assert.equal(plan.status, 201, plan.text);
  await drain(h);
  assert.deepEqual(typesOf(received), ["plan.created"]);
  assert.ok(signedBy(received[0], platform.secret));
});

Deno.test("fan-out: many endpoints in chunks, once each even when the fan-out job runs twice", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const received = receiver(h);
  for (let i = 0; i < 23; i++) await createHook(h, tenantHooks("acme"));
  await drain(h);
  received.length = 0;

  const op = h.kv.atomic();
  const event = emitEvent(op, h.clock.now, {
    type: "tenant.updated",
    tenant_id: t.id,
    data: { id: t.id },
  });
  // The same event's fan-out queued twice, as a lost worker's rerun would do it.
  enqueueJob(op, h.clock.now, {
    queue: WEBHOOK_QUEUE,
    type: FANOUT_JOB,
    payload: { event_id: event.id },
  });
  assert.ok(await commit(op));
  await drain(h);
  assert.equal(received.length, 23);
  assert.equal(new Set(received.map((r) => r.headers["webhook-id"])).size, 23);
});

Deno.test("retries: on schedule with jitter, every attempt recorded, then failed and the job dead", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const received = receiver(h, () => new Response("x".repeat(10_000), { status: 500 }));
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Acme 2" } });
  await drain(h);
  const [message] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(received.length, 1);

  for (let n = 1; n < MAX_ATTEMPTS; n++) {
    const [m] = await deliveries(h, tenantHooks("acme"), hook.id);
    assert.equal(m.status, "pending");
    assert.equal(m.attempts, n);
    const wait = Date.parse(m.next_attempt_at!) - h.clock.now;
    const base = RETRY_DELAYS_MS[n - 1];
    assert.ok(wait >= base * 0.8 && wait <= base * 1.2, `retry ${n}: ${wait} ms for ${base}`);
    h.advance(wait - 1);
    assert.equal(await drain(h), 0, "not before its time");
    h.advance(1);
    assert.equal(await drain(h), 1);
    assert.equal(received.length, n + 1);
  }
  const [done] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(done.status, "failed");
  assert.equal(done.attempts, MAX_ATTEMPTS);
  assert.equal(done.failure_reason, `all ${MAX_ATTEMPTS} attempts failed`);
  assert.equal(done.next_attempt_at, null);
  h.advance(30 * DAY);
  assert.equal(await drain(h), 0, "nothing after the last attempt");

  const tried = await attempts(h, tenantHooks("acme"), hook.id, message.id);
  assert.equal(tried.length, MAX_ATTEMPTS);
  for (const a of tried) {
    assert.equal(a.status, "failed");
    assert.equal(a.response_status_code, 500);
    assert.equal(a.response_body, "x".repeat(4096), "the first 4 KiB");
    assert.equal(a.trigger, "scheduled");
    assert.ok(a.duration_ms >= 0);
  }
  assert.equal(tried[0].next_attempt_at, null, "the last one schedules nothing");
  assert.ok(tried[1].next_attempt_at);
  // Same webhook-id on every attempt; the endpoint is not disabled by one message's failures.
  assert.equal(new Set(received.map((r) => r.headers["webhook-id"])).size, 1);
  assert.equal(received[0].headers["webhook-id"], message.id);
  const endpoint = await h.call("GET", `${tenantHooks("acme")}/${hook.id}`, { token: h.root });
  assert.equal(endpoint.body.data.enabled, true);
});

Deno.test("retries: Retry-After lengthens the wait up to 10 h; a success ends the retries", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const answers = [
    new Response("slow down", { status: 429, headers: { "Retry-After": "3600" } }),
    new Response(null, { status: 503, headers: { "Retry-After": "9999999" } }),
    new Response("ok", { status: 200 }),
  ];
  receiver(h, (_r, n) => answers[n - 1]);
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Acme 2" } });
  await drain(h);
  let [m] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(Date.parse(m.next_attempt_at!) - h.clock.now, HOUR, "as asked, not 5 s");
  h.advance(HOUR);
  await drain(h);
  [m] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(Date.parse(m.next_attempt_at!) - h.clock.now, 10 * HOUR, "capped at 10 h");
  h.advance(10 * HOUR);
  await drain(h);
  [m] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(m.status, "succeeded");
  assert.equal(m.attempts, 3);
  assert.equal(m.next_attempt_at, null);
  h.advance(30 * DAY);
  assert.equal(await drain(h), 0);
});

Deno.test("retries: network errors, timeouts and redirects are failed attempts (status 0 / 3xx)", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const inits: RequestInit[] = [];
  const answers: (() => Response)[] = [
    () => {
      throw new TypeError("error sending request: connection refused");
    },
    () => {
      throw new DOMException("Signal timed out.", "TimeoutError");
    },
    () => new Response(null, { status: 302, headers: { Location: "https://elsewhere.test/" } }),
  ];
  h.network.fetch = (_url, init) => {
    inits.push(init);
    return Promise.resolve().then(answers[inits.length - 1]);
  };
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Acme 2" } });
  await drain(h);
  for (const wait of [6_000, 6 * MINUTE]) {
    h.advance(wait);
    await drain(h);
  }
  const [m] = await deliveries(h, tenantHooks("acme"), hook.id);
  const tried = (await attempts(h, tenantHooks("acme"), hook.id, m.id)).reverse();
  assert.deepEqual(tried.map((a) => [a.response_status_code, a.status]), [
    [0, "failed"],
    [0, "failed"],
    [302, "failed"],
  ]);
  assert.equal(tried[0].error, "error sending request: connection refused");
  assert.equal(tried[1].error, "no answer within 15 s");
  assert.equal(tried[2].error, null);
  for (const init of inits) {
    assert.equal(init.redirect, "manual", "redirects are not followed");
    assert.ok(init.signal, "every request has a deadline");
  }
});

Deno.test("410 Gone disables the endpoint at once; its pending messages fail; platform told", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const watcher = await createHook(h, ADMIN, { event_types: ["webhook.endpoint_disabled"] });
  let gone = false;
  const received = receiver(h, (r) =>
    new Response(null, {
      status: signedBy(r, watcher.secret) ? 204 : gone ? 410 : 500,
    }));
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "One" } });
  await drain(h);
  gone = true;
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Two" } });
  await drain(h);

  const endpoint = await h.call("GET", `${tenantHooks("acme")}/${hook.id}`, { token: h.root });
  assert.equal(endpoint.body.data.enabled, false);
  assert.equal(endpoint.body.data.disabled_reason, "gone");
  assert.equal(endpoint.body.data.disabled_at, new Date(h.clock.now).toISOString());
  const [second, first] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(second.status, "failed");
  assert.equal(second.failure_reason, "the endpoint answered 410 Gone");
  assert.equal(first.status, "pending", "the first message still waits for its retry");

  h.advance(10 * MINUTE);
  const before = received.filter((r) => signedBy(r, hook.secret)).length;
  await drain(h);
  assert.equal(received.filter((r) => signedBy(r, hook.secret)).length, before, "no more sends");
  const [, firstAfter] = await deliveries(h, tenantHooks("acme"), hook.id);
  assert.equal(firstAfter.status, "failed");
  assert.equal(firstAfter.failure_reason, "the endpoint is disabled");

  const told = received.filter((r) => signedBy(r, watcher.secret)).map((r) => JSON.parse(r.body));
  assert.equal(told.length, 1);
  assert.equal(told[0].type, "webhook.endpoint_disabled");
  assert.equal(told[0].data.id, hook.id);
  assert.equal(told[0].data.disabled_reason, "gone");
  assert.deepEqual(told[0].data.actor, { type: "system", id: "system" });
  const trail = await h.auditFor(hook.id);
  assert.equal(trail[0].action, "webhook.endpoint_disabled");
  assert.equal(trail[0].actor_id, "system");
});

Deno.test("auto-disable: an endpoint whose every attempt failed for 5 days is disabled; a success resets", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const watcher = await createHook(h, ADMIN, { event_types: ["webhook.endpoint_disabled"] });
  let up = false;
  const received = receiver(
    h,
    (r) => new Response(null, { status: up || signedBy(r, watcher.secret) ? 204 : 500 }),
  );
  const state = async () =>
    (await h.call("GET", `${tenantHooks("acme")}/${hook.id}`, { token: h.root })).body.data;
  /** An event, then a day of the clock with every due retry run. */
  let n = 0;
  const day = async () => {
    await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: `Acme ${++n}` } });
    for (let i = 0; i < 24; i++) {
      await drain(h);
      h.advance(HOUR);
    }
  };

  for (let d = 0; d < 3; d++) await day();
  assert.equal((await state()).enabled, true, "3 days of failures are not enough");
  up = true;
  await day();
  up = false;
  for (let d = 0; d < 4; d++) await day();
  assert.equal((await state()).enabled, true, "the success on day 4 started the count over");
  await day();
  await day();
  const disabled = await state();
  assert.equal(disabled.enabled, false);
  assert.equal(disabled.disabled_reason, "failing");
  const told = received.filter((r) => signedBy(r, watcher.secret)).map((r) => JSON.parse(r.body));
  assert.deepEqual(told.map((e) => [e.type, e.data.id, e.data.disabled_reason]), [
    ["webhook.endpoint_disabled", hook.id, "failing"],
  ]);
  // It was disabled by the first failure at least 5 days after the streak began.
  const health = await h.kv.get<{ failing_since: number }>(
    keys.webhookHealth(disabled.tenant_id, hook.id),
  );
  assert.ok(Date.parse(disabled.disabled_at) - health.value!.failing_since >= DISABLE_AFTER_MS);

  // Enabled again by hand: the streak starts over, and deliveries resume.
  const enabled = await h.call("PATCH", `${tenantHooks("acme")}/${hook.id}`, {
    token: h.root,
    body: { enabled: true },
  });
  assert.equal(enabled.status, 200, enabled.text);
  assert.equal(enabled.body.data.disabled_reason, null);
  assert.equal((await h.kv.get(keys.webhookHealth(disabled.tenant_id, hook.id))).value, null);
  up = true;
  const sent = received.length;
  await day();
  assert.ok(received.length > sent);
});

Deno.test("SSRF at delivery: a name that now resolves to a private address is not called", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const received = receiver(h);
  for (
    const [addresses, why] of [
      [["10.0.0.1"], "10.0.0.1, a private address"],
      [["93.184.216.34", "169.254.169.254"], "169.254.169.254, a link-local address"],
      [["::1"], "::1, a loopback address"],
      [["127.0.0.1"], "127.0.0.1, a loopback address"],
    ] as const
  ) {
    h.dns.set("hooks.example.com", [...addresses]);
    await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: why } });
    await drain(h);
    const [m] = await deliveries(h, tenantHooks("acme"), hook.id);
    const [a] = await attempts(h, tenantHooks("acme"), hook.id, m.id);
    assert.equal(a.status, "failed");
    assert.equal(a.response_status_code, 0);
    assert.equal(a.error, `not sent: the url hooks.example.com resolves to ${why}`);
  }
  h.dns.delete("hooks.example.com");
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "nowhere" } });
  await drain(h);
  const [m] = await deliveries(h, tenantHooks("acme"), hook.id);
  const [a] = await attempts(h, tenantHooks("acme"), hook.id, m.id);
  assert.equal(a.error, "not sent: the url hooks.example.com does not resolve to any address");
  assert.equal(received.length, 0, "nothing was sent");
});

Deno.test("SSRF at delivery: endpoints saved while private URLs were allowed are refused once they are not", async () => {
  await using h = await setup({ allowPrivateUrls: true });
  const urls = [
    "http://127.0.0.1:8080/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://localhost/hook",
  ];
  const hooks = [];
  for (const url of urls) {
    hooks.push(await createHook(h, ADMIN, { url, event_types: ["plan.updated"] }));
  }
  h.network.allowPrivateUrls = false;
  const received = receiver(h);
  const plan = await h.call("PATCH", "/v1/plans/free", { token: h.root, body: { name: "Free!" } });
  assert.equal(plan.status, 200, plan.text);
  await drain(h);
  assert.equal(received.length, 0, "nothing was sent");
  const errors = [];
  for (const hook of hooks) {
    const [m] = await deliveries(h, ADMIN, hook.id);
    const [a] = await attempts(h, ADMIN, hook.id, m.id);
    assert.equal(a.response_status_code, 0);
    errors.push(a.error);
  }
  assert.deepEqual(errors, [
    "not sent: the url must be an https URL",
    "not sent: the url must not point at a private address",
    "not sent: the url must not point at a link-local address",
    "not sent: the url must not point at a loopback address",
    "not sent: the url must not name this machine",
  ]);
});

Deno.test("rotation: during the grace every delivery carries both signatures; after it, one", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const received = receiver(h);
  const rotated = await h.call("POST", `${tenantHooks("acme")}/${hook.id}/rotate-secret`, {
    token: h.root,
    body: { grace_seconds: 3600 },
  });
  assert.equal(rotated.status, 200, rotated.text);
  const fresh = rotated.body.data.secret as string;
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "During" } });
  await drain(h);
  assert.equal(received[0].headers["webhook-signature"].split(" ").length, 2);
  assert.ok(signedBy(received[0], hook.secret));
  assert.ok(signedBy(received[0], fresh));
  h.advance(HOUR);
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "After" } });
  await drain(h);
  assert.equal(received[1].headers["webhook-signature"].split(" ").length, 1);
  assert.ok(signedBy(received[1], fresh));
  assert.ok(!signedBy(received[1], hook.secret));
});

Deno.test("deliveries: filtered by status and event type, newest first, with a cursor", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const hook = await createHook(h, tenantHooks("acme"));
  let fail = false;
  receiver(h, () => new Response(null, { status: fail ? 500 : 200 }));
  await drain(h);
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "A" } });
  await drain(h);
  fail = true;
  await h.call("POST", "/v1/tenants/acme/projects", { token: h.root, body: { name: "P" } });
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "B" } });
  await drain(h);
  const base = tenantHooks("acme");
  const all = await deliveries(h, base, hook.id);
  assert.deepEqual(all.map((m) => [m.event_type, m.status]), [
    ["tenant.updated", "pending"],
    ["project.created", "pending"],
    ["tenant.updated", "succeeded"],
    ["webhook.created", "succeeded"],
  ]);
  assert.deepEqual(
    (await deliveries(h, base, hook.id, "?status=succeeded")).map((m) => m.event_type),
    ["tenant.updated", "webhook.created"],
  );
  assert.deepEqual(
    (await deliveries(h, base, hook.id, "?event_type=tenant.updated&status=pending")).length,
    1,
  );
  const page = await h.call("GET", `${base}/${hook.id}/deliveries?limit=2`, { token: h.root });
  assert.equal(page.body.pagination.has_more, true);
  const rest = await h.call(
    "GET",
    `${base}/${hook.id}/deliveries?limit=2&cursor=${page.body.pagination.next_cursor}`,
    { token: h.root },
  );
  assert.deepEqual(
    [...page.body.data, ...rest.body.data].map((m: { id: string }) => m.id),
    all.map((m) => m.id),
  );
  for (const bad of ["?status=lost", "?limit=0", "?sort=id", "?cursor=nope"]) {
    assertError(
      await h.call("GET", `${base}/${hook.id}/deliveries${bad}`, { token: h.root }),
      400,
      "BAD_REQUEST",
    );
  }
});

Deno.test("retry: resends now (manual), keeps a pending message's schedule; 409 when disabled", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const base = tenantHooks("acme");
  const hook = await createHook(h, base, { event_types: ["tenant.updated"] });
  let status = 500;
  const received = receiver(h, () => new Response("answer", { status }));
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "A" } });
  await drain(h);
  const [m] = await deliveries(h, base, hook.id);
  const retry = () =>
    h.call("POST", `${base}/${hook.id}/deliveries/${m.id}/retry`, { token: h.root });

  const failed = await retry();
  assert.equal(failed.status, 200, failed.text);
  assert.equal(failed.body.data.attempt.trigger, "manual");
  assert.equal(failed.body.data.attempt.status, "failed");
  assert.equal(failed.body.data.message.status, "pending");
  assert.equal(failed.body.data.message.next_attempt_at, m.next_attempt_at, "schedule kept");
  assert.equal(failed.body.data.message.attempts, 2);

  status = 200;
  const ok = await retry();
  assert.equal(ok.body.data.attempt.status, "succeeded");
  assert.equal(ok.body.data.attempt.response_body, "answer");
  assert.equal(ok.body.data.message.status, "succeeded");
  assert.equal(received.length, 3);
  assert.equal(new Set(received.map((r) => r.headers["webhook-id"])).size, 1, "same webhook-id");
  h.advance(DAY);
  await drain(h);
  assert.equal(received.length, 3, "the scheduled retry finds it delivered");
  // A delivered message can be sent again on request.
  assert.equal((await retry()).body.data.message.status, "succeeded");

  assertError(
    await h.call("POST", `${base}/${hook.id}/deliveries/msg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/retry`, {
      token: h.root,
    }),
    404,
    "NOT_FOUND",
  );
  assertError(
    await h.call("POST", `${base}/${hook.id}/deliveries/nope/retry`, { token: h.root }),
    400,
    "BAD_REQUEST",
  );
  const unknown = "msg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
  const unknownHook = "whk_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
  for (
    const [method, path] of [
      ["GET", `${base}/${hook.id}/deliveries/${unknown}/attempts`],
      ["GET", `${base}/${unknownHook}/deliveries/${m.id}/attempts`],
      ["GET", `${base}/${unknownHook}/deliveries`],
      ["POST", `${base}/${unknownHook}/test`],
      ["POST", `${base}/${unknownHook}/deliveries/${m.id}/retry`],
      ["GET", `${ADMIN}/${hook.id}/deliveries/${m.id}/attempts`],
    ]
  ) {
    assertError(await h.call(method, path, { token: h.root }), 404, "NOT_FOUND");
  }
  assertError(
    await h.call("POST", `${base}/${unknownHook}/recover`, {
      token: h.root,
      body: { since: "2026-01-01T00:00:00Z" },
    }),
    404,
    "NOT_FOUND",
  );
  for (
    const path of [
      `${base}/${hook.id}/deliveries/nope/attempts`,
      `${base}/${hook.id}/deliveries/${m.id}/attempts?limit=0`,
      `${base}/nope/deliveries`,
    ]
  ) {
    assertError(await h.call("GET", path, { token: h.root }), 400, "BAD_REQUEST");
  }
  await h.call("PATCH", `${base}/${hook.id}`, { token: h.root, body: { enabled: false } });
  assertError(await retry(), 409, "CONFLICT");
  assertError(
    await h.call("POST", `${base}/${hook.id}/recover`, {
      token: h.root,
      body: { since: "2026-01-01T00:00:00Z" },
    }),
    409,
    "CONFLICT",
  );
});

Deno.test("recover: every message failed since a time is resent with a fresh schedule", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const base = tenantHooks("acme");
  const hook = await createHook(h, base, { event_types: ["tenant.updated"] });
  let up = false;
  const received = receiver(h, () => new Response(null, { status: up ? 204 : 500 }));
  const early = h.clock.now;
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Old" } });
  h.advance(HOUR);
  const since = h.clock.now;
  for (const name of ["A", "B", "C"]) {
    await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name } });
  }
  // Two days: every message spends its attempts.
  for (let i = 0; i < 48; i++) {
    await drain(h);
    h.advance(HOUR);
  }
  assert.deepEqual((await deliveries(h, base, hook.id)).map((m) => m.status), [
    "failed",
    "failed",
    "failed",
    "failed",
  ]);
  up = true;
  const sent = received.length;
  const res = await h.call("POST", `${base}/${hook.id}/recover`, {
    token: h.root,
    body: { since: new Date(since).toISOString() },
  });
  assert.equal(res.status, 202, res.text);
  assert.match(res.body.data.job_id, /^job_/);
  await drain(h);
  assert.equal(received.length, sent + 3, "the three since then, not the one before");
  const after = await deliveries(h, base, hook.id);
  assert.deepEqual(after.map((m) => m.status), ["succeeded", "succeeded", "succeeded", "failed"]);
  const [latest] = await attempts(h, base, hook.id, after[0].id);
  assert.equal(latest.trigger, "manual");
  assert.equal((await getJob(h.svc, res.body.data.job_id))?.value.status, "succeeded");
  assert.ok(early < since);

  assertError(
    await h.call("POST", `${base}/${hook.id}/recover`, { token: h.root, body: {} }),
    400,
    "BAD_REQUEST",
  );
  assertError(
    await h.call("POST", `${base}/${hook.id}/recover`, {
      token: h.root,
      body: { since: "yesterday" },
    }),
    400,
    "BAD_REQUEST",
  );
});

Deno.test("test: sends webhook.test to one endpoint now and returns the attempt", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const base = tenantHooks("acme");
  const hook = await createHook(h, base, { event_types: ["tenant.updated"] });
  const other = await createHook(h, base);
  await drain(h);
  const received = receiver(h, () => new Response("thanks", { status: 202 }));
  const res = await h.call("POST", `${base}/${hook.id}/test`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  const { message, attempt } = res.body.data;
  assert.equal(message.event_type, "webhook.test");
  assert.equal(message.status, "succeeded");
  assert.equal(attempt.status, "succeeded");
  assert.equal(attempt.response_status_code, 202);
  assert.equal(attempt.response_body, "thanks");
  assert.equal(attempt.trigger, "manual");
  assert.equal(received.length, 1, "only this endpoint, whatever its filter");
  assert.ok(signedBy(received[0], hook.secret));
  const body = JSON.parse(received[0].body);
  assert.equal(body.type, "webhook.test");
  assert.equal(body.data.endpoint_id, hook.id);
  await drain(h);
  assert.equal(received.length, 1, "no fan-out of a test event");
  assert.deepEqual(await deliveries(h, base, other.id, "?event_type=webhook.test"), []);

  // A failing test is retried like any delivery.
  receiver(h, () => new Response(null, { status: 500 }));
  const failing = await h.call("POST", `${base}/${hook.id}/test`, { token: h.root });
  assert.equal(failing.body.data.attempt.status, "failed");
  assert.equal(failing.body.data.message.status, "pending");
  assert.ok(failing.body.data.attempt.next_attempt_at);
  await h.call("PATCH", `${base}/${hook.id}`, { token: h.root, body: { enabled: false } });
  assertError(await h.call("POST", `${base}/${hook.id}/test`, { token: h.root }), 409, "CONFLICT");
});

Deno.test("a deleted endpoint's waiting messages fail without being sent", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const base = tenantHooks("acme");
  const hook = await createHook(h, base, { event_types: ["tenant.updated"] });
  const received = receiver(h, () => new Response(null, { status: 500 }));
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "A" } });
  await drain(h);
  const [m] = await deliveries(h, base, hook.id);
  assert.equal((await h.call("DELETE", `${base}/${hook.id}`, { token: h.root })).status, 200);
  h.advance(HOUR);
  await drain(h);
  assert.equal(received.length, 1);
  const stored = await h.kv.get<{ status: string; failure_reason: string }>(
    keys.webhookMessage(t.id, hook.id, m.id),
  );
  assert.equal(stored.value?.status, "failed");
  assert.equal(stored.value?.failure_reason, "the endpoint was deleted");
});
