/**
 * Point reads issued in the same tick — by one request or by many concurrent ones — go to KV
 * together as `getMany` calls of up to 10 keys (KV's limit): one round trip instead of many.
 * Under 50 concurrent clients this reads 2.5× faster than one `get` per key (bench/RESULTS.md).
 * Each read still sees a consistent snapshot, taken after it was issued, so a versionstamp it
 * returns is as good for an atomic check as one from `kv.get`.
 */
const GET_MANY_LIMIT = 10;

interface Pending {
  key: Deno.KvKey;
  resolve: (entry: Deno.KvEntryMaybe<unknown>) => void;
  reject: (err: unknown) => void;
}

const queues = new WeakMap<Deno.Kv, Pending[]>();

function flush(kv: Deno.Kv) {
  const pending = queues.get(kv) ?? [];
  queues.delete(kv);
  for (let i = 0; i < pending.length; i += GET_MANY_LIMIT) {
    const part = pending.slice(i, i + GET_MANY_LIMIT);
    kv.getMany(part.map((p) => p.key)).then(
      (entries) => entries.forEach((entry, j) => part[j].resolve(entry)),
      (err) => part.forEach((p) => p.reject(err)),
    );
  }
}

export function getBatched<T>(kv: Deno.Kv, key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
  return new Promise((resolve, reject) => {
    let queue = queues.get(kv);
    if (!queue) {
      queues.set(kv, queue = []);
      queueMicrotask(() => flush(kv));
    }
    queue.push({ key, resolve: resolve as Pending["resolve"], reject });
  });
}
