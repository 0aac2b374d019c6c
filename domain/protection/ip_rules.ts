/**
 * Which source addresses are refused, and which never are: IP blocks (of an address or a range,
 * set by an operator or by the reputation score, until a time or for good) and the allowlist.
 *
 * Every process holds them in memory (`IpRules`, kept current by protection/ip_guard.ts), so the
 * check on each request reads nothing from KV. Every change bumps `ip_rules_version`, which each
 * process watches. The allowlist wins: an address on it is never refused, nor blocked
 * automatically.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import type { Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { AppError, badRequest, notFound, staleVersion } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { canonicalIp, type Cidr, formatCidr, inCidrs, parseCidr } from "../shared/ip_address.ts";
import type { Actor, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

export const BLOCK_SOURCES = ["manual", "auto"] as const;

export interface IpBlock {
  id: string;
  /** The blocked range with its host bits cleared: `203.0.113.7/32`, `198.51.100.0/24`. */
  cidr: string;
  /** The address, when the block is of one address. */
  ip: string | null;
  reason: string;
  source: typeof BLOCK_SOURCES[number];
  /** The reputation score that set off an automatic block. */
  score: number | null;
  created_at: string;
  created_by: string;
  /** Null: until lifted. */
  expires_at: string | null;
}

export interface AllowlistEntry {
  cidr: string;
  note: string | null;
}

export interface IpAllowlist {
  entries: AllowlistEntry[];
  updated_at: string | null;
  updated_by: string | null;
}

export const MAX_ALLOWLIST_ENTRIES = 1_000;
/** Blocks a process holds at most: past it, the newest blocks (by id) are not enforced. */
export const MAX_BLOCKS_IN_MEMORY = 100_000;

const EMPTY_ALLOWLIST: IpAllowlist = { entries: [], updated_at: null, updated_by: null };

/** A block as the check uses it. */
export interface BlockInForce {
  id: string;
  cidr: Cidr;
  /** Epoch ms; Infinity for a block with no end. */
  until: number;
}

const untilOf = (b: IpBlock) => b.expires_at ? Date.parse(b.expires_at) : Infinity;

/** A process's copy of the blocks and the allowlist, answering from memory. */
export class IpRules {
  #byAddress = new Map<string, BlockInForce>();
  #ranges: BlockInForce[] = [];
  #allow: Cidr[] = [];

  /** True while some block exists: without one, no request's address need be read. */
  get blocking(): boolean {
    return this.#byAddress.size > 0 || this.#ranges.length > 0;
  }

  /** How many blocks are held (for the bound's test). */
  get size(): number {
    return this.#byAddress.size + this.#ranges.length;
  }

  /** Replaces the copy with what the store holds. */
  replace(blocks: readonly IpBlock[], allowlist: IpAllowlist): void {
    const byAddress = new Map<string, BlockInForce>();
    const ranges: BlockInForce[] = [];
    for (const b of blocks.slice(0, MAX_BLOCKS_IN_MEMORY)) this.#hold(b, byAddress, ranges);
    this.#byAddress = byAddress;
    this.#ranges = ranges;
    this.#allow = allowlist.entries.map((e) => parseCidr(e.cidr)!);
  }

  /** Adds a block made by this process, before the store's change comes back to it. */
  add(block: IpBlock): void {
    if (this.size < MAX_BLOCKS_IN_MEMORY) this.#hold(block, this.#byAddress, this.#ranges);
  }

  #hold(b: IpBlock, byAddress: Map<string, BlockInForce>, ranges: BlockInForce[]) {
    const held = { id: b.id, cidr: parseCidr(b.cidr)!, until: untilOf(b) };
    if (b.ip === null) return void ranges.push(held);
    const other = byAddress.get(b.ip);
    if (!other || other.until < held.until) byAddress.set(b.ip, held);
  }

  /** Whether `ip` (canonical) is on the allowlist. */
  allows(ip: string): boolean {
    return this.#allow.length > 0 && inCidrs(ip, this.#allow);
  }

  /** The block in force on `ip` (canonical) at `now`, or null; an allowed address has none. */
  blockOf(ip: string, now: number): BlockInForce | null {
    let hit = this.#byAddress.get(ip) ?? null;
    if (hit && hit.until <= now) hit = null;
    if (!hit && this.#ranges.length) {
      hit = this.#ranges.find((r) => r.until > now && inCidrs(ip, [r.cidr])) ?? null;
    }
    return hit && !this.allows(ip) ? hit : null;
  }
}

