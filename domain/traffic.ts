/** Platform traffic per day (requests, errors, bytes, verifications), as the aggregator counts it. */
import { keys } from "../kv/keys.ts";
import { dailyCounts, dayOf } from "./activity.ts";
import type { TrafficMetric } from "./aggregator.ts";
import type { Services } from "./services.ts";

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
  const series = await Promise.all(
    metrics.map((m) => dailyCounts(svc, (day) => keys.traffic(m, day), range)),
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
