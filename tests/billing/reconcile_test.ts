/**
 * Reconciliation with Stripe: a job in steps that pages through every Stripe subscription and
 * fixes drift (a record that differs, one missing on either side), leaves overridden plans, and
 * reports its counts in the job and the audit trail; one at a time; who may start it.
 */
import assert from "node:assert/strict";
import { type ReconcilePayload, startReconcile } from "../../domain/billing/reconcile.ts";
import { getJob } from "../../domain/jobs/jobs.ts";
import { BILLING_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { SYSTEM_ACTOR } from "../../domain/shared/services.ts";
import { keys } from "../../kv/keys.ts";
import { assertError, memberOf } from "../_assert.ts";
import { type Billing, billingSetup } from "./_billing.ts";

const applyJobs = (b: Billing) => b.h.runJobs(JOB_HANDLERS, { queue: BILLING_QUEUE });

/** Tenants in every state of drift; returns them and their Stripe subscriptions. */
async function drifted(b: Billing) {
  const tenant = async (slug: string) => (await b.h.tenant(slug)).id;
  const ids = {
    matched: await tenant("matched"),
    missing: await tenant("missing"),
    differs: await tenant("differs"),
    overridden: await tenant("overridden"),
    gone: await tenant("gone"),
  };
  const subs = {
    matched: b.subscribe(ids.matched, b.prices.pro),
    missing: b.subscribe(ids.missing, b.prices.pro),
    differs: b.subscribe(ids.differs, b.prices.pro),
    overridden: b.subscribe(ids.overridden, b.prices.pro),
    gone: b.subscribe(ids.gone, b.prices.starter),
    // A subscription of another product on the same Stripe account.
    stray: b.stripe.addSubscription({
      customer: b.stripe.addCustomer().id,
      price: b.prices.pro.id,
    }),
  };
  for (const name of ["matched", "differs", "overridden", "gone"] as const) {
    await b.send("customer.subscription.created", subs[name]);
  }
  await applyJobs(b);
  const res = await b.h.call("PATCH", "/v1/tenants/overridden/billing", {
    token: b.h.root,
    body: { plan_code: "enterprise", override: true, reason: "contract" },
  });
  assert.equal(res.status, 200, res.text);
  // Drift: an upgrade whose event never came; a subscription deleted from Stripe.
  b.stripe.setPrice(subs.differs.id, b.prices.growth.id);
  b.stripe.subscriptions.delete(subs.gone.id);
  b.h.advance(60_000);
  return { ids, subs };
}

Deno.test("reconcile: every Stripe subscription paged through, drift fixed on both sides, counts reported", async () => {
  await using b = await billingSetup();
  const { ids, subs } = await drifted(b);
  const job = await startReconcile(b.h.svc, SYSTEM_ACTOR, 2);

  // Stripe fails one step: it runs again later, from where it was.
  b.stripe.fail(1, 500);
  assert.equal(await applyJobs(b), 1);
  assert.equal((await getJob(b.h.svc, job.id))?.value.status, "failed");
  b.h.advance(31_000);
  let steps = 0;
  while (await applyJobs(b)) steps++;
  const done = (await getJob(b.h.svc, job.id))!.value;
  assert.equal(done.status, "succeeded", done.last_error ?? "");
  assert.ok(steps >= 5, `pages of 2: ${steps} steps`);

  const p = done.payload as unknown as ReconcilePayload;
  assert.deepEqual(p.counts, {
    matched: 2,
    fixed: 1,
    overridden: 1,
    missing_in_steward: 1,
    missing_in_stripe: 1,
    unmapped: 1,
  });
  // Five listed by Stripe, and the record Stripe no longer has.
  assert.deepEqual(done.progress, { done: 6, total: 6 });
  const list = b.stripe.calls("GET", "/v1/subscriptions?");
  assert.ok(list.every((r) => r.params.status === "all" && r.params.limit === "2"));
  assert.ok(list.some((r) => r.params.starting_after), "paged with starting_after");

  assert.equal((await b.subscription(ids.missing))?.subscription_id, subs.missing.id);
  assert.equal((await b.tenant(ids.missing)).plan, "pro");
  assert.equal((await b.subscription(ids.differs))?.plan_code, "growth");
  assert.equal((await b.tenant(ids.differs)).plan, "growth");
  const gone = await b.subscription(ids.gone);
  assert.deepEqual([gone?.status, gone?.mrr], ["canceled", 0]);
  assert.equal((await b.tenant(ids.gone)).plan, "free");
  assert.equal((await b.tenant(ids.overridden)).plan, "enterprise");
  assert.equal((await b.tenant(ids.matched)).plan, "pro");

  const [reconciled] = await b.h.auditFor(job.id);
  assert.equal(reconciled.action, "billing.reconciled");
  assert.deepEqual(reconciled.changes?.missing_in_stripe, { before: null, after: 1 });
  assert.equal((await b.h.kv.get(keys.stripeReconcile())).value, null, "the lock is released");

  // A second run finds nothing to fix.
  b.h.advance(60_000);
  const again = await startReconcile(b.h.svc, SYSTEM_ACTOR);
  while (await applyJobs(b));
  const counts = ((await getJob(b.h.svc, again.id))!.value.payload as unknown as ReconcilePayload)
    .counts;
  assert.deepEqual([counts.fixed, counts.missing_in_steward, counts.missing_in_stripe], [0, 0, 1]);
  assert.equal(counts.matched, 4);
});

Deno.test("reconcile: POST answers 202 with the job; 409 while one runs; who may start it", async () => {
  await using b = await billingSetup();
  const path = "/v1/admin/finance/reconcile";
  const finance = await b.h.user("finance");
  const res = await b.h.call("POST", path, { token: finance.token });
  assert.equal(res.status, 202, res.text);
  assert.match(res.body.data.job_id, /^job_/);
  assert.deepEqual(res.body.data.progress, { done: 0, total: 0 });
  assert.equal(res.body.data.counts.matched, 0);
  const [started] = await b.h.auditFor(res.body.data.job_id);
  assert.deepEqual([started.action, started.actor_id], ["billing.reconcile_started", finance.id]);

  const busy = await b.h.call("POST", path, { token: b.h.root });
  assertError(busy, 409, "CONFLICT");
  assert.match(busy.body.error.message, /a reconciliation is running/);
  while (await applyJobs(b));
  assert.equal((await b.h.call("POST", path, { token: b.h.root })).status, 202);

  assertError(await b.h.call("POST", path), 401, "UNAUTHORIZED");
  const t = await b.h.tenant("acme");
  for (
    const who of [
      await b.h.user("support"),
      await b.h.user("ops"),
      await memberOf(b.h, t.id, "owner"),
    ]
  ) {
    assertError(await b.h.call("POST", path, { token: who.token }), 403, "FORBIDDEN");
  }
});
