/**
 * Memberships: a user's role in a tenant. The record lives under the tenant
 * (`keys.member`), with a reverse pointer per user (`keys.userTenant`). A tenant always keeps
 * at least one owner: the owners are counted in `keys.ownerCount`, and every change that takes
 * an owner away checks that counter's version in its commit, so two concurrent removals of the
 * last two owners cannot both succeed.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { getRecord, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { conflict, forbidden, notFound, staleVersion } from "../shared/errors.ts";
import type { TenantRole } from "../access/permissions.ts";
import { membershipRole, type Principal, seesByPlatform } from "../access/principal.ts";
import { type Actor, type Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { userTable } from "./users.ts";
import {
  dropMembership,
  getMembership,
  insertMembership,
  type Membership,
  ONE,
  putMembership,
  seedOwner,
} from "../access/membership_records.ts";
import { iso } from "../shared/time.ts";

/** A membership with the member's email and name, as the API lists it. */
export interface Member extends Membership {
  email: string | null;
  name: string | null;
}

type TenantRef = Pick<Tenant, "id" | "is_test" | "status">;

const auditView = (m: Membership) => ({ tenant_id: m.tenant_id, user_id: m.user_id, role: m.role });

const memberCheck = (m: Versioned<Membership>) => ({
  key: keys.member(m.value.tenant_id, m.value.user_id),
  versionstamp: m.versionstamp,
});
const userCheck = (u: Versioned<{ id: string }>) => ({
  key: keys.user(u.value.id),
  versionstamp: u.versionstamp,
});

/** Adds the audit and domain events of a new membership to `op`. */
export function membershipCreated(
  op: Deno.AtomicOperation,
  now: number,
  actor: Actor,
  m: Membership,
) {
  recordChange(op, now, actor, {
    action: "membership.created",
    resource_type: "membership",
    resource_id: m.user_id,
    tenant_id: m.tenant_id,
    after: auditView(m),
  });
}

/**
 * Adds the one-owner-fewer counter update to `op`, checked against the version read, or throws
 * 409 when that owner is the last one (unless `force`: a GDPR erase may leave none).
 */
async function loseOwner(
  svc: Services,
  op: Deno.AtomicOperation,
  tenantId: string,
  force = false,
) {
  const entry = await svc.kv.get<Deno.KvU64>(keys.ownerCount(tenantId));
  const count = entry.value ? entry.value.value : 0n;
  if (count <= ONE && !force) {
    throw conflict("a tenant must keep at least one owner: add another owner first");
  }
  op.check(entry).set(keys.ownerCount(tenantId), new Deno.KvU64(count > 0n ? count - ONE : 0n));
}

/**
 * Whether `caller` may grant or take away the owner role in `tenant`: its owners, and platform
 * principals holding members:write there by platform grant. A tenant-bound token does not
 * count: an admin could otherwise mint one and make itself owner.
 */
export async function canManageOwners(
  svc: Services,
  caller: Principal,
  tenant: TenantRef,
): Promise<boolean> {
  if (
    !caller.tenant_id && seesByPlatform(caller, tenant) && caller.inTenants.has("members:write")
  ) {
    return true;
  }
  return caller.type === "user" && await membershipRole(svc, tenant.id, caller.id) === "owner";
}

async function requireOwnerPower(svc: Services, caller: Principal, tenant: TenantRef) {
  if (!(await canManageOwners(svc, caller, tenant))) {
    throw forbidden("only the tenant's owners grant or take away the owner role");
  }
}

const liveTenant = (tenant: TenantRef) => {
  if (tenant.status === "deleted") throw conflict("the tenant is deleted");
};

/** The tenant's members, in user id order (oldest accounts first), with their email and name. */
export function listMembers(
  svc: Services,
  tenantId: string,
  filter: { role?: TenantRole },
  page: PageRequest,
): Promise<Page<Member> & Counted> {
  return listCounted<Member>(svc.kv, {
    selector: { prefix: keys.members(tenantId) },
    resolve: async (entry) => {
      const m = entry.value as Membership;
      const user = (await getRecord(svc.kv, userTable, m.user_id))?.value;
      return {
        value: { ...m, email: user?.email ?? null, name: user?.name ?? null },
        versionstamp: entry.versionstamp,
      };
    },
    filter: (m) => !filter.role || m.role === filter.role,
  }, page);
}

