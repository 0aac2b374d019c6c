/**
 * Every event type Steward emits, with what it means and an example of its `data`: what
 * `GET /v1/webhooks/event-types` serves and what endpoints may filter on. Each mutation's event
 * carries the changed record as the audit trail shows it (secrets redacted) plus `actor`;
 * tests/audit/event_catalog_test.ts checks that every type the code emits is listed here, and that the
 * examples have the fields real events have.
 */

const AT = "2026-03-01T12:00:00.000Z";
const TENANT = "ten_01JQ3V5W7X9Y1Z3A5B7C9D1E3F";
const USER = "usr_01JQ3V5W7X9Y1Z3A5B7C9D1E3G";
const TOKEN = "tok_01JQ3V5W7X9Y1Z3A5B7C9D1E3H";
const PROJECT = "prj_01JQ3V5W7X9Y1Z3A5B7C9D1E3J";
const byUser = { actor: { type: "user", id: USER } };
const byToken = { actor: { type: "service_token", id: TOKEN } };
const bySystem = { actor: { type: "system", id: "system" } };

const tenant = {
  id: TENANT,
  name: "Acme Inc",
  slug: "acme",
  status: "active",
  is_test: false,
  plan: "pro",
  plan_override: false,
  plan_reason: null,
  key_prefix: null,
  metadata: { crm_id: "A-1" },
  feature_flags: { beta_api: true },
  suspended_reason: null,
  suspended_at: null,
  created_by: USER,
  created_at: AT,
  updated_at: AT,
  deleted_at: null,
};

const user = {
  id: USER,
  email: "ada@example.com",
  username: "ada",
  name: "Ada Lovelace",
  status: "active",
  platform_role: null,
  roles: [],
  metadata: {},
  blocked_reason: null,
  suspended_until: null,
  suspended_reason: null,
};

const project = {
  id: PROJECT,
  tenant_id: TENANT,
  name: "Storefront",
  status: "active",
  allowed_origins: ["https://shop.acme.test"],
  redirect_urls: ["https://shop.acme.test/callback"],
  metadata: {},
  created_by: USER,
  created_at: AT,
  updated_at: AT,
  deleted_at: null,
};

const apiKey = {
  id: "key_01JQ3V5W7X9Y1Z3A5B7C9D1E3K",
  tenant_id: TENANT,
  project_id: PROJECT,
  name: "checkout",
  environment: "live",
  start: "sk_live_8Qd2",
  scopes: ["orders:write"],
  expires_at: null,
  expired_at: null,
  rate_limit: { requests_per_second: 10, burst: 20 },
  meta: { customer: "cus_1" },
  external_id: "cus_1",
  revoked_at: null,
  rotated_from: null,
  rotated_to: null,
  created_by: USER,
  created_at: AT,
  updated_at: AT,
};

const plan = {
  id: "pln_01JQ3V5W7X9Y1Z3A5B7C9D1E3M",
  code: "team",
  name: "Team",
  price: { amount: 9900, currency: "usd", interval: "month" },
  rate_limit: { requests_per_second: 20, burst: 40 },
  quota: { units: 500000, period: "month" },
  sla: 99.5,
  features: { sso: true },
  stripe_price_id: null,
  stripe_meter_event_name: null,
  active: true,
  created_at: AT,
  updated_at: AT,
  archived_at: null,
};

const invitation = {
  id: "inv_01JQ3V5W7X9Y1Z3A5B7C9D1E3N",
  tenant_id: TENANT,
  email: "dev@acme.test",
  role: "member",
  status: "pending",
  expires_at: "2026-03-08T12:00:00.000Z",
  created_by: USER,
  created_at: AT,
  updated_at: AT,
  accepted_at: null,
  accepted_by: null,
  revoked_at: null,
};

const serviceToken = {
  id: TOKEN,
  name: "billing-sync",
  start: "stw_Bnyd",
  permissions: ["tenants:read", "billing:read"],
  tenant_id: null,
  test_tenants_only: false,
  expires_at: null,
  created_by: USER,
  created_at: AT,
  last_used_at: null,
  revoked_at: null,
};

const membership = { tenant_id: TENANT, user_id: USER, role: "member" };

