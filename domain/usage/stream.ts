/**
 * The usage stream: an item for everything counted — each accepted usage event (written in the
 * event's own commit) and each flushed per-key verification delta (written by the flush in the
 * commit of the sum, through the SumBuffer's companion) — under time-ordered ids, kept 7 days.
 *
 * The items of one commit are stored as one page (`keys.usageItem(first id)`): their ids are
 * drawn together, so a page holds a contiguous run of ids, and a batch of 100 events costs one
 * write for the stream rather than 100 (half the cost of ingesting it).
 *
 * An id is drawn just before its commit, so of two writers the later id can commit first. A
 * reader therefore sees only items older than SETTLE_MS: an item that commits within that
 * time of its id (a commit, its lock retries, clock skew between instances) never lands behind
 * a cursor already handed out, so resuming from a cursor misses nothing.
 */
import { keys } from "../../kv/keys.ts";
import { newId, timePrefix } from "../shared/ids.ts";
import { type Services } from "../shared/services.ts";
import { DAY_MS, iso } from "../shared/time.ts";
import { VERIFICATIONS } from "../tenancy/plans.ts";

const USAGE_ITEM_TTL_MS = 7 * DAY_MS;
export const SETTLE_MS = 2_000;
/** Entries one read may look at before it answers with what it found (filters skip many). */
const SCAN_BUDGET = 2_000;
/** A live tail sends a heartbeat comment after this many polls without an item. */
export const HEARTBEAT_POLLS = 15;

export type UsageSource = "event" | "verify";

export interface UsageItem {
  id: string;
  tenant_id: string;
  key_id: string | null;
  metric: string;
  quantity: number;
  /** The event's timestamp; for a verify delta, its flush clamped into the delta's day. */
  timestamp: string;
  source: UsageSource;
  event_id: string | null;
}

/** The items of one commit, under the first one's id. */
export interface ItemPage {
  id: string;
  /** Deadline (epoch ms): expireIn is not prompt. */
  until: number;
  items: UsageItem[];
}

function pageMutation(items: UsageItem[], now: number): Deno.KvMutation {
  const page: ItemPage = { id: items[0].id, until: now + USAGE_ITEM_TTL_MS, items };
  return { type: "set", key: keys.usageItem(page.id), value: page, expireIn: USAGE_ITEM_TTL_MS };
}

/** The page of a commit's accepted usage events (at least one), to commit with them. */
export function eventItems(
  events: {
    tenantId: string;
    event: { id: string; key_id?: string; metric: string; quantity: number };
    at: number;
  }[],
  now: number,
): Deno.KvMutation {
  return pageMutation(
    events.map(({ tenantId, event, at }) => ({
      id: newId("usg", now),
      tenant_id: tenantId,
      key_id: event.key_id ?? null,
      metric: event.metric,
      quantity: event.quantity,
      timestamp: iso(at),
      source: "event",
      event_id: event.id,
    })),
    now,
  );
}

/**
 * The item of a flushed sum when it is a key's verifications on a day (keys.keyUsageDaily:
 * ["t", tenant, "key_usage", key, day]); null for any other counter. The SumBuffer's companion.
 */
export function verifyItem(key: Deno.KvKey, amount: bigint, now: number): Deno.KvMutation | null {
  if (key.length !== 5 || key[0] !== "t" || key[2] !== "key_usage") return null;
  const [, tenantId, , keyId, day] = key as string[];
  const dayStart = Date.parse(`${day}T00:00:00Z`);
  return pageMutation([{
    id: newId("usg", now),
    tenant_id: tenantId,
    key_id: keyId,
    metric: VERIFICATIONS,
    quantity: Number(amount),
    timestamp: iso(Math.min(Math.max(now, dayStart), dayStart + DAY_MS - 1)),
    source: "verify",
    event_id: null,
  }], now);
}

export interface StreamQuery {
  limit: number;
  /** The last item seen: items after it. */
  cursor?: string;
  /** Items counted at or after this instant (ms), when there is no cursor. */
  from?: number;
  tenant_id?: string;
  metric?: string;
}

export interface StreamPage {
  items: UsageItem[];
  /** Where to resume; also when has_more is false (poll again later from it). */
  next_cursor: string;
  has_more: boolean;
}

