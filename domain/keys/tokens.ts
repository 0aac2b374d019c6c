/**
 * Service tokens (`stw_…`): credentials for systems. The secret is shown once and stored as
 * SHA-256. A token holds explicit permissions or a custom role's (as the role is at each
 * request), never more than its creator holds, and may be bound to one tenant and given an
 * expiry.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { named, type NamedKey, remembered } from "../../kv/names.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { peekImmutablePointer, resolveImmutablePointer } from "../../kv/pointers.ts";
import { getRecord, replace, type Table, type Versioned } from "../../kv/table.ts";
import { badRequest, forbidden, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import {
  ALL_PERMISSIONS,
  expandPermissions,
  isPermission,
  PERMISSIONS,
} from "../access/permissions.ts";
import type { LimitOverrides } from "../access/api_rate_limit.ts";
import { permissionsInTenant, type Principal, tokenPrincipal } from "../access/principal.ts";
import {
  type CustomGrant,
  customGrant,
  knownRoles,
  NO_GRANT,
  type Role,
  roleTable,
} from "../access/custom_roles.ts";
import { createRecord, updateRecord } from "../audit/records.ts";
import { displayStart, newSecret, sha256Hex } from "../shared/secrets.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { tenantTable } from "../tenancy/tenants.ts";
import { iso } from "../shared/time.ts";

export const SERVICE_TOKEN_PREFIX = "stw";

export interface ServiceToken {
  id: string;
  name: string;
  /** `stw_AbCd`: enough to recognise the token, not to use it. */
  start: string;
  /** Empty for a token made from a role. */
  permissions: string[];
  /** The custom role whose permissions the token holds (access/custom_roles.ts). */
  role_id?: string;
  tenant_id: string | null;
  /** Set when the creator sees only test tenants (qa): the token inherits the limit. */
  test_tenants_only: boolean;
  expires_at: string | null;
  created_by: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  token_hash: string;
  /** Its own API rate limits, overriding the role and global ones (set only when given). */
  rate_limit?: LimitOverrides;
}

const live = (t: ServiceToken) => t.revoked_at === null;

export const tokenTable: Table<ServiceToken> = {
  key: keys.token,
  indexes: (t) =>
    live(t)
      ? [
        keys.tokenHash(t.token_hash),
        ...(t.permissions.includes(ALL_PERMISSIONS) ? [keys.superAdmin(t.id)] : []),
      ]
      : [],
  counters: (t) => live(t) && t.role_id ? [keys.roleTokens(t.role_id)] : [],
};

/** The token as the API and the audit trail show it: never the hash. */
export const tokenView = ({ token_hash: _, ...rest }: ServiceToken) => rest;

const TOUCH_EVERY_MS = 60_000;

export const tokenExpired = (t: ServiceToken, now: number) =>
  t.expires_at !== null && Date.parse(t.expires_at) <= now;

/** What a token record grants, and its times as numbers. */
interface Grant {
  principal: Principal;
  expiresAt: number | null;
  lastUsedAt: number | null;
  /** What its role granted when this was built (NO_GRANT without a role). */
  custom: CustomGrant;
}

/** A role's permissions as a token holds them: platform-wide, or inside its tenant. */
const rolePermissions = (g: CustomGrant) =>
  g.inMemberTenants.size ? new Set([...g.platform, ...g.inMemberTenants]) : g.platform;

/**
 * Grants, built once per record read and role table: gateways present the same token on every
 * call. (A changed token is a new record object, a changed role a new CustomGrant: a new grant.)
 */
const grants = new WeakMap<ServiceToken, Grant>();
function grantOf(t: ServiceToken, asOf?: CustomGrant): Grant {
  let grant = grants.get(t);
  if (!grant || (asOf !== undefined && grant.custom !== asOf)) {
    const custom = asOf ?? NO_GRANT;
    grant = {
      custom,
      principal: tokenPrincipal(
        t.id,
        t.role_id ? rolePermissions(custom) : expandPermissions(t.permissions),
        t.tenant_id,
        t.test_tenants_only,
        t.expires_at,
        t.rate_limit ?? null,
      ),
      expiresAt: t.expires_at === null ? null : Date.parse(t.expires_at),
      lastUsedAt: t.last_used_at ? Date.parse(t.last_used_at) : null,
    };
    grants.set(t, grant);
  }
  return grant;
}

/** Null when the token does not authenticate at `now`; else whether it is due a touch. */
function refusal(token: ServiceToken | null, now: number): "refused" | "touch" | null {
  if (!token || !live(token)) return "refused";
  const { expiresAt, lastUsedAt } = grantOf(token);
  if (expiresAt !== null && expiresAt <= now) return "refused";
  return lastUsedAt !== null && now - lastUsedAt < TOUCH_EVERY_MS ? null : "touch";
}

/**
 * A secret's hash pointer and its token's record key, named once (kv/names.ts): the hot path
 * presents the same few tokens on every call. The pointer never changes, so neither does the
 * record it leads to.
 */
