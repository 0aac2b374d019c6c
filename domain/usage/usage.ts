/**
 * Metered usage: what each tenant consumed, by metric, per quota period and per day. Verify
 * counts `verifications` through the write-behind counters; platforms report other metrics
 * in batches (POST /v1/usage/events). An event id counts once within 24 h, and an accepted
 * event is committed with its id in one commit, so a retried batch never counts twice and an
 * acknowledged one is never lost. Each accepted event also writes its usage-stream item in that
 * commit. `verifications` are reported against a key: they count in its per-key statistics too,
 * which stay the sum of the tenant's (the diagnostics' drift check).
 */
import { getBatched } from "../../kv/batch.ts";
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { checksPerCommit } from "../../kv/open.ts";
import { dailyCounts } from "./activity.ts";
import { getPlanByCode, type Plan, VERIFICATIONS } from "../tenancy/plans.ts";
import { type Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { eventItems } from "./stream.ts";
import { DAY_MS, dayOf, iso, quotaPeriod } from "../shared/time.ts";

export const METRIC_PATTERN = /^[a-z][a-z0-9_.]{0,63}$/;
const MAX_AGE_MS = 35 * DAY_MS;
const MAX_AHEAD_MS = 5 * 60_000;
const DEDUPE_MS = DAY_MS;

export interface UsageEvent {
  id: string;
  tenant_id?: string;
  key_id?: string;
  metric: string;
  quantity: number;
  timestamp: string;
}

/** An event that did not match the schema: its id when it had one, and what was wrong. */
export interface InvalidEvent {
  id: string | null;
  invalid: string;
}

export type Outcome =
  | { id: string; status: "accepted" | "duplicate" }
  | { id: string | null; status: "rejected"; reason: string };

interface Placed {
  event: UsageEvent;
  tenant: Tenant;
  plan: Plan | null;
  at: number;
}

/** What a batch's events refer to, each read once: keys' tenants, tenants, tenants' plans. */
interface Lookups {
  keyTenants: Map<string, string | null>;
  tenants: Map<string, Tenant | null>;
  plans: Map<string, Plan | null>;
}

/** `read` of every distinct id at once (concurrent reads go to KV together, kv/batch.ts). */
async function readEach<T>(ids: Set<string>, read: (id: string) => Promise<T>) {
  return new Map(await Promise.all([...ids].map(async (id) => [id, await read(id)] as const)));
}

/** The value at `key` through the verify cache: as fresh as verify's view (svc.cache). */
async function cached<T>(svc: Services, key: Deno.KvKey): Promise<T | null> {
  return (await svc.cache.get<T>(key)).value;
}

/**
 * Reads the keys, tenants and plans the events name: three rounds of concurrent reads per
 * batch, however many events, instead of three reads one after another per event. They go
 * through the verify cache, so a busy tenant's batches read no KV before their commit, and see
 * a suspension, a deletion or a plan change as verify does (at once in this process).
 */
async function lookUp(svc: Services, events: UsageEvent[]): Promise<Lookups> {
  const keyIds = new Set<string>();
  const tenantIds = new Set<string>();
  for (const e of events) {
    if (e.key_id && !e.tenant_id) keyIds.add(e.key_id);
    if (e.tenant_id && !e.key_id) tenantIds.add(e.tenant_id);
  }
  const keyTenants = await readEach(keyIds, (id) => cached<string>(svc, keys.apiKeyTenant(id)));
  for (const id of keyTenants.values()) if (id) tenantIds.add(id);
  const tenants = await readEach(tenantIds, (id) => cached<Tenant>(svc, keys.tenant(id)));
  const codes = new Set<string>();
  for (const tenant of tenants.values()) if (tenant) codes.add(tenant.plan);
  const plans = await readEach(codes, async (code) => {
    const id = await cached<string>(svc, keys.planCode(code));
    return id === null ? null : cached<Plan>(svc, keys.plan(id));
  });
  return { keyTenants, tenants, plans };
}

/** The tenant an event belongs to, or why it cannot be counted. */
function place(
  found: Lookups,
  event: UsageEvent,
  boundTenant: string | null,
  now: number,
): Placed | string {
  if (!event.tenant_id === !event.key_id) return "give exactly one of tenant_id and key_id";
  const tenantId = event.tenant_id ?? found.keyTenants.get(event.key_id!);
  if (!tenantId || (boundTenant && tenantId !== boundTenant)) {
    return event.key_id ? "unknown key_id" : "unknown tenant_id";
  }
  const tenant = found.tenants.get(tenantId);
  if (!tenant || tenant.status === "deleted") return "unknown tenant_id";
  const at = Date.parse(event.timestamp);
  if (at < now - MAX_AGE_MS) return "timestamp is more than 35 days old";
  if (at > now + MAX_AHEAD_MS) return "timestamp is more than 5 minutes ahead";
  return { event, tenant, plan: found.plans.get(tenant.plan) ?? null, at };
}

const periodKey = (p: Placed) =>
  keys.usagePeriod(
    p.tenant.id,
    p.event.metric,
    quotaPeriod(p.plan?.quota?.period ?? "month", p.at).label,
  );

/**
 * Counts a batch: each event accepted, a duplicate (its id was counted within 24 h, or
 * earlier in this batch), or rejected with the reason; one event's fate never stops another.
 * Events come checked against the schema; those that failed it come as InvalidEvent.
 */
export async function ingestUsage(
  svc: Services,
  events: (UsageEvent | InvalidEvent)[],
  boundTenant: string | null,
): Promise<Outcome[]> {
  const outcomes = new Map<number, Outcome>();
  const accepted: { index: number; placed: Placed }[] = [];
  const seen = new Set<string>();
  const found = await lookUp(svc, events.filter((e): e is UsageEvent => !("invalid" in e)));
  const now = svc.now();
  for (const [index, event] of events.entries()) {
    if ("invalid" in event) {
      outcomes.set(index, { id: event.id, status: "rejected", reason: event.invalid });
      continue;
    }
    const placed = event.metric === VERIFICATIONS && !event.key_id
      ? "verifications are reported against a key: give key_id"
      : place(found, event, boundTenant, now);
    if (typeof placed === "string") {
      outcomes.set(index, { id: event.id, status: "rejected", reason: placed });
      continue;
    }
    const name = `${placed.tenant.id}\u0000${event.id}`;
    if (seen.has(name)) outcomes.set(index, { id: event.id, status: "duplicate" });
    else {
      seen.add(name);
      accepted.push({ index, placed });
    }
  }
  // One check per event: a batch of 100 is one commit on a local store, ten over KV Connect.
  const perCommit = checksPerCommit(svc.kv);
  for (let i = 0; i < accepted.length; i += perCommit) {
    const chunk = accepted.slice(i, i + perCommit);
    const fresh = await commitChunk(svc, chunk.map((c) => c.placed));
    chunk.forEach((c, j) =>
      outcomes.set(c.index, { id: c.placed.event.id, status: fresh[j] ? "accepted" : "duplicate" })
    );
  }
  return events.map((_, index) => outcomes.get(index)!);
}

/** Amounts added up per counter: one `sum` per counter a commit touches, not one per event. */
class Sums {
  readonly #byName = new Map<string, [Deno.KvKey, bigint]>();
  add(key: Deno.KvKey, amount: bigint) {
    const name = JSON.stringify(key);
    const entry = this.#byName.get(name);
    if (entry) entry[1] += amount;
    else this.#byName.set(name, [key, amount]);
  }
  [Symbol.iterator]() {
    return this.#byName.values();
  }
}

/** Commits the events whose ids are new, with their ids; returns which were new. */
function commitChunk(svc: Services, placed: Placed[]): Promise<boolean[]> {
  const markers = placed.map((p) => keys.usageEventId(p.tenant.id, p.event.id));
  // New ids are the common case: first commit them all as new, unread; only when a marker is
  // there (a retried batch, a race, one past its 24 h that KV has not expired yet) read the
  // markers and commit what is new.
  let unread = true;
  return retrying(async () => {
    const existing: Deno.KvEntryMaybe<unknown>[] = unread
      ? markers.map((key) => ({ key, value: null, versionstamp: null }))
      : await Promise.all(markers.map((key) => getBatched(svc.kv, key)));
    const now = svc.now();
    const fresh = existing.map((e) =>
      e.versionstamp === null || (e.value as { until: number }).until <= now
    );
    const op = svc.kv.atomic();
    const sums = new Sums();
    const counted: Parameters<typeof eventItems>[0] = [];
    placed.forEach((p, i) => {
      if (!fresh[i]) return;
      const amount = BigInt(p.event.quantity);
      op.check(existing[i]).set(markers[i], { until: now + DEDUPE_MS }, { expireIn: DEDUPE_MS });
      counted.push({ tenantId: p.tenant.id, event: p.event, at: p.at });
      sums.add(periodKey(p), amount);
      sums.add(keys.usageDaily(p.tenant.id, p.event.metric, dayOf(p.at)), amount);
      if (p.event.metric === VERIFICATIONS) {
        sums.add(keys.keyUsageDaily(p.tenant.id, p.event.key_id!, dayOf(p.at)), amount);
      }
    });
    for (const [key, amount] of sums) op.sum(key, amount);
    // The usage stream's page of these events, in the same commit.
    if (counted.length) op.mutate(eventItems(counted, now));
    if (!(await commit(op))) {
      unread = false;
      return CONFLICT;
    }
    // The verify cache holds persisted counters: keep them exact without a read.
    for (const [key, amount] of sums) {
      svc.cache.adjust(key, amount);
      svc.pg?.touched(key);
    }
    return fresh;
  });
}

export interface MetricUsage {
  metric: string;
  used: number;
  quota: number | null;
  remaining: number | null;
  percent: number | null;
  period_start: string;
  period_end: string;
}

/** The tenant's use of every metric in its current quota period (verifications always listed). */
export async function currentUsage(svc: Services, tenant: Tenant): Promise<MetricUsage[]> {
  const plan = (await getPlanByCode(svc, tenant.plan))?.value ?? null;
  const period = quotaPeriod(plan?.quota?.period ?? "month", svc.now());
  const used = new Map<string, number>([[VERIFICATIONS, 0]]);
  for await (const e of svc.kv.list<Deno.KvU64>({ prefix: keys.usages(tenant.id) })) {
    if (e.key.at(-1) === period.label) used.set(e.key.at(-2) as string, Number(e.value.value));
  }
  return [...used.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([metric, stored]) => {
    const total = stored +
      svc.counters.pending(keys.usagePeriod(tenant.id, metric, period.label));
    const quota = metric === VERIFICATIONS ? plan?.quota?.units ?? null : null;
    return {
      metric,
      used: total,
      quota,
      remaining: quota === null ? null : Math.max(0, quota - total),
      percent: quota === null ? null : Math.round((total / quota) * 10_000) / 100,
      period_start: iso(period.start),
      period_end: period.endIso,
    };
  });
}

/** One metric per day over the range, zero-filled, including what is still pending. */
export async function dailyUsage(
  svc: Services,
  tenantId: string,
  metric: string,
  range: { from: number; to: number },
) {
  const stored = await svc.pg?.read((pg) =>
    pg.usageDays(tenantId, metric, dayOf(range.from), dayOf(range.to))
  );
  const counts = await dailyCounts(
    svc,
    (day) => keys.usageDaily(tenantId, metric, day),
    range,
    stored,
  );
  return {
    metric,
    from: dayOf(range.from),
    to: dayOf(range.to),
    total: counts.reduce((n, d) => n + d.count, 0),
    days: counts.map((d) => ({ date: d.date, used: d.count })),
  };
}
