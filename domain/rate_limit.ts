/**
 * In-memory sliding-window rate limits, per key and per process (DESIGN §6: no KV on the hot
 * path). A limit `{ requests_per_second, burst }` is two windows: at most `burst` requests in
 * any one second, and at most `requests_per_second` on average over ten seconds. Each window
 * is a sliding-window counter: the previous fixed window's count, weighted by how much of it
 * still overlaps, plus the current one's — exact enough, and O(1) memory per key.
 *
 * `check` only looks; `take` spends. Verify checks first and takes only once every other
 * check has passed, so a denied call consumes nothing.
 */
import type { RateLimit } from "./plans.ts";

interface Counter {
  start: number;
  current: number;
  previous: number;
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

export class RateLimiter {
  readonly #counters = new Map<string, Counter>();
  readonly #maxEntries: number;

  constructor(maxEntries = 200_000) {
    this.#maxEntries = maxEntries;
  }

  get size() {
    return this.#counters.size;
  }

  #counter(name: string, windowMs: number, now: number): Counter {
    const start = now - (now % windowMs);
    let c = this.#counters.get(name);
    if (!c) {
      if (this.#counters.size >= this.#maxEntries) this.#sweep(now);
      c = { start, current: 0, previous: 0 };
      this.#counters.set(name, c);
    } else if (c.start !== start) {
      c.previous = c.start === start - windowMs ? c.current : 0;
      c.current = 0;
      c.start = start;
    }
    return c;
  }

  /** Drops counters idle for two long windows (they weigh nothing any more). */
  #sweep(now: number) {
    for (const [name, c] of this.#counters) {
      if (c.start + 2 * LONG_MS <= now) this.#counters.delete(name);
    }
    // Still full (every key busy): forget the oldest rather than grow without bound.
    while (this.#counters.size >= this.#maxEntries) {
      this.#counters.delete(this.#counters.keys().next().value!);
    }
  }

  #windows(id: string, limit: RateLimit) {
    return [
      { name: `${id}:s`, windowMs: SHORT_MS, max: limit.burst },
      { name: `${id}:l`, windowMs: LONG_MS, max: limit.requests_per_second * (LONG_MS / 1000) },
    ];
  }

  /** Whether one more request fits, and the binding window's figures; spends nothing. */
  check(id: string, limit: RateLimit, now: number): RateDecision {
    const decisions = this.#windows(id, limit).map((w): RateDecision => {
      const c = this.#counter(w.name, w.windowMs, now);
      const overlap = 1 - (now - c.start) / w.windowMs;
      const used = Math.floor(c.previous * overlap) + c.current;
      return {
        allowed: used < w.max,
        limit: w.max,
        remaining: Math.max(0, w.max - used),
        reset: c.start + w.windowMs,
      };
    });
    return decisions.find((d) => !d.allowed) ??
      decisions.reduce((a, b) => b.remaining < a.remaining ? b : a);
  }

  /** Spends one request of `id`'s windows (after `check` allowed it). */
  take(id: string, limit: RateLimit, now: number) {
    for (const w of this.#windows(id, limit)) this.#counter(w.name, w.windowMs, now).current++;
  }
}
