/**
 * Tenants: the platform's customers. Slugs are unique among tenants that are not deleted;
 * deletion is soft (status `deleted`, slug released) so the audit trail keeps its subject.
 */
import { keys } from "../../kv/keys.ts";
import {
  type Counted,
  countsReady,
  listCounted,
  type ListSource,
  type Page,
  type PageRequest,
} from "../../kv/list.ts";
import {
  getByPointer,
  getRecord,
  readCounter,
  type Table,
  type Versioned,
} from "../../kv/table.ts";
import { AppError } from "../shared/errors.ts";
import { enqueueJob } from "../jobs/jobs.ts";
import { TENANT_CLEANUP_JOB, TENANT_QUEUE } from "../jobs/names.ts";
import { newId } from "../shared/ids.ts";
import { seedOwner } from "../access/membership_records.ts";
import type { Principal } from "../access/principal.ts";
import { createRecord, mergeMap, type UpdateOptions, updateRecord } from "../audit/records.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

export type TenantStatus = "active" | "suspended" | "deleted";

export interface Tenant {
  id: string;
  name: string;
  slug: string;
  status: TenantStatus;
  is_test: boolean;
  /** The plan's code. */
  plan: string;
  /** Set by staff by hand (kept over what a billing sync says), with why. */
  plan_override: boolean;
  plan_reason: string | null;
  /** The first part of its API keys' prefix (`sk` → `sk_live_…`); null is the default. */
  key_prefix: string | null;
  metadata: Record<string, string>;
  feature_flags: Record<string, boolean>;
  suspended_reason: string | null;
  suspended_at: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$/;
/** Slugs that would read as part of the API or the product. */
export const RESERVED_SLUGS = new Set([
  "admin",
  "api",
  "app",
  "docs",
  "new",
  "steward",
  "system",
  "test",
  "www",
]);

export const tenantTable: Table<Tenant> = {
  key: keys.tenant,
  unique: (t) => t.status === "deleted" ? [] : [keys.tenantSlug(t.slug)],
  indexes: (t) => [
    keys.tenantByStatus(t.status, t.id),
    ...(t.status === "deleted" ? [] : [keys.tenantByPlan(t.plan, t.id)]),
  ],
  counters: (t) => [
    keys.tenantStatusCount(t.status),
    ...(t.status === "deleted" ? [] : [keys.tenantCount(), keys.planTenantCount(t.plan)]),
  ],
  stamp: (t) => keys.tenantStamp(t.id),
};

/** Follows an index entry (value: tenant id) to its tenant. */
const tenantOf = (svc: Services) => (entry: Deno.KvEntry<unknown>) =>
  getRecord(svc.kv, tenantTable, entry.value as string);

/**
 * For a full view filtered by status alone or by plan alone: its index (the page walks only
 * matches) and its maintained count. Null when no index serves the filter.
 */
function indexedTenants(filter: TenantFilter) {
  const { status, plan, ...rest } = filter;
  if (Object.values(rest).some((v) => v !== undefined)) return null;
  if (status && !plan) {
    return {
      selector: { prefix: keys.tenantsByStatus(status) },
      counter: keys.tenantStatusCount(status),
    };
  }
  if (plan && !status) {
    return { selector: { prefix: keys.tenantsByPlan(plan) }, counter: keys.planTenantCount(plan) };
  }
  return null;
}

const slugTaken = (t: Tenant) => `the slug "${t.slug}" is taken`;

/** `{tenant}` path segments accept the id or the slug. */
export function resolveTenant(svc: Services, idOrSlug: string): Promise<Versioned<Tenant> | null> {
  return idOrSlug.startsWith("ten_")
    ? getRecord(svc.kv, tenantTable, idOrSlug)
    : getByPointer(svc.kv, tenantTable, keys.tenantSlug(idOrSlug));
}

export interface NewTenant {
  name: string;
  slug: string;
  metadata?: Record<string, string>;
}

export async function createTenant(
  svc: Services,
  actor: Actor,
  input: NewTenant,
  opts: {
    is_test: boolean;
    /** Mutations that commit with the tenant (its first API key). */
    extra?: (op: Deno.AtomicOperation, tenant: Tenant) => void;
  },
): Promise<Versioned<Tenant>> {
  if (RESERVED_SLUGS.has(input.slug)) {
    throw new AppError("BAD_REQUEST", `the slug "${input.slug}" is reserved`, [
      { path: ["slug"], message: "reserved" },
    ]);
  }
  const now = svc.now();
  const tenant: Tenant = {
    id: newId("ten", now),
    name: input.name,
    slug: input.slug,
    status: "active",
    is_test: opts.is_test,
    plan: "free",
    plan_override: false,
    plan_reason: null,
    key_prefix: null,
    metadata: input.metadata ?? {},
    feature_flags: {},
    suspended_reason: null,
    suspended_at: null,
    created_by: actor.type === "system" ? null : actor.id,
    created_at: iso(now),
    updated_at: iso(now),
    deleted_at: null,
  };
  // Plugins hooked on the creation may veto it (422), before anything is written.
  await svc.hooks?.ask("tenant.creating", { ...tenant }, actor);
  return createRecord(svc, actor, tenantTable, tenant, {
    action: "tenant.created",
    resource_type: "tenant",
    tenant_id: (t) => t.id,
    clash: slugTaken,
    extra: (op) => {
      // A user who creates a tenant owns it, from the same commit on.
      if (actor.type === "user") seedOwner(op, svc.now(), actor, tenant.id, actor.id);
      opts.extra?.(op, tenant);
    },
  });
}

export interface TenantFilter {
  status?: TenantStatus;
  plan?: string;
  is_test?: boolean;
  /** Case-insensitive prefix of the name, or prefix of the slug. */
  search?: string;
}

/** Where the tenants `viewer` may see are listed from. */
function visibleTenants(svc: Services, viewer: Principal): ListSource<Tenant> {
  if (viewer.tenant_id) {
    // A bound token sees one tenant: the range that holds exactly its key.
    const key = keys.tenant(viewer.tenant_id);
    return { selector: { start: key, end: [...key, ""] } };
  }
  if (viewer.sees !== "none") {
    return {
      selector: { prefix: keys.tenants() },
      filter: viewer.sees === "test" ? (t) => t.is_test : undefined,
    };
  }
  // Members walk their memberships; a deleted tenant is gone for them (the route guard says 404).
  return {
    selector: { prefix: keys.userTenants(viewer.id) },
    resolve: (entry) => getRecord(svc.kv, tenantTable, entry.key.at(-1) as string),
    filter: (t) => t.status !== "deleted",
  };
}

/** Tenants `viewer` may see, newest first. Deleted tenants show only when asked for by status. */
export async function listTenants(
  svc: Services,
  viewer: Principal,
  filter: TenantFilter,
  page: PageRequest,
): Promise<Page<Tenant> & Counted> {
  const search = filter.search?.toLowerCase();
  let source = visibleTenants(svc, viewer);
  const fullView = viewer.sees === "all" && !viewer.tenant_id;
  // The counter counts every tenant that is not deleted: right only for an unfiltered full view.
  const everything = fullView && Object.values(filter).every((v) => v === undefined);
  let counter = everything ? () => readCounter(svc.kv, keys.tenantCount()) : null;
  const indexed = fullView ? indexedTenants(filter) : null;
  if (indexed && await countsReady(svc.kv)) {
    source = { selector: indexed.selector, resolve: tenantOf(svc) };
    counter = () => readCounter(svc.kv, indexed.counter);
  }
  return await listCounted(
    svc.kv,
    {
      ...source,
      filter: (t) =>
        (!source.filter || source.filter(t)) &&
        (filter.status ? t.status === filter.status : t.status !== "deleted") &&
        (!filter.plan || t.plan === filter.plan) &&
        (filter.is_test === undefined || t.is_test === filter.is_test) &&
        (!search || t.name.toLowerCase().startsWith(search) || t.slug.startsWith(search)),
    },
    { ...page, reverse: true },
    counter,
  );
}

type TenantChange = Pick<UpdateOptions<Tenant>, "action" | "apply" | "ifMatch" | "extra">;

/** Applies one change to a tenant, with its audit and domain events, in one commit. */
export function changeTenant(svc: Services, actor: Actor, id: string, change: TenantChange) {
  return updateRecord(svc, actor, tenantTable, {
    ...change,
    id,
    noun: "tenant",
    resource_type: "tenant",
    tenant_id: (t) => t.id,
    clash: slugTaken,
    apply: (t) => {
      if (t.status === "deleted") throw new AppError("CONFLICT", "the tenant is deleted");
      const next = change.apply(t);
      return next === t ? t : { ...next, updated_at: iso(svc.now()) };
    },
  });
}

export interface TenantPatch {
  name?: string;
  slug?: string;
  /** Merged: a null value removes the key. */
  metadata?: Record<string, string | null>;
}

/** True when `next` differs from `t` in any field: avoids writes and audit noise for no-ops. */
const changed = <T>(t: T, next: T) => JSON.stringify(t) !== JSON.stringify(next);

export function updateTenant(
  svc: Services,
  actor: Actor,
  id: string,
  patch: TenantPatch,
  ifMatch?: string,
) {
  if (patch.slug && RESERVED_SLUGS.has(patch.slug)) {
    throw new AppError("BAD_REQUEST", `the slug "${patch.slug}" is reserved`, [{
      path: ["slug"],
      message: "reserved",
    }]);
  }
  return changeTenant(svc, actor, id, {
    action: "tenant.updated",
    ifMatch,
    apply: (t) => {
      const next = {
        ...t,
        name: patch.name ?? t.name,
        slug: patch.slug ?? t.slug,
        metadata: patch.metadata ? mergeMap(t.metadata, patch.metadata) : t.metadata,
      };
      return changed(t, next) ? next : t;
    },
  });
}

export function setFeatureFlags(
  svc: Services,
  actor: Actor,
  id: string,
  flags: Record<string, boolean | null>,
  ifMatch?: string,
) {
  return changeTenant(svc, actor, id, {
    action: "tenant.feature_flags_updated",
    ifMatch,
    apply: (t) => {
      const next = { ...t, feature_flags: mergeMap(t.feature_flags, flags) };
      return changed(t, next) ? next : t;
    },
  });
}

export function suspendTenant(svc: Services, actor: Actor, id: string, reason: string | null) {
  return changeTenant(svc, actor, id, {
    action: "tenant.suspended",
    apply: (t) =>
      t.status === "suspended"
        ? t
        : { ...t, status: "suspended", suspended_reason: reason, suspended_at: iso(svc.now()) },
  });
}

export function resumeTenant(svc: Services, actor: Actor, id: string) {
  return changeTenant(svc, actor, id, {
    action: "tenant.resumed",
    apply: (t) =>
      t.status === "active"
        ? t
        : { ...t, status: "active", suspended_reason: null, suspended_at: null },
  });
}

export function deleteTenant(svc: Services, actor: Actor, id: string, ifMatch?: string) {
  return updateRecord(svc, actor, tenantTable, {
    id,
    noun: "tenant",
    ifMatch,
    action: "tenant.deleted",
    resource_type: "tenant",
    tenant_id: (t) => t.id,
    apply: (t): Tenant => {
      if (t.status === "deleted") return t;
      const now = iso(svc.now());
      return { ...t, status: "deleted", deleted_at: now, updated_at: now };
    },
    // Its invitations and bound tokens are revoked behind (platform/tenant_cleanup.ts).
    extra: (op, _, t) =>
      enqueueJob(op, svc.now(), {
        queue: TENANT_QUEUE,
        type: TENANT_CLEANUP_JOB,
        payload: { tenant_id: t.id },
      }),
  });
}
