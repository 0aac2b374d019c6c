/**
 * Request logs: one entry per (sampled) request, written behind by the aggregator under
 * time-ordered ids, so a time filter is a key range and retention is a range delete.
 */
import { keys } from "../../kv/keys.ts";
import { deleteRange } from "../../kv/prune.ts";
import {
  type Counted,
  InvalidCursorError,
  listCounted,
  type Page,
  type PageRequest,
  skipOf,
} from "../../kv/list.ts";
import { timePrefix } from "../shared/ids.ts";
import type { Services } from "../shared/services.ts";
import type { LogFilter, LogLevel, RequestLog } from "../../pg/analytics.ts";

/** warn for 4xx, error for 5xx. */
export const levelOf = (status: number): LogLevel =>
  status >= 500 ? "error" : status >= 400 ? "warn" : "info";

function logSource(f: LogFilter) {
  const base = keys.requestLogs();
  const lo = f.from !== undefined ? `log_${timePrefix(f.from)}` : "log_";
  const hi = f.to !== undefined ? `log_${timePrefix(f.to + 1)}` : "log_~";
  return {
    selector: { start: [...base, lo], end: [...base, hi] },
    filter: (e: RequestLog) =>
      (!f.level || e.level === f.level) &&
      (f.status === undefined || e.status === f.status) &&
      (!f.tenant_id || e.tenant_id === f.tenant_id) &&
      (!f.path || e.path.startsWith(f.path)),
  };
}

const LOG_ID = /^log_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Newest first. From Postgres when configured: a cursor is then the last id seen, encoded. */
export async function listLogs(
  svc: Services,
  filter: LogFilter,
  page: PageRequest,
): Promise<Page<RequestLog> & Partial<Counted>> {
  if (!svc.pg) return listCounted(svc.kv, logSource(filter), { ...page, reverse: true });
  let beforeId: string | undefined;
  if (page.cursor) {
    beforeId = decodeCursor(page.cursor);
    if (!LOG_ID.test(beforeId)) throw new InvalidCursorError();
  }
  const rows = await svc.pg.read((pg) =>
    pg.listLogs(filter, { limit: page.limit + 1, beforeId, offset: beforeId ? 0 : skipOf(page) })
  );
  const items = rows.slice(0, page.limit);
  const hasMore = rows.length > page.limit;
  return {
    items: items.map((value) => ({ value, versionstamp: "" })),
    next_cursor: hasMore ? encodeCursor(items.at(-1)!.id) : null,
    has_more: hasMore,
  };
}

const encodeCursor = (id: string) => btoa(id).replaceAll("=", "");

function decodeCursor(cursor: string): string {
  try {
    return atob(cursor);
  } catch {
    throw new InvalidCursorError();
  }
}

/** Every matching entry, oldest first, read in batches: for streaming exports. */
export async function* exportLogs(svc: Services, filter: LogFilter): AsyncGenerator<RequestLog> {
  if (svc.pg) return yield* svc.pg.analytics.exportLogs(filter);
  const source = logSource(filter);
  for await (const entry of svc.kv.list<RequestLog>(source.selector, { batchSize: 500 })) {
    if (source.filter(entry.value)) yield entry.value;
  }
}

/** Deletes every entry logged before `before` (ms); returns how many. */
export function pruneLogs(svc: Services, before: number): Promise<number> {
  return deleteRange(svc.kv, {
    start: [...keys.requestLogs(), "log_"],
    end: [...keys.requestLogs(), `log_${timePrefix(before)}`],
  });
}

/**
 * Deletes entries older than `retentionDays` (default: the aggregator's, LOG_RETENTION_DAYS)
 * and records the prune in the aggregator's status; returns how many went.
 */
export async function pruneExpiredLogs(svc: Services, retentionDays?: number): Promise<number> {
  const days = retentionDays ?? svc.aggregator.options.retentionDays;
  const before = svc.now() - days * 86_400_000;
  // KV too when Postgres is configured: it holds what was logged before Postgres was.
  const deleted = await pruneLogs(svc, before) +
    (svc.pg ? await svc.pg.read((pg) => pg.pruneLogs(new Date(before))) : 0);
  svc.aggregator.notePrune(deleted);
  return deleted;
}
