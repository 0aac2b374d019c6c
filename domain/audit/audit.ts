/**
 * The audit trail: who did what to which resource, from where and when. `recordChange` is the
 * one call every mutation makes: it adds the audit event and the domain event to the
 * mutation's own atomic operation, so the three commit together or not at all.
 */
import { keys } from "../../kv/keys.ts";
import {
  type Counted,
  countsReady,
  listCounted,
  type ListSource,
  type Page,
  type PageRequest,
  readCounters,
} from "../../kv/list.ts";
import { getRecord, readCounter, type Table } from "../../kv/table.ts";
import { emitEvent } from "./events.ts";
import { newId, timePrefix } from "../shared/ids.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import { type AuditFilter } from "../../pg/analytics.ts";

export interface AuditEvent {
  id: string;
  actor_type: Actor["type"];
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  /** Changed fields, before and after; secrets are redacted. */
  changes: Record<string, { before: unknown; after: unknown }> | null;
  ip_address: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: string;
}

/** The users an event is about: its actor, and its subject (a user or a membership). */
export function auditUsers(e: AuditEvent): string[] {
  const users = new Set<string>();
  if (e.actor_type === "user") users.add(e.actor_id);
  if (e.resource_id.startsWith("usr_")) users.add(e.resource_id);
  return [...users];
}

export const auditTable: Table<AuditEvent> = {
  key: keys.audit,
  indexes: (e) => [
    keys.actorAudit(e.actor_id, e.id),
    keys.resourceAudit(e.resource_id, e.id),
    ...(e.tenant_id ? [keys.tenantAudit(e.tenant_id, e.id)] : []),
    ...auditUsers(e).map((u) => keys.userAudit(u, e.id)),
    keys.auditByType(e.resource_type, e.id),
    keys.auditByAction(e.action, e.id),
  ],
  counters: (e) => [
    keys.auditCount(),
    keys.auditTypeCount(e.resource_type),
    keys.auditActionCount(e.action),
    ...(e.tenant_id ? [keys.tenantAuditCount(e.tenant_id)] : []),
  ],
};

/** Field names whose values never leave the process in an audit event or a domain event. */
const SECRET_FIELD = /(^|_)(password|secret|token|hash|key)(_|$)/i;

export function redact<T extends Record<string, unknown>>(record: T): T {
  return Object.fromEntries(
    Object.entries(record).map((
      [k, v],
    ) => [k, SECRET_FIELD.test(k) && v !== null ? "[redacted]" : v]),
  ) as T;
}

/** The fields that differ between `before` and `after` (either may be absent). */
export function diff(
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): Record<string, { before: unknown; after: unknown }> {
  const changes: Record<string, { before: unknown; after: unknown }> = {};
  const [b, a] = [redact(before ?? {}), redact(after ?? {})];
  for (const field of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (field === "updated_at" || field === "created_at") continue;
    if (JSON.stringify(b[field] ?? null) !== JSON.stringify(a[field] ?? null)) {
      changes[field] = { before: b[field] ?? null, after: a[field] ?? null };
    }
  }
  return changes;
}

