/**
 * The job types this process runs, by type: what main.ts's queue listener, the sweep and the
 * test harness pass to the runner (domain/jobs/jobs.ts). A module that enqueues a job type adds its
 * handler here, so jobs.ts never imports the modules that own job types. A job whose type is
 * missing goes dead with `no handler for job type "…"`.
 */
import type { JobHandlers } from "../jobs/jobs.ts";
import { deliverJob } from "../webhooks/delivery.ts";
import { fanOutJob, recoverJob } from "../webhooks/dispatch.ts";
import {
  DELIVER_JOB,
  FANOUT_JOB,
  RECOVER_JOB,
  SEND_EMAIL_JOB,
  STRIPE_APPLY_JOB,
  STRIPE_RECONCILE_JOB,
  TENANT_CLEANUP_JOB,
  VAULT_ROTATE_JOB,
} from "../jobs/names.ts";
import { stripeApplyJob } from "../billing/stripe_events.ts";
import { reconcileJob } from "../billing/reconcile.ts";
import { sendEmailJob } from "../email/outbox.ts";
import { cleanUpDeletedTenant } from "./tenant_cleanup.ts";
import { rotateJob } from "./vault_rotation.ts";

export const JOB_HANDLERS: JobHandlers = {
  [FANOUT_JOB]: fanOutJob,
  [DELIVER_JOB]: deliverJob,
  [RECOVER_JOB]: recoverJob,
  [TENANT_CLEANUP_JOB]: cleanUpDeletedTenant,
  [SEND_EMAIL_JOB]: sendEmailJob,
  [VAULT_ROTATE_JOB]: rotateJob,
  [STRIPE_APPLY_JOB]: stripeApplyJob,
  [STRIPE_RECONCILE_JOB]: reconcileJob,
};
