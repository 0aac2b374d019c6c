/**
 * The Stripe objects Steward reads, cut down to the fields it uses: what an event carries is
 * kept this way until it is applied (a few hundred bytes, where Stripe's object can pass KV's
 * 64 KiB), and what a fetch returns is read the same way. The SDK's types (API version
 * Stripe.API_VERSION) describe the input; a field an older API version kept elsewhere is read
 * from there too.
 */
import type Stripe from "stripe";

export type Metadata = Record<string, string>;

export interface SubscriptionItemSnapshot {
  price_id: string;
  /** Minor units per unit; null for prices Steward cannot price (tiered, custom). */
  unit_amount: number | null;
  currency: string;
  interval: "day" | "week" | "month" | "year" | null;
  interval_count: number;
  usage_type: "licensed" | "metered";
  quantity: number;
  current_period_start: number | null;
  current_period_end: number | null;
}

export interface SubscriptionSnapshot {
  kind: "subscription";
  id: string;
  customer: string;
  status: string;
  metadata: Metadata;
  cancel_at_period_end: boolean;
  /** When a scheduled cancellation takes effect (epoch seconds). */
  cancel_at: number | null;
  canceled_at: number | null;
  trial_end: number | null;
  currency: string;
  items: SubscriptionItemSnapshot[];
}

export interface InvoiceSnapshot {
  kind: "invoice";
  id: string;
  customer: string | null;
  subscription_id: string | null;
  /** The subscription's metadata as the invoice copied it (where tenant_id is found). */
  subscription_metadata: Metadata;
  metadata: Metadata;
  number: string | null;
  status: string | null;
  amount_due: number;
  amount_paid: number;
  currency: string;
  /** What the invoice bills for: its lines' period, or the invoice's own. Epoch seconds. */
  period_start: number | null;
  period_end: number | null;
  paid_at: number | null;
  hosted_invoice_url: string | null;
  created: number;
}

export interface CheckoutSnapshot {
  kind: "checkout_session";
  id: string;
  customer: string | null;
  subscription: string | null;
  metadata: Metadata;
}

export interface CustomerSnapshot {
  kind: "customer";
  id: string;
  metadata: Metadata;
}

export interface ChargeSnapshot {
  kind: "charge";
  id: string;
  customer: string | null;
  payment_intent: string | null;
  amount_refunded: number;
  currency: string;
}

export type StripeSnapshot =
  | SubscriptionSnapshot
  | InvoiceSnapshot
  | CheckoutSnapshot
  | CustomerSnapshot
  | ChargeSnapshot;

/** An expandable reference (`"cus_…"` or the object) as its id. */
const idOf = (ref: string | { id: string } | null | undefined) =>
  ref == null ? null : typeof ref === "string" ? ref : ref.id;

const metadataOf = (m: Stripe.Metadata | null | undefined): Metadata => ({ ...m });

/** Throws when the object lacks a field Steward cannot do without (never so from Stripe). */
function need(object: object, fields: Record<string, unknown>) {
  const missing = Object.entries(fields).filter(([, v]) => v === null || v === undefined);
  if (missing.length) {
    const kind = (object as { object?: string }).object ?? "object";
    throw new Error(`the ${kind} has no ${missing.map(([k]) => k).join(", ")}`);
  }
}

/** Fields older API versions kept on the object itself. */
type Legacy = {
  current_period_start?: number;
  current_period_end?: number;
  subscription?: string | { id: string } | null;
  subscription_details?: { metadata?: Stripe.Metadata | null } | null;
};

const INTERVALS = ["day", "week", "month", "year"] as const;
const intervalOf = (i: string | undefined) => INTERVALS.find((known) => known === i) ?? null;

