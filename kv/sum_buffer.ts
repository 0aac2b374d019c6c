/**
 * Write-behind counters (ARCHITECTURE.md, write-behind): additions are summed in memory and written
 * as KvU64 `sum` (or `max`) mutations every `flushIntervalMs` (lazy ones every `lazyEvery`-th
 * time), as soon as `maxEntries` distinct eager keys wait (or `lazyEvery × maxEntries` keys in
 * all), and on shutdown — a few commits a second instead of one per request. Lazy keys have their
 * own, higher bound: with many busy API keys they are most of the keys, and flushing them whenever
 * the eager bound is reached would write them many times a second.
 *
 * Nothing acknowledged is dropped: a flush takes the pending deltas out, and puts back any
 * chunk whose commit failed, for the next flush. `pending(key)` counts deltas not yet
 * committed, including those of a flush in flight, so persisted + pending is exact in this
 * process at every moment; `onCommitted` tells a reader (the verify cache) when an amount moves
 * from pending to persisted, in the same tick. A `companion` adds a record that must commit with
 * a sum (the usage stream's item for a flushed delta) to the sum's own commit.
 */
import { commit } from "./commit.ts";
import { WriteQueue } from "./write_queue.ts";
import { type BufferKind as Kind, bufferName as nameOf, type KeyName } from "./names.ts";

interface Delta {
  key: Deno.KvKey;
  kind: Kind;
  /** A number until the commit: a BigInt per addition costs the hot path an allocation. */
  value: number;
  /** Written only every `lazyEvery`-th timed flush (and by explicit flushes and stop()). */
  lazy: boolean;
}

export interface SumBufferOptions {
  flushIntervalMs: number;
  maxEntries: number;
  /**
   * Timed flushes between two writes of lazy counters (default 10): statistics that need not
   * be as fresh as quotas cost a tenth of the writes (a hard kill can lose that much more).
   */
  lazyEvery?: number;
  /** Called once a sum of `amount` at `key` is committed. */
  onCommitted?: (key: Deno.KvKey, amount: bigint) => void;
  /** A mutation to commit with the sum of `amount` at `key` (drawn anew at each attempt), or null. */
  companion?: (key: Deno.KvKey, amount: bigint, now: number) => Deno.KvMutation | null;
  now?: () => number;
}

export interface FlushStats {
  /** Additions taken in (each add or max call). */
  enqueued: number;
  flushes: number;
  flush_errors: number;
  last_flush_at: number | null;
  last_flush_duration_ms: number | null;
  last_flush_keys: number;
  last_error: string | null;
  /** When a flush last wrote everything it took (the alert rules' flush lag). */
  last_success_at: number | null;
  /** Flushes failed since the last that succeeded. */
  errors_in_row: number;
}

/** Mutations per commit (companions included): well inside KV's 1000, and small commits keep the lock short. */
const CHUNK = 500;

export class SumBuffer {
  readonly #kv: Deno.Kv;
  readonly #opts: SumBufferOptions;
  #pending = new Map<string, Delta>();
  readonly #lazyEvery: number;
  /** How many of the pending deltas are not lazy. */
  #eager = 0;
  /** Sums taken by the flush in flight, by key: still counted by pending(). */
  readonly #inflight = new Map<string, number>();
  /** Flushes run one after another. */
  readonly #flushes = new WriteQueue();
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Odd while a flush is writing; bumped at its start and end (see `idle`). */
  #writes = 0;
  readonly stats: FlushStats = {
    enqueued: 0,
    flushes: 0,
    flush_errors: 0,
    last_flush_at: null,
    last_flush_duration_ms: null,
    last_flush_keys: 0,
    last_error: null,
    last_success_at: null,
    errors_in_row: 0,
  };

  constructor(kv: Deno.Kv, opts: SumBufferOptions) {
    this.#kv = kv;
    this.#opts = opts;
    this.#lazyEvery = opts.lazyEvery ?? 10;
  }

  /** Distinct keys waiting to be written. */
  get size() {
    return this.#pending.size;
  }

  /**
   * Adds `n` to the counter at `key`; `lazy` ones are written less often (see lazyEvery).
   * `name`: the key's buffer name when the caller has it (kv/names.ts).
   */
  add(key: Deno.KvKey, n = 1, lazy = false, name: KeyName<"sum"> = nameOf("sum", key)) {
    this.#put(name, { key, kind: "sum", value: n, lazy });
  }

  /** Raises the counter at `key` to at least `n` (e.g. a last-used time). */
  max(key: Deno.KvKey, n: number, lazy = false, name: KeyName<"max"> = nameOf("max", key)) {
    this.#put(name, { key, kind: "max", value: n, lazy });
  }