const tokenNames = new Map<string, { pointer: NamedKey<"cache">; record?: NamedKey<"cache"> }>();
const namesOf = (secret: string) =>
  remembered(
    tokenNames,
    secret,
    () => ({ pointer: named(keys.tokenHash(sha256Hex(secret))) }),
    10_000,
  );

/**
 * The principal behind a token secret, or null when unknown, revoked or expired. The record
 * comes through svc.cache: gateways call verify with a token on every request, and that must
 * not cost a KV read. A revocation is seen at once here and within the cache window elsewhere.
 */
export async function authenticateToken(svc: Services, secret: string): Promise<Principal | null> {
  const id = await resolveImmutablePointer(svc.kv, namesOf(secret).pointer.key);
  const entry = id ? await svc.cache.get<ServiceToken>(keys.token(id)) : null;
  const token = entry?.versionstamp ? entry as Versioned<ServiceToken> : null;
  const now = svc.now();
  const verdict = refusal(token?.value ?? null, now);
  if (verdict === "refused") return null;
  // A role's grant from this process's role table: no read in the warm case.
  const custom = token!.value.role_id ? await customGrant(svc, [token!.value.role_id]) : NO_GRANT;
  if (verdict === "touch") {
    // Best effort (a stale cached version simply fails); either way re-read it next time.
    await commit(
      replace(svc.kv.atomic(), tokenTable, token!, { ...token!.value, last_used_at: iso(now) }),
    );
    svc.cache.forget(keys.token(token!.value.id));
  }
  return grantOf(token!.value, custom).principal;
}

/**
 * authenticateToken without a promise, for the hot path, when memory holds all it needs:
 * the principal, null when refused, or undefined to take the asynchronous way.
 */
export function authenticateTokenCached(
  svc: Services,
  secret: string,
): Principal | null | undefined {
  const names = namesOf(secret);
  const id = peekImmutablePointer(svc.kv, names.pointer.key, names.pointer.name);
  if (id === undefined) return undefined;
  names.record ??= named(keys.token(id));
  const entry = svc.cache.getSync<ServiceToken>(names.record.key, names.record.name);
  if (!entry?.versionstamp) return undefined;
  const verdict = refusal(entry.value, svc.now());
  if (verdict === "refused") return null;
  const custom = entry.value.role_id ? customGrant(svc, [entry.value.role_id]) : NO_GRANT;
  return verdict === "touch" || custom instanceof Promise
    ? undefined
    : grantOf(entry.value, custom).principal;
}

export interface NewToken {
  name: string;
  /** Explicit permissions, or `role`. */
  permissions?: string[];
  /** A custom role id: the token holds the role's permissions as the role is at each request. */
  role?: string | null;
  tenant_id?: string | null;
  expires_at?: string | null;
  rate_limit?: LimitOverrides | null;
}

/**
 * Refuses any permission `caller` could not use itself where the token acts: nobody grants,
 * or revokes, more than they hold.
 */
async function checkWithinReach(
  svc: Services,
  caller: Principal,
  input: { permissions: string[]; tenant_id?: string | null },
): Promise<void> {
  const unknown = input.permissions.filter((p) => p !== ALL_PERMISSIONS && !isPermission(p));
  if (unknown.length) throw badRequest(`unknown permissions: ${unknown.join(", ")}`);
  const wanted = input.permissions.includes(ALL_PERMISSIONS) ? [...PERMISSIONS] : input.permissions;
  let held = new Set(caller.platform);
  if (input.tenant_id) {
    if (caller.tenant_id && caller.tenant_id !== input.tenant_id) throw notFound("tenant");
    const tenant = await getRecord(svc.kv, tenantTable, input.tenant_id);
    const inTenant = tenant && tenant.value.status !== "deleted"
      ? await permissionsInTenant(svc, caller, tenant.value)
      : null;
    if (!inTenant) throw notFound("tenant");
    held = new Set([...held, ...inTenant]);
  } else if (caller.tenant_id) {
    throw forbidden("a tenant-bound token can only create tokens bound to the same tenant");
  }
  const missing = wanted.filter((p) => !held.has(p as never));
  if (missing.length) {
    throw forbidden(`you do not hold these permissions: ${missing.join(", ")}`);
  }
}

/**
 * A token's expiry: what was asked for, at most its creator's. A token minted by an expiring
 * token expires with it when no expiry is asked for; a later one is refused.
 */
function childExpiry(creator: Principal, asked: string | null): string | null {
  const requested = asked ? iso(Date.parse(asked)) : null;
  const limit = creator.expires_at;
  if (limit === null) return requested;
  if (requested === null) return limit;
  if (Date.parse(requested) > Date.parse(limit)) {
    throw badRequest(`expires_at may not be later than the creating token's (${limit})`, [{
      path: ["expires_at"],
      message: `must be at most ${limit}`,
    }]);
  }
  return requested;
}

