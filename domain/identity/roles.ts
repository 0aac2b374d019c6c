/**
 * The roles API's rules: the six built-in platform roles (read-only) and custom roles
 * (access/custom_roles.ts) created, edited and deleted by staff. Nobody creates, edits or
 * grants a role holding a permission they do not hold themselves. A role held by users or
 * live tokens cannot be deleted: the holders are counted by the user and token tables'
 * counters, so the check reads two numbers instead of scanning.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord, remove, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { createRecord, updateRecord } from "../audit/records.ts";
import {
  bumpRoleVersion,
  checkRolePermissions,
  forgetRoleTable,
  loadRoles,
  MAX_CUSTOM_ROLES,
  normalizeRoleName,
  requireHoldsAll,
  type Role,
  roleTable,
} from "../access/custom_roles.ts";
import {
  type Permission,
  PLATFORM_ROLE_DESCRIPTIONS,
  PLATFORM_ROLE_GRANTS,
  PLATFORM_ROLES,
  type PlatformRole,
} from "../access/permissions.ts";
import type { Principal } from "../access/principal.ts";
import { AppError, conflict, notFound, staleVersion } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import type { Actor, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

/** A role as the API shows it, built-in or custom. */
export interface RoleView {
  id: string;
  name: string;
  description: string;
  permissions: Permission[];
  tenant_scoped: boolean;
  /** Where its tenant permissions apply: every tenant, test tenants, or the holder's own. */
  in_tenants: "all" | "test" | "member";
  builtin: boolean;
  /** Users and live service tokens holding it (custom roles; null for built-in ones). */
  holders: { users: number; tokens: number } | null;
  created_at: string | null;
  updated_at: string | null;
}

const isBuiltin = (id: string): id is PlatformRole =>
  (PLATFORM_ROLES as readonly string[]).includes(id);

function builtinView(role: PlatformRole): RoleView {
  const grant = PLATFORM_ROLE_GRANTS[role];
  return {
    id: role,
    name: role,
    description: PLATFORM_ROLE_DESCRIPTIONS[role],
    permissions: [...new Set([...grant.platform, ...grant.inTenants])].sort(),
    tenant_scoped: false,
    in_tenants: grant.sees,
    builtin: true,
    holders: null,
    created_at: null,
    updated_at: null,
  };
}

const customView = (r: Role, holders: RoleView["holders"]): RoleView => ({
  id: r.id,
  name: r.name,
  description: r.description,
  permissions: r.permissions,
  tenant_scoped: r.tenant_scoped,
  in_tenants: r.tenant_scoped ? "member" : "all",
  builtin: false,
  holders,
  created_at: r.created_at,
  updated_at: r.updated_at,
});

/** The audit trail's and the events' view of a role. */
const roleAuditView = (r: Role) => ({
  id: r.id,
  name: r.name,
  description: r.description,
  permissions: r.permissions,
  tenant_scoped: r.tenant_scoped,
});

async function holdersOf(svc: Services, id: string) {
  const [users, tokens] = await svc.kv.getMany<[Deno.KvU64, Deno.KvU64]>([
    keys.roleUsers(id),
    keys.roleTokens(id),
  ]);
  return {
    entries: [users, tokens] as const,
    users: Number(users.value?.value ?? 0n),
    tokens: Number(tokens.value?.value ?? 0n),
  };
}

/** Built-in roles first, then custom ones by creation; `offset`/`limit` over them all. */
export async function listRoles(
  svc: Services,
  page: { offset: number; limit: number },
): Promise<{ items: Versioned<RoleView>[]; total: number }> {
  const custom = await loadRoles(svc.kv);
  const all: (PlatformRole | Role)[] = [...PLATFORM_ROLES, ...custom];
  const shown = all.slice(page.offset, page.offset + page.limit);
  const items = await Promise.all(shown.map(async (r) => ({
    value: typeof r === "string"
      ? builtinView(r)
      : customView(r, await holdersOf(svc, r.id).then(({ users, tokens }) => ({ users, tokens }))),
    versionstamp: "",
  })));
  return { items, total: all.length };
}

export async function getRole(svc: Services, id: string): Promise<Versioned<RoleView>> {
  if (isBuiltin(id)) return { value: builtinView(id), versionstamp: "" };
  const role = await getRecord(svc.kv, roleTable, id);
  if (!role) throw notFound("role");
  const { users, tokens } = await holdersOf(svc, id);
  return { value: customView(role.value, { users, tokens }), versionstamp: role.versionstamp };
}

export interface NewRole {
  name: string;
  description?: string;
  permissions: string[];
  tenant_scoped?: boolean;
}

/** 409 for a name a built-in role has (the others clash on the unique index). */
function checkName(name: string) {
  if (isBuiltin(normalizeRoleName(name))) {
    throw conflict(`"${name}" is a built-in role's name`);
  }
}

