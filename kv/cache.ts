/**
 * A read-through cache of KV entries for the hot path: stale-while-revalidate, misses
 * included, bounded, forgettable.
 *
 * - An entry younger than half the freshness window is served as is. Older, it is still
 *   served, and one background read refreshes it; at the full window it is not served: the
 *   caller waits for a fresh read. So a hot key never waits on KV, and no answer is older
 *   than `freshMs`: that is how soon another process sees a change.
 * - Reads go out as `getMany` calls of the reads issued in the same tick (kv/batch.ts), so
 *   the refreshes that many concurrent answers start cost KV half as much as one `get` each.
 * - Misses are cached too, so a flood of unknown keys costs one read per key per window.
 * - An entry read with a stamp (a KvU64 that every write of the record bumps, kv/table.ts) is
 *   read in one snapshot with it. While the stamp is unchanged, each refresh of the stamp
 *   renews the entry too, so a tenant's thousand warm API keys cost one read per half window
 *   instead of two thousand. Once the stamp moves (another process wrote one of them), the
 *   entries age as any other and refresh themselves: the same freshness bound, no wait.
 * - `forget(key)` drops an entry at once (the process that made a change sees it on the next
 *   read); a read that started before the forget does not put its older value back.
 * - At most `maxEntries` entries; eviction is CLOCK (second chance): a hit only sets a flag,
 *   and the sweep gives a flagged entry one more round. A true LRU's delete-and-reinsert on
 *   every hit made V8 rehash the map over and over: the cache's single largest cost.
 */
import { getBatched } from "./batch.ts";
import type { KeyName, NamedKey } from "./names.ts";

interface Slot {
  entry: Deno.KvEntryMaybe<unknown>;
  at: number;
  refreshing: boolean;
  /** Hit since the sweep last passed it. */
  used: boolean;
  /** Read with a stamp: the stamp's versionstamp then (null: never written). */
  stamp?: string | null;
}

export interface KvCacheOptions {
  freshMs: number;
  maxEntries: number;
  now?: () => number;
}

export class KvCache {
  readonly #kv: Deno.Kv;
  readonly #opts: Required<KvCacheOptions>;
  readonly #slots = new Map<string, Slot>();
  /** Bumped by forget(): a read that started under an older epoch is not stored. */
  readonly #epochs = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<Deno.KvEntryMaybe<unknown>>>();
  /** Reads that went to KV (for tests and diagnostics). */
  reads = 0;

  constructor(kv: Deno.Kv, opts: KvCacheOptions) {
    this.#kv = kv;
    this.#opts = { now: Date.now, ...opts };
  }

  get size() {
    return this.#slots.size;
  }

  /** A new freshness window (runtime configuration), for every entry from the next read. */
  setFreshMs(ms: number) {
    this.#opts.freshMs = ms;
  }

  /**
   * The entry at `key`, from memory when fresh enough (see the module comment). `stamp`: the
   * record's stamp, read with it and checked instead of its age.
   */
  get<T>(
    key: Deno.KvKey,
    stamp?: NamedKey<"cache">,
  ): Promise<Deno.KvEntryMaybe<T>> | Deno.KvEntryMaybe<T> {
    const name = JSON.stringify(key);
    return this.getSync<T>(key, name, stamp) ??
      this.#load(name, key, stamp) as Promise<Deno.KvEntryMaybe<T>>;
  }

  /**
   * The entry at `key` when memory holds a fresh one (refreshing it in the background past
   * half the window, as get does), else undefined: for callers that stay synchronous when
   * they can, since every promise on the hot path costs throughput. `name`: the key's name
   * when the caller has it (kv/names.ts). `stamp`: as for get.
   */
  getSync<T>(
    key: Deno.KvKey,
    name: KeyName<"cache"> = JSON.stringify(key),
    stamp?: NamedKey<"cache">,
  ): Deno.KvEntryMaybe<T> | undefined {
    const slot = this.#slots.get(name);
    if (!slot) return undefined;
    if (stamp && slot.stamp !== undefined) {
      // The stamp (fresh, refreshing itself) unchanged since the entry was read: the entry is as
      // current as the stamp, and the stamp's refreshes keep it so.
      const vouch = this.#fresh(stamp.key, stamp.name, this.#slots.get(stamp.name));
      if (vouch?.entry.versionstamp === slot.stamp) {
        if (vouch.at > slot.at) slot.at = vouch.at;
        slot.used = true;
        return slot.entry as Deno.KvEntryMaybe<T>;
      }
    }
    return this.#fresh(key, name, slot, stamp)?.entry as Deno.KvEntryMaybe<T> | undefined;
  }

