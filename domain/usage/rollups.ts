/**
 * Daily rollups: one UTC day summed up once it is over — the platform's traffic and every
 * tenant's usage totals — so reports and other stores (Postgres) read one record per day
 * instead of the counters. Rolling a day up again rewrites the same records: what the counters
 * hold (persisted, plus what this process still has pending) decides them entirely.
 */
import { getBatched } from "../../kv/batch.ts";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { TRAFFIC_METRICS, type TrafficMetric } from "./aggregator.ts";
import type { Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { dailyTraffic } from "./traffic.ts";
import { dayOf } from "../shared/time.ts";

const DAY_MS = 86_400_000;
/** Days before yesterday that the cron rolls up when they have no rollup yet (missed runs). */
const CATCH_UP_DAYS = 7;
/** Writes per commit, well inside KV's 1000 mutations. */
const WRITES_PER_COMMIT = 500;

export interface TenantRollup {
  day: string;
  tenant_id: string;
  /** Metric → units used that day (metrics with no use left out). */
  usage: Record<string, number>;
}

/** The platform record of a day (`keys.rollup`); the tenants' totals are records of their own. */
export interface DayRollup {
  day: string;
  traffic: Record<TrafficMetric, number>;
  /** Metric → units used that day by all tenants together. */
  usage: Record<string, number>;
  /** Tenants with any use that day. */
  tenant_count: number;
}

export type Rollup = DayRollup & { tenants: TenantRollup[] };

/** A tenant's use of each metric on `day`, persisted plus pending; metrics unused that day left out. */
async function tenantUsage(svc: Services, tenantId: string, day: string) {
  const metrics = new Set<string>();
  // Every metric counted per day is counted per period too: the periods name the metrics.
  for await (const e of svc.kv.list({ prefix: keys.usages(tenantId) })) {
    metrics.add(e.key.at(-2) as string);
  }
  const names = [...metrics].sort();
  const usage: Record<string, number> = {};
  const daily = names.map((m) => keys.usageDaily(tenantId, m, day));
  const entries = await Promise.all(daily.map((key) => getBatched<Deno.KvU64>(svc.kv, key)));
  entries.forEach((entry, i) => {
    const used = Number(entry.value?.value ?? 0n) + svc.counters.pending(daily[i]);
    if (used > 0) usage[names[i]] = used;
  });
  return usage;
}

/** Computes the rollup of `day` (YYYY-MM-DD) and writes it; returns it. */
export async function rollupDay(svc: Services, day: string): Promise<Rollup> {
  const start = Date.parse(`${day}T00:00:00Z`);
  const traffic = (await dailyTraffic(svc, TRAFFIC_METRICS, { from: start, to: start })).totals;
  const tenants: TenantRollup[] = [];
  const usage: Record<string, number> = {};
  // Deleted tenants too: their use that day happened.
  for await (const e of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    const used = await tenantUsage(svc, e.value.id, day);
    if (Object.keys(used).length === 0) continue;
    tenants.push({ day, tenant_id: e.value.id, usage: used });
    for (const [metric, n] of Object.entries(used)) usage[metric] = (usage[metric] ?? 0) + n;
  }
  const record: DayRollup = {
    day,
    traffic,
    usage: Object.fromEntries(Object.entries(usage).sort(([a], [b]) => a.localeCompare(b))),
    tenant_count: tenants.length,
  };

  const writes: Deno.KvMutation[] = tenants.map((t) => ({
    type: "set",
    key: keys.tenantRollup(day, t.tenant_id),
    value: t,
  }));
  // A tenant whose use an earlier run saw and this one does not (its counters were reset).
  const current = new Set(tenants.map((t) => t.tenant_id));
  for await (const e of svc.kv.list({ prefix: keys.tenantRollups(day) })) {
    if (!current.has(e.key.at(-1) as string)) writes.push({ type: "delete", key: e.key });
  }
  // The day's record last: once it is there, the day's tenants are too.
  writes.push({ type: "set", key: keys.rollup(day), value: record });
  for (let i = 0; i < writes.length; i += WRITES_PER_COMMIT) {
    await commit(svc.kv.atomic().mutate(...writes.slice(i, i + WRITES_PER_COMMIT)));
  }
  // Postgres gets the day's absolute values too: this mends a copy that a crash cut short.
  await svc.pg?.analytics.upsertDaily([
    ...TRAFFIC_METRICS.map((metric) => ({
      kind: "traffic" as const,
      metric,
      day,
      quantity: traffic[metric],
    })),
    ...tenants.flatMap((t) =>
      Object.entries(t.usage).map(([metric, quantity]) => ({
        kind: "usage" as const,
        tenant_id: t.tenant_id,
        metric,
        day,
        quantity,
      }))
    ),
  ]);
  return { ...record, tenants };
}

/**
 * The cron: rolls up yesterday (again, if it ran before: idempotent), and any of the days
 * before it, up to a week back, that have no rollup (a missed run). Returns how many days.
 */
export async function rollupRecentDays(svc: Services): Promise<number> {
  const now = svc.now();
  let rolled = 0;
  for (let back = 1; back <= 1 + CATCH_UP_DAYS; back++) {
    const day = dayOf(now - back * DAY_MS);
    if (back > 1 && (await svc.kv.get(keys.rollup(day))).versionstamp !== null) continue;
    await rollupDay(svc, day);
    rolled++;
  }
  return rolled;
}

/** The platform records of the days in range that have one, oldest first. */
export async function listRollups(
  svc: Services,
  range: { from: number; to: number },
): Promise<DayRollup[]> {
  const found: DayRollup[] = [];
  const selector = {
    start: keys.rollup(dayOf(range.from)),
    end: keys.rollup(`${dayOf(range.to)}~`),
  };
  for await (const e of svc.kv.list<DayRollup>(selector)) found.push(e.value);
  return found;
}
