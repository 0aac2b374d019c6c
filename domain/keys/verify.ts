/**
 * "Is this key good?" — the gateway's question on every request (POST /v1/keys/verify).
 *
 * For a warm key the answer touches no storage: the key, its tenant, the tenant's plan and the
 * period's persisted usage come from the stale-while-revalidate cache (svc.cache), rate limits
 * are counted in memory, and usage is recorded into the write-behind buffer. The key, its hash
 * pointer, project and tenant are read with the tenant's stamp (kv/table.ts), so what keeps a
 * tenant's warm keys fresh is one read of that stamp per window, however many keys it has. A
 * malformed or checksum-failing key is refused before any lookup.
 *
 * Checks run in a fixed order — NOT_FOUND, REVOKED, EXPIRED, TENANT_SUSPENDED,
 * INSUFFICIENT_SCOPES, RATE_LIMITED, USAGE_EXCEEDED — and only a VALID answer spends rate
 * limit or quota. Everything after the last await is synchronous, so concurrent verifies in
 * one process cannot both take the last unit of a quota; across processes, each spends only
 * the units it leased (quota_leases.ts).
 */
import { keys } from "../../kv/keys.ts";
import {
  counter,
  type Dated,
  dated,
  type KeyName,
  named,
  type NamedKey,
  remembered,
} from "../../kv/names.ts";
import {
  type ApiKey,
  type Environment,
  type KeyMeta,
  type KeyPointer,
  keyStatus,
  wellFormedKey,
} from "./api_keys.ts";
import { type Plan, VERIFICATIONS } from "../tenancy/plans.ts";
import type { Project } from "../tenancy/projects.ts";
import { type RateDecision, RateLimiter } from "./rate_limit.ts";
import type { ThresholdGate } from "./threshold_gate.ts";
import type { QuotaLeases } from "./quota_leases.ts";
import { sha256Hex } from "../shared/secrets.ts";
import { type Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { dayOf, quotaPeriod } from "../shared/time.ts";

export const VERIFY_CODES = [
  "VALID",
  "NOT_FOUND",
  "REVOKED",
  "EXPIRED",
  "TENANT_SUSPENDED",
  "INSUFFICIENT_SCOPES",
  "RATE_LIMITED",
  "USAGE_EXCEEDED",
] as const;
export type VerifyCode = typeof VERIFY_CODES[number];

/** The metric verifications count under. */
export interface VerifyRequest {
  key: string;
  /** Every one must be held by the key. */
  scopes?: string[];
  /** Quota units this call spends (0: check only). */
  cost?: number;
  /** When given, a key of the other environment is NOT_FOUND. */
  environment?: Environment;
}

export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  key_id: string | null;
  tenant_id: string | null;
  project_id: string | null;
  environment: Environment | null;
  scopes: string[];
  meta: KeyMeta;
  plan: { code: string } | null;
  ratelimit: { limit: number; remaining: number; reset: number } | null;
  quota: {
    limit: number | null;
    used: number;
    remaining: number | null;
    period_end: string;
  } | null;
  expires_at: string | null;
}

/** Where verify records usage: summed in memory, written behind (see kv/sum_buffer.ts). */
export interface UsageSink {
  /** `name`: the key's buffer name (kv/names.ts). */
  add(key: Deno.KvKey, n: number, lazy?: boolean, name?: KeyName<"sum">): void;
  max(key: Deno.KvKey, n: number, lazy?: boolean, name?: KeyName<"max">): void;
  /** What is added but not yet persisted (including a flush in flight). */
  pending(key: Deno.KvKey, name?: KeyName<"sum">): number;
}

const NOT_FOUND: VerifyResult = {
  valid: false,
  code: "NOT_FOUND",
  key_id: null,
  tenant_id: null,
  project_id: null,
  environment: null,
  scopes: [],
  meta: {},
  plan: null,
  ratelimit: null,
  quota: null,
  expires_at: null,
};

/** The keys verify reads and counts for one API key, named once (kv/names.ts). */
interface KeyNames {
  readonly pointer: NamedKey<"cache">;
  /** The tenant's stamp, once the pointer named the tenant. */
  stamp?: NamedKey<"cache">;
  record?: NamedKey<"cache">;
  project?: NamedKey<"cache">;
  lastUsed?: NamedKey<"max">;
  daily?: Dated<NamedKey<"sum">>;
}

/** The same for one tenant. */
interface TenantNames {
  readonly tenant: NamedKey<"cache">;
  readonly stamp: NamedKey<"cache">;
  /** The period's counter: read from the cache and added to in the buffer. */
  period?: Dated<{ read: NamedKey<"cache">; sum: NamedKey<"sum"> }>;
  daily?: Dated<NamedKey<"sum">>;
}

/** A key to read, with the stamp it is read with. */
type Read = NamedKey<"cache"> & { stamp?: NamedKey<"cache"> };

