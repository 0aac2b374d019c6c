/**
 * What Steward records of a Stripe object (model.ts): the tenant it belongs to, the plan its price
 * is, its amounts as the records keep them, and the plan the tenant should be on because of it.
 */
import { keys } from "../../kv/keys.ts";
import { getRecord, type Versioned } from "../../kv/table.ts";
import type { Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import type { Plan } from "../tenancy/plans.ts";
import { type Tenant, tenantTable } from "../tenancy/tenants.ts";
import {
  type Invoice,
  INVOICE_STATUSES,
  type InvoiceStatus,
  mrrOf,
  type Subscription,
  SUBSCRIPTION_STATUSES,
  type SubscriptionStatus,
} from "./model.ts";
import type {
  InvoiceSnapshot,
  Metadata,
  SubscriptionItemSnapshot,
  SubscriptionSnapshot,
} from "./stripe_objects.ts";

/** The plan every tenant falls back to when its subscription ends (seeded on first start). */
export const FALLBACK_PLAN = "free";

/** Statuses whose subscription gives the tenant its plan. */
const GRANTING: ReadonlySet<SubscriptionStatus> = new Set(["trialing", "active", "past_due"]);
/** Statuses that take the plan away: the tenant is back on FALLBACK_PLAN. */
const LAPSED: ReadonlySet<SubscriptionStatus> = new Set([
  "canceled",
  "unpaid",
  "incomplete_expired",
  "paused",
]);
/** A subscription that is over: a live one of the tenant's replaces it, never the reverse. */
const ENDED: ReadonlySet<SubscriptionStatus> = new Set(["canceled", "incomplete_expired"]);

/** The plan the tenant should be on because of its subscription; null: leave it (incomplete). */
export function followedPlan(s: Subscription): string | null {
  if (GRANTING.has(s.status)) return s.plan_code;
  return LAPSED.has(s.status) ? FALLBACK_PLAN : null;
}

/** Whether the subscription is over (a new checkout may start another). */
export const hasEnded = (s: Subscription) => ENDED.has(s.status);

/** Whether subscription `incoming` takes the record from `current`, another of the tenant's. */
export const replaces = (current: Subscription, incoming: SubscriptionStatus) =>
  ENDED.has(current.status) || !ENDED.has(incoming);

/** The tenant's subscription record, with its versionstamp; null when it has none. */
export async function tenantSubscription(
  svc: Services,
  tenantId: string,
): Promise<Versioned<Subscription> | null> {
  const entry = await svc.kv.get<Subscription>(keys.subscription(tenantId));
  return entry.versionstamp === null
    ? null
    : { value: entry.value, versionstamp: entry.versionstamp };
}

/** Plans by the Stripe price they sell: an active plan before an archived one of the same price. */
export async function plansByPrice(svc: Services): Promise<Map<string, Plan>> {
  const byPrice = new Map<string, Plan>();
  for await (const { value: plan } of svc.kv.list<Plan>({ prefix: keys.plans() })) {
    if (!plan.stripe_price_id) continue;
    const other = byPrice.get(plan.stripe_price_id);
    if (!other || (!other.active && plan.active)) byPrice.set(plan.stripe_price_id, plan);
  }
  return byPrice;
}

export type TenantFound = { tenant: Versioned<Tenant> } | { error: string };

/**
 * The tenant a Stripe object belongs to: the first `metadata.tenant_id` given (Steward sets it on
 * every customer, checkout session and subscription it creates), else its customer's tenant.
 */
export async function tenantFor(
  svc: Services,
  named: (string | null | undefined)[],
  customer: string | null,
): Promise<TenantFound> {
  const id = named.find((n) => n);
  if (id) {
    const tenant = await getRecord(svc.kv, tenantTable, id);
    return tenant ? { tenant } : { error: `metadata.tenant_id names no tenant: ${id}` };
  }
  const linked = customer ? (await svc.kv.get<string>(keys.stripeCustomer(customer))).value : null;
  const tenant = linked ? await getRecord(svc.kv, tenantTable, linked) : null;
  if (tenant) return { tenant };
  return {
    error: customer
      ? `no tenant: no metadata.tenant_id, and customer ${customer} is not linked to a tenant`
      : "no tenant: no metadata.tenant_id and no customer",
  };
}

export const tenantIdIn = (...maps: Metadata[]) => maps.map((m) => m.tenant_id);

const isoOrNull = (seconds: number | null) => seconds === null ? null : iso(seconds * 1000);

const asStatus = <T extends string>(all: readonly T[], value: string | null, fallback: T): T =>
  (all as readonly (string | null)[]).includes(value) ? value as T : fallback;

/** Stripe's status as the record keeps it (a status Steward does not know reads as incomplete). */
export const subscriptionStatus = (status: string): SubscriptionStatus =>
  asStatus(SUBSCRIPTION_STATUSES, status, "incomplete");

/**
 * The item that carries the subscription's plan: the first whose price is a plan's, else the first
 * licensed one (a metered item bills usage on top of it).
 */
function planItem(items: SubscriptionItemSnapshot[], plans: Map<string, Plan>) {
  return items.find((i) => plans.has(i.price_id)) ??
    items.find((i) => i.usage_type === "licensed") ?? items[0] ?? null;
}

/**
 * What one interval of the item costs, as month or year: other intervals (every 3 months,
 * weekly, daily) are expressed per month.
 */
function priced(
  item: SubscriptionItemSnapshot | null,
): { amount: number; interval: Plan["price"]["interval"] } {
  if (!item || item.usage_type === "metered") return { amount: 0, interval: "month" };
  const each = (item.unit_amount ?? 0) * item.quantity / Math.max(1, item.interval_count);
  const perMonth = { day: 365 / 12, week: 52 / 12, month: 1 } as const;
  return item.interval === "year"
    ? { amount: Math.round(each), interval: "year" }
    : { amount: Math.round(each * perMonth[item.interval ?? "month"]), interval: "month" };
}

/** The subscription record of `snap` for `tenantId`, as Stripe held it at `stripeAt`. */
export function subscriptionRecord(
  snap: SubscriptionSnapshot,
  ctx: {
    tenantId: string;
    plans: Map<string, Plan>;
    stripeAt: number;
    now: number;
    /** The record of the same subscription, if any (its creation time is kept). */
    previous: Subscription | null;
  },
): Subscription {
  const item = planItem(snap.items, ctx.plans);
  const { amount, interval } = priced(item);
  const status = subscriptionStatus(snap.status);
  return {
    tenant_id: ctx.tenantId,
    customer_id: snap.customer,
    subscription_id: snap.id,
    status,
    plan_code: item ? ctx.plans.get(item.price_id)?.code ?? null : null,
    price_id: item?.price_id ?? null,
    quantity: item?.quantity ?? 0,
    current_period_start: isoOrNull(item?.current_period_start ?? null),
    current_period_end: isoOrNull(item?.current_period_end ?? null),
    // A cancellation scheduled for a date (how the portal now cancels) ends it as well.
    cancel_at_period_end: snap.cancel_at_period_end ||
      (snap.cancel_at !== null && !ENDED.has(status)),
    canceled_at: isoOrNull(snap.canceled_at),
    trial_end: isoOrNull(snap.trial_end),
    amount,
    currency: item?.currency ?? snap.currency,
    interval,
    mrr: mrrOf({ status, amount, interval }),
    stripe_at: ctx.stripeAt,
    created_at: ctx.previous?.created_at ?? iso(ctx.now),
    updated_at: iso(ctx.now),
  };
}

/** The invoice record of `snap`; what the invoice object does not say is kept from `previous`. */
export function invoiceRecord(
  snap: InvoiceSnapshot,
  ctx: { tenantId: string; stripeAt: number; now: number; previous: Invoice | null },
): Invoice {
  return {
    id: snap.id,
    tenant_id: ctx.tenantId,
    customer_id: snap.customer ?? ctx.previous?.customer_id ?? "",
    subscription_id: snap.subscription_id,
    number: snap.number,
    status: asStatus<InvoiceStatus>(INVOICE_STATUSES, snap.status, "draft"),
    amount_due: snap.amount_due,
    amount_paid: snap.amount_paid,
    amount_refunded: ctx.previous?.amount_refunded ?? 0,
    currency: snap.currency,
    period_start: isoOrNull(snap.period_start),
    period_end: isoOrNull(snap.period_end),
    paid_at: isoOrNull(snap.paid_at),
    payment_failed_at: ctx.previous?.payment_failed_at ?? null,
    hosted_invoice_url: snap.hosted_invoice_url,
    created: snap.created,
    stripe_at: ctx.stripeAt,
    updated_at: iso(ctx.now),
  };
}

/** Whether two records differ in what Stripe said (not in when it was said or written). */
export function differs<T extends object>(a: T | null, b: T): boolean {
  if (!a) return true;
  const bare = (r: T) => {
    const { stripe_at: _s, updated_at: _u, created_at: _c, ...rest } = r as Record<string, unknown>;
    return JSON.stringify(rest);
  };
  return bare(a) !== bare(b);
}