const role = {
  id: "rol_01JQ3V5W7X9Y1Z3A5B7C9D1E3R",
  name: "Billing auditor",
  description: "Reads billing and finance; changes nothing.",
  permissions: ["billing:read", "finance:read", "tenants:read"],
  tenant_scoped: false,
};

const endpoint = {
  id: "whk_01JQ3V5W7X9Y1Z3A5B7C9D1E3P",
  tenant_id: TENANT,
  url: "https://hooks.acme.test/steward",
  description: "Provisioning",
  event_types: ["api_key.created", "api_key.revoked"],
  enabled: true,
  disabled_reason: null,
  disabled_at: null,
  metadata: {},
  previous_secret_expires_at: null,
  created_by: USER,
  created_at: AT,
  updated_at: AT,
  deleted_at: null,
};

const secret = {
  id: "sec_01JQ3V5W7X9Y1Z3A5B7C9D1E3V",
  tenant_id: TENANT,
  name: "smtp",
  type: "smtp",
  version: 2,
  versions: [2, 1],
  created_at: AT,
  created_by: USER,
  updated_at: AT,
  updated_by: USER,
  last_revealed_at: null,
};

const backup = {
  id: "bkp_01JQ3V5W7X9Y1Z3A5B7C9D1E3W",
  file: "steward-20260301T022300Z-bkp_01JQ3V5W7X9Y1Z3A5B7C9D1E3W.backup",
  status: "succeeded",
  consistency: "point_in_time",
  started_at: "2026-03-01T02:23:00.000Z",
  finished_at: "2026-03-01T02:23:04.000Z",
  entries: 48210,
  bytes: 3276800,
  sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  error: null,
};

const alert = {
  id: "alr_01JQ3V5W7X9Y1Z3A5B7C9D1E3X",
  rule: "dead_jobs",
  state: "firing",
  value: 3,
  threshold: 1,
  link: "/v1/admin/system/queues/webhooks/jobs?status=dead",
  started_at: AT,
  resolved_at: null,
  acknowledged_at: null,
  acknowledged_by: null,
};

const plugin = {
  id: "plg_01JQ3V5W7X9Y1Z3A5B7C9D1E3Y",
  name: "fraud-screen",
  version: "1.4.0",
  url: "https://plugins.acme.test/steward",
  events: ["tenant.created"],
  config_schema: { type: "object", properties: { threshold: { type: "number" } } },
  config: { threshold: 0.8 },
  hooks: [{ name: "tenant.creating", timeout_ms: 2000, on_failure: "open" }],
  enabled: true,
  endpoint_id: "whk_01JQ3V5W7X9Y1Z3A5B7C9D1E3Z",
  created_by: USER,
  created_at: AT,
  updated_at: AT,
  deleted_at: null,
};

const ipBlock = {
  id: "ipb_01JQ3V5W7X9Y1Z3A5B7C9D1E3X",
  cidr: "198.51.100.23/32",
  ip: "198.51.100.23",
  reason: "reputation score 107 reached 100",
  source: "auto",
  score: 107,
  created_at: AT,
  created_by: "system",
  expires_at: "2026-03-01T12:15:00.000Z",
};

const subscription = {
  tenant_id: TENANT,
  customer_id: "cus_QXg1o8vcGmoR32",
  subscription_id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
  status: "active",
  plan_code: "pro",
  price_id: "price_1PgafmB7WZ01zgkW6dKueIc5",
  quantity: 1,
  current_period_start: AT,
  current_period_end: "2026-04-01T12:00:00.000Z",
  cancel_at_period_end: false,
  canceled_at: null,
  trial_end: null,
  amount: 4900,
  currency: "usd",
  interval: "month",
  mrr: 4900,
  stripe_at: 1772366400,
  created_at: AT,
  updated_at: AT,
};

