/**
 * Answers per UTC minute, platform-wide, for the alert rules (5xx rate, 429 rate, 401 spikes).
 * Each process tallies in memory (`AnswerTally`, fed by the aggregator's count(): every answer,
 * the verify fast path included); the aggregator hands the tallies to its SumBuffer at each
 * flush as KvU64 sums under `answer_rates`, so the minute's record adds up every process's
 * answers. A sum ignores expireIn, so the `prune-answer-rates` cron deletes old minutes.
 */
import { keys } from "../../kv/keys.ts";
import { deleteRange } from "../../kv/prune.ts";

export const ANSWER_KINDS = ["answers", "server_errors", "rate_limited", "unauthorized"] as const;
export type AnswerKind = typeof ANSWER_KINDS[number];
export type AnswerCounts = Record<AnswerKind, number>;

export const MINUTE_MS = 60_000;
/** Minutes kept: far more than any rule's window, little to store (4 keys a minute). */
export const ANSWER_RATE_RETENTION_MS = 24 * 3_600_000;

const zero = (): AnswerCounts => ({
  answers: 0,
  server_errors: 0,
  rate_limited: 0,
  unauthorized: 0,
});

/** One process's answers by minute, until the next flush takes them. */
export class AnswerTally {
  #minutes = new Map<number, AnswerCounts>();
  /** The current minute's counts, and when that minute ends: one comparison per answer. */
  #current: AnswerCounts = zero();
  #ends = -Infinity;
  #starts = Infinity;

  /** Counts one answer: one increment for a success, a few more for an error. */
  add(now: number, status: number) {
    if (now >= this.#ends || now < this.#starts) this.#enter(now);
    const c = this.#current;
    c.answers++;
    if (status < 400) return;
    if (status >= 500) c.server_errors++;
    else if (status === 429) c.rate_limited++;
    else if (status === 401) c.unauthorized++;
  }

  #enter(now: number) {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    let counts = this.#minutes.get(minute);
    if (!counts) this.#minutes.set(minute, counts = zero());
    this.#current = counts;
    this.#starts = minute;
    this.#ends = minute + MINUTE_MS;
  }

  /** Takes every minute's counts (to be written); the tally starts over. */
  take(): [minute: number, counts: AnswerCounts][] {
    const taken = [...this.#minutes];
    this.#minutes = new Map();
    this.#ends = -Infinity;
    return taken;
  }

  /** Minutes held (for the aggregator's pending figures). */
  get size() {
    return this.#minutes.size;
  }
}

/** The counters to add for taken minutes: one per minute and kind counted. */
export function* answerRateDeltas(
  taken: [number, AnswerCounts][],
): Generator<[Deno.KvKey, number]> {
  for (const [minute, counts] of taken) {
    for (const kind of ANSWER_KINDS) {
      if (counts[kind]) yield [keys.answerRate(minute, kind), counts[kind]];
    }
  }
}

/** Answers over the `minutes` whole minutes before the one `now` is in (that one is still filling). */
export async function recentAnswers(
  kv: Deno.Kv,
  now: number,
  minutes: number,
): Promise<AnswerCounts> {
  const end = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const prefix = keys.answerRates();
  const total = zero();
  for await (
    const e of kv.list<Deno.KvU64>({
      start: [...prefix, end - minutes * MINUTE_MS],
      end: [...prefix, end],
    })
  ) {
    const kind = e.key[2] as AnswerKind;
    if (kind in total) total[kind] += Number(e.value.value);
  }
  return total;
}

/** Deletes minutes older than the retention; how many keys it deleted. */
export function pruneAnswerRates(svc: { kv: Deno.Kv; now: () => number }): Promise<number> {
  const prefix = keys.answerRates();
  return deleteRange(svc.kv, {
    prefix,
    end: [...prefix, svc.now() - ANSWER_RATE_RETENTION_MS],
  });
}
