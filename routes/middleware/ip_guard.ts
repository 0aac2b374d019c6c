/**
 * The IP guard on every request (domain/protection/ip_guard.ts), run by the request context
 * (routes/middleware/request.ts): a blocked source address gets 403 before authentication, and
 * each error answer counts against its address's reputation. Verify's fast path applies the same
 * two rules (routes/keys/verify.ts).
 */
import type { Context } from "hono";
import type { IpGuard } from "../../domain/protection/ip_guard.ts";
import type { ActivityKind } from "../../domain/protection/ip_reputation.ts";
import type { BlockInForce } from "../../domain/protection/ip_rules.ts";
import { AppError } from "../../domain/shared/errors.ts";
import { iso } from "../../domain/shared/time.ts";
import type { AppDeps, AppEnv } from "../context.ts";
import { clientIp } from "../respond.ts";

const LOGIN = "/v1/auth/login";

/** What an error answer says of its caller: a failed login, a refused token, a 429, or a 4xx. */
export function activityOf(status: number, path: string): ActivityKind | null {
  if (status < 400 || status >= 500) return null;
  if (status === 429) return "rate_limited";
  if (status === 401) return path === LOGIN ? "login_failures" : "auth_failures";
  return "client_errors";
}

/** 403 in the envelope; a block with an end says when to come back. */
export function ipBlocked(block: BlockInForce, now: number): AppError {
  const ends = block.until !== Infinity;
  return new AppError(
    "FORBIDDEN",
    `requests from this address are blocked${ends ? ` until ${iso(block.until)}` : ""}`,
    undefined,
    ends ? Math.max(1, Math.ceil((block.until - now) / 1000)) : undefined,
  );
}

/**
 * The refusal of a request from a blocked address, or null. The address is read only while some
 * block exists (and by noteAnswer, once the answer is an error).
 */
export function refusal(c: Context<AppEnv>, { ipGuard, svc }: AppDeps): AppError | null {
  const block = ipGuard.rules.blocking ? ipGuard.refuse(clientIp(c)) : null;
  return block ? ipBlocked(block, svc.now()) : null;
}

/** Counts an error answer against its caller's address. */
export function noteAnswer(c: Context<AppEnv>, guard: IpGuard) {
  const kind = activityOf(c.res.status, c.req.path);
  if (kind) guard.note(clientIp(c), kind);
}
