/**
 * Typed record families: a primary key by id plus unique and pointer indexes that
 * always change in the same atomic operation as the record (ARCHITECTURE.md, KV key layout).
 */
import { getBatched } from "./batch.ts";

export interface Versioned<T> {
  value: T;
  versionstamp: string;
}

export interface Table<T extends { id: string }> {
  /** Primary key of a record. */
  key(id: string): Deno.KvKey;
  /** Unique index keys (value: id); a clash makes the commit's check fail. */
  unique?(record: T): Deno.KvKey[];
  /** Non-unique pointer index keys (value: id). */
  indexes?(record: T): Deno.KvKey[];
  /** KvU64 counters the record counts towards (e.g. all live tenants, tenants on its plan). */
  counters?(record: T): Deno.KvKey[];
  /**
   * A KvU64 that every write of the record bumps: a cache that read the record with it checks
   * the stamp alone to know the record is unchanged (kv/cache.ts).
   */
  stamp?(record: T): Deno.KvKey;
}

/** Adding 2^64 − 1 to a KvU64 wraps around: this is how a counter goes down by one. */
const MINUS_ONE = 0xffff_ffff_ffff_ffffn;
const ONE = 1n;

const same = (a: Deno.KvKey, b: Deno.KvKey) => JSON.stringify(a) === JSON.stringify(b);
const missing = (from: Deno.KvKey[], other: Deno.KvKey[]) =>
  from.filter((k) => !other.some((o) => same(k, o)));

export async function getRecord<T extends { id: string }>(
  kv: Deno.Kv,
  table: Table<T>,
  id: string,
): Promise<Versioned<T> | null> {
  const entry = await getBatched<T>(kv, table.key(id));
  return entry.versionstamp === null
    ? null
    : { value: entry.value, versionstamp: entry.versionstamp };
}

/** Follows a pointer (an index key whose value is an id) to its record. */
export async function getByPointer<T extends { id: string }>(
  kv: Deno.Kv,
  table: Table<T>,
  pointer: Deno.KvKey,
): Promise<Versioned<T> | null> {
  const ptr = await getBatched<string>(kv, pointer);
  return ptr.value === null ? null : getRecord(kv, table, ptr.value);
}

/** Adds the insert of `record` and its indexes to `op`; fails the commit on any clash. */
export function insert<T extends { id: string }>(
  op: Deno.AtomicOperation,
  table: Table<T>,
  record: T,
) {
  op.check({ key: table.key(record.id), versionstamp: null }).set(table.key(record.id), record);
  for (const key of table.unique?.(record) ?? []) {
    op.check({ key, versionstamp: null }).set(key, record.id);
  }
  for (const key of table.indexes?.(record) ?? []) op.set(key, record.id);
  for (const key of table.counters?.(record) ?? []) op.sum(key, ONE);
  return bump(op, table, record);
}

/** Adds the replacement of `current` by `next` to `op`, moving indexes that changed. */
export function replace<T extends { id: string }>(
  op: Deno.AtomicOperation,
  table: Table<T>,
  current: Versioned<T>,
  next: T,
) {
  const key = table.key(next.id);
  op.check({ key, versionstamp: current.versionstamp }).set(key, next);
  const [oldUnique, newUnique] = [table.unique?.(current.value) ?? [], table.unique?.(next) ?? []];
  for (const k of missing(oldUnique, newUnique)) op.delete(k);
  for (const k of missing(newUnique, oldUnique)) {
    op.check({ key: k, versionstamp: null }).set(k, next.id);
  }
  const [oldIdx, newIdx] = [table.indexes?.(current.value) ?? [], table.indexes?.(next) ?? []];
  for (const k of missing(oldIdx, newIdx)) op.delete(k);
  for (const k of missing(newIdx, oldIdx)) op.set(k, next.id);
  const [oldCounters, newCounters] = [
    table.counters?.(current.value) ?? [],
    table.counters?.(next) ?? [],
  ];
  for (const k of missing(oldCounters, newCounters)) op.sum(k, MINUS_ONE);
  for (const k of missing(newCounters, oldCounters)) op.sum(k, ONE);
  return bump(op, table, next);
}

/** Adds the deletion of `current` and all its index entries to `op`. */
export function remove<T extends { id: string }>(
  op: Deno.AtomicOperation,
  table: Table<T>,
  current: Versioned<T>,
) {
  const key = table.key(current.value.id);
  op.check({ key, versionstamp: current.versionstamp }).delete(key);
  for (
    const k of [...(table.unique?.(current.value) ?? []), ...(table.indexes?.(current.value) ?? [])]
  ) {
    op.delete(k);
  }
  for (const key of table.counters?.(current.value) ?? []) op.sum(key, MINUS_ONE);
  return bump(op, table, current.value);
}

/** Bumps the record's stamp, if its table has one. */
function bump<T extends { id: string }>(op: Deno.AtomicOperation, table: Table<T>, record: T) {
  const stamp = table.stamp?.(record);
  return stamp ? op.sum(stamp, ONE) : op;
}

/** Current value of a KvU64 counter (0 when never written). */
export async function readCounter(kv: Deno.Kv, key: Deno.KvKey): Promise<number> {
  const entry = await kv.get<Deno.KvU64>(key);
  return entry.value ? Number(entry.value.value) : 0;
}