const invoice = {
  id: "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
  tenant_id: TENANT,
  customer_id: "cus_QXg1o8vcGmoR32",
  subscription_id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
  number: "7FE1103-0001",
  status: "open",
  amount_due: 4900,
  amount_paid: 0,
  amount_refunded: 0,
  currency: "usd",
  period_start: AT,
  period_end: "2026-04-01T12:00:00.000Z",
  paid_at: null,
  payment_failed_at: null,
  hosted_invoice_url: "https://invoice.stripe.com/i/acct_1/test_YWNjdF8x",
  created: 1772366400,
  stripe_at: 1772366400,
  updated_at: AT,
};

const reconcileCounts = {
  checked: 120,
  matched: 112,
  fixed: 3,
  overridden: 2,
  missing_in_steward: 1,
  missing_in_stripe: 1,
  unmapped: 1,
};

export interface EventType {
  type: string;
  description: string;
  /** An example of the event's `data`. */
  example: Record<string, unknown>;
}

export const EVENT_CATALOG: readonly EventType[] = [
  // Tenants
  {
    type: "tenant.created",
    description: "A tenant was created.",
    example: { ...tenant, ...byUser },
  },
  {
    type: "tenant.updated",
    description: "A tenant's name, slug or metadata changed.",
    example: { ...tenant, name: "Acme Corp", ...byUser },
  },
  {
    type: "tenant.feature_flags_updated",
    description: "A tenant's feature flags changed.",
    example: { ...tenant, feature_flags: { beta_api: false }, ...byUser },
  },
  {
    type: "tenant.plan_changed",
    description: "A tenant moved to another plan (by staff, or a billing sync).",
    example: {
      ...tenant,
      plan: "enterprise",
      plan_override: true,
      plan_reason: "signed contract #42",
      ...byUser,
    },
  },
  {
    type: "tenant.suspended",
    description: "A tenant was suspended: its keys stop verifying.",
    example: {
      ...tenant,
      status: "suspended",
      suspended_reason: "unpaid invoice",
      suspended_at: AT,
      ...byUser,
    },
  },
  {
    type: "tenant.resumed",
    description: "A suspended tenant was resumed.",
    example: { ...tenant, ...byUser },
  },
  {
    type: "tenant.deleted",
    description: "A tenant was deleted (soft: its slug is free again).",
    example: { ...tenant, status: "deleted", deleted_at: AT, ...byUser },
  },

  // Members and invitations
  {
    type: "membership.created",
    description: "A user joined a tenant.",
    example: { ...membership, ...byUser },
  },
  {
    type: "membership.updated",
    description: "A member's role in a tenant changed.",
    example: { ...membership, role: "admin", ...byUser },
  },
  {
    type: "membership.deleted",
    description: "A user left or was removed from a tenant.",
    example: { ...membership, ...byUser },
  },
  {
    type: "invitation.created",
    description: "Someone was invited to a tenant; Steward mails the invitation. The event " +
      "never carries its token.",
    example: { ...invitation, ...byUser },
  },
  {
    type: "invitation.accepted",
    description: "An invitation was accepted.",
    example: {
      ...invitation,
      status: "accepted",
      accepted_at: AT,
      accepted_by: USER,
      ...byUser,
    },
  },
  {
    type: "invitation.revoked",
    description: "An invitation was revoked before it was accepted.",
    example: { ...invitation, status: "revoked", revoked_at: AT, ...byUser },
  },
  {
    type: "invitation.expired",
    description: "A pending invitation passed its deadline (the expiring cron wrote it down).",
    example: { ...invitation, status: "expired", ...bySystem },
  },
  {
    type: "maintenance.members_backfilled",
    description: "Tenants without an owner got their creator as owner (a maintenance task).",
    example: { seeded: 3, ...byToken },
  },

  // Users and sessions
  { type: "user.created", description: "A user was created.", example: { ...user, ...byUser } },
  {
    type: "user.updated",
    description: "A user's name, email, role or metadata changed.",
    example: { ...user, name: "Ada King", ...byUser },
  },
  {
    type: "user.blocked",
    description: "A user was blocked: every session ended.",
    example: { ...user, status: "blocked", blocked_reason: "chargeback fraud", ...byUser },
  },
  {
    type: "user.unblocked",
    description: "A blocked user may log in again.",
    example: { ...user, ...byUser },
  },
  {
    type: "user.suspended",
    description: "A user was suspended until a given time: every session ended.",
    example: {
      ...user,
      status: "suspended",
      suspended_until: "2026-03-08T12:00:00.000Z",
      suspended_reason: "cool-off",
      ...byUser,
    },
  },
  {
    type: "user.unsuspended",
    description: "A user's suspension was lifted by hand.",
    example: { ...user, ...byUser },
  },
  {
    type: "user.suspension_lifted",
    description: "A user's suspension ran out.",
    example: { ...user, ...bySystem },
  },
  {
    type: "user.erased",
    description: "A user was erased (GDPR): email and name are gone everywhere.",
    example: { id: USER, status: "deleted", ...byUser },
  },
  {
    type: "user.password_changed",
    description: "A user's password was set.",
    example: { id: USER, ...bySystem },
  },
  {
    type: "user.password_reset_requested",
    description: "A password reset was asked for; Steward mails the user a link that works " +
      "once, until `expires_at`. The event never carries the token.",
    example: {
      id: USER,
      email: "ada@example.com",
      expires_at: "2026-03-01T13:00:00.000Z",
      ...byUser,
    },
  },
  {
    type: "user.password_reset",
    description: "A user set a new password with a reset token.",
    example: { id: USER, ...byUser },
  },
  {
    type: "user.sessions_revoked",
    description: "Every session of a user was ended.",
    example: { id: USER, sessions_revoked: 2, ...byUser },
  },
  {
    type: "session.created",
    description: "A user logged in.",
    example: {
      id: "ses_01JQ3V5W7X9Y1Z3A5B7C9D1E3Q",
      user_id: USER,
      ip: "203.0.113.7",
      expires_at: "2026-03-02T00:00:00.000Z",
      ...byUser,
    },
  },
  {
    type: "session.revoked",
    description: "A session was ended (logout or revocation).",
    example: { id: "ses_01JQ3V5W7X9Y1Z3A5B7C9D1E3Q", user_id: USER, ...byUser },
  },

  // Service tokens
  {
    type: "token.created",
    description: "A service token was created (never its secret).",
    example: { ...serviceToken, ...byUser },
  },
  {
    type: "token.revoked",
    description: "A service token was revoked.",
    example: { ...serviceToken, revoked_at: AT, ...byUser },
  },

  // Custom roles
  {
    type: "role.created",
    description: "A custom role was created.",
    example: { ...role, ...byUser },
  },
  {
    type: "role.updated",
    description: "A custom role's name, description or permissions changed; its holders have " +
      "the new permissions.",
    example: { ...role, permissions: [...role.permissions, "usage:read"], ...byUser },
  },
  {
    type: "role.deleted",
    description: "A custom role no one held was deleted.",
    example: { ...role, ...byUser },
  },

  // Plans
  { type: "plan.created", description: "A plan was created.", example: { ...plan, ...byUser } },
  {
    type: "plan.updated",
    description: "A plan's price, limits or features changed.",
    example: { ...plan, sla: 99.9, ...byUser },
  },
  {
    type: "plan.archived",
    description: "A plan was archived: no new tenant may join it.",
    example: { ...plan, active: false, archived_at: AT, ...byUser },
  },

  // Projects and signing keys
  {
    type: "project.created",
    description: "A project was created.",
    example: { ...project, ...byUser },
  },
  {
    type: "project.updated",
    description: "A project's name, origins, redirect URLs or metadata changed.",
    example: { ...project, name: "Shop", ...byUser },
  },
  {
    type: "project.deleted",
    description: "A project was deleted: its API keys stop verifying.",
    example: { ...project, status: "deleted", deleted_at: AT, ...byUser },
  },
  {
    type: "signing_key.rotated",
    description: "A project got a new JWT signing key; the previous one retires after a grace.",
    example: {
      project_id: PROJECT,
      active_kid: "sig_01JQ3V5W7X9Y1Z3A5B7C9D1E3R",
      retiring_kids: ["sig_01JQ3V5W7X9Y1Z3A5B7C9D1E3S"],
      grace_seconds: 86400,
      ...byUser,
    },
  },

  // API keys and usage
  {
    type: "api_key.created",
    description: "An API key was created (never the key itself).",
    example: { ...apiKey, ...byUser },
  },
  {
    type: "api_key.updated",
    description: "An API key's name, scopes, limits, expiry or metadata changed.",
    example: { ...apiKey, name: "checkout-v2", ...byUser },
  },
  {
    type: "api_key.rotated",
    description:
      "An API key was replaced by a new one (`rotated_to`); it works until its grace ends.",
    example: {
      ...apiKey,
      expires_at: "2026-03-01T13:00:00.000Z",
      rotated_to: "key_01JQ3V5W7X9Y1Z3A5B7C9D1E3T",
      ...byUser,
    },
  },
  {
    type: "api_key.revoked",
    description: "An API key was revoked: verify answers REVOKED from now on.",
    example: { ...apiKey, revoked_at: AT, ...byUser },
  },
  {
    type: "api_key.expired",
    description: "An API key passed its `expires_at` (the expiring cron wrote it down): verify " +
      "answers EXPIRED.",
    example: {
      ...apiKey,
      expires_at: "2026-03-01T11:00:00.000Z",
      expired_at: AT,
      ...bySystem,
    },
  },
  {
    type: "usage.threshold_reached",
    description: "A tenant used 80 % or 100 % of its plan's quota in a period (once each).",
    example: {
      tenant_id: TENANT,
      metric: "verifications",
      percent: 80,
      used: 400000,
      limit: 500000,
      period: "2026-03",
    },
  },

  // Background jobs
  {
    type: "job.retried",
    description: "An operator sent a failed or dead job back to run again.",
    example: {
      id: "job_01JQ3V5W7X9Y1Z3A5B7C9D1E3U",
      queue: "webhooks",
      type: "webhook.deliver",
      status: "pending",
      attempts: 0,
      next_run_at: AT,
      last_error: "connection refused",
      ...byUser,
    },
  },
  {
    type: "job.deleted",
    description: "An operator deleted a job.",
    example: {
      id: "job_01JQ3V5W7X9Y1Z3A5B7C9D1E3U",
      queue: "webhooks",
      type: "webhook.deliver",
      status: "dead",
      attempts: 8,
      next_run_at: null,
      last_error: "connection refused",
      ...byUser,
    },
  },
  {
    type: "job_queue.paused",
    description: "An operator paused a job queue: its jobs wait until it is resumed.",
    example: { name: "webhooks", paused: true, ...byUser },
  },
  {
    type: "job_queue.resumed",
    description: "An operator resumed a paused job queue.",
    example: { name: "webhooks", paused: false, ...byUser },
  },

  // Webhooks
  {
    type: "webhook.created",
    description: "A webhook endpoint was created (never its secret).",
    example: { ...endpoint, ...byUser },
  },
  {
    type: "webhook.updated",
    description: "A webhook endpoint's URL, filter, state or metadata changed.",
    example: { ...endpoint, enabled: false, disabled_at: AT, ...byUser },
  },
  {
    type: "webhook.deleted",
    description: "A webhook endpoint was deleted.",
    example: { ...endpoint, enabled: false, deleted_at: AT, ...byUser },
  },
  {
    type: "webhook.secret_rotated",
    description: "A webhook endpoint got a new signing secret; the previous one signs too until " +
      "`previous_secret_expires_at`.",
    example: { ...endpoint, previous_secret_expires_at: "2026-03-02T12:00:00.000Z", ...byUser },
  },
  {
    type: "webhook.endpoint_disabled",
    description: "Steward disabled a webhook endpoint: it answered 410 Gone (`disabled_reason` " +
      "`gone`), or every delivery to it failed for 5 days (`failing`).",
    example: {
      ...endpoint,
      enabled: false,
      disabled_reason: "failing",
      disabled_at: AT,
      ...bySystem,
    },
  },
  {
    type: "webhook.test",
    description: "Sent to one endpoint by `POST …/webhooks/{id}/test`, to check it receives and " +
      "verifies deliveries.",
    example: { endpoint_id: endpoint.id, message: "A test event from Steward." },
  },

  // Tenant secrets (never their values)
  {
    type: "secret.created",
    description: "A tenant secret was created (version 1).",
    example: { ...secret, version: 1, versions: [1], ...byUser },
  },
  {
    type: "secret.updated",
    description: "A tenant secret got a new version; the last 5 are kept.",
    example: { ...secret, ...byUser },
  },
  {
    type: "secret.deleted",
    description: "A tenant secret was deleted with every version (by hand, or with its tenant).",
    example: { ...secret, ...byUser },
  },
  {
    type: "secret.revealed",
    description: "Someone read a tenant secret's value in clear, giving `reason`.",
    example: {
      id: secret.id,
      tenant_id: TENANT,
      name: "smtp",
      type: "smtp",
      version: 2,
      reason: "migrating the mail relay",
      ...byUser,
    },
  },

  // Alerts (platform/alerts.ts): a rule's transitions, and an operator's acknowledgement
  {
    type: "alert.fired",
    description: "An alert rule's condition held for its duration: the alert fires with the " +
      "`value` that fired it and a `link` to the resource it concerns.",
    example: { ...alert, ...bySystem },
  },
  {
    type: "alert.resolved",
    description: "A firing alert's condition no longer holds: it is resolved.",
    example: {
      ...alert,
      state: "resolved",
      resolved_at: "2026-03-01T12:05:00.000Z",
      ...bySystem,
    },
  },
  {
    type: "alert.acknowledged",
    description: "An operator acknowledged an alert (firing or resolved).",
    example: {
      ...alert,
      acknowledged_at: "2026-03-01T12:02:00.000Z",
      acknowledged_by: USER,
      ...byUser,
    },
  },

  // Plugins (plugins/plugins.ts): each change also changes its webhook endpoint (webhook.*)
  {
    type: "plugin.created",
    description: "A plugin was registered, with the platform webhook endpoint that delivers " +
      "its events (never its secret).",
    example: { ...plugin, ...byUser },
  },
  {
    type: "plugin.updated",
    description: "A plugin's name, version, URL, events, hooks, config or config schema changed.",
    example: { ...plugin, version: "1.5.0", ...byUser },
  },
  {
    type: "plugin.enabled",
    description: "A plugin was enabled: its events and hooks resume.",
    example: { ...plugin, ...byUser },
  },
  {
    type: "plugin.disabled",
    description: "A plugin was disabled: no events are delivered to it, no hook asks it.",
    example: { ...plugin, enabled: false, ...byUser },
  },
  {
    type: "plugin.deleted",
    description: "A plugin was deleted with its webhook endpoint and signing secret.",
    example: { ...plugin, enabled: false, deleted_at: AT, ...byUser },
  },

  // IP reputation (protection/): blocks of addresses and ranges, and the allowlist
  {
    type: "ip_block.created",
    description: "An address or a range was blocked: by an operator (`source: manual`) or by " +
      "its reputation score (`source: auto`, by the system).",
    example: { ...ipBlock, ...bySystem },
  },
  {
    type: "ip_block.lifted",
    description: "An operator lifted a block before its end.",
    example: { ...ipBlock, ...byUser },
  },
  {
    type: "ip_allowlist.updated",
    description: "The allowlist (addresses never blocked) was replaced.",
    example: {
      entries: [{ cidr: "10.0.0.0/8", note: "office VPN" }],
      updated_at: AT,
      updated_by: USER,
      ...byUser,
    },
  },

  // The runtime configuration (platform/runtime_config.ts): the settings whose value changed
  {
    type: "config.updated",
    description: "Runtime settings were changed through the API: `settings` holds the new " +
      "value in force of each setting that changed, `version` the document's new version.",
    example: { version: 4, settings: { log_retention_days: 14 }, ...byUser },
  },
  {
    type: "config.rolled_back",
    description: "The runtime configuration was rolled back: a new `version` whose values are " +
      "those of an older one; `settings` as for `config.updated`.",
    example: { version: 5, settings: { log_retention_days: 30 }, ...byUser },
  },

  // Backups of the store (never their content)
  {
    type: "vault.backup_created",
    description: "A backup of the whole store was written to the backup directory.",
    example: { ...backup, ...bySystem },
  },
  {
    type: "vault.backup_failed",
    description: "A backup could not be written (`error` says why); nothing of it is kept.",
    example: {
      ...backup,
      status: "failed",
      entries: null,
      bytes: null,
      sha256: null,
      error: "No space left on device (os error 28)",
      ...bySystem,
    },
  },
  {
    type: "vault.rotation_started",
    description: "A data key rotation began: one tenant's (`scope: tenant`) or every key " +
      "(`all`), as the job `job_id` over `owners` data keys.",
    example: {
      scope: "tenant",
      tenant_id: TENANT,
      job_id: "job_01JQ3V5W7X9Y1Z3A5B7C9D1E3K",
      owners: 1,
      ...byUser,
    },
  },
  {
    type: "vault.rotation_completed",
    description: "A data key rotation finished: every value re-sealed, the old keys destroyed.",
    example: { scope: "tenant", job_id: "job_01JQ3V5W7X9Y1Z3A5B7C9D1E3K", owners: 1, ...bySystem },
  },
  // Billing on Stripe (the tenant's plan follows its subscription: tenant.plan_changed)
  {
    type: "subscription.created",
    description: "Stripe told of a tenant's new subscription (checkout, a sync or the " +
      "reconciliation); the record as Steward keeps it.",
    example: { ...subscription, ...bySystem },
  },
  {
    type: "subscription.updated",
    description: "A tenant's subscription changed in Stripe: status, plan, quantity, period, " +
      "a scheduled cancellation or a trial.",
    example: { ...subscription, status: "past_due", ...bySystem },
  },
  {
    type: "subscription.canceled",
    description: "A tenant's subscription ended; unless its plan is overridden the tenant is " +
      "back on the free plan.",
    example: { ...subscription, status: "canceled", canceled_at: AT, mrr: 0, ...bySystem },
  },
  {
    type: "invoice.finalized",
    description: "A tenant's invoice was finalized in Stripe: it is open and due.",
    example: { ...invoice, ...bySystem },
  },
  {
    type: "invoice.paid",
    description: "A tenant's invoice was paid.",
    example: { ...invoice, status: "paid", amount_paid: 4900, paid_at: AT, ...bySystem },
  },
  {
    type: "invoice.payment_failed",
    description: "A payment of a tenant's invoice failed; Stripe retries it on its schedule.",
    example: { ...invoice, payment_failed_at: AT, ...bySystem },
  },
  {
    type: "invoice.refunded",
    description: "Some or all of a paid invoice was refunded (`amount_refunded`).",
    example: {
      ...invoice,
      status: "paid",
      amount_paid: 4900,
      amount_refunded: 4900,
      paid_at: AT,
      ...bySystem,
    },
  },
  {
    type: "invoice.updated",
    description: "A tenant's invoice changed otherwise (a forced sync or the reconciliation).",
    example: { ...invoice, status: "void", ...byUser },
  },
  {
    type: "billing.customer_linked",
    description: "A Stripe customer was linked to a tenant: made by its first checkout, or " +
      "learnt from Stripe.",
    example: { tenant_id: TENANT, customer_id: "cus_QXg1o8vcGmoR32", ...byUser },
  },
  {
    type: "billing.reconcile_started",
    description: "A reconciliation with Stripe began, as the job `job_id`.",
    example: { job_id: "job_01JQ3V5W7X9Y1Z3A5B7C9D1E3K", ...byUser },
  },
  {
    type: "billing.reconciled",
    description: "A reconciliation with Stripe finished: subscriptions checked, and what " +
      "matched, what was fixed, what was missing on either side.",
    example: { job_id: "job_01JQ3V5W7X9Y1Z3A5B7C9D1E3K", ...reconcileCounts, ...bySystem },
  },
  {
    type: "vault.restored",
    description: "The store was restored from a backup (`deno task admin restore`); `cleared` " +
      "entries were deleted first (`--force`).",
    example: {
      id: backup.id,
      file: backup.file,
      created_at: backup.started_at,
      consistency: "point_in_time",
      entries: 48210,
      sha256: backup.sha256,
      cleared: 0,
      ...bySystem,
    },
  },
];

const TYPES = new Set(EVENT_CATALOG.map((e) => e.type));

export const isEventType = (type: string) => TYPES.has(type);
