/**
 * Custom roles: named sets of permissions that users and service tokens hold besides the
 * built-in platform role. A role is either platform-wide (its permissions on platform routes,
 * and those of them in TENANT_PERMISSIONS inside every tenant, like a platform role) or
 * tenant-scoped (only TENANT_PERMISSIONS, granted inside the tenants where the holder is a
 * member, on top of the membership's role; a token from such a role must be bound to a tenant).
 *
 * Every process keeps the whole role table in memory (roles are few: at most MAX_CUSTOM_ROLES)
 * and resolves a principal's roles from it without a KV read. Each role change bumps
 * `keys.rolesVersion()`; a process reads that key through `svc.cache` and reloads the table
 * when its versionstamp moved. So the process that made a change sees it at once (it forgets the
 * cached version), and every other one within the cache's freshness window
 * (STEWARD_VERIFY_CACHE_MS, 5 s by default): that is the staleness bound of a role edit.
 */
import { keys } from "../../kv/keys.ts";
import type { Table } from "../../kv/table.ts";
import { badRequest, forbidden } from "../shared/errors.ts";
import type { Services } from "../shared/services.ts";
import { isPermission, type Permission, TENANT_PERMISSIONS } from "./permissions.ts";
import type { Principal } from "./principal.ts";

export interface Role {
  id: string;
  name: string;
  description: string;
  /** Sorted, no duplicates. */
  permissions: Permission[];
  tenant_scoped: boolean;
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** Kept small enough to hold in memory and list whole. */
export const MAX_CUSTOM_ROLES = 200;

export const normalizeRoleName = (name: string) => name.trim().toLowerCase();

export const roleTable: Table<Role> = {
  key: keys.role,
  unique: (r) => [keys.roleName(normalizeRoleName(r.name))],
};

/** What a principal's custom roles add to its built-in grants. */
export interface CustomGrant {
  /** On platform routes. */
  platform: ReadonlySet<Permission>;
  /** Inside every tenant (platform-wide roles' tenant permissions). */
  inTenants: ReadonlySet<Permission>;
  /** Inside the tenants the holder is a member of (tenant-scoped roles). */
  inMemberTenants: ReadonlySet<Permission>;
}

export const NO_GRANT: CustomGrant = {
  platform: new Set(),
  inTenants: new Set(),
  inMemberTenants: new Set(),
};

/** 400 for unknown permissions, and for a tenant-scoped role holding a platform-only one. */
export function checkRolePermissions(permissions: readonly string[], tenantScoped: boolean) {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length) {
    throw badRequest(`unknown permissions: ${unknown.join(", ")}`, [{
      path: ["permissions"],
      message: `unknown: ${unknown.join(", ")}`,
    }]);
  }
  const outside = permissions.filter((p) => !TENANT_PERMISSIONS.has(p as Permission));
  if (tenantScoped && outside.length) {
    throw badRequest(
      `a tenant-scoped role holds only tenant permissions, not ${outside.join(", ")}`,
      [
        { path: ["permissions"], message: `not tenant permissions: ${outside.join(", ")}` },
      ],
    );
  }
}

/**
 * 403 unless `caller` holds every one of `permissions` platform-wide: nobody grants, edits or
 * revokes a role holding more than they do.
 */
export function requireHoldsAll(caller: Principal, permissions: readonly string[], what: string) {
  const missing = permissions.filter((p) => !caller.platform.has(p as Permission));
  if (missing.length) {
    throw forbidden(`${what}: you do not hold these permissions: ${missing.join(", ")}`);
  }
}

interface Book {
  /** The versionstamp of `keys.rolesVersion()` the table was loaded under; undefined before. */
  stamp: string | null | undefined;
  roles: ReadonlyMap<string, Role>;
  /** Grants by role-id list, built once per table. */
  grants: Map<string, CustomGrant>;
  loading: Promise<void> | null;
}

/**
 * Grants built per role-id list held at most: each user's list of roles may be its own, so
 * past it they start over (rebuilding one is cheap).
 */
