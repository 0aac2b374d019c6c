/**
 * When a failed webhook delivery is tried again, and when Steward gives up on an endpoint.
 * Retries follow the Standard Webhooks / Svix schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 10 h after the attempt before, each ±20 % so that a receiver that was down is not hit by every
 * retry at once. A `Retry-After` answer can make the wait longer (up to 10 h), never shorter.
 */
import type { WebhookRetryBounds } from "../shared/services.ts";

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const RETRY_DELAYS_MS = [
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  10 * HOUR,
] as const;

/** The first attempt and every retry. */
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;
const JITTER = 0.2;
/** The longest wait a `Retry-After` may ask for. */
const MAX_RETRY_AFTER_MS = 10 * HOUR;
/** A 2xx within this is a success; anything slower is a failed attempt. */
export const ATTEMPT_TIMEOUT_MS = 15 * SECOND;
/** An endpoint whose every attempt failed for this long is disabled. */
export const DISABLE_AFTER_MS = 5 * 24 * HOUR;
/** How much of a response body an attempt keeps. */
export const RESPONSE_BODY_LIMIT = 4_096;

/** The longest step of the schedule (the default bound of a wait). */
export const MAX_RETRY_DELAY_MS = Math.max(...RETRY_DELAYS_MS);

/**
 * The wait after failed attempt number `attempt` (1 = the first attempt) of a series, with
 * jitter, or null when it was the last. `retryAfterMs` is what the receiver asked for. `bounds`
 * (runtime configuration) end the series sooner and cut the schedule's longer waits.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | null = null,
  random: () => number = Math.random,
  bounds: WebhookRetryBounds = {},
): number | null {
  const step = RETRY_DELAYS_MS[attempt - 1];
  if (step === undefined || attempt >= (bounds.maxAttempts ?? MAX_ATTEMPTS)) return null;
  const base = Math.min(step, bounds.maxDelayMs ?? step);
  const jittered = Math.round(base * (1 - JITTER + 2 * JITTER * random()));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

/** A `Retry-After` header (delay in seconds, or an HTTP date) as milliseconds from `now`. */
export function parseRetryAfter(header: string | null, now: number): number | null {
  const value = header?.trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * SECOND;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
