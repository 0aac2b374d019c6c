/**
 * Revenue at risk or left on the table: subscriptions behind on payment, payments that failed in
 * a period, tenants over their quota on a plan that bills no overage, tenants whose overridden
 * plan differs from what they pay, and trials about to end.
 */
import { dayRange } from "../usage/activity.ts";
import { currentUsage } from "../usage/usage.ts";
import type { Services } from "../shared/services.ts";
import { DAY_MS, dayOf, iso } from "../shared/time.ts";
import { type Interval, type Plan, VERIFICATIONS } from "../tenancy/plans.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import {
  addMoney,
  billsOverage,
  type Money,
  priceOfUnits,
  readInvoices,
  readPlans,
  readSubscriptions,
  readTenants,
  trialsEndingSoon,
  unitPriceOf,
} from "./finance.ts";
import {
  type Invoice,
  type InvoiceStatus,
  monthly,
  type Subscription,
  type SubscriptionStatus,
} from "./model.ts";

/** Statuses whose subscription is behind on payment. */
const BEHIND: ReadonlySet<SubscriptionStatus> = new Set(["past_due", "unpaid"]);

export interface AtRisk {
  tenant_id: string;
  tenant_slug: string | null;
  status: SubscriptionStatus;
  plan_code: string | null;
  amount: number;
  currency: string;
  interval: Interval;
  current_period_end: string | null;
  /** A month of the subscription's amount, which stops if it is not recovered. */
  mrr_at_risk: number;
  /** What the tenant's open invoices still owe. */
  outstanding: number;
}

export interface FailedPayment {
  id: string;
  tenant_id: string;
  tenant_slug: string | null;
  number: string | null;
  status: InvoiceStatus;
  amount_due: number;
  amount_paid: number;
  currency: string;
  payment_failed_at: string;
  /** Paid since. */
  recovered: boolean;
}

export interface OverQuota {
  tenant_id: string;
  tenant_slug: string;
  plan: string;
  quota: number;
  used: number;
  over_units: number;
  /** Minor units per unit: the plan's price for a quota period ÷ the quota. */
  unit_price: number;
  unbilled: number;
  currency: string;
  period_start: string;
  period_end: string;
}

export interface Overridden {
  tenant_id: string;
  tenant_slug: string;
  plan: string;
  plan_price: { amount: number; currency: string; interval: Interval } | null;
  /** The overridden plan's price for a month: what the tenant would pay on it. */
  would_pay_mrr: number;
  subscription: {
    plan_code: string | null;
    status: SubscriptionStatus;
    amount: number;
    currency: string;
    interval: Interval;
  } | null;
  /** What the subscription brings in a month (0 without one, or when it does not count). */
  paying_mrr: number;
  /** would_pay_mrr − paying_mrr, when both are in one currency. */
  difference_mrr: number | null;
}

export interface TrialEnding {
  tenant_id: string;
  tenant_slug: string | null;
  plan_code: string | null;
  trial_end: string;
  amount: number;
  currency: string;
  interval: Interval;
  /** A month of the amount the trial turns into. */
  mrr_after_trial: number;
}

export interface RevenueProtection {
  generated_at: string;
  from: string;
  to: string;
  at_risk: { subscriptions: AtRisk[]; mrr_at_risk: Money; outstanding: Money };
  failed_payments: {
    count: number;
    amount_due: Money;
    recovered_count: number;
    recovered: Money;
    invoices: FailedPayment[];
  };
  over_quota: { tenants: OverQuota[]; units: number; unbilled: Money };
  overrides: { tenants: Overridden[]; would_pay_mrr: Money; paying_mrr: Money };
  trials_ending: TrialEnding[];
}

const owed = (i: Invoice) => i.status === "open" ? Math.max(0, i.amount_due - i.amount_paid) : 0;

function atRisk(subs: Subscription[], invoices: Invoice[], slugOf: (id: string) => string | null) {
  const outstanding = new Map<string, number>();
  for (const i of invoices) {
    outstanding.set(i.tenant_id, (outstanding.get(i.tenant_id) ?? 0) + owed(i));
  }
  const out: RevenueProtection["at_risk"] = { subscriptions: [], mrr_at_risk: {}, outstanding: {} };
  for (const s of subs.filter((s) => BEHIND.has(s.status))) {
    const row: AtRisk = {
      tenant_id: s.tenant_id,
      tenant_slug: slugOf(s.tenant_id),
      status: s.status,
      plan_code: s.plan_code,
      amount: s.amount,
      currency: s.currency,
      interval: s.interval,
      current_period_end: s.current_period_end,
      mrr_at_risk: monthly(s.amount, s.interval),
      outstanding: outstanding.get(s.tenant_id) ?? 0,
    };
    out.subscriptions.push(row);
    addMoney(out.mrr_at_risk, s.currency, row.mrr_at_risk);
    addMoney(out.outstanding, s.currency, row.outstanding);
  }
  return out;
}

