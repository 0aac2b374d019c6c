/**
 * The usage pipeline's health (GET /v1/admin/usage/diagnostics): how far behind this process's
 * write-behind flushes are, the threshold gate, whether the per-key verification counters still
 * add up to each tenant's (counter drift), and the last run of every maintenance task.
 *
 * Drift compares, per tenant, the sum of its keys' daily verification units with its own daily
 * and period counters, persisted plus pending in this process, so a healthy pipeline shows 0.
 * The two sides are written by different flushes (per-key counters are lazy), so a flush
 * landing between the reads would count an amount on one side only: the check waits for no
 * flush to be writing and reads again if one started meanwhile. Another process's deltas not
 * yet written show as drift until they are (up to ten flush intervals for the per-key side).
 */
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import { MAINTENANCE_TASKS, type MaintenanceRun } from "./maintenance.ts";
import { getPlanByCode, VERIFICATIONS } from "../tenancy/plans.ts";
import { type Services } from "../shared/services.ts";
import type { GateStats } from "../keys/threshold_gate.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { dayOf, iso, quotaPeriod } from "../shared/time.ts";

/** Per-key counter entries the drift check reads at most, over all tenants. */
const DRIFT_SCAN_BUDGET = 100_000;
/** Reads of one tenant retried while flushes keep landing between them. */
const DRIFT_ATTEMPTS = 5;

export interface DriftingTenant {
  tenant_id: string;
  scope: "day" | "period";
  /** The day (YYYY-MM-DD) or the quota period (YYYY-MM or YYYY) compared. */
  label: string;
  per_key: number;
  per_tenant: number;
  /** per_tenant − per_key. */
  difference: number;
}

interface Counts {
  day: { label: string; per_key: number; per_tenant: number };
  period: { label: string; per_key: number; per_tenant: number };
  scanned: number;
}

const persisted = (e: Deno.KvEntryMaybe<Deno.KvU64>) => Number(e.value?.value ?? 0n);

/** One tenant's two sides, for today and its current quota period. */
async function tenantCounts(svc: Services, tenant: Tenant, now: number): Promise<Counts> {
  const plan = (await getPlanByCode(svc, tenant.plan))?.value ?? null;
  const period = quotaPeriod(plan?.quota?.period ?? "month", now);
  const today = dayOf(now);
  const [first, last] = [dayOf(period.start), dayOf(period.end - 1)];
  const dayKey = keys.usageDaily(tenant.id, VERIFICATIONS, today);
  const periodKey = keys.usagePeriod(tenant.id, VERIFICATIONS, period.label);
  // ["t", tenant, "key_usage"]: every key's days.
  const perKey = keys.keyUsageDaily(tenant.id, "", "").slice(0, 3);
  let counts: Counts | null = null;
  for (let attempt = 0; attempt < DRIFT_ATTEMPTS; attempt++) {
    const mark = await svc.counters.idle();
    counts = {
      day: { label: today, per_key: 0, per_tenant: svc.counters.pending(dayKey) },
      period: { label: period.label, per_key: 0, per_tenant: svc.counters.pending(periodKey) },
      scanned: 0,
    };
    const c = counts;
    const addKeyDay = (day: string, n: number) => {
      if (day === today) c.day.per_key += n;
      if (day >= first && day <= last) c.period.per_key += n;
    };
    for (const [key, n] of svc.counters.pendingSums()) {
      if (key.length === 5 && perKey.every((part, i) => key[i] === part)) {
        addKeyDay(key[4] as string, n);
      }
    }
    for await (const e of svc.kv.list<Deno.KvU64>({ prefix: perKey })) {
      c.scanned++;
      addKeyDay(e.key.at(-1) as string, Number(e.value.value));
    }
    const [day, total] = await svc.kv.getMany<Deno.KvU64[]>([dayKey, periodKey]);
    c.day.per_tenant += persisted(day);
    c.period.per_tenant += persisted(total);
    if (svc.counters.writeMark === mark) break;
  }
  return counts!;
}

export interface DriftReport {
  day: string;
  checked_tenants: number;
  /** More tenants than `limit` (or than the scan budget allowed) were left unchecked. */
  more_tenants: boolean;
  drifting_tenants: DriftingTenant[];
}

/** Drift of the first `limit` live tenants (in id order). */
async function checkDrift(svc: Services, limit: number): Promise<DriftReport> {
  const now = svc.now();
  const report: DriftReport = {
    day: dayOf(now),
    checked_tenants: 0,
    more_tenants: false,
    drifting_tenants: [],
  };
  let budget = DRIFT_SCAN_BUDGET;
  for await (const e of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    if (e.value.status === "deleted") continue;
    if (report.checked_tenants === limit || budget <= 0) {
      report.more_tenants = true;
      break;
    }
    const counts = await tenantCounts(svc, e.value, now);
    budget -= counts.scanned;
    report.checked_tenants++;
    for (const scope of ["day", "period"] as const) {
      const { label, per_key, per_tenant } = counts[scope];
      if (per_key === per_tenant) continue;
      report.drifting_tenants.push({
        tenant_id: e.value.id,
        scope,
        label,
        per_key,
        per_tenant,
        difference: per_tenant - per_key,
      });
    }
  }
  return report;
}

/** Every maintenance task with its schedule and last recorded run (null before the first). */
async function maintenanceRuns(svc: Services) {
  const runs = await Promise.all(
    MAINTENANCE_TASKS.map((t) => getBatched<MaintenanceRun>(svc.kv, keys.maintenanceRun(t.name))),
  );
  return MAINTENANCE_TASKS.map((task, i) => {
    const run = runs[i].value;
    return {
      task: task.name,
      schedule: task.schedule,
      last_run: run
        ? {
          started_at: run.started_at,
          duration_ms: run.duration_ms,
          result: run.result,
          error: run.error,
        }
        : null,
    };
  });
}

/** Everything the diagnostics endpoint answers; `gate` is the app's threshold gate. */
export async function usageDiagnostics(svc: Services, gate: GateStats, driftTenants: number) {
  const now = svc.now();
  const status = svc.aggregator.status();
  const lastFlush = status.last_flush_at ? Date.parse(status.last_flush_at) : null;
  return {
    generated_at: iso(now),
    pipeline: {
      enabled: status.enabled,
      flush_interval_ms: status.flush_interval_ms,
      last_flush_at: status.last_flush_at,
      flush_lag_ms: lastFlush === null ? null : Math.max(0, now - lastFlush),
      pending_buckets: status.pending_buckets,
      pending_logs: status.pending_logs,
      flushes: status.flushes,
      flush_errors: status.flush_errors,
      last_error: status.last_error,
      dropped_logs: status.dropped_logs,
    },
    threshold_gate: { ...gate },
    drift: await checkDrift(svc, driftTenants),
    maintenance: await maintenanceRuns(svc),
    // The copy to Postgres (buffered rows, write errors) when DATABASE_URL is set; else null.
    postgres: svc.pg?.status() ?? null,
  };
}
