/** Deleting ranges of KV entries in bulk: retention sweeps over time-ordered families. */

/** Deletes per commit: well inside KV's 1000 mutations. */
const DELETES_PER_COMMIT = 500;

/**
 * Deletes every entry in `selector` that `keep` does not hold on to, in commits of 500;
 * returns how many went, each entry counting as `weigh` says (one by default: a page of log
 * entries counts its entries). No checks: what a sweep deletes is no longer written to.
 */
export async function deleteRange<T>(
  kv: Deno.Kv,
  selector: Deno.KvListSelector,
  keep: (entry: Deno.KvEntry<T>) => boolean = () => false,
  weigh: (entry: Deno.KvEntry<T>) => number = () => 1,
): Promise<number> {
  let deleted = 0;
  let batch: Deno.KvKey[] = [];
  let weight = 0;
  const drop = async () => {
    const op = kv.atomic();
    for (const key of batch) op.delete(key);
    await op.commit();
    deleted += weight;
    batch = [];
    weight = 0;
  };
  for await (const entry of kv.list<T>(selector, { batchSize: DELETES_PER_COMMIT })) {
    if (keep(entry)) continue;
    batch.push(entry.key);
    weight += weigh(entry);
    if (batch.length === DELETES_PER_COMMIT) await drop();
  }
  if (batch.length) await drop();
  return deleted;
}