export function subscriptionOf(s: Stripe.Subscription): SubscriptionSnapshot {
  need(s, { id: s.id, customer: s.customer, status: s.status });
  const legacy = s as unknown as Legacy;
  return {
    kind: "subscription",
    id: s.id,
    customer: idOf(s.customer)!,
    status: s.status,
    metadata: metadataOf(s.metadata),
    cancel_at_period_end: s.cancel_at_period_end,
    cancel_at: s.cancel_at ?? null,
    canceled_at: s.canceled_at ?? null,
    trial_end: s.trial_end ?? null,
    currency: s.currency,
    items: (s.items?.data ?? []).map((item) => ({
      price_id: item.price.id,
      unit_amount: item.price.unit_amount,
      currency: item.price.currency,
      interval: intervalOf(item.price.recurring?.interval),
      interval_count: item.price.recurring?.interval_count ?? 1,
      usage_type: item.price.recurring?.usage_type === "metered" ? "metered" : "licensed",
      quantity: item.quantity ?? 1,
      current_period_start: item.current_period_start ?? legacy.current_period_start ?? null,
      current_period_end: item.current_period_end ?? legacy.current_period_end ?? null,
    })),
  };
}

export function invoiceOf(i: Stripe.Invoice): InvoiceSnapshot {
  need(i, { id: i.id, currency: i.currency, created: i.created });
  const legacy = i as unknown as Legacy;
  const details = i.parent?.subscription_details ?? legacy.subscription_details ?? null;
  const parentSubscription = i.parent?.subscription_details?.subscription;
  const periods = (i.lines?.data ?? []).map((l) => l.period).filter(Boolean);
  return {
    kind: "invoice",
    id: i.id!,
    customer: idOf(i.customer),
    subscription_id: idOf(parentSubscription ?? legacy.subscription),
    subscription_metadata: metadataOf(details?.metadata),
    metadata: metadataOf(i.metadata),
    number: i.number,
    status: i.status,
    amount_due: i.amount_due,
    amount_paid: i.amount_paid,
    currency: i.currency,
    period_start: periods.length ? Math.min(...periods.map((p) => p.start)) : i.period_start,
    period_end: periods.length ? Math.max(...periods.map((p) => p.end)) : i.period_end,
    paid_at: i.status_transitions?.paid_at ?? null,
    hosted_invoice_url: i.hosted_invoice_url ?? null,
    created: i.created,
  };
}

export function checkoutOf(s: Stripe.Checkout.Session): CheckoutSnapshot {
  need(s, { id: s.id });
  return {
    kind: "checkout_session",
    id: s.id,
    customer: idOf(s.customer),
    subscription: idOf(s.subscription),
    metadata: metadataOf(s.metadata),
  };
}

export function customerOf(c: Stripe.Customer): CustomerSnapshot {
  need(c, { id: c.id });
  return { kind: "customer", id: c.id, metadata: metadataOf(c.metadata) };
}

export function chargeOf(c: Stripe.Charge): ChargeSnapshot {
  need(c, { id: c.id });
  return {
    kind: "charge",
    id: c.id,
    customer: idOf(c.customer),
    payment_intent: idOf(c.payment_intent),
    amount_refunded: c.amount_refunded,
    currency: c.currency,
  };
}

/**
 * The event types Steward applies, and how each reads its object. Any other type is stored and
 * marked `ignored`. (These are Stripe's names, not events Steward emits.)
 */
export const HANDLED_EVENTS: Readonly<Record<string, (object: unknown) => StripeSnapshot>> = {
  "checkout.session.completed": (o) => checkoutOf(o as Stripe.Checkout.Session),
  "customer.subscription.created": (o) => subscriptionOf(o as Stripe.Subscription),
  "customer.subscription.updated": (o) => subscriptionOf(o as Stripe.Subscription),
  "customer.subscription.deleted": (o) => subscriptionOf(o as Stripe.Subscription),
  "invoice.paid": (o) => invoiceOf(o as Stripe.Invoice),
  "invoice.payment_failed": (o) => invoiceOf(o as Stripe.Invoice),
  "invoice.finalized": (o) => invoiceOf(o as Stripe.Invoice),
  "customer.updated": (o) => customerOf(o as Stripe.Customer),
  "charge.refunded": (o) => chargeOf(o as Stripe.Charge),
};

/** The Stripe event types to enable on the webhook endpoint (README). */
export const STRIPE_EVENT_TYPES: readonly string[] = Object.keys(HANDLED_EVENTS);
