/**
 * The edge towards Stripe: the official SDK built the one way Steward uses it (fetch, Web Crypto,
 * an API origin that tests point at a local fake), every call noted when it works (the sync
 * status shows the last success), and Stripe's failures turned into the API's answers.
 */
import Stripe from "stripe";
import { keys } from "../../kv/keys.ts";
import { commit } from "../../kv/commit.ts";
import { AppError } from "../shared/errors.ts";
import type { Services, StripeAccess } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

/** Stripe's HMAC over Web Crypto: the SDK's synchronous Node crypto is not there on Deno. */
export const STRIPE_CRYPTO = Stripe.createSubtleCryptoProvider();

/** The SDK client for `apiUrl` (Stripe's own, or a fake), with the webhook signing secret. */
export function stripeAccess(
  secretKey: string,
  webhookSecret: string,
  apiUrl: string,
): StripeAccess {
  const url = new URL(apiUrl);
  const protocol = url.protocol === "http:" ? "http" : "https";
  const client = new Stripe(secretKey, {
    httpClient: Stripe.createFetchHttpClient(),
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === "http" ? 80 : 443,
    protocol,
    // The SDK retries connection failures, 409s and 5xx, with an idempotency key on POSTs.
    maxNetworkRetries: 2,
    // A request waits at most this long; a job retries later, a route answers 503.
    timeout: 20_000,
  });
  return { client, webhookSecret };
}

/** Stripe, or 409 when it is not configured (everything else works without it). */
export function stripeOf(svc: Services): StripeAccess {
  if (!svc.stripe) throw new AppError("CONFLICT", "Stripe is not configured");
  return svc.stripe;
}

/** What keys.stripeSync holds: when Steward last heard from Stripe, each way. */
export interface StripeSyncMarks {
  last_event_at: string | null;
  last_api_success_at: string | null;
}

/** Moves one mark forward to now (a status figure: a lost race keeps the other writer's time). */
export async function noteSync(svc: Services, mark: keyof StripeSyncMarks): Promise<void> {
  const at = iso(svc.now());
  for (let tries = 0; tries < 5; tries++) {
    const current = await svc.kv.get<StripeSyncMarks>(keys.stripeSync());
    const marks = current.value ?? { last_event_at: null, last_api_success_at: null };
    if (marks[mark] !== null && marks[mark]! >= at) return;
    const op = svc.kv.atomic().check(current).set(keys.stripeSync(), { ...marks, [mark]: at });
    if (await commit(op)) return;
  }
}

/** Runs one call on the Stripe client; a success is noted (last_api_success_at). */
export async function callStripe<T>(
  svc: Services,
  call: (client: Stripe) => Promise<T>,
): Promise<T> {
  const result = await call(stripeOf(svc).client);
  await noteSync(svc, "last_api_success_at");
  return result;
}

export const isStripeError = (err: unknown): err is Stripe.errors.StripeError =>
  err instanceof Stripe.errors.StripeError;

/** Stripe has no such object (a 404 `resource_missing`). */
export const isMissing = (err: unknown) =>
  isStripeError(err) && (err.statusCode === 404 || err.code === "resource_missing");

/**
 * Worth trying again later: Stripe unreachable, overloaded, rate limiting or failing, or
 * refusing the key (which an operator may fix). A request Stripe refused as invalid is not.
 */
export const isTransient = (err: unknown) =>
  isStripeError(err) &&
  (err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeAPIError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    err instanceof Stripe.errors.StripeAuthenticationError ||
    err instanceof Stripe.errors.StripePermissionError ||
    (err.statusCode ?? 0) >= 500);

/** A Stripe failure as the API's answer: 404 for a missing object, 400 refused, else 503. */
export function stripeFailure(err: unknown): unknown {
  if (!isStripeError(err)) return err;
  const said = `Stripe: ${err.message}`.slice(0, 500);
  if (isMissing(err)) return new AppError("NOT_FOUND", said);
  if (isTransient(err)) return new AppError("UNAVAILABLE", said, undefined, 30);
  return new AppError("BAD_REQUEST", said);
}

/** callStripe, with a failure answered as stripeFailure says (for routes). */
export async function askStripe<T>(
  svc: Services,
  call: (client: Stripe) => Promise<T>,
): Promise<T> {
  try {
    return await callStripe(svc, call);
  } catch (err) {
    throw stripeFailure(err);
  }
}
