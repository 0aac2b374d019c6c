/**
 * Applying what Stripe says to Steward's records: a subscription (the tenant's plan follows it in
 * the same commit, unless staff overrode the plan), an invoice, a refund, a customer's tenant.
 * The same steps serve received events (stripe_events.ts), forced syncs (sync.ts) and the
 * reconciliation (reconcile.ts).
 *
 * A step is worked out from what was read (`prepare…`) and written in one commit with the others
 * of its event and the event's own outcome (`commitSteps`); a commit that finds the data moved is
 * re-read and retried. Stripe is called before, never inside the retried part. Events arrive out
 * of order: a state older than the one held (Stripe's `created` of the event, against the
 * record's `stripe_at`) is `stale` and changes nothing; a fetch is the newest state there is.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { AppError } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import {
  addFollowedPlan,
  type PlanMove,
  preparePlanMove,
  settlePlanMove,
} from "../tenancy/billing.ts";
import { type Tenant, tenantTable } from "../tenancy/tenants.ts";
import type {
  Invoice,
  MrrChange,
  StripeEventRecord,
  StripeEventStatus,
  Subscription,
} from "./model.ts";
import { callStripe } from "./stripe_client.ts";
import { composeEmail, queueEmail } from "../email/outbox.ts";
import { ownerEmails } from "../identity/memberships.ts";
import {
  type ChargeSnapshot,
  type CheckoutSnapshot,
  type CustomerSnapshot,
  invoiceOf,
  type InvoiceSnapshot,
  type StripeSnapshot,
  subscriptionOf,
  type SubscriptionSnapshot,
} from "./stripe_objects.ts";
import {
  differs,
  followedPlan,
  invoiceRecord,
  plansByPrice,
  replaces,
  subscriptionRecord,
  subscriptionStatus,
  tenantFor,
  tenantIdIn,
} from "./stripe_records.ts";

/** A record a step changed, before and after (what a forced sync answers). */
export interface RecordDiff {
  record: "subscription" | "invoice" | "customer";
  id: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown>;
}

/** What applying one Stripe object does, worked out from what was read. */
export interface Step {
  status: Exclude<StripeEventStatus, "queued">;
  tenant_id: string | null;
  error: string | null;
  changes: RecordDiff[];
  /** The tenant's plan is overridden: its subscription is recorded, its plan left. */
  overridden?: boolean;
  /** The tenant moved to the plan its subscription says. */
  plan_moved?: boolean;
  /** Adds the step's writes (and the checks of what it read) to the commit. */
  write(op: Deno.AtomicOperation): void;
  /** After the commit: this process forgets what it cached of the changed records. */
  settle(): void;
}

/** Where a state comes from: who applies it, and Stripe's time of it (epoch seconds). */
export interface Source {
  actor: Actor;
  at: number;
  /** Fetched from Stripe just now: the newest state, never stale. */
  fetched: boolean;
}

export type InvoiceAction =
  | "invoice.finalized"
  | "invoice.paid"
  | "invoice.payment_failed"
  | "invoice.refunded"
  | "invoice.updated";

const NOTHING = { changes: [], write() {}, settle() {} };
const failed = (error: string, tenant_id: string | null = null): Step => ({
  status: "failed",
  tenant_id,
  error,
  ...NOTHING,
});
const stale = (tenant_id: string): Step => ({
  status: "stale",
  tenant_id,
  error: null,
  ...NOTHING,
});
const unchanged = (tenant_id: string): Step => ({
  status: "applied",
  tenant_id,
  error: null,
  ...NOTHING,
});

export const nowSeconds = (svc: Services) => Math.floor(svc.now() / 1000);

const asMap = <T extends object>(r: T) => ({ ...r }) as Record<string, unknown>;

/** The move onto `code`, or null when no active plan has that code (the plan is then left). */
async function planMoveTo(svc: Services, tenant: Tenant, code: string): Promise<PlanMove | null> {
  try {
    return await preparePlanMove(svc, tenant, code);
  } catch (err) {
    if (err instanceof AppError) return null;
    throw err;
  }
}

function subscriptionAction(before: Subscription | null, after: Subscription) {
  if (!before || before.subscription_id !== after.subscription_id) return "subscription.created";
  if (after.status === "canceled" && before.status !== "canceled") return "subscription.canceled";
  return "subscription.updated";
}

