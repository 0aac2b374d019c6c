/**
 * What the aggregator copies to Postgres when DATABASE_URL is set (ARCHITECTURE.md, write-behind):
 * request logs (held in memory until written), the daily counters a flush touched, and two
 * time-ordered KV families tailed by id: the audit trail and the usage stream's items (accepted
 * usage events and flushed verification deltas). KV stays the source of truth for counters, audit
 * and the stream; Postgres serves the log, audit-export and daily reads.
 *
 * - Daily counters are copied as absolute values read back from KV after each commit, and
 *   Postgres keeps the greatest value seen: a retried or repeated copy never counts twice, and
 *   an overtaken one never lowers a counter.
 * - A tail reads from a little behind its cursor (kept in Postgres), so a record committed a
 *   little after a later id is still copied; what it copied in that window it remembers.
 * - While Postgres is down, log entries wait in memory (at most `maxBuffered`; past that the
 *   oldest are let go and counted), tails and counters simply resume from where they were, and
 *   every write retries at the next flush. Verify never waits on it.
 */
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import { WriteQueue } from "../../kv/write_queue.ts";
import { type DailyRow, type PgAnalytics, type RequestLog } from "../../pg/analytics.ts";
import { isUnreachable } from "../../pg/client.ts";
import { type AuditEvent, auditUsers } from "../audit/audit.ts";
import { AppError } from "../shared/errors.ts";
import { idTime, timePrefix } from "../shared/ids.ts";
import type { ItemPage } from "./stream.ts";
import type { AnalyticsCopy, AnalyticsCopyStatus } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

/** How far behind its cursor a tail re-reads: covers commits that land out of id order. */
const TAIL_LOOKBACK_MS = 10_000;
const BATCH = 500;

export interface PgSyncOptions {
  /** Log entries held while Postgres is unreachable, at most. */
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

/** A KV family under time-ordered ids (`{idPrefix}_…`) that Postgres holds a copy of. */
export interface CopiedFamily<T extends { id: string }> {
  name: string;
  base: Deno.KvKey;
  idPrefix: string;
  /** Writes a batch (idempotently); returns the rows written. */
  write(pg: PgAnalytics, batch: T[]): Promise<number>;
}

export const AUDIT_COPY: CopiedFamily<AuditEvent> = {
  name: "audit",
  base: keys.audits(),
  idPrefix: "aud",
  write: (pg, batch) =>
    pg.upsertAudit(batch.map((event) => ({ event, userIds: auditUsers(event) }))),
};

/** The usage stream's pages, each copied as its items. */
export const USAGE_ITEM_COPY: CopiedFamily<ItemPage> = {
  name: "usage_items",
  base: keys.usageItems(),
  idPrefix: "usg",
  write: (pg, pages) =>
    pg.insertUsageEvents(
      pages.flatMap((page) =>
        page.items.map(({ timestamp, ...item }) => ({ ...item, occurred_at: timestamp }))
      ),
    ),
};

/**
 * Copies the records of `family` from id `from` on that `wanted` accepts, in batches (`onBatch`
 * gets each batch's ids once written); returns the rows written and the last id.
 */
export async function copyFamily<T extends { id: string }>(
  kv: Deno.Kv,
  pg: PgAnalytics,
  family: CopiedFamily<T>,
  from: string,
  wanted: (id: string) => boolean,
  onBatch: (ids: string[]) => Promise<void> | void,
): Promise<{ count: number; last: string | null }> {
  let batch: T[] = [];
  let count = 0;
  let last: string | null = null;
  const send = async () => {
    count += await family.write(pg, batch);
    last = batch.at(-1)!.id;
    await onBatch(batch.map((r) => r.id));
    batch = [];
  };
  const selector = { start: [...family.base, from], end: [...family.base, `${family.idPrefix}_~`] };
  for await (const e of kv.list<T>(selector, { batchSize: BATCH })) {
    if (!wanted(e.value.id)) continue;
    batch.push(e.value);
    if (batch.length === BATCH) await send();
  }
  if (batch.length) await send();
  return { count, last };
}

/** Follows one family: copies what is new since the cursor, re-reading a short window behind it. */
class Tail<T extends { id: string }> {
  #cursor: string | null = null;
  /** Ids copied within the re-read window. */
  readonly #seen = new Set<string>();

