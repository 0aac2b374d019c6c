/**
 * Request log entries are stored in pages: one KV value holds entries of one flush, oldest
 * first, keyed by its newest entry's id. One value per entry cost about 16 µs of CPU each (V8
 * serialization and a SQLite row); in a page an entry costs about a third of that
 * (`deno task bench:logs`). Stores written by older code hold one entry per value: a page of one.
 *
 * Pages of several processes overlap in time, so reading merges them. Newest first, an entry is
 * given once no unread page can hold a newer one: a page's entries are at most its key. Oldest
 * first, once no unread page can hold an older one: a page's entries span at most PAGE_SPAN_MS.
 */
import { idTime, timePrefix } from "../shared/ids.ts";
import type { RequestLog } from "../../pg/analytics.ts";

/** A page holds at most this many entries. */
const PAGE_ENTRIES = 100;
/** And at most this many bytes by `sizeOf`, which overestimates: KV takes 65,536 per value. */
const PAGE_BYTES = 60_000;
/** A page's entries are at most this far apart: what a range by time reads beyond its end. */
export const PAGE_SPAN_MS = 1_000;

/** Above an entry's V8 serialization: field names, numbers and ids take under 320 bytes. */
const sizeOf = (e: RequestLog) =>
  320 + e.path.length + (e.route?.length ?? 0) + (e.user_agent?.length ?? 0) +
  (e.ip?.length ?? 0) + e.request_id.length + (e.error_code?.length ?? 0) +
  (e.tenant_id?.length ?? 0) + (e.principal_id?.length ?? 0);

/** Oldest first: ids are time-ordered and unique. */
const byId = (a: RequestLog, b: RequestLog) => a.id < b.id ? -1 : 1;

/** The lowest id made `ms` after `id` was. */
const idAfter = (id: string, ms: number) => `log_${timePrefix(idTime(id)! + ms)}`;

/** `entries` in id order, cut into pages by count, size and time span. */
export function pagesOf(entries: RequestLog[]): RequestLog[][] {
  const sorted = entries.toSorted(byId);
  const pages: RequestLog[][] = [];
  let page: RequestLog[] = [];
  let bytes = 0;
  let spanEnd = "";
  for (const entry of sorted) {
    const size = sizeOf(entry);
    if (
      page.length &&
      (page.length === PAGE_ENTRIES || bytes + size > PAGE_BYTES || entry.id >= spanEnd)
    ) {
      pages.push(page);
      page = [];
    }
    if (!page.length) {
      bytes = 0;
      spanEnd = idAfter(entry.id, PAGE_SPAN_MS + 1);
    }
    page.push(entry);
    bytes += size;
  }
  if (page.length) pages.push(page);
  return pages;
}

/** A stored page: `id` is its newest entry's, and its key's. */
export interface LogPage {
  id: string;
  entries: RequestLog[];
}

export const logPage = (entries: RequestLog[]): LogPage => ({ id: entries.at(-1)!.id, entries });

/** A stored value's entries: a page, or one entry written by older code. */
export const entriesOf = (value: unknown): RequestLog[] =>
  (value as LogPage).entries ?? [value as RequestLog];

/**
 * Where a walk newest first stands: every matching entry newer than `before` was given, and the
 * pages still holding one not given have keys up to `end` (`inclusive`, or below it).
 */
export interface Position {
  before: string | null;
  end: string;
  inclusive: boolean;
}

interface Held {
  entry: RequestLog;
  page: string;
}

/** The entries that `keep` keeps in the pages of `selector`, newest first, exactly. */
export class NewestFirst {
  readonly #pages: AsyncIterator<Deno.KvEntry<unknown>>;
  /** Read and kept but not given yet, newest first. */
  #held: Held[] = [];
  #next: Deno.KvEntry<unknown> | null | undefined;
  readonly #keep: (e: RequestLog) => boolean;
  #position: Position;
  #budget: number;
  /** Every entry was given. */
  ended = false;

  /** Walks the pages of `selector`, entries below `before`, reading at most `budget` pages. */
  constructor(
    kv: Deno.Kv,
    selector: { start: Deno.KvKey; end: Deno.KvKey },
    keep: (e: RequestLog) => boolean,
    before: string | null,
    budget: number,
  ) {
    // A page is up to 60 KB: a first page of 50 entries needs one or two of them.
    this.#pages = kv.list(selector, { reverse: true, batchSize: 4 })[Symbol.asyncIterator]();
    this.#keep = before === null ? keep : (e) => e.id < before && keep(e);
    this.#position = { before, end: String(selector.end.at(-1)), inclusive: false };
    this.#budget = budget;
  }

  /** The next entry; null at the end (`ended`) or when the budget of pages is spent. */
  async next(): Promise<RequestLog | null> {
    while (true) {
      if (this.#next === undefined) {
        const r = await this.#pages.next();
        this.#next = r.done ? null : r.value;
      }
      const page = this.#next;
      const newest = this.#held[0];
      // Unread pages hold nothing above the next one's key.
      if (newest && (page === null || newest.entry.id > String(page.key.at(-1)))) {
        this.#held.shift();
        this.#position.before = newest.entry.id;
        return newest.entry;
      }
      if (page === null) {
        this.ended = true;
        return null;
      }
      if (this.#budget-- <= 0) return null;
      this.#next = undefined;
      const key = String(page.key.at(-1));
      for (const entry of entriesOf(page.value)) {
        if (this.#keep(entry)) this.#held.push({ entry, page: key });
      }
      this.#held.sort((a, b) => byId(b.entry, a.entry));
      this.#position.end = key;
    }
  }

  /** Where the walk stands after the entries given so far. */
  position(): Position {
    const { before, end } = this.#position;
    if (!this.#held.length) return { before, end, inclusive: false };
    // Pages read but not given in full; those unread have lower keys than any of them.
    let newestHeld = this.#held[0].page;
    for (const h of this.#held) if (h.page > newestHeld) newestHeld = h.page;
    return { before, end: newestHeld, inclusive: true };
  }
}

/** The entries in the pages of `selector`, oldest first, exactly. */
export async function* oldestFirst(
  kv: Deno.Kv,
  selector: { start: Deno.KvKey; end: Deno.KvKey },
): AsyncGenerator<RequestLog> {
  let held: RequestLog[] = [];
  for await (const page of kv.list(selector, { batchSize: 20 })) {
    // This page and those after it hold nothing below its key's time less the span.
    const floor = idAfter(String(page.key.at(-1)), -PAGE_SPAN_MS);
    let given = 0;
    while (given < held.length && held[given].id < floor) yield held[given++];
    held = held.slice(given).concat(entriesOf(page.value)).sort(byId);
  }
  yield* held;
}