/**
 * Writes `record` as the tenant's subscription: its audit event when Stripe's state changed, an
 * MRR change when the MRR did, and the tenant's move to the plan the subscription says (unless
 * the plan is overridden), all in one commit.
 */
export async function subscriptionWrite(
  svc: Services,
  actor: Actor,
  tenant: Versioned<Tenant>,
  entry: Deno.KvEntryMaybe<Subscription>,
  record: Subscription,
): Promise<Step> {
  const t = tenant.value;
  const current = entry.value;
  const changed = differs(current, record);
  const target = followedPlan(record);
  const move = target && target !== t.plan && !t.plan_override && t.status !== "deleted"
    ? await planMoveTo(svc, t, target)
    : null;
  const mrrBefore = current?.mrr ?? 0;
  return {
    status: "applied",
    tenant_id: t.id,
    error: null,
    overridden: t.plan_override,
    plan_moved: move !== null,
    changes: changed
      ? [{
        record: "subscription",
        id: record.subscription_id,
        before: current && asMap(current),
        after: asMap(record),
      }]
      : [],
    write(op) {
      const now = svc.now();
      op.check(entry);
      if (changed || current?.stripe_at !== record.stripe_at) {
        op.set(keys.subscription(t.id), record);
      }
      if (changed) {
        recordChange(op, now, actor, {
          action: subscriptionAction(current, record),
          resource_type: "subscription",
          resource_id: record.subscription_id,
          tenant_id: t.id,
          before: current && asMap(current),
          after: asMap(record),
        });
      }
      if (record.mrr !== mrrBefore) {
        const change: MrrChange = {
          id: newId("mrr", now),
          at: iso(now),
          tenant_id: t.id,
          plan_before: current?.plan_code ?? null,
          plan_after: record.plan_code,
          mrr_before: mrrBefore,
          mrr_after: record.mrr,
          currency: record.currency,
        };
        op.set(keys.mrrChange(change.id), change);
      }
      // The tenant as read: an override set (or cleared) meanwhile makes this commit re-read.
      if (move) addFollowedPlan(op, svc, actor, tenant, move);
      else op.check({ key: keys.tenant(t.id), versionstamp: tenant.versionstamp });
    },
    settle() {
      if (!move) return;
      svc.cache.forget(keys.tenant(t.id));
      settlePlanMove(svc, move);
    },
  };
}

/** Applies a subscription: to the tenant its metadata names (or `hint`), or its customer's. */
export async function subscriptionStep(
  svc: Services,
  snap: SubscriptionSnapshot,
  src: Source,
  hint: string | null = null,
): Promise<Step> {
  const found = await tenantFor(svc, [snap.metadata.tenant_id, hint], snap.customer);
  if ("error" in found) return failed(`subscription ${snap.id}: ${found.error}`);
  const tenant = found.tenant;
  const entry = await svc.kv.get<Subscription>(keys.subscription(tenant.value.id));
  const current = entry.value;
  const same = current?.subscription_id === snap.id;
  if (current && same && !src.fetched && src.at < current.stripe_at) return stale(tenant.value.id);
  // Another subscription of the tenant's: an ended one never replaces a live one.
  if (current && !same && !replaces(current, subscriptionStatus(snap.status))) {
    return stale(tenant.value.id);
  }
  const record = subscriptionRecord(snap, {
    tenantId: tenant.value.id,
    plans: await plansByPrice(svc),
    stripeAt: Math.max(src.at, same ? current!.stripe_at : 0),
    now: svc.now(),
    previous: same ? current : null,
  });
  return await subscriptionWrite(svc, src.actor, tenant, entry, record);
}

/** Writes `next` as the invoice (its tenant's pointer moved with it), audited as `action`. */
function invoiceWrite(
  svc: Services,
  actor: Actor,
  entry: Deno.KvEntryMaybe<Invoice>,
  next: Invoice,
  action?: InvoiceAction,
): Step {
  const current = entry.value;
  const changed = differs(current, next);
  const paidNow = current?.status !== "paid" && next.status === "paid";
  return {
    status: "applied",
    tenant_id: next.tenant_id,
    error: null,
    changes: changed
      ? [{ record: "invoice", id: next.id, before: current && asMap(current), after: asMap(next) }]
      : [],
    write(op) {
      op.check(entry);
      if (changed || current?.stripe_at !== next.stripe_at) op.set(keys.invoice(next.id), next);
      const pointer = keys.tenantInvoice(next.tenant_id, next.created, next.id);
      if (current) op.delete(keys.tenantInvoice(current.tenant_id, current.created, current.id));
      op.set(pointer, next.id);
      if (!changed) return;
      recordChange(op, svc.now(), actor, {
        action: action ?? (paidNow ? "invoice.paid" : "invoice.updated"),
        resource_type: "invoice",
        resource_id: next.id,
        tenant_id: next.tenant_id,
        before: current && asMap(current),
        after: asMap(next),
      });
    },
    settle() {},
  };
}

