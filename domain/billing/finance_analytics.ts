/**
 * Revenue analytics over days or calendar months, replayed from the MRR changes (MrrChange) and
 * the invoices paid. Money stays per currency: every figure is given for each currency seen, and
 * rates are computed within a currency, never across (no exchange rates are assumed).
 *
 * Per bucket and currency: MRR at its start and end; the movements inside it, each change
 * classified on its own (new 0→>0, churned >0→0, expansion and contraction between amounts above
 * zero), so end = start + new + expansion − contraction − churned; ARPU (MRR ÷ paying tenants);
 * revenue churn rate ((churned + contraction) ÷ MRR at start); net revenue retention ((start +
 * expansion − contraction − churned) ÷ start); revenue (invoices paid in the bucket). Per bucket:
 * the paying tenants, the logo churn rate (tenants paying at its start that churned in it ÷ those
 * paying at its start) and the revenue by plan (each invoice under the tenant's plan when it was
 * paid, from the MRR changes; before any change, the plan its subscription has).
 */
import { keys } from "../../kv/keys.ts";
import { badRequest } from "../shared/errors.ts";
import { timePrefix } from "../shared/ids.ts";
import type { Services } from "../shared/services.ts";
import { DAY_MS, dayOf, iso } from "../shared/time.ts";
import {
  addMoney,
  type Money,
  ratio,
  readInvoices,
  readSubscriptions,
  UNMAPPED_PLAN,
} from "./finance.ts";
import type { Invoice, MrrChange } from "./model.ts";

export type AnalyticsInterval = "day" | "month";

export const MAX_DAYS = 366;
export const MAX_MONTHS = 36;
const DEFAULT_DAYS = 30;
const DEFAULT_MONTHS = 12;

interface Bucket {
  label: string;
  start: number;
  end: number;
}

