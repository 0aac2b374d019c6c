/**
 * The one place that names every key family in Deno KV.
 *
 * Layout rules (ARCHITECTURE.md, KV key layout): a tenant's own data lives under
 * ["t", tenant_id, …]; secondary indexes hold ids (pointers), never copies; uniqueness is a
 * `check` on an index key.
 */

/** Where a webhook family lives: under its tenant, or under ["platform"] for platform endpoints. */
const scope = (tenantId: string | null) => tenantId === null ? ["platform"] : ["t", tenantId];

export const keys = {
  // ── Tenants ─────────────────────────────────────────────────────────────────
  /** Tenant record, by id. Listing ["tenants"] walks tenants in creation order. */
  tenant: (id: string) => ["tenants", id],
  tenants: () => ["tenants"],
  /** Unique slug → tenant id. Released when the tenant is deleted. */
  tenantSlug: (slug: string) => ["tenant_slugs", slug],
  /** Count of tenants that are not deleted (KvU64). */
  tenantCount: () => ["counters", "tenants"],
  /**
   * Tenants by status (value: tenant id), every status: the page of `?status=` walks only its
   * matches, in id (creation) order like ["tenants"]. Counted in `tenantStatusCount`.
   */
  tenantByStatus: (status: string, id: string) => ["tenants_by_status", status, id],
  tenantsByStatus: (status: string) => ["tenants_by_status", status],
  /** Count of tenants in one status, deleted included (KvU64), with `tenantByStatus`. */
  tenantStatusCount: (status: string) => ["counters", "tenant_status", status],
  /** Live tenants by plan code (value: tenant id), counted in `planTenantCount`. */
  tenantByPlan: (code: string, id: string) => ["tenants_by_plan", code, id],
  tenantsByPlan: (code: string) => ["tenants_by_plan", code],
  /** Membership record (role, created_at, created_by…), by tenant and user. */
  member: (tenantId: string, userId: string) => ["t", tenantId, "members", userId],
  members: (tenantId: string) => ["t", tenantId, "members"],
  /** Reverse membership pointer: tenants a user belongs to (value: tenant id). */
  userTenant: (userId: string, tenantId: string) => ["user_tenants", userId, tenantId],
  userTenants: (userId: string) => ["user_tenants", userId],
  /** Count of the tenant's owners (KvU64): checked atomically so the last owner cannot go. */
  ownerCount: (tenantId: string) => ["t", tenantId, "owner_count"],
  /**
   * The tenant's change stamp (KvU64): every write of the tenant, its projects or its API keys
   * bumps it (kv/table.ts), so verify's cache checks this one key, not each entry (kv/cache.ts).
   */
  tenantStamp: (tenantId: string) => ["t", tenantId, "stamp"],
  /** Invitation record (never the token), by tenant and id. */
  invitation: (tenantId: string, id: string) => ["t", tenantId, "invitations", id],
  invitations: (tenantId: string) => ["t", tenantId, "invitations"],
  /**
   * SHA-256 of an invitation token → { tenant_id, id }. Kept after acceptance or revocation,
   * so a used token is told why it no longer works.
   */
  invitationHash: (hash: string) => ["invitation_hashes", hash],
  /** Invitations sent to an email (value: invitation id), so an erasure finds them. */
  emailInvitation: (email: string, tenantId: string, id: string) => [
    "invitations_by_email",
    email,
    tenantId,
    id,
  ],
  emailInvitations: (email: string) => ["invitations_by_email", email],
  /** Pending invitations by deadline (value: invitation id), for the expiring cron. */
  invitationExpiry: (expiresAt: string, tenantId: string, id: string) => [
    "invitation_expiries",
    expiresAt,
    tenantId,
    id,
  ],
  invitationExpiries: () => ["invitation_expiries"],

  // ── Plans ───────────────────────────────────────────────────────────────────
  /** Plan record, by id. */
  plan: (id: string) => ["plans", id],
  plans: () => ["plans"],
  /** Unique plan code → plan id. Kept when a plan is archived (codes are never reused). */
  planCode: (code: string) => ["plan_codes", code],
  /** Count of live tenants on a plan (KvU64), by code: a plan in use cannot be archived. */
  planTenantCount: (code: string) => ["counters", "plan_tenants", code],

  // ── Projects ────────────────────────────────────────────────────────────────
  /** A tenant's project (application), by id. */
  project: (tenantId: string, id: string) => ["t", tenantId, "projects", id],
  projects: (tenantId: string) => ["t", tenantId, "projects"],
  /** Count of the tenant's live projects (KvU64). */
  projectCount: (tenantId: string) => ["t", tenantId, "project_count"],
  /** Project id → its tenant id, for routes without a tenant in the path (the JWKS). */
  projectTenant: (projectId: string) => ["project_tenants", projectId],

  // ── Signing keys and the vault ──────────────────────────────────────────────
  /**
   * A project's ES256 signing key: public JWK, private key sealed by the vault. A family of its
   * own, not under the project's key: listing a tenant's projects must find projects only.
   */
  signingKey: (tenantId: string, projectId: string, kid: string) => [
    "t",
    tenantId,
    "signing_keys",
    projectId,
    kid,
  ],
  signingKeys: (tenantId: string, projectId: string) => ["t", tenantId, "signing_keys", projectId],
  /** Every signing key of a tenant, all projects (what a data key rotation re-seals). */
  tenantSigningKeys: (tenantId: string) => ["t", tenantId, "signing_keys"],
  /** Where signing keys were kept before they had a family of their own (moved at start-up). */
  legacySigningKeys: (tenantId: string, projectId: string) => [
    "t",
    tenantId,
    "projects",
    projectId,
    "signing_keys",
  ],
  /** Retiring signing keys by the end of their grace (value: { tenant_id, project_id, kid }). */
  retiringSigningKey: (retiresAt: string, kid: string) => ["signing_keys_retiring", retiresAt, kid],
  retiringSigningKeys: () => ["signing_keys_retiring"],
  /** The tenant's data key, wrapped by the master key (AES-256-GCM). */
  tenantDataKey: (tenantId: string) => ["t", tenantId, "data_key"],
  /** The platform's data key (what no tenant owns: platform webhook secrets), wrapped likewise. */
  platformDataKey: () => ["platform", "data_key"],
  /** The id of the data key rotation job running (one at a time). */
  vaultRotation: () => ["vault", "rotation"],
  /** The last finished rotation: { at, job_id, scope }. */
  vaultLastRotation: () => ["vault", "last_rotation"],

  // ── Tenant secrets (vault/secrets.ts) ───────────────────────────────────────
  /** A tenant's named secret: type, current version, who and when; never its value. */
  secret: (tenantId: string, id: string) => ["t", tenantId, "secrets", id],
  secrets: (tenantId: string) => ["t", tenantId, "secrets"],
  /** Unique secret name → secret id, within the tenant. */
  secretName: (tenantId: string, name: string) => ["t", tenantId, "secret_names", name],
  /** One kept version of a secret: its value, sealed by the vault. */
  secretVersion: (tenantId: string, secretId: string, version: number) => [
    "t",
    tenantId,
    "secret_versions",
    secretId,
    version,
  ],
  secretVersions: (tenantId: string, secretId: string) => [
    "t",
    tenantId,
    "secret_versions",
    secretId,
  ],
  /** Every sealed version of a tenant's secrets (what a data key rotation re-seals). */
  tenantSecretVersions: (tenantId: string) => ["t", tenantId, "secret_versions"],
  /** Count of the tenant's secrets (KvU64). */
  tenantSecretCount: (tenantId: string) => ["t", tenantId, "secret_count"],
  /** Every tenant's secrets (value: secret id), for the platform's list. */
  secretIndex: (tenantId: string, id: string) => ["secrets_by_tenant", tenantId, id],
  secretIndexes: () => ["secrets_by_tenant"],
  tenantSecretIndexes: (tenantId: string) => ["secrets_by_tenant", tenantId],
  /** Count of every tenant's secrets (KvU64). */
  secretCount: () => ["counters", "secrets"],

  // ── API keys ────────────────────────────────────────────────────────────────
  /** A tenant's API key record (never the key), by id. */
  apiKey: (tenantId: string, id: string) => ["t", tenantId, "api_keys", id],
  apiKeys: (tenantId: string) => ["t", tenantId, "api_keys"],
  /**
   * SHA-256 of an API key → { tenant_id, id }. Kept after revocation, so verify answers
   * REVOKED for a revoked key rather than NOT_FOUND.
   */
  apiKeyHash: (hash: string) => ["api_key_hashes", hash],
  /** API key id → its tenant id, for usage events that name only the key. */
  apiKeyTenant: (keyId: string) => ["api_key_tenants", keyId],
  /** Count of the tenant's keys that are neither revoked nor marked expired (KvU64). */
  tenantKeyCount: (tenantId: string) => ["t", tenantId, "key_count"],
  /** Count of all the tenant's keys, any status (KvU64): the key list's total. */
  tenantKeyTotal: (tenantId: string) => ["t", tenantId, "key_total"],
  /** The tenant's keys by environment (value: key id), in id order; counted per environment. */
  apiKeyByEnv: (tenantId: string, env: string, id: string) => [
    "t",
    tenantId,
    "api_keys_by_env",
    env,
    id,
  ],
  apiKeysByEnv: (tenantId: string, env: string) => ["t", tenantId, "api_keys_by_env", env],
  /** Count of the tenant's keys in one environment, any status (KvU64), with `apiKeyByEnv`. */
  tenantKeyEnvCount: (tenantId: string, env: string) => ["t", tenantId, "key_env_count", env],
  /**
   * The tenant's keys by stored state (value: key id): `revoked` once `revoked_at` is set (a
   * rotation's grace included), else `expired` once marked, else `active` (a live key).
   */
  apiKeyByState: (tenantId: string, state: string, id: string) => [
    "t",
    tenantId,
    "api_keys_by_state",
    state,
    id,
  ],
  apiKeysByState: (tenantId: string, state: string) => ["t", tenantId, "api_keys_by_state", state],
  /** Count of the tenant's revoked or marked-expired keys (KvU64); live ones are `key_count`. */
  tenantKeyStateCount: (tenantId: string, state: string) => [
    "t",
    tenantId,
    "key_state_count",
    state,
  ],
  /** The tenant's keys by project (value: key id), in id order; counted per project. */
  apiKeyByProject: (tenantId: string, projectId: string, id: string) => [
    "t",
    tenantId,
    "api_keys_by_project",
    projectId,
    id,
  ],
  apiKeysByProject: (tenantId: string, projectId: string) => [
    "t",
    tenantId,
    "api_keys_by_project",
    projectId,
  ],
  /** Count of the tenant's keys in one project, any status (KvU64), with `apiKeyByProject`. */
  tenantKeyProjectCount: (tenantId: string, projectId: string) => [
    "t",
    tenantId,
    "key_project_count",
    projectId,
  ],
  /** The tenant's keys by external id (value: key id), in id order; counted per external id. */
  apiKeyByExternalId: (tenantId: string, externalId: string, id: string) => [
    "t",
    tenantId,
    "api_keys_by_external_id",
    externalId,
    id,
  ],
  apiKeysByExternalId: (tenantId: string, externalId: string) => [
    "t",
    tenantId,
    "api_keys_by_external_id",
    externalId,
  ],
  /** Count of the tenant's keys with one external id, any status (KvU64). */
  tenantKeyExternalIdCount: (tenantId: string, externalId: string) => [
    "t",
    tenantId,
    "key_external_id_count",
    externalId,
  ],
  /** Revoked keys by `revoked_at` (value: key id): those still in a rotation's grace are ahead. */
  apiKeyRevocation: (tenantId: string, revokedAt: string, id: string) => [
    "t",
    tenantId,
    "api_key_revocations",
    revokedAt,
    id,
  ],
  apiKeyRevocations: (tenantId: string) => ["t", tenantId, "api_key_revocations"],
  /** Live keys with an expiry, by deadline (value: key id), for the expiring cron. */
  apiKeyExpiry: (expiresAt: string, tenantId: string, id: string) => [
    "api_key_expiries",
    expiresAt,
    tenantId,
    id,
  ],
  apiKeyExpiries: () => ["api_key_expiries"],
  /** A key's owners were told of its coming expiry (value: when), once per key and deadline. */
  apiKeyExpiryNotice: (keyId: string, expiresAt: string) => [
    "api_key_expiry_notices",
    keyId,
    expiresAt,
  ],

  // ── Usage (written behind, as KvU64 sums) ──────────────────────────────────
  /** A tenant's use of a metric in one quota period ("2026-03" or "2026"). */
  usagePeriod: (tenantId: string, metric: string, period: string) => [
    "t",
    tenantId,
    "usage",
    metric,
    period,
  ],
  usages: (tenantId: string) => ["t", tenantId, "usage"],
  /** Units of a period's quota leased to processes so far (keys/quota_leases.ts). */
  quotaGrant: (tenantId: string, metric: string, period: string) => [
    "t",
    tenantId,
    "quota_grants",
    metric,
    period,
  ],
  /** A tenant's use of a metric on one UTC day ("2026-03-01"). */
  usageDaily: (tenantId: string, metric: string, day: string) => [
    "t",
    tenantId,
    "usage_daily",
    metric,
    day,
  ],
  /** The verification units one key spent on one UTC day (verify's cost, events naming the key). */
  keyUsageDaily: (tenantId: string, keyId: string, day: string) => [
    "t",
    tenantId,
    "key_usage",
    keyId,
    day,
  ],
  /** A usage event id seen in the last 24 h, per tenant (deduplicates retried batches). */
  usageEventId: (tenantId: string, eventId: string) => ["t", tenantId, "usage_event_ids", eventId],
  /** A quota threshold (80, 100) announced for a tenant in a period: once, across processes. */
  thresholdReached: (tenantId: string, period: string, percent: number) => [
    "t",
    tenantId,
    "thresholds",
    period,
    percent,
  ],
  /** When a key was last verified (KvU64 `max` of epoch ms). */
  keyLastUsed: (tenantId: string, keyId: string) => ["t", tenantId, "key_last_used", keyId],

  /**
   * What was counted, one item per accepted usage event or flushed per-key verification delta,
   * by time-ordered id (`usg_…`): the admin usage stream. Platform-wide, like the request logs;
   * kept 7 days (expireIn, and the stored deadline checked on read).
   */
  usageItem: (id: string) => ["usage_items", id],
  usageItems: () => ["usage_items"],
  /** One UTC day rolled up: platform traffic and usage totals (written by the daily cron). */
  rollup: (day: string) => ["rollups", day],
  rollups: () => ["rollups"],
  /** One tenant's usage totals on a rolled-up day (a day's tenants would outgrow one value). */
  tenantRollup: (day: string, tenantId: string) => ["rollup_tenants", day, tenantId],
  tenantRollups: (day: string) => ["rollup_tenants", day],

  /** Authenticated requests made by one principal (user or token) on one UTC day (KvU64). */
  principalDaily: (principalId: string, day: string) => ["daily_requests", principalId, day],
  principalDailies: (principalId: string) => ["daily_requests", principalId],

  // ── Users and sessions ──────────────────────────────────────────────────────
  /** User record, by id. */
  user: (id: string) => ["users", id],
  users: () => ["users"],
  /** Unique lower-cased email → user id. */
  userEmail: (email: string) => ["user_emails", email],
  /** Unique lower-cased username → user id. */
  userUsername: (username: string) => ["user_usernames", username],
  /** Session record, by id. */
  session: (id: string) => ["sessions", id],
  sessions: () => ["sessions"],
  /** SHA-256 of the session token → session id. */
  sessionHash: (hash: string) => ["session_hashes", hash],
  /** A user's sessions (value: session id), for listing and mass revocation. */
  userSession: (userId: string, sessionId: string) => ["user_sessions", userId, sessionId],
  userSessions: (userId: string) => ["user_sessions", userId],
  /**
   * Login attempts in a row for an account name (its email, else its username; known or not)
   * and when the next may be checked (identity/login_throttle.ts). Cleared by a success.
   */
  loginThrottle: (email: string) => ["login_throttles", email],
  /** Failed logins from one source address in one 15-minute window ({ count }). */
  loginIpFailures: (ip: string, window: number) => ["login_ip_failures", ip, window],

  // ── IP reputation (protection/) ─────────────────────────────────────────────
  /** What one source address did lately (counts per minute, totals, blocks), by canonical IP. */
  ipReputation: (ip: string) => ["ip_reputation", ip],
  ipReputations: () => ["ip_reputation"],
  /** A block of an address or range in force (`ipb_…`); lifted or expired, it is deleted. */
  ipBlock: (id: string) => ["ip_blocks", id],
  ipBlocks: () => ["ip_blocks"],
  /** The addresses never blocked ({ entries }). */
  ipAllowlist: () => ["ip_allowlist"],
  /** Bumped (KvU64) by every change of the blocks or the allowlist: each process watches it. */
  ipRulesVersion: () => ["ip_rules_version"],
  /**
   * An address a user logged in from (hashed with the user id; value: the deadline, 90 days on):
   * its right password is checked even while the account's delay runs.
   */
  userKnownIp: (userId: string, tag: string) => ["user_known_ips", userId, tag],
  userKnownIps: (userId: string) => ["user_known_ips", userId],
  /** A user's password hash (scrypt), kept apart from the record so it is never serialized. */
  password: (userId: string) => ["user_passwords", userId],
  /** Count of users that are not erased (KvU64), for list totals. */
  userCount: () => ["counters", "users"],
  /** Suspended users by the end of their suspension (value: user id), for the lifting cron. */
  userSuspension: (until: string, userId: string) => ["user_suspensions", until, userId],
  userSuspensions: () => ["user_suspensions"],
  /** Users by stored status, erased included (value: user id), counted in `userStatusCount`. */
  userByStatus: (status: string, id: string) => ["users_by_status", status, id],
  usersByStatus: (status: string) => ["users_by_status", status],
  /** Count of users in one stored status (KvU64), with `userByStatus`. */
  userStatusCount: (status: string) => ["counters", "user_status", status],
  /**
   * SHA-256 of a password-reset token → its record (user, deadline, status). Kept after use or
   * replacement, so a spent token is told why it no longer works; expires with KV's TTL.
   */
  passwordReset: (hash: string) => ["password_resets", hash],
  /** The one outstanding reset of a user (value: token hash): a new request replaces it. */
  userPasswordReset: (userId: string) => ["user_password_resets", userId],
  /**
   * An erasure in progress: the PII still to scrub from the audit trail and the outbox. Written
   * with the tombstone, deleted when the scrub ends; a crash in between resumes from it.
   */
  erasure: (userId: string) => ["erasures", userId],
  erasures: () => ["erasures"],

  // ── Service tokens ──────────────────────────────────────────────────────────
  /** Service token record (never the secret), by id. */
  token: (id: string) => ["tokens", id],
  tokens: () => ["tokens"],
  /** SHA-256 of the token secret → token id. Deleted on revocation. */
  tokenHash: (hash: string) => ["token_hashes", hash],
  /** Credentials holding every permission (value: principal id); empty store ⇒ bootstrap. */
  superAdmin: (principalId: string) => ["super_admins", principalId],
  superAdmins: () => ["super_admins"],
  // ── Custom roles ───────────────────────────────────────────────────────────
  /** Custom role record (access/custom_roles.ts), by id. */
  role: (id: string) => ["roles", id],
  roles: () => ["roles"],
  /** Unique lower-cased role name → role id. */
  roleName: (name: string) => ["role_names", name],
  /** Users and live service tokens holding a role (KvU64 each), so a delete need not scan. */
  roleUsers: (roleId: string) => ["counters", "role_users", roleId],
  roleTokens: (roleId: string) => ["counters", "role_tokens", roleId],
  /** Bumped by every role change: its versionstamp names the role table a process holds. */
  rolesVersion: () => ["meta", "roles_version"],
  /** Which credential the last bootstrap registered; its versionstamp serializes bootstraps. */
  bootstrap: () => ["meta", "bootstrap"],
  /** A one-time data migration that has run on this store (value: when, and what it moved). */
  migration: (name: string) => ["meta", "migrations", name],

  // ── Email ───────────────────────────────────────────────────────────────────
  /**
   * An email message by time-ordered id (`eml_…`): its status and, until it is sent, its sealed
   * body (email/outbox.ts). Expires 7 days after it settles (24 h in the development outbox).
   */
  email: (id: string) => ["emails", id],
  emails: () => ["emails"],
  // ── Audit trail and domain events ───────────────────────────────────────────
  /**
   * Audit event, by time-ordered id. Kept outside the tenant prefix on purpose: the
   * trail belongs to the platform and outlives a tenant's deletion.
   */
  audit: (id: string) => ["audit", id],
  audits: () => ["audit"],
  /** Per-tenant, per-actor and per-resource audit pointers (value: audit id). */
  tenantAudit: (tenantId: string, id: string) => ["t", tenantId, "audit", id],
  tenantAudits: (tenantId: string) => ["t", tenantId, "audit"],
  actorAudit: (actorId: string, id: string) => ["audit_by_actor", actorId, id],
  actorAudits: (actorId: string) => ["audit_by_actor", actorId],
  resourceAudit: (resourceId: string, id: string) => ["audit_by_resource", resourceId, id],
  resourceAudits: (resourceId: string) => ["audit_by_resource", resourceId],
  /** Events where a user is the actor or the subject (value: audit id): its audit trail. */
  userAudit: (userId: string, id: string) => ["audit_by_user", userId, id],
  userAudits: (userId: string) => ["audit_by_user", userId],
  /** Counter of audit events (KvU64), for list totals. */
  auditCount: () => ["counters", "audit"],
  /** Audit events by resource type and by action (value: audit id), each with its count. */
  auditByType: (type: string, id: string) => ["audit_by_type", type, id],
  auditsByType: (type: string) => ["audit_by_type", type],
  auditTypeCount: (type: string) => ["counters", "audit_type", type],
  auditByAction: (action: string, id: string) => ["audit_by_action", action, id],
  auditsByAction: (action: string) => ["audit_by_action", action],
  auditActionCount: (action: string) => ["counters", "audit_action", action],
  /** Count of a tenant's audit events (KvU64): the tenant audit list's total. */
  tenantAuditCount: (tenantId: string) => ["t", tenantId, "audit_count"],
  /**
   * Set once every tenant, user, API key and audit event written before the list counts above
   * existed has its index entries and counts (platform/list_counts.ts); until then lists count
   * by walking, as before. The number is the generation of counts: each new family raises it (3:
   * keys by project and by external id), so a store counted by older code is given the new ones
   * at the next start.
   */
  listCountsReady: () => ["list_counts_ready", 3],
  /** Domain event outbox, by time-ordered id; delivered by the webhook jobs. */
  event: (id: string) => ["events", id],
  events: () => ["events"],

  // ── Outbound webhooks (tenantId null: the platform's endpoints) ─────────────
  /** A webhook endpoint (URL, filter, sealed signing secrets), by id. */
  webhookEndpoint: (tenantId: string | null, id: string) => [...scope(tenantId), "webhooks", id],
  webhookEndpoints: (tenantId: string | null) => [...scope(tenantId), "webhooks"],
  /** Since when every delivery attempt to an endpoint has failed (null after a success). */
  webhookHealth: (tenantId: string | null, id: string) => [
    ...scope(tenantId),
    "webhook_health",
    id,
  ],
  webhookHealths: (tenantId: string | null) => [...scope(tenantId), "webhook_health"],
  /** A message: one event for one endpoint, with its delivery status, by endpoint and id. */
  webhookMessage: (tenantId: string | null, endpointId: string, id: string) => [
    ...scope(tenantId),
    "webhook_messages",
    endpointId,
    id,
  ],
  webhookMessages: (tenantId: string | null, endpointId: string) => [
    ...scope(tenantId),
    "webhook_messages",
    endpointId,
  ],
  /** One delivery attempt of a message (status, response, duration), by message and id. */
  webhookAttempt: (tenantId: string | null, messageId: string, id: string) => [
    ...scope(tenantId),
    "webhook_attempts",
    messageId,
    id,
  ],
  webhookAttempts: (tenantId: string | null, messageId: string) => [
    ...scope(tenantId),
    "webhook_attempts",
    messageId,
  ],
  /** Every message's attempts in a scope, in message-id (time) order. */
  webhookAttemptsIn: (tenantId: string | null) => [...scope(tenantId), "webhook_attempts"],
  /**
   * Event id and endpoint id → the message made for them: a resumed fan-out makes no twin.
   * Written with a 7-day expireIn.
   */
  webhookFanout: (eventId: string, endpointId: string) => ["webhook_fanouts", eventId, endpointId],

  // ── Request logs and traffic (written behind by the aggregator) ─────────────
  /**
   * A page of request-log entries (domain/usage/log_pages.ts), by its newest entry's
   * time-ordered id (`log_…`): a range of ids is a time range. Older stores hold one entry each.
   */
  requestLog: (id: string) => ["request_logs", id],
  requestLogs: () => ["request_logs"],
  /** Platform-wide traffic on one UTC day (KvU64): requests, errors, bytes_in, bytes_out… */
  traffic: (metric: string, day: string) => ["traffic", metric, day],
  /**
   * Answers in one UTC minute (its start, epoch ms), platform-wide (KvU64, summed by every
   * process's flush): `answers`, `server_errors`, `rate_limited`, `unauthorized`. A sum ignores
   * expireIn: the `prune-answer-rates` cron deletes old minutes.
   */
  answerRate: (minute: number, kind: string) => ["answer_rates", minute, kind],
  answerRates: () => ["answer_rates"],

  // ── Jobs ────────────────────────────────────────────────────────────────────
  /** Job record (queue, type, payload, status, attempts, next run, last error), by id. */
  job: (id: string) => ["jobs", id],
  /**
   * A queue's jobs waiting to run, by when they are due (epoch ms; value: job id): pending and
   * failed jobs at `next_run_at`, running jobs at the end of their lease (a lost worker's job).
   */
  jobDue: (queue: string, at: number, id: string) => ["jobs_due", queue, at, id],
  jobsDue: (queue: string) => ["jobs_due", queue],
  /** A queue's jobs in one status, in creation order (value: job id). */
  jobByStatus: (queue: string, status: string, id: string) => [
    "jobs_by_status",
    queue,
    status,
    id,
  ],
  jobsByStatus: (queue: string, status: string) => ["jobs_by_status", queue, status],
  /** A queue's jobs in creation order, whatever their status (value: job id). */
  queueJob: (queue: string, id: string) => ["jobs_by_queue", queue, id],
  queueJobs: (queue: string) => ["jobs_by_queue", queue],
  /**
   * Count of a queue's jobs in one status (KvU64), kept in the commits that move them. Kept at
   * zero too: listing ["job_counts"] names every queue that ever had a job.
   */
  jobCount: (queue: string, status: string) => ["job_counts", queue, status],
  jobCounts: () => ["job_counts"],
  /** A paused queue (when, by whom): its jobs wait, unclaimed, until it is resumed. */
  queuePause: (queue: string) => ["job_queue_pauses", queue],
  queuePauses: () => ["job_queue_pauses"],

  // ── HTTP plumbing ───────────────────────────────────────────────────────────
  /** Stored first response of an idempotent POST, per principal and key (24 h). */
  idempotency: (scope: string, key: string) => ["idempotency", scope, key],

  // ── Operations ──────────────────────────────────────────────────────────────
  /** The last run of a maintenance task (when, how long, what it did). */
  maintenanceRun: (task: string) => ["maintenance_runs", task],
  /** Lease held by one worker (cron tick, job) with its deadline. */
  lease: (name: string) => ["leases", name],
  /** Readiness probe scratch key, one per process. */
  healthProbe: (instanceId: string) => ["health", instanceId],
  /** A backup of the store (its file, status, size, checksum), by time-ordered id (`bkp_…`). */
  backup: (id: string) => ["backups", id],
  backups: () => ["backups"],
  /** An alert (platform/alerts.ts), by time-ordered id (`alr_…`). */
  alert: (id: string) => ["alerts", id],
  alerts: () => ["alerts"],
  /** The firing alert of a rule (pointer: alert id); at most one per rule. */
  alertOpen: (rule: string) => ["alerts_open", rule],
  alertsOpen: () => ["alerts_open"],
  /** A rule's evaluation state: since when its condition holds, its last value. */
  alertRuleState: (rule: string) => ["alert_rule_state", rule],
  /** The runtime configuration set through the API (platform/runtime_config.ts): one document. */
  runtimeConfig: () => ["runtime_config"],
  /** Each version of that document, by number (its history, for rollbacks). */
  runtimeConfigVersion: (version: number) => ["runtime_config_versions", version],
  runtimeConfigVersions: () => ["runtime_config_versions"],

  // ── Plugins (domain/plugins/) ───────────────────────────────────────────────
  /** A plugin (URL, events, hooks, config, the platform webhook endpoint it owns), by `plg_…` id. */
  plugin: (id: string) => ["plugins", id],
  plugins: () => ["plugins"],
  /** A live plugin's name, lowercased (unique; pointer: plugin id). */
  pluginName: (name: string) => ["plugin_names", name],
  /** KvU64 bumped by every change of a plugin: each process watches it (plugins/hooks.ts). */
  pluginsVersion: () => ["plugins_version"],

  // ── Billing on Stripe (domain/billing/) ─────────────────────────────────────
  /** A tenant's subscription as Stripe last told it (Subscription), by tenant id. */
  subscription: (tenantId: string) => ["subscriptions", tenantId],
  subscriptions: () => ["subscriptions"],
  /** Stripe customer id → the tenant id it belongs to. */
  stripeCustomer: (customerId: string) => ["stripe_customers", customerId],
  /** A tenant's Stripe customer id (the one checkout reuses). */
  tenantStripeCustomer: (tenantId: string) => ["t", tenantId, "stripe_customer"],
  /** An invoice (Invoice), by Stripe id; and a tenant's invoices by creation time (pointer: id). */
  invoice: (id: string) => ["invoices", id],
  invoices: () => ["invoices"],
  tenantInvoice: (tenantId: string, created: number, id: string) => [
    "invoices_by_tenant",
    tenantId,
    created,
    id,
  ],
  tenantInvoices: (tenantId: string) => ["invoices_by_tenant", tenantId],
  /** A received Stripe event (StripeEventRecord), by id; and by receipt time (pointer: id). */
  stripeEvent: (id: string) => ["stripe_events", id],
  stripeEvents: () => ["stripe_events"],
  stripeEventByTime: (receivedAt: string, id: string) => ["stripe_events_by_time", receivedAt, id],
  stripeEventsByTime: () => ["stripe_events_by_time"],
  /** What a received event carries, as applying it reads it: kept until the event is applied. */
  stripeEventObject: (id: string) => ["stripe_event_objects", id],
  /** Webhook deliveries refused for their signature, per UTC day (KvU64). */
  stripeSignatureFailures: (day: string) => ["stripe_signature_failures", day],
  /** When Steward last heard from Stripe: { last_event_at, last_api_success_at }. */
  stripeSync: () => ["stripe", "sync"],
  /** The running reconciliation with Stripe: its job id (one at a time). */
  stripeReconcile: () => ["stripe", "reconcile"],
  /** The overage a tenant's meter was told of in its quota period (billing/overage.ts). */
  overageReport: (tenantId: string) => ["t", tenantId, "overage_report"],
  /** MRR changes (MrrChange) by time-ordered id, for the revenue analytics. */
  mrrChange: (id: string) => ["mrr_changes", id],
  mrrChanges: () => ["mrr_changes"],
} as const;
