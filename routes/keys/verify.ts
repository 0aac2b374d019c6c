/**
 * POST /v1/keys/verify: the gateway's hot path. The OpenAPI route below is the reference
 * implementation and answers every case; `verifyFastPath` answers the common one — a
 * well-formed request from a token holding keys:verify — without Hono's middleware chain,
 * which costs several times the verification itself (bench/RESULTS.md), and hands anything
 * else (errors, Idempotency-Key) to the full chain, so every error is still answered there.
 */
import { z } from "@hono/zod-openapi";
import { recordRequest } from "../../domain/usage/activity.ts";
import type { Services } from "../../domain/shared/services.ts";
import {
  authenticateToken,
  authenticateTokenCached,
  SERVICE_TOKEN_PREFIX,
} from "../../domain/keys/tokens.ts";
import { type Verifier, VERIFY_CODES } from "../../domain/keys/verify.ts";
import { addAnswerHeaders, requestIdFrom } from "../middleware/request.ts";
import { preSpent, tooManyRequests } from "../middleware/rate_limit.ts";
import { ipBlocked } from "../middleware/ip_guard.ts";
import { API_KEY } from "../middleware/auth.ts";
import type { IpGuard } from "../../domain/protection/ip_guard.ts";
import type { AppError } from "../../domain/shared/errors.ts";
import {
  type ApiRateLimiter,
  policyField,
  rateField,
  type RateVerdict,
} from "../../domain/access/api_rate_limit.ts";
import { byteLength, clientAddress, ok } from "../respond.ts";
import type { Cidr } from "../../domain/shared/ip_address.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonBody, jsonResponse } from "../schemas.ts";
import { KEY_SECRET } from "./api_keys.ts";

const VerifyRequest = z.strictObject({
  key: z.string().min(1).max(256).openapi({ example: KEY_SECRET }),
  scopes: z.array(z.string().min(1).max(64)).max(100).optional().openapi({
    description: "Scopes the key must all hold.",
    example: ["orders:read"],
  }),
  cost: z.number().int().min(0).max(1_000_000).optional().openapi({
    description: "Quota units this call spends (default 1; 0 checks without spending).",
    example: 1,
  }),
  environment: z.enum(["live", "test"]).optional().openapi({
    description: "When given, a key of the other environment is NOT_FOUND.",
  }),
}).openapi("VerifyKeyRequest", {
  example: { key: KEY_SECRET, scopes: ["orders:read"], environment: "live" },
});

const VerifyResponse = z.object({
  valid: z.boolean(),
  code: z.enum(VERIFY_CODES),
  key_id: z.string().nullable().openapi({ example: "key_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  tenant_id: z.string().nullable().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  project_id: z.string().nullable().openapi({ example: "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  environment: z.enum(["live", "test"]).nullable(),
  scopes: z.array(z.string()).openapi({ example: ["orders:read", "orders:write"] }),
  meta: z.record(z.string(), z.unknown()).openapi({ example: { customer: "cus_123" } }),
  plan: z.object({ code: z.string().openapi({ example: "pro" }) }).nullable(),
  ratelimit: z.object({
    limit: z.number().openapi({ example: 20 }),
    remaining: z.number().openapi({ example: 19 }),
    reset: z.number().openapi({
      description: "When the current window ends (epoch ms).",
      example: 1_769_860_801_000,
    }),
  }).nullable(),
  quota: z.object({
    limit: z.number().nullable().openapi({ example: 1_000_000 }),
    used: z.number().openapi({ example: 48_213 }),
    remaining: z.number().nullable().openapi({ example: 951_787 }),
    period_end: z.string().openapi({ example: "2026-02-01T00:00:00.000Z" }),
  }).nullable(),
  expires_at: z.string().nullable().openapi({ example: null }),
}).openapi("VerifyKeyResult");

export function verifyRoutes(verifier: Verifier) {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/keys/verify",
      tags: ["Verify"],
      summary: "Verify an API key",
      description: "200 for every business outcome: `valid` and `code` say which. Checks run " +
        "in the order of the codes (NOT_FOUND, REVOKED, EXPIRED, TENANT_SUSPENDED, " +
        "INSUFFICIENT_SCOPES, RATE_LIMITED, USAGE_EXCEEDED); only a VALID call spends rate " +
        "limit and quota. A warm key is answered from memory; changes made by another " +
        "process are seen within `STEWARD_VERIFY_CACHE_MS`. A token bound to a tenant " +
        "verifies only that tenant's keys.",
      request: { body: jsonBody(VerifyRequest) },
      responses: { 200: jsonResponse(envelope(VerifyResponse), "The verdict.") },
    }),
    async (c) => ok(c, await verifier.verify(c.req.valid("json"), c.get("principal").tenant_id)),
  );

  return app;
}

/** A JSON answer with the headers every answer carries (request id, security headers). */
function jsonAnswer(body: string, status: number, requestId: string): Response {
  // No init object for the hot path's 200: converting one costs throughput.
  const res = status === 200 ? new Response(body) : new Response(body, { status });
  // Set one by one: cheaper than a headers list in the constructor (webidl conversion).
  res.headers.set("Content-Type", "application/json");
  addAnswerHeaders(res.headers, requestId);
  return res;
}

/** A fast-path answer with what the request log records of it. */
interface Answer {
  res: Response;
  bytes: number;
  requestId: string;
  code: string | null;
}

