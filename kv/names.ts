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

/**
 * NamedKeys by scope (an API key's hash, a tenant's id) and slot, each made for a label (a day,
 * a period) and made anew when the label changes. Bounded: past `maxScopes` it starts over.
 */
export class NamedKeys {
  readonly #scopes = new Map<string, Map<string, { label: string; named: NamedKey }>>();
  constructor(readonly maxScopes = 100_000) {}

  get(scope: string, slot: string, label: string, key: () => Deno.KvKey): NamedKey {
    let slots = this.#scopes.get(scope);
    if (!slots) {
      if (this.#scopes.size >= this.maxScopes) this.#scopes.clear();
      this.#scopes.set(scope, slots = new Map());
    }
    const hit = slots.get(slot);
    if (hit && hit.label === label) return hit.named;
    const made = named(key());
    slots.set(slot, { label, named: made });
    return made;
  }
}
