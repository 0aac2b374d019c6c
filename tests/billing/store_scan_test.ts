/**
 * Steward holds Stripe's secret API key and webhook secret in memory only: after every flow that
 * uses them (checkout, portal, deliveries, syncs, reconciliation, price checks), the store has
 * neither, nor anything shaped like a Stripe secret.
 */
import assert from "node:assert/strict";
import { BILLING_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { STRIPE_KEY, WEBHOOK_SECRET } from "../_stripe.ts";
import { billingSetup } from "./_billing.ts";

Deno.test("store scan: no Stripe secret key or webhook secret anywhere in KV", async () => {
  await using b = await billingSetup();
  const as = { token: b.h.root };
  const t = await b.h.tenant("acme");
  const checkout = await b.h.call("POST", "/v1/tenants/acme/billing/checkout", {
    ...as,
    body: {
      plan_code: "pro",
      success_url: "https://app.acme.test/done",
      cancel_url: "https://app.acme.test/billing",
    },
  });
  assert.equal(checkout.status, 201, checkout.text);
  await b.h.call("POST", "/v1/tenants/acme/billing/portal", {
    ...as,
    body: { return_url: "https://app.acme.test/billing" },
  });
  const { session, subscription } = b.stripe.completeCheckout(checkout.body.data.id);
  await b.send("checkout.session.completed", session);
  await b.send("customer.subscription.created", subscription);
  const invoice = b.stripe.addInvoice({
    customer: subscription.customer,
    subscription: subscription.id,
    amount_due: 4900,
    status: "paid",
  });
  await b.send("invoice.paid", invoice);
  // A refused delivery too: its header and body are not kept either.
  await b.stripe.deliver(b.h, b.stripe.event("invoice.paid", invoice), {
    secret: "whsec_Other1234",
  });
  await b.h.call("POST", "/v1/admin/finance/sync-transaction", {
    ...as,
    body: { object: "subscription", id: subscription.id },
  });
  await b.h.call("POST", "/v1/admin/finance/reconcile", as);
  while (await b.h.runJobs(JOB_HANDLERS, { queue: BILLING_QUEUE }));
  await b.h.runJobs();
  await b.h.svc.aggregator.flush();
  assert.equal((await b.subscription(t.id))?.plan_code, "pro", "the flows ran");

  const dump = await b.h.dump();
  for (const secret of [STRIPE_KEY, WEBHOOK_SECRET]) {
    assert.ok(!dump.includes(secret), `${secret.slice(0, 8)}… is in the store`);
  }
  assert.doesNotMatch(dump, /\b(sk|rk)_(live|test)_[0-9A-Za-z]{20,}/);
  assert.doesNotMatch(dump, /whsec_[0-9A-Za-z]{8,}/);
});