const idAt = (ms: number) => `usg_${timePrefix(ms)}`;
/** A cursor after every id drawn before `ms` and before every id drawn from `ms` on. */
const cursorBefore = (ms: number) => `${idAt(ms - 1)}${"Z".repeat(16)}`;

/**
 * Settled items in order: after `cursor`, from `from`, or else the latest `limit` (a tail's
 * start). Filtered by tenant and metric; expired ones are left out.
 */
export async function readUsageStream(svc: Services, q: StreamQuery): Promise<StreamPage> {
  const now = svc.now();
  const base = keys.usageItems();
  const oldest = idAt(now - USAGE_ITEM_TTL_MS);
  // Exclusive: every id of the last settled millisecond sorts before it.
  const settled = idAt(now - SETTLE_MS + 1);
  const keep = (item: UsageItem) =>
    (!q.tenant_id || item.tenant_id === q.tenant_id) && (!q.metric || item.metric === q.metric);

  if (q.cursor === undefined && q.from === undefined) {
    const items: UsageItem[] = [];
    let scanned = 0;
    const iter = svc.kv.list<ItemPage>(
      { start: [...base, oldest], end: [...base, settled] },
      { reverse: true, batchSize: Math.min(500, q.limit + 1) },
    );
    pages: for await (const { value: page } of iter) {
      if (page.until <= now) continue;
      for (let i = page.items.length - 1; i >= 0; i--) {
        if (keep(page.items[i])) items.push(page.items[i]);
        if (items.length === q.limit || ++scanned === SCAN_BUDGET) break pages;
      }
    }
    items.reverse();
    // Nothing yet: resume from the settled end, so what comes next is not skipped.
    return {
      items,
      next_cursor: items.at(-1)?.id ?? cursorBefore(now - SETTLE_MS + 1),
      has_more: false,
    };
  }

  const resume = q.cursor ?? cursorBefore(q.from!);
  let start = q.cursor !== undefined ? q.cursor : idAt(q.from!);
  // The cursor's own page, which may hold items after it (a page cut by `limit`); a cursor from
  // before retention has no page left.
  if (q.cursor !== undefined && q.cursor >= oldest) {
    for await (
      const e of svc.kv.list({ start: [...base, oldest], end: [...base, `${q.cursor}\u0000`] }, {
        reverse: true,
        limit: 1,
      })
    ) start = e.key.at(-1) as string;
  }
  if (start < oldest) start = oldest;
  // A cursor or a start not yet settled: nothing to read yet.
  if (start >= settled) return { items: [], next_cursor: resume, has_more: false };
  const items: UsageItem[] = [];
  let last: string | null = null;
  let scanned = 0;
  let hasMore = false;
  const iter = svc.kv.list<ItemPage>(
    { start: [...base, start], end: [...base, settled] },
    { batchSize: Math.min(500, q.limit + 1) },
  );
  pages: for await (const { value: page } of iter) {
    if (page.until <= now) continue;
    for (const item of page.items) {
      if (q.cursor !== undefined && item.id <= q.cursor) continue;
      if (item.id < start) continue;
      if (items.length === q.limit || scanned === SCAN_BUDGET) {
        hasMore = true;
        break pages;
      }
      scanned++;
      last = item.id;
      if (keep(item)) items.push(item);
    }
  }
  return { items, next_cursor: last ?? resume, has_more: hasMore };
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no timer behind. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * A live tail: batches of items as they settle, read by polling every `pollMs` (a KV watch
 * would not deliver sooner: items show once settled, and polling works alike on every
 * backend and across processes), and `null` as a heartbeat after HEARTBEAT_POLLS empty polls.
 * Ends when `signal` aborts.
 */
export async function* followUsageStream(
  svc: Services,
  q: StreamQuery,
  opts: { pollMs: number; signal: AbortSignal },
): AsyncGenerator<UsageItem[] | null> {
  let query = q;
  let idle = 0;
  while (!opts.signal.aborted) {
    const page = await readUsageStream(svc, query);
    if (opts.signal.aborted) return;
    if (page.items.length) {
      idle = 0;
      yield page.items;
    } else if (++idle % HEARTBEAT_POLLS === 0) yield null;
    query = { ...query, cursor: page.next_cursor, from: undefined };
    if (!page.has_more) await pause(opts.pollMs, opts.signal);
  }
}
