/**
 * Applying invoice, refund and customer events: the invoice records and their tenant pointers,
 * `amount_refunded` from `charge.refunded` (the invoice fetched when Steward has none), customer
 * links, and the outbound events they emit, checked against the event catalog's examples.
 */
import assert from "node:assert/strict";
import { EVENT_CATALOG } from "../../domain/audit/event_catalog.ts";
import type { DomainEvent } from "../../domain/audit/events.ts";
import { BILLING_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { keys } from "../../kv/keys.ts";
import { type Billing, billingSetup } from "./_billing.ts";

const applyJobs = (b: Billing) => b.h.runJobs(JOB_HANDLERS, { queue: BILLING_QUEUE });

/** A tenant subscribed to pro, with its subscription applied. */
async function subscribed(b: Billing, slug = "acme") {
  const t = await b.h.tenant(slug);
  const sub = b.subscribe(t.id, b.prices.pro);
  await b.send("customer.subscription.created", sub);
  await applyJobs(b);
  return { tenant: t, sub };
}

Deno.test("invoices: finalized, then paid, then partly refunded; each recorded and audited", async () => {
  await using b = await billingSetup();
  const { tenant, sub } = await subscribed(b);
  const invoice = b.stripe.addInvoice({
    customer: sub.customer,
    subscription: sub.id,
    amount_due: 4900,
    status: "open",
  });
  await b.send("invoice.finalized", invoice);
  await applyJobs(b);
  let record = await b.invoice(invoice.id);
  assert.deepEqual(
    [
      record?.tenant_id,
      record?.status,
      record?.amount_due,
      record?.amount_paid,
      record?.subscription_id,
    ],
    [tenant.id, "open", 4900, 0, sub.id],
  );
  assert.equal(record?.hosted_invoice_url, invoice.hosted_invoice_url);
  assert.equal(record?.number, invoice.number);
  const pointer = await b.h.kv.get(keys.tenantInvoice(tenant.id, invoice.created, invoice.id));
  assert.equal(pointer.value, invoice.id);

  b.h.advance(60_000);
  Object.assign(invoice, { status: "paid", amount_paid: 4900, amount_remaining: 0 });
  invoice.status_transitions.paid_at = b.stripe.seconds();
  await b.send("invoice.paid", invoice);
  await applyJobs(b);
  record = await b.invoice(invoice.id);
  assert.equal(record?.status, "paid");
  assert.equal(record?.amount_paid, 4900);
  assert.equal(record?.paid_at, "2026-03-01T12:01:00.000Z");

  b.h.advance(60_000);
  await b.send("charge.refunded", b.stripe.chargeFor(invoice.id, 1000));
  await applyJobs(b);
  record = await b.invoice(invoice.id);
  assert.equal(record?.amount_refunded, 1000);
  assert.equal(record?.status, "paid");

  const actions = (await b.h.auditFor(invoice.id)).map((e) => [e.action, e.actor_id]).reverse();
  assert.deepEqual(actions, [
    ["invoice.finalized", "system"],
    ["invoice.paid", "system"],
    ["invoice.refunded", "system"],
  ]);

  // An older invoice.paid arriving now is stale: the refund stays.
  const late = await b.send("invoice.paid", invoice, { created: invoice.created });
  await applyJobs(b);
  assert.equal((await b.event(late.id))?.status, "stale");
  assert.equal((await b.invoice(invoice.id))?.amount_refunded, 1000);
});

Deno.test("invoices: a failed payment is kept with its time, and mailed to the tenant's owners", async () => {
  await using b = await billingSetup();
  const { tenant, sub } = await subscribed(b);
  const owner = await b.h.user(null, "owner@acme.example.com");
  await b.h.member(tenant.id, owner.id, "owner");
  const invoice = b.stripe.addInvoice({
    customer: sub.customer,
    subscription: sub.id,
    amount_due: 4900,
  });
  b.h.advance(3_600_000);
  await b.send("invoice.payment_failed", invoice);
  await applyJobs(b);
  const record = await b.invoice(invoice.id);
  assert.equal(record?.payment_failed_at, "2026-03-01T13:00:00.000Z");
  assert.equal(record?.status, "open");
  assert.equal((await b.h.auditFor(invoice.id))[0].action, "invoice.payment_failed");
  const mails = await b.h.call("GET", "/v1/admin/emails?template=payment_failed", {
    token: b.h.root,
  });
  assert.deepEqual(mails.body.data.map((m: { to: string }) => m.to), ["owner@acme.example.com"]);
  const mail = await b.h.call("GET", `/v1/admin/emails/${mails.body.data[0].id}`, {
    token: b.h.root,
  });
  assert.match(mail.body.data.text, /The payment of \$49\.00 for invoice/);
  // A redelivery of the same failure mails nobody again.
  await b.send("invoice.payment_failed", invoice);
  await applyJobs(b);
  const again = await b.h.call("GET", "/v1/admin/emails?template=payment_failed", {
    token: b.h.root,
  });
  assert.equal(again.body.pagination.total, 1);
});

Deno.test("invoices: a refund of an invoice Steward has not recorded fetches it from Stripe", async () => {
  await using b = await billingSetup();
  const { tenant, sub } = await subscribed(b);
  const invoice = b.stripe.addInvoice({
    customer: sub.customer,
    subscription: sub.id,
    amount_due: 4900,
    status: "paid",
  });
  await b.send("charge.refunded", b.stripe.chargeFor(invoice.id, 4900));
  await applyJobs(b);
  const record = await b.invoice(invoice.id);
  assert.equal(record?.tenant_id, tenant.id);
  assert.equal(record?.status, "paid");
  assert.equal(record?.amount_refunded, 4900);
  assert.equal(b.stripe.calls("GET", `/v1/invoices/${invoice.id}`).length, 1);
});

Deno.test("invoices: a refund of a charge that paid no invoice is ignored", async () => {
  await using b = await billingSetup();
  const charge = {
    id: "ch_OneOff0001",
    object: "charge",
    amount: 500,
    amount_refunded: 500,
    currency: "usd",
    customer: null,
    payment_intent: "pi_OneOff0001",
  };
  const event = await b.send("charge.refunded", charge);
  await applyJobs(b);
  assert.equal((await b.event(event.id))?.status, "ignored");
});

Deno.test("invoices: found by their subscription's metadata when the customer is unknown", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const customer = b.stripe.addCustomer();
  const sub = b.stripe.addSubscription({
    customer: customer.id,
    price: b.prices.pro.id,
    metadata: { tenant_id: t.id },
  });
  const invoice = b.stripe.addInvoice({
    customer: customer.id,
    subscription: sub.id,
    amount_due: 4900,
  });
  const event = await b.send("invoice.finalized", invoice);
  await applyJobs(b);
  assert.equal((await b.event(event.id))?.status, "applied");
  assert.equal((await b.invoice(invoice.id))?.tenant_id, t.id);
});

