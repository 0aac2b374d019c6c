/**
 * Counts what this process asks of Deno KV, in the units Deno Deploy bills: a read unit per
 * started 4 KiB read (a `get` or each key of a `getMany`; a `list` by the total size of what it
 * returned), a write unit per started 1 KiB written by each mutation of a committed write. A
 * miss still costs a read unit; a commit refused by its checks writes nothing and counts none.
 * Sizes are estimates (key parts plus the value as JSON), close enough to model a bill. `watch`
 * is not counted: Steward does not use it.
 *
 * The counters are plain numbers the aggregator takes and folds into the daily traffic
 * (`kv_reads`, `kv_writes`), so they outlive the process. The methods are replaced on the
 * handle itself rather than on a wrapper object: code keyed on the handle's identity (the
 * KV Connect check limit, batched reads) keeps working, and nothing changes on paths that do
 * not touch KV — warm verify does not.
 */

const READ_UNIT = 4096;
const WRITE_UNIT = 1024;

export class KvMeter {
  /** Read and write units counted since the last take(). */
  reads = 0;
  writes = 0;

  /** The units counted so far, and starts again from zero. */
  take(): { reads: number; writes: number } {
    const taken = { reads: this.reads, writes: this.writes };
    this.reads = 0;
    this.writes = 0;
    return taken;
  }
}

function sizeOf(value: unknown): number {
  switch (typeof value) {
    case "string":
      return value.length;
    case "number":
    case "bigint":
      return 8;
    case "boolean":
      return 1;
    case "undefined":
      return 0;
  }
  if (value === null) return 0;
  if (value instanceof Deno.KvU64) return 8;
  if (value instanceof Uint8Array) return value.byteLength;
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    // Values JSON cannot carry (a bigint inside an object): count the minimum.
    return 0;
  }
}

const keySize = (key: Deno.KvKey) => key.reduce((n: number, part) => n + 1 + sizeOf(part), 0);

const entrySize = (key: Deno.KvKey, value: unknown) => keySize(key) + sizeOf(value);

const readUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / READ_UNIT));
const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / WRITE_UNIT));

/** Replaces `kv`'s methods with counting ones; returns the meter they count into. */
export function meterKv(kv: Deno.Kv): KvMeter {
  const meter = new KvMeter();
  const get = kv.get.bind(kv);
  const getMany = kv.getMany.bind(kv);
  const list = kv.list.bind(kv);
  const set = kv.set.bind(kv);
  const del = kv.delete.bind(kv);
  const enqueue = kv.enqueue.bind(kv);
  const atomic = kv.atomic.bind(kv);

  const counted = (entry: Deno.KvEntryMaybe<unknown>) => {
    meter.reads += readUnits(entrySize(entry.key, entry.value));
    return entry;
  };

  Object.assign(kv, {
    get: (key: Deno.KvKey, options?: { consistency?: Deno.KvConsistencyLevel }) =>
      get(key, options).then(counted),
    getMany: (keys: Deno.KvKey[], options?: { consistency?: Deno.KvConsistencyLevel }) =>
      getMany(keys, options).then((entries) => entries.map(counted)),
    list: (selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
      const iter = list(selector, options);
      const next = iter.next.bind(iter);
      // Billed by the total size returned: a unit at the first entry, one more per 4 KiB.
      let bytes = 0;
      let units = 0;
      iter.next = async () => {
        const step = await next();
        bytes += step.done ? 0 : entrySize(step.value.key, step.value.value);
        const due = readUnits(bytes);
        meter.reads += due - units;
        units = due;
        return step;
      };
      return iter;
    },
    set: async (key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) => {
      const res = await set(key, value, options);
      meter.writes += writeUnits(entrySize(key, value));
      return res;
    },
    delete: async (key: Deno.KvKey) => {
      await del(key);
      meter.writes += writeUnits(keySize(key));
    },
    enqueue: async (value: unknown, options?: Parameters<Deno.Kv["enqueue"]>[1]) => {
      const res = await enqueue(value, options);
      meter.writes += writeUnits(sizeOf(value));
      return res;
    },
    atomic: () => meterAtomic(atomic(), meter),
  });
  return meter;
}

/** Counts each mutation added to `op`, once the commit succeeds. */
function meterAtomic(op: Deno.AtomicOperation, meter: KvMeter): Deno.AtomicOperation {
  let units = 0;
  const add = (key: Deno.KvKey, value: unknown) => units += writeUnits(entrySize(key, value));
  const original = {
    mutate: op.mutate.bind(op),
    sum: op.sum.bind(op),
    min: op.min.bind(op),
    max: op.max.bind(op),
    set: op.set.bind(op),
    delete: op.delete.bind(op),
    enqueue: op.enqueue.bind(op),
    commit: op.commit.bind(op),
  };
  return Object.assign(op, {
    mutate: (...mutations: Deno.KvMutation[]) => {
      for (const m of mutations) add(m.key, "value" in m ? m.value : null);
      return original.mutate(...mutations);
    },
    sum: (key: Deno.KvKey, n: bigint) => (add(key, 8), original.sum(key, n)),
    min: (key: Deno.KvKey, n: bigint) => (add(key, 8), original.min(key, n)),
    max: (key: Deno.KvKey, n: bigint) => (add(key, 8), original.max(key, n)),
    set: (key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) => (
      add(key, value), original.set(key, value, options)
    ),
    delete: (key: Deno.KvKey) => (add(key, null), original.delete(key)),
    enqueue: (value: unknown, options?: Parameters<Deno.AtomicOperation["enqueue"]>[1]) => (
      add([], value), original.enqueue(value, options)
    ),
    commit: async () => {
      const res = await original.commit();
      if (res.ok) meter.writes += units;
      return res;
    },
  });
}