/** The first instant of the month `n` months after the one holding `ms` (any year, 0 too). */
const addMonths = (ms: number, n: number) => {
  const d = new Date(ms);
  d.setUTCHours(0, 0, 0, 0);
  d.setUTCMonth(d.getUTCMonth() + n, 1);
  return d.getTime();
};
const monthStart = (ms: number) => addMonths(ms, 0);
const monthsBetween = (from: number, to: number) => {
  const a = new Date(from), b = new Date(to);
  return (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + b.getUTCMonth() - a.getUTCMonth();
};

/** A query date: YYYY-MM-DD, or YYYY-MM for the month's first day (`from`) or last (`to`). */
function parseDate(value: string, end: boolean): number {
  if (value.length > 7) return Date.parse(`${value}T00:00:00Z`);
  const first = Date.parse(`${value}-01T00:00:00Z`);
  return end ? addMonths(first, 1) - DAY_MS : first;
}

const invalid = (field: "from" | "to", message: string) =>
  badRequest(message, [{ path: ["query", field], message }]);

/**
 * The buckets asked for: days from `from` to `to`, or the calendar months that hold them. By
 * default the last 30 days, or the last 12 months. `to` may not lie in a later day (or month)
 * than today; the current bucket runs to now.
 */
export function analyticsBuckets(
  now: number,
  interval: AnalyticsInterval,
  from?: string,
  to?: string,
): Bucket[] {
  const today = Date.parse(`${dayOf(now)}T00:00:00Z`);
  const last = to ? parseDate(to, true) : today;
  if (interval === "day") {
    const first = from ? parseDate(from, false) : last - (DEFAULT_DAYS - 1) * DAY_MS;
    if (last > today) throw invalid("to", "to is after today");
    if (first > last) throw invalid("from", "from is after to");
    if ((last - first) / DAY_MS + 1 > MAX_DAYS) {
      throw invalid("from", `at most ${MAX_DAYS} days by day`);
    }
    return Array.from({ length: (last - first) / DAY_MS + 1 }, (_, i) => {
      const start = first + i * DAY_MS;
      return { label: dayOf(start), start, end: start + DAY_MS };
    });
  }
  const lastMonth = monthStart(last);
  const firstMonth = from
    ? monthStart(parseDate(from, false))
    : addMonths(lastMonth, -(DEFAULT_MONTHS - 1));
  if (lastMonth > monthStart(today)) throw invalid("to", "to is after this month");
  if (firstMonth > lastMonth) throw invalid("from", "from is after to");
  if (monthsBetween(firstMonth, lastMonth) + 1 > MAX_MONTHS) {
    throw invalid("from", `at most ${MAX_MONTHS} months by month`);
  }
  return Array.from({ length: monthsBetween(firstMonth, lastMonth) + 1 }, (_, i) => {
    const start = addMonths(firstMonth, i);
    return { label: iso(start).slice(0, 7), start, end: addMonths(start, 1) };
  });
}

export interface CurrencyFigures {
  mrr_start: number;
  mrr: number;
  new: number;
  expansion: number;
  contraction: number;
  churned: number;
  paying_tenants: number;
  arpu: number | null;
  revenue_churn_rate: number | null;
  net_revenue_retention: number | null;
  revenue: number;
}

export interface AnalyticsBucket {
  period: string;
  start: string;
  end: string;
  paying_tenants_start: number;
  paying_tenants: number;
  churned_tenants: number;
  logo_churn_rate: number | null;
  by_currency: Record<string, CurrencyFigures>;
  /** Invoices paid in the bucket: plan code → amount paid per currency. */
  revenue_by_plan: Record<string, Money>;
}

export interface Analytics {
  generated_at: string;
  interval: AnalyticsInterval;
  from: string;
  to: string;
  currencies: string[];
  buckets: AnalyticsBucket[];
}

interface TenantMrr {
  mrr: number;
  currency: string;
  plan: string | null;
}

/** What happened, in time order: MRR changes, and invoices paid (a change first on a tie). */
type Happening =
  | { at: number; change: MrrChange; invoice?: undefined }
  | { at: number; invoice: Invoice; change?: undefined };

async function readChanges(svc: Services, before: number): Promise<MrrChange[]> {
  const out: MrrChange[] = [];
  // Ids are time-ordered: those made before `before` sort below its time prefix.
  const selector = {
    prefix: keys.mrrChanges(),
    end: keys.mrrChange(`mrr_${timePrefix(before)}`),
  };
  for await (const e of svc.kv.list<MrrChange>(selector, { batchSize: 500 })) out.push(e.value);
  return out;
}

/** The tenants' MRR as the changes replayed so far leave it, and its totals. */
class MrrState {
  readonly tenants = new Map<string, TenantMrr>();

  apply(c: MrrChange) {
    this.tenants.set(c.tenant_id, { mrr: c.mrr_after, currency: c.currency, plan: c.plan_after });
  }

  paying(): Set<string> {
    return new Set([...this.tenants].filter(([, t]) => t.mrr > 0).map(([id]) => id));
  }

  totals(): Map<string, { mrr: number; paying: number }> {
    const out = new Map<string, { mrr: number; paying: number }>();
    for (const t of this.tenants.values()) {
      if (t.mrr <= 0) continue;
      const sum = out.get(t.currency) ?? { mrr: 0, paying: 0 };
      out.set(t.currency, { mrr: sum.mrr + t.mrr, paying: sum.paying + 1 });
    }
    return out;
  }
}

const zero = (): CurrencyFigures => ({
  mrr_start: 0,
  mrr: 0,
  new: 0,
  expansion: 0,
  contraction: 0,
  churned: 0,
  paying_tenants: 0,
  arpu: null,
  revenue_churn_rate: null,
  net_revenue_retention: null,
  revenue: 0,
});

/** Adds a change's movement to its currency's figures; true when it is a churn. */
function classify(f: CurrencyFigures, c: MrrChange): boolean {
  const { mrr_before: before, mrr_after: after } = c;
  if (before <= 0 && after > 0) f.new += after;
  else if (before > 0 && after <= 0) f.churned += before;
  else if (after > before) f.expansion += after - before;
  else f.contraction += before - after;
  return before > 0 && after <= 0;
}

export async function revenueAnalytics(
  svc: Services,
  interval: AnalyticsInterval,
  from?: string,
  to?: string,
): Promise<Analytics> {
  const now = svc.now();
  const buckets = analyticsBuckets(now, interval, from, to);
  const rangeStart = buckets[0].start;
  const rangeEnd = buckets.at(-1)!.end;
  const [changes, invoices, subs] = await Promise.all([
    readChanges(svc, rangeEnd),
    readInvoices(svc),
    readSubscriptions(svc),
  ]);
  const subscriptionPlan = new Map(subs.map((s) => [s.tenant_id, s.plan_code]));
  const state = new MrrState();
  const happenings: Happening[] = [];
  for (const change of changes) {
    const at = Date.parse(change.at);
    if (at < rangeStart) state.apply(change);
    else if (at < rangeEnd) happenings.push({ at, change });
  }
  for (const invoice of invoices) {
    const at = invoice.paid_at ? Date.parse(invoice.paid_at) : NaN;
    if (at >= rangeStart && at < rangeEnd) happenings.push({ at, invoice });
  }
  happenings.sort((a, b) => a.at - b.at || (a.change ? 0 : 1) - (b.change ? 0 : 1));
  const currencies = new Set([...state.totals().keys()]);
  for (const h of happenings) currencies.add((h.change ?? h.invoice).currency);

  let next = 0;
  const out = buckets.map((bucket): AnalyticsBucket => {
    const figures = new Map([...currencies].map((c) => [c, zero()]));
    for (const [currency, t] of state.totals()) figures.get(currency)!.mrr_start = t.mrr;
    const payingStart = state.paying();
    const churned = new Set<string>();
    const byPlan: Record<string, Money> = {};
    for (; next < happenings.length && happenings[next].at < bucket.end; next++) {
      const { change, invoice } = happenings[next];
      if (change) {
        const churn = classify(figures.get(change.currency)!, change);
        if (churn && payingStart.has(change.tenant_id)) churned.add(change.tenant_id);
        state.apply(change);
      } else {
        figures.get(invoice.currency)!.revenue += invoice.amount_paid;
        const plan = state.tenants.get(invoice.tenant_id)?.plan ??
          subscriptionPlan.get(invoice.tenant_id) ?? UNMAPPED_PLAN;
        addMoney(byPlan[plan] ??= {}, invoice.currency, invoice.amount_paid);
      }
    }
    let paying = 0;
    for (const [currency, t] of state.totals()) {
      const f = figures.get(currency)!;
      f.mrr = t.mrr;
      f.paying_tenants = t.paying;
      paying += t.paying;
    }
    for (const f of figures.values()) {
      f.arpu = f.paying_tenants ? Math.round(f.mrr / f.paying_tenants) : null;
      f.revenue_churn_rate = ratio(f.churned + f.contraction, f.mrr_start);
      f.net_revenue_retention = ratio(
        f.mrr_start + f.expansion - f.contraction - f.churned,
        f.mrr_start,
      );
    }
    return {
      period: bucket.label,
      start: iso(bucket.start),
      end: iso(bucket.end),
      paying_tenants_start: payingStart.size,
      paying_tenants: paying,
      churned_tenants: churned.size,
      logo_churn_rate: ratio(churned.size, payingStart.size),
      by_currency: Object.fromEntries([...figures].sort(([a], [b]) => a.localeCompare(b))),
      revenue_by_plan: byPlan,
    };
  });
  return {
    generated_at: iso(now),
    interval,
    from: dayOf(rangeStart),
    to: dayOf(Math.min(rangeEnd - DAY_MS, now)),
    currencies: [...currencies].sort(),
    buckets: out,
  };
}
