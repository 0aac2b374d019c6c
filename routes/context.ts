/** What the HTTP layer carries per request, and the dependencies it is built with. */
import type { Config } from "../config.ts";
import type { ApiRateLimiter } from "../domain/access/api_rate_limit.ts";
import type { Probe } from "../domain/platform/health.ts";
import type { RuntimeConfig } from "../domain/platform/runtime_config.ts";
import type { IpGuard } from "../domain/protection/ip_guard.ts";
import type { QuotaLeases } from "../domain/keys/quota_leases.ts";
import type { Principal } from "../domain/access/principal.ts";
import type { Permission } from "../domain/access/permissions.ts";
import type { Services } from "../domain/shared/services.ts";
import type { Tenant } from "../domain/tenancy/tenants.ts";
import type { Versioned } from "../kv/table.ts";

export interface AppDeps {
  svc: Services;
  config: Pick<
    Config,
    | "STEWARD_BODY_LIMIT_BYTES"
    | "STEWARD_CORS_ORIGINS"
    | "STEWARD_TRUSTED_PROXIES"
    | "STEWARD_KV_PATH"
    | "USAGE_STREAM_POLL_MS"
    | "COST_LIVE_URL"
    | "COST_LIVE_TOKEN"
    | "COST_LIVE_TIMEOUT_MS"
    | "COST_CURRENCY"
    | "COST_PER_MILLION_REQUESTS"
    | "COST_PER_MILLION_KV_READS"
    | "COST_PER_MILLION_KV_WRITES"
    | "COST_PER_GIB_MONTH"
    | "STEWARD_ENV"
    | "STEWARD_DATA_KEY_MAX_AGE_DAYS"
    | "STEWARD_RATE_LIMITS"
    | "STEWARD_RATE_LIMIT_READ"
    | "STEWARD_RATE_LIMIT_WRITE"
    | "STEWARD_RATE_LIMIT_EXPENSIVE"
    | "STEWARD_RATE_LIMIT_INGEST"
    | "STEWARD_RATE_LIMIT_ANONYMOUS"
    | "STEWARD_RATE_LIMIT_ROLES"
  >;
  version: string;
  startedAt: number;
  /** Extra readiness checks (Postgres when configured). */
  probes?: Probe[];
  /** Blocked addresses and the reputation tally (started by main.ts, flushed by tests). */
  ipGuard: IpGuard;
  /** This process's leases of tenants' quotas (started by main.ts, returned at shutdown). */
  quotas: QuotaLeases;
  /** This process's runtime settings (GET/PATCH /v1/admin/config), applied to what runs. */
  runtime: RuntimeConfig;
}

export type AppEnv = {
  Variables: {
    deps: AppDeps;
    svc: Services;
    requestId: string;
    /** The API's rate limits, or null when STEWARD_RATE_LIMITS=off. */
    rateLimiter: ApiRateLimiter | null;
    /** Set by the auth middleware on every non-public route. */
    principal: Principal;
    /** Set on `{tenant}` routes once the caller is known to see the tenant. */
    tenant: Versioned<Tenant>;
    tenantPermissions: ReadonlySet<Permission>;
    /**
     * The body's size in bytes, noted by every answer made from a string (`c.json`, a replay):
     * the request log reads it here rather than measuring a copy of the body.
     */
    bytesOut?: number;
    /** Set by errorJson: the request log reads an error answer's code here, not in its body. */
    errorCode?: string;
    /** Set by a route whose answer must not be kept for Idempotency-Key replays (a secret). */
    unreplayable?: true;
  };
};