/** A decision that could not be made yet: the key it still has to read, or a lease to wait for. */
type Pending = Read | Promise<void>;
const isAnswer = (d: VerifyResult | Pending): d is VerifyResult => "valid" in d;

export class Verifier {
  readonly #svc: Services;
  readonly #usage: UsageSink;
  readonly #limiter: RateLimiter;

  /**
   * The KV keys a warm call reads and counts, named once: by API key secret (so a warm call
   * hashes nothing either), tenant, plan code, plan. The secrets sit in process memory only,
   * which every request passes them through anyway.
   */
  readonly #keyNames = new Map<string, KeyNames>();
  readonly #tenantNames = new Map<string, TenantNames>();
  readonly #planCodeNames = new Map<string, NamedKey<"cache">>();
  readonly #planNames = new Map<string, NamedKey<"cache">>();

  readonly #gate: ThresholdGate | null;
  readonly #quotas: QuotaLeases | null;

  /** `quotas`: leases that hold quotas across processes; without, a quota holds in this one. */
  constructor(
    svc: Services,
    usage: UsageSink,
    opts: { limiter?: RateLimiter; gate?: ThresholdGate; quotas?: QuotaLeases } = {},
  ) {
    this.#svc = svc;
    this.#usage = usage;
    this.#limiter = opts.limiter ?? new RateLimiter();
    this.#gate = opts.gate ?? null;
    this.#quotas = opts.quotas ?? null;
  }

