/**
 * Pointers that never change once written — a secret's hash → its record id — remembered in
 * memory, per KV handle, so authenticating a warm credential costs one KV read, not two.
 * Only for immutable pointers: the record read that follows still sees a revocation or a
 * deletion on every request. Misses are not remembered, so unknown secrets cannot fill it.
 */
import { getBatched } from "./batch.ts";
import type { KeyName } from "./names.ts";

const MAX_ENTRIES = 10_000;
const memos = new WeakMap<Deno.Kv, Map<string, string>>();

/**
 * The remembered target of `key`, without reading KV (undefined when not remembered). `name`:
 * the key's name when the caller has it (kv/names.ts): its read-cache name, the same JSON.
 */
export function peekImmutablePointer(
  kv: Deno.Kv,
  key: Deno.KvKey,
  name: KeyName<"cache"> = JSON.stringify(key),
): string | undefined {
  const memo = memos.get(kv);
  // Oldest first out, hits not reordered: a re-insert per hit makes V8 rehash the map over
  // and over, and an evicted hot pointer costs just one read.
  return memo?.get(name);
}

export async function resolveImmutablePointer(
  kv: Deno.Kv,
  key: Deno.KvKey,
): Promise<string | null> {
  const hit = peekImmutablePointer(kv, key);
  if (hit !== undefined) return hit;
  let memo = memos.get(kv);
  if (!memo) memos.set(kv, memo = new Map());
  const id = (await getBatched<string>(kv, key)).value;
  if (id !== null) {
    memo.set(JSON.stringify(key), id);
    if (memo.size > MAX_ENTRIES) memo.delete(memo.keys().next().value!);
  }
  return id;
}
