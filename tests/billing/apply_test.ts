/**
 * Applying Stripe's subscription events: the record, the tenant's plan following it in the same
 * commit (and falling back to free when it ends), MRR changes, out-of-order events, the override
 * that an event never reverts and whose clearing applies the subscription, a crash between receipt
 * and processing, Stripe failing meanwhile, and an event that maps to no tenant.
 */
import assert from "node:assert/strict";
import type { MrrChange } from "../../domain/billing/model.ts";
import type { JobHandlers } from "../../domain/jobs/jobs.ts";
import { BILLING_QUEUE, STRIPE_APPLY_JOB } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { VERIFICATIONS } from "../../domain/tenancy/plans.ts";
import { keys } from "../../kv/keys.ts";
import { type Billing, billingSetup } from "./_billing.ts";

const applyJobs = (b: Billing, handlers: JobHandlers = JOB_HANDLERS) =>
  b.h.runJobs(handlers, { queue: BILLING_QUEUE });

async function mrrChanges(b: Billing): Promise<MrrChange[]> {
  const out: MrrChange[] = [];
  for await (const e of b.h.kv.list<MrrChange>({ prefix: keys.mrrChanges() })) out.push(e.value);
  return out;
}

async function jobsOf(b: Billing) {
  const res = await b.h.call("GET", `/v1/admin/system/queues/${BILLING_QUEUE}/jobs`, {
    token: b.h.root,
  });
  return res.body.data as { id: string; status: string; attempts: number; last_error: string }[];
}

Deno.test("apply: a subscription is recorded and the tenant's plan follows it in the same commit", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.pro);
  const event = await b.send("customer.subscription.created", sub);
  assert.equal(await applyJobs(b), 1);

  const record = await b.subscription(t.id);
  assert.deepEqual(
    {
      subscription_id: record?.subscription_id,
      customer_id: record?.customer_id,
      status: record?.status,
      plan_code: record?.plan_code,
      price_id: record?.price_id,
      amount: record?.amount,
      currency: record?.currency,
      interval: record?.interval,
      mrr: record?.mrr,
      stripe_at: record?.stripe_at,
    },
    {
      subscription_id: sub.id,
      customer_id: sub.customer,
      status: "active",
      plan_code: "pro",
      price_id: b.prices.pro.id,
      amount: 4900,
      currency: "usd",
      interval: "month",
      mrr: 4900,
      stripe_at: event.created,
    },
  );
  const tenant = await b.tenant(t.id);
  assert.equal(tenant.plan, "pro");
  // One commit: the subscription and the tenant carry the same versionstamp.
  const [s, te] = await b.h.kv.getMany([keys.subscription(t.id), keys.tenant(t.id)]);
  assert.equal(s.versionstamp, te.versionstamp);

  const stored = await b.event(event.id);
  assert.equal(stored?.status, "applied");
  assert.equal(stored?.tenant_id, t.id);
  assert.deepEqual(
    (await mrrChanges(b)).map((
      m,
    ) => [m.tenant_id, m.plan_before, m.plan_after, m.mrr_before, m.mrr_after]),
    [[t.id, null, "pro", 0, 4900]],
  );
  const subAudit = await b.h.auditFor(sub.id);
  assert.deepEqual(subAudit.map((e) => [e.action, e.actor_id]), [[
    "subscription.created",
    "system",
  ]]);
  const tenantAudit = (await b.h.auditFor(t.id)).filter((e) => e.action === "tenant.plan_changed");
  assert.equal(tenantAudit[0].actor_id, "system");
  assert.deepEqual(tenantAudit[0].changes?.plan, { before: "free", after: "pro" });
});

