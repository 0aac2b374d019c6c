/**
 * Who may do what (ARCHITECTURE.md, access control): the permission catalogue, the platform
 * roles and the tenant roles. Routes name the permission they need in routes/permissions.ts;
 * deny by default.
 */

export const PERMISSIONS = [
  "tenants:read",
  "tenants:write",
  "tenants:create",
  "tenants:manage",
  "tenants:test",
  "members:read",
  "members:write",
  "users:read",
  "users:write",
  "tokens:read",
  "tokens:write",
  "audit:read",
  "projects:read",
  "projects:write",
  "keys:read",
  "keys:write",
  "keys:verify",
  "usage:read",
  "usage:write",
  "plans:read",
  "plans:write",
  "billing:read",
  "billing:write",
  "finance:read",
  "webhooks:read",
  "webhooks:write",
  "secrets:read",
  "secrets:write",
  "vault:reveal",
  "vault:admin",
  "logs:read",
  "logs:write",
  "system:read",
  "system:write",
  "config:read",
  "config:write",
  "emails:read",
  "emails:write",
] as const;

export type Permission = typeof PERMISSIONS[number];

/** What each permission lets its holder do: `GET /v1/admin/permissions` serves these. */
export const PERMISSION_DESCRIPTIONS: Record<Permission, string> = {
  "tenants:read": "Read tenants: their details, plan, flags and overview.",
  "tenants:write": "Change a tenant's name, metadata, feature flags and settings.",
  "tenants:create": "Create tenants.",
  "tenants:manage": "Suspend, restore and delete tenants.",
  "tenants:test": "Create test tenants.",
  "members:read": "List a tenant's members and invitations.",
  "members:write": "Invite, re-role and remove a tenant's members.",
  "users:read": "Read platform users, custom roles and the permission table.",
  "users:write": "Create, change, block, suspend and erase users; manage custom roles.",
  "tokens:read": "List and read service tokens (never their secrets).",
  "tokens:write": "Create and revoke service tokens.",
  "audit:read": "Read the audit trail.",
  "projects:read": "Read a tenant's projects and signing keys.",
  "projects:write": "Create and change projects; rotate their signing keys.",
  "keys:read": "Read a tenant's API keys (never their secrets) and their usage.",
  "keys:write": "Create, rotate and revoke API keys.",
  "keys:verify": "Verify API keys and mint JWTs (gateways).",
  "usage:read": "Read usage, traffic, metrics and cost reports.",
  "usage:write": "Report usage events.",
  "plans:read": "Read plans.",
  "plans:write": "Create, change and archive plans.",
  "billing:read": "Read a tenant's plan, subscription and invoices.",
  "billing:write": "Change a tenant's plan, open checkout and portal sessions, sync Stripe.",
  "finance:read": "Read the finance reports (revenue, MRR, a tenant's earnings).",
  "webhooks:read": "Read webhook endpoints and their deliveries.",
  "webhooks:write": "Create, change and test webhook endpoints; retry deliveries.",
  "secrets:read": "Read tenant secrets' names and metadata (values masked).",
  "secrets:write": "Create, change and delete tenant secrets.",
  "vault:reveal": "Reveal a tenant secret's value (audited with a reason).",
  "vault:admin": "Rotate data keys, take backups, read the vault's health and audit.",
  "logs:read": "Read and export request logs.",
  "logs:write": "Prune request logs and write test entries.",
  "system:read": "Read system health, queues, jobs and alerts.",
  "system:write": "Pause queues, retry jobs, acknowledge alerts, run maintenance.",
  "config:read": "Read the runtime configuration.",
  "config:write": "Change the runtime configuration.",
  "emails:read": "Read the mail outbox (the development outbox shows messages whole).",
  "emails:write": "Send test mail.",
};

export const isPermission = (p: string): p is Permission =>
  (PERMISSIONS as readonly string[]).includes(p);

export const PLATFORM_ROLES = ["super_admin", "admin", "support", "finance", "ops", "qa"] as const;
export type PlatformRole = typeof PLATFORM_ROLES[number];

/** What each built-in platform role is for (the roles API lists them, read-only). */
export const PLATFORM_ROLE_DESCRIPTIONS: Record<PlatformRole, string> = {
  super_admin: "Every permission, now and later.",
  admin: "Runs the platform: everything but configuration and revealing tenant secrets.",
  support: "Reads everything but configuration, mail and finance, with emails, names and IPs " +
    "masked.",
  finance: "Plans, billing and the finance reports.",
  ops: "System health, queues, logs, webhooks and mail.",
  qa: "Creates test tenants and acts as an admin inside test tenants only.",
};

