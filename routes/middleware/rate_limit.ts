/**
 * The API's rate limits as middleware (domain/access/api_rate_limit.ts; which budget a route
 * spends: routes/rate_limits.ts). It wraps the route's guard, because who is limited is known
 * only once credentials are checked: an authenticated call spends its principal's budget, one
 * without valid credentials (401), or on a public route, its client IP's. Every limited answer
 * carries `RateLimit-Policy` and `RateLimit`; a refused one is 429 with `Retry-After`.
 */
import type { Context, MiddlewareHandler } from "hono";
import {
  type ApiRateLimiter,
  policyField,
  type PrincipalBudget,
  rateField,
  type RateVerdict,
} from "../../domain/access/api_rate_limit.ts";
import { AppError } from "../../domain/shared/errors.ts";
import type { AppEnv } from "../context.ts";
import type { Access } from "../permissions.ts";
import { clientIp } from "../respond.ts";
import { guard } from "./auth.ts";

/**
 * Requests whose unauthenticated spend verify's fast path already made (routes/keys/verify.ts)
 * before handing them to the full chain, which then does not spend it twice.
 */
export const preSpent = new WeakMap<Request, RateVerdict>();

export const tooManyRequests = (v: RateVerdict) =>
  new AppError(
    "RATE_LIMITED",
    `too many requests (the ${v.budget} budget); retry in ${v.retryAfter} s`,
    undefined,
    v.retryAfter,
  );

function answer(c: Context<AppEnv>, v: RateVerdict) {
  c.header("RateLimit-Policy", policyField(v));
  c.header("RateLimit", rateField(v));
  if (!v.allowed) throw tooManyRequests(v);
}

function spendAnonymous(c: Context<AppEnv>, limiter: ApiRateLimiter) {
  answer(c, preSpent.get(c.req.raw) ?? limiter.spendAnonymous(clientIp(c), c.get("svc").now()));
}

/**
 * The route's guard (routes/middleware/auth.ts) with the limits around it. `budget` null: the
 * route is not limited, but a call without valid credentials still spends its IP's budget.
 */
export function limitedGuard(
  access: Access,
  tenantScoped: boolean,
  budget: PrincipalBudget | null,
): MiddlewareHandler<AppEnv> {
  const inner = guard(access, tenantScoped);
  if (access === "public") {
    if (!budget) return inner;
    return async (c, next) => {
      const limiter = c.get("rateLimiter");
      if (limiter) spendAnonymous(c, limiter);
      await next();
    };
  }
  return async (c, next) => {
    const limiter = c.get("rateLimiter");
    if (!limiter) return await inner(c, next);
    let passed = false;
    try {
      await inner(c, async () => {
        passed = true;
        if (budget) answer(c, limiter.spend(c.get("principal"), budget, c.get("svc").now()));
        await next();
      });
    } catch (err) {
      if (!passed) {
        // Refused after authenticating (403, 404) still spends; no valid credentials spend the IP's.
        const principal = c.get("principal");
        if (principal) {
          if (budget) answer(c, limiter.spend(principal, budget, c.get("svc").now()));
        } else if (err instanceof AppError && err.code === "UNAUTHORIZED") {
          spendAnonymous(c, limiter);
        }
      }
      throw err;
    }
  };
}
