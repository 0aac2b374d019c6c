/**
 * Platform traffic per day (requests, errors, bytes, verifications), as the aggregator counts
 * it, and the platform overview built on it.
 */
import { keys } from "../../kv/keys.ts";
import { dailyCounts } from "./activity.ts";
import { readCounter } from "../../kv/table.ts";
import { TRAFFIC_METRICS, type TrafficMetric } from "./aggregator.ts";
import { type Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { DAY_MS, dayOf, iso, monthOf, monthRange } from "../shared/time.ts";
import { badRequest } from "../shared/errors.ts";

export type TrafficDay<M extends TrafficMetric> = { date: string } & Record<M, number>;

/**
 * The chosen metrics per day over the range, zero-filled: what is persisted plus what is
 * pending in this process (counter deltas and the aggregator's in-memory numbers).
 */
export async function dailyTraffic<M extends TrafficMetric>(
  svc: Services,
  metrics: readonly M[],
  range: { from: number; to: number },
): Promise<{ from: string; to: string; days: TrafficDay<M>[]; totals: Record<M, number> }> {
  const stored = await svc.pg?.read((pg) =>
    pg.trafficDays(metrics, dayOf(range.from), dayOf(range.to))
  );
  const series = await Promise.all(
    metrics.map((m) => dailyCounts(svc, (day) => keys.traffic(m, day), range, stored?.get(m))),
  );
  const totals = Object.fromEntries(metrics.map((m) => [m, 0])) as Record<M, number>;
  const days = series[0].map(({ date }, i) => {
    const day = { date } as TrafficDay<M>;
    metrics.forEach((m, j) => {
      const n = series[j][i].count + svc.aggregator.pendingTraffic(m, date);
      (day as Record<M, number>)[m] = n;
      totals[m] += n;
    });
    return day;
  });
  return { from: dayOf(range.from), to: dayOf(range.to), days, totals };
}

export interface PlatformOverview {
  generated_at: string;
  tenants: { total: number; by_status: Record<string, number>; by_plan: Record<string, number> };
  users: number;
  active_keys: number;
  today: TrafficSummary;
  period: TrafficSummary & { month: string; start: string; end: string };
}

interface TrafficSummary {
  requests: number;
  verifications: number;
  errors: number;
  bytes_in: number;
  bytes_out: number;
  /** 5xx answers ÷ requests, 0 without requests. */
  error_rate: number;
}

const summarize = (t: Record<TrafficMetric, number>): TrafficSummary => ({
  requests: t.requests,
  verifications: t.verifications,
  errors: t.errors,
  bytes_in: t.bytes_in,
  bytes_out: t.bytes_out,
  error_rate: t.requests ? Math.round((t.errors / t.requests) * 10_000) / 10_000 : 0,
});

/**
 * The platform at a glance: tenants by status and plan (deleted ones left out), users, active
 * keys, and traffic today and in a calendar month (UTC; `period` YYYY-MM, default this one).
 */
export async function platformOverview(
  svc: Services,
  period = monthOf(svc.now()),
): Promise<PlatformOverview> {
  const now = svc.now();
  if (period > monthOf(now)) {
    throw badRequest(`period ${period} has not begun`, [{
      path: ["query", "period"],
      message: "must not be a future month",
    }]);
  }
  const byStatus: Record<string, number> = {};
  const byPlan: Record<string, number> = {};
  const tenantIds: string[] = [];
  for await (const e of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    if (e.value.status === "deleted") continue;
    tenantIds.push(e.value.id);
    byStatus[e.value.status] = (byStatus[e.value.status] ?? 0) + 1;
    byPlan[e.value.plan] = (byPlan[e.value.plan] ?? 0) + 1;
  }
  const keyCounts = await Promise.all(
    tenantIds.map((id) => readCounter(svc.kv, keys.tenantKeyCount(id))),
  );
  const month = monthRange(period, now);
  const [today, inPeriod] = await Promise.all([
    dailyTraffic(svc, TRAFFIC_METRICS, { from: now, to: now }),
    dailyTraffic(svc, TRAFFIC_METRICS, month),
  ]);
  return {
    generated_at: iso(now),
    tenants: { total: tenantIds.length, by_status: byStatus, by_plan: byPlan },
    users: await readCounter(svc.kv, keys.userCount()),
    active_keys: keyCounts.reduce((a, b) => a + b, 0),
    today: summarize(today.totals),
    period: {
      month: period,
      start: iso(month.from),
      end: iso(month.to + DAY_MS - 1),
      ...summarize(inPeriod.totals),
    },
  };
}