function failedPayments(
  invoices: Invoice[],
  range: { from: number; to: number },
  slugOf: (id: string) => string | null,
) {
  const [from, to] = [iso(range.from), iso(range.to + DAY_MS)];
  const failed = invoices
    .filter((i) => i.payment_failed_at && i.payment_failed_at >= from && i.payment_failed_at < to)
    .sort((a, b) => b.payment_failed_at!.localeCompare(a.payment_failed_at!));
  const out: RevenueProtection["failed_payments"] = {
    count: failed.length,
    amount_due: {},
    recovered_count: 0,
    recovered: {},
    invoices: [],
  };
  for (const i of failed) {
    const recovered = i.status === "paid";
    addMoney(out.amount_due, i.currency, i.amount_due);
    if (recovered) {
      out.recovered_count++;
      addMoney(out.recovered, i.currency, i.amount_paid);
    }
    out.invoices.push({
      id: i.id,
      tenant_id: i.tenant_id,
      tenant_slug: slugOf(i.tenant_id),
      number: i.number,
      status: i.status,
      amount_due: i.amount_due,
      amount_paid: i.amount_paid,
      currency: i.currency,
      payment_failed_at: i.payment_failed_at!,
      recovered,
    });
  }
  return out;
}

/** Tenants past their quota this period on a plan that bills nothing for it. */
async function overQuota(svc: Services, tenants: Tenant[], plans: Map<string, Plan>) {
  const out: RevenueProtection["over_quota"] = { tenants: [], units: 0, unbilled: {} };
  for (const t of tenants) {
    const plan = plans.get(t.plan);
    if (!plan?.quota || billsOverage(plan)) continue;
    const usage = (await currentUsage(svc, t)).find((m) => m.metric === VERIFICATIONS)!;
    const over = usage.used - plan.quota.units;
    if (over <= 0) continue;
    const unbilled = priceOfUnits(plan, over);
    out.tenants.push({
      tenant_id: t.id,
      tenant_slug: t.slug,
      plan: plan.code,
      quota: plan.quota.units,
      used: usage.used,
      over_units: over,
      unit_price: unitPriceOf(plan)!,
      unbilled,
      currency: plan.price.currency,
      period_start: usage.period_start,
      period_end: usage.period_end,
    });
    out.units += over;
    addMoney(out.unbilled, plan.price.currency, unbilled);
  }
  return out;
}

function overrides(tenants: Tenant[], plans: Map<string, Plan>, subOf: Map<string, Subscription>) {
  const out: RevenueProtection["overrides"] = { tenants: [], would_pay_mrr: {}, paying_mrr: {} };
  for (const t of tenants.filter((t) => t.plan_override)) {
    const plan = plans.get(t.plan);
    const s = subOf.get(t.id);
    const currency = plan?.price.currency ?? s?.currency ?? null;
    const wouldPay = plan ? monthly(plan.price.amount, plan.price.interval) : 0;
    const paying = s?.mrr ?? 0;
    out.tenants.push({
      tenant_id: t.id,
      tenant_slug: t.slug,
      plan: t.plan,
      plan_price: plan?.price ?? null,
      would_pay_mrr: wouldPay,
      subscription: s
        ? {
          plan_code: s.plan_code,
          status: s.status,
          amount: s.amount,
          currency: s.currency,
          interval: s.interval,
        }
        : null,
      paying_mrr: paying,
      difference_mrr: !s || s.currency === currency ? wouldPay - paying : null,
    });
    if (plan) addMoney(out.would_pay_mrr, plan.price.currency, wouldPay);
    if (s) addMoney(out.paying_mrr, s.currency, paying);
  }
  return out;
}

/** The report; `from`/`to` (YYYY-MM-DD) bound the failed payments, by default the last 30 days. */
export async function revenueProtection(
  svc: Services,
  from?: string,
  to?: string,
): Promise<RevenueProtection> {
  const now = svc.now();
  const range = dayRange(now, from, to);
  const [subs, invoices, tenants, plans] = await Promise.all([
    readSubscriptions(svc),
    readInvoices(svc),
    readTenants(svc),
    readPlans(svc),
  ]);
  const slugs = new Map(tenants.map((t) => [t.id, t.slug]));
  const slugOf = (id: string) => slugs.get(id) ?? null;
  return {
    generated_at: iso(now),
    from: dayOf(range.from),
    to: dayOf(range.to),
    at_risk: atRisk(subs, invoices, slugOf),
    failed_payments: failedPayments(invoices, range, slugOf),
    over_quota: await overQuota(svc, tenants, plans),
    overrides: overrides(tenants, plans, new Map(subs.map((s) => [s.tenant_id, s]))),
    trials_ending: trialsEndingSoon(subs, now).map((s) => ({
      tenant_id: s.tenant_id,
      tenant_slug: slugOf(s.tenant_id),
      plan_code: s.plan_code,
      trial_end: s.trial_end!,
      amount: s.amount,
      currency: s.currency,
      interval: s.interval,
      mrr_after_trial: monthly(s.amount, s.interval),
    })),
  };
}