  /** The sum added at `key` and not yet committed. */
  pending(key: Deno.KvKey, name: KeyName<"sum"> = nameOf("sum", key)): number {
    return (this.#pending.get(name)?.value ?? 0) + (this.#inflight.get(name) ?? 0);
  }

  /** The highest value waiting for `key`'s `max`, or 0 (a flush in flight is not counted). */
  pendingMax(key: Deno.KvKey): number {
    return this.#pending.get(nameOf("max", key))?.value ?? 0;
  }

  /** Every sum added and not yet committed (a flush in flight included), with its key. */
  *pendingSums(): Generator<[Deno.KvKey, number]> {
    for (const [name, d] of this.#pending) {
      if (d.kind === "sum") yield [d.key, d.value + (this.#inflight.get(name) ?? 0)];
    }
    for (const [name, value] of this.#inflight) {
      if (!this.#pending.has(name)) yield [JSON.parse(name.slice("sum:".length)), value];
    }
  }

  /**
   * Resolves when no flush is writing, with a mark that changes as soon as one starts: a reader
   * that compares the mark before and after its reads knows no commit moved an amount from
   * pending to persisted in between (which would count it twice or not at all).
   */
  async idle(): Promise<number> {
    while (this.#writes % 2 === 1) await this.#flushes.busy;
    return this.#writes;
  }

  /** The mark idle() resolved with, as it is now. */
  get writeMark(): number {
    return this.#writes;
  }

  #put(name: string, d: Delta) {
    // Refused here, not at the commit, where one bad value would fail every flush after.
    if (!Number.isSafeInteger(d.value) || d.value < 0) {
      throw new RangeError(`not a counter amount: ${d.value}`);
    }
    this.stats.enqueued++;
    this.#merge(name, d);
    if (this.#flushes.busy) return;
    const max = this.#opts.maxEntries;
    if (this.#pending.size >= max * this.#lazyEvery) void this.flush().catch(() => {});
    else if (this.#eager >= max) void this.flush(true).catch(() => {});
  }

  #merge(name: string, d: Delta) {
    const current = this.#pending.get(name);
    if (!current) {
      if (!d.lazy) this.#eager++;
      return void this.#pending.set(name, { ...d });
    }
    if (d.kind === "sum") current.value += d.value;
    else if (d.value > current.value) current.value = d.value;
    if (current.lazy && !d.lazy) {
      current.lazy = false;
      this.#eager++;
    }
  }

  /**
   * Writes what is pending (with `eagerOnly`, all but the lazy counters); settles when this
   * flush (after any before it) is done.
   */
  flush(eagerOnly = false): Promise<void> {
    return this.#flushes.run(() => this.#flushOnce(eagerOnly));
  }

  async #flushOnce(eagerOnly: boolean) {
    if (this.#pending.size === 0) return;
    const now = this.#opts.now ?? Date.now;
    const started = now();
    const taken = [...this.#pending.entries()].filter(([, d]) => !eagerOnly || !d.lazy);
    if (eagerOnly) { for (const [name] of taken) this.#pending.delete(name); }
    else this.#pending = new Map();
    this.#eager = 0;
    for (const [name, d] of taken) if (d.kind === "sum") this.#inflight.set(name, d.value);
    this.#writes++;
    let failed: Error | null = null;
    try {
      for (const chunk of this.#chunks(taken, started)) {
        if (!failed) {
          try {
            const op = this.#kv.atomic();
            for (const { d, extra } of chunk) {
              op.mutate({ type: d.kind, key: d.key, value: new Deno.KvU64(BigInt(d.value)) });
              if (extra) op.mutate(extra);
            }
            if (!(await commit(op))) throw new Error("the commit was refused");
            for (const { name, d } of chunk) {
              this.#inflight.delete(name);
              if (d.kind === "sum") this.#opts.onCommitted?.(d.key, BigInt(d.value));
            }
            continue;
          } catch (err) {
            failed = err instanceof Error ? err : new Error(String(err));
          }
        }
        // Not written: back into pending, merged with what arrived meanwhile.
        for (const { name, d } of chunk) {
          this.#inflight.delete(name);
          this.#merge(name, d);
        }
      }
    } finally {
      this.#writes++;
    }
    this.stats.flushes++;
    this.stats.last_flush_at = now();
    this.stats.last_flush_duration_ms = now() - started;
    this.stats.last_flush_keys = taken.length;
    if (failed) {
      this.stats.flush_errors++;
      this.stats.errors_in_row++;
      this.stats.last_error = failed.message;
      throw failed;
    }
    this.stats.errors_in_row = 0;
    this.stats.last_success_at = this.stats.last_flush_at;
  }

  /** The deltas in commits of at most CHUNK mutations, each sum with its companion, if any. */
  *#chunks(taken: [string, Delta][], now: number) {
    let chunk: { name: string; d: Delta; extra: Deno.KvMutation | null }[] = [];
    let mutations = 0;
    for (const [name, d] of taken) {
      const extra = d.kind === "sum"
        ? this.#opts.companion?.(d.key, BigInt(d.value), now) ?? null
        : null;
      const size = extra ? 2 : 1;
      if (mutations + size > CHUNK) {
        yield chunk;
        chunk = [];
        mutations = 0;
      }
      chunk.push({ name, d, extra });
      mutations += size;
    }
    if (chunk.length) yield chunk;
  }

  /** Flushes every `flushIntervalMs` until stop(); the timer does not keep the process alive. */
  start() {
    if (this.#timer !== null) return;
    let tick = 0;
    const timer = setInterval(
      () => void this.flush(++tick % this.#lazyEvery !== 0).catch(() => {}),
      this.#opts.flushIntervalMs,
    );
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** A new interval (runtime configuration): a running timer restarts with it. */
  setFlushInterval(ms: number) {
    this.#opts.flushIntervalMs = ms;
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.start();
  }

  /** Stops the timer and writes what is left (shutdown). */
  async stop() {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.flush();
  }
}
