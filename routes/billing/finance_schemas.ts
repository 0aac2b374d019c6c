/**
 * The finance reports' documents (the admin finance routes and tenant earnings), and the
 * subscription and invoice records as the API shows them (routes/billing/stripe.ts too).
 */
import { z } from "@hono/zod-openapi";
import {
  INVOICE_STATUSES,
  STRIPE_EVENT_STATUSES,
  SUBSCRIPTION_STATUSES,
} from "../../domain/billing/model.ts";
import { DayRangeQuery, idOf, orNull, PageQuery } from "../schemas.ts";

const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const Interval = z.enum(["month", "year"]);
const SubscriptionStatus = z.enum(SUBSCRIPTION_STATUSES);
const Currency = z.string().openapi({ example: "usd" });
const Time = z.string().openapi({ example: "2026-01-31T12:00:00.000Z" });
const Count = (example: number, description?: string) =>
  z.number().int().openapi({ example, description });
const Amount = (example: number, description?: string) =>
  z.number().int().openapi({ example, description });
const Rate = (example: number, description: string) =>
  z.number().nullable().openapi({ example, description });
const TenantSlug = z.string().openapi({ example: "acme" });

/** Amounts in minor units by currency: currencies are never added together. */
const Money = (example: Record<string, number>, description?: string) =>
  z.record(z.string(), z.number().int()).openapi({
    example,
    description: description ?? "Minor units (cents) by currency.",
  });

const Price = z.object({
  amount: Amount(4900, "Minor units (cents)."),
  currency: Currency,
  interval: Interval,
});

export const SubscriptionSchema = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  customer_id: z.string().openapi({ example: "cus_QExample00000001" }),
  subscription_id: z.string().openapi({ example: "sub_1QExample0000000000000001" }),
  status: SubscriptionStatus,
  plan_code: z.string().nullable().openapi({
    description: "The plan whose stripe_price_id is the subscription's price; null when none is.",
    example: "pro",
  }),
  price_id: z.string().nullable().openapi({ example: "price_1QExamplePro0000Monthly" }),
  quantity: Count(1),
  current_period_start: Time.nullable().openapi({ example: "2026-01-15T00:00:00.000Z" }),
  current_period_end: Time.nullable().openapi({ example: "2026-02-15T00:00:00.000Z" }),
  cancel_at_period_end: z.boolean(),
  canceled_at: Time.nullable().openapi({ example: null }),
  trial_end: Time.nullable().openapi({ example: null }),
  amount: Amount(4900, "One interval's price × quantity, minor units."),
  currency: Currency,
  interval: Interval,
  mrr: Amount(4900, "The amount per month while the status counts (active, past_due), else 0."),
  stripe_at: Count(1768435200, "Stripe's time (epoch seconds) of the state held."),
  created_at: Time,
  updated_at: Time,
}).openapi("Subscription");

export const InvoiceSchema = z.object({
  id: z.string().openapi({ example: "in_1QExample0000000000000001" }),
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  customer_id: z.string().openapi({ example: "cus_QExample00000001" }),
  subscription_id: z.string().nullable().openapi({ example: "sub_1QExample0000000000000001" }),
  number: z.string().nullable().openapi({ example: "ACME-0007" }),
  status: z.enum(INVOICE_STATUSES),
  amount_due: Amount(4900),
  amount_paid: Amount(4900),
  amount_refunded: Amount(0),
  currency: Currency,
  period_start: Time.nullable().openapi({ example: "2026-01-15T00:00:00.000Z" }),
  period_end: Time.nullable().openapi({ example: "2026-02-15T00:00:00.000Z" }),
  paid_at: Time.nullable().openapi({ example: "2026-01-15T00:03:11.000Z" }),
  payment_failed_at: Time.nullable().openapi({ example: null }),
  hosted_invoice_url: z.string().nullable().openapi({
    example: "https://invoice.stripe.com/i/acct_1Example/test_Example",
  }),
  created: Count(1768435200, "Stripe's `created` (epoch seconds)."),
  stripe_at: Count(1768435391),
  updated_at: Time,
}).openapi("Invoice");

// ── Subscription summary ─────────────────────────────────────────────────────

