/**
 * Reconciling with Stripe (`POST /v1/admin/finance/reconcile`): one job in steps, one at a time.
 *
 * 1. `stripe`: pages through every Stripe subscription (all statuses) and applies each as a fetch
 *    (apply.ts): a record that differs is fixed, a missing one made, a tenant whose plan drifted
 *    from its subscription moved (unless overridden).
 * 2. `steward`: walks Steward's subscription records; one the first pass did not touch (its
 *    `stripe_at` is older than the run) is asked of Stripe, and when Stripe has no such
 *    subscription it is recorded as canceled (the tenant falls back to the free plan).
 *
 * Each step commits where it got to and its counts in the job's payload; a step that fails is
 * tried again whole (what it fixed is then counted as matched).
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { enqueueJob, type Job, type JobResult, soleJobLock } from "../jobs/jobs.ts";
import { BILLING_QUEUE, STRIPE_RECONCILE_JOB } from "../jobs/names.ts";
import { conflict } from "../shared/errors.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import { tenantTable } from "../tenancy/tenants.ts";
import {
  commitSteps,
  nowSeconds,
  type Source,
  type Step,
  subscriptionStep,
  subscriptionWrite,
} from "./apply.ts";
import type { Subscription } from "./model.ts";
import { callStripe, isMissing, isStripeError, isTransient, stripeOf } from "./stripe_client.ts";
import { subscriptionOf } from "./stripe_objects.ts";
import { hasEnded } from "./stripe_records.ts";

/** Subscriptions (or records) per step: one Stripe page, at most. */
export const RECONCILE_PAGE = 100;

export interface ReconcileCounts {
  /** Record and plan as Stripe says. */
  matched: number;
  /** A record (or the tenant's plan) that differed, now as Stripe says. */
  fixed: number;
  /** Tenants whose plan is overridden: the subscription recorded, the plan left. */
  overridden: number;
  /** Stripe subscriptions Steward had no record of (now recorded). */
  missing_in_steward: number;
  /** Records of subscriptions Stripe does not have (now canceled). */
  missing_in_stripe: number;
  /** Stripe subscriptions that name no tenant and whose customer is not a tenant's. */
  unmapped: number;
}

export interface ReconcilePayload {
  /** When the run started (epoch seconds): a record the first pass touched is this new. */
  started_at: number;
  /** Subscriptions (or records) per step. */
  page: number;
  /** `done`: the counts are final; the last step reports them. */
  pass: "stripe" | "steward" | "done";
  /** The last Stripe subscription seen (`starting_after` of the next page). */
  starting_after: string | null;
  /** The last tenant whose record the second pass checked. */
  after_tenant: string | null;
  done: number;
  counts: ReconcileCounts;
}

const NO_COUNTS: ReconcileCounts = {
  matched: 0,
  fixed: 0,
  overridden: 0,
  missing_in_steward: 0,
  missing_in_stripe: 0,
  unmapped: 0,
};

/** Starts a reconciliation; 409 while one runs, or without Stripe. */
export async function startReconcile(
  svc: Services,
  actor: Actor,
  page = RECONCILE_PAGE,
): Promise<Job> {
  stripeOf(svc);
  const lock = await soleJobLock(svc, keys.stripeReconcile(), "a reconciliation");
  const now = svc.now();
  const payload: ReconcilePayload = {
    started_at: Math.floor(now / 1000),
    page,
    pass: "stripe",
    starting_after: null,
    after_tenant: null,
    done: 0,
    counts: { ...NO_COUNTS },
  };
  const op = svc.kv.atomic().check(lock);
  const job = enqueueJob(op, now, {
    queue: BILLING_QUEUE,
    type: STRIPE_RECONCILE_JOB,
    payload: { ...payload },
    maxAttempts: 10,
  });
  op.set(keys.stripeReconcile(), job.id);
  recordChange(op, now, actor, {
    action: "billing.reconcile_started",
    resource_type: "stripe",
    resource_id: job.id,
    tenant_id: null,
    after: { job_id: job.id },
  });
  if (!await commit(op)) throw conflict("a reconciliation was started meanwhile");
  return { ...job, progress: { done: 0, total: 0 } };
}

/** Counts what applying one subscription did. */
function tally(counts: ReconcileCounts, step: Step): void {
  if (step.status === "failed") {
    counts.unmapped++;
    return;
  }
  if (step.overridden) counts.overridden++;
  const change = step.changes[0];
  if (change && !change.before) counts.missing_in_steward++;
  else if (change || step.plan_moved) counts.fixed++;
  else counts.matched++;
}