export const TENANT_ROLES = ["owner", "admin", "member", "viewer"] as const;
export type TenantRole = typeof TENANT_ROLES[number];

/** Permissions that act inside one tenant (granted by memberships and tenant-bound tokens). */
export const TENANT_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>([
  "tenants:read",
  "tenants:write",
  "tenants:manage",
  "members:read",
  "members:write",
  "audit:read",
  "projects:read",
  "projects:write",
  "keys:read",
  "keys:write",
  "usage:read",
  "billing:read",
  "billing:write",
  "webhooks:read",
  "webhooks:write",
  "secrets:read",
  "secrets:write",
  // Held in a tenant by platform staff and the tokens granted them; by no tenant role.
  "vault:reveal",
  "vault:admin",
  // What the platform earns from the tenant (GET …/earnings): finance staff's, no tenant role's.
  "finance:read",
]);

/** What a platform role grants on platform routes, inside the tenants it sees, and which those are. */
export interface RoleGrant {
  platform: ReadonlySet<Permission>;
  inTenants: ReadonlySet<Permission>;
  sees: "all" | "test";
}

const all = new Set<Permission>(PERMISSIONS);
const except = (...drop: Permission[]) => new Set(PERMISSIONS.filter((p) => !drop.includes(p)));
// Support reads no configuration, and no mail: the development outbox shows messages whole.
// Nor the finance reports: revenue is for finance staff.
const reads = new Set(
  PERMISSIONS.filter((p) =>
    p.endsWith(":read") && p !== "config:read" && p !== "emails:read" && p !== "finance:read"
  ),
);
const grant = (platform: Set<Permission>, sees: "all" | "test" = "all"): RoleGrant => ({
  platform,
  inTenants: new Set([...platform].filter((p) => TENANT_PERMISSIONS.has(p))),
  sees,
});

const adminPowers = except("vault:reveal", "config:read", "config:write");

export const PLATFORM_ROLE_GRANTS: Record<PlatformRole, RoleGrant> = {
  super_admin: grant(all),
  admin: grant(adminPowers),
  support: grant(reads),
  finance: grant(
    new Set<Permission>([
      "tenants:read",
      "plans:read",
      "plans:write",
      "billing:read",
      "billing:write",
      "finance:read",
      "usage:read",
    ]),
  ),
  ops: grant(
    new Set<Permission>([
      "tenants:read",
      "system:read",
      "system:write",
      "logs:read",
      "logs:write",
      "usage:read",
      "webhooks:read",
      "webhooks:write",
      "audit:read",
      "emails:read",
    ]),
  ),
  // Admin powers, but only inside test tenants; on platform routes only creating test tenants.
  // No finance reports, not even a test tenant's earnings.
  qa: {
    platform: new Set<Permission>(["tenants:test"]),
    inTenants: new Set(
      [...adminPowers].filter((p) => TENANT_PERMISSIONS.has(p) && p !== "finance:read"),
    ),
    sees: "test",
  },
};

const tenantReads: Permission[] = [
  "tenants:read",
  "members:read",
  "projects:read",
  "keys:read",
  "usage:read",
];

/**
 * Suspending or deleting a tenant, reading its secrets in clear, rotating its data key and the
 * platform's earnings from it stay with the platform.
 */
const ownerGrants = [...TENANT_PERMISSIONS].filter(
  (p) =>
    p !== "tenants:manage" && p !== "vault:reveal" && p !== "vault:admin" && p !== "finance:read",
);

export const TENANT_ROLE_PERMISSIONS: Record<TenantRole, ReadonlySet<Permission>> = {
  owner: new Set(ownerGrants),
  admin: new Set(ownerGrants.filter((p) => p !== "billing:write")),
  // Webhooks stay with owners and admins: deliveries carry every event of the tenant.
  member: new Set<Permission>([...tenantReads, "keys:write", "projects:write"]),
  viewer: new Set<Permission>(tenantReads),
};

/** Service tokens may hold "*" (every permission, now and later): only super admins grant it. */
export const ALL_PERMISSIONS = "*";
export const expandPermissions = (granted: readonly string[]): Set<Permission> =>
  granted.includes(ALL_PERMISSIONS) ? new Set(all) : new Set(granted.filter(isPermission));