/** Applies an invoice to the tenant its metadata, its subscription's or its customer's names. */
export async function invoiceStep(
  svc: Services,
  snap: InvoiceSnapshot,
  src: Source,
  action?: InvoiceAction,
): Promise<Step> {
  const found = await tenantFor(
    svc,
    tenantIdIn(snap.metadata, snap.subscription_metadata),
    snap.customer,
  );
  if ("error" in found) return failed(`invoice ${snap.id}: ${found.error}`);
  const tenantId = found.tenant.value.id;
  const entry = await svc.kv.get<Invoice>(keys.invoice(snap.id));
  const current = entry.value;
  if (current && !src.fetched && src.at < current.stripe_at) return stale(tenantId);
  const next = invoiceRecord(snap, {
    tenantId,
    stripeAt: Math.max(src.at, current?.stripe_at ?? 0),
    now: svc.now(),
    previous: current,
  });
  if (action === "invoice.payment_failed") next.payment_failed_at = iso(src.at * 1000);
  const step = invoiceWrite(svc, src.actor, entry, next, action);
  // Each failed attempt is mailed to the tenant's owners, with the invoice to pay.
  if (next.payment_failed_at === (current?.payment_failed_at ?? null)) return step;
  const mails = await paymentFailedMails(svc, found.tenant.value, next);
  return {
    ...step,
    write(op) {
      step.write(op);
      for (const mail of mails) queueEmail(op, svc.now(), mail);
    },
  };
}

/** Minor units as people read them: 4900 usd is $49.00, 500 jpy is ¥500. */
function money(minor: number, currency: string): string {
  const format = new Intl.NumberFormat("en", { style: "currency", currency });
  return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits!);
}

function paymentFailedMails(svc: Services, tenant: Tenant, invoice: Invoice) {
  return ownerEmails(svc, tenant.id).then((owners) =>
    Promise.all(owners.map((to) =>
      composeEmail(svc, {
        to,
        template: "payment_failed",
        tenant_id: tenant.id,
        vars: {
          tenant: tenant.name,
          amount: money(invoice.amount_due, invoice.currency),
          invoice: invoice.number ?? invoice.id,
          hosted_url: invoice.hosted_invoice_url,
        },
      })
    ))
  );
}

/**
 * Applies a refund to the invoice the charge paid: its record's `amount_refunded`, or, for an
 * invoice not recorded yet, the invoice as fetched (`fetched`, at `fetchedAt`).
 */
async function refundStep(
  svc: Services,
  charge: ChargeSnapshot,
  invoiceId: string | null,
  fetched: InvoiceSnapshot | null,
  src: Source,
  fetchedAt: number,
): Promise<Step> {
  if (!invoiceId) return { status: "ignored", tenant_id: null, error: null, ...NOTHING };
  const entry = await svc.kv.get<Invoice>(keys.invoice(invoiceId));
  const current = entry.value;
  const now = svc.now();
  if (current) {
    if (!src.fetched && src.at < current.stripe_at) return stale(current.tenant_id);
    const next = {
      ...current,
      amount_refunded: charge.amount_refunded,
      stripe_at: Math.max(src.at, current.stripe_at),
      updated_at: iso(now),
    };
    return invoiceWrite(svc, src.actor, entry, next, "invoice.refunded");
  }
  if (!fetched) return failed(`charge ${charge.id}: invoice ${invoiceId} was not fetched`);
  const found = await tenantFor(
    svc,
    tenantIdIn(fetched.metadata, fetched.subscription_metadata),
    fetched.customer,
  );
  if ("error" in found) return failed(`invoice ${invoiceId}: ${found.error}`);
  const next = invoiceRecord(fetched, {
    tenantId: found.tenant.value.id,
    stripeAt: Math.max(src.at, fetchedAt),
    now,
    previous: null,
  });
  next.amount_refunded = charge.amount_refunded;
  return invoiceWrite(svc, src.actor, entry, next, "invoice.refunded");
}