async function applyFetched(svc: Services, subscription: Parameters<typeof subscriptionOf>[0]) {
  const snap = subscriptionOf(subscription);
  const src: Source = { actor: SYSTEM_ACTOR, at: nowSeconds(svc), fetched: true };
  const steps = await commitSteps(svc, async () => [await subscriptionStep(svc, snap, src)]);
  return steps![0];
}

/** The first pass's step: one page of Stripe's subscriptions. */
async function stripePage(svc: Services, p: ReconcilePayload): Promise<boolean> {
  const page = await callStripe(svc, (c) =>
    c.subscriptions.list({
      status: "all",
      limit: p.page,
      ...(p.starting_after ? { starting_after: p.starting_after } : {}),
    }));
  for (const subscription of page.data) {
    tally(p.counts, await applyFetched(svc, subscription));
    p.done++;
    p.starting_after = subscription.id;
  }
  return page.has_more && page.data.length > 0;
}

/** Records a subscription Stripe does not have as canceled (unless it already ended). */
async function cancelMissing(svc: Services, tenantId: string) {
  await commitSteps(svc, async () => {
    const [tenant, entry] = await Promise.all([
      getRecord(svc.kv, tenantTable, tenantId),
      svc.kv.get<Subscription>(keys.subscription(tenantId)),
    ]);
    if (!tenant || !entry.value || hasEnded(entry.value)) return [];
    const now = svc.now();
    const canceled: Subscription = {
      ...entry.value,
      status: "canceled",
      cancel_at_period_end: false,
      canceled_at: entry.value.canceled_at ?? iso(now),
      mrr: 0,
      stripe_at: Math.max(nowSeconds(svc), entry.value.stripe_at),
      updated_at: iso(now),
    };
    return [await subscriptionWrite(svc, SYSTEM_ACTOR, tenant, entry, canceled)];
  });
}

/** The second pass's step: up to a page of Steward's records the first pass did not touch. */
async function stewardPage(svc: Services, p: ReconcilePayload): Promise<boolean> {
  const prefix = keys.subscriptions();
  const selector = p.after_tenant
    ? { prefix, start: [...keys.subscription(p.after_tenant), ""] }
    : { prefix };
  let seen = 0;
  const records = svc.kv.list<Subscription>(selector, { limit: p.page });
  for await (const { value: record } of records) {
    seen++;
    p.after_tenant = record.tenant_id;
    if (record.stripe_at >= p.started_at) continue;
    p.done++;
    try {
      const subscription = await callStripe(
        svc,
        (c) => c.subscriptions.retrieve(record.subscription_id),
      );
      tally(p.counts, await applyFetched(svc, subscription));
    } catch (err) {
      if (!isMissing(err)) throw err;
      p.counts.missing_in_stripe++;
      await cancelMissing(svc, record.tenant_id);
    }
  }
  return seen === p.page;
}

async function finish(svc: Services, job: Job, p: ReconcilePayload): Promise<JobResult> {
  const now = svc.now();
  const op = svc.kv.atomic().delete(keys.stripeReconcile());
  recordChange(op, now, SYSTEM_ACTOR, {
    action: "billing.reconciled",
    resource_type: "stripe",
    resource_id: job.id,
    tenant_id: null,
    after: { job_id: job.id, checked: p.done, ...p.counts },
  });
  await commit(op);
  return { ok: true, progress: { done: p.done, total: p.done } };
}

/** One step of the `stripe.reconcile` job; Stripe failing makes the step run again later. */
export async function reconcileJob(svc: Services, job: Job): Promise<JobResult> {
  const p = structuredClone(job.payload) as unknown as ReconcilePayload;
  if (p.pass === "done") return await finish(svc, job, p);
  try {
    const more = p.pass === "stripe" ? await stripePage(svc, p) : await stewardPage(svc, p);
    if (!more) p.pass = p.pass === "stripe" ? "steward" : "done";
  } catch (err) {
    if (!isStripeError(err)) throw err;
    const error = `Stripe: ${err.message}`.slice(0, 500);
    return isTransient(err) ? { ok: false, error } : { ok: false, error, dead: true };
  }
  // Stripe does not say how many there are: the total is what is known so far, and one more page.
  const progress = { done: p.done, total: p.pass === "done" ? p.done : p.done + p.page };
  return { ok: true, next: { payload: { ...p }, progress } };
}
