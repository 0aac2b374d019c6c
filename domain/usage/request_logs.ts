/**
 * Request logs: one entry per (sampled) request, written behind by the aggregator in pages
 * keyed by time-ordered ids (log_pages.ts), so a time filter is a key range and retention is a
 * range delete.
 */
import { keys } from "../../kv/keys.ts";
import { deleteRange } from "../../kv/prune.ts";
import {
  type Counted,
  InvalidCursorError,
  type Page,
  type PageRequest,
  skipOf,
  TOTAL_BOUND,
} from "../../kv/list.ts";
import type { Versioned } from "../../kv/table.ts";
import {
  entriesOf,
  logPage,
  NewestFirst,
  oldestFirst,
  PAGE_SPAN_MS,
  type Position,
} from "./log_pages.ts";
import { timePrefix } from "../shared/ids.ts";
import type { Services } from "../shared/services.ts";
import type { LogFilter, LogLevel, RequestLog } from "../../pg/analytics.ts";

/** warn for 4xx, error for 5xx. */
export const levelOf = (status: number): LogLevel =>
  status >= 500 ? "error" : status >= 400 ? "warn" : "info";

/** The pages that may hold entries of `f`'s time range, and the entries of `f`. */
function logSource(f: LogFilter) {
  const base = keys.requestLogs();
  const from = f.from !== undefined ? `log_${timePrefix(f.from)}` : "log_";
  const to = f.to !== undefined ? `log_${timePrefix(f.to + 1)}` : "log_~";
  // A page is keyed by its newest entry: one up to a span past `to` may hold older ones.
  const end = f.to !== undefined ? `log_${timePrefix(f.to + 1 + PAGE_SPAN_MS)}` : "log_~";
  return {
    selector: { start: [...base, from], end: [...base, end] },
    keep: (e: RequestLog) =>
      e.id >= from && e.id < to &&
      (!f.level || e.level === f.level) &&
      (f.status === undefined || e.status === f.status) &&
      (!f.tenant_id || e.tenant_id === f.tenant_id) &&
      (!f.path || e.path.startsWith(f.path)),
  };
}

const LOG_ID = /^log_[0-9A-HJKMNP-TV-Z]{26}$/;
/** Pages one request reads at most before it answers what it found (a short page and a cursor). */
const SCAN_PAGES = 100;

/** Newest first. From Postgres when configured: a cursor is then the last id seen, encoded. */
export function listLogs(
  svc: Services,
  filter: LogFilter,
  page: PageRequest,
): Promise<Page<RequestLog> & Partial<Counted>> {
  return svc.pg ? listPostgresLogs(svc, filter, page) : listKvLogs(svc.kv, filter, page);
}

async function listKvLogs(
  kv: Deno.Kv,
  filter: LogFilter,
  page: PageRequest,
): Promise<Page<RequestLog> & Counted> {
  const source = logSource(filter);
  let selector = source.selector;
  let before: string | null = null;
  if (page.cursor) {
    const at = decodePosition(page.cursor);
    const end = at.inclusive ? `${at.end}\0` : at.end;
    if (end < String(selector.end.at(-1))) {
      selector = { ...selector, end: [...keys.requestLogs(), end] };
    }
    before = at.before;
  }
  const walk = new NewestFirst(kv, selector, source.keep, before, SCAN_PAGES);
  const [found, counted] = await Promise.all([
    pageOf(walk, page.limit, page.cursor ? 0 : skipOf(page)),
    countLogs(kv, source),
  ]);
  return { ...found, ...counted };
}

/** The walk's next `limit` entries after `skip`, and where to resume. */
async function pageOf(walk: NewestFirst, limit: number, skip: number): Promise<Page<RequestLog>> {
  const items: Versioned<RequestLog>[] = [];
  for (let entry; items.length < limit && (entry = await walk.next());) {
    if (skip > 0) skip--;
    else items.push({ value: entry, versionstamp: "" });
  }
  const position = walk.position();
  let hasMore = !walk.ended;
  // A full page looks one entry ahead (a short one ended, or spent its budget of pages).
  if (hasMore && items.length === limit) hasMore = await walk.next() !== null || !walk.ended;
  return { items, next_cursor: hasMore ? encodePosition(position) : null, has_more: hasMore };
}

/** How many entries `source` holds, up to TOTAL_BOUND. */
async function countLogs(
  kv: Deno.Kv,
  source: ReturnType<typeof logSource>,
): Promise<Counted> {
  let total = 0;
  for await (const page of kv.list(source.selector, { batchSize: 100 })) {
    for (const entry of entriesOf(page.value)) {
      if (source.keep(entry) && ++total >= TOTAL_BOUND) return { total, total_is_estimate: true };
    }
  }
  return { total };
}

const encodePosition = (p: Position) =>
  btoa(JSON.stringify([p.before, p.end, p.inclusive ? 1 : 0])).replaceAll("=", "");

function decodePosition(cursor: string): Position {
  try {
    // Bounds within the logs' keys: a forged one can only narrow the walk.
    const [before, end, inclusive] = JSON.parse(atob(cursor));
    const bound = (b: unknown) => typeof b === "string" && b.startsWith("log_") && b.length <= 40;
    if ((before === null || bound(before)) && bound(end) && (inclusive === 0 || inclusive === 1)) {
      return { before, end, inclusive: inclusive === 1 };
    }
  } catch {
    // not base64 or not JSON: refused below
  }
  throw new InvalidCursorError();
}

async function listPostgresLogs(
  svc: Services,
  filter: LogFilter,
  page: PageRequest,
): Promise<Page<RequestLog>> {
  let beforeId: string | undefined;
  if (page.cursor) {
    beforeId = decodeCursor(page.cursor);
    if (!LOG_ID.test(beforeId)) throw new InvalidCursorError();
  }
  const rows = await svc.pg!.read((pg) =>
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

/** Every matching entry, oldest first: for streaming exports. */
export async function* exportLogs(svc: Services, filter: LogFilter): AsyncGenerator<RequestLog> {
  if (svc.pg) return yield* svc.pg.analytics.exportLogs(filter);
  const source = logSource(filter);
  for await (const entry of oldestFirst(svc.kv, source.selector)) {
    if (source.keep(entry)) yield entry;
  }
}

/**
 * Deletes every entry logged before `before` (ms); returns how many. Pages wholly older go; a
 * page across the bound keeps its newer entries.
 */
export async function pruneLogs(svc: Services, before: number): Promise<number> {
  const base = keys.requestLogs();
  const bound = `log_${timePrefix(before)}`;
  let deleted = await deleteRange(
    svc.kv,
    { start: [...base, "log_"], end: [...base, bound] },
    undefined,
    (page) => entriesOf(page.value).length,
  );
  const across = {
    start: [...base, bound],
    end: [...base, `log_${timePrefix(before + PAGE_SPAN_MS + 1)}`],
  };
  for await (const page of svc.kv.list(across)) {
    const entries = entriesOf(page.value);
    const kept = entries.filter((e) => e.id >= bound);
    if (kept.length === entries.length) continue;
    // Checked: a prune running elsewhere at once trims it once.
    const op = svc.kv.atomic().check(page).set(page.key, logPage(kept));
    if ((await op.commit()).ok) deleted += entries.length - kept.length;
  }
  return deleted;
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
