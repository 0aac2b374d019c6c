/**
 * The Postgres analytics store: batched writes of what the aggregator collects, and the reads
 * behind the log, audit-export and daily endpoints when DATABASE_URL is set. Rows keep the
 * shapes the API returns, so either store answers the same.
 */
import type { Json, PgStore, Sql } from "./client.ts";

/** An item of the usage stream (domain/usage/stream.ts): an accepted event or a verify delta. */
export interface UsageEventRow {
  id: string;
  tenant_id: string;
  key_id: string | null;
  metric: string;
  quantity: number;
  occurred_at: string;
  source: string;
  /** The id the platform gave an event (deduplicated for 24 h); null for a verify delta. */
  event_id: string | null;
}

/** A daily counter's absolute value: per tenant (`usage`) or platform-wide (`traffic`). */
export type DailyRow =
  | { kind: "usage"; tenant_id: string; metric: string; day: string; quantity: number }
  | { kind: "traffic"; metric: string; day: string; quantity: number };

export type LogLevel = "info" | "warn" | "error";

export interface RequestLog {
  id: string;
  at: string;
  method: string;
  /** The route's pattern (`/v1/tenants/{tenant}`), null when no route matched. */
  route: string | null;
  path: string;
  status: number;
  duration_ms: number;
  bytes_in: number;
  /** Null for a streamed answer (its size is known only when it ends). */
  bytes_out: number | null;
  tenant_id: string | null;
  principal_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string;
  level: LogLevel;
  error_code: string | null;
  /** Written by POST /v1/admin/logs/test to check the pipeline end to end. */
  test?: true;
}

/** An entry's fields in the order every store and export gives them (`test` aside). */
export const LOG_FIELDS = [
  "id",
  "at",
  "level",
  "method",
  "route",
  "path",
  "status",
  "duration_ms",
  "bytes_in",
  "bytes_out",
  "tenant_id",
  "principal_id",
  "ip",
  "user_agent",
  "request_id",
  "error_code",
] as const satisfies readonly (keyof RequestLog)[];

export interface LogFilter {
  level?: LogLevel;
  status?: number;
  tenant_id?: string;
  /** Path prefix. */
  path?: string;
  /** Inclusive bounds, in ms. */
  from?: number;
  to?: number;
}

export interface AuditFilter {
  /** Events where this user is the actor or the subject. */
  user?: string;
  tenant_id?: string;
  actor?: string;
  actions?: string[];
  resource_type?: string;
  resource_id?: string;
  /** Inclusive bounds, in ms. */
  from?: number;
  to?: number;
}

/** The columns of an audit event that its filters use; the whole event is kept as JSON. */
export interface AuditRow {
  id: string;
  tenant_id: string | null;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  created_at: string;
}

/** Rows per insert statement: far below Postgres's 65,535 parameters. */
const ROWS_PER_INSERT = 500;

const LOG_COLUMNS = [...LOG_FIELDS, "test"] as const;

const toLogRow = (e: RequestLog) => ({ ...e, test: e.test ?? false });

/** A row (selected in LOG_COLUMNS order) as the entry KV holds: same fields, same order. */
function fromLogRow(row: Record<string, unknown>): RequestLog {
  const { test, ...entry } = { ...row, at: (row.at as Date).toISOString() } as
    & RequestLog
    & { test: boolean };
  return test ? { ...entry, test } : entry;
}

/** The users an audit event is about (its actor, its subject): the `user` filter's column. */
function auditRow(e: AuditRow, userIds: string[]) {
  return {
    id: e.id,
    tenant_id: e.tenant_id,
    actor_id: e.actor_id,
    action: e.action,
    resource_type: e.resource_type,
    resource_id: e.resource_id,
    user_ids: userIds,
    event: e as unknown as Json,
  };
}

export class PgAnalytics {
  readonly store: PgStore;
  readonly sql: Sql;

  constructor(store: PgStore) {
    this.store = store;
    this.sql = store.sql;
  }