/** The blocks in force and the allowlist, from the store. */
export async function loadIpRules(
  svc: Services,
): Promise<{ blocks: IpBlock[]; allowlist: IpAllowlist }> {
  const now = svc.now();
  const blocks: IpBlock[] = [];
  const list = svc.kv.list<IpBlock>({ prefix: keys.ipBlocks() }, { batchSize: 1_000 });
  for await (const { value } of list) {
    // Expired blocks linger until KV's expiry removes them.
    if (untilOf(value) > now) blocks.push(value);
    if (blocks.length >= MAX_BLOCKS_IN_MEMORY) break;
  }
  return { blocks, allowlist: (await getAllowlist(svc)).value };
}

/** A block's target from `ip` or `cidr` (exactly one), normalized. */
function blockTarget(
  input: { ip?: string; cidr?: string },
): { cidr: string; ip: string | null } {
  if ((input.ip === undefined) === (input.cidr === undefined)) {
    throw badRequest("give exactly one of ip and cidr");
  }
  if (input.ip !== undefined) {
    const ip = canonicalIp(input.ip);
    if (!ip) throw badRequest("ip is not an IP address");
    return { cidr: formatCidr(parseCidr(ip)!), ip };
  }
  const range = parseCidr(input.cidr!);
  if (!range) throw badRequest("cidr is not an address or a range like 198.51.100.0/24");
  const cidr = formatCidr(range);
  const one = range.bits === (range.family === 4 ? 32 : 128);
  return { cidr, ip: one ? canonicalIp(cidr.split("/")[0]) : null };
}

/** Adds a new block to `op`: the record (gone from KV once expired), the version, the audit. */
export function addBlock(
  op: Deno.AtomicOperation,
  now: number,
  actor: Actor,
  block: IpBlock,
): void {
  const expireIn = block.expires_at ? Date.parse(block.expires_at) - now : undefined;
  op.set(keys.ipBlock(block.id), block, { expireIn })
    .sum(keys.ipRulesVersion(), 1n);
  recordChange(op, now, actor, {
    action: "ip_block.created",
    resource_type: "ip_block",
    resource_id: block.id,
    tenant_id: null,
    after: block as unknown as Record<string, unknown>,
  });
}

export interface NewBlock {
  ip?: string;
  cidr?: string;
  reason: string;
  expires_at?: string;
}

/**
 * Blocks an address or a range. `history` adds the block to a single address's reputation
 * record in the same commit (protection/ip_reputation.ts); a range has no record of its own.
 */
export async function createBlock(
  svc: Services,
  actor: Actor,
  input: NewBlock,
  history: (op: Deno.AtomicOperation, block: IpBlock) => Promise<void>,
): Promise<Versioned<IpBlock>> {
  const now = svc.now();
  const target = blockTarget(input);
  if (input.expires_at !== undefined && Date.parse(input.expires_at) <= now) {
    throw badRequest("expires_at must be in the future");
  }
  if (actor.ip && inCidrs(actor.ip, [parseCidr(target.cidr)!])) {
    throw new AppError(
      "UNPROCESSABLE",
      `the block ${target.cidr} covers your own address; block it from another address`,
    );
  }
  const block: IpBlock = {
    id: newId("ipb", now),
    ...target,
    reason: input.reason,
    source: "manual",
    score: null,
    created_at: iso(now),
    created_by: actor.id,
    expires_at: input.expires_at ? iso(Date.parse(input.expires_at)) : null,
  };
  return await retrying(async () => {
    const op = svc.kv.atomic();
    addBlock(op, now, actor, block);
    await history(op, block);
    const done = await commit(op);
    return done ? { value: block, versionstamp: done.versionstamp } : CONFLICT;
  });
}

