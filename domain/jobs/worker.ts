/**
 * The job runner of one process: KV queue wake-ups handed to `wake`, and a short in-process
 * sweep every `sweepIntervalMs` for what the queue did not deliver (no queues over KV Connect,
 * slow cross-process wake-ups on one file). Claims are leased, so running the sweep in every
 * process and the listener beside it never runs a job twice. `stop` ends the sweep and waits
 * for the runs in flight (shutdown, before KV closes); a run cut short is retried after its lease.
 */
import { handleWakeUp, type JobHandlers, runDueJobs } from "./jobs.ts";
import type { Services } from "../shared/services.ts";

export interface JobWorkerOptions {
  sweepIntervalMs: number;
  /** Jobs one sweep runs at once (default 4): a slow one does not hold up the rest. */
  concurrency?: number;
  /** Where failures of the runner itself go (a handler's failure is the job's last_error). */
  onError: (err: unknown) => void;
}

export class JobWorker {
  #timer: ReturnType<typeof setInterval> | null = null;
  #sweeping = false;
  #stopped = false;
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    readonly svc: Services,
    readonly handlers: JobHandlers,
    readonly options: JobWorkerOptions,
  ) {}

  start() {
    if (this.#timer !== null || this.#stopped) return;
    const timer = setInterval(() => this.#sweep(), this.options.sweepIntervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Handles a KV queue message (a job's wake-up); ignored once stopping. */
  wake(message: unknown): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return this.#track(handleWakeUp(this.svc, this.handlers, message));
  }

  /** Stops sweeping and waits for the runs in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.all(this.#inFlight);
  }

  #sweep() {
    // One sweep at a time: a long one is not piled on by the next tick.
    if (this.#sweeping || this.#stopped) return;
    this.#sweeping = true;
    const run = runDueJobs(this.svc, this.handlers, {
      concurrency: this.options.concurrency ?? 4,
    });
    void this.#track(run).finally(() => this.#sweeping = false);
  }

  #track(run: Promise<unknown>): Promise<void> {
    const tracked = run.then(() => {}, this.options.onError);
    this.#inFlight.add(tracked);
    return tracked.finally(() => this.#inFlight.delete(tracked));
  }
}
