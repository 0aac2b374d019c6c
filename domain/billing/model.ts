/**
 * Billing on Stripe (issue 17): the records Steward keeps of what Stripe holds, and how money is
 * normalised. Stripe is the source of truth for subscriptions and invoices; these records are
 * its view, kept by the webhook receiver (stripe_events.ts → apply.ts) and by syncs, and read by
 * the finance API (finance.ts). Amounts are in minor units (cents), as Stripe gives them.
 */

export const SUBSCRIPTION_STATUSES = [
  "trialing",
  "active",
  "past_due",
  "unpaid",
  "canceled",
  "incomplete",
  "incomplete_expired",
  "paused",
] as const;
export type SubscriptionStatus = typeof SUBSCRIPTION_STATUSES[number];

/** The statuses whose subscriptions count in MRR: paying, or expected to pay (a retry is due). */
export const MRR_STATUSES: ReadonlySet<SubscriptionStatus> = new Set(["active", "past_due"]);

/** A tenant's subscription as Stripe last told it (one per tenant: the latest one it has). */
export interface Subscription {
  tenant_id: string;
  customer_id: string;
  subscription_id: string;
  status: SubscriptionStatus;
  /** The plan whose `stripe_price_id` is the subscription's price; null when no plan has it. */
  plan_code: string | null;
  price_id: string | null;
  quantity: number;
  current_period_start: string | null;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  canceled_at: string | null;
  trial_end: string | null;
  /** What one billing interval costs: the price's unit amount × quantity, minor units. */
  amount: number;
  currency: string;
  interval: "month" | "year";
  /** `amount` per month (a year's ÷ 12, rounded), when the status counts (MRR_STATUSES), else 0. */
  mrr: number;
  /**
   * The Stripe time (epoch seconds) of the state held: the `created` of the event that brought it,
   * or of a fetch. An event older than this is not applied (events arrive out of order).
   */
  stripe_at: number;
  created_at: string;
  updated_at: string;
}

export const INVOICE_STATUSES = ["draft", "open", "paid", "uncollectible", "void"] as const;
export type InvoiceStatus = typeof INVOICE_STATUSES[number];

export interface Invoice {
  id: string;
  tenant_id: string;
  customer_id: string;
  subscription_id: string | null;
  number: string | null;
  status: InvoiceStatus;
  amount_due: number;
  amount_paid: number;
  amount_refunded: number;
  currency: string;
  period_start: string | null;
  period_end: string | null;
  paid_at: string | null;
  /** When a payment attempt last failed (invoice.payment_failed), else null. */
  payment_failed_at: string | null;
  hosted_invoice_url: string | null;
  /** Stripe's `created` (epoch seconds). */
  created: number;
  stripe_at: number;
  updated_at: string;
}

export const STRIPE_EVENT_STATUSES = ["queued", "applied", "ignored", "stale", "failed"] as const;
export type StripeEventStatus = typeof STRIPE_EVENT_STATUSES[number];

/** A Stripe event as received: stored by id (a redelivery is a no-op), applied by a job. */
export interface StripeEventRecord {
  id: string;
  type: string;
  /** Stripe's `created` (epoch seconds). */
  created: number;
  received_at: string;
  /** `stale`: older than the state held; `ignored`: a type Steward does not handle. */
  status: StripeEventStatus;
  tenant_id: string | null;
  /** The id of the object the event carries (sub_…, in_…, cus_…, cs_…, ch_…). */
  object_id: string | null;
  error: string | null;
  processed_at: string | null;
}

/** A change of a tenant's MRR, kept for the revenue analytics (new, expansion, churn …). */
export interface MrrChange {
  id: string;
  at: string;
  tenant_id: string;
  plan_before: string | null;
  plan_after: string | null;
  mrr_before: number;
  mrr_after: number;
  currency: string;
}

/** An interval's amount as a month's: a year's ÷ 12, rounded to the minor unit. */
export const monthly = (amount: number, interval: "month" | "year") =>
  interval === "year" ? Math.round(amount / 12) : amount;

export const mrrOf = (s: Pick<Subscription, "status" | "amount" | "interval">) =>
  MRR_STATUSES.has(s.status) ? monthly(s.amount, s.interval) : 0;
