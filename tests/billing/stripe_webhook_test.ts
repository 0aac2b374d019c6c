/**
 * POST /v1/stripe/webhook: signatures (bad, stale, missing: 400, counted), storage by id
 * (a redelivery is a no-op), the job that applies each event, ignored types, the sync marks, and
 * 409 without Stripe.
 */
import assert from "node:assert/strict";
import type { StripeSyncMarks } from "../../domain/billing/stripe_client.ts";
import { pruneStripeEvents } from "../../domain/billing/stripe_events.ts";
import { BILLING_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { dayOf } from "../../domain/shared/time.ts";
import { keys } from "../../kv/keys.ts";
import { assertError } from "../_assert.ts";
import { setup } from "../_harness.ts";
import { stripeFake } from "../_stripe.ts";
import { billingSetup } from "./_billing.ts";

const failuresToday = async (b: Awaited<ReturnType<typeof billingSetup>>) =>
  Number(
    (await b.h.kv.get<Deno.KvU64>(keys.stripeSignatureFailures(dayOf(b.h.clock.now)))).value
      ?.value ?? 0n,
  );

const billingJobs = async (b: Awaited<ReturnType<typeof billingSetup>>) => {
  let n = 0;
  for await (const _ of b.h.kv.list({ prefix: keys.queueJobs(BILLING_QUEUE) })) n++;
  return n;
};

Deno.test("webhook: a bad, stale or missing signature is 400 in the envelope, counted per day", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const event = b.stripe.event("customer.subscription.created", b.subscribe(t.id, b.prices.pro));

  const wrongSecret = await b.stripe.deliver(b.h, event, {
    secret: "whsec_NotTheEndpointSecret0000",
  });
  assertError(wrongSecret, 400, "BAD_REQUEST");
  assert.match(wrongSecret.body.error.message, /Stripe-Signature does not verify/);

  // Signed six minutes ago (Stripe's tolerance is five), by the harness clock.
  const stale = await b.stripe.deliver(b.h, event, { timestamp: b.stripe.seconds() - 360 });
  assertError(stale, 400, "BAD_REQUEST");

  // A signature of another body.
  const tampered = await b.stripe.deliver(b.h, { ...event, type: "invoice.paid" }, {
    signature: await b.stripe.sign(JSON.stringify(event, null, 2)),
  });
  assertError(tampered, 400, "BAD_REQUEST");

  const unsigned = await b.h.call("POST", "/v1/stripe/webhook", { body: event });
  assertError(unsigned, 400, "BAD_REQUEST");

  assert.equal(await failuresToday(b), 4);
  assert.equal(await b.event(event.id), null, "nothing was stored");
  assert.equal(await billingJobs(b), 0);

  // Counted by UTC day: tomorrow starts at zero.
  b.h.advance(86_400_000);
  assert.equal(await failuresToday(b), 0);
});

Deno.test("webhook: stored by id with its job and answered at once; a redelivery is a no-op", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const event = b.stripe.event("customer.subscription.created", b.subscribe(t.id, b.prices.pro));

  const first = await b.stripe.deliver(b.h, event);
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.body.data, { id: event.id, type: event.type, duplicate: false });
  const stored = await b.event(event.id);
  assert.equal(stored?.status, "queued");
  assert.equal(stored?.object_id, event.data.object.id);
  assert.equal(await billingJobs(b), 1);
  assert.equal(await b.subscription(t.id), null, "applied by the job, not the request");

  const again = await b.stripe.deliver(b.h, event);
  assert.equal(again.status, 200);
  assert.equal(again.body.data.duplicate, true);
  assert.equal(await billingJobs(b), 1, "no second job");

  await b.h.runJobs();
  assert.equal((await b.event(event.id))?.status, "applied");
  assert.equal((await b.subscription(t.id))?.status, "active");

  // After it was applied, a redelivery still changes nothing (the audit shows one creation).
  b.h.advance(60_000);
  assert.equal((await b.stripe.deliver(b.h, event)).body.data.duplicate, true);
  assert.equal(await b.h.runJobs(JOB_HANDLERS, { queue: BILLING_QUEUE }), 0);
  const created = (await b.h.auditFor(event.data.object.id)).filter((e) =>
    e.action === "subscription.created"
  );
  assert.equal(created.length, 1);
  assert.equal(
    (await b.h.kv.get(keys.stripeEventObject(event.id))).value,
    null,
    "dropped once applied",
  );
});

