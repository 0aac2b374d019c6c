/**
 * Quotas that hold across processes. Each process spends a tenant's verification quota from a
 * lease: a block of units it took from the period's grant record (`quota_grants`) in an atomic
 * commit that checks the record's version, so the units granted to all processes together
 * never pass the quota. Verify spends from the lease in memory; only VALID answers spend.
 *
 * Blocks are an eighth of what is still ungranted (at most `maxBlock`), so they shrink as the
 * quota nears its end, down to one unit at a time. A new block is asked for in the background
 * once a lease runs below half a block, so a busy key never waits for it; a request waits only
 * for the very first block or when the remaining units are too few to hold ahead. Units a
 * process leased and did not spend go back when the lease sits idle and at shutdown.
 *
 * Overshoot is therefore zero however many processes run. The price is on the other side: a
 * killed process's unspent block stays granted until the period ends, so the tenant can be
 * refused up to that many units early (a block is at most an eighth of what was left).
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import type { Services } from "../shared/services.ts";
import { VERIFICATIONS } from "../tenancy/plans.ts";

/** What the period's grant record holds: units granted to processes so far. */
interface Grant {
  units: number;
}

interface Lease {
  period: string;
  /** Units taken and not yet spent. */
  held: number;
  /** The last block's size: a new one is asked for below half of it. */
  block: number;
  /** Units spent since the last tick: none for a whole idle period returns the lease. */
  spentSinceTick: number;
  idleTicks: number;
  /** The ask in flight (one per tenant at a time). */
  asking: Promise<void> | null;
  /** When the grant last had too few units for a call, and the quota it was measured against. */
  refused: { at: number; units: number } | null;
}

export interface QuotaLeaseStats {
  /** Commits that took a block. */
  taken: number;
  /** Commits that gave units back. */
  returned: number;
  /** Commits that lost a race with another process and were retried. */
  conflicts: number;
  /** Asks a request had to wait for (the rest were made ahead of need). */
  waited: number;
  /** Leases held now (tenants). */
  leases: number;
  /** Units held and not yet spent, over all leases. */
  held_units: number;
}

export interface QuotaLeaseOptions {
  /** The largest block (default 10,000): what a killed process can strand. */
  maxBlock?: number;
  /** How long a refusal is believed before the grant is read again (default 1 s). */
  refusalMs?: number;
  /** Ticks without spending after which a lease is returned (default 10). */
  idleTicks?: number;
  /** Tenants with a lease at once; past it the least recently used lease is returned. */
  maxLeases?: number;
}

const TRIES = 20;

export class QuotaLeases {
  readonly #svc: Services;
  readonly #maxBlock: number;
  readonly #refusalMs: number;
  readonly #idleTicks: number;
  readonly #maxLeases: number;
  readonly #leases = new Map<string, Lease>();
  readonly #returning = new Set<Promise<void>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #counts = { taken: 0, returned: 0, conflicts: 0, waited: 0 };

  constructor(svc: Services, opts: QuotaLeaseOptions = {}) {
    this.#svc = svc;
    this.#maxBlock = opts.maxBlock ?? 10_000;
    this.#refusalMs = opts.refusalMs ?? 1_000;
    this.#idleTicks = opts.idleTicks ?? 10;
    this.#maxLeases = opts.maxLeases ?? 10_000;
  }

  /**
   * Spends `cost` units of `tenantId`'s quota of `units` in `period`, synchronously when this
   * process holds enough. Answers true (spent), false (the quota is granted out: refuse), or a
   * promise that settles once a block was asked for: then decide again.
   */
  spend(tenantId: string, period: string, units: number, cost: number): boolean | Promise<void> {
    let lease = this.#leases.get(tenantId);
    if (lease?.period !== period) lease = this.#open(tenantId, period, lease);
    if (lease.held >= cost) {
      lease.held -= cost;
      lease.spentSinceTick += cost;
      if (lease.held < lease.block / 2 && !lease.asking && !lease.refused) {
        void this.#ask(tenantId, lease, units, 1).catch(() => {});
      }
      return true;
    }
    const refused = lease.refused;
    if (refused && refused.units === units && this.#svc.now() - refused.at < this.#refusalMs) {
      return false;
    }
    this.#counts.waited++;
    return lease.asking ?? this.#ask(tenantId, lease, units, cost);
  }

