/**
 * Rate limits on the whole API (verify keeps its own, keys/rate_limit.ts): a token bucket per
 * principal and budget, or per client IP for unauthenticated calls, in memory and per process.
 *
 * Per process on purpose: the check is one Map lookup and a little arithmetic, with no KV round
 * trip on the hot path (a shared count would cost a KV read and write per request). The price is
 * that N instances behind a load balancer allow up to N times each budget; size the budgets for
 * one instance's share.
 *
 * A bucket holds up to `burst` requests and refills at `requests_per_second`. The map is bounded
 * (`maxEntries`): it is kept in least-recently-used order, and a new key past the bound evicts the
 * least recently used one (which has had the longest to refill, so forgetting it costs least).
 */
import type { PlatformRole } from "./permissions.ts";

/**
 * Which budget a call spends: reads, writes, expensive routes, usage ingestion (a gateway's
 * batches, on its hot path like verify), or an unauthenticated IP's.
 */
export type Budget = "read" | "write" | "expensive" | "ingest" | "anonymous";
export type PrincipalBudget = Exclude<Budget, "anonymous">;

export interface Limit {
  requests_per_second: number;
  burst: number;
}

/** Overrides of some budgets (per platform role, or on a service token). */
export type LimitOverrides = Partial<Record<PrincipalBudget, Limit>>;

export interface ApiRateLimitSettings {
  defaults: Record<Budget, Limit>;
  roles: Partial<Record<PlatformRole, LimitOverrides>>;
  /** How many buckets memory holds at most (default 100 000). */
  maxEntries?: number;
}

/** One call's verdict, with what the RateLimit header fields say. */
export interface RateVerdict {
  allowed: boolean;
  budget: Budget;
  /** The quota (`q`: the burst) and the seconds it takes to refill from empty (`w`). */
  quota: number;
  window: number;
  /** Whole requests left (`r`), and seconds until the bucket is full again (`t`). */
  remaining: number;
  reset: number;
  /** When refused: seconds until one request fits (at least 1). */
  retryAfter: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Who is limited: the principal (id, role, token override), or null for an unauthenticated IP. */
export interface LimitedPrincipal {
  id: string;
  platform_role: PlatformRole | null;
  rate_limit?: LimitOverrides | null;
}

export class ApiRateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxEntries: number;

  constructor(readonly settings: ApiRateLimitSettings) {
    this.#maxEntries = settings.maxEntries ?? 100_000;
  }

  get size() {
    return this.#buckets.size;
  }

  /** Replaces some limits while running (runtime configuration); buckets refill under them. */
  configure(change: {
    defaults?: Partial<Record<Budget, Limit>>;
    roles?: ApiRateLimitSettings["roles"];
  }) {
    this.settings.defaults = { ...this.settings.defaults, ...change.defaults };
    if (change.roles) this.settings.roles = change.roles;
  }

  /** The limit that applies: the token's override, else the role's, else the default. */
  limitOf(principal: LimitedPrincipal | null, budget: Budget): Limit {
    if (!principal || budget === "anonymous") return this.settings.defaults.anonymous;
    return principal.rate_limit?.[budget] ??
      (principal.platform_role ? this.settings.roles[principal.platform_role]?.[budget] : null) ??
      this.settings.defaults[budget];
  }

  /** Spends one request of a principal's budget. */
  spend(principal: LimitedPrincipal, budget: PrincipalBudget, now: number): RateVerdict {
    return this.take(`${budget}:${principal.id}`, budget, this.limitOf(principal, budget), now);
  }

  /** Spends one request of an unauthenticated client IP's budget. */
  spendAnonymous(ip: string | null, now: number): RateVerdict {
    return this.take(`ip:${ip ?? "unknown"}`, "anonymous", this.settings.defaults.anonymous, now);
  }

  /** Spends one request of `key`'s bucket under `limit`, when there is one to spend. */
  take(key: string, budget: Budget, limit: Limit, now: number): RateVerdict {
    const { requests_per_second: rate, burst } = limit;
    let b = this.#buckets.get(key);
    if (b) {
      // Most recently used last: eviction takes the first.
      this.#buckets.delete(key);
      b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * rate / 1000);
      b.at = now;
    } else {
      if (this.#buckets.size >= this.#maxEntries) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
      b = { tokens: burst, at: now };
    }
    this.#buckets.set(key, b);
    const allowed = b.tokens >= 1;
    if (allowed) b.tokens -= 1;
    return {
      allowed,
      budget,
      quota: burst,
      window: Math.max(1, Math.ceil(burst / rate)),
      remaining: Math.floor(b.tokens),
      reset: Math.ceil((burst - b.tokens) / rate),
      retryAfter: allowed ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / rate)),
    };
  }
}

/** `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): `"read";q=200;w=2`. */
export const policyField = (v: RateVerdict) => `"${v.budget}";q=${v.quota};w=${v.window}`;

/** `RateLimit`: `"read";r=199;t=1`. */
export const rateField = (v: RateVerdict) => `"${v.budget}";r=${v.remaining};t=${v.reset}`;
