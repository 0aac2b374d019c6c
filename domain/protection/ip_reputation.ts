/**
 * IP reputation: what each source address did lately, and the score it earns.
 *
 * Processes count failed logins, failed token authentications, 429s and other 4xx answers per
 * address in memory (protection/ip_guard.ts) and add them here every second, per minute, to the
 * address's record. The score is the weighted sum over the last WINDOW_MINUTES minutes (a
 * sliding window of one-minute buckets). When it reaches the threshold the address is blocked
 * automatically for a period that doubles with each automatic block of the last day (15 min,
 * 30 min, 1 h … up to the maximum), unless it is allowlisted or a loopback address (a proxy on
 * the same host would make every client one address, as fail2ban's default `ignoreip` knows).
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import type { Versioned } from "../../kv/table.ts";
import { badRequest } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { canonicalIp, inCidrs, parseCidr } from "../shared/ip_address.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import {
  addBlock,
  createBlock,
  type IpBlock,
  type IpRules,
  liftBlock,
  type NewBlock,
} from "./ip_rules.ts";

export const ACTIVITY_KINDS = [
  "login_failures",
  "auth_failures",
  "rate_limited",
  "client_errors",
  "blocked_requests",
] as const;
export type ActivityKind = typeof ACTIVITY_KINDS[number];
export type Activity = Record<ActivityKind, number>;

/** What one event adds to the score. Refused requests of a blocked address add nothing. */
export const SCORE_WEIGHTS: Activity = {
  login_failures: 5,
  auth_failures: 5,
  rate_limited: 1,
  client_errors: 0.5,
  blocked_requests: 0,
};
export const WINDOW_MINUTES = 15;
/** Past this, earlier automatic blocks no longer lengthen the next one. */
const BLOCK_MEMORY_MS = 24 * 3_600_000;
/** A record outlives its address's last activity by this much (its block history with it). */
const RECORD_TTL_MS = 30 * 86_400_000;
const HISTORY_LENGTH = 20;

export interface ReputationSettings {
  /** The score at which an address is blocked automatically (0: never). */
  blockScore: number;
  /** The first automatic block's length; each next one within a day doubles it. */
  blockMinutes: number;
  maxBlockHours: number;
}

export const DEFAULT_REPUTATION: ReputationSettings = {
  blockScore: 100,
  blockMinutes: 15,
  maxBlockHours: 24,
};

/** A block as the address's history keeps it. */
export interface BlockHistoryEntry {
  id: string;
  source: IpBlock["source"];
  reason: string;
  score: number | null;
  started_at: string;
  expires_at: string | null;
  lifted_at: string | null;
}

export interface IpReputation {
  ip: string;
  /** One-minute buckets of the window, oldest first (minute = epoch ms / 60,000). */
  minutes: { minute: number; activity: Activity }[];
  totals: Activity;
  first_seen_at: string;
  last_seen_at: string;
  /** Automatic blocks in a row (each within a day of the last): the next one's doubling. */
  auto_blocks: number;
  last_auto_block_at: string | null;
  /** Newest first. */
  blocks: BlockHistoryEntry[];
}

export const noActivity = (): Activity => ({
  login_failures: 0,
  auth_failures: 0,
  rate_limited: 0,
  client_errors: 0,
  blocked_requests: 0,
});

const minuteOf = (ms: number) => Math.floor(ms / 60_000);

/** The activity of the window that ends at `now`. */
export function windowActivity(rec: IpReputation, now: number): Activity {
  const since = minuteOf(now) - WINDOW_MINUTES;
  const sum = noActivity();
  for (const { minute, activity } of rec.minutes) {
    if (minute <= since) continue;
    for (const k of ACTIVITY_KINDS) sum[k] += activity[k];
  }
  return sum;
}

export const scoreOf = (a: Activity) =>
  Math.round(ACTIVITY_KINDS.reduce((s, k) => s + a[k] * SCORE_WEIGHTS[k], 0) * 10) / 10;

