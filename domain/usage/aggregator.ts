/**
 * The write-behind aggregator, one per process (ARCHITECTURE.md, write-behind): usage deltas
 * (through the SumBuffer it owns), platform traffic per day and request-log entries are collected
 * in memory and written every flush interval, when `flushMaxEntries` wait, and on shutdown.
 *
 * - Traffic (requests, errors, bytes, verifications) is kept as plain numbers per day and turned
 *   into counter deltas at each flush: counting a request costs a few additions, no lookup.
 * - Log entries are sampled: a warning or an error is always kept, a success with probability
 *   `sampleRate`. A failed write keeps its entries for the next flush; past `maxPendingLogs`
 *   (the store is down for long) the oldest are let go and counted.
 * - With a Postgres sync (DATABASE_URL), log entries go to Postgres instead of KV, and each
 *   flush also copies the daily counters it touched and the new audit events (domain/usage/pg_sync.ts).
 * - `enabled: false` sheds the analytics (logs and traffic), counted as dropped; quota and
 *   usage counters go through the SumBuffer either way.
 * - KV units counted by the `meter` join the day's traffic (`kv_reads`, `kv_writes`) when there
 *   was traffic since the last move, or at an explicit flush: a flush's own writes are counted
 *   by the next one, and an idle process must not keep writing just to count that.
 */
import { keys } from "../../kv/keys.ts";
import { WriteQueue } from "../../kv/write_queue.ts";
import type { KvMeter } from "../../kv/metered.ts";
import type { SumBuffer } from "../../kv/sum_buffer.ts";
import { newId } from "../shared/ids.ts";
import type {
  FlushHealth,
  RequestRecord,
  TrafficRecorder,
  TrafficRecorderStatus,
} from "../shared/services.ts";
import { answerRateDeltas, AnswerTally } from "./answer_rates.ts";
import type { PgSync } from "./pg_sync.ts";
import { logPage, pagesOf } from "./log_pages.ts";
import { levelOf } from "./request_logs.ts";
import { dayOf, iso } from "../shared/time.ts";
import type { RequestLog } from "../../pg/analytics.ts";

export interface AggregatorOptions {
  enabled: boolean;
  flushIntervalMs: number;
  flushMaxEntries: number;
  /** 0–1: the share of successful requests logged. */
  sampleRate: number;
  retentionDays: number;
  /** Entries held while writes fail, at most (default 100 × flushMaxEntries). */
  maxPendingLogs?: number;
  /** Where logs and daily counters are copied when Postgres is configured. */
  pg?: PgSync | null;
  now?: () => number;
  random?: () => number;
  /** KV units this process used (kv/metered.ts), folded into the traffic counters. */
  meter?: KvMeter | null;
}

export const TRAFFIC_METRICS = [
  "requests",
  "errors",
  "client_errors",
  "bytes_in",
  "bytes_out",
  "verifications",
  "kv_reads",
  "kv_writes",
] as const;
export type TrafficMetric = typeof TRAFFIC_METRICS[number];
type Traffic = Record<TrafficMetric, number>;

/** Pages of log entries per commit: at most 300 KB, within KV's limits on one atomic operation. */
const PAGES_PER_COMMIT = 5;

export class Aggregator implements TrafficRecorder {
  readonly counters: SumBuffer;
  readonly options: Required<AggregatorOptions>;
  readonly #kv: Deno.Kv;
  #traffic = new Map<string, Traffic>();
  /** Answers per minute by status class, for the alert rules (usage/answer_rates.ts). */
  readonly #answers = new AnswerTally();
  /** Before any flush succeeded, waiting writes have waited since the aggregator began. */
  readonly #createdAt: number;
  #logs: RequestLog[] = [];
  #enqueuedTraffic = 0;
  readonly #logWrites = new WriteQueue();
  #timer: ReturnType<typeof setInterval> | null = null;
  readonly stats = {
    dropped_when_disabled: 0,
    sampled_logs: 0,
    skipped_logs: 0,
    dropped_logs: 0,
    log_flushes: 0,
    log_flush_errors: 0,
    last_log_flush_at: null as number | null,
    last_flush_log_count: 0,
    last_log_error: null as string | null,
    last_log_success_at: null as number | null,
    log_errors_in_row: 0,
    prunes: 0,
    last_prune_at: null as number | null,
    last_prune_rows_deleted: 0,
  };

