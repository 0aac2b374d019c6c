/**
 * The alert rules: what each measures, and when it fires (platform/alerts.ts evaluates them every
 * minute). A rule's condition holds while its value is at or above its threshold; it fires once
 * the condition has held for its duration. Thresholds and durations have defaults here, and
 * STEWARD_ALERT_RULES overrides them (through `Services.alertRules`).
 */
import { keys } from "../../kv/keys.ts";
import { listQueues } from "./queues.ts";
import { storeSize } from "./store_size.ts";
import { backupStatus } from "../vault/backups.ts";
import type { StripeSyncMarks } from "../billing/stripe_client.ts";
import { type AnswerCounts, MINUTE_MS, recentAnswers } from "../usage/answer_rates.ts";
import type { WebhookEndpoint } from "../webhooks/endpoints.ts";
import type { WebhookAttempt } from "../webhooks/messages.ts";
import type { Services } from "../shared/services.ts";
import { timePrefix } from "../shared/ids.ts";
import { dayOf, iso } from "../shared/time.ts";

export const ALERT_RULE_NAMES = [
  "job_queue_backlog",
  "job_oldest_due_age",
  "dead_jobs",
  "webhook_endpoints_disabled",
  "stripe_signature_failures",
  "stripe_event_lag",
  "vault_sealed",
  "backup_age",
  "usage_flush_lag",
  "usage_flush_errors",
  "webhook_failure_rate",
  "postgres_unreachable",
  "postgres_buffer",
  "server_error_rate",
  "rate_limited_rate",
  "auth_failures",
  "kv_store_size",
] as const;
export type AlertRuleName = typeof ALERT_RULE_NAMES[number];

/** What a rule measured: its value and the resource it concerns (a path of the API). */
export interface Measure {
  value: number;
  link: string;
}

export interface AlertRule {
  name: AlertRuleName;
  description: string;
  /** What `value` counts. */
  unit: string;
  /** The condition holds while the value is at or above this. */
  threshold: number;
  /** How long the condition must hold before the rule fires. */
  duration_seconds: number;
  /** The current value; null when the rule does not apply (Stripe or backups off, nothing yet). */
  measure(svc: Services): Promise<Measure | null>;
}

const QUEUES = "/v1/admin/system/queues";

/** The queue with the largest `of`, as a measure. */
async function worstQueue(
  svc: Services,
  of: (q: Awaited<ReturnType<typeof listQueues>>[number]) => number,
  link: (name: string) => string,
): Promise<Measure> {
  let worst: Measure = { value: 0, link: QUEUES };
  for (const q of await listQueues(svc)) {
    const value = of(q);
    if (value > worst.value) worst = { value, link: link(q.name) };
  }
  return worst;
}

/** Recent answers: the whole minutes the rate rules look at, and the fewest that make a rate. */
const ANSWER_WINDOW_MINUTES = 5;
const MIN_ANSWERS = 50;

/**
 * A share of the answers of the last whole minutes (percent), or a count per minute; null while
 * the aggregator sheds analytics (nothing is counted then).
 */
async function answerMeasure(
  svc: Services,
  of: (a: AnswerCounts) => number,
  per: "share" | "minute",
  query: string,
): Promise<Measure | null> {
  if (!svc.aggregator.collecting) return null;
  const now = svc.now();
  const answers = await recentAnswers(svc.kv, now, ANSWER_WINDOW_MINUTES);
  const from = Math.floor(now / MINUTE_MS) * MINUTE_MS - ANSWER_WINDOW_MINUTES * MINUTE_MS;
  const value = per === "minute"
    ? Math.round(of(answers) / ANSWER_WINDOW_MINUTES)
    : answers.answers < MIN_ANSWERS
    ? 0
    : Math.round((100 * of(answers)) / answers.answers);
  return { value, link: `/v1/admin/logs?${query}&from=${encodeURIComponent(iso(from))}` };
}

/** Webhook attempts looked at: those of the messages made this long ago at most… */
const WEBHOOK_WINDOW_MS = 3_600_000;
/** …at most this many (the newest), and an endpoint's rate counts from this many attempts. */
const WEBHOOK_MAX_ATTEMPTS = 10_000;
const WEBHOOK_MIN_ATTEMPTS = 5;