const builtinIsReadOnly = () =>
  new AppError("CONFLICT", "built-in roles cannot be changed or deleted", {
    reason: "builtin_role",
  });

export async function createRole(
  svc: Services,
  actor: Actor,
  caller: Principal,
  input: NewRole,
): Promise<Versioned<RoleView>> {
  const tenantScoped = input.tenant_scoped ?? false;
  checkRolePermissions(input.permissions, tenantScoped);
  requireHoldsAll(caller, input.permissions, "a role");
  checkName(input.name);
  if ((await loadRoles(svc.kv)).length >= MAX_CUSTOM_ROLES) {
    throw conflict(`there are already ${MAX_CUSTOM_ROLES} custom roles; delete one first`);
  }
  const now = svc.now();
  const role: Role = {
    id: newId("rol", now),
    name: input.name.trim(),
    description: input.description ?? "",
    permissions: [...new Set(input.permissions as Permission[])].sort(),
    tenant_scoped: tenantScoped,
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
  };
  const created = await createRecord(svc, actor, roleTable, role, {
    action: "role.created",
    resource_type: "role",
    tenant_id: () => null,
    view: roleAuditView,
    clash: (r) => `a role named "${r.name}" already exists`,
    extra: bumpRoleVersion,
  });
  forgetRoleTable(svc);
  return {
    value: customView(created.value, { users: 0, tokens: 0 }),
    versionstamp: created.versionstamp,
  };
}

export interface RolePatch {
  name?: string;
  description?: string;
  permissions?: string[];
}

/**
 * Edits a custom role; its holders have the new permissions on their next request here, and
 * within the role table's refresh elsewhere. The caller must hold the permissions it had and
 * those it will have (taking one away from its holders is a grant too).
 */
export async function updateRole(
  svc: Services,
  actor: Actor,
  caller: Principal,
  id: string,
  patch: RolePatch,
  ifMatch?: string,
): Promise<Versioned<RoleView>> {
  if (isBuiltin(id)) throw builtinIsReadOnly();
  if (patch.name !== undefined) checkName(patch.name);
  const updated = await updateRecord(svc, actor, roleTable, {
    id,
    noun: "role",
    ifMatch,
    action: "role.updated",
    resource_type: "role",
    tenant_id: () => null,
    view: roleAuditView,
    clash: (r) => `a role named "${r.name}" already exists`,
    apply: (current) => {
      const permissions = patch.permissions
        ? [...new Set(patch.permissions as Permission[])].sort()
        : current.permissions;
      if (patch.permissions) checkRolePermissions(permissions, current.tenant_scoped);
      const next: Role = {
        ...current,
        name: patch.name?.trim() ?? current.name,
        description: patch.description ?? current.description,
        permissions,
      };
      if (JSON.stringify(roleAuditView(next)) === JSON.stringify(roleAuditView(current))) {
        return current;
      }
      requireHoldsAll(caller, [...current.permissions, ...permissions], `role ${current.name}`);
      return { ...next, updated_at: iso(svc.now()) };
    },
    extra: bumpRoleVersion,
  });
  forgetRoleTable(svc);
  const { users, tokens } = await holdersOf(svc, id);
  return {
    value: customView(updated.value, { users, tokens }),
    versionstamp: updated.versionstamp,
  };
}

/**
 * Deletes a custom role no user or live token holds: 409 with the counts otherwise. The
 * commit checks both counters, so a grant racing the delete makes one of them fail.
 */
export async function deleteRole(
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch?: string,
): Promise<Versioned<RoleView>> {
  if (isBuiltin(id)) throw builtinIsReadOnly();
  return await retrying(async () => {
    const role = await getRecord(svc.kv, roleTable, id);
    if (!role) throw notFound("role");
    if (ifMatch && ifMatch !== role.versionstamp) throw staleVersion();
    const { entries, users, tokens } = await holdersOf(svc, id);
    if (users + tokens > 0) {
      throw new AppError(
        "CONFLICT",
        `the role is held by ${users} user(s) and ${tokens} service token(s); take it away first`,
        { reason: "role_in_use", users, tokens },
      );
    }
    const op = remove(svc.kv.atomic(), roleTable, role);
    for (const e of entries) op.check(e).delete(e.key);
    bumpRoleVersion(op);
    recordChange(op, svc.now(), actor, {
      action: "role.deleted",
      resource_type: "role",
      resource_id: id,
      tenant_id: null,
      before: roleAuditView(role.value),
    });
    if (!(await commit(op))) {
      if (ifMatch) throw staleVersion();
      return CONFLICT;
    }
    forgetRoleTable(svc);
    return {
      value: customView(role.value, { users: 0, tokens: 0 }),
      versionstamp: role.versionstamp,
    };
  });
}