Deno.test("apply: a yearly price counts a twelfth per month; a cancellation drops the tenant to free", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.starter);
  await b.send("customer.subscription.created", sub);
  await applyJobs(b);
  assert.equal((await b.subscription(t.id))?.mrr, Math.round(10_000_000 / 12));
  assert.equal((await b.tenant(t.id)).plan, "starter");

  b.h.advance(60_000);
  await b.send("customer.subscription.deleted", b.stripe.cancel(sub.id));
  await applyJobs(b);
  const record = await b.subscription(t.id);
  assert.equal(record?.status, "canceled");
  assert.equal(record?.mrr, 0);
  assert.ok(record?.canceled_at);
  assert.equal((await b.tenant(t.id)).plan, "free");
  assert.deepEqual((await mrrChanges(b)).map((m) => [m.mrr_before, m.mrr_after]), [
    [0, 833_333],
    [833_333, 0],
  ]);
  assert.ok((await b.h.auditFor(sub.id)).some((e) => e.action === "subscription.canceled"));
});

Deno.test("apply: a move to a yearly quota carries the year's verifications over, as changePlan does", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  // Free's quota is monthly; starter's is yearly: the year so far counts towards it.
  await b.h.kv.set(keys.usageDaily(t.id, VERIFICATIONS, "2026-01-10"), new Deno.KvU64(7n));
  await b.h.kv.set(keys.usageDaily(t.id, VERIFICATIONS, "2026-03-01"), new Deno.KvU64(5n));
  await b.send("customer.subscription.created", b.subscribe(t.id, b.prices.starter));
  await applyJobs(b);
  assert.equal((await b.tenant(t.id)).plan, "starter");
  const year = await b.h.kv.get<Deno.KvU64>(keys.usagePeriod(t.id, VERIFICATIONS, "2026"));
  assert.equal(year.value?.value, 12n);
  // Written in the commit that moved the tenant.
  assert.equal(year.versionstamp, (await b.h.kv.get(keys.tenant(t.id))).versionstamp);
});

Deno.test("apply: events out of order: an older state than the one held is stale and changes nothing", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.pro);
  const t0 = b.stripe.seconds();
  const older = b.stripe.event("customer.subscription.updated", sub, { created: t0 + 10 });
  b.stripe.setPrice(sub.id, b.prices.growth.id);
  sub.status = "past_due";
  const newer = b.stripe.event("customer.subscription.updated", sub, { created: t0 + 20 });
  const created = b.stripe.event("customer.subscription.created", sub, { created: t0 });

  // Stripe delivers the newest first, then the two before it.
  for (const event of [newer, older, created]) {
    assert.equal((await b.stripe.deliver(b.h, event)).status, 200);
    await applyJobs(b);
  }
  assert.equal((await b.event(newer.id))?.status, "applied");
  assert.equal((await b.event(older.id))?.status, "stale");
  assert.equal((await b.event(created.id))?.status, "stale");
  const record = await b.subscription(t.id);
  assert.equal(record?.status, "past_due");
  assert.equal(record?.plan_code, "growth");
  assert.equal(record?.stripe_at, t0 + 20);
  assert.equal((await b.tenant(t.id)).plan, "growth");
  assert.equal((await b.h.auditFor(sub.id)).length, 1, "the stale ones wrote nothing");
});