/**
 * Lifts a block (`ifMatch`: the version read): it is deleted, and audited. `history` notes it on
 * the address's record.
 */
export async function liftBlock(
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch: string | undefined,
  history: (op: Deno.AtomicOperation, block: IpBlock) => Promise<void>,
): Promise<Versioned<IpBlock>> {
  return await retrying(async () => {
    const entry = await svc.kv.get<IpBlock>(keys.ipBlock(id));
    const now = svc.now();
    if (!entry.value || untilOf(entry.value) <= now) throw notFound("IP block");
    if (ifMatch !== undefined && ifMatch !== entry.versionstamp) throw staleVersion();
    const op = svc.kv.atomic().check(entry).delete(entry.key).sum(keys.ipRulesVersion(), 1n);
    recordChange(op, now, actor, {
      action: "ip_block.lifted",
      resource_type: "ip_block",
      resource_id: id,
      tenant_id: null,
      before: entry.value as unknown as Record<string, unknown>,
    });
    await history(op, entry.value);
    const done = await commit(op);
    return done ? { value: entry.value, versionstamp: done.versionstamp } : CONFLICT;
  });
}

/** The blocks in force, oldest first, from `offset`; with their total. */
export async function listBlocks(
  svc: Services,
  filter: { source?: IpBlock["source"] },
  offset: number,
  limit: number,
): Promise<{ items: IpBlock[]; total: number }> {
  const { blocks } = await loadIpRules(svc);
  const matching = blocks.filter((b) => !filter.source || b.source === filter.source);
  return { items: matching.slice(offset, offset + limit), total: matching.length };
}

export async function getAllowlist(svc: Services): Promise<Versioned<IpAllowlist>> {
  const entry = await svc.kv.get<IpAllowlist>(keys.ipAllowlist());
  return { value: entry.value ?? EMPTY_ALLOWLIST, versionstamp: entry.versionstamp ?? "0" };
}

/**
 * Replaces the allowlist (entries normalized; a repeated range once). `ifMatch`: the version
 * read (`"0"` for a list never written), refused when stale.
 */
export async function replaceAllowlist(
  svc: Services,
  actor: Actor,
  entries: readonly AllowlistEntry[],
  ifMatch: string | undefined,
): Promise<Versioned<IpAllowlist>> {
  const normalized = new Map<string, AllowlistEntry>();
  for (const [i, e] of entries.entries()) {
    const range = parseCidr(e.cidr);
    if (!range) {
      throw badRequest("invalid request: entries", [{
        path: ["json", "entries", i, "cidr"],
        message: "not an address or a range like 10.0.0.0/8",
      }]);
    }
    const cidr = formatCidr(range);
    normalized.set(cidr, { cidr, note: e.note });
  }
  return await retrying(async () => {
    const current = await svc.kv.get<IpAllowlist>(keys.ipAllowlist());
    if (ifMatch !== undefined && ifMatch !== (current.versionstamp ?? "0")) throw staleVersion();
    const now = svc.now();
    const after: IpAllowlist = {
      entries: [...normalized.values()],
      updated_at: iso(now),
      updated_by: actor.id,
    };
    const op = svc.kv.atomic().check(current).set(keys.ipAllowlist(), after)
      .sum(keys.ipRulesVersion(), 1n);
    recordChange(op, now, actor, {
      action: "ip_allowlist.updated",
      resource_type: "ip_allowlist",
      resource_id: "ip_allowlist",
      tenant_id: null,
      before: (current.value ?? EMPTY_ALLOWLIST) as unknown as Record<string, unknown>,
      after: after as unknown as Record<string, unknown>,
    });
    const done = await commit(op);
    return done ? { value: after, versionstamp: done.versionstamp } : CONFLICT;
  });
}
