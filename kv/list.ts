/**
 * Cursor pagination over a KV range, with optional filtering and pointer resolution.
 * Cursors are Deno KV's own (stable under inserts, cheap to resume) with a check appended.
 */
import { createHash } from "node:crypto";
import { keys as kvKeys } from "./keys.ts";
import type { Versioned } from "./table.ts";

/** How many entries one page may scan before it returns what it found (short page + cursor). */
const SCAN_BUDGET = 2_000;

export class InvalidCursorError extends Error {
  constructor() {
    super("cursor is not valid for this list; start again without it");
  }
}

/**
 * A KV cursor is a position in the key space, and KV accepts almost any base64url string as
 * one (it cannot leave the selector's range). So the cursors handed out carry a check of the
 * cursor and the range it walks: one truncated, mistyped or taken from another list or filter
 * is refused with a clear error instead of silently restarting or ending the walk.
 */
function tagCursor(selector: Deno.KvListSelector, cursor: string): string {
  const range = JSON.stringify(selector, (_k, v) => typeof v === "bigint" ? `${v}n` : v);
  const check = createHash("sha256").update(`${range}\n${cursor}`).digest("hex").slice(0, 16);
  return `${cursor}.${check}`;
}

function untagCursor(selector: Deno.KvListSelector, tagged: string): string {
  const cursor = tagged.slice(0, Math.max(0, tagged.lastIndexOf(".")));
  if (!cursor || tagCursor(selector, cursor) !== tagged) throw new InvalidCursorError();
  return cursor;
}

export interface PageRequest {
  limit: number;
  cursor?: string;
  /** Matches to skip before the page starts (jump-to-page views). */
  offset?: number;
  /** 1-based page of `limit` items: an offset by another name (`offset` wins when both are given). */
  page?: number;
  /** Newest first when the keys are time-ordered ids. */
  reverse?: boolean;
}

export interface Page<T> {
  items: Versioned<T>[];
  next_cursor: string | null;
  has_more: boolean;
}

export interface ListSource<T> {
  selector: Deno.KvListSelector;
  /** Turns an entry into the record to return (e.g. follow a pointer); null skips it. */
  resolve?: (entry: Deno.KvEntry<unknown>) => Promise<Versioned<T> | null>;
  filter?: (record: T) => boolean;
}

/** The record behind `entry` when it belongs to the list (resolved, then filtered), else null. */
async function matchOf<T>(
  source: ListSource<T>,
  entry: Deno.KvEntry<unknown>,
): Promise<Versioned<T> | null> {
  const record = source.resolve ? await source.resolve(entry) : entry as Versioned<T>;
  return record && (!source.filter || source.filter(record.value)) ? record : null;
}

/** How many matches a page request skips: its offset, or the items of the pages before it. */
export const skipOf = (page: PageRequest) =>
  page.offset ?? (page.page ? (page.page - 1) * page.limit : 0);

export async function listPage<T>(
  kv: Deno.Kv,
  source: ListSource<T>,
  page: PageRequest,
): Promise<Page<T>> {
  const cursor = page.cursor ? untagCursor(source.selector, page.cursor) : undefined;
  const tagged = (c: string | null) => c === null ? null : tagCursor(source.selector, c);
  const iter = kv.list<unknown>(source.selector, {
    cursor,
    reverse: page.reverse,
    batchSize: Math.min(500, page.limit + skipOf(page) + 1),
  });
  const items: Versioned<T>[] = [];
  let toSkip = skipOf(page);
  let pageEnd: string | null = null;
  let scanned = 0;
  try {
    for await (const entry of iter) {
      const record = await matchOf(source, entry);
      if (record) {
        if (items.length === page.limit) {
          return { items, next_cursor: tagged(pageEnd), has_more: true };
        }
        if (toSkip > 0) toSkip--;
        else {
          items.push(record);
          pageEnd = iter.cursor;
        }
      }
      if (++scanned >= SCAN_BUDGET) {
        return { items, next_cursor: tagged(iter.cursor), has_more: true };
      }
    }
  } catch (err) {
    if (page.cursor && err instanceof TypeError && /cursor/i.test(err.message)) {
      throw new InvalidCursorError();
    }
    throw err;
  }
  return { items, next_cursor: null, has_more: false };
}

/** Past this many matches counting stops: the total is then an estimate (the offset bound too). */
export const TOTAL_BOUND = 10_000;

export interface Counted {
  total: number;
  /** True when counting stopped at TOTAL_BOUND. */
  total_is_estimate?: true;
}

/** How many records `source` holds (resolved and filtered as a page is), up to TOTAL_BOUND. */
export async function countMatches<T>(kv: Deno.Kv, source: ListSource<T>): Promise<Counted> {
  let total = 0;
  for await (const entry of kv.list<unknown>(source.selector, { batchSize: 500 })) {
    if (await matchOf(source, entry) && ++total >= TOTAL_BOUND) {
      return { total, total_is_estimate: true };
    }
  }
  return { total };
}

/** Whether the maintained list counts and their indexes cover every record (kv/keys.ts). */
export async function countsReady(kv: Deno.Kv): Promise<boolean> {
  return (await kv.get(kvKeys.listCountsReady())).versionstamp !== null;
}

/** The sum of KvU64 counters (0 for one never written), read in one call. */
export async function readCounters(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<number> {
  let sum = 0;
  // getMany takes at most 10 keys.
  for (let i = 0; i < keys.length; i += 10) {
    for (const e of await kv.getMany<Deno.KvU64[]>(keys.slice(i, i + 10))) {
      sum += e.value ? Number(e.value.value) : 0;
    }
  }
  return sum;
}

/**
 * A page with the list's total: from `counter` (a maintained count, exact and cheap) when one
 * keeps it for this view, else counted (countMatches).
 */
export async function listCounted<T>(
  kv: Deno.Kv,
  source: ListSource<T>,
  page: PageRequest,
  counter?: (() => Promise<number>) | null,
): Promise<Page<T> & Counted> {
  const [found, count] = await Promise.all([
    listPage(kv, source, page),
    counter ? counter().then((total) => ({ total })) : countMatches(kv, source),
  ]);
  return { ...found, ...count };
}