export const SubscriptionSummarySchema = z.object({
  generated_at: Time,
  total: Count(57),
  by_status: z.record(SubscriptionStatus, z.number().int()).openapi({
    example: {
      trialing: 4,
      active: 41,
      past_due: 2,
      unpaid: 1,
      canceled: 9,
      incomplete: 0,
      incomplete_expired: 0,
      paused: 0,
    },
  }),
  by_plan: z.record(z.string(), z.number().int()).openapi({
    description: "Subscriptions that are not over (canceled, incomplete_expired), by plan " +
      "code; `unmapped` when the price is no plan's.",
    example: { pro: 31, growth: 12, scale: 5 },
  }),
  paying: Count(43, "Subscriptions counted in MRR with an amount above zero."),
  mrr: Money(
    { usd: 523_300 },
    "Monthly recurring revenue of active and past_due subscriptions (a yearly price ÷ 12), " +
      "minor units by currency.",
  ),
  arr: Money(
    { usd: 6_279_700 },
    "A year of the same subscriptions (a monthly price × 12; a yearly one as it is).",
  ),
  trials_ending_soon: Count(2, "Trials ending within 7 days."),
  scheduled_cancellations: z.object({
    count: Count(3, "Subscriptions set to cancel at the end of their period."),
    mrr: Money({ usd: 14_700 }, "The MRR they take with them."),
  }),
}).openapi("SubscriptionSummary");

// ── Stripe sync status ───────────────────────────────────────────────────────

const EventBrief = z.object({
  id: z.string().openapi({ example: "evt_1QExample0000000000000001" }),
  type: z.string().openapi({ example: "invoice.paid" }),
  status: z.enum(STRIPE_EVENT_STATUSES),
  received_at: Time,
  age_seconds: Count(42),
}).openapi("StripeEventBrief");

export const StripeSyncStatusSchema = z.object({
  generated_at: Time,
  configured: z.boolean().openapi({
    description: "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are set.",
  }),
  last_event: orNull(EventBrief).openapi({ description: "The last event received." }),
  last_24h: z.object({
    events: Count(311),
    by_type: z.record(z.string(), z.number().int()).openapi({
      example: { "invoice.paid": 120, "customer.subscription.updated": 161, "charge.refunded": 30 },
    }),
    by_status: z.record(z.enum(STRIPE_EVENT_STATUSES), z.number().int()).openapi({
      example: { queued: 1, applied: 280, ignored: 30, stale: 0, failed: 0 },
    }),
  }),
  signature_failures: z.object({
    today: Count(0),
    yesterday: Count(2),
  }).openapi({
    description: "Deliveries refused for a bad or stale signature, per UTC day: the last " +
      "24 hours fall within these two days.",
  }),
  processing: z.object({
    queued: Count(1, "Events received and not applied yet."),
    failed: Count(0, "Events whose processing failed."),
    oldest_queued: orNull(EventBrief),
  }),
  last_api_success_at: Time.nullable(),
  last_api_success_age_seconds: z.number().int().nullable().openapi({ example: 3_600 }),
  overridden_tenants: z.object({
    count: Count(1),
    tenants: z.array(z.object({
      id: z.string().openapi({ example: TENANT_ID }),
      slug: TenantSlug,
      plan: z.string().openapi({ example: "enterprise" }),
    })),
  }).openapi({
    description: "Tenants whose plan is set by hand: their subscription does not move it.",
  }),
  plan_mismatches: z.object({
    count: Count(0),
    tenants: z.array(z.object({
      id: z.string().openapi({ example: TENANT_ID }),
      slug: TenantSlug,
      plan: z.string().openapi({ example: "free" }),
      subscription_plan: z.string().openapi({
        description: "The plan the subscription puts the tenant on.",
        example: "pro",
      }),
      subscription_status: SubscriptionStatus,
    })),
  }).openapi({
    description: "Tenants not overridden whose plan differs from the one their subscription " +
      "puts them on: its plan while trialing, active or past_due; free once it lapsed " +
      "(canceled, unpaid, incomplete_expired, paused).",
  }),
}).openapi("StripeSyncStatus");

// ── Subscriptions list ───────────────────────────────────────────────────────

export const SubscriptionsQuery = z.strictObject({
  ...PageQuery,
  status: SubscriptionStatus.optional(),
  plan: z.string().min(1).max(64).optional().openapi({ description: "A plan code." }),
  tenant_id: idOf("ten").optional(),
});

// ── Analytics ────────────────────────────────────────────────────────────────

const DayOrMonth = z.string().regex(
  /^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$/,
  "a date as YYYY-MM-DD, or a month as YYYY-MM",
).refine(
  (d) => {
    const at = Date.parse(`${d.length === 7 ? `${d}-01` : d}T00:00:00Z`);
    return !Number.isNaN(at) && new Date(at).toISOString().startsWith(d);
  },
  "not a calendar date",
);

