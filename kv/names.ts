/**
 * Names of KV keys, for maps keyed by them (the read cache, the write-behind buffer). A name is
 * the key's JSON; a buffer name adds what the buffer does with it. Building one serializes the
 * key and hashing it reads every character, so code that touches the same keys on every
 * request (verify) makes them once, as a NamedKey, and passes them along. One name per key and
 * use: a warm API key's names are held for as long as it is busy, and only what is used is kept.
 */

export type BufferKind = "sum" | "max";

/** The map a name is for: the read cache, or the buffer as a sum or a max. */
export type NameKind = "cache" | BufferKind;

declare const kind: unique symbol;

/**
 * A key's name in the map of kind `K`. The kind is in the type only (a phantom brand, no
 * runtime cost): a name of another kind finds nothing (a cache name in the buffer silently
 * counts 0), so passing one fails type checking instead.
 */
export type KeyName<K extends NameKind> = string & { readonly [kind]?: K };

/** The name of `key` in the write-behind buffer, for a `sum` or a `max`. */
export const bufferName = <K extends BufferKind>(kind: K, key: Deno.KvKey) =>
  `${kind}:${JSON.stringify(key)}` as KeyName<K>;

/** A key with its name in one map (the read cache, or the buffer as a sum or a max), made once. */
export interface NamedKey<K extends NameKind> {
  readonly key: Deno.KvKey;
  readonly name: KeyName<K>;
}

/** `key` under its name in the read cache. */
export const named = (key: Deno.KvKey): NamedKey<"cache"> => ({ key, name: JSON.stringify(key) });

/** `key` under its name in the write-behind buffer. */
export const counter = <K extends BufferKind>(kind: K, key: Deno.KvKey): NamedKey<K> => ({
  key,
  name: bufferName(kind, key),
});

/** A value made for a label (a day, a period): made anew when the label changes. */
export interface Dated<V> {
  readonly label: string;
  readonly value: V;
}

/** `current` when it was made for `label`, else a new value from `make`. */
export const dated = <V>(current: Dated<V> | undefined, label: string, make: () => V): Dated<V> =>
  current?.label === label ? current : { label, value: make() };

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
