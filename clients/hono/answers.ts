/**
 * The gateway's refusals: status, a small JSON body `{ "error": { "code", "message" } }` and the
 * headers a client needs to back off (Retry-After and the IETF RateLimit / RateLimit-Policy
 * fields, draft-ietf-httpapi-ratelimit-headers). Never echoes the key.
 */
import type { VerifyCode, VerifyResult } from "./types.ts";

type RefusedCode = Exclude<VerifyCode, "VALID"> | "MISSING_KEY" | "STEWARD_UNAVAILABLE";

const STATUS: Record<RefusedCode, 401 | 403 | 429 | 503> = {
  MISSING_KEY: 401,
  NOT_FOUND: 401,
  REVOKED: 401,
  EXPIRED: 401,
  TENANT_SUSPENDED: 403,
  INSUFFICIENT_SCOPES: 403,
  RATE_LIMITED: 429,
  USAGE_EXCEEDED: 429,
  STEWARD_UNAVAILABLE: 503,
};

const MESSAGE: Record<RefusedCode, string> = {
  MISSING_KEY: "An API key is required (Authorization: Bearer <key> or x-api-key).",
  NOT_FOUND: "The API key is not valid.",
  REVOKED: "The API key has been revoked.",
  EXPIRED: "The API key has expired.",
  TENANT_SUSPENDED: "The account this key belongs to is suspended.",
  INSUFFICIENT_SCOPES: "The API key does not have the scopes this request needs.",
  RATE_LIMITED: "Too many requests for this API key; retry later.",
  USAGE_EXCEEDED: "The usage quota of this API key's plan is used up for this period.",
  STEWARD_UNAVAILABLE: "The API key could not be checked right now; retry later.",
};

/** Seconds from now until `atMs` (epoch ms), at least 1. */
const secondsUntil = (atMs: number, nowMs: number) => Math.max(1, Math.ceil((atMs - nowMs) / 1000));

/**
 * RateLimit-Policy and RateLimit for the verdict's rate limit ("rate") and quota ("quota").
 * The rate policy has no `w`: the verdict names the binding window's end, not its length.
 */
export function rateLimitHeaders(v: VerifyResult, nowMs: number): Record<string, string> {
  const policies: string[] = [];
  const states: string[] = [];
  if (v.ratelimit) {
    policies.push(`"rate";q=${v.ratelimit.limit}`);
    states.push(`"rate";r=${v.ratelimit.remaining};t=${secondsUntil(v.ratelimit.reset, nowMs)}`);
  }
  if (v.quota && v.quota.limit !== null && v.quota.remaining !== null) {
    policies.push(`"quota";q=${v.quota.limit}`);
    const end = Date.parse(v.quota.period_end);
    states.push(`"quota";r=${v.quota.remaining};t=${secondsUntil(end, nowMs)}`);
  }
  if (policies.length === 0) return {};
  return { "RateLimit-Policy": policies.join(", "), "RateLimit": states.join(", ") };
}

/** When a refused verdict may succeed again (seconds), for Retry-After. */
function retryAfter(v: VerifyResult, nowMs: number): number | null {
  if (v.code === "RATE_LIMITED" && v.ratelimit) return secondsUntil(v.ratelimit.reset, nowMs);
  if (v.code === "USAGE_EXCEEDED" && v.quota) {
    return secondsUntil(Date.parse(v.quota.period_end), nowMs);
  }
  return null;
}

export interface Refusal {
  status: 401 | 403 | 429 | 503;
  body: { error: { code: RefusedCode; message: string } };
  headers: Record<string, string>;
}

export function refusal(code: RefusedCode, verdict?: VerifyResult, nowMs = Date.now()): Refusal {
  const status = STATUS[code];
  const headers: Record<string, string> = {};
  if (status === 401) headers["WWW-Authenticate"] = "Bearer";
  if (status === 503) headers["Retry-After"] = "1";
  if (verdict && status === 429) {
    Object.assign(headers, rateLimitHeaders(verdict, nowMs));
    const after = retryAfter(verdict, nowMs);
    if (after !== null) headers["Retry-After"] = String(after);
  }
  return { status, body: { error: { code, message: MESSAGE[code] } }, headers };
}
