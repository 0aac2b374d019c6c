/**
 * Scheduled maintenance: what each cron tick does. main.ts registers the schedules. Every
 * worker's cron fires for the same tick, so each run first takes a lease named after the task
 * and the tick's minute: the first worker runs it, the others see the lease and skip. The lease
 * is left to expire (not released) so a worker that fires late cannot run the tick again.
 */
import { keys } from "../../kv/keys.ts";
import { acquireLease } from "../../kv/lease.ts";
import { expireApiKeys } from "../keys/api_keys.ts";
import { resumeErasures } from "../identity/erasure.ts";
import { expireInvitations } from "../identity/invitations.ts";
import { JOB_HANDLERS } from "./job_handlers.ts";
import { pruneFinishedJobs, runDueJobs } from "../jobs/jobs.ts";
import { pruneExpiredLogs } from "../usage/request_logs.ts";
import { pruneAnswerRates } from "../usage/answer_rates.ts";
import { rollupRecentDays } from "../usage/rollups.ts";
import { pruneSessions } from "../identity/sessions.ts";
import { pruneWebhookHistory } from "../webhooks/retention.ts";
import { retireSigningKeys } from "../keys/signing_keys.ts";
import { noticeExpiringKeys } from "./key_expiry_notices.ts";
import { liftSuspensions } from "../identity/user_lifecycle.ts";
import { type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { BACKUP_SCHEDULE, backupDue, writeBackup } from "../vault/backups.ts";
import { reportOverage } from "../billing/overage.ts";
import { pruneStripeEvents } from "../billing/stripe_events.ts";
import { iso } from "../shared/time.ts";
import { evaluateAlerts } from "./alerts.ts";

export interface MaintenanceTask {
  name: string;
  /** Cron expression (UTC). */
  schedule: string;
  run(svc: Services): Promise<Record<string, number>>;
}

/** The last run of a task, for the operations endpoints. */
export interface MaintenanceRun {
  task: string;
  started_at: string;
  duration_ms: number;
  result: Record<string, number> | null;
  error: string | null;
}

export const MAINTENANCE_TASKS: MaintenanceTask[] = [
  {
    name: "notice-expiring-keys",
    schedule: "7 * * * *",
    run: async (svc) => ({ expiring_keys_noticed: await noticeExpiringKeys(svc) }),
  },
  {
    name: "expire-sessions",
    schedule: "*/10 * * * *",
    run: async (svc) => ({ sessions_deleted: await pruneSessions(svc) }),
  },
  {
    // Reads already treat a suspension past its `until` as lifted; this writes it down.
    name: "lift-suspensions",
    schedule: "* * * * *",
    run: async (svc) => ({ suspensions_lifted: await liftSuspensions(svc) }),
  },
  {
    name: "retire-signing-keys",
    schedule: "*/5 * * * *",
    run: async (svc) => ({ signing_keys_retired: await retireSigningKeys(svc) }),
  },
  {
    name: "prune-request-logs",
    schedule: "17 3 * * *",
    run: async (svc) => ({ request_logs_deleted: await pruneExpiredLogs(svc) }),
  },
  {
    // The backstop of the in-process sweeps (main.ts): due jobs run even if every one stalls.
    name: "sweep-jobs",
    schedule: "* * * * *",
    run: async (svc) => ({
      jobs_run: await runDueJobs(svc, JOB_HANDLERS, { limit: 1_000, concurrency: 4 }),
    }),
  },
  {
    name: "prune-webhook-history",
    schedule: "47 3 * * *",
    run: (svc) =>
      pruneWebhookHistory(svc).then((r) => ({
        webhook_events_deleted: r.events_deleted,
        webhook_messages_deleted: r.messages_deleted,
        webhook_attempts_deleted: r.attempts_deleted,
      })),
  },
  {
    name: "prune-jobs",
    schedule: "37 3 * * *",
    run: async (svc) => ({ jobs_deleted: await pruneFinishedJobs(svc) }),
  },
  {
    name: "resume-erasures",
    schedule: "*/10 * * * *",
    run: async (svc) => ({ erasures_finished: await resumeErasures(svc) }),
  },
  {
    // Reads already say `expired` past the deadline; this writes it down.
    name: "expire-invitations",
    schedule: "*/10 * * * *",
    run: async (svc) => ({ invitations_expired: await expireInvitations(svc) }),
  },
  {
    // Reads already say `expired`; this records it, so the live-key counts and events follow.
    name: "expire-api-keys",
    schedule: "* * * * *",
    run: async (svc) => ({ api_keys_expired: await expireApiKeys(svc) }),
  },
  {
    name: "rollup-daily",
    schedule: "20 0 * * *",
    run: async (svc) => ({ days_rolled_up: await rollupRecentDays(svc) }),
  },
  {
    name: "prune-stripe-events",
    schedule: "57 3 * * *",
    run: async (svc) => ({ stripe_events_deleted: await pruneStripeEvents(svc) }),
  },
  {
    // Usage above the quota, to the plan's Stripe meter; nothing without Stripe.
    name: "report-overage",
    schedule: "* * * * *",
    run: async (svc) => {
      const { tenants, units } = await reportOverage(svc);
      return { overage_tenants: tenants, overage_units: units };
    },
  },
  {
    // The per-minute answer counts the alert rules read: a KvU64 sum ignores expireIn.
    name: "prune-answer-rates",
    schedule: "27 * * * *",
    run: async (svc) => ({ answer_rate_keys_deleted: await pruneAnswerRates(svc) }),
  },
  {
    // The alert rules (platform/alert_rules.ts): fire and resolve alerts.
    name: "evaluate-alerts",
    schedule: "* * * * *",
    run: (svc) => evaluateAlerts(svc),
  },
  {
    // Off without a backup directory (STEWARD_BACKUP_DIR=off, or a store in memory or remote).
    name: "backup-store",
    schedule: BACKUP_SCHEDULE,
    run: async (svc): Promise<Record<string, number>> => {
      if (!svc.backups.dir || !backupDue(svc)) return { backups_written: 0 };
      const backup = await writeBackup(svc, SYSTEM_ACTOR);
      return { backups_written: 1, entries: backup.entries!, bytes: backup.bytes! };
    },
  },
];

const TICK_LEASE_MS = 10 * 60_000;

/** Runs this tick of `task` if this worker wins its lease; returns the run, or null when another worker has it. */
export async function runMaintenance(
  svc: Services,
  task: MaintenanceTask,
  owner: string,
): Promise<MaintenanceRun | null> {
  const started = svc.now();
  const tick = Math.floor(started / 60_000);
  if (!(await acquireLease(svc.kv, `cron:${task.name}:${tick}`, owner, TICK_LEASE_MS, started))) {
    return null;
  }
  const run: MaintenanceRun = {
    task: task.name,
    started_at: iso(started),
    duration_ms: 0,
    result: null,
    error: null,
  };
  const t0 = performance.now();
  try {
    run.result = await task.run(svc);
  } catch (err) {
    run.error = err instanceof Error ? err.message : String(err);
  }
  run.duration_ms = Math.round(performance.now() - t0);
  await svc.kv.set(keys.maintenanceRun(task.name), run);
  return run;
}
