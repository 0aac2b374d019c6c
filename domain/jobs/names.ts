/**
 * The names of webhook work in the job system: one queue (pausing it pauses every delivery),
 * and a job type per step — turning an event into messages, delivering one message (its first
 * attempt and every retry), and re-queueing an endpoint's failed messages.
 */
export const WEBHOOK_QUEUE = "webhooks";
export const FANOUT_JOB = "webhook.fanout";
export const DELIVER_JOB = "webhook.deliver";
export const RECOVER_JOB = "webhook.recover";

/** Work that follows a tenant's deletion: revoking what still grants access to it. */
export const TENANT_QUEUE = "tenants";
export const TENANT_CLEANUP_JOB = "tenant.cleanup";

/** Outgoing email: one job per message (email/outbox.ts). */
export const EMAIL_QUEUE = "email";
export const SEND_EMAIL_JOB = "email.send";

/** The vault's data key rotations (platform/vault_rotation.ts): one job in steps. */
export const VAULT_QUEUE = "vault";
export const VAULT_ROTATE_JOB = "vault.rotate";

/** Billing on Stripe (billing/): applying a received event, and a reconciliation in steps. */
export const BILLING_QUEUE = "billing";
export const STRIPE_APPLY_JOB = "stripe.apply";
export const STRIPE_RECONCILE_JOB = "stripe.reconcile";
