/**
 * The membership record: a user's role in a tenant, as access decisions read it. It lives under
 * the tenant (`keys.member`), with a reverse pointer per user (`keys.userTenant`), and owners are
 * counted in `keys.ownerCount`. The rules for changing memberships are identity/memberships.ts;
 * tenancy uses seedOwner so a new tenant and its first owner commit together.
 */
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import type { Versioned } from "../../kv/table.ts";
import type { Actor, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import type { TenantRole } from "./permissions.ts";

export interface Membership {
  tenant_id: string;
  user_id: string;
  role: TenantRole;
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** One, as an owner-count delta. */
export const ONE = 1n;

export async function getMembership(
  svc: Services,
  tenantId: string,
  userId: string,
): Promise<Versioned<Membership> | null> {
  const entry = await getBatched<Membership>(svc.kv, keys.member(tenantId, userId));
  return entry.versionstamp === null ? null : entry as Versioned<Membership>;
}

/** Adds the writes of `m` (record and reverse pointer) to `op`. */
export function putMembership(op: Deno.AtomicOperation, m: Membership) {
  op.set(keys.member(m.tenant_id, m.user_id), m).set(
    keys.userTenant(m.user_id, m.tenant_id),
    m.tenant_id,
  );
}

/** Adds a new membership to `op`: the check that it does not exist yet, and the owner count. */
export function insertMembership(op: Deno.AtomicOperation, m: Membership) {
  op.check({ key: keys.member(m.tenant_id, m.user_id), versionstamp: null });
  putMembership(op, m);
  if (m.role === "owner") op.sum(keys.ownerCount(m.tenant_id), ONE);
}

/** Adds the deletes of `m` (record and reverse pointer) to `op`. */
export function dropMembership(op: Deno.AtomicOperation, m: Membership) {
  op.delete(keys.member(m.tenant_id, m.user_id)).delete(keys.userTenant(m.user_id, m.tenant_id));
}

/**
 * Adds a new owner membership to `op`: used when a user creates a tenant, so the tenant and its
 * first owner commit together. The caller records the change (`tenant.created`, whose actor
 * and `created_by` name the owner, or the backfill's own `membership.created`).
 */
export function seedOwner(
  op: Deno.AtomicOperation,
  now: number,
  actor: Actor,
  tenantId: string,
  userId: string,
): Membership {
  const m: Membership = {
    tenant_id: tenantId,
    user_id: userId,
    role: "owner",
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
  };
  insertMembership(op, m);
  return m;
}
