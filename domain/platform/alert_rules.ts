/**
 * The alert rules: what each measures, and when it fires (platform/alerts.ts evaluates them every
 * minute). A rule's condition holds while its value is at or above its threshold; it fires once
 * the condition has held for its duration. Thresholds and durations have defaults here, and
 * STEWARD_ALERT_RULES overrides them (through `Services.alertRules`).
 */
import { keys } from "../../kv/keys.ts";
import { listQueues } from "./queues.ts";
import { backupStatus } from "../vault/backups.ts";
import type { StripeSyncMarks } from "../billing/stripe_client.ts";
import type { WebhookEndpoint } from "../webhooks/endpoints.ts";
import type { Services } from "../shared/services.ts";
import { dayOf } from "../shared/time.ts";

export const ALERT_RULE_NAMES = [
  "job_queue_backlog",
  "job_oldest_due_age",
  "dead_jobs",
  "webhook_endpoints_disabled",
  "stripe_signature_failures",
  "stripe_event_lag",
  "vault_sealed",
  "backup_age",
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
];

/** A rule as it applies: its threshold and duration, and where they come from. */
export interface EffectiveRule extends AlertRule {
  source: "default" | "env";
}

/** The rules with STEWARD_ALERT_RULES applied, in the order of ALERT_RULE_NAMES. */
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
      source: "env" as const,
    };
  });
}