/** Links a Stripe customer to its tenant (and makes it the tenant's, if it has none yet). */
export async function linkStep(
  svc: Services,
  actor: Actor,
  tenantId: string,
  customerId: string,
): Promise<Step> {
  const [byCustomer, byTenant] = await svc.kv.getMany<[string, string]>([
    keys.stripeCustomer(customerId),
    keys.tenantStripeCustomer(tenantId),
  ]);
  if (byCustomer.value && byCustomer.value !== tenantId) {
    return failed(
      `customer ${customerId} belongs to tenant ${byCustomer.value}, not ${tenantId}`,
      tenantId,
    );
  }
  if (byCustomer.value && byTenant.value) return unchanged(tenantId);
  const link = { tenant_id: tenantId, customer_id: customerId };
  return {
    status: "applied",
    tenant_id: tenantId,
    error: null,
    changes: [{ record: "customer", id: customerId, before: null, after: link }],
    write(op) {
      op.check(byCustomer, byTenant).set(keys.stripeCustomer(customerId), tenantId);
      if (!byTenant.value) op.set(keys.tenantStripeCustomer(tenantId), customerId);
      recordChange(op, svc.now(), actor, {
        action: "billing.customer_linked",
        resource_type: "stripe_customer",
        resource_id: customerId,
        tenant_id: tenantId,
        after: link,
      });
    },
    settle() {},
  };
}

/** A customer: linked to the tenant its metadata names (a known customer is left as it is). */
export async function customerStep(
  svc: Services,
  snap: CustomerSnapshot,
  src: Source,
): Promise<Step> {
  const found = await tenantFor(svc, [snap.metadata.tenant_id], snap.id);
  if ("error" in found) return failed(`customer ${snap.id}: ${found.error}`);
  return await linkStep(svc, src.actor, found.tenant.value.id, snap.id);
}

export type Prepare = () => Promise<Step[]>;

/**
 * A completed checkout: its customer linked to the tenant, and its subscription fetched and
 * applied (the session names it; the subscription's own events may come later or earlier).
 */
export async function checkoutPreparer(
  svc: Services,
  snap: CheckoutSnapshot,
  src: Source,
): Promise<Prepare> {
  const subscription = snap.subscription
    ? subscriptionOf(await callStripe(svc, (c) => c.subscriptions.retrieve(snap.subscription!)))
    : null;
  const fetched: Source = { actor: src.actor, at: nowSeconds(svc), fetched: true };
  return async () => {
    const found = await tenantFor(svc, [snap.metadata.tenant_id], snap.customer);
    if ("error" in found) return [failed(`checkout session ${snap.id}: ${found.error}`)];
    const tenantId = found.tenant.value.id;
    const steps = [unchanged(tenantId)];
    if (snap.customer) steps.push(await linkStep(svc, src.actor, tenantId, snap.customer));
    if (subscription) steps.push(await subscriptionStep(svc, subscription, fetched, tenantId));
    return steps;
  };
}

/** A refund: the invoice its charge paid (found through the invoice's payments). */
async function refundPreparer(
  svc: Services,
  charge: ChargeSnapshot,
  src: Source,
): Promise<Prepare> {
  const payments = charge.payment_intent
    ? await callStripe(svc, (c) =>
      c.invoicePayments.list({
        payment: { type: "payment_intent", payment_intent: charge.payment_intent! },
        limit: 1,
      }))
    : null;
  const paid = payments?.data[0]?.invoice ?? null;
  const invoiceId = typeof paid === "string" ? paid : paid?.id ?? null;
  const known = invoiceId && (await svc.kv.get<Invoice>(keys.invoice(invoiceId))).value;
  const fetched = invoiceId && !known
    ? invoiceOf(await callStripe(svc, (c) => c.invoices.retrieve(invoiceId)))
    : null;
  const fetchedAt = nowSeconds(svc);
  return async () => [await refundStep(svc, charge, invoiceId, fetched, src, fetchedAt)];
}

