/**
 * What a principal did, day by day, and the tenants it works in. The request middleware
 * counts every authenticated request into svc.counters (written behind, never a KV write per
 * request); reads add what is still pending, so they are exact in this process.
 */
import { keys } from "../../kv/keys.ts";
import { counter, type Dated, dated, type NamedKey, remembered } from "../../kv/names.ts";
import type { SumBuffer } from "../../kv/sum_buffer.ts";
import { getRecord, readCounter } from "../../kv/table.ts";
import { badRequest } from "../shared/errors.ts";
import type { TenantRole } from "../access/permissions.ts";
import { listMemberships, type Principal } from "../access/principal.ts";
import { type Services } from "../shared/services.ts";
import { tenantTable } from "../tenancy/tenants.ts";
import { DAY_MS, dayOf } from "../shared/time.ts";

export const MAX_RANGE_DAYS = 366;
const DEFAULT_RANGE_DAYS = 30;

/**
 * Counts one authenticated request by `principalId` on the UTC day of `nowMs`: in memory
 * only (synchronous, no KV access); the buffer writes it behind.
 */
export function recordRequest(buffer: SumBuffer, principalId: string, nowMs: number): void {
  const day = dayOf(nowMs);
  const held = remembered(dailyCounters, principalId, () => ({}));
  held.daily = dated(held.daily, day, () => counter("sum", keys.principalDaily(principalId, day)));
  const daily = held.daily.value;
  // Lazy: a statistic, written every tenth flush (see kv/sum_buffer.ts).
  buffer.add(daily.key, 1, true, daily.name);
}

/** Each principal's counter of the day, named once (kv/names.ts): every request adds to it. */
const dailyCounters = new Map<string, { daily?: Dated<NamedKey<"sum">> }>();

/**
 * The inclusive day range asked for: both ends as YYYY-MM-DD, from ≤ to, at most 366 days.
 * Defaults to the last 30 days ending today.
 */
export function dayRange(now: number, from?: string, to?: string): { from: number; to: number } {
  const end = to ? Date.parse(`${to}T00:00:00Z`) : Date.parse(`${dayOf(now)}T00:00:00Z`);
  const start = from ? Date.parse(`${from}T00:00:00Z`) : end - (DEFAULT_RANGE_DAYS - 1) * DAY_MS;
  if (start > end) {
    throw badRequest("from must not be after to", [{
      path: ["query", "from"],
      message: "after to",
    }]);
  }
  if ((end - start) / DAY_MS + 1 > MAX_RANGE_DAYS) {
    throw badRequest(`the range is over ${MAX_RANGE_DAYS} days`, [
      { path: ["query", "from"], message: `at most ${MAX_RANGE_DAYS} days before to` },
    ]);
  }
  return { from: start, to: end };
}

export interface DailyRequests {
  principal_id: string;
  from: string;
  to: string;
  total: number;
  days: { date: string; requests: number }[];
}

/**
 * A write-behind counter per day (`dayKey(date)`) over the range, zero-filled: what is
 * persisted (in KV, or the values given in `stored`, read from Postgres) plus what is still
 * pending in this process.
 */
export async function dailyCounts(
  svc: Services,
  dayKey: (date: string) => Deno.KvKey,
  range: { from: number; to: number },
  stored?: Map<string, number>,
): Promise<{ date: string; count: number }[]> {
  if (!stored) {
    stored = new Map();
    const selector = { start: dayKey(dayOf(range.from)), end: dayKey(`${dayOf(range.to)}~`) };
    for await (const e of svc.kv.list<Deno.KvU64>(selector)) {
      stored.set(e.key.at(-1) as string, Number(e.value.value));
    }
  }
  const days = [];
  for (let t = range.from; t <= range.to; t += DAY_MS) {
    const date = dayOf(t);
    days.push({ date, count: (stored.get(date) ?? 0) + svc.counters.pending(dayKey(date)) });
  }
  return days;
}

/** Requests per day in the range, zero-filled. */
export async function dailyRequests(
  svc: Services,
  principalId: string,
  range: { from: number; to: number },
): Promise<DailyRequests> {
  const counts = await dailyCounts(svc, (day) => keys.principalDaily(principalId, day), range);
  const days = counts.map((d) => ({ date: d.date, requests: d.count }));
  return {
    principal_id: principalId,
    from: dayOf(range.from),
    to: dayOf(range.to),
    total: days.reduce((n, d) => n + d.requests, 0),
    days,
  };
}

export interface TenantSummary {
  tenant_id: string;
  slug: string;
  name: string;
  status: string;
  is_test: boolean;
  plan: string;
  role: TenantRole | null;
  active_keys: number;
}

/** The tenants the caller works in (memberships, or a bound token's tenant), with their figures. */
export async function overview(svc: Services, caller: Principal) {
  const memberships: { tenant_id: string; role: TenantRole | null }[] = caller.tenant_id
    ? [{ tenant_id: caller.tenant_id, role: null }]
    : caller.type === "user"
    ? await listMemberships(svc, caller.id)
    : [];
  const tenants: TenantSummary[] = [];
  for (const m of memberships) {
    const [tenant, activeKeys] = await Promise.all([
      getRecord(svc.kv, tenantTable, m.tenant_id),
      readCounter(svc.kv, keys.tenantKeyCount(m.tenant_id)),
    ]);
    const t = tenant?.value;
    if (!t || t.status === "deleted") continue;
    tenants.push({
      tenant_id: t.id,
      slug: t.slug,
      name: t.name,
      status: t.status,
      is_test: t.is_test,
      plan: t.plan,
      role: m.role,
      active_keys: activeKeys,
    });
  }
  const today = dayOf(svc.now());
  const { total } = await dailyRequests(svc, caller.id, dayRange(svc.now(), today, today));
  return { principal_id: caller.id, requests_today: total, tenants };
}