export const AnalyticsQuery = z.strictObject({
  from: DayOrMonth.optional().openapi({
    description: "First day (UTC), inclusive; a month means its first day. Default: 30 days " +
      "(by day) or 12 months (by month) back to `to`.",
    example: "2026-01-01",
  }),
  to: DayOrMonth.optional().openapi({
    description: "Last day (UTC), inclusive, not after today; a month means its last day. " +
      "Default today.",
    example: "2026-01-31",
  }),
  interval: z.enum(["day", "month"]).default("day").openapi({
    description: "Buckets of a day (at most 366) or a calendar month (at most 36).",
  }),
});

const CurrencyFigures = z.object({
  mrr_start: Amount(510_000, "MRR when the bucket starts."),
  mrr: Amount(523_300, "MRR when the bucket ends (now, for the current one)."),
  new: Amount(19_600, "From tenants going from 0 to an amount."),
  expansion: Amount(4_900, "Increases between amounts above 0."),
  contraction: Amount(1_500, "Decreases between amounts above 0."),
  churned: Amount(9_700, "From tenants going to 0."),
  paying_tenants: Count(43, "Tenants with MRR above 0 when the bucket ends."),
  arpu: z.number().int().nullable().openapi({
    description: "MRR ÷ paying tenants, minor units (null without any).",
    example: 12_170,
  }),
  revenue_churn_rate: Rate(0.0220, "(churned + contraction) ÷ MRR at start; null from 0."),
  net_revenue_retention: Rate(0.9876, "(start + expansion − contraction − churned) ÷ start."),
  revenue: Amount(498_000, "Invoices paid in the bucket (amount paid)."),
}).openapi("FinanceCurrencyFigures");

const AnalyticsBucket = z.object({
  period: z.string().openapi({ example: "2026-01", description: "YYYY-MM-DD or YYYY-MM." }),
  start: Time.openapi({ example: "2026-01-01T00:00:00.000Z" }),
  end: Time.openapi({ example: "2026-02-01T00:00:00.000Z", description: "Exclusive." }),
  paying_tenants_start: Count(44),
  paying_tenants: Count(43),
  churned_tenants: Count(2, "Tenants paying at the start that went to 0 in the bucket."),
  logo_churn_rate: Rate(0.0455, "churned_tenants ÷ paying_tenants_start; null from 0."),
  by_currency: z.record(z.string(), CurrencyFigures).openapi({
    description: "Every currency of the range, in each bucket.",
  }),
  revenue_by_plan: z.record(z.string(), z.record(z.string(), z.number().int())).openapi({
    description: "Invoices paid in the bucket by the tenant's plan when paid: plan code → " +
      "currency → minor units.",
    example: { pro: { usd: 151_900 }, growth: { usd: 346_100 } },
  }),
}).openapi("FinanceAnalyticsBucket");

export const AnalyticsSchema = z.object({
  generated_at: Time,
  interval: z.enum(["day", "month"]),
  from: z.string().openapi({ example: "2026-01-01" }),
  to: z.string().openapi({ example: "2026-01-31" }),
  currencies: z.array(z.string()).openapi({ example: ["usd"] }),
  buckets: z.array(AnalyticsBucket),
}).openapi("FinanceAnalytics");

// ── Revenue protection ───────────────────────────────────────────────────────

export const ProtectionQuery = DayRangeQuery;

const AtRisk = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  tenant_slug: TenantSlug.nullable(),
  status: SubscriptionStatus.openapi({ example: "past_due" }),
  plan_code: z.string().nullable().openapi({ example: "pro" }),
  amount: Amount(4900),
  currency: Currency,
  interval: Interval,
  current_period_end: Time.nullable(),
  mrr_at_risk: Amount(4900, "A month of the subscription's amount."),
  outstanding: Amount(4900, "What the tenant's open invoices still owe."),
});

const FailedPayment = z.object({
  id: z.string().openapi({ example: "in_1QExample0000000000000002" }),
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  tenant_slug: TenantSlug.nullable(),
  number: z.string().nullable().openapi({ example: "ACME-0008" }),
  status: z.enum(INVOICE_STATUSES).openapi({ example: "open" }),
  amount_due: Amount(4900),
  amount_paid: Amount(0),
  currency: Currency,
  payment_failed_at: Time,
  recovered: z.boolean().openapi({ description: "Paid since." }),
});

const OverQuota = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  tenant_slug: TenantSlug,
  plan: z.string().openapi({ example: "starter" }),
  quota: Count(2_000_000),
  used: Count(2_150_000),
  over_units: Count(150_000),
  unit_price: z.number().openapi({
    description: "Minor units per unit: the plan's price for one quota period ÷ the quota.",
    example: 5,
  }),
  unbilled: Amount(750_000, "over_units at unit_price, minor units."),
  currency: Currency,
  period_start: Time.openapi({ example: "2026-01-01T00:00:00.000Z" }),
  period_end: Time.openapi({ example: "2027-01-01T00:00:00.000Z" }),
});