export async function createToken(
  svc: Services,
  actor: Actor,
  creator: Principal,
  input: NewToken,
  opts: {
    /** A secret chosen by the operator (STEWARD_BOOTSTRAP_TOKEN); generated otherwise. */
    secret?: string;
    /** Mutations to commit with the token (the bootstrap marker's check). */
    extra?: (op: Deno.AtomicOperation) => void;
  } = {},
): Promise<{ secret: string; token: Versioned<ServiceToken> }> {
  const secret = opts.secret ?? newSecret(SERVICE_TOKEN_PREFIX);
  const now = svc.now();
  if (input.expires_at && Date.parse(input.expires_at) <= now) {
    throw badRequest("expires_at must be in the future", [{
      path: ["expires_at"],
      message: "must be in the future",
    }]);
  }
  const role = input.role ? await roleForToken(svc, input.role, input.tenant_id ?? null) : null;
  const permissions = role ? role.value.permissions : input.permissions ?? [];
  if (!role && permissions.length === 0) {
    throw badRequest("give permissions or a role", [{
      path: ["permissions"],
      message: "give permissions or a role",
    }]);
  }
  await checkWithinReach(svc, creator, { permissions, tenant_id: input.tenant_id });
  const expiresAt = childExpiry(creator, input.expires_at ?? null);
  const record: ServiceToken = {
    id: newId("tok", now),
    name: input.name,
    start: displayStart(secret),
    permissions: role ? [] : [...new Set(permissions)].sort(),
    ...(role ? { role_id: role.value.id } : {}),
    tenant_id: input.tenant_id ?? null,
    test_tenants_only: creator.sees === "test",
    expires_at: expiresAt,
    created_by: creator.id,
    created_at: iso(now),
    last_used_at: null,
    revoked_at: null,
    token_hash: sha256Hex(secret),
    ...(input.rate_limit ? { rate_limit: input.rate_limit } : {}),
  };
  const token = await createRecord(svc, actor, tokenTable, record, {
    action: "token.created",
    resource_type: "service_token",
    tenant_id: (t) => t.tenant_id,
    view: tokenView,
    extra: (op) => {
      // A role deleted or changed meanwhile fails the commit (and the retry reads it again).
      if (role) op.check({ key: roleTable.key(role.value.id), versionstamp: role.versionstamp });
      opts.extra?.(op);
    },
  });
  return { secret, token };
}

/** The role a token is made from: 400 when unknown, or tenant-scoped and the token unbound. */
async function roleForToken(
  svc: Services,
  roleId: string,
  tenantId: string | null,
): Promise<Versioned<Role>> {
  const role = await getRecord(svc.kv, roleTable, roleId);
  if (!role) throw badRequest("no such role", [{ path: ["role"], message: "not found" }]);
  if (role.value.tenant_scoped && !tenantId) {
    throw badRequest("a token from a tenant-scoped role must be bound to a tenant", [{
      path: ["tenant_id"],
      message: "required for a tenant-scoped role",
    }]);
  }
  return role;
}

/** What a token holds now: its permissions, or its role's as this process knows the role. */
async function heldBy(svc: Services, t: ServiceToken): Promise<string[]> {
  return t.role_id
    ? (await knownRoles(svc, [t.role_id])).flatMap((r) => r.permissions)
    : t.permissions;
}

/** Tokens a caller may list: all of them, or only those bound to its own tenant. */
export function listTokens(
  svc: Services,
  viewer: Principal,
  page: PageRequest,
): Promise<Page<ServiceToken> & Counted> {
  return listCounted(svc.kv, {
    selector: { prefix: keys.tokens() },
    filter: (t) => !viewer.tenant_id || t.tenant_id === viewer.tenant_id,
  }, { ...page, reverse: true });
}

export async function getToken(
  svc: Services,
  viewer: Principal,
  id: string,
): Promise<Versioned<ServiceToken>> {
  const token = await getRecord(svc.kv, tokenTable, id);
  if (!token || (viewer.tenant_id && token.value.tenant_id !== viewer.tenant_id)) {
    throw notFound("token");
  }
  return token;
}

/** Revokes at once (the hash pointer goes in the same commit). Revoking twice is a no-op. */
export async function revokeToken(
  svc: Services,
  actor: Actor,
  viewer: Principal,
  id: string,
  ifMatch?: string,
): Promise<Versioned<ServiceToken>> {
  const token = await getToken(svc, viewer, id);
  if (!token.value.revoked_at) {
    await checkWithinReach(svc, viewer, {
      permissions: await heldBy(svc, token.value),
      tenant_id: token.value.tenant_id,
    });
  }
  return await revokeTokenAsSystem(svc, actor, id, ifMatch);
}

/** Revokes without asking who may: for the system's own clean-ups (a deleted tenant's tokens). */
export function revokeTokenAsSystem(
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch?: string,
): Promise<Versioned<ServiceToken>> {
  return updateRecord(svc, actor, tokenTable, {
    id,
    noun: "token",
    ifMatch,
    action: "token.revoked",
    resource_type: "service_token",
    tenant_id: (t) => t.tenant_id,
    view: tokenView,
    apply: (t) => t.revoked_at ? t : { ...t, revoked_at: iso(svc.now()) },
  });
}