/** The platform endpoint (enabled) whose recent attempts failed most, in percent. */
async function worstEndpoint(svc: Services): Promise<Measure> {
  const live = new Set<string>();
  for await (
    const { value: e } of svc.kv.list<WebhookEndpoint>({ prefix: keys.webhookEndpoints(null) })
  ) {
    if (e.status === "active" && e.enabled) live.add(e.id);
  }
  const tally = new Map<string, { attempts: number; failed: number }>();
  if (live.size) {
    const prefix = keys.webhookAttemptsIn(null);
    const attempts = svc.kv.list<WebhookAttempt>(
      { prefix, start: [...prefix, `msg_${timePrefix(svc.now() - WEBHOOK_WINDOW_MS)}`] },
      { reverse: true, limit: WEBHOOK_MAX_ATTEMPTS },
    );
    for await (const { value: a } of attempts) {
      if (!live.has(a.endpoint_id)) continue;
      let t = tally.get(a.endpoint_id);
      if (!t) tally.set(a.endpoint_id, t = { attempts: 0, failed: 0 });
      t.attempts++;
      if (a.status === "failed") t.failed++;
    }
  }
  let worst: Measure = { value: 0, link: "/v1/admin/webhooks" };
  for (const [id, t] of tally) {
    if (t.attempts < WEBHOOK_MIN_ATTEMPTS) continue;
    const value = Math.round((100 * t.failed) / t.attempts);
    if (value > worst.value) worst = { value, link: `/v1/admin/webhooks/${id}` };
  }
  return worst;
}

/** A Postgres ping that answers within this long, or counts as unreachable. */
const PG_PING_TIMEOUT_MS = 5_000;

