/**
 * What Steward's verify answers (`POST /v1/keys/verify`, the `data` of its envelope) and what the
 * middleware puts on the Hono context. Written by hand from the OpenAPI document's
 * `VerifyKeyResult`, so the middleware stands alone.
 */

export type VerifyCode =
  | "VALID"
  | "NOT_FOUND"
  | "REVOKED"
  | "EXPIRED"
  | "TENANT_SUSPENDED"
  | "INSUFFICIENT_SCOPES"
  | "RATE_LIMITED"
  | "USAGE_EXCEEDED";

export interface KeyRateLimit {
  limit: number;
  remaining: number;
  /** When the binding window ends (epoch ms, Steward's clock). */
  reset: number;
}

export interface KeyQuota {
  limit: number | null;
  used: number;
  remaining: number | null;
  period_end: string;
}

/** The verdict as Steward sends it. */
export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  key_id: string | null;
  tenant_id: string | null;
  project_id: string | null;
  environment: "live" | "test" | null;
  scopes: string[];
  meta: Record<string, unknown>;
  plan: { code: string } | null;
  ratelimit: KeyRateLimit | null;
  quota: KeyQuota | null;
  expires_at: string | null;
}

/** A valid key's verdict, as `c.get("steward")` holds it: its key and tenant are known. */
export interface StewardKey extends Omit<VerifyResult, "valid" | "code" | "key_id" | "tenant_id"> {
  degraded: false;
  key_id: string;
  tenant_id: string;
}

/** Why Steward gave no verdict. */
export type UnavailableReason = "timeout" | "unreachable" | "steward_error";

/** Fail-open only: the request passed without a verdict; nothing is known about its caller. */
export interface StewardDegraded {
  degraded: true;
  reason: UnavailableReason;
}

/** Context variables under fail-closed (the default): every request that reaches a handler has a verdict. */
export type StewardEnv = { Variables: { steward: StewardKey } };

/** Context variables under `failOpen: true`: check `degraded` before trusting the caller. */
export type StewardFailOpenEnv = { Variables: { steward: StewardKey | StewardDegraded } };
