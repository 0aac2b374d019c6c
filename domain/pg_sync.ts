/**
 * What the aggregator copies to Postgres when DATABASE_URL is set (DESIGN §6): request logs and
 * accepted usage events (held in memory until written), the daily counters a flush touched, and
 * the audit trail. KV stays the source of truth for counters and audit; Postgres serves the
 * log, audit-export and daily reads.
 *
 * - Daily counters are copied as absolute values read back from KV after each commit, and
 *   Postgres keeps the greatest value seen: a retried or repeated copy never counts twice, and
 *   an overtaken one never lowers a counter.
 * - The audit trail is tailed by time-ordered id from a cursor kept in Postgres, re-reading a
 *   short window behind it: an event committed a little after a later id is still copied.
 * - While Postgres is down, rows wait in memory (at most `maxBuffered`; past that the oldest
 *   are let go and counted) and every write retries at the next flush. Verify never waits on it.
 */
import { getBatched } from "../kv/batch.ts";
import { keys } from "../kv/keys.ts";
import type { DailyRow, PgAnalytics, UsageEventRow } from "../pg/analytics.ts";
import { isUnreachable } from "../pg/client.ts";
import { AppError } from "./errors.ts";
import { type AuditEvent, auditUsers } from "./audit.ts";
import { timeOfId, timePrefix } from "./ids.ts";
import type { RequestLog } from "./request_logs.ts";
import { iso } from "./services.ts";

/** How far behind the audit cursor each tail re-reads: covers commits that land out of id order. */
const AUDIT_LOOKBACK_MS = 10_000;
const AUDIT_CURSOR = "audit-tail";

export interface PgSyncOptions {
  /** Log entries and usage events held while Postgres is unreachable, at most. */
  maxBuffered: number;
  now?: () => number;
}

/** The daily counter a KV key holds, if it is one that Postgres copies. */
export function dailyRowOf(key: Deno.KvKey, value: number): DailyRow | null {
  if (key[0] === "traffic" && key.length === 3) {
    return { kind: "traffic", metric: key[1] as string, day: key[2] as string, quantity: value };
  }
  if (key[0] === "t" && key[2] === "usage_daily" && key.length === 5) {
    return {
      kind: "usage",
      tenant_id: key[1] as string,
      metric: key[3] as string,
      day: key[4] as string,
      quantity: value,
    };
  }
  return null;
}

export class PgSync {
  readonly analytics: PgAnalytics;
  readonly #kv: Deno.Kv;
  readonly #opts: Required<PgSyncOptions>;
  #logs: RequestLog[] = [];
  #usageEvents: UsageEventRow[] = [];
  /** Daily counters committed since the last copy, by their key's JSON. */
  #dirty = new Map<string, Deno.KvKey>();
  #writing: Promise<void> | null = null;
  #auditCursor: string | null = null;
  /** Audit ids copied within the re-read window. */
  #auditSeen = new Set<string>();
  readonly stats = {
    writes: 0,
    write_errors: 0,
    last_write_at: null as number | null,
    last_write_duration_ms: null as number | null,
    last_error: null as string | null,
    dropped_rows: 0,
    logs_written: 0,
    usage_events_written: 0,
    daily_rows_written: 0,
    audit_events_copied: 0,
  };

  constructor(kv: Deno.Kv, analytics: PgAnalytics, opts: PgSyncOptions) {
    this.#kv = kv;
    this.analytics = analytics;
    this.#opts = { now: Date.now, ...opts };
  }

  /** Runs a read on Postgres; an unreachable server is a 503, not a 500. */
  async read<T>(query: (pg: PgAnalytics) => Promise<T>): Promise<T> {
    try {
      return await query(this.analytics);
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      throw new AppError("UNAVAILABLE", "the analytics store (Postgres) is unreachable; try again");
    }
  }

  addLogs(entries: RequestLog[]) {
    this.#logs.push(...entries);
    this.#bound();
  }

  addUsageEvents(rows: UsageEventRow[]) {
    this.#usageEvents.push(...rows);
    this.#bound();
  }

  /** Notes a committed counter; the daily ones are copied at the next write. */
  touched(key: Deno.KvKey) {
    if (dailyRowOf(key, 0)) this.#dirty.set(JSON.stringify(key), key);
  }

  #bound() {
    let over = this.#logs.length + this.#usageEvents.length - this.#opts.maxBuffered;
    if (over <= 0) return;
    this.stats.dropped_rows += over;
    const fromLogs = Math.min(over, this.#logs.length);
    this.#logs.splice(0, fromLogs);
    over -= fromLogs;
    this.#usageEvents.splice(0, over);
  }

