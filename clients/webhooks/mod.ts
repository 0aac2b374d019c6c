/**
 * Receives Steward's webhooks: checks the Standard Webhooks signature (the `standardwebhooks`
 * package signs; the comparison is constant-time), refuses a timestamp further than the tolerance
 * from now either way (a replayed or pre-dated delivery), and returns the event typed by its
 * `type` from the generated catalog (`events.gen.ts`).
 *
 * ```ts
 * const receiver = createReceiver({ secret: Deno.env.get("STEWARD_WEBHOOK_SECRET")! });
 * Deno.serve(receiver.handler(({ id, event }) => {
 *   if (event.type === "tenant.created") console.log(id, event.data.slug);
 * }));
 * ```
 */
import { Webhook } from "standardwebhooks";
import { EVENT_TYPES, type WebhookEvent } from "./events.gen.ts";

export * from "./events.gen.ts";

/** Why a delivery was refused. */
export type VerificationFailure =
  /** `webhook-id`, `webhook-timestamp` or `webhook-signature` is absent or malformed. */
  | "missing_headers"
  /** No `v1` signature matches the body under any of the secrets. */
  | "bad_signature"
  /** The timestamp is further from now than the tolerance (in the past or the future). */
  | "stale_timestamp"
  /** The body is not a `{ type, timestamp, data }` object. */
  | "bad_payload"
  /** The type is not in the catalog these types were generated from: regenerate them. */
  | "unknown_type";

export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
  constructor(readonly reason: VerificationFailure, message: string) {
    super(message);
  }
}

export interface ReceiverOptions {
  /**
   * The endpoint's secret as Steward shows it (`whsec_…`); several while rotating your own
   * configuration (Steward itself signs with the new and the previous secret during its grace).
   */
  secret: string | readonly string[];
  /** How far the timestamp may be from now, either way (default 300 s). */
  toleranceSeconds?: number;
  /** The clock, in milliseconds (tests). */
  now?: () => number;
}

/** A verified delivery: the message id (the same on every retry: deduplicate on it) and event. */
export interface VerifiedWebhook {
  id: string;
  /** When Steward signed this attempt. */
  timestamp: Date;
  event: WebhookEvent;
}

export interface Receiver {
  /** Verifies a raw body with its headers; throws a `WebhookVerificationError`. */
  verify(body: string, headers: Headers | Record<string, string>): VerifiedWebhook;
  /** Reads the request's raw body and verifies it. */
  receive(req: Request): Promise<VerifiedWebhook>;
  /**
   * A `(Request) => Response` for `Deno.serve` or a Hono route (`c.req.raw`): 204 once `onEvent`
   * returns, 400 with `{ "error": reason }` when verification fails, 500 when `onEvent` throws
   * (so Steward retries).
   */
  handler(
    onEvent: (webhook: VerifiedWebhook) => void | Promise<void>,
  ): (req: Request) => Promise<Response>;
}

export const DEFAULT_TOLERANCE_SECONDS = 300;

const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

function headerMap(headers: Headers | Record<string, string>): Map<string, string> {
  const entries = headers instanceof Headers ? headers.entries() : Object.entries(headers);
  return new Map([...entries].map(([k, v]) => [k.toLowerCase(), v]));
}

/** Compares without stopping at the first difference (a signature's length is no secret). */
function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function eventOf(body: string): WebhookEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new WebhookVerificationError("bad_payload", "the body is not JSON");
  }
  const e = parsed as Partial<Record<keyof WebhookEvent, unknown>> | null;
  if (
    typeof e !== "object" || e === null || typeof e.type !== "string" ||
    typeof e.timestamp !== "string" || typeof e.data !== "object" || e.data === null
  ) {
    throw new WebhookVerificationError("bad_payload", "the body is not { type, timestamp, data }");
  }
  if (!KNOWN_TYPES.has(e.type)) {
    throw new WebhookVerificationError("unknown_type", `unknown event type ${e.type}`);
  }
  return parsed as WebhookEvent;
}

export function createReceiver(options: ReceiverOptions): Receiver {
  const secrets = [options.secret].flat();
  if (secrets.length === 0) throw new TypeError("a webhook secret is required");
  // Decodes each secret now, so a malformed one fails at start-up rather than per delivery.
  const signers = secrets.map((s) => new Webhook(s));
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = options.now ?? Date.now;

  function verify(body: string, headers: Headers | Record<string, string>): VerifiedWebhook {
    const h = headerMap(headers);
    const id = h.get("webhook-id");
    const stamp = h.get("webhook-timestamp");
    const signatures = h.get("webhook-signature");
    if (!id || !stamp || !signatures || !/^\d+$/.test(stamp)) {
      throw new WebhookVerificationError(
        "missing_headers",
        "webhook-id, webhook-timestamp (seconds) and webhook-signature are required",
      );
    }
    const seconds = Number(stamp);
    if (Math.abs(now() / 1000 - seconds) > tolerance) {
      throw new WebhookVerificationError(
        "stale_timestamp",
        `the timestamp is more than ${tolerance} s from now`,
      );
    }
    const timestamp = new Date(seconds * 1000);
    const expected = signers.map((s) => s.sign(id, timestamp, body));
    const given = signatures.split(" ").filter((s) => s.startsWith("v1,"));
    if (!given.some((g) => expected.some((e) => constantTimeEqual(g, e)))) {
      throw new WebhookVerificationError("bad_signature", "no signature matches the body");
    }
    return { id, timestamp, event: eventOf(body) };
  }

  const receive = async (req: Request) => verify(await req.text(), req.headers);

  const handler: Receiver["handler"] = (onEvent) => async (req) => {
    let webhook: VerifiedWebhook;
    try {
      webhook = await receive(req);
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      return Response.json({ error: err.reason, message: err.message }, { status: 400 });
    }
    try {
      await onEvent(webhook);
    } catch (err) {
      console.error(`webhook ${webhook.id} (${webhook.event.type}) failed:`, err);
      return new Response(null, { status: 500 });
    }
    return new Response(null, { status: 204 });
  };

  return { verify, receive, handler };
}

/** Verifies one delivery with `secret`: `createReceiver({ secret, ...options }).verify(…)`. */
export function verifyWebhook(
  secret: string | readonly string[],
  body: string,
  headers: Headers | Record<string, string>,
  options: Omit<ReceiverOptions, "secret"> = {},
): VerifiedWebhook {
  return createReceiver({ secret, ...options }).verify(body, headers);
}