  constructor(counters: SumBuffer, kv: Deno.Kv, opts: AggregatorOptions) {
    this.counters = counters;
    this.#kv = kv;
    this.options = {
      maxPendingLogs: 100 * opts.flushMaxEntries,
      pg: null,
      now: Date.now,
      random: Math.random,
      meter: null,
      ...opts,
    };
    this.#createdAt = this.options.now();
  }

  /** False when analytics are shed: callers skip measuring the request and call drop(). */
  get collecting(): boolean {
    return this.options.enabled;
  }

  /** Counts a request not collected because the aggregator is disabled. */
  drop(): void {
    this.stats.dropped_when_disabled++;
  }

  /** Today's traffic numbers, started at zero. */
  #today(now = this.options.now()): Traffic {
    const day = dayOf(now);
    let t = this.#traffic.get(day);
    if (!t) this.#traffic.set(day, t = zeroTraffic());
    return t;
  }

  /**
   * Counts one answered request; true when its log entry is to be kept (then hand it to
   * log()). The hot path builds an entry only for the requests sampled.
   */
  count(r: Pick<RequestRecord, "status" | "bytes_in" | "bytes_out" | "verification">): boolean {
    if (!this.options.enabled) {
      this.drop();
      return false;
    }
    const now = this.options.now();
    this.#answers.add(now, r.status);
    const t = this.#today(now);
    t.requests++;
    if (r.status >= 500) t.errors++;
    else if (r.status >= 400) t.client_errors++;
    t.bytes_in += r.bytes_in;
    t.bytes_out += r.bytes_out ?? 0;
    if (r.verification) t.verifications++;
    this.#enqueuedTraffic++;
    if (r.status < 400 && this.options.random() >= this.options.sampleRate) {
      this.stats.skipped_logs++;
      return false;
    }
    this.stats.sampled_logs++;
    return true;
  }

  /** Queues a log entry, whatever the sampling (POST /v1/admin/logs/test marks it `test`). */
  log(f: Omit<RequestLog, "id" | "at" | "level">): string {
    const now = this.options.now();
    const id = newId("log", now);
    // Fields in one order (LOG_FIELDS) whoever logs: both stores answer alike.
    const entry: RequestLog = {
      id,
      at: iso(now),
      level: levelOf(f.status),
      method: f.method,
      route: f.route,
      path: f.path,
      status: f.status,
      duration_ms: f.duration_ms,
      bytes_in: f.bytes_in,
      bytes_out: f.bytes_out,
      tenant_id: f.tenant_id,
      principal_id: f.principal_id,
      ip: f.ip,
      user_agent: f.user_agent,
      request_id: f.request_id,
      error_code: f.error_code,
    };
    if (f.test) entry.test = true;
    this.#enqueue(entry);
    return id;
  }

  /** count(), and log() when sampled: for callers that hold the whole entry anyway. */
  record(r: RequestRecord): void {
    if (!this.count(r)) return;
    const { verification: _, ...fields } = r;
    this.log(fields);
  }

  /** Adds bytes of a streamed answer, known when the stream ends. */
  addBytesOut(bytes: number): void {
    if (this.options.enabled) this.#today().bytes_out += bytes;
  }

  #enqueue(entry: RequestLog) {
    this.#logs.push(entry);
    if (this.#logs.length > this.options.maxPendingLogs) {
      // The oldest tenth at once: one splice per request would move the whole buffer each time.
      const drop = this.#logs.length - Math.floor(this.options.maxPendingLogs * 0.9);
      this.#logs.splice(0, drop);
      this.stats.dropped_logs += drop;
    }
    if (this.#logs.length >= this.options.flushMaxEntries && !this.#logWrites.busy) {
      void this.#writeLogs().catch(() => {});
    }
  }

  /** Traffic still in memory for `day` (reads add it, so they are exact in this process). */
  pendingTraffic(metric: TrafficMetric, day: string): number {
    const held = this.#traffic.get(day)?.[metric] ?? 0;
    const meter = this.options.meter;
    if (!meter || day !== dayOf(this.options.now())) return held;
    return held + (metric === "kv_reads" ? meter.reads : metric === "kv_writes" ? meter.writes : 0);
  }

  get pendingLogs(): number {
    return this.#logs.length;
  }

  /**
   * Moves the traffic numbers into counter deltas (written by the SumBuffer's flush); the KV
   * units too when there was traffic, or `always` (explicit flushes).
   */
  #moveTraffic(always = false) {
    const meter = this.options.meter;
    if (meter && this.options.enabled && (always || this.#traffic.size)) {
      const units = meter.take();
      if (units.reads || units.writes) {
        const t = this.#today();
        t.kv_reads += units.reads;
        t.kv_writes += units.writes;
      }
    }
    for (const [day, t] of this.#traffic) {
      for (const metric of TRAFFIC_METRICS) {
        if (t[metric]) this.counters.add(keys.traffic(metric, day), t[metric]);
      }
    }
    this.#traffic = new Map();
    for (const [key, n] of answerRateDeltas(this.#answers.take())) this.counters.add(key, n);
  }

  /**
   * Writes pending log entries (to KV, or hands them to the Postgres sync, which then writes
   * them with the touched counters), in pages (log_pages.ts); failed pages go back to the front.
   */
  #writeLogs(): Promise<void> {
    const pg = this.options.pg;
    if (pg) {
      pg.addLogs(this.#logs);
      this.stats.last_flush_log_count = this.#logs.length;
      this.#logs = [];
      return pg.write();
    }
    return this.#logWrites.run(async () => {
      const pages = pagesOf(this.#logs);
      this.#logs = [];
      const started = this.options.now();
      let done = 0;
      let written = 0;
      try {
        for (; done < pages.length; done += PAGES_PER_COMMIT) {
          const op = this.#kv.atomic();
          let entries = 0;
          for (const page of pages.slice(done, done + PAGES_PER_COMMIT).map(logPage)) {
            op.set(keys.requestLog(page.id), page);
            entries += page.entries.length;
          }
          await op.commit();
          written += entries;
        }
        this.stats.log_errors_in_row = 0;
        this.stats.last_log_success_at = started;
      } catch (err) {
        this.#logs = [...pages.slice(done).flat(), ...this.#logs];
        this.stats.log_flush_errors++;
        this.stats.log_errors_in_row++;
        this.stats.last_log_error = err instanceof Error ? err.message : String(err);
        throw err;
      } finally {
        this.stats.log_flushes++;
        this.stats.last_log_flush_at = started;
        this.stats.last_flush_log_count = written;
      }
    });
  }

  /** Writes everything pending: traffic and usage deltas, then log entries. */
  flush(): Promise<void> {
    return this.#writeAll(() => this.counters.flush());
  }

  /** Traffic into counter deltas, then the counters (by `writeCounters`) and the logs together. */
  async #writeAll(writeCounters: () => Promise<void>): Promise<void> {
    this.#moveTraffic(true);
    const pg = this.options.pg;
    // With Postgres, the copy follows the counters so it carries what they just committed.
    const results = await Promise.allSettled([writeCounters(), pg ? null : this.#writeLogs()]);
    if (pg) results.push(...await Promise.allSettled([this.#writeLogs()]));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Starts the timers: the counters' own (eager and lazy flushes) and the logs'. */
  start() {
    if (this.#timer !== null) return;
    this.counters.start();
    const timer = setInterval(() => {
      // Before the counters' next tick: traffic goes out with the next counter flush.
      this.#moveTraffic();
      if (this.#logs.length || this.options.pg) void this.#writeLogs().catch(() => {});
    }, this.options.flushIntervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Stops the timers and writes what is left (shutdown). */
  stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    return this.#writeAll(() => this.counters.stop());
  }

  /** Changes settings while running (runtime configuration); a new interval restarts the timers. */
  tune(change: { sampleRate?: number; retentionDays?: number; flushIntervalMs?: number }) {
    const { sampleRate, retentionDays, flushIntervalMs } = change;
    if (sampleRate !== undefined) this.options.sampleRate = sampleRate;
    if (retentionDays !== undefined) this.options.retentionDays = retentionDays;
    if (flushIntervalMs === undefined || flushIntervalMs === this.options.flushIntervalMs) return;
    this.options.flushIntervalMs = flushIntervalMs;
    this.counters.setFlushInterval(flushIntervalMs);
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.start();
  }

  notePrune(deleted: number) {
    this.stats.prunes++;
    this.stats.last_prune_at = this.options.now();
    this.stats.last_prune_rows_deleted = deleted;
  }

  /**
   * Whether writes keep up: the time since the last flush that succeeded while counters or KV
   * log entries wait (in memory only), and the longer streak of failed flushes.
   */
  flushHealth(): FlushHealth {
    const now = this.options.now();
    const c = this.counters.stats;
    const waited = (waiting: boolean, since: number | null) =>
      waiting ? now - (since ?? this.#createdAt) : 0;
    return {
      lag_ms: Math.max(
        0,
        waited(this.counters.size > 0, c.last_success_at),
        waited(this.#logs.length > 0, this.stats.last_log_success_at),
      ),
      errors_in_row: Math.max(c.errors_in_row, this.stats.log_errors_in_row),
    };
  }

  /** The aggregator's state, from memory only (GET /v1/admin/usage/aggregator-status). */
  status(): TrafficRecorderStatus {
    const c = this.counters.stats;
    const s = this.stats;
    const lastFlush = Math.max(c.last_flush_at ?? 0, s.last_log_flush_at ?? 0);
    return {
      enabled: this.options.enabled,
      flush_interval_ms: this.options.flushIntervalMs,
      flush_max_entries: this.options.flushMaxEntries,
      request_log_sample_rate: this.options.sampleRate,
      enqueued_deltas: c.enqueued + this.#enqueuedTraffic,
      dropped_when_disabled: s.dropped_when_disabled,
      sampled_logs: s.sampled_logs,
      skipped_logs: s.skipped_logs,
      dropped_logs: s.dropped_logs,
      flushes: c.flushes + s.log_flushes,
      flush_errors: c.flush_errors + s.log_flush_errors,
      last_flush_at: lastFlush ? iso(lastFlush) : null,
      last_flush_duration_ms: c.last_flush_duration_ms,
      last_flush_bucket_count: c.last_flush_keys,
      last_flush_log_count: s.last_flush_log_count,
      last_error: s.last_log_error ?? c.last_error,
      pending_buckets: this.counters.size + this.#traffic.size * TRAFFIC_METRICS.length,
      pending_logs: this.#logs.length,
      prunes: s.prunes,
      last_prune_at: s.last_prune_at ? iso(s.last_prune_at) : null,
      last_prune_rows_deleted: s.last_prune_rows_deleted,
    };
  }
}

const zeroTraffic = (): Traffic => ({
  requests: 0,
  errors: 0,
  client_errors: 0,
  bytes_in: 0,
  bytes_out: 0,
  verifications: 0,
  kv_reads: 0,
  kv_writes: 0,
});