  /** Runs `write` per chunk of rows; returns the rows inserted or changed. */
  async #insert<T extends object>(
    rows: T[],
    write: (sql: Sql, chunk: T[]) => Promise<{ count: number }>,
  ): Promise<number> {
    let count = 0;
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      count += (await write(this.sql, rows.slice(i, i + ROWS_PER_INSERT))).count;
    }
    return count;
  }

  /** Inserts log entries; one already there (a retried batch) is left as it is. */
  insertLogs(entries: RequestLog[]): Promise<number> {
    return this.#insert(
      entries.map(toLogRow),
      (sql, chunk) =>
        sql`insert into request_logs ${sql(chunk, ...LOG_COLUMNS)} on conflict (id) do nothing`,
    );
  }

  /** Inserts or replaces audit events (an erasure rewrites them scrubbed). */
  upsertAudit(events: { event: AuditRow; userIds: string[] }[]): Promise<number> {
    return this.#insert(
      events.map((e) => auditRow(e.event, e.userIds)),
      (sql, chunk) =>
        sql`insert into audit_events ${sql(chunk)}
          on conflict (id) do update set event = excluded.event, user_ids = excluded.user_ids`,
    );
  }

  insertUsageEvents(rows: UsageEventRow[]): Promise<number> {
    return this.#insert(
      rows,
      (sql, chunk) => sql`insert into usage_events ${sql(chunk)} on conflict (id) do nothing`,
    );
  }

  /**
   * Writes daily counters' absolute values. A value only ever rises: a stale read (another
   * process wrote since) never lowers what a fresher one wrote.
   */
  async upsertDaily(rows: DailyRow[]): Promise<number> {
    const usage = rows.filter((r) => r.kind === "usage").map(({ kind: _, ...r }) => r);
    const traffic = rows.filter((r) => r.kind === "traffic").map(({ kind: _, ...r }) => r);
    return await this.#insert(
      usage,
      (sql, chunk) =>
        sql`insert into usage_daily ${sql(chunk)} on conflict (tenant_id, metric, day)
        do update set quantity = excluded.quantity
        where usage_daily.quantity < excluded.quantity`,
    ) +
      await this.#insert(
        traffic,
        (sql, chunk) =>
          sql`insert into traffic_daily ${sql(chunk)} on conflict (metric, day)
        do update set quantity = excluded.quantity
        where traffic_daily.quantity < excluded.quantity`,
      );
  }

  async cursor(name: string): Promise<string | null> {
    const [row] = await this.sql<{ position: string }[]>`
      select position from sync_cursors where name = ${name}`;
    return row?.position ?? null;
  }

  async setCursor(name: string, position: string): Promise<void> {
    await this.sql`insert into sync_cursors (name, position) values (${name}, ${position})
      on conflict (name) do update set position = excluded.position`;
  }

  #logWhere(f: LogFilter, beforeId?: string) {
    const sql = this.sql;
    const parts = [
      f.level ? sql`level = ${f.level}` : null,
      f.status !== undefined ? sql`status = ${f.status}` : null,
      f.tenant_id ? sql`tenant_id = ${f.tenant_id}` : null,
      // starts_with: a prefix, whatever % or _ it holds.
      f.path ? sql`starts_with(path, ${f.path})` : null,
      f.from !== undefined ? sql`at >= ${new Date(f.from)}` : null,
      f.to !== undefined ? sql`at <= ${new Date(f.to)}` : null,
      beforeId ? sql`id < ${beforeId}` : null,
    ].filter((p) => p !== null);
    return parts.reduce((acc, p) => sql`${acc} and ${p}`, sql`true`);
  }

  /** A page of entries, newest first, after the entry `beforeId` when given. */
  async listLogs(
    f: LogFilter,
    page: { limit: number; beforeId?: string; offset?: number },
  ): Promise<RequestLog[]> {
    const rows = await this.sql`select ${this.sql(LOG_COLUMNS)} from request_logs
      where ${this.#logWhere(f, page.beforeId)}
      order by id desc limit ${page.limit} offset ${page.offset ?? 0}`;
    return rows.map(fromLogRow);
  }

  /** Every matching entry, oldest first, read in batches by a cursor. */
  async *exportLogs(f: LogFilter): AsyncGenerator<RequestLog> {
    const sql = this.sql;
    const cursor = sql`select ${sql(LOG_COLUMNS)} from request_logs where ${this.#logWhere(f)}
      order by id`
      .cursor(500);
    for await (const rows of cursor) yield* rows.map(fromLogRow);
  }

  /** Deletes entries logged before `beforeId`'s time; returns how many. */
  async pruneLogs(before: Date): Promise<number> {
    const result = await this.sql`delete from request_logs where at < ${before}`;
    return result.count;
  }

  /** Every matching audit event, oldest first. */
  async *exportAudit<E extends AuditRow>(f: AuditFilter): AsyncGenerator<E> {
    const sql = this.sql;
    const parts = [
      f.user ? sql`user_ids @> ${[f.user]}::text[]` : null,
      f.tenant_id ? sql`tenant_id = ${f.tenant_id}` : null,
      f.actor ? sql`actor_id = ${f.actor}` : null,
      f.actions?.length ? sql`action = any(${f.actions}::text[])` : null,
      f.resource_type ? sql`resource_type = ${f.resource_type}` : null,
      f.resource_id ? sql`resource_id = ${f.resource_id}` : null,
      f.from !== undefined ? sql`(event->>'created_at')::timestamptz >= ${new Date(f.from)}` : null,
      f.to !== undefined ? sql`(event->>'created_at')::timestamptz <= ${new Date(f.to)}` : null,
    ].filter((p) => p !== null);
    const where = parts.reduce((acc, p) => sql`${acc} and ${p}`, sql`true`);
    const cursor = sql<{ event: E }[]>`select event from audit_events where ${where}
      order by id`.cursor(500);
    for await (const rows of cursor) yield* rows.map((r) => r.event);
  }

  /** A tenant's metric per day in [from, to] (YYYY-MM-DD): only the days with a value. */
  async usageDays(tenantId: string, metric: string, from: string, to: string) {
    const rows = await this.sql<{ day: string; quantity: number }[]>`
      select to_char(day, 'YYYY-MM-DD') as day, quantity from usage_daily
      where tenant_id = ${tenantId} and metric = ${metric} and day between ${from} and ${to}`;
    return new Map(rows.map((r) => [r.day, r.quantity]));
  }

  /** Platform traffic metrics per day in [from, to]: metric → day → value. */
  async trafficDays(metrics: readonly string[], from: string, to: string) {
    const rows = await this.sql<{ metric: string; day: string; quantity: number }[]>`
      select metric, to_char(day, 'YYYY-MM-DD') as day, quantity from traffic_daily
      where metric = any(${metrics as string[]}::text[]) and day between ${from} and ${to}`;
    const out = new Map<string, Map<string, number>>(metrics.map((m) => [m, new Map()]));
    for (const r of rows) out.get(r.metric)!.set(r.day, r.quantity);
    return out;
  }
}
