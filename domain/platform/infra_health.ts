/**
 * The infrastructure's health, for operators (`GET /v1/admin/system/health`): every component
 * with a status (`ok`, `degraded`, `down`, or `off` when it is not configured) and its latency or
 * age. Cheap by design: the KV and Postgres probes of /health, the job counters, the last run of
 * each cron, the aggregator's figures from memory, a handful of small reads. `/health` stays the
 * public summary.
 */
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import type { StripeSyncMarks } from "../billing/stripe_client.ts";
import type { EmailMessage } from "../email/outbox.ts";
import { WEBHOOK_QUEUE } from "../jobs/names.ts";
import type { Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import type { EndpointHealth, WebhookEndpoint } from "../webhooks/endpoints.ts";
import { firingAlerts } from "./alerts.ts";
import { kvProbe, type Probe, runChecks } from "./health.ts";
import { MAINTENANCE_TASKS, type MaintenanceRun } from "./maintenance.ts";
import { listQueues, type QueueSummary } from "./queues.ts";
import { storeSize } from "./store_size.ts";

export const COMPONENT_STATUSES = ["ok", "degraded", "down", "off"] as const;
export type ComponentStatus = typeof COMPONENT_STATUSES[number];

/** A due job waiting longer than this makes its queue degraded. */
export const QUEUE_LAG_WARN_MS = 5 * 60_000;
/** A Stripe configured but silent for longer than this is degraded. */
export const STRIPE_EVENT_WARN_HOURS = 24;
/** A cron whose due run is this late is degraded. */
export const CRON_LATE_MS = 5 * 60_000;
/** The aggregator is degraded when its last flush is older than this many flush intervals. */
const FLUSH_LAG_INTERVALS = 10;
/** The Postgres copy is degraded when its buffer is this full. */
const PG_BUFFER_WARN = 0.8;
/** Tenants whose webhook endpoints are looked at (their health marks): a bound on the scan. */
const WEBHOOK_TENANT_SCAN = 1_000;
/** Newest outbox messages read for the last send. */
const EMAIL_WINDOW = 50;

const HOUR_MS = 3_600_000;

const RANK: Record<ComponentStatus, number> = { off: 0, ok: 1, degraded: 2, down: 3 };

/** The worst of `statuses`, `off` left out; `ok` when all are off. */
export function worstOf(statuses: ComponentStatus[]): Exclude<ComponentStatus, "off"> {
  let worst: Exclude<ComponentStatus, "off"> = "ok";
  for (const s of statuses) if (s !== "off" && RANK[s] > RANK[worst]) worst = s;
  return worst;
}

// ── Cron schedules ──────────────────────────────────────────────────────────

/** The values one cron field allows (minute 0–59, hour 0–23): `*`, `*\/n`, `a`, `a-b`, lists. */
function cronField(field: string, max: number): Set<number> {
  const out = new Set<number>();
  for (const part of field.split(",")) {
    const m = part.match(/^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/);
    if (!m) throw new Error(`unsupported cron field "${field}"`);
    const step = m[2] ? Number(m[2]) : 1;
    const [from, to] = m[1] === "*"
      ? [0, max]
      : m[1].includes("-")
      ? m[1].split("-").map(Number)
      : [Number(m[1]), m[2] ? max : Number(m[1])];
    if (step < 1 || from > to || to > max) throw new Error(`unsupported cron field "${field}"`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

/**
 * The first time strictly after `after` (ms, UTC) that the 5-field cron expression `expr` fires.
 * Minute and hour fields take `*`, `*\/n`, numbers, ranges and lists; day of month, month and
 * day of week must be `*` (the schedules of MAINTENANCE_TASKS).
 */
export function nextCronRun(expr: string, after: number): number {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 || fields.slice(2).some((f) => f !== "*")) {
    throw new Error(`unsupported cron expression "${expr}"`);
  }
  const minutes = [...cronField(fields[0], 59)].sort((a, b) => a - b);
  const hours = cronField(fields[1], 23);
  const start = new Date(Math.floor(after / 60_000) * 60_000 + 60_000);
  for (let day = 0; day < 2; day++) {
    const base = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + day);
    for (let h = 0; h < 24; h++) {
      if (!hours.has(h)) continue;
      for (const m of minutes) {
        const at = base + h * HOUR_MS + m * 60_000;
        if (at > after) return at;
      }
    }
  }
  throw new Error(`cron expression "${expr}" never fires`);
}

// ── Components ──────────────────────────────────────────────────────────────

export interface InfraHealthOptions {
  /** STEWARD_KV_PATH: the store's file (its size is reported), `:memory:` or a remote URL. */
  kvPath: string;
  /** The Postgres ping (main.ts's readiness probe named `postgres`), when configured. */
  probes?: Probe[];
}

async function kvComponent(svc: Services, opts: InfraHealthOptions) {
  const [{ checks }, size] = await Promise.all([
    runChecks([kvProbe(svc.kv, { remove: true })]),
    storeSize(opts.kvPath),
  ]);
  const probe = checks.kv;
  return {
    status: probe.status === "ok" ? "ok" as const : "down" as const,
    latency_ms: probe.latency_ms,
    error: probe.error ?? null,
    size: size,
  };
}

async function postgresComponent(svc: Services, opts: InfraHealthOptions) {
  if (!svc.pg) return { status: "off" as const };
  const ping = (opts.probes ?? []).find((p) => p.name === "postgres");
  const probe = ping ? (await runChecks([ping])).checks.postgres : null;
  const s = svc.pg.status();
  const buffered = s.buffered.logs + s.buffered.daily_counters;
  const status: ComponentStatus = probe?.status === "failing"
    ? "down"
    : s.last_error !== null || buffered >= s.max_buffered * PG_BUFFER_WARN || s.dropped_rows > 0
    ? "degraded"
    : "ok";
  return {
    status,
    latency_ms: probe?.latency_ms ?? null,
    error: probe?.error ?? s.last_error,
    last_write_at: s.last_write_at,
    lag_ms: s.last_write_at === null ? null : Math.max(0, svc.now() - Date.parse(s.last_write_at)),
    write_errors: s.write_errors,
    dropped_rows: s.dropped_rows,
    buffered,
    max_buffered: s.max_buffered,
  };
}

function vaultComponent(svc: Services) {
  const { sealed, key_id, source, previous_key_id } = svc.vault.state;
  return {
    status: sealed ? "down" as const : "ok" as const,
    sealed,
    key_id,
    source,
    previous_key_id,
  };
}

function queueStatus(q: QueueSummary): ComponentStatus {
  return q.paused || q.counts.dead > 0 || (q.oldest_due_age_ms ?? 0) > QUEUE_LAG_WARN_MS
    ? "degraded"
    : "ok";
}

function queuesComponent(queues: QueueSummary[]) {
  const items = queues.map((q) => ({
    name: q.name,
    status: queueStatus(q),
    depth: q.counts.pending + q.counts.failed,
    counts: q.counts,
    oldest_due_age_ms: q.oldest_due_age_ms,
    paused: q.paused,
    paused_at: q.paused_at,
    dead: q.counts.dead,
  }));
  return { status: worstOf(items.map((q) => q.status)), queues: items };
}

async function cronsComponent(svc: Services) {
  const now = svc.now();
  const runs = await Promise.all(
    MAINTENANCE_TASKS.map((t) => getBatched<MaintenanceRun>(svc.kv, keys.maintenanceRun(t.name))),
  );
  const tasks = MAINTENANCE_TASKS.map((task, i) => {
    const run = runs[i].value;
    const off = task.name === "backup-store" && !svc.backups.dir;
    const started = run ? Date.parse(run.started_at) : null;
    // The run due after the last one should have started by now (give it a few minutes).
    const late = started !== null && nextCronRun(task.schedule, started) + CRON_LATE_MS < now;
    const status: ComponentStatus = off ? "off" : run?.error != null || late ? "degraded" : "ok";
    return {
      name: task.name,
      schedule: task.schedule,
      status,
      last_run: run
        ? {
          started_at: run.started_at,
          age_ms: Math.max(0, now - started!),
          duration_ms: run.duration_ms,
          outcome: run.error === null ? "succeeded" as const : "failed" as const,
          error: run.error,
        }
        : null,
      next_run_at: off ? null : iso(nextCronRun(task.schedule, now)),
    };
  });
  return { status: worstOf(tasks.map((t) => t.status)), tasks };
}

function aggregatorComponent(svc: Services) {
  const now = svc.now();
  const s = svc.aggregator.status();
  const lag = s.last_flush_at === null ? null : Math.max(0, now - Date.parse(s.last_flush_at));
  const status: ComponentStatus = !s.enabled
    ? "off"
    : (lag !== null && lag > s.flush_interval_ms * FLUSH_LAG_INTERVALS) || s.dropped_logs > 0
    ? "degraded"
    : "ok";
  return {
    status,
    last_flush_at: s.last_flush_at,
    flush_lag_ms: lag,
    pending_buckets: s.pending_buckets,
    pending_logs: s.pending_logs,
    flush_errors: s.flush_errors,
    dropped_logs: s.dropped_logs,
    last_error: s.last_error,
  };
}

/** Health marks and disabled endpoints of the platform's and (up to a bound) tenants' webhooks. */
async function endpointFigures(svc: Services, now: number) {
  let failing = 0;
  let disabled = 0;
  let oldestFailing: number | null = null;
  const scan = async (tenantId: string | null) => {
    const [marks, endpoints] = await Promise.all([
      Array.fromAsync(svc.kv.list<EndpointHealth>({ prefix: keys.webhookHealths(tenantId) })),
      Array.fromAsync(svc.kv.list<WebhookEndpoint>({ prefix: keys.webhookEndpoints(tenantId) })),
    ]);
    for (const { value } of marks) {
      failing++;
      oldestFailing = Math.min(oldestFailing ?? Infinity, value.failing_since);
    }
    disabled += endpoints.filter((e) => !e.value.enabled).length;
  };
  await scan(null);
  let scanned = 0;
  const batch: string[] = [];
  const flush = () => Promise.all(batch.splice(0).map(scan));
  for await (
    const e of svc.kv.list<Tenant>({ prefix: keys.tenants() }, { limit: WEBHOOK_TENANT_SCAN + 1 })
  ) {
    if (scanned === WEBHOOK_TENANT_SCAN) break;
    scanned++;
    batch.push(e.value.id);
    if (batch.length === 25) await flush();
  }
  await flush();
  return {
    failing_endpoints: failing,
    oldest_failing_age_ms: oldestFailing === null ? null : Math.max(0, now - oldestFailing),
    disabled_endpoints: disabled,
    tenants_scanned: scanned,
    truncated: scanned === WEBHOOK_TENANT_SCAN,
  };
}

async function webhooksComponent(svc: Services, queues: QueueSummary[]) {
  const queue = queues.find((q) => q.name === WEBHOOK_QUEUE) ?? null;
  const endpoints = await endpointFigures(svc, svc.now());
  const dead = queue?.counts.dead ?? 0;
  return {
    status: dead > 0 ? "degraded" as const : "ok" as const,
    pending_deliveries: queue ? queue.counts.pending + queue.counts.running : 0,
    retrying_deliveries: queue?.counts.failed ?? 0,
    dead_deliveries: dead,
    oldest_due_age_ms: queue?.oldest_due_age_ms ?? null,
    ...endpoints,
  };
}

async function stripeComponent(svc: Services) {
  if (!svc.stripe) {
    return { status: "off" as const, last_event_at: null, last_event_age_ms: null };
  }
  const marks = (await svc.kv.get<StripeSyncMarks>(keys.stripeSync())).value;
  const at = marks?.last_event_at ?? null;
  const age = at === null ? null : Math.max(0, svc.now() - Date.parse(at));
  return {
    status: age !== null && age > STRIPE_EVENT_WARN_HOURS * HOUR_MS
      ? "degraded" as const
      : "ok" as const,
    last_event_at: at,
    last_event_age_ms: age,
  };
}

async function emailComponent(svc: Services) {
  const recent = await Array.fromAsync(
    svc.kv.list<EmailMessage>({ prefix: keys.emails() }, { reverse: true, limit: EMAIL_WINDOW }),
  );
  const sent = recent.find((e) => e.value.status === "sent")?.value ?? null;
  const settled = recent.find((e) => e.value.status === "sent" || e.value.status === "failed");
  const failed = recent.filter((e) => e.value.status === "failed").length;
  const queued = recent.filter((e) => e.value.status === "queued").length;
  const lastSentAt = sent ? sent.sent_at ?? sent.updated_at : null;
  const status: ComponentStatus = !svc.mailer.sends
    ? "off"
    : settled?.value.status === "failed"
    ? "degraded"
    : "ok";
  return {
    status,
    mode: svc.mailer.sends ? "smtp" as const : "captured" as const,
    last_sent_at: lastSentAt,
    last_sent_age_ms: lastSentAt === null ? null : Math.max(0, svc.now() - Date.parse(lastSentAt)),
    recent_failed: failed,
    recent_queued: queued,
  };
}

/**
 * Every component's figures and the overall status (the worst, `off` left out), and the firing
 * alerts (domain/platform/alerts.ts; they do not change the status: their causes do).
 */
export async function infraHealth(svc: Services, opts: InfraHealthOptions) {
  const queues = await listQueues(svc);
  const [kv, postgres, crons, webhooks, stripe, email, firing] = await Promise.all([
    kvComponent(svc, opts),
    postgresComponent(svc, opts),
    cronsComponent(svc),
    webhooksComponent(svc, queues),
    stripeComponent(svc),
    emailComponent(svc),
    firingAlerts(svc),
  ]);
  const components = {
    kv,
    postgres,
    vault: vaultComponent(svc),
    queues: queuesComponent(queues),
    crons,
    aggregator: aggregatorComponent(svc),
    webhooks,
    stripe,
    email,
  };
  return {
    status: worstOf(Object.values(components).map((c) => c.status)),
    generated_at: iso(svc.now()),
    components,
    alerts: {
      firing: firing.length,
      items: firing.map((a) => ({
        id: a.id,
        rule: a.rule,
        value: a.value,
        threshold: a.threshold,
        link: a.link,
        started_at: a.started_at,
        acknowledged_at: a.acknowledged_at,
      })),
    },
  };
}

export type InfraHealth = Awaited<ReturnType<typeof infraHealth>>;
