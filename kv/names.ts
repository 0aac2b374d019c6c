/**
 * Names of KV keys, for maps keyed by them (the read cache, the write-behind buffer). A name is
 * the key's JSON; a buffer name adds what the buffer does with it. Building one serializes the
 * key and hashing it reads every character, so code that touches the same keys on every
 * request (verify) makes them once, as a NamedKey, and passes them along.
 */

export type BufferKind = "sum" | "max";

/** The name of `key` in the write-behind buffer, for a `sum` or a `max`. */
export const bufferName = (kind: BufferKind, key: Deno.KvKey) => `${kind}:${JSON.stringify(key)}`;

/** A key with its names, made once. */
export interface NamedKey {
  readonly key: Deno.KvKey;
  /** Its name in the read cache. */
  readonly name: string;
  readonly sum: string;
  readonly max: string;
}

export function named(key: Deno.KvKey): NamedKey {
  const name = JSON.stringify(key);
  return { key, name, sum: `sum:${name}`, max: `max:${name}` };
}

/** A key named for a label (a day, a period): made anew when the label changes. */
export interface Dated {
  readonly label: string;
  readonly named: NamedKey;
}

/** `current` when it was made for `label`, else `key` named for it. */
export const dated = (current: Dated | undefined, label: string, key: () => Deno.KvKey): Dated =>
  current?.label === label ? current : { label, named: named(key()) };

/** `map`'s entry for `id`, made when missing. Bounded: past `max` entries it starts over. */
export function remembered<V>(
  map: Map<string, V>,
  id: string,
  make: () => NoInfer<V>,
  max = 100_000,
): V {
  let value = map.get(id);
  if (value === undefined) {
    if (map.size >= max) map.clear();
    map.set(id, value = make());
  }
  return value;
}