  constructor(readonly family: CopiedFamily<T>) {}

  get cursorName() {
    return `${this.family.name}-tail`;
  }

  /** Copies the new records; returns how many. With no cursor yet, starts `now` − the window. */
  async run(kv: Deno.Kv, pg: PgAnalytics, now: number): Promise<number> {
    const cursor = this.#cursor ?? await pg.cursor(this.cursorName);
    const since = (cursor ? idTime(cursor) ?? now : now) - TAIL_LOOKBACK_MS;
    for (const id of this.#seen) if ((idTime(id) ?? 0) < since) this.#seen.delete(id);
    const copied = await copyFamily(
      kv,
      pg,
      this.family,
      `${this.family.idPrefix}_${timePrefix(since)}`,
      (id) => !this.#seen.has(id),
      (ids) => ids.forEach((id) => this.#seen.add(id)),
    );
    if (copied.last && (!cursor || copied.last > cursor)) {
      await pg.setCursor(this.cursorName, copied.last);
      this.#cursor = copied.last;
    }
    return copied.count;
  }
}

export class PgSync implements AnalyticsCopy {
  readonly analytics: PgAnalytics;
  readonly #kv: Deno.Kv;
  readonly #opts: Required<PgSyncOptions>;
  #logs: RequestLog[] = [];
  /** Daily counters committed since the last copy, by their key's JSON. */
  #dirty = new Map<string, Deno.KvKey>();
  readonly #writes = new WriteQueue({ join: true });
  readonly #audit = new Tail(AUDIT_COPY);
  readonly #usage = new Tail(USAGE_ITEM_COPY);
  readonly stats = {
    writes: 0,
    write_errors: 0,
    last_write_at: null as number | null,
    last_write_duration_ms: null as number | null,
    last_error: null as string | null,
    dropped_rows: 0,
    logs_written: 0,
    daily_rows_written: 0,
    audit_events_copied: 0,
    usage_items_copied: 0,
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
    // concat, not push(...): a backlog can hold more entries than a call takes arguments.
    this.#logs = this.#logs.concat(entries);
    const over = this.#logs.length - this.#opts.maxBuffered;
    if (over > 0) {
      this.#logs.splice(0, over);
      this.stats.dropped_rows += over;
    }
  }

  /** Notes a committed counter; the daily ones are copied at the next write. */
  touched(key: Deno.KvKey) {
    if (dailyRowOf(key, 0)) this.#markDirty(JSON.stringify(key), key);
  }

  /**
   * While Postgres is unreachable, counters pile up here: past `maxBuffered` new ones are
   * dropped (counted as dropped rows). KV keeps their value; the next touch copies it whole.
   */
  #markDirty(name: string, key: Deno.KvKey) {
    if (this.#dirty.size >= this.#opts.maxBuffered && !this.#dirty.has(name)) {
      this.stats.dropped_rows++;
      return;
    }
    this.#dirty.set(name, key);
  }

  get buffered() {
    return { logs: this.#logs.length, daily_counters: this.#dirty.size };
  }

  /**
   * Writes the logs and touched counters, then runs the tails; one write at a time. A write
   * already waiting its turn takes whatever arrives before it starts, so callers share it
   * rather than queueing one each (a busy aggregator asks at every batch of log entries).
   */
  write(): Promise<void> {
    return this.#writes.run(() => this.#write());
  }

  async #write() {
    const started = this.#opts.now();
    const t0 = performance.now();
    const logs = this.#logs;
    const dirty = this.#dirty;
    this.#logs = [];
    this.#dirty = new Map();
    let step = 0;
    try {
      this.stats.logs_written += await this.analytics.insertLogs(logs);
      step = 1;
      const rows = await this.#readDaily([...dirty.values()]);
      this.stats.daily_rows_written += await this.analytics.upsertDaily(rows);
      step = 2;
      this.stats.audit_events_copied += await this.#audit.run(this.#kv, this.analytics, started);
      this.stats.usage_items_copied += await this.#usage.run(this.#kv, this.analytics, started);
    } catch (err) {
      // What was not written goes back, ahead of what came in meanwhile.
      if (step < 1) this.addLogs(logs.concat(this.#logs.splice(0)));
      if (step < 2) { for (const [name, key] of dirty) this.#markDirty(name, key); }
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

  status(): AnalyticsCopyStatus {
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