/** An error in the envelope, as the full chain answers it (routes/errors.ts). */
function errorAnswer(err: AppError, status: number, requestId: string): Answer {
  const body = JSON.stringify({
    success: false,
    error: { code: err.code, message: err.message, request_id: requestId },
  });
  const res = jsonAnswer(body, status, requestId);
  if (err.retryAfter !== undefined) res.headers.set("Retry-After", String(err.retryAfter));
  return { res, bytes: byteLength(body), requestId, code: err.code };
}

/** 429 with the rate limit's headers. */
function refused(spent: RateVerdict, requestId: string): Answer {
  const answer = errorAnswer(tooManyRequests(spent), 429, requestId);
  answer.res.headers.set("RateLimit-Policy", policyField(spent));
  answer.res.headers.set("RateLimit", rateField(spent));
  return answer;
}

/** Who made the call, as the request log records it. */
type Who = { principal: string | null; tenant: string | null };
const NOBODY: Who = { principal: null, tenant: null };

/** Whether `req` is a call of POST /v1/keys/verify (a query string sends it the long way). */
export const isVerify = (req: Request) =>
  req.method === "POST" && req.url.endsWith("/v1/keys/verify");
const BEARER = new RegExp(`^Bearer (${SERVICE_TOKEN_PREFIX}_\\S{1,508})$`);
const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * A handler for requests `isVerify` picks: a Response for the common verify, or the request
 * (rebuilt when its body was read) for the full chain to answer. It applies
 * the route's rules (blocked addresses, body schema, keys:verify, tenant binding, body limit,
 * rate limits, request counter, request id, security headers), so both answer a call alike
 * (tests/keys/verify_fast_path_test.ts compares them).
 */
export function verifyFastPath(
  svc: Services,
  verifier: Verifier,
  bodyLimit: number,
  trustedProxies: readonly Cidr[],
  guard: IpGuard,
  limiter: ApiRateLimiter | null = null,
) {
  return async (req: Request, info?: unknown): Promise<Response | Request> => {
    const started = performance.now();
    const h = req.headers;
    const length = Number(h.get("content-length") ?? NaN);
    /**
     * The answer counted in traffic and, when sampled (errors always are), logged: what the
     * chain's request log does. An entry is built only for the requests sampled.
     */
    const answered = (answer: Answer, who: Who = NOBODY) => {
      const aggregator = svc.aggregator;
      const bytesIn = length || 0;
      const { res, bytes } = answer;
      const status = res.status;
      const counted = { status, bytes_in: bytesIn, bytes_out: bytes, verification: true };
      if (aggregator.count(counted)) {
        aggregator.log({
          status,
          bytes_in: bytesIn,
          bytes_out: bytes,
          method: "POST",
          route: "/v1/keys/verify",
          path: "/v1/keys/verify",
          duration_ms: Math.round((performance.now() - started) * 100) / 100,
          tenant_id: who.tenant,
          principal_id: who.principal,
          ip: clientAddress(info, h.get("x-forwarded-for"), trustedProxies),
          user_agent: h.get("user-agent")?.slice(0, 512) ?? null,
          request_id: answer.requestId,
          error_code: answer.code,
        });
      }
      return res;
    };
    // The address is read only while some block exists.
    if (guard.rules.blocking) {
      const block = guard.refuse(clientAddress(info, h.get("x-forwarded-for"), trustedProxies));
      if (block) {
        const requestId = requestIdFrom(h.get("x-request-id"));
        return answered(errorAnswer(ipBlocked(block, svc.now()), 403, requestId));
      }
    }
    // Authorization wins over x-api-key, as in routes/middleware/auth.ts.
    const authorization = h.get("authorization");
    const secret = authorization !== null
      ? BEARER.exec(authorization)?.[1]
      : API_KEY.exec(h.get("x-api-key") ?? "")?.[0];
    if (
      !secret || h.has("idempotency-key") || !JSON_TYPE.test(h.get("content-type") ?? "") ||
      !(length > 0 && length <= bodyLimit)
    ) return req;
    const text = await req.text();
    // The body is read now: the full chain gets a fresh copy of the request.
    const again = () => new Request(req.url, { method: "POST", headers: h, body: text });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return again();
    }
    const parsed = VerifyRequest.safeParse(body);
    // Without a promise when memory holds the token: every promise here costs throughput.
    let principal = parsed.success ? authenticateTokenCached(svc, secret) : null;
    if (principal === undefined) principal = await authenticateToken(svc, secret);
    // A refused token spends its IP's unauthenticated budget here, as the full chain would.
    if (principal === null && parsed.success && limiter) {
      const ip = clientAddress(info, h.get("x-forwarded-for"), trustedProxies);
      const spent = limiter.spendAnonymous(ip, svc.now());
      if (!spent.allowed) {
        guard.note(ip, "rate_limited");
        const requestId = requestIdFrom(h.get("x-request-id"));
        return answered(refused(spent, requestId));
      }
      const forward = again();
      preSpent.set(forward, spent);
      return forward;
    }
    if (!parsed.success || !principal?.platform.has("keys:verify")) return again();
    recordRequest(svc.counters, principal.id, svc.now());
    const requestId = requestIdFrom(h.get("x-request-id"));
    const verdict = verifier.verify(parsed.data, principal.tenant_id);
    const data = verdict instanceof Promise ? await verdict : verdict;
    const answer = JSON.stringify({ success: true, data, meta: { request_id: requestId } });
    // A string body: Deno encodes it without a JS-side buffer.
    return answered(
      { res: jsonAnswer(answer, 200, requestId), bytes: byteLength(answer), requestId, code: null },
      { principal: principal.id, tenant: data.tenant_id ?? principal.tenant_id },
    );
  };
}