Deno.test("apply: an override is not reverted by customer.subscription.updated; clearing it applies the subscription", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.pro);
  await b.send("customer.subscription.created", sub);
  await applyJobs(b);
  assert.equal((await b.tenant(t.id)).plan, "pro");

  const override = await b.h.call("PATCH", "/v1/tenants/acme/billing", {
    token: b.h.root,
    body: { plan_code: "enterprise", override: true, reason: "signed contract #42" },
  });
  assert.equal(override.status, 200, override.text);

  b.h.advance(60_000);
  b.stripe.setPrice(sub.id, b.prices.growth.id);
  await b.send("customer.subscription.updated", sub);
  await applyJobs(b);
  assert.equal((await b.subscription(t.id))?.plan_code, "growth", "the subscription is recorded");
  let tenant = await b.tenant(t.id);
  assert.equal(tenant.plan, "enterprise", "the plan is left as overridden");
  assert.equal(tenant.plan_override, true);

  // Nor does its end.
  b.h.advance(60_000);
  sub.status = "unpaid";
  await b.send("customer.subscription.updated", sub);
  await applyJobs(b);
  assert.equal((await b.subscription(t.id))?.status, "unpaid");
  assert.equal((await b.tenant(t.id)).plan, "enterprise");

  b.h.advance(60_000);
  sub.status = "active";
  await b.send("customer.subscription.updated", sub);
  await applyJobs(b);

  // Staff clear the override: the subscription's plan applies, in the answer too.
  const cleared = await b.h.call("PATCH", "/v1/tenants/acme/billing", {
    token: b.h.root,
    body: { plan_code: "pro", override: false },
  });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.data.plan.code, "growth");
  assert.equal(cleared.body.data.override, false);
  tenant = await b.tenant(t.id);
  assert.equal(tenant.plan, "growth");
  assert.equal(tenant.plan_override, false);
  assert.equal(
    cleared.headers.get("ETag"),
    `"${(await b.h.kv.get(keys.tenant(t.id))).versionstamp}"`,
  );
  const changes = (await b.h.auditFor(t.id)).filter((e) => e.action === "tenant.plan_changed");
  assert.deepEqual(changes.slice(0, 2).map((e) => e.changes?.plan), [
    { before: "pro", after: "growth" },
    { before: "enterprise", after: "pro" },
  ]);

  // From now on the plan follows again.
  b.h.advance(60_000);
  b.stripe.setPrice(sub.id, b.prices.pro.id);
  await b.send("customer.subscription.updated", sub);
  await applyJobs(b);
  assert.equal((await b.tenant(t.id)).plan, "pro");
});

Deno.test("apply: clearing an override on a tenant without a subscription keeps the plan given", async () => {
  await using b = await billingSetup();
  await b.h.tenant("acme");
  const res = await b.h.call("PATCH", "/v1/tenants/acme/billing", {
    token: b.h.root,
    body: { plan_code: "scale", override: false },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.plan.code, "scale");
});

Deno.test("apply: a crash between receipt and processing loses nothing: the stored event is applied when the job runs", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const sub = b.subscribe(t.id, b.prices.pro);
  const event = await b.send("customer.subscription.created", sub);

  // Acknowledged to Stripe; the process dies before any job runs.
  assert.equal((await b.event(event.id))?.status, "queued");
  assert.ok((await b.h.kv.get(keys.stripeEventObject(event.id))).value);
  assert.deepEqual((await jobsOf(b)).map((j) => j.status), ["pending"]);
  assert.equal(await b.subscription(t.id), null);
  assert.equal((await b.tenant(t.id)).plan, "free");

  // The next process's runner dies inside the job, before it commits anything.
  const dying: JobHandlers = {
    ...JOB_HANDLERS,
    [STRIPE_APPLY_JOB]: () => Promise.reject(new Error("worker killed")),
  };
  assert.equal(await applyJobs(b, dying), 1);
  assert.equal((await b.event(event.id))?.status, "queued");
  assert.deepEqual((await jobsOf(b)).map((j) => [j.status, j.last_error]), [
    ["failed", "worker killed"],
  ]);

  // A runner after it (the retry is due after the backoff) applies it.
  b.h.advance(31_000);
  assert.equal(await applyJobs(b), 1);
  assert.equal((await b.event(event.id))?.status, "applied");
  assert.equal((await b.subscription(t.id))?.plan_code, "pro");
  assert.equal((await b.tenant(t.id)).plan, "pro");
});

Deno.test("apply: Stripe failing while an event is applied: the job retries, the event waits", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const customer = b.stripe.addCustomer({ metadata: { tenant_id: t.id } });
  const sub = b.stripe.addSubscription({
    customer: customer.id,
    price: b.prices.pro.id,
    metadata: { tenant_id: t.id },
  });
  const session = {
    id: "cs_test_Completed0001",
    object: "checkout.session",
    customer: customer.id,
    subscription: sub.id,
    metadata: { tenant_id: t.id },
    mode: "subscription",
    status: "complete",
  };
  const event = await b.send("checkout.session.completed", session);
  b.stripe.fail(1, 500);
  await applyJobs(b);
  assert.equal((await b.event(event.id))?.status, "queued");
  const [job] = await jobsOf(b);
  assert.equal(job.status, "failed");
  assert.match(job.last_error, /^Stripe: /);

  b.h.advance(31_000);
  await applyJobs(b);
  assert.equal((await b.event(event.id))?.status, "applied");
  assert.equal((await b.subscription(t.id))?.subscription_id, sub.id);
  assert.equal((await b.h.kv.get(keys.stripeCustomer(customer.id))).value, t.id);
});

