/**
 * In-memory sliding-window rate limits, per key and per process (no KV on the hot path:
 * ARCHITECTURE.md, verify hot path). A limit `{ requests_per_second, burst }` is two windows: at
 * most `burst` requests in any one second, and at most `requests_per_second` on average over ten
 * seconds. Each window is a sliding-window counter: the previous fixed window's count, weighted by
 * how much of it still overlaps, plus the current one's — exact enough, and O(1) memory per key.
 *
 * `check` only looks; `take` spends. Verify checks first and takes only once every other
 * check has passed, so a denied call consumes nothing.
 */
import type { RateLimit } from "../tenancy/plans.ts";

interface Counter {
  start: number;
  current: number;
  previous: number;
}

/** A key's two windows, under one map entry: the hot path does one lookup per call. */
interface Windows {
  short: Counter;
  long: Counter;
}

export interface RateDecision {
  allowed: boolean;
  /** The binding window's limit, what is left of it, and when its current window ends (ms). */
  limit: number;
  remaining: number;
  reset: number;
}

const SHORT_MS = 1_000;
const LONG_MS = 10_000;

/** Rolls `c` forward to the window containing `now`. */
function roll(c: Counter, windowMs: number, now: number): Counter {
  const start = now - (now % windowMs);
  if (c.start !== start) {
    c.previous = c.start === start - windowMs ? c.current : 0;
    c.current = 0;
    c.start = start;
  }
  return c;
}

/** One window's verdict on one more request. */
function decide(c: Counter, windowMs: number, max: number, now: number): RateDecision {
  const overlap = 1 - (now - c.start) / windowMs;
  const used = Math.floor(c.previous * overlap) + c.current;
  return {
    allowed: used < max,
    limit: max,
    remaining: Math.max(0, max - used),
    reset: c.start + windowMs,
  };
}

export class RateLimiter {
  readonly #windows = new Map<string, Windows>();
  readonly #maxEntries: number;

  constructor(maxEntries = 200_000) {
    this.#maxEntries = maxEntries;
  }

  get size() {
    return this.#windows.size;
  }

  #of(id: string, now: number): Windows {
    let w = this.#windows.get(id);
    if (!w) {
      if (this.#windows.size >= this.#maxEntries) this.#sweep(now);
      w = {
        short: { start: now - (now % SHORT_MS), current: 0, previous: 0 },
        long: { start: now - (now % LONG_MS), current: 0, previous: 0 },
      };
      this.#windows.set(id, w);
    }
    roll(w.short, SHORT_MS, now);
    roll(w.long, LONG_MS, now);
    return w;
  }

  /** Drops keys idle for two long windows (they weigh nothing any more). */
  #sweep(now: number) {
    for (const [id, w] of this.#windows) {
      if (w.long.start + 2 * LONG_MS <= now) this.#windows.delete(id);
    }
    // Still full (every key busy): forget the oldest rather than grow without bound.
    while (this.#windows.size >= this.#maxEntries) {
      this.#windows.delete(this.#windows.keys().next().value!);
    }
  }

  /** Whether one more request fits, and the binding window's figures; spends nothing. */
  check(id: string, limit: RateLimit, now: number): RateDecision {
    const w = this.#of(id, now);
    const short = decide(w.short, SHORT_MS, limit.burst, now);
    const long = decide(w.long, LONG_MS, limit.requests_per_second * (LONG_MS / 1000), now);
    if (!short.allowed) return short;
    if (!long.allowed) return long;
    return long.remaining < short.remaining ? long : short;
  }

  /** Spends one request of `id`'s windows (after `check` allowed it). */
  take(id: string, now: number) {
    const w = this.#of(id, now);
    w.short.current++;
    w.long.current++;
  }
}