/** How a received event is applied: Stripe is called now, the records read at each try. */
export async function eventPreparer(
  svc: Services,
  event: StripeEventRecord,
  snap: StripeSnapshot,
): Promise<Prepare> {
  const src: Source = { actor: SYSTEM_ACTOR, at: event.created, fetched: false };
  switch (snap.kind) {
    case "subscription":
      return async () => [await subscriptionStep(svc, snap, src)];
    case "invoice":
      return async () => [await invoiceStep(svc, snap, src, event.type as InvoiceAction)];
    case "customer":
      return async () => [await customerStep(svc, snap, src)];
    case "checkout_session":
      return await checkoutPreparer(svc, snap, src);
    case "charge":
      return await refundPreparer(svc, snap, src);
  }
}

/** The outcome of a set of steps: failed if one failed, applied if one applied, else stale. */
export function outcomeOf(steps: Step[]): Pick<Step, "status" | "tenant_id" | "error"> {
  const failure = steps.find((s) => s.status === "failed");
  const tenant_id = steps.find((s) => s.tenant_id)?.tenant_id ?? null;
  if (failure) {
    return { status: "failed", tenant_id: failure.tenant_id ?? tenant_id, error: failure.error };
  }
  const status = steps.some((s) => s.status === "applied")
    ? "applied"
    : steps.some((s) => s.status === "stale")
    ? "stale"
    : "ignored";
  return { status, tenant_id, error: null };
}

/** Event statuses a job (re)applies: waiting, or failed and retried by an operator. */
const PENDING: ReadonlySet<StripeEventStatus> = new Set(["queued", "failed"]);

/**
 * Commits the steps `prepare` works out, with the outcome of event `eventId` when they apply
 * one (which is then done: what it carried is dropped unless it failed). A failed step writes
 * nothing. Returns the steps, or null when the event was no longer pending.
 */
export async function commitSteps(
  svc: Services,
  prepare: Prepare,
  eventId?: string,
): Promise<Step[] | null> {
  return await retrying(async () => {
    const event = eventId ? await svc.kv.get<StripeEventRecord>(keys.stripeEvent(eventId)) : null;
    if (event && !(event.value && PENDING.has(event.value.status))) return null;
    const steps = await prepare();
    const outcome = outcomeOf(steps);
    const op = svc.kv.atomic();
    if (outcome.status !== "failed") { for (const step of steps) step.write(op); }
    if (event?.value) {
      const done: StripeEventRecord = { ...event.value, ...outcome, processed_at: iso(svc.now()) };
      op.check(event).set(event.key, done);
      if (outcome.status !== "failed") op.delete(keys.stripeEventObject(done.id));
    }
    if (!await commit(op)) return CONFLICT;
    if (outcome.status !== "failed") { for (const step of steps) step.settle(); }
    return steps;
  });
}

/** Records that event `eventId` could not be applied (Stripe kept failing), with why. */
export async function markEventFailed(svc: Services, eventId: string, error: string) {
  await retrying(async () => {
    const event = await svc.kv.get<StripeEventRecord>(keys.stripeEvent(eventId));
    if (!event.value || !PENDING.has(event.value.status)) return null;
    const done: StripeEventRecord = {
      ...event.value,
      status: "failed",
      error,
      processed_at: iso(svc.now()),
    };
    return await commit(svc.kv.atomic().check(event).set(event.key, done)) ? null : CONFLICT;
  });
}

/**
 * Moves the tenant onto the plan its subscription says, when nothing stops it: after staff
 * clear an override. Returns the tenant as moved, or null when nothing changed.
 */
export async function followSubscription(
  svc: Services,
  actor: Actor,
  tenantId: string,
): Promise<Versioned<Tenant> | null> {
  return await retrying(async () => {
    const [tenant, entry] = await Promise.all([
      getRecord(svc.kv, tenantTable, tenantId),
      svc.kv.get<Subscription>(keys.subscription(tenantId)),
    ]);
    const target = entry.value && followedPlan(entry.value);
    if (!tenant || !target || target === tenant.value.plan) return null;
    const move = await planMoveTo(svc, tenant.value, target);
    if (!move) return null;
    const op = svc.kv.atomic().check(entry);
    const next = addFollowedPlan(op, svc, actor, tenant, move);
    if (!next) return null;
    const res = await commit(op);
    if (!res) return CONFLICT;
    svc.cache.forget(keys.tenant(tenantId));
    settlePlanMove(svc, move);
    return { value: next, versionstamp: res.versionstamp };
  });
}