  /**
   * Verifies `req.key`. `boundTenant`: a tenant-bound caller only sees its own tenant's keys
   * (any other is NOT_FOUND). Synchronous when memory holds everything the answer reads — no
   * promise at all on the warm path — else it loads what is missing, then decides.
   */
  verify(
    req: VerifyRequest,
    boundTenant: string | null = null,
  ): VerifyResult | Promise<VerifyResult> {
    let k = this.#keyNames.get(req.key);
    if (!k) {
      // A malformed or checksum-failing key is refused unhashed, and not remembered.
      if (!wellFormedKey(req.key)) return NOT_FOUND;
      const hash = sha256Hex(req.key);
      k = remembered(this.#keyNames, req.key, () => ({ pointer: named(keys.apiKeyHash(hash)) }));
    }
    const first = this.#decide(req, boundTenant, k, new Map());
    return isAnswer(first) ? first : this.#load(req, boundTenant, k, first);
  }

  /**
   * Reads each missing entry in turn (each read may reveal the next), or waits for a block of
   * quota, then decides again.
   */
  async #load(
    req: VerifyRequest,
    boundTenant: string | null,
    k: KeyNames,
    pending: Pending,
  ): Promise<VerifyResult> {
    const loaded = new Map<string, Deno.KvEntryMaybe<unknown>>();
    for (;;) {
      if (pending instanceof Promise) await pending;
      else loaded.set(pending.name, await this.#svc.cache.get(pending.key, pending.stamp));
      const next = this.#decide(req, boundTenant, k, loaded);
      if (isAnswer(next)) return next;
      pending = next;
    }
  }

  /**
   * The answer, from what memory holds (and `loaded`), or the first key it still needs. Runs
   * without awaiting, so checking and spending rate limit and quota are one step.
   */
  #decide(
    req: VerifyRequest,
    boundTenant: string | null,
    k: KeyNames,
    loaded: Map<string, Deno.KvEntryMaybe<unknown>>,
  ): VerifyResult | Pending {
    const cache = this.#svc.cache;
    let missing: Read | null = null;
    const read = <T>(key: NamedKey<"cache">, stamp?: NamedKey<"cache">): T | null => {
      // The cache first: a flush adjusts the usage counter there while a call awaits.
      let entry = cache.getSync<T>(key.key, key.name, stamp);
      if (entry === undefined && loaded.has(key.name)) {
        entry = cache.peek<T>(key.key, key.name) ??
          loaded.get(key.name) as Deno.KvEntryMaybe<T>;
      }
      if (entry === undefined) missing ??= stamp ? { ...key, stamp } : key;
      return entry?.value ?? null;
    };
    const pointer = read<KeyPointer>(k.pointer, k.stamp);
    if (missing) return missing;
    if (!pointer || (boundTenant && pointer.tenant_id !== boundTenant)) return NOT_FOUND;
    const tenantId = pointer.tenant_id;
    const t = remembered(this.#tenantNames, tenantId, () => ({
      tenant: named(keys.tenant(tenantId)),
      stamp: named(keys.tenantStamp(tenantId)),
    }));
    // A key's tenant and id never change: its record's name is made once.
    k.stamp ??= t.stamp;
    const key = read<ApiKey>(k.record ??= named(keys.apiKey(tenantId, pointer.id)), t.stamp);
    const tenant = read<Tenant>(t.tenant, t.stamp);
    if (missing) return missing;
    if (!key || !tenant || tenant.status === "deleted") return NOT_FOUND;
    if (key.project_id) {
      const projectId = key.project_id;
      const project = read<Project>(
        k.project ??= named(keys.project(tenantId, projectId)),
        t.stamp,
      );
      if (missing) return missing;
      if (project?.status !== "active") return NOT_FOUND;
    }
    if (req.environment && key.environment !== req.environment) return NOT_FOUND;
    const code = tenant.plan;
    const planId = read<string>(
      remembered(this.#planCodeNames, code, () => named(keys.planCode(code))),
    );
    const plan = planId
      ? read<Plan>(remembered(this.#planNames, planId, () => named(keys.plan(planId))))
      : null;
    const now = this.#svc.now();
    // Unlimited plans count by calendar month.
    const period = quotaPeriod(plan?.quota?.period ?? "month", now);
    t.period = dated(t.period, period.label, () => {
      const key = keys.usagePeriod(tenantId, VERIFICATIONS, period.label);
      return { read: named(key), sum: counter("sum", key) };
    });
    const periodKey = t.period.value;
    const persisted = read<Deno.KvU64>(periodKey.read);
    if (missing) return missing;

    const result: VerifyResult = {
      valid: false,
      code: "VALID",
      key_id: key.id,
      tenant_id: key.tenant_id,
      project_id: key.project_id,
      environment: key.environment,
      scopes: key.scopes,
      meta: key.meta,
      plan: plan && { code: plan.code },
      ratelimit: null,
      quota: null,
      expires_at: key.expires_at,
    };
    const status = keyStatus(key, now);
    if (status === "revoked") return { ...result, code: "REVOKED" };
    if (status === "expired") return { ...result, code: "EXPIRED" };
    if (tenant.status !== "active") return { ...result, code: "TENANT_SUSPENDED" };
    if (req.scopes?.some((s) => !key.scopes.includes(s))) {
      return { ...result, code: "INSUFFICIENT_SCOPES" };
    }
    const limit = key.rate_limit ?? plan?.rate_limit ?? null;
    const rate: RateDecision | null = limit && this.#limiter.check(key.id, limit, now);
    const ratelimit = rate && { limit: rate.limit, remaining: rate.remaining, reset: rate.reset };
    if (rate && !rate.allowed) return { ...result, code: "RATE_LIMITED", ratelimit };

    const cost = req.cost ?? 1;
    const used = (persisted ? Number(persisted.value) : 0) +
      this.#usage.pending(periodKey.sum.key, periodKey.sum.name);
    const units = plan?.quota?.units ?? null;
    const quota = (spent: number) => ({
      limit: units,
      used: used + spent,
      remaining: units === null ? null : Math.max(0, units - used - spent),
      period_end: period.endIso,
    });
    if (units !== null && used + cost > units) {
      return { ...result, code: "USAGE_EXCEEDED", ratelimit, quota: quota(0) };
    }
    // Other processes spend the same quota: this one spends only what it leased.
    if (units !== null && cost > 0 && this.#quotas) {
      const spent = this.#quotas.spend(tenant.id, period.label, units, cost);
      if (spent === false) {
        return {
          ...result,
          code: "USAGE_EXCEEDED",
          ratelimit,
          quota: { ...quota(0), remaining: 0 },
        };
      }
      if (spent !== true) return spent;
    }

    if (limit) this.#limiter.take(key.id, now);
    this.#record(k, t, key, cost, now);
    this.#gate?.observe(tenant.id, used + cost, units, period);
    return {
      ...result,
      valid: true,
      ratelimit: ratelimit && { ...ratelimit, remaining: ratelimit.remaining - 1 },
      quota: quota(cost),
    };
  }

  #record(k: KeyNames, t: TenantNames, key: ApiKey, cost: number, now: number) {
    const { tenant_id: tenantId, id } = key;
    const day = dayOf(now);
    const usage = this.#usage;
    if (cost > 0) {
      const period = t.period!.value.sum;
      usage.add(period.key, cost, false, period.name);
      t.daily = dated(
        t.daily,
        day,
        () => counter("sum", keys.usageDaily(tenantId, VERIFICATIONS, day)),
      );
      usage.add(t.daily.value.key, cost, false, t.daily.value.name);
      // Per-key statistics are lazy: with many busy keys they are most of the writes. In
      // units, like the tenant's counters, so the keys' days add up to the tenant's.
      k.daily = dated(k.daily, day, () => counter("sum", keys.keyUsageDaily(tenantId, id, day)));
      usage.add(k.daily.value.key, cost, true, k.daily.value.name);
    }
    k.lastUsed ??= counter("max", keys.keyLastUsed(tenantId, id));
    usage.max(k.lastUsed.key, now, true, k.lastUsed.name);
  }
}
