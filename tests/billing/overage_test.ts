/**
 * Metered overage (domain/billing/overage.ts): usage above the quota of a plan with a Stripe meter
 * is reported to it as meter events, each unit once: across runs, and across a crash between the
 * report's intent, its sending and its record (the meter event's identifier makes the resend a
 * no-op at Stripe).
 */
import assert from "node:assert/strict";
import { type OverageReport, reportOverage } from "../../domain/billing/overage.ts";
import { quotaPeriod } from "../../domain/shared/time.ts";
import { VERIFICATIONS } from "../../domain/tenancy/plans.ts";
import { keys } from "../../kv/keys.ts";
import { type Billing, billingSetup } from "./_billing.ts";

/** A tenant subscribed to `metered` (10 verifications a month, overage to the meter `api_overage`). */
async function meteredTenant(b: Billing) {
  const price = b.stripe.addPrice({ unit_amount: 1_000, interval: "month" });
  const plan = await b.h.call("POST", "/v1/plans", {
    token: b.h.root,
    body: {
      code: "metered",
      name: "Metered",
      price: { amount: 1_000, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 10, burst: 20 },
      quota: { units: 10, period: "month" },
      sla: 99,
      stripe_price_id: price.id,
      stripe_meter_event_name: "api_overage",
    },
  });
  assert.equal(plan.status, 201, plan.text);
  assert.equal(plan.body.data.stripe_meter_event_name, "api_overage");
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, price);
  await b.send("customer.subscription.created", sub);
  await b.h.runJobs();
  assert.equal((await b.tenant(t.id)).plan, "metered");
  return { tenantId: t.id, customer: sub.customer as string };
}

/** Sets the tenant's verifications this month (what the write-behind path has flushed). */
async function used(b: Billing, tenantId: string, units: number) {
  const period = quotaPeriod("month", b.h.clock.now).label;
  await b.h.kv.set(
    keys.usagePeriod(tenantId, VERIFICATIONS, period),
    new Deno.KvU64(BigInt(units)),
  );
}

const reported = (b: Billing) =>
  [...b.stripe.meterEvents.values()].map((e) => [e.event_name, e.payload.value]);

Deno.test("overage: units above the quota reach the plan's meter once, then only what is new", async () => {
  await using b = await billingSetup();
  const { tenantId, customer } = await meteredTenant(b);
  await used(b, tenantId, 8);
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 0, units: 0 }, "within the quota");
  await used(b, tenantId, 15);
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 1, units: 5 });
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 0, units: 0 }, "nothing new");
  await used(b, tenantId, 18);
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 1, units: 3 });
  assert.deepEqual(reported(b), [["api_overage", "5"], ["api_overage", "3"]]);
  for (const e of b.stripe.meterEvents.values()) {
    assert.equal(e.payload.stripe_customer_id, customer);
  }
  // A plan without a meter bills no overage.
  const other = await b.h.call("PATCH", "/v1/plans/metered", {
    token: b.h.root,
    body: { stripe_meter_event_name: null },
  });
  assert.equal(other.status, 200, other.text);
  await used(b, tenantId, 30);
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 0, units: 0 });
});

Deno.test("overage: a crash after the meter event was sent, before it was recorded, bills nothing twice", async () => {
  await using b = await billingSetup();
  const { tenantId, customer } = await meteredTenant(b);
  await used(b, tenantId, 14);
  // The intent was committed and the event sent; the process died before recording it.
  const identifier = `${tenantId}:crash:0-4`;
  const period = new Date(quotaPeriod("month", b.h.clock.now).start).toISOString();
  const intent: OverageReport = { period, reported: 0, pending: { to: 4, identifier } };
  await b.h.kv.set(keys.overageReport(tenantId), intent);
  await b.stripe.access.client.billing.meterEvents.create({
    event_name: "api_overage",
    identifier,
    payload: { stripe_customer_id: customer, value: "4" },
  });
  // More usage meanwhile: the pending report is resent as it was (a no-op), then the rest.
  await used(b, tenantId, 16);
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 1, units: 4 });
  assert.deepEqual(await reportOverage(b.h.svc), { tenants: 1, units: 2 });
  assert.deepEqual(reported(b), [["api_overage", "4"], ["api_overage", "2"]]);
  const stored = (await b.h.kv.get<OverageReport>(keys.overageReport(tenantId))).value!;
  assert.deepEqual([stored.reported, stored.pending], [6, null]);
});

Deno.test("overage: nothing is reported without Stripe", async () => {
  await using b = await billingSetup();
  const { tenantId } = await meteredTenant(b);
  await used(b, tenantId, 50);
  assert.deepEqual(await reportOverage({ ...b.h.svc, stripe: null }), { tenants: 0, units: 0 });
});
