/**
 * The one table of who may call what: every route's `METHOD /path` (OpenAPI path syntax) and
 * the permission it needs. A route missing here cannot be registered (routes/route.ts throws),
 * and tests/api/permissions_test.ts walks this table for every role.
 *
 * - "public": no credentials.
 * - "authenticated": any principal; the handler narrows what it returns.
 * - a permission: on paths with `{tenant}` it is checked inside that tenant (platform grant,
 *   membership or token binding); elsewhere it must be a platform-wide grant.
 */
import type { Permission } from "../domain/access/permissions.ts";

export type Access = "public" | "authenticated" | Permission;

export const ROUTE_ACCESS: Record<string, Access> = {
  // Health and docs
  "GET /openapi.json": "public",
  "GET /docs": "public",
  "GET /docs/assets/{asset}": "public",
  "GET /health": "public",
  "GET /health/live": "public",
  "GET /health/ready": "public",

  // Authentication
  "POST /v1/auth/login": "public",
  "POST /v1/auth/logout": "authenticated",
  "GET /v1/auth/me": "authenticated",
  "POST /v1/auth/password-reset": "public",

  // Users (platform staff)
  "GET /v1/users": "users:read",
  "POST /v1/users": "users:write",
  "GET /v1/users/{id}": "users:read",
  "PATCH /v1/users/{id}": "users:write",
  "DELETE /v1/users/{id}": "users:write",
  "POST /v1/users/{id}/block": "users:write",
  "POST /v1/users/{id}/suspend": "users:write",
  "POST /v1/users/{id}/revoke-sessions": "users:write",
  "POST /v1/users/{id}/reset-password": "users:write",
  "GET /v1/users/{id}/audit-trail": "audit:read",
  "GET /v1/users/{id}/daily": "users:read",

  // Roles and the permission table: managing who may do what is managing users (admins may,
  // within what they hold: a role is created, edited or granted only by someone holding every
  // permission in it); reading them is reading users. Not config:*, which admins lack.
  "GET /v1/admin/roles": "users:read",
  "POST /v1/admin/roles": "users:write",
  "GET /v1/admin/roles/{id}": "users:read",
  "PATCH /v1/admin/roles/{id}": "users:write",
  "DELETE /v1/admin/roles/{id}": "users:write",
  "GET /v1/admin/permissions": "users:read",

  // The caller's own activity
  "GET /v1/me/daily": "authenticated",
  "GET /v1/me/overview": "authenticated",

  // Service tokens
  "GET /v1/admin/tokens": "tokens:read",
  "POST /v1/admin/tokens": "tokens:write",
  "GET /v1/admin/tokens/{id}": "tokens:read",
  "DELETE /v1/admin/tokens/{id}": "tokens:write",

  // Tenants
  "GET /v1/tenants": "authenticated",
  "POST /v1/tenants": "tenants:create",
  "POST /v1/tenants/test": "tenants:test",
  "GET /v1/tenants/{tenant}": "tenants:read",
  "PATCH /v1/tenants/{tenant}": "tenants:write",
  "DELETE /v1/tenants/{tenant}": "tenants:manage",
  "POST /v1/tenants/{tenant}/suspend": "tenants:manage",
  "POST /v1/tenants/{tenant}/resume": "tenants:manage",
  "GET /v1/tenants/{tenant}/feature-flags": "tenants:read",
  "PATCH /v1/tenants/{tenant}/feature-flags": "tenants:write",

  // Plans and billing. The catalogue is no secret: anyone signed in may read it.
  "GET /v1/plans": "authenticated",
  "POST /v1/plans": "plans:write",
  "GET /v1/plans/{id}": "authenticated",
  "PATCH /v1/plans/{id}": "plans:write",
  "DELETE /v1/plans/{id}": "plans:write",
  "GET /v1/tenants/{tenant}/billing": "billing:read",
  "PATCH /v1/tenants/{tenant}/billing": "billing:write",

  // Billing on Stripe: the webhook receiver is public (Stripe signs each delivery); acting on
  // Stripe takes billing:write (tenant owners, and platform staff)
  "POST /v1/stripe/webhook": "public",
  "POST /v1/tenants/{tenant}/billing/checkout": "billing:write",
  "POST /v1/tenants/{tenant}/billing/portal": "billing:write",
  "GET /v1/tenants/{tenant}/subscription": "billing:read",
  "POST /v1/admin/finance/sync-transaction": "billing:write",
  "POST /v1/admin/finance/reconcile": "billing:write",

  // Finance reports (platform staff with finance:read; inside a tenant, no tenant role holds it)
  "GET /v1/admin/finance/subscription-summary": "finance:read",
  "GET /v1/admin/finance/stripe-sync-status": "finance:read",
  "GET /v1/admin/finance/subscriptions": "finance:read",
  "GET /v1/admin/finance/analytics": "finance:read",
  "GET /v1/admin/finance/revenue-protection": "finance:read",
  "GET /v1/tenants/{tenant}/earnings": "finance:read",

  // Projects
  "GET /v1/tenants/{tenant}/projects": "projects:read",
  "POST /v1/tenants/{tenant}/projects": "projects:write",
  "GET /v1/tenants/{tenant}/projects/{id}": "projects:read",
  "PATCH /v1/tenants/{tenant}/projects/{id}": "projects:write",
  "DELETE /v1/tenants/{tenant}/projects/{id}": "projects:write",

  // Signing keys, their public JWKS, and JWTs for verified keys
  "GET /v1/tenants/{tenant}/projects/{id}/signing-keys": "projects:read",
  "POST /v1/tenants/{tenant}/projects/{id}/signing-keys/rotate": "projects:write",
  "GET /v1/projects/{id}/jwks.json": "public",
  "POST /v1/tokens": "keys:verify",

  // API keys, and verifying them (the gateway's hot path)
  "GET /v1/tenants/{tenant}/api-keys": "keys:read",
  "POST /v1/tenants/{tenant}/api-keys": "keys:write",
  "GET /v1/tenants/{tenant}/api-keys/{id}": "keys:read",
  "PATCH /v1/tenants/{tenant}/api-keys/{id}": "keys:write",
  "DELETE /v1/tenants/{tenant}/api-keys/{id}": "keys:write",
  "POST /v1/tenants/{tenant}/api-keys/{id}/rotate": "keys:write",
  "POST /v1/keys/verify": "keys:verify",

  // Usage
  "POST /v1/usage/events": "usage:write",
  "GET /v1/tenants/{tenant}/usage": "usage:read",
  "GET /v1/tenants/{tenant}/usage/daily": "usage:read",
  "GET /v1/admin/usage/aggregator-status": "usage:read",
  "GET /v1/admin/overview": "usage:read",
  "GET /v1/admin/metrics/daily": "usage:read",
  "GET /v1/admin/bandwidth/daily": "usage:read",
  "GET /v1/admin/usage/stream": "usage:read",
  "GET /v1/admin/usage/diagnostics": "usage:read",
  "GET /v1/admin/usage/rollups": "usage:read",
  "GET /v1/admin/cost": "usage:read",
  "GET /v1/admin/logs": "logs:read",
  "GET /v1/admin/logs/export": "logs:read",
  "POST /v1/admin/logs/test": "logs:write",
  "POST /v1/admin/logs/prune": "logs:write",

  // Members and invitations
  "GET /v1/tenants/{tenant}/members": "members:read",
  "POST /v1/tenants/{tenant}/members": "members:write",
  "PATCH /v1/tenants/{tenant}/members/{user_id}": "members:write",
  "DELETE /v1/tenants/{tenant}/members/{user_id}": "members:write",
  "GET /v1/tenants/{tenant}/invitations": "members:read",
  "POST /v1/tenants/{tenant}/invitations": "members:write",
  "DELETE /v1/tenants/{tenant}/invitations/{id}": "members:write",
  "POST /v1/invitations/accept": "public",
  // A maintenance task whose outcome the data decides (each tenant's creator), like the others.
  "POST /v1/admin/maintenance/backfill-members": "system:write",
  "POST /v1/admin/maintenance/db-init": "system:write",
  "POST /v1/admin/maintenance/migrate-kv-to-postgres": "system:write",

  // Infrastructure health (every component)
  "GET /v1/admin/system/health": "system:read",

  // Job queues
  "GET /v1/admin/system/queues": "system:read",
  "GET /v1/admin/system/queues/{name}/jobs": "system:read",
  "POST /v1/admin/system/queues/{name}/pause": "system:write",
  "POST /v1/admin/system/queues/{name}/resume": "system:write",
  "GET /v1/admin/system/jobs/{id}": "system:read",
  "POST /v1/admin/system/jobs/{id}/retry": "system:write",
  "DELETE /v1/admin/system/jobs/{id}": "system:write",

  // Alerts
  "GET /v1/admin/system/alerts": "system:read",
  "GET /v1/admin/system/alerts/{id}": "system:read",
  "POST /v1/admin/system/alerts/{id}/acknowledge": "system:write",
  "GET /v1/admin/system/alert-rules": "system:read",

  // Runtime configuration (platform/runtime_config.ts)
  "GET /v1/admin/config": "config:read",
  "PATCH /v1/admin/config": "config:write",
  "GET /v1/admin/config/history": "config:read",
  "POST /v1/admin/config/rollback": "config:write",

  // Plugins: they see every event and may veto creations, so they are the platform's
  // configuration (config:*, held by super admins only)
  "GET /v1/admin/plugins": "config:read",
  "POST /v1/admin/plugins": "config:write",
  "GET /v1/admin/plugins/{id}": "config:read",
  "PATCH /v1/admin/plugins/{id}": "config:write",
  "DELETE /v1/admin/plugins/{id}": "config:write",
  "POST /v1/admin/plugins/{id}/enable": "config:write",
  "POST /v1/admin/plugins/{id}/disable": "config:write",
  "GET /v1/admin/plugins/{id}/health": "config:read",

  // IP reputation: scores, blocks and the allowlist
  "GET /v1/admin/system/ip-reputation": "system:read",
  "GET /v1/admin/system/ip-reputation/{ip}": "system:read",
  "GET /v1/admin/system/ip-blocks": "system:read",
  "POST /v1/admin/system/ip-blocks": "system:write",
  "DELETE /v1/admin/system/ip-blocks/{id}": "system:write",
  "GET /v1/admin/system/ip-allowlist": "system:read",
  "PUT /v1/admin/system/ip-allowlist": "system:write",

  // Webhooks: the platform's endpoints (every tenant's events) and each tenant's own
  "GET /v1/webhooks/event-types": "authenticated",
  "GET /v1/admin/webhooks": "webhooks:read",
  "POST /v1/admin/webhooks": "webhooks:write",
  "GET /v1/admin/webhooks/{id}": "webhooks:read",
  "PATCH /v1/admin/webhooks/{id}": "webhooks:write",
  "DELETE /v1/admin/webhooks/{id}": "webhooks:write",
  "POST /v1/admin/webhooks/{id}/rotate-secret": "webhooks:write",
  "GET /v1/admin/webhooks/{id}/deliveries": "webhooks:read",
  "GET /v1/admin/webhooks/{id}/deliveries/{message_id}/attempts": "webhooks:read",
  "POST /v1/admin/webhooks/{id}/deliveries/{message_id}/retry": "webhooks:write",
  "POST /v1/admin/webhooks/{id}/recover": "webhooks:write",
  "POST /v1/admin/webhooks/{id}/test": "webhooks:write",
  "GET /v1/tenants/{tenant}/webhooks": "webhooks:read",
  "POST /v1/tenants/{tenant}/webhooks": "webhooks:write",
  "GET /v1/tenants/{tenant}/webhooks/{id}": "webhooks:read",
  "PATCH /v1/tenants/{tenant}/webhooks/{id}": "webhooks:write",
  "DELETE /v1/tenants/{tenant}/webhooks/{id}": "webhooks:write",
  "POST /v1/tenants/{tenant}/webhooks/{id}/rotate-secret": "webhooks:write",
  "GET /v1/tenants/{tenant}/webhooks/{id}/deliveries": "webhooks:read",
  "GET /v1/tenants/{tenant}/webhooks/{id}/deliveries/{message_id}/attempts": "webhooks:read",
  "POST /v1/tenants/{tenant}/webhooks/{id}/deliveries/{message_id}/retry": "webhooks:write",
  "POST /v1/tenants/{tenant}/webhooks/{id}/recover": "webhooks:write",
  "POST /v1/tenants/{tenant}/webhooks/{id}/test": "webhooks:write",

  // Email
  "GET /v1/admin/emails": "emails:read",
  "GET /v1/admin/emails/{id}": "emails:read",
  "POST /v1/admin/emails/test": "emails:write",

  // Audit trail
  "GET /v1/admin/audit": "audit:read",
  "GET /v1/admin/audit/export": "audit:read",
  "GET /v1/tenants/{tenant}/audit": "audit:read",

  // Tenant secrets: values are answered in clear only by the reveal
  "GET /v1/tenants/{tenant}/secrets": "secrets:read",
  "POST /v1/tenants/{tenant}/secrets": "secrets:write",
  "GET /v1/tenants/{tenant}/secrets/{name}": "secrets:read",
  "PUT /v1/tenants/{tenant}/secrets/{name}": "secrets:write",
  "DELETE /v1/tenants/{tenant}/secrets/{name}": "secrets:write",
  "POST /v1/tenants/{tenant}/secrets/{name}/reveal": "vault:reveal",
  "POST /v1/tenants/{tenant}/secrets/smtp/test": "secrets:write",
  "GET /v1/admin/secrets": "secrets:read",

  // Vault: data key rotation, health and audit
  "POST /v1/tenants/{tenant}/vault/rotate": "vault:admin",
  "POST /v1/admin/vault/rotate-all": "vault:admin",
  "GET /v1/admin/vault/health": "vault:admin",
  "GET /v1/admin/vault/audit": "vault:admin",
  "POST /v1/admin/vault/backups": "vault:admin",
  "GET /v1/admin/vault/backups": "vault:admin",
  "GET /v1/admin/vault/backup-status": "vault:admin",
};

export const routeKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;