Deno.test("customers: customer.updated links a customer whose metadata names the tenant", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const customer = b.stripe.addCustomer({ metadata: { tenant_id: t.id } });
  await b.send("customer.updated", customer);
  await applyJobs(b);
  assert.equal((await b.h.kv.get(keys.stripeCustomer(customer.id))).value, t.id);
  assert.equal((await b.h.kv.get(keys.tenantStripeCustomer(t.id))).value, customer.id);
  const [linked] = await b.h.auditFor(customer.id);
  assert.equal(linked.action, "billing.customer_linked");

  // Told again: nothing more.
  b.h.advance(1_000);
  await b.send("customer.updated", customer);
  await applyJobs(b);
  assert.equal((await b.h.auditFor(customer.id)).length, 1);

  // A customer that is another tenant's is refused.
  const other = await b.h.tenant("globex");
  b.stripe.customers.get(customer.id)!.metadata.tenant_id = other.id;
  const moved = await b.send("customer.updated", b.stripe.customers.get(customer.id)!);
  await applyJobs(b);
  assert.match((await b.event(moved.id))?.error ?? "", /belongs to tenant ten_/);
});

Deno.test("events: the billing events Steward emits have exactly the catalog's example fields", async () => {
  await using b = await billingSetup();
  const { tenant, sub } = await subscribed(b);
  const invoice = b.stripe.addInvoice({
    customer: sub.customer,
    subscription: sub.id,
    amount_due: 4900,
  });
  await b.send("customer.updated", b.stripe.customers.get(sub.customer)!);
  await b.send("invoice.finalized", invoice);
  await b.send("invoice.payment_failed", invoice);
  await applyJobs(b);
  Object.assign(invoice, { status: "paid", amount_paid: 4900 });
  b.h.advance(1_000);
  await b.send("invoice.paid", invoice);
  await applyJobs(b);
  b.h.advance(1_000);
  await b.send("charge.refunded", b.stripe.chargeFor(invoice.id, 100));
  b.stripe.setPrice(sub.id, b.prices.growth.id);
  await b.send("customer.subscription.updated", sub);
  await applyJobs(b);
  b.h.advance(1_000);
  await b.send("customer.subscription.deleted", b.stripe.cancel(sub.id));
  await applyJobs(b);
  b.stripe.addInvoice({
    id: "in_Synced0001",
    customer: sub.customer,
    amount_due: 100,
    status: "void",
  });
  await b.h.call("POST", "/v1/admin/finance/sync-transaction", {
    token: b.h.root,
    body: { object: "invoice", id: "in_Synced0001" },
  });
  await b.h.call("POST", "/v1/admin/finance/reconcile", { token: b.h.root });
  while (await applyJobs(b));

  const examples = new Map(EVENT_CATALOG.map((e) => [e.type, e.example]));
  const seen = new Set<string>();
  for await (const { value: event } of b.h.kv.list<DomainEvent>({ prefix: keys.events() })) {
    const example = examples.get(event.type);
    assert.ok(example, `${event.type} is not in the catalog`);
    assert.deepEqual(Object.keys(event.data).sort(), Object.keys(example).sort(), event.type);
    seen.add(event.type);
  }
  for (
    const type of [
      "subscription.created",
      "subscription.updated",
      "subscription.canceled",
      "invoice.finalized",
      "invoice.payment_failed",
      "invoice.paid",
      "invoice.refunded",
      "invoice.updated",
      "billing.customer_linked",
      "billing.reconcile_started",
      "billing.reconciled",
      "tenant.plan_changed",
    ]
  ) {
    assert.ok(seen.has(type), `no ${type} was emitted`);
  }
  assert.ok(tenant.id);
});