Deno.test("webhook: a type Steward does not apply is stored as ignored, with no job", async () => {
  await using b = await billingSetup();
  const event = b.stripe.event("product.created", { id: "prod_Q1", object: "product" });
  const res = await b.stripe.deliver(b.h, event);
  assert.equal(res.status, 200, res.text);
  const stored = await b.event(event.id);
  assert.equal(stored?.status, "ignored");
  assert.equal(stored?.object_id, "prod_Q1");
  assert.ok(stored?.processed_at);
  assert.equal(await billingJobs(b), 0);
  // Listed by receipt time for the sync status.
  const byTime = await b.h.kv.get(keys.stripeEventByTime(stored!.received_at, event.id));
  assert.equal(byTime.value, event.id);
});

Deno.test("webhook: events are kept 90 days, but those waiting or failed, which stay for an operator", async () => {
  await using b = await billingSetup();
  const ignored = b.stripe.event("product.created", { id: "prod_Q2", object: "product" });
  await b.stripe.deliver(b.h, ignored);
  // An event for a customer no tenant has: failed once applied.
  const stray = b.stripe.event("customer.updated", { ...b.stripe.addCustomer({}), metadata: {} });
  await b.stripe.deliver(b.h, stray);
  await b.h.runJobs();
  assert.equal((await b.event(stray.id))?.status, "failed");
  b.h.advance(89 * 86_400_000);
  assert.equal(await pruneStripeEvents(b.h.svc), 0);
  b.h.advance(2 * 86_400_000);
  assert.equal(await pruneStripeEvents(b.h.svc), 1);
  assert.equal(await b.event(ignored.id), null);
  assert.equal((await b.event(stray.id))?.status, "failed");
  const left = [];
  for await (const e of b.h.kv.list({ prefix: keys.stripeEventsByTime() })) left.push(e.value);
  assert.deepEqual(left, [stray.id]);
});

Deno.test("webhook: receipts and successful API calls are noted for the sync status", async () => {
  await using b = await billingSetup();
  const marks = async () => (await b.h.kv.get<StripeSyncMarks>(keys.stripeSync())).value;
  // The setup checked three plan prices with Stripe.
  assert.equal((await marks())?.last_api_success_at, "2026-03-01T12:00:00.000Z");
  assert.equal((await marks())?.last_event_at, null);
  b.h.advance(5_000);
  await b.send("product.created", { id: "prod_Q1", object: "product" });
  assert.equal((await marks())?.last_event_at, "2026-03-01T12:00:05.000Z");
});

Deno.test("webhook: 409 `Stripe is not configured` without Stripe; a missing signature is still 400", async () => {
  await using h = await setup();
  await using stripe = stripeFake();
  const event = stripe.event("product.created", { id: "prod_Q1", object: "product" });
  const res = await stripe.deliver(h, event);
  assertError(res, 409, "CONFLICT");
  assert.equal(res.body.error.message, "Stripe is not configured");
  assertError(await h.call("POST", "/v1/stripe/webhook", { body: event }), 400, "BAD_REQUEST");
});

Deno.test("webhook: an object Steward cannot read fails its event, stored with why", async () => {
  await using b = await billingSetup();
  // A subscription without a customer (no API version Stripe has sends that).
  const event = b.stripe.event("customer.subscription.updated", {
    id: "sub_Broken",
    object: "subscription",
    items: null,
  });
  await b.stripe.deliver(b.h, event);
  const stored = await b.event(event.id);
  assert.equal(stored?.status, "failed");
  assert.match(stored?.error ?? "", /unreadable customer\.subscription\.updated object/);
});