  /** `slot` when younger than the window, refreshed in the background past half of it. */
  #fresh(
    key: Deno.KvKey,
    name: string,
    slot: Slot | undefined,
    stamp?: NamedKey<"cache">,
  ): Slot | undefined {
    if (!slot) return undefined;
    const age = this.#opts.now() - slot.at;
    if (age >= this.#opts.freshMs) return undefined;
    if (age >= this.#opts.freshMs / 2 && !slot.refreshing) {
      slot.refreshing = true;
      this.#load(name, key, stamp).catch(() => slot.refreshing = false);
    }
    slot.used = true;
    return slot;
  }

  /** What is cached for `key` right now, fresh or not, without reading KV. */
  peek<T>(
    key: Deno.KvKey,
    name: KeyName<"cache"> = JSON.stringify(key),
  ): Deno.KvEntryMaybe<T> | undefined {
    return this.#slots.get(name)?.entry as Deno.KvEntryMaybe<T> | undefined;
  }

  /**
   * Adds `amount` to a cached KvU64 counter, for a sum this process just committed: the
   * cached value stays exact without a read. A read in flight is not stored over it.
   */
  adjust(key: Deno.KvKey, amount: bigint) {
    const name = JSON.stringify(key);
    this.#bump(name);
    this.#inflight.delete(name);
    const slot = this.#slots.get(name);
    if (!slot) return;
    const current = slot.entry.value instanceof Deno.KvU64 ? slot.entry.value.value : 0n;
    const value = new Deno.KvU64((current + amount) & 0xffff_ffff_ffff_ffffn);
    slot.entry = { ...slot.entry, value } as Deno.KvEntryMaybe<unknown>;
  }

  /** Drops what is cached for `key`: the next get reads KV. */
  forget(key: Deno.KvKey) {
    const name = JSON.stringify(key);
    this.#slots.delete(name);
    this.#inflight.delete(name);
    this.#bump(name);
  }

  /** Names with an epoch (for the bound's test). */
  get epochs() {
    return this.#epochs.size;
  }

  #bump(name: string) {
    this.#epochs.set(name, (this.#epochs.get(name) ?? 0) + 1);
    // Epochs only matter while a read is in flight, and every counter a usage commit adjusts
    // adds one: keep the map from growing for ever.
    if (this.#epochs.size > this.#opts.maxEntries) this.#epochs.clear();
  }

  /**
   * Resolves once every read in flight, background refreshes included, has landed (one that
   * an adjust or forget overtook is no longer awaited: it will not be stored).
   */
  async settled(): Promise<void> {
    while (this.#inflight.size) await Promise.allSettled([...this.#inflight.values()]);
  }

  clear() {
    this.#slots.clear();
    this.#inflight.clear();
    this.#epochs.clear();
  }

  #load(
    name: string,
    key: Deno.KvKey,
    stamp?: NamedKey<"cache">,
  ): Promise<Deno.KvEntryMaybe<unknown>> {
    const pending = this.#inflight.get(name);
    if (pending) return pending;
    const read = this.#read(name, key, stamp).finally(() => {
      if (this.#inflight.get(name) === read) this.#inflight.delete(name);
    });
    this.#inflight.set(name, read);
    return read;
  }

  async #read(
    name: string,
    key: Deno.KvKey,
    stamp?: NamedKey<"cache">,
  ): Promise<Deno.KvEntryMaybe<unknown>> {
    const epoch = this.#epochs.get(name) ?? 0;
    this.reads++;
    if (!stamp) {
      const entry = await getBatched(this.#kv, key);
      this.#store(name, epoch, entry, undefined);
      return entry;
    }
    // One getMany is one snapshot: the entry is exactly as of the stamp read with it.
    const stampEpoch = this.#epochs.get(stamp.name) ?? 0;
    const [current, entry] = await this.#kv.getMany([stamp.key, key]);
    const known = this.#slots.get(stamp.name)?.entry.versionstamp;
    // Concurrent reads may land out of order: a stamp never goes back.
    if (!known || (current.versionstamp !== null && current.versionstamp >= known)) {
      this.#store(stamp.name, stampEpoch, current, undefined);
    }
    this.#store(name, epoch, entry, current.versionstamp);
    return entry;
  }

  /** Stores a read unless it was overtaken (adjusted or forgotten meanwhile). */
  #store(
    name: string,
    epoch: number,
    entry: Deno.KvEntryMaybe<unknown>,
    stamp: string | null | undefined,
  ) {
    const slot = this.#slots.get(name);
    if ((this.#epochs.get(name) ?? 0) !== epoch) {
      // Not stored, and the next hit refreshes again — else a hot counter adjusted by every
      // flush would never refresh, and expire.
      if (slot) slot.refreshing = false;
    } else if (slot) Object.assign(slot, { entry, at: this.#opts.now(), refreshing: false, stamp });
    else {
      this.#slots.set(name, { entry, at: this.#opts.now(), refreshing: false, used: false, stamp });
      if (this.#slots.size > this.#opts.maxEntries) this.#evictOne();
    }
  }

  /** Drops the oldest entry not hit since the sweep last passed it (CLOCK). */
  #evictOne() {
    for (const [name, slot] of this.#slots) {
      this.#slots.delete(name);
      if (!slot.used) return;
      // A second chance: to the back of the queue, unflagged. Every pass unflags one, so
      // this ends within one lap of the map.
      slot.used = false;
      this.#slots.set(name, slot);
    }
  }
}