async function withUser(svc: Services, m: Versioned<Membership>): Promise<Versioned<Member>> {
  const user = (await getRecord(svc.kv, userTable, m.value.user_id))?.value;
  return {
    value: { ...m.value, email: user?.email ?? null, name: user?.name ?? null },
    versionstamp: m.versionstamp,
  };
}

/** Makes an existing user a member; 409 when it already is one. */
export async function addMember(
  svc: Services,
  actor: Actor,
  caller: Principal,
  tenant: TenantRef,
  input: { user_id: string; role: TenantRole },
): Promise<Versioned<Member>> {
  liveTenant(tenant);
  if (input.role === "owner") await requireOwnerPower(svc, caller, tenant);
  const created = await retrying(async () => {
    const [user, current] = await Promise.all([
      getRecord(svc.kv, userTable, input.user_id),
      getMembership(svc, tenant.id, input.user_id),
    ]);
    if (!user || user.value.status === "deleted") throw notFound("user");
    if (current) throw conflict("the user is already a member of this tenant");
    const now = svc.now();
    const m: Membership = {
      tenant_id: tenant.id,
      user_id: input.user_id,
      role: input.role,
      created_by: actor.id,
      created_at: iso(now),
      updated_at: iso(now),
    };
    const op = svc.kv.atomic().check(userCheck(user));
    insertMembership(op, m);
    membershipCreated(op, now, actor, m);
    const res = await commit(op);
    return res ? { value: m, versionstamp: res.versionstamp } : CONFLICT;
  });
  return await withUser(svc, created);
}

/**
 * One change to an existing membership (`next` returns the new state, or null to remove it), in
 * one commit with the owner counter: re-read on a concurrent write, 412 on a stale If-Match.
 * Granting or taking away `owner` needs owner power; taking away the last owner is 409.
 */
async function changeMembership(
  svc: Services,
  actor: Actor,
  caller: Principal,
  tenant: TenantRef,
  userId: string,
  ifMatch: string | undefined,
  next: (current: Membership, now: number) => Membership | null,
): Promise<Versioned<Member>> {
  const result = await retrying(async () => {
    const current = await getMembership(svc, tenant.id, userId);
    if (!current) throw notFound("member");
    if (ifMatch && ifMatch !== current.versionstamp) throw staleVersion();
    const now = svc.now();
    const after = next(current.value, now);
    if (after?.role === current.value.role) return current;
    const [wasOwner, isOwner] = [current.value.role === "owner", after?.role === "owner"];
    if (wasOwner || isOwner) await requireOwnerPower(svc, caller, tenant);
    const op = svc.kv.atomic().check(memberCheck(current));
    if (after) putMembership(op, after);
    else dropMembership(op, current.value);
    if (wasOwner) await loseOwner(svc, op, tenant.id);
    if (isOwner) op.sum(keys.ownerCount(tenant.id), ONE);
    recordChange(op, now, actor, {
      action: after ? "membership.updated" : "membership.deleted",
      resource_type: "membership",
      resource_id: userId,
      tenant_id: tenant.id,
      before: auditView(current.value),
      after: after && auditView(after),
    });
    const res = await commit(op);
    if (res) return after ? { value: after, versionstamp: res.versionstamp } : current;
    if (ifMatch) throw staleVersion();
    return CONFLICT;
  });
  return await withUser(svc, result);
}

/** Changes a member's role; demoting the last owner is 409. */
export function changeMemberRole(
  svc: Services,
  actor: Actor,
  caller: Principal,
  tenant: TenantRef,
  userId: string,
  role: TenantRole,
  ifMatch?: string,
): Promise<Versioned<Member>> {
  liveTenant(tenant);
  return changeMembership(svc, actor, caller, tenant, userId, ifMatch, (m, now) => ({
    ...m,
    role,
    updated_at: iso(now),
  }));
}