const fresh = (ip: string, now: number): IpReputation => ({
  ip,
  minutes: [],
  totals: noActivity(),
  first_seen_at: iso(now),
  last_seen_at: iso(now),
  auto_blocks: 0,
  last_auto_block_at: null,
  blocks: [],
});

/** `rec` with `added` counted in the minute of `now`, and buckets past the window dropped. */
function withActivity(rec: IpReputation, added: Activity, now: number): IpReputation {
  const minute = minuteOf(now);
  const minutes = rec.minutes.filter((m) => m.minute > minute - WINDOW_MINUTES)
    .map((m) => ({ minute: m.minute, activity: { ...m.activity } }));
  let bucket = minutes.find((m) => m.minute === minute);
  if (!bucket) minutes.push(bucket = { minute, activity: noActivity() });
  const totals = { ...rec.totals };
  for (const k of ACTIVITY_KINDS) {
    bucket.activity[k] += added[k];
    totals[k] += added[k];
  }
  return { ...rec, minutes, totals, last_seen_at: iso(now) };
}

const LOOPBACK = [parseCidr("127.0.0.0/8")!, parseCidr("::1")!];

/** The length of the next automatic block of `rec`, and the run it continues. */
function nextBlock(rec: IpReputation, now: number, s: ReputationSettings) {
  const last = rec.last_auto_block_at ? Date.parse(rec.last_auto_block_at) : -Infinity;
  const run = now - last < BLOCK_MEMORY_MS ? rec.auto_blocks : 0;
  const ms = Math.min(s.blockMinutes * 60_000 * 2 ** run, s.maxBlockHours * 3_600_000);
  return { run: run + 1, ms };
}

const historyOf = (b: IpBlock): BlockHistoryEntry => ({
  id: b.id,
  source: b.source,
  reason: b.reason,
  score: b.score,
  started_at: b.created_at,
  expires_at: b.expires_at,
  lifted_at: null,
});

/**
 * Adds an address's activity to its record; blocks it when its score reaches the threshold.
 * Returns the automatic block made, or null.
 */
export async function addActivity(
  svc: Services,
  ip: string,
  added: Activity,
  settings: ReputationSettings,
  rules: IpRules,
): Promise<IpBlock | null> {
  const key = keys.ipReputation(ip);
  return await retrying(async () => {
    const entry = await svc.kv.get<IpReputation>(key);
    const now = svc.now();
    let rec = withActivity(entry.value ?? fresh(ip, now), added, now);
    const score = scoreOf(windowActivity(rec, now));
    const op = svc.kv.atomic().check(entry);
    let block: IpBlock | null = null;
    if (
      settings.blockScore > 0 && score >= settings.blockScore && !rules.blockOf(ip, now) &&
      !rules.allows(ip) && !inCidrs(ip, LOOPBACK)
    ) {
      const { run, ms } = nextBlock(rec, now, settings);
      block = {
        id: newId("ipb", now),
        cidr: ip.includes(":") ? `${ip}/128` : `${ip}/32`,
        ip,
        reason: `reputation score ${score} reached ${settings.blockScore}`,
        source: "auto",
        score,
        created_at: iso(now),
        created_by: SYSTEM_ACTOR.id,
        expires_at: iso(now + ms),
      };
      rec = {
        ...rec,
        auto_blocks: run,
        last_auto_block_at: iso(now),
        blocks: [historyOf(block), ...rec.blocks].slice(0, HISTORY_LENGTH),
      };
      addBlock(op, now, SYSTEM_ACTOR, block);
    }
    op.set(key, rec, { expireIn: RECORD_TTL_MS });
    return (await commit(op)) ? block : CONFLICT;
  });
}

/**
 * Adds to `op` the history of an operator's block of one address. Lifting also clears the
 * address's window, or its next activity would block it again at once.
 */