async function pgReachable(ping: () => Promise<void>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), PG_PING_TIMEOUT_MS);
  });
  try {
    await Promise.race([ping(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

const AGGREGATOR = "/v1/admin/usage/aggregator-status";
const SYSTEM_HEALTH = "/v1/admin/system/health";

const RULES: AlertRule[] = [
  {
    name: "job_queue_backlog",
    description: "Jobs waiting to run (pending or failed and due again) in the fullest queue.",
    unit: "jobs",
    threshold: 1_000,
    duration_seconds: 300,
    measure: (svc) =>
      worstQueue(
        svc,
        (q) => q.counts.pending + q.counts.failed,
        (name) => `${QUEUES}/${name}/jobs?status=pending`,
      ),
  },
  {
    name: "job_oldest_due_age",
    description: "How long the most overdue job has waited past its due time, in any queue.",
    unit: "seconds",
    threshold: 600,
    duration_seconds: 0,
    measure: (svc) =>
      worstQueue(
        svc,
        (q) => Math.floor((q.oldest_due_age_ms ?? 0) / 1000),
        (name) => `${QUEUES}/${name}/jobs`,
      ),
  },
  {
    name: "dead_jobs",
    description: "Jobs with no attempts left (dead), over every queue.",
    unit: "jobs",
    threshold: 1,
    duration_seconds: 0,
    measure: async (svc) => {
      let value = 0;
      let link = QUEUES;
      for (const q of await listQueues(svc)) {
        if (q.counts.dead > 0 && value === 0) link = `${QUEUES}/${q.name}/jobs?status=dead`;
        value += q.counts.dead;
      }
      return { value, link };
    },
  },
  {
    name: "webhook_endpoints_disabled",
    description: "Platform webhook endpoints Steward disabled because deliveries kept failing " +
      "(tenants' endpoints are not counted).",
    unit: "endpoints",
    threshold: 1,
    duration_seconds: 0,
    measure: async (svc) => {
      let value = 0;
      let link = "/v1/admin/webhooks";
      for await (
        const { value: e } of svc.kv.list<WebhookEndpoint>({ prefix: keys.webhookEndpoints(null) })
      ) {
        if (e.status !== "active" || e.enabled || e.disabled_reason === null) continue;
        if (value++ === 0) link = `/v1/admin/webhooks/${e.id}`;
      }
      return { value, link };
    },
  },
  {
    name: "stripe_signature_failures",
    description: "Stripe webhook deliveries refused for their signature today (UTC); only with " +
      "Stripe configured.",
    unit: "deliveries",
    threshold: 10,
    duration_seconds: 0,
    measure: async (svc) => {
      if (!svc.stripe) return null;
      const entry = await svc.kv.get<Deno.KvU64>(keys.stripeSignatureFailures(dayOf(svc.now())));
      return {
        value: Number(entry.value?.value ?? 0n),
        link: "/v1/admin/finance/stripe-sync-status",
      };
    },
  },
  {
    name: "stripe_event_lag",
    description: "Time since the last event Stripe sent; only with Stripe configured, once an " +
      "event came.",
    unit: "seconds",
    threshold: 86_400,
    duration_seconds: 0,
    measure: async (svc) => {
      if (!svc.stripe) return null;
      const marks = (await svc.kv.get<StripeSyncMarks>(keys.stripeSync())).value;
      if (!marks?.last_event_at) return null;
      return {
        value: Math.max(0, Math.floor((svc.now() - Date.parse(marks.last_event_at)) / 1000)),
        link: "/v1/admin/finance/stripe-sync-status",
      };
    },
  },
  {
    name: "vault_sealed",
    description: "1 while the vault is sealed (no master key): secrets cannot be opened.",
    unit: "boolean",
    threshold: 1,
    duration_seconds: 0,
    measure: (svc) =>
      Promise.resolve({ value: svc.vault.state.sealed ? 1 : 0, link: "/v1/admin/vault/health" }),
  },
  {
    name: "backup_age",
    description: "Hours since the last succeeded backup; only with backups enabled, once one " +
      "succeeded.",
    unit: "hours",
    threshold: 48,
    duration_seconds: 0,
    measure: async (svc) => {
      if (!svc.backups.dir) return null;
      const status = await backupStatus(svc);
      if (status.last_success_age_seconds === null) return null;
      return {
        value: Math.floor(status.last_success_age_seconds / 3600),
        link: "/v1/admin/vault/backup-status",
      };
    },
  },
  {
    name: "usage_flush_lag",
    description: "Seconds since the evaluating process last flushed usage counters or request " +
      "logs successfully, while some wait (0 when none wait; each process flushes its own).",
    unit: "seconds",
    threshold: 300,
    duration_seconds: 0,
    measure: (svc) =>
      Promise.resolve({
        value: Math.floor(svc.aggregator.flushHealth().lag_ms / 1000),
        link: AGGREGATOR,
      }),
  },
  {
    name: "usage_flush_errors",
    description: "Flushes of usage counters or request logs (to KV) that failed in a row, in the " +
      "evaluating process.",
    unit: "flushes",
    threshold: 3,
    duration_seconds: 120,
    measure: (svc) =>
      Promise.resolve({ value: svc.aggregator.flushHealth().errors_in_row, link: AGGREGATOR }),
  },
  {
    name: "webhook_failure_rate",
    description: "Failed share of the delivery attempts of the last hour's messages, for the " +
      "enabled platform endpoint that fails most (from 5 attempts; tenants' are not counted).",
    unit: "percent",
    threshold: 50,
    duration_seconds: 300,
    measure: worstEndpoint,
  },
  {
    name: "postgres_unreachable",
    description: "1 while Postgres does not answer a ping (within 5 s); only with DATABASE_URL.",
    unit: "boolean",
    threshold: 1,
    duration_seconds: 60,
    measure: async (svc) => {
      if (!svc.pg) return null;
      const ok = await pgReachable(() => svc.pg!.analytics.store.ping());
      return { value: ok ? 0 : 1, link: SYSTEM_HEALTH };
    },
  },
  {
    name: "postgres_buffer",
    description: "How full the evaluating process's buffer of rows waiting for Postgres is, " +
      "against its bound (PG_BUFFER_MAX_ROWS; past it rows are dropped); only with DATABASE_URL.",
    unit: "percent",
    threshold: 80,
    duration_seconds: 0,
    measure: (svc) => {
      if (!svc.pg) return Promise.resolve(null);
      const s = svc.pg.status();
      const buffered = s.buffered.logs + s.buffered.daily_counters;
      return Promise.resolve({
        value: Math.floor((100 * buffered) / s.max_buffered),
        link: AGGREGATOR,
      });
    },
  },
  {
    name: "server_error_rate",
    description: "Share of the answers of the last 5 whole minutes that were 5xx, every process " +
      "counted (0 under 50 answers); not while analytics are shed.",
    unit: "percent",
    threshold: 5,
    duration_seconds: 0,
    measure: (svc) => answerMeasure(svc, (a) => a.server_errors, "share", "level=error"),
  },
  {
    name: "rate_limited_rate",
    description: "Share of the answers of the last 5 whole minutes that were 429, every process " +
      "counted (0 under 50 answers); not while analytics are shed.",
    unit: "percent",
    threshold: 25,
    duration_seconds: 300,
    measure: (svc) => answerMeasure(svc, (a) => a.rate_limited, "share", "status=429"),
  },
  {
    name: "auth_failures",
    description: "401 answers per minute over the last 5 whole minutes, every process counted; " +
      "not while analytics are shed.",
    unit: "answers per minute",
    threshold: 100,
    duration_seconds: 0,
    measure: (svc) => answerMeasure(svc, (a) => a.unauthorized, "minute", "status=401"),
  },
  {
    name: "kv_store_size",
    description: "Size of the store's file and write-ahead log; only for a store in a local file.",
    unit: "MiB",
    threshold: 10_240,
    duration_seconds: 0,
    measure: async (svc) => {
      const size = await storeSize(svc.backups.store);
      if (!size) return null;
      return { value: Math.floor(size.total_bytes / 1_048_576), link: SYSTEM_HEALTH };
    },
  },
];

/**
 * A rule as it applies: its threshold and duration, and whether they are the rule's defaults or
 * overridden (by STEWARD_ALERT_RULES or the configuration API: GET /v1/admin/config says which).
 */
export interface EffectiveRule extends AlertRule {
  source: "default" | "override";
}

/** The rules with their overrides applied, in the order of ALERT_RULE_NAMES. */
export function alertRules(svc: Services): EffectiveRule[] {
  return RULES.map((rule) => {
    const set = svc.alertRules?.[rule.name];
    if (!set || (set.threshold === undefined && set.duration_seconds === undefined)) {
      return { ...rule, source: "default" as const };
    }
    return {
      ...rule,
      threshold: set.threshold ?? rule.threshold,
      duration_seconds: set.duration_seconds ?? rule.duration_seconds,
      source: "override" as const,
    };
  });
}
