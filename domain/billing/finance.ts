/**
 * What the finance reports share: reading the billing records Stripe's events keep (the
 * subscriptions, invoices and tenants, read whole: the reports aggregate over all of them), money
 * kept per currency, and the rules for a plan's unit price. The reports themselves are
 * finance_summary.ts, sync_status.ts, finance_analytics.ts, revenue_protection.ts and earnings.ts;
 * none of them writes.
 */
import { keys } from "../../kv/keys.ts";
import type { Services } from "../shared/services.ts";
import { DAY_MS } from "../shared/time.ts";
import type { Plan } from "../tenancy/plans.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import type { Invoice, Subscription } from "./model.ts";

/** Amounts in minor units by currency (`{ usd: 4900, eur: 1200 }`): currencies never mix. */
export type Money = Record<string, number>;

export function addMoney(money: Money, currency: string, amount: number): Money {
  money[currency] = (money[currency] ?? 0) + amount;
  return money;
}

/** A ratio rounded to four decimals, or null when there is nothing to divide by. */
export const ratio = (part: number, whole: number) =>
  whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;

/** Seconds from `at` (ISO time) to `now`. */
export const ageSeconds = (at: string, now: number) =>
  Math.max(0, Math.floor((now - Date.parse(at)) / 1000));

async function values<T>(svc: Services, prefix: Deno.KvKey): Promise<T[]> {
  const out: T[] = [];
  for await (const e of svc.kv.list<T>({ prefix }, { batchSize: 500 })) out.push(e.value);
  return out;
}

/** Every tenant's subscription (one per tenant), in tenant order. */
export const readSubscriptions = (svc: Services) => values<Subscription>(svc, keys.subscriptions());

/** Every invoice kept. */
export const readInvoices = (svc: Services) => values<Invoice>(svc, keys.invoices());

/** The tenants that are not deleted, in creation order. */
export const readTenants = async (svc: Services) =>
  (await values<Tenant>(svc, keys.tenants())).filter((t) => t.status !== "deleted");

/** Every plan (archived ones too: a subscription may still name one), by code. */
export const readPlans = async (svc: Services) =>
  new Map((await values<Plan>(svc, keys.plans())).map((p) => [p.code, p]));

/** What a figure by plan is counted under when a subscription's price maps to no plan. */
export const UNMAPPED_PLAN = "unmapped";

/** How far ahead a trial's end counts as "ending soon". */
export const TRIAL_WINDOW_MS = 7 * DAY_MS;

/** Trials ending between now and TRIAL_WINDOW_MS ahead, soonest first. */
export function trialsEndingSoon(subs: Subscription[], now: number): Subscription[] {
  return subs
    .filter((s) => {
      const end = s.trial_end ? Date.parse(s.trial_end) : NaN;
      return s.status === "trialing" && end >= now && end <= now + TRIAL_WINDOW_MS;
    })
    .sort((a, b) => a.trial_end!.localeCompare(b.trial_end!));
}

/**
 * Whether usage above the plan's quota is billed (reported to Stripe as meter events): the plan
 * names a Stripe meter.
 */
export const billsOverage = (plan: Plan) => Boolean(plan.stripe_meter_event_name);

/**
 * A plan's price for one quota period (a monthly price ×12 for a yearly quota, a yearly one ÷12
 * for a monthly quota) and the quota's units: one unit costs their ratio. Null without a quota.
 */
function quotaPrice(plan: Plan): { amount: number; units: number } | null {
  if (!plan.quota || plan.quota.units <= 0) return null;
  const { amount, interval } = plan.price;
  const perPeriod = interval === plan.quota.period
    ? amount
    : interval === "month"
    ? amount * 12
    : amount / 12;
  return { amount: perPeriod, units: plan.quota.units };
}

/** What one unit of the plan's quota costs, in minor units (a fraction), or null without a quota. */
export function unitPriceOf(plan: Plan): number | null {
  const price = quotaPrice(plan);
  return price && price.amount / price.units;
}

/** `units` of the plan's quota at its unit price, rounded to the minor unit. */
export function priceOfUnits(plan: Plan, units: number): number {
  const price = quotaPrice(plan);
  return price ? Math.round((units * price.amount) / price.units) : 0;
}