const Overridden = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  tenant_slug: TenantSlug,
  plan: z.string().openapi({ example: "enterprise" }),
  plan_price: orNull(Price),
  would_pay_mrr: Amount(8_333_333, "The overridden plan's price for a month."),
  subscription: orNull(z.object({
    plan_code: z.string().nullable().openapi({ example: "pro" }),
    status: SubscriptionStatus,
    amount: Amount(4900),
    currency: Currency,
    interval: Interval,
  })),
  paying_mrr: Amount(4900, "What the subscription brings in a month (0 without one)."),
  difference_mrr: z.number().int().nullable().openapi({
    description: "would_pay_mrr − paying_mrr; null when they are in different currencies.",
    example: 8_328_433,
  }),
});

const TrialEnding = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  tenant_slug: TenantSlug.nullable(),
  plan_code: z.string().nullable().openapi({ example: "growth" }),
  trial_end: Time,
  amount: Amount(10_000_000),
  currency: Currency,
  interval: Interval.openapi({ example: "year" }),
  mrr_after_trial: Amount(833_333),
});

export const RevenueProtectionSchema = z.object({
  generated_at: Time,
  from: z.string().openapi({ example: "2026-01-01" }),
  to: z.string().openapi({ example: "2026-01-31" }),
  at_risk: z.object({
    subscriptions: z.array(AtRisk),
    mrr_at_risk: Money({ usd: 9_800 }),
    outstanding: Money({ usd: 9_800 }),
  }).openapi({ description: "Subscriptions past_due or unpaid." }),
  failed_payments: z.object({
    count: Count(3),
    amount_due: Money({ usd: 14_700 }),
    recovered_count: Count(1),
    recovered: Money({ usd: 4_900 }),
    invoices: z.array(FailedPayment),
  }).openapi({ description: "Invoices whose payment failed between from and to, newest first." }),
  over_quota: z.object({
    tenants: z.array(OverQuota),
    units: Count(150_000),
    unbilled: Money({ usd: 750_000 }),
  }).openapi({
    description: "Tenants over their quota this period on a plan that bills no overage.",
  }),
  overrides: z.object({
    tenants: z.array(Overridden),
    would_pay_mrr: Money({ usd: 8_333_333 }),
    paying_mrr: Money({ usd: 4_900 }),
  }).openapi({ description: "Tenants on an overridden plan, and what they would pay on it." }),
  trials_ending: z.array(TrialEnding).openapi({ description: "Within 7 days, soonest first." }),
}).openapi("RevenueProtection");

// ── Earnings ─────────────────────────────────────────────────────────────────

export const EarningsQuery = z.strictObject({
  period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "a month as YYYY-MM").optional().openapi({
    description: "The calendar month (UTC); default this month. A later month is 400.",
    example: "2026-01",
  }),
});

export const EarningsSchema = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  period: z.string().openapi({ example: "2026-01" }),
  start: Time.openapi({ example: "2026-01-01T00:00:00.000Z" }),
  end: Time.openapi({ example: "2026-02-01T00:00:00.000Z", description: "Exclusive." }),
  plan: z.object({
    code: z.string().openapi({ example: "pro" }),
    name: z.string().nullable().openapi({ example: "Pro" }),
    price: orNull(Price),
    override: z.boolean(),
    override_reason: z.string().nullable().openapi({ example: null }),
  }),
  subscription: orNull(SubscriptionSchema),
  invoices: z.array(InvoiceSchema).openapi({ description: "Paid in the month (by paid_at)." }),
  paid: Money({ usd: 4900 }),
  refunded: Money({ usd: 0 }, "Refunded of the invoices paid in the month."),
  net: Money({ usd: 4900 }, "paid − refunded."),
  usage: z.object({
    metric: z.string().openapi({ example: "verifications" }),
    used: Count(1_042_000, "In the month."),
    quota: z.number().int().nullable().openapi({ example: 1_000_000 }),
    quota_period: Interval.nullable(),
    overage_units: Count(42_000, "Units of the month above the quota."),
    unit_price: z.number().nullable().openapi({ example: 0.0049 }),
    overage_amount: Amount(206, "overage_units at unit_price, minor units."),
    currency: z.string().nullable().openapi({ example: "usd" }),
    overage_billed: z.boolean().openapi({
      description: "The plan reports overage to Stripe, so it is invoiced.",
    }),
  }),
}).openapi("TenantEarnings");
