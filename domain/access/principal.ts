/**
 * An authenticated caller and what it may do. Decisions about a tenant combine three grants:
 * the platform role (all tenants, or test tenants for qa), a membership's tenant role, and a
 * service token's binding.
 */
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import {
  type Permission,
  PERMISSIONS,
  PLATFORM_ROLE_GRANTS,
  type PlatformRole,
  TENANT_ROLE_PERMISSIONS,
  type TenantRole,
} from "./permissions.ts";
import type { Membership } from "./membership_records.ts";
import type { Services } from "../shared/services.ts";
import type { LimitOverrides } from "./api_rate_limit.ts";
import { type CustomGrant, NO_GRANT } from "./custom_roles.ts";

export interface Principal {
  type: "user" | "service_token";
  id: string;
  platform_role: PlatformRole | null;
  /** Granted on platform routes (not inside a tenant). */
  platform: ReadonlySet<Permission>;
  /** Granted inside every tenant that `sees` admits. */
  inTenants: ReadonlySet<Permission>;
  /** Granted inside the tenants the user is a member of, by tenant-scoped custom roles. */
  inMemberTenants?: ReadonlySet<Permission>;
  sees: "all" | "test" | "none";
  /** The one tenant a bound service token acts in. */
  tenant_id: string | null;
  session_id: string | null;
  /** Support staff read emails, names and IPs masked. */
  masked: boolean;
  /** When a service token stops working (ISO time), or null: what it mints may not outlive it. */
  expires_at: string | null;
  /** A service token's own API rate limits (access/api_rate_limit.ts), when it has any. */
  rate_limit?: LimitOverrides | null;
}

const union = <T>(a: ReadonlySet<T>, b: ReadonlySet<T>): ReadonlySet<T> =>
  b.size === 0 ? a : a.size === 0 ? b : new Set([...a, ...b]);

/**
 * A user's principal: its platform role's grants plus its custom roles' (`custom`). Custom
 * roles' tenant permissions reach every tenant, except for qa, whose limit to test tenants
 * they keep.
 */
export function userPrincipal(
  userId: string,
  role: PlatformRole | null,
  sessionId: string,
  custom: CustomGrant = NO_GRANT,
): Principal {
  const grant = role ? PLATFORM_ROLE_GRANTS[role] : null;
  return {
    type: "user",
    id: userId,
    platform_role: role,
    platform: union(grant?.platform ?? new Set(), custom.platform),
    inTenants: union(grant?.inTenants ?? new Set(), custom.inTenants),
    ...(custom.inMemberTenants.size ? { inMemberTenants: custom.inMemberTenants } : {}),
    sees: grant?.sees ?? (custom.inTenants.size ? "all" : "none"),
    tenant_id: null,
    session_id: sessionId,
    masked: role === "support",
    expires_at: null,
  };
}

/**
 * Platform routes a tenant-bound token may still call: each narrows itself to the binding
 * (verify and usage act on the tenant's keys, token and audit lists show its own). Anything
 * else platform-wide, such as creating tenants, is out of a bound token's reach.
 */
export const BOUND_PLATFORM: ReadonlySet<Permission> = new Set<Permission>([
  "keys:verify",
  "usage:write",
  "tokens:read",
  "tokens:write",
  "audit:read",
]);

export function tokenPrincipal(
  tokenId: string,
  permissions: ReadonlySet<Permission>,
  tenantId: string | null,
  testTenantsOnly: boolean,
  expiresAt: string | null = null,
  rateLimit: LimitOverrides | null = null,
): Principal {
  return {
    type: "service_token",
    id: tokenId,
    platform_role: null,
    platform: tenantId
      ? new Set([...permissions].filter((p) => BOUND_PLATFORM.has(p)))
      : permissions,
    inTenants: permissions,
    sees: tenantId ? "none" : testTenantsOnly ? "test" : "all",
    tenant_id: tenantId,
    session_id: null,
    masked: false,
    expires_at: expiresAt,
    rate_limit: rateLimit,
  };
}

/** The store's own authority (bootstrap, the admin CLI): holds every permission. */
export const SYSTEM_PRINCIPAL: Principal = tokenPrincipal(
  "system",
  new Set(PERMISSIONS),
  null,
  false,
);

/** Holds every permission platform-wide: a super-admin user, or an unbound "*" token. */
export const isSuperAdmin = (p: Principal) =>
  p.platform_role === "super_admin" ||
  (p.sees === "all" && !p.tenant_id && p.platform.size === PERMISSIONS.length);

/** Whether the platform role (not a membership) lets `principal` see `tenant`. */
export function seesByPlatform(
  principal: Principal,
  tenant: { id: string; is_test: boolean },
): boolean {
  return principal.tenant_id === tenant.id || seesAsStaff(principal, tenant);
}

/** Whether a platform role (not a binding or a membership) lets `principal` see `tenant`. */
export const seesAsStaff = (principal: Principal, tenant: { is_test: boolean }) =>
  principal.sees === "all" || (principal.sees === "test" && tenant.is_test);

export async function membershipRole(
  svc: Services,
  tenantId: string,
  userId: string,
): Promise<TenantRole | null> {
  return (await getBatched<Membership>(svc.kv, keys.member(tenantId, userId))).value?.role ?? null;
}

/** The tenants a user belongs to, with the role in each. */
export async function listMemberships(
  svc: Services,
  userId: string,
): Promise<{ tenant_id: string; role: TenantRole }[]> {
  const tenantIds = [];
  for await (const m of svc.kv.list<string>({ prefix: keys.userTenants(userId) })) {
    tenantIds.push(m.key.at(-1) as string);
  }
  const roles = await Promise.all(tenantIds.map((t) => membershipRole(svc, t, userId)));
  return tenantIds.flatMap((tenant_id, i) => {
    const role = roles[i];
    return role ? [{ tenant_id, role }] : [];
  });
}

/**
 * The permissions `principal` holds inside `tenant`, or null when it may not see the tenant at
 * all (which the API answers as 404, never 403).
 */
export async function permissionsInTenant(
  svc: Services,
  principal: Principal,
  tenant: { id: string; is_test: boolean },
): Promise<ReadonlySet<Permission> | null> {
  const byPlatform = seesByPlatform(principal, tenant);
  // A token has no membership: what it holds in every tenant it sees, shared, not copied.
  if (principal.type !== "user") return byPlatform ? principal.inTenants : null;
  const granted = new Set<Permission>();
  if (byPlatform) principal.inTenants.forEach((p) => granted.add(p));
  const role = await membershipRole(svc, tenant.id, principal.id);
  if (role) {
    TENANT_ROLE_PERMISSIONS[role].forEach((p) => granted.add(p));
    principal.inMemberTenants?.forEach((p) => granted.add(p));
  }
  return byPlatform || role ? granted : null;
}