function noteBlockChange(svc: Services, change: "created" | "lifted") {
  return async (op: Deno.AtomicOperation, block: IpBlock): Promise<void> => {
    if (block.ip === null) return;
    const key = keys.ipReputation(block.ip);
    const entry = await svc.kv.get<IpReputation>(key);
    const now = svc.now();
    const rec = entry.value ?? fresh(block.ip, now);
    const next: IpReputation = change === "created"
      ? { ...rec, blocks: [historyOf(block), ...rec.blocks].slice(0, HISTORY_LENGTH) }
      : {
        ...rec,
        minutes: [],
        blocks: rec.blocks.map((h) => h.id === block.id ? { ...h, lifted_at: iso(now) } : h),
      };
    op.check(entry).set(key, next, { expireIn: RECORD_TTL_MS });
  };
}

/** An operator blocks an address or a range (an address's history notes it). */
export const blockByOperator = (svc: Services, actor: Actor, input: NewBlock) =>
  createBlock(svc, actor, input, noteBlockChange(svc, "created"));

/** An operator lifts a block, automatic or not (an address's history notes it). */
export const liftByOperator = (
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch: string | undefined,
) => liftBlock(svc, actor, id, ifMatch, noteBlockChange(svc, "lifted"));

/** A record as the API shows it: the window's activity and score at `now`, its block if any. */
export interface ReputationView {
  ip: string;
  score: number;
  window: Activity;
  totals: Activity;
  /** Null for an address never seen. */
  first_seen_at: string | null;
  last_seen_at: string | null;
  blocked: boolean;
  block_id: string | null;
  blocked_until: string | null;
  auto_blocks: number;
  blocks: BlockHistoryEntry[];
}

function viewOf(ip: string, rec: IpReputation | null, now: number, rules: IpRules): ReputationView {
  const window = rec ? windowActivity(rec, now) : noActivity();
  const block = rules.blockOf(ip, now);
  return {
    ip,
    score: scoreOf(window),
    window,
    totals: rec?.totals ?? noActivity(),
    first_seen_at: rec?.first_seen_at ?? null,
    last_seen_at: rec?.last_seen_at ?? null,
    blocked: block !== null,
    block_id: block?.id ?? null,
    blocked_until: block ? (block.until === Infinity ? null : iso(block.until)) : null,
    auto_blocks: rec?.auto_blocks ?? 0,
    blocks: rec?.blocks ?? [],
  };
}

/** Past this many records the list stops reading (the walk's bound, as for counted lists). */
export const REPUTATION_SCAN_BOUND = 10_000;

/**
 * Addresses worst first (score, then the latest activity), filtered; with their total. The
 * records are read whole (up to REPUTATION_SCAN_BOUND) because scores change as time passes.
 */
export async function listReputations(
  svc: Services,
  rules: IpRules,
  filter: { blocked?: boolean; min_score?: number },
  offset: number,
  limit: number,
): Promise<{ items: ReputationView[]; total: number; total_is_estimate?: true }> {
  const now = svc.now();
  const found: ReputationView[] = [];
  let read = 0;
  const list = svc.kv.list<IpReputation>({ prefix: keys.ipReputations() }, { batchSize: 500 });
  for await (const { value } of list) {
    if (++read > REPUTATION_SCAN_BOUND) break;
    const view = viewOf(value.ip, value, now, rules);
    if (filter.blocked !== undefined && view.blocked !== filter.blocked) continue;
    if (filter.min_score !== undefined && view.score < filter.min_score) continue;
    found.push(view);
  }
  found.sort((a, b) => b.score - a.score || b.last_seen_at!.localeCompare(a.last_seen_at!));
  return {
    items: found.slice(offset, offset + limit),
    total: found.length,
    ...(read > REPUTATION_SCAN_BOUND ? { total_is_estimate: true as const } : {}),
  };
}

/** One address's reputation (all zero for an address never seen). */
export async function getReputation(
  svc: Services,
  rules: IpRules,
  text: string,
): Promise<Versioned<ReputationView>> {
  const ip = canonicalIp(text);
  if (!ip) throw badRequest("not an IP address");
  const entry = await svc.kv.get<IpReputation>(keys.ipReputation(ip));
  return {
    value: viewOf(ip, entry.value, svc.now(), rules),
    versionstamp: entry.versionstamp ?? "0",
  };
}
