/**
 * A harness with Stripe: the app on the fake Stripe API (tests/_stripe.ts), on the harness's
 * clock, with the plans `pro` (monthly) and `starter` (yearly) sold at prices the fake holds, and
 * helpers to deliver events and read the billing records.
 */
import assert from "node:assert/strict";
import type { Invoice, StripeEventRecord, Subscription } from "../../domain/billing/model.ts";
import type { Tenant } from "../../domain/tenancy/tenants.ts";
import { keys } from "../../kv/keys.ts";
import { type HarnessOptions, setup } from "../_harness.ts";
import { stripeFake } from "../_stripe.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

export async function billingSetup(opts: HarnessOptions = {}) {
  const stripe = stripeFake();
  const h = await setup({ ...opts, stripe: stripe.access });
  stripe.now = () => h.clock.now;
  const prices = {
    pro: stripe.addPrice({ unit_amount: 4900, interval: "month" }),
    starter: stripe.addPrice({ unit_amount: 10_000_000, interval: "year" }),
    growth: stripe.addPrice({ unit_amount: 25_000_000, interval: "year" }),
  };
  for (const [code, price] of Object.entries(prices)) {
    const res = await h.call("PATCH", `/v1/plans/${code}`, {
      token: h.root,
      body: { stripe_price_id: price.id },
    });
    assert.equal(res.status, 200, res.text);
  }

  const b = {
    h,
    stripe,
    prices,
    /** Delivers `type` carrying `object`, signed; asserts Steward took it. */
    async send(type: string, object: Obj, opts: { created?: number; id?: string } = {}) {
      const event = stripe.event(type, object, opts);
      const res = await stripe.deliver(h, event);
      assert.equal(res.status, 200, res.text);
      return event;
    },
    /** A customer of tenant `tenantId` (metadata.tenant_id) with a subscription to `price`. */
    subscribe(
      tenantId: string,
      price: Obj,
      extra: Partial<Parameters<typeof stripe.addSubscription>[0]> = {},
    ) {
      const customer = stripe.addCustomer({ metadata: { tenant_id: tenantId } });
      return stripe.addSubscription({
        customer: customer.id,
        price: price.id,
        metadata: { tenant_id: tenantId },
        ...extra,
      });
    },
    subscription: async (tenantId: string) =>
      (await h.kv.get<Subscription>(keys.subscription(tenantId))).value,
    invoice: async (id: string) => (await h.kv.get<Invoice>(keys.invoice(id))).value,
    event: async (id: string) => (await h.kv.get<StripeEventRecord>(keys.stripeEvent(id))).value,
    tenant: async (id: string) => (await h.kv.get<Tenant>(keys.tenant(id))).value!,
    async [Symbol.asyncDispose]() {
      await h[Symbol.asyncDispose]();
      await stripe[Symbol.asyncDispose]();
    },
  };
  return b;
}

export type Billing = Awaited<ReturnType<typeof billingSetup>>;