Deno.test("apply: what Stripe refuses (no such subscription) fails the event at once, with why", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const event = await b.send("checkout.session.completed", {
    id: "cs_test_Gone0001",
    object: "checkout.session",
    customer: null,
    subscription: "sub_DoesNotExist",
    metadata: { tenant_id: t.id },
  });
  await applyJobs(b);
  const stored = await b.event(event.id);
  assert.equal(stored?.status, "failed");
  assert.match(stored?.error ?? "", /No such subscription: 'sub_DoesNotExist'/);
  // Its job is dead with the same error, for an operator to retry.
  const [job] = await jobsOf(b);
  assert.equal(job.status, "dead");
  assert.equal(job.last_error, stored?.error);
});

Deno.test("apply: an event that maps to no tenant fails with a clear error, and applies once retried after a link", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const customer = b.stripe.addCustomer();
  const sub = b.stripe.addSubscription({ customer: customer.id, price: b.prices.pro.id });
  const event = await b.send("customer.subscription.created", sub);
  await applyJobs(b);
  const stored = await b.event(event.id);
  assert.equal(stored?.status, "failed");
  assert.equal(stored?.tenant_id, null);
  assert.equal(
    stored?.error,
    `subscription ${sub.id}: no tenant: no metadata.tenant_id, and customer ${customer.id} ` +
      "is not linked to a tenant",
  );
  assert.ok((await b.h.kv.get(keys.stripeEventObject(event.id))).value, "kept to retry");

  // An operator links the customer (its metadata now names the tenant) and retries the job.
  b.stripe.customers.get(customer.id)!.metadata.tenant_id = t.id;
  const sync = await b.h.call("POST", "/v1/admin/finance/sync-transaction", {
    token: b.h.root,
    body: { object: "customer", id: customer.id },
  });
  assert.equal(sync.status, 200, sync.text);
  const [job] = await jobsOf(b);
  const retry = await b.h.call("POST", `/v1/admin/system/jobs/${job.id}/retry`, {
    token: b.h.root,
  });
  assert.equal(retry.status, 200, retry.text);
  await applyJobs(b);
  assert.equal((await b.event(event.id))?.status, "applied");
  assert.equal((await b.tenant(t.id)).plan, "pro");
});

Deno.test("apply: metadata naming no tenant fails the event", async () => {
  await using b = await billingSetup();
  const sub = b.subscribe("ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", b.prices.pro);
  const event = await b.send("customer.subscription.created", sub);
  await applyJobs(b);
  assert.equal(
    (await b.event(event.id))?.error,
    `subscription ${sub.id}: metadata.tenant_id names no tenant: ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A`,
  );
});

Deno.test("apply: a newer live subscription of the tenant is not replaced by its old one ending", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const old = b.subscribe(t.id, b.prices.pro);
  await b.send("customer.subscription.created", old);
  await applyJobs(b);
  b.h.advance(60_000);
  const next = b.stripe.addSubscription({
    customer: old.customer,
    price: b.prices.growth.id,
    metadata: { tenant_id: t.id },
  });
  await b.send("customer.subscription.created", next);
  await applyJobs(b);
  b.h.advance(60_000);
  const ended = await b.send("customer.subscription.deleted", b.stripe.cancel(old.id));
  await applyJobs(b);
  assert.equal((await b.event(ended.id))?.status, "stale");
  assert.equal((await b.subscription(t.id))?.subscription_id, next.id);
  assert.equal((await b.tenant(t.id)).plan, "growth");
});
