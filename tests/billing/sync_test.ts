/**
 * POST /v1/admin/finance/sync-transaction: one Stripe object fetched and applied now, answering
 * what changed; 404 for what Stripe does not have, 409 for what belongs to no tenant, who may
 * call it.
 */
import assert from "node:assert/strict";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";
import { billingSetup } from "./_billing.ts";

const SYNC = "/v1/admin/finance/sync-transaction";

Deno.test("sync: a subscription fetched and applied now; before and after, then unchanged", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.pro);
  const as = { token: b.h.root };

  const first = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "subscription", id: sub.id },
  });
  assert.equal(first.status, 200, first.text);
  const data = first.body.data;
  assert.equal(data.result, "updated");
  assert.equal(data.tenant_id, t.id);
  assert.equal(data.changes.length, 1);
  assert.deepEqual(
    [data.changes[0].record, data.changes[0].id, data.changes[0].before],
    ["subscription", sub.id, null],
  );
  assert.equal(data.changes[0].after.plan_code, "pro");
  assert.equal((await b.tenant(t.id)).plan, "pro");
  // Audited as the caller.
  const [created] = await b.h.auditFor(sub.id);
  assert.equal(created.action, "subscription.created");
  assert.notEqual(created.actor_id, "system");

  b.h.advance(60_000);
  const same = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "subscription", id: sub.id },
  });
  assert.equal(same.body.data.result, "unchanged");
  assert.deepEqual(same.body.data.changes, []);

  // A fetch is the newest state: it applies over an event dated later (a skewed clock).
  b.stripe.setPrice(sub.id, b.prices.growth.id);
  await b.send("customer.subscription.updated", { ...sub, status: "past_due" }, {
    created: b.stripe.seconds() + 3_600,
  });
  await b.h.runJobs();
  assert.equal((await b.subscription(t.id))?.status, "past_due");
  const moved = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "subscription", id: sub.id },
  });
  assert.equal(moved.body.data.result, "updated");
  const [change] = moved.body.data.changes;
  assert.deepEqual([change.before.status, change.after.status], ["past_due", "active"]);
  assert.equal(change.after.plan_code, "growth");
  assert.equal((await b.tenant(t.id)).plan, "growth");
});

Deno.test("sync: an invoice, a customer and a checkout session", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const as = { token: b.h.root };
  const customer = b.stripe.addCustomer({ metadata: { tenant_id: t.id } });

  const linked = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "customer", id: customer.id },
  });
  assert.equal(linked.status, 200, linked.text);
  assert.deepEqual(linked.body.data.changes, [{
    record: "customer",
    id: customer.id,
    before: null,
    after: { tenant_id: t.id, customer_id: customer.id },
  }]);

  const invoice = b.stripe.addInvoice({ customer: customer.id, amount_due: 1200, status: "paid" });
  const synced = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "invoice", id: invoice.id },
  });
  assert.equal(synced.body.data.changes[0].after.status, "paid");
  assert.equal((await b.invoice(invoice.id))?.tenant_id, t.id);
  assert.equal((await b.h.auditFor(invoice.id))[0].action, "invoice.paid");

  const checkout = await b.h.call("POST", "/v1/tenants/acme/billing/checkout", {
    ...as,
    body: {
      plan_code: "starter",
      success_url: "https://app.acme.test/done",
      cancel_url: "https://app.acme.test/billing",
    },
  });
  const { subscription } = b.stripe.completeCheckout(checkout.body.data.id);
  const session = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "checkout_session", id: checkout.body.data.id },
  });
  assert.equal(session.status, 200, session.text);
  assert.deepEqual(session.body.data.changes.map((c: { record: string }) => c.record), [
    "subscription",
  ]);
  assert.equal((await b.subscription(t.id))?.subscription_id, subscription.id);
  assert.equal((await b.tenant(t.id)).plan, "starter");
});

Deno.test("sync: 404 for what Stripe does not have, 409 for what is no tenant's, 400 for a mismatched id", async () => {
  await using b = await billingSetup();
  const as = { token: b.h.root };
  const missing = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "subscription", id: "sub_DoesNotExist" },
  });
  assertError(missing, 404, "NOT_FOUND");
  assert.match(missing.body.error.message, /No such subscription/);

  const stray = b.stripe.addSubscription({
    customer: b.stripe.addCustomer().id,
    price: b.prices.pro.id,
  });
  const unmapped = await b.h.call("POST", SYNC, {
    ...as,
    body: { object: "subscription", id: stray.id },
  });
  assertError(unmapped, 409, "CONFLICT");
  assert.match(unmapped.body.error.message, /is not linked to a tenant/);

  assertInvalid(
    await b.h.call("POST", SYNC, { ...as, body: { object: "invoice", id: stray.id } }),
    "json.id",
  );
  assertInvalid(
    await b.h.call("POST", SYNC, { ...as, body: { object: "charge", id: "ch_1" } }),
    "json.object",
  );
});

Deno.test("sync: platform staff with billing:write only", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.pro);
  const body = { object: "subscription", id: sub.id };
  assertError(await b.h.call("POST", SYNC, { body }), 401, "UNAUTHORIZED");
  const owner = await memberOf(b.h, t.id, "owner");
  const bound = await b.h.serviceToken(["billing:write"], t.id);
  for (const who of [owner, await b.h.user("support"), await b.h.user("ops"), bound]) {
    assertError(await b.h.call("POST", SYNC, { token: who.token, body }), 403, "FORBIDDEN");
  }
  const finance = await b.h.user("finance");
  assert.equal((await b.h.call("POST", SYNC, { token: finance.token, body })).status, 200);
});