export const MAX_GRANTS = 10_000;

/** One table per store (tests open many stores in one process). */
const books = new WeakMap<Deno.Kv, Book>();

function bookOf(kv: Deno.Kv): Book {
  let book = books.get(kv);
  if (!book) {
    book = { stamp: undefined, roles: new Map(), grants: new Map(), loading: null };
    books.set(kv, book);
  }
  return book;
}

/** Every custom role, read from the store (for the admin API: never stale). */
export async function loadRoles(kv: Deno.Kv): Promise<Role[]> {
  const roles: Role[] = [];
  for await (const e of kv.list<Role>({ prefix: keys.roles() })) roles.push(e.value);
  return roles;
}

async function refresh(svc: Services, book: Book): Promise<Book> {
  const version = await svc.cache.get(keys.rolesVersion());
  if (version.versionstamp === book.stamp) return book;
  book.loading ??= (async () => {
    // Listed after the version was read, so the table is at least as new as its stamp.
    const roles = new Map((await loadRoles(svc.kv)).map((r) => [r.id, r]));
    Object.assign(book, { roles, stamp: version.versionstamp, grants: new Map() });
  })().finally(() => book.loading = null);
  await book.loading;
  return book;
}

/** The role table, from memory while the cached version matches (no promise then). */
function currentBook(svc: Services): Book | Promise<Book> {
  const book = bookOf(svc.kv);
  const version = svc.cache.getSync(keys.rolesVersion());
  return version && version.versionstamp === book.stamp ? book : refresh(svc, book);
}

/** After a role change: this process reloads the table on its next look. */
export const forgetRoleTable = (svc: Services) => svc.cache.forget(keys.rolesVersion());

/** Adds the version bump every role change commits. */
export const bumpRoleVersion = (op: Deno.AtomicOperation) => op.sum(keys.rolesVersion(), 1n);

function buildGrant(book: Book, roleIds: readonly string[]): CustomGrant {
  const platform = new Set<Permission>();
  const inTenants = new Set<Permission>();
  const inMemberTenants = new Set<Permission>();
  for (const id of roleIds) {
    // A role deleted meanwhile grants nothing (deleting one in use is refused anyway).
    const role = book.roles.get(id);
    for (const p of role?.permissions ?? []) {
      if (role!.tenant_scoped) inMemberTenants.add(p);
      else {
        platform.add(p);
        if (TENANT_PERMISSIONS.has(p)) inTenants.add(p);
      }
    }
  }
  return { platform, inTenants, inMemberTenants };
}

function grantFrom(book: Book, roleIds: readonly string[]): CustomGrant {
  const name = roleIds.join(",");
  let grant = book.grants.get(name);
  if (!grant) {
    grant = buildGrant(book, roleIds);
    if (book.grants.size >= MAX_GRANTS) book.grants.clear();
    book.grants.set(name, grant);
  }
  return grant;
}

/**
 * What `roleIds` grant, as of the role table this process holds: synchronous (no KV read) in
 * the warm case. A grant object is shared while the table stays the same, so callers may cache
 * what they build from it by identity.
 */
export function customGrant(
  svc: Services,
  roleIds: readonly string[] | undefined,
): CustomGrant | Promise<CustomGrant> {
  if (!roleIds?.length) return NO_GRANT;
  const book = currentBook(svc);
  return book instanceof Promise
    ? book.then((b) => grantFrom(b, roleIds))
    : grantFrom(book, roleIds);
}

/** Grants held for `kv`'s role table (for the bound's test). */
export const heldGrants = (kv: Deno.Kv): number => books.get(kv)?.grants.size ?? 0;

/** The roles `ids` name as this process knows them (missing ones left out). */
export async function knownRoles(svc: Services, ids: readonly string[]): Promise<Role[]> {
  const book = await currentBook(svc);
  return ids.flatMap((id) => book.roles.get(id) ?? []);
}