/** Removes a member; removing the last owner is 409. Returns the removed membership. */
export function removeMember(
  svc: Services,
  actor: Actor,
  caller: Principal,
  tenant: TenantRef,
  userId: string,
  ifMatch?: string,
): Promise<Versioned<Member>> {
  return changeMembership(svc, actor, caller, tenant, userId, ifMatch, () => null);
}

/**
 * Removes every membership of a user (a GDPR erase), owners included: a tenant may be left
 * without an owner, for the platform to reassign. Returns how many were removed.
 */
export async function removeUserMemberships(
  svc: Services,
  actor: Actor,
  userId: string,
): Promise<number> {
  let removed = 0;
  for await (const entry of svc.kv.list<string>({ prefix: keys.userTenants(userId) })) {
    const tenantId = entry.key.at(-1) as string;
    await retrying(async () => {
      const current = await getMembership(svc, tenantId, userId);
      const op = svc.kv.atomic().check(entry);
      if (!current) {
        op.delete(entry.key); // a dangling pointer
        return (await commit(op)) ? undefined : CONFLICT;
      }
      op.check(memberCheck(current));
      dropMembership(op, current.value);
      if (current.value.role === "owner") await loseOwner(svc, op, tenantId, true);
      recordChange(op, svc.now(), actor, {
        action: "membership.deleted",
        resource_type: "membership",
        resource_id: userId,
        tenant_id: tenantId,
        before: auditView(current.value),
      });
      if (!(await commit(op))) return CONFLICT;
      removed++;
      return undefined;
    });
  }
  return removed;
}

/**
 * Makes each tenant's creator its owner where the tenant has no owner (tenants created before
 * creators became owners). Safe to run any number of times, also concurrently: each seed checks
 * the owner counter it read. Skips deleted tenants and creators that are gone. Returns how many
 * memberships it seeded.
 */
export async function backfillOwners(svc: Services, actor: Actor): Promise<number> {
  let seeded = 0;
  for await (const entry of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    const t = entry.value;
    if (t.status === "deleted" || !t.created_by?.startsWith("usr_")) continue;
    const userId = t.created_by;
    const done = await retrying(async () => {
      const [owners, current, user] = await Promise.all([
        svc.kv.get<Deno.KvU64>(keys.ownerCount(t.id)),
        getMembership(svc, t.id, userId),
        getRecord(svc.kv, userTable, userId),
      ]);
      if ((owners.value?.value ?? 0n) > 0n) return false;
      if (!user || user.value.status === "deleted") return false;
      const now = svc.now();
      const op = svc.kv.atomic().check(owners).check(userCheck(user));
      if (current) {
        // Already a member with another role: promoted.
        const next: Membership = { ...current.value, role: "owner", updated_at: iso(now) };
        op.check(memberCheck(current));
        putMembership(op, next);
        op.sum(keys.ownerCount(t.id), ONE);
        recordChange(op, now, actor, {
          action: "membership.updated",
          resource_type: "membership",
          resource_id: userId,
          tenant_id: t.id,
          before: auditView(current.value),
          after: auditView(next),
        });
      } else {
        membershipCreated(op, now, actor, seedOwner(op, now, actor, t.id, userId));
      }
      return (await commit(op)) ? true : CONFLICT;
    });
    if (done) seeded++;
  }
  const op = svc.kv.atomic();
  recordChange(op, svc.now(), actor, {
    action: "maintenance.members_backfilled",
    resource_type: "maintenance",
    resource_id: "backfill-members",
    tenant_id: null,
    after: { seeded },
  });
  await commit(op);
  return seeded;
}

/** The emails of a tenant's active owners: who hears of its keys expiring, its payments failing. */
export async function ownerEmails(svc: Services, tenantId: string): Promise<string[]> {
  const emails: string[] = [];
  for await (const m of svc.kv.list<Membership>({ prefix: keys.members(tenantId) })) {
    if (m.value.role !== "owner") continue;
    const user = await getRecord(svc.kv, userTable, m.value.user_id);
    if (user?.value.status === "active" && user.value.email) emails.push(user.value.email);
  }
  return emails;
}
