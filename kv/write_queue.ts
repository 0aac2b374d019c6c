/**
 * One write at a time. The write-behind paths (the SumBuffer's flushes, the aggregator's log
 * writes, the Postgres copy) each take what is pending when a write starts, and two writes of
 * one path must not interleave: a write starts when the one queued before it has settled, and a
 * failed write does not stop the next.
 */
export class WriteQueue {
  /** The last write queued, settled either way; null when none is queued or running. */
  #last: Promise<void> | null = null;
  /** A queued write that has not started yet (kept only when callers join it). */
  #waiting: Promise<void> | null = null;
  readonly #join: boolean;

  /**
   * With `join`, a call made while a write is queued and not started yet shares that write
   * instead of queueing another: right for writes that take whatever is pending when they start
   * (a busy aggregator asks for one at every batch of entries).
   */
  constructor(opts: { join?: boolean } = {}) {
    this.#join = opts.join ?? false;
  }

  /** Runs `write` after every write queued before it; settles as it does. */
  run(write: () => Promise<void>): Promise<void> {
    if (this.#waiting) return this.#waiting;
    const run = (this.#last ?? Promise.resolve()).then(() => {
      this.#waiting = null;
      return write();
    });
    if (this.#join) this.#waiting = run;
    const settled = run.catch(() => {});
    this.#last = settled;
    void settled.then(() => {
      if (this.#last === settled) this.#last = null;
    });
    return run;
  }

  /** Settles when the writes queued so far have; null when there are none. */
  get busy(): Promise<void> | null {
    return this.#last;
  }
}