export interface Change {
  /** `tenant.created`, `token.revoked`, …: also the domain event's type. */
  action: string;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

/** Adds the audit event and the domain event for `change` to `op`. */
export function recordChange(
  op: Deno.AtomicOperation,
  now: number,
  actor: Actor,
  change: Change,
): AuditEvent {
  const event: AuditEvent = {
    id: newId("aud", now),
    actor_type: actor.type,
    actor_id: actor.id,
    action: change.action,
    resource_type: change.resource_type,
    resource_id: change.resource_id,
    tenant_id: change.tenant_id,
    changes: change.before || change.after
      ? diff(change.before ?? null, change.after ?? null)
      : null,
    ip_address: actor.ip,
    user_agent: actor.user_agent,
    request_id: actor.request_id,
    created_at: iso(now),
  };
  op.set(keys.audit(event.id), event);
  for (const key of auditTable.indexes!(event)) op.set(key, event.id);
  for (const key of auditTable.counters!(event)) op.sum(key, 1n);
  const snapshot = change.after ?? change.before;
  emitEvent(op, now, {
    type: change.action,
    tenant_id: change.tenant_id,
    data: {
      ...(snapshot ? redact(snapshot) : { id: change.resource_id }),
      actor: { type: actor.type, id: actor.id },
    },
  });
  return event;
}

/** Picks the narrowest index for the filter and the id range for its time bounds. */
function auditSource(svc: Services, f: AuditFilter) {
  const prefix = f.resource_id
    ? keys.resourceAudits(f.resource_id)
    : f.user
    ? keys.userAudits(f.user)
    : f.actor
    ? keys.actorAudits(f.actor)
    : f.tenant_id
    ? keys.tenantAudits(f.tenant_id)
    : null;
  const lo = f.from !== undefined ? `aud_${timePrefix(f.from)}` : "aud_";
  const hi = f.to !== undefined ? `aud_${timePrefix(f.to + 1)}` : "aud_~";
  const base = prefix ?? keys.audits();
  const actions = f.actions?.length ? new Set(f.actions) : null;
  return {
    selector: { start: [...base, lo], end: [...base, hi] },
    resolve: prefix
      ? (entry: Deno.KvEntry<unknown>) => getRecord(svc.kv, auditTable, entry.value as string)
      : undefined,
    filter: (e: AuditEvent) =>
      (!f.user || auditUsers(e).includes(f.user)) &&
      (!f.tenant_id || e.tenant_id === f.tenant_id) &&
      (!f.actor || e.actor_id === f.actor) &&
      (!actions || actions.has(e.action)) &&
      (!f.resource_type || e.resource_type === f.resource_type) &&
      (!f.resource_id || e.resource_id === f.resource_id),
  };
}

/** The filter's fields that are set. */
const setFields = (f: AuditFilter) =>
  Object.entries(f).filter(([, v]) => v !== undefined).map(([k]) => k).sort().join(",");

/**
 * The maintained counts (kv/keys.ts) that give the filter's total, and the index its page walks
 * when it has one of its own: the whole trail, one tenant's, one resource type, some actions.
 * Null for the other filters (and time bounds), which count by walking.
 */
function countedAudit(f: AuditFilter): { counters: Deno.KvKey[]; prefix?: Deno.KvKey } | null {
  switch (setFields(f)) {
    case "":
      return { counters: [keys.auditCount()] };
    case "tenant_id":
      return { counters: [keys.tenantAuditCount(f.tenant_id!)] };
    case "resource_type":
      return {
        counters: [keys.auditTypeCount(f.resource_type!)],
        prefix: keys.auditsByType(f.resource_type!),
      };
    case "actions": {
      const actions = [...new Set(f.actions!)];
      return {
        counters: actions.map(keys.auditActionCount),
        prefix: actions.length === 1 ? keys.auditsByAction(actions[0]) : undefined,
      };
    }
    default:
      return null;
  }
}

/** Newest first; `total` from maintained counts where countedAudit has them. */
export async function listAudit(
  svc: Services,
  filter: AuditFilter,
  page: PageRequest,
): Promise<Page<AuditEvent> & Counted> {
  let source: ListSource<AuditEvent> = auditSource(svc, filter);
  let counter = setFields(filter) === "" ? () => readCounter(svc.kv, keys.auditCount()) : null;
  const counted = countedAudit(filter);
  if (counted && await countsReady(svc.kv)) {
    counter = () => readCounters(svc.kv, counted.counters);
    if (counted.prefix) {
      source = {
        ...source,
        selector: { start: [...counted.prefix, "aud_"], end: [...counted.prefix, "aud_~"] },
        resolve: (entry) => getRecord(svc.kv, auditTable, entry.value as string),
      };
    }
  }
  return await listCounted(svc.kv, source, { ...page, reverse: true }, counter);
}

/** Every matching event, oldest first, read in batches: for streaming exports (from Postgres when configured). */
export async function* exportAudit(svc: Services, filter: AuditFilter): AsyncGenerator<AuditEvent> {
  // Postgres holds a copy of the trail, up to the last flush.
  if (svc.pg) return yield* svc.pg.analytics.exportAudit(filter);
  const source = auditSource(svc, filter);
  for await (const entry of svc.kv.list<unknown>(source.selector, { batchSize: 500 })) {
    const record = source.resolve ? await source.resolve(entry) : entry as Deno.KvEntry<AuditEvent>;
    if (record && source.filter(record.value)) yield record.value;
  }
}
