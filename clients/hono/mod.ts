/**
 * Steward gateway middleware for Hono: checks each request's API key with Steward
 * (`POST /v1/keys/verify`) and either refuses the request (401, 403, 429, 503 with a small JSON
 * body) or puts the verdict on the context as `c.get("steward")` and calls the next handler.
 *
 *   const app = new Hono<StewardEnv>();
 *   app.use("/v1/*", steward({ url: "https://steward.example.com", token: STEWARD_TOKEN }));
 *   app.get("/v1/hello", (c) => c.json({ hello: c.get("steward").tenant_id }));
 *
 * Standalone: it imports only Hono's types. The key is never logged, echoed or kept; the
 * negative memory holds its SHA-256.
 */
import type { Context, MiddlewareHandler } from "hono";
import { refusal } from "./answers.ts";
import { keyDigest, NegativeCache, remembers } from "./negative_cache.ts";
import type {
  StewardDegraded,
  StewardEnv,
  StewardFailOpenEnv,
  StewardKey,
  UnavailableReason,
  VerifyResult,
} from "./types.ts";
import { type VerifyCall, verifyClient } from "./verify_client.ts";

export type {
  KeyQuota,
  KeyRateLimit,
  StewardDegraded,
  StewardEnv,
  StewardFailOpenEnv,
  StewardKey,
  UnavailableReason,
  VerifyCode,
  VerifyResult,
} from "./types.ts";
export { rateLimitHeaders } from "./answers.ts";
export { NegativeCache } from "./negative_cache.ts";

/** Why Steward gave no verdict, for `onStewardError` (never carries the key). */
export type StewardError =
  | { kind: "unavailable"; reason: UnavailableReason; status?: number }
  | { kind: "refused"; status: number; code: string | null };

export interface StewardOptions {
  /** Steward's base URL, e.g. `https://steward.example.com`. */
  url: string;
  /** A service token holding the `keys:verify` permission. */
  token: string;
  /** Scopes the key must all hold (else 403 INSUFFICIENT_SCOPES). */
  scopes?: string[];
  /** Quota units each request spends (Steward's default: 1; 0 checks without spending). */
  cost?: number;
  /** Only keys of this environment pass (a key of the other one is NOT_FOUND). */
  environment?: "live" | "test";
  /**
   * The one header to read the key from. Default: `Authorization: Bearer <key>`, else
   * `x-api-key`. When this names `authorization`, the `Bearer ` scheme is stripped.
   */
  header?: string;
  /** How long to wait for Steward's verdict (default 500 ms). */
  timeoutMs?: number;
  /**
   * When Steward times out, cannot be reached, or fails (5xx, 429): false (default) answers
   * 503; true lets the request through with `c.get("steward")` = `{ degraded: true, reason }`.
   * A refusal of the gateway's own token (401, 403, 400) is always 503: a misconfigured
   * gateway never opens.
   */
  failOpen?: boolean;
  /**
   * How long NOT_FOUND, REVOKED and EXPIRED verdicts are remembered (default 5000 ms, like
   * Steward's own cross-process cache window; 0 turns the memory off). A remembered key is
   * refused without a call to Steward, so a key whose `expires_at` is moved into the future
   * again passes only once its entry runs out.
   */
  negativeCacheMs?: number;
  /** Most keys remembered at once (default 10,000; the oldest makes room). */
  negativeCacheSize?: number;
  /** The fetch to call Steward with (default: the global one, which keeps connections alive). */
  fetch?: typeof fetch;
  /** Called when Steward gave no verdict (to log or count it); gets no key. */
  onStewardError?: (error: StewardError) => void;
}

/** Steward's limit on a key's length: a longer one cannot be a key. */
const MAX_KEY_LENGTH = 256;
const BEARER = /^Bearer\s+(\S+)\s*$/i;

function keyReader(header: string | undefined): (c: Context) => string | null {
  if (header !== undefined && header.toLowerCase() !== "authorization") {
    return (c) => c.req.header(header)?.trim() || null;
  }
  const bearer = (c: Context) => BEARER.exec(c.req.header("authorization") ?? "")?.[1] ?? null;
  if (header !== undefined) return bearer;
  return (c) => bearer(c) ?? (c.req.header("x-api-key")?.trim() || null);
}

/** The context's view of a VALID verdict. */
const validKey = (v: VerifyResult): StewardKey => ({
  degraded: false,
  key_id: v.key_id!,
  tenant_id: v.tenant_id!,
  project_id: v.project_id,
  environment: v.environment,
  scopes: v.scopes,
  meta: v.meta,
  plan: v.plan,
  ratelimit: v.ratelimit,
  quota: v.quota,
  expires_at: v.expires_at,
});

export function steward(
  options: StewardOptions & { failOpen: true },
): MiddlewareHandler<StewardFailOpenEnv>;
export function steward(
  options: StewardOptions & { failOpen?: false },
): MiddlewareHandler<StewardEnv>;
export function steward(options: StewardOptions): MiddlewareHandler<StewardFailOpenEnv>;
export function steward(
  options: StewardOptions,
): MiddlewareHandler<StewardEnv> | MiddlewareHandler<StewardFailOpenEnv> {
  const verify = verifyClient({
    url: options.url,
    token: options.token,
    timeoutMs: options.timeoutMs ?? 500,
    fetch: options.fetch ?? globalThis.fetch,
  });
  const readKey = keyReader(options.header);
  const failOpen = options.failOpen ?? false;
  const memoryMs = options.negativeCacheMs ?? 5_000;
  const memory = memoryMs > 0 ? new NegativeCache(memoryMs, options.negativeCacheSize) : null;
  const fixed: Omit<VerifyCall, "key"> = {};
  if (options.scopes) fixed.scopes = options.scopes;
  if (options.cost !== undefined) fixed.cost = options.cost;
  if (options.environment) fixed.environment = options.environment;
  const onError = options.onStewardError;

  const middleware: MiddlewareHandler<StewardFailOpenEnv> = async (c, next) => {
    const key = readKey(c);
    if (key === null) return answer(c, refusal("MISSING_KEY"));
    if (key.length > MAX_KEY_LENGTH) return answer(c, refusal("NOT_FOUND"));

    // Hashed only once some bad key is remembered: good traffic alone pays nothing.
    let digest: string | null = null;
    if (memory && memory.size > 0) {
      digest = await keyDigest(key);
      const remembered = memory.get(digest);
      if (remembered) return answer(c, refusal(remembered));
    }

    const outcome = await verify({ key, ...fixed });
    if (outcome.kind === "verdict") {
      const v = outcome.result;
      if (v.valid && v.code === "VALID") {
        c.set("steward", validKey(v));
        return await next();
      }
      // An answer that contradicts itself is no verdict.
      if (v.code === "VALID") return answer(c, refusal("STEWARD_UNAVAILABLE"));
      if (memory && remembers(v.code)) {
        memory.remember(digest ?? await keyDigest(key), v.code);
      }
      return answer(c, refusal(v.code, v));
    }
    onError?.(outcome);
    if (outcome.kind === "unavailable" && failOpen) {
      const degraded: StewardDegraded = { degraded: true, reason: outcome.reason };
      c.set("steward", degraded);
      return await next();
    }
    return answer(c, refusal("STEWARD_UNAVAILABLE"));
  };
  return middleware;
}

function answer(c: Context, r: ReturnType<typeof refusal>): Response {
  return c.json(r.body, r.status, r.headers);
}