  get buffered() {
    return {
      logs: this.#logs.length,
      usage_events: this.#usageEvents.length,
      daily_counters: this.#dirty.size,
    };
  }

  /** Copies everything waiting, then tails the audit trail; one write at a time. */
  write(): Promise<void> {
    const run = (this.#writing ?? Promise.resolve()).then(() => this.#write());
    const settled = run.catch(() => {});
    this.#writing = settled;
    void settled.then(() => {
      if (this.#writing === settled) this.#writing = null;
    });
    return run;
  }

  async #write() {
    const started = this.#opts.now();
    const t0 = performance.now();
    const logs = this.#logs;
    const events = this.#usageEvents;
    const dirty = this.#dirty;
    this.#logs = [];
    this.#usageEvents = [];
    this.#dirty = new Map();
    let step = 0;
    try {
      await this.analytics.insertLogs(logs);
      step = 1;
      this.stats.logs_written += logs.length;
      await this.analytics.insertUsageEvents(events);
      step = 2;
      this.stats.usage_events_written += events.length;
      const rows = await this.#readDaily([...dirty.values()]);
      await this.analytics.upsertDaily(rows);
      step = 3;
      this.stats.daily_rows_written += rows.length;
      this.stats.audit_events_copied += await this.#tailAudit();
    } catch (err) {
      // What was not written goes back, ahead of what came in meanwhile.
      if (step < 1) this.#logs = [...logs, ...this.#logs];
      if (step < 2) this.#usageEvents = [...events, ...this.#usageEvents];
      if (step < 3) { for (const [name, key] of dirty) this.#dirty.set(name, key); }
      this.#bound();
      this.stats.write_errors++;
      this.stats.last_error = err instanceof Error ? err.message : String(err);
      throw err;
    } finally {
      this.stats.writes++;
      this.stats.last_write_at = started;
      this.stats.last_write_duration_ms = Math.round(performance.now() - t0);
    }
  }

  async #readDaily(dailyKeys: Deno.KvKey[]): Promise<DailyRow[]> {
    const entries = await Promise.all(dailyKeys.map((k) => getBatched<Deno.KvU64>(this.#kv, k)));
    return entries.flatMap((e) => e.value ? [dailyRowOf(e.key, Number(e.value.value))!] : []);
  }

  /**
   * Copies audit events from a little behind the cursor on; returns how many. Ids copied in
   * the window are remembered, so the re-read window is not written again and again.
   */
  async #tailAudit(): Promise<number> {
    const cursor = this.#auditCursor ?? await this.analytics.cursor(AUDIT_CURSOR);
    const since = (cursor ? timeOfId(cursor) : this.#opts.now()) - AUDIT_LOOKBACK_MS;
    for (const id of this.#auditSeen) if (timeOfId(id) < since) this.#auditSeen.delete(id);
    const copied = await copyAudit(
      this.#kv,
      this.analytics,
      `aud_${timePrefix(since)}`,
      (id) => !this.#auditSeen.has(id),
      (ids) => ids.forEach((id) => this.#auditSeen.add(id)),
    );
    if (copied.last && (!cursor || copied.last > cursor)) {
      await this.analytics.setCursor(AUDIT_CURSOR, copied.last);
      this.#auditCursor = copied.last;
    }
    return copied.count;
  }

  status() {
    const s = this.stats;
    return {
      enabled: true,
      ...s,
      last_write_at: s.last_write_at ? iso(s.last_write_at) : null,
      buffered: this.buffered,
      max_buffered: this.#opts.maxBuffered,
    };
  }
}

/**
 * Upserts the audit events from id `from` on that `wanted` accepts, in batches (`onBatch` gets
 * each batch's ids once written); returns how many and the last id.
 */
export async function copyAudit(
  kv: Deno.Kv,
  analytics: PgAnalytics,
  from: string,
  wanted: (id: string) => boolean,
  onBatch: (ids: string[]) => Promise<void> | void,
): Promise<{ count: number; last: string | null }> {
  let batch: AuditEvent[] = [];
  let count = 0;
  let last: string | null = null;
  const send = async () => {
    await analytics.upsertAudit(batch.map((event) => ({ event, userIds: auditUsers(event) })));
    count += batch.length;
    last = batch.at(-1)!.id;
    await onBatch(batch.map((e) => e.id));
    batch = [];
  };
  const selector = { start: [...keys.audits(), from], end: [...keys.audits(), "aud_~"] };
  for await (const e of kv.list<AuditEvent>(selector, { batchSize: 500 })) {
    if (!wanted(e.value.id)) continue;
    batch.push(e.value);
    if (batch.length === 500) await send();
  }
  if (batch.length) await send();
  return { count, last };
}
