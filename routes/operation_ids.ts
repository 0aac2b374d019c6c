/**
 * Every operation's `operationId`, derived from its method and path so that it is stable (a
 * client generated today still compiles tomorrow) and never written twice: `GET /v1/tenants`
 * is `listTenants`, `GET /v1/tenants/{tenant}/api-keys/{id}` is `getTenantApiKey`,
 * `POST /v1/tenants/{tenant}/api-keys/{id}/rotate` is `rotateTenantApiKey`.
 */

/** Trailing path words that name an action on what precedes them (`POST …/{id}/rotate`). */
const ACTIONS = new Set([
  "accept",
  "acknowledge",
  "block",
  "disable",
  "enable",
  "export",
  "prune",
  "recover",
  "resume",
  "retry",
  "rollback",
  "rotate",
  "suspend",
  "test",
  "verify",
  "reveal",
  "reconcile",
  "pause",
]);

const IRREGULAR: Record<string, string> = {
  status: "status",
  analytics: "analytics",
  diagnostics: "diagnostics",
  metrics: "metrics",
  earnings: "earnings",
  me: "me",
  overview: "overview",
  billing: "billing",
  cost: "cost",
  health: "health",
  usage: "usage",
  "feature-flags": "feature-flags",
  "aggregator-status": "aggregator-status",
  "backup-status": "backup-status",
  "stripe-sync-status": "stripe-sync-status",
};

const words = (segment: string) => segment.split(/[-_.]/).filter(Boolean);
const cap = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
const camel = (parts: string[]) => parts.map((p, i) => i === 0 ? p : cap(p)).join("");

/** `api-keys` → `ApiKey` (a collection named as one of its items). */
function singular(segment: string): string {
  if (IRREGULAR[segment]) return words(IRREGULAR[segment]).map(cap).join("");
  const parts = words(segment);
  const last = parts.at(-1)!;
  parts[parts.length - 1] = last.endsWith("ies")
    ? `${last.slice(0, -3)}y`
    : /(ss|us)$/.test(last)
    ? last
    : last.endsWith("s")
    ? last.slice(0, -1)
    : last;
  return parts.map(cap).join("");
}

/** Where the derived name reads badly, the name a client author would pick. */
const NAMED: Record<string, string> = {
  "GET /openapi.json": "getOpenApiDocument",
  "GET /docs": "getApiReference",
  "GET /docs/assets/{asset}": "getApiReferenceAsset",
  "GET /health/live": "getLiveness",
  "GET /health/ready": "getReadiness",
  "POST /v1/auth/login": "login",
  "POST /v1/auth/logout": "logout",
  "GET /v1/auth/me": "getCurrentPrincipal",
  "POST /v1/auth/password-reset": "resetPassword",
  "POST /v1/users/{id}/revoke-sessions": "revokeUserSessions",
  "POST /v1/users/{id}/reset-password": "sendUserPasswordReset",
  "POST /v1/tenants/test": "createTestTenant",
  "GET /v1/projects/{id}/jwks.json": "getProjectJwks",
  "POST /v1/tokens": "issueJwt",
  "POST /v1/usage/events": "ingestUsageEvents",
  "GET /v1/admin/logs/export": "exportAdminLogs",
  "POST /v1/admin/logs/test": "writeTestLog",
  "POST /v1/admin/logs/prune": "pruneAdminLogs",
  "GET /v1/admin/audit/export": "exportAdminAudit",
  "POST /v1/admin/maintenance/backfill-members": "backfillMembers",
  "POST /v1/admin/maintenance/db-init": "initPostgres",
  "POST /v1/admin/maintenance/migrate-kv-to-postgres": "migrateKvToPostgres",
  "POST /v1/admin/webhooks/{id}/rotate-secret": "rotateAdminWebhookSecret",
  "POST /v1/tenants/{tenant}/webhooks/{id}/rotate-secret": "rotateTenantWebhookSecret",
  "POST /v1/admin/emails/test": "sendTestEmail",
  "POST /v1/tenants/{tenant}/secrets/smtp/test": "sendTenantSmtpTest",
  "POST /v1/tenants/{tenant}/vault/rotate": "rotateTenantDataKey",
  "POST /v1/admin/vault/rotate-all": "rotateAllDataKeys",
  "POST /v1/stripe/webhook": "receiveStripeEvent",
  "POST /v1/tenants/{tenant}/billing/checkout": "createTenantCheckoutSession",
  "POST /v1/tenants/{tenant}/billing/portal": "createTenantPortalSession",
  "GET /v1/tenants/{tenant}/subscription": "getTenantSubscription",
  "POST /v1/admin/finance/sync-transaction": "syncStripeObject",
  "POST /v1/admin/finance/reconcile": "reconcileStripe",
  "GET /v1/admin/finance/subscription-summary": "getAdminFinanceSubscriptionSummary",
  "GET /v1/admin/finance/revenue-protection": "getAdminFinanceRevenueProtection",
  "GET /v1/admin/config": "getAdminConfig",
  "GET /v1/admin/system/ip-reputation": "listAdminSystemIpReputations",
  "GET /v1/admin/system/ip-reputation/{ip}": "getAdminSystemIpReputation",
  "GET /v1/admin/system/ip-allowlist": "getAdminSystemIpAllowlist",
  "PUT /v1/admin/system/ip-allowlist": "replaceAdminSystemIpAllowlist",
};

export function operationId(method: string, path: string): string {
  const chosen = NAMED[`${method.toUpperCase()} ${path}`];
  if (chosen) return chosen;
  const segments = path.split("/").filter((s) => s && s !== "v1");
  const named = (s: string) => !s.startsWith("{");
  const last = segments.at(-1)!;
  const m = method.toLowerCase();
  let verb: string;
  let nouns: string[];
  if (m === "post" && named(last) && ACTIONS.has(last) && segments.length > 1) {
    verb = camel(words(last));
    nouns = segments.slice(0, -1);
  } else {
    const item = !named(last);
    verb = m === "get"
      ? (item || IRREGULAR[last] || last.endsWith(".json") ? "get" : "list")
      : m === "post"
      ? "create"
      : m === "patch"
      ? "update"
      : m === "put"
      ? "replace"
      : m === "delete"
      ? "delete"
      : m;
    nouns = segments;
  }
  const named_ = nouns.filter(named).map((s) => s.replace(/\.json$/, ""));
  // Every noun but the last names a parent (one of them); the last is a list or one of its items.
  const noun = named_.map((s, i) =>
    i < named_.length - 1 || verb !== "list" ? singular(s) : words(s).map(cap).join("")
  ).join("");
  return `${verb}${noun}`;
}
