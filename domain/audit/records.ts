/**
 * Create and update any record family with its audit and domain events in one commit,
 * translating commit failures into the right answer: a uniqueness clash is 409, a stale
 * If-Match is 412, and a concurrent write without If-Match is re-read and retried.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { getRecord, insert, replace, type Table, type Versioned } from "../../kv/table.ts";
import { type Change, recordChange } from "./audit.ts";
import { conflict, notFound, staleVersion } from "../shared/errors.ts";
import type { Actor, Services } from "../shared/services.ts";

type Described<T> = Omit<Change, "before" | "after" | "resource_id" | "tenant_id"> & {
  tenant_id: (record: T) => string | null;
  /** What the audit trail and the event show of the record (defaults to the record). */
  view?: (record: T) => Record<string, unknown>;
  /** The 409 message for a unique index clash, e.g. `the slug "acme" is taken`. */
  clash?: (record: T) => string;
};

async function firstTaken(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<boolean> {
  if (keys.length === 0) return false;
  return (await kv.getMany(keys)).some((e) => e.versionstamp !== null);
}

export interface CreateOptions<T> extends Described<T> {
  /** Mutations committed alongside (e.g. a side record, a check). */
  extra?: (op: Deno.AtomicOperation) => void;
}

const clashMessage = <T>(opts: Pick<Described<T>, "clash">, record: T) =>
  opts.clash?.(record) ?? "already exists";

export async function createRecord<T extends { id: string }>(
  svc: Services,
  actor: Actor,
  table: Table<T>,
  record: T,
  change: CreateOptions<T>,
): Promise<Versioned<T>> {
  const view = change.view ?? ((r: T) => r as unknown as Record<string, unknown>);
  return await retrying(async () => {
    if (await firstTaken(svc.kv, table.unique?.(record) ?? [])) {
      throw conflict(clashMessage(change, record));
    }
    const op = insert(svc.kv.atomic(), table, record);
    change.extra?.(op);
    recordChange(op, svc.now(), actor, {
      action: change.action,
      resource_type: change.resource_type,
      resource_id: record.id,
      tenant_id: change.tenant_id(record),
      after: view(record),
    });
    const res = await commit(op);
    return res ? { value: record, versionstamp: res.versionstamp } : CONFLICT;
  });
}

export interface UpdateOptions<T> extends Omit<Described<T>, "action"> {
  /** The audit action, or a function of both states (`user.blocked` vs `user.updated`). */
  action: string | ((current: T, next: T) => string);
  id: string;
  /** What is not found is called this in the 404 message. */
  noun: string;
  ifMatch?: string;
  /** Returns the next state, or the same object for "nothing to change" (no write, no audit). */
  apply: (current: T) => T;
  /** Mutations committed alongside (e.g. side records), given both states. */
  extra?: (op: Deno.AtomicOperation, current: T, next: T) => void;
}

export async function updateRecord<T extends { id: string }>(
  svc: Services,
  actor: Actor,
  table: Table<T>,
  opts: UpdateOptions<T>,
): Promise<Versioned<T>> {
  const view = opts.view ?? ((r: T) => r as unknown as Record<string, unknown>);
  return await retrying(async () => {
    const current = await getRecord(svc.kv, table, opts.id);
    if (!current) throw notFound(opts.noun);
    if (opts.ifMatch && opts.ifMatch !== current.versionstamp) throw staleVersion();
    const next = opts.apply(current.value);
    if (next === current.value) return current;
    const before = table.unique?.(current.value).map((k) => JSON.stringify(k)) ?? [];
    const added = (table.unique?.(next) ?? []).filter((k) => !before.includes(JSON.stringify(k)));
    if (await firstTaken(svc.kv, added)) {
      throw conflict(clashMessage(opts, next));
    }
    const op = replace(svc.kv.atomic(), table, current, next);
    opts.extra?.(op, current.value, next);
    recordChange(op, svc.now(), actor, {
      action: typeof opts.action === "string" ? opts.action : opts.action(current.value, next),
      resource_type: opts.resource_type,
      resource_id: next.id,
      tenant_id: opts.tenant_id(next),
      before: view(current.value),
      after: view(next),
    });
    const res = await commit(op);
    if (res) {
      // This process's hot-path reads see the change on their next look.
      svc.cache.forget(table.key(next.id));
      return { value: next, versionstamp: res.versionstamp };
    }
    if (opts.ifMatch) throw staleVersion();
    return CONFLICT;
  });
}

/** A map patched Stripe-style: a null value removes the key, any other sets it. */
export function mergeMap<V>(
  current: Record<string, V>,
  patch: Record<string, V | null>,
): Record<string, V> {
  const next = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next;
}