  stats(): QuotaLeaseStats {
    let held = 0;
    for (const lease of this.#leases.values()) held += lease.held;
    return { ...this.#counts, leases: this.#leases.size, held_units: held };
  }

  /** Every second: leases unused for `idleTicks` ticks go back, so other processes can spend them. */
  tick(): Promise<void> {
    for (const [tenantId, lease] of this.#leases) {
      lease.idleTicks = lease.spentSinceTick ? 0 : lease.idleTicks + 1;
      lease.spentSinceTick = 0;
      if (lease.idleTicks >= this.#idleTicks && !lease.asking) this.#giveBack(tenantId, lease);
    }
    return this.#settled();
  }

  start() {
    this.#timer ??= setInterval(() => void this.tick(), 1_000);
  }

  /** At shutdown: every unspent unit goes back. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#leases.values()].map((l) => l.asking));
    for (const [tenantId, lease] of this.#leases) this.#giveBack(tenantId, lease);
    await this.#settled();
  }

  #open(tenantId: string, period: string, old: Lease | undefined): Lease {
    // A past period's units are of no use to anyone: that lease is simply dropped.
    if (old) this.#leases.delete(tenantId);
    if (this.#leases.size >= this.#maxLeases) {
      const [oldestId, oldest] = this.#leases.entries().next().value!;
      this.#giveBack(oldestId, oldest);
    }
    const lease: Lease = {
      period,
      held: 0,
      block: 0,
      spentSinceTick: 0,
      idleTicks: 0,
      asking: null,
      refused: null,
    };
    this.#leases.set(tenantId, lease);
    return lease;
  }

  /** Takes a block of at least `need` units from the grant, or records a refusal. */
  #ask(tenantId: string, lease: Lease, units: number, need: number): Promise<void> {
    const asking = this.#take(tenantId, lease, units, need).finally(() => {
      lease.asking = null;
    });
    lease.asking = asking;
    return asking;
  }

  async #take(tenantId: string, lease: Lease, units: number, need: number): Promise<void> {
    const { kv } = this.#svc;
    const grantKey = keys.quotaGrant(tenantId, VERIFICATIONS, lease.period);
    for (let i = 0; i < TRIES; i++) {
      const [grant, used] = await kv.getMany<[Grant, Deno.KvU64]>([
        grantKey,
        keys.usagePeriod(tenantId, VERIFICATIONS, lease.period),
      ]);
      // The period's first lease starts from what was counted before leases were taken.
      const granted = grant.value?.units ?? Number(used.value?.value ?? 0n);
      const left = units - granted;
      if (left < need) {
        lease.refused = { at: this.#svc.now(), units };
        return;
      }
      const block = Math.min(left, Math.max(need, Math.min(this.#maxBlock, Math.floor(left / 8))));
      const op = kv.atomic().check(grant).set(grantKey, { units: granted + block } satisfies Grant);
      if (await commit(op)) {
        lease.held += block;
        lease.block = block;
        lease.refused = null;
        this.#counts.taken++;
        return;
      }
      this.#counts.conflicts++;
    }
    // Too much contention: this call is refused for now, the next one asks again.
    lease.refused = { at: this.#svc.now(), units };
  }

  /** Returns a lease's unspent units to the grant, in the background, and forgets the lease. */
  #giveBack(tenantId: string, lease: Lease) {
    this.#leases.delete(tenantId);
    const units = lease.held;
    lease.held = 0;
    if (units === 0) return;
    const done = this.#return(tenantId, lease.period, units).catch(() => {}).finally(() => {
      this.#returning.delete(done);
    });
    this.#returning.add(done);
  }

  async #return(tenantId: string, period: string, units: number): Promise<void> {
    const { kv } = this.#svc;
    const grantKey = keys.quotaGrant(tenantId, VERIFICATIONS, period);
    for (let i = 0; i < TRIES; i++) {
      const grant = await kv.get<Grant>(grantKey);
      if (!grant.value) return;
      const op = kv.atomic().check(grant).set(
        grantKey,
        {
          units: Math.max(0, grant.value.units - units),
        } satisfies Grant,
      );
      if (await commit(op)) {
        this.#counts.returned++;
        return;
      }
      this.#counts.conflicts++;
    }
  }

  async #settled() {
    await Promise.allSettled([...this.#returning]);
  }
}
