/**
 * The fetch under the client: one logical call, its `Idempotency-Key`, its bounded retries, and
 * its error thrown as a `StewardError`.
 *
 * A POST gets a random key once per call, and every retry of that call sends the same one, so a
 * retried creation happens once (Steward replays the first answer). A 429 is retried whatever the
 * method (Steward refused it before doing anything); a 5xx or a network error only when the call
 * is safe to repeat: GET, HEAD, PUT, DELETE, OPTIONS, or a POST with an idempotency key.
 */
import { StewardError } from "./errors.ts";

export interface RetryOptions {
  /** Attempts per call, the first included (default 3; 1 turns retries off). */
  attempts?: number;
  /** The longest single wait; a `Retry-After` beyond it ends the retries at once (default 10 s). */
  maxWaitMs?: number;
  /** The first backoff without `Retry-After`, doubled each attempt and jittered (default 250 ms). */
  baseDelayMs?: number;
}

export type FetchLike = (request: Request) => Promise<Response>;

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

/** Milliseconds `Retry-After` asks for (seconds or an HTTP date), or null when absent or bad. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null || header.trim() === "") return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : null;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Exponential backoff with jitter (half to all of the step), at most `maxWaitMs`. */
function backoffMs(attempt: number, baseDelayMs: number, maxWaitMs: number): number {
  const step = Math.min(maxWaitMs, baseDelayMs * 2 ** (attempt - 1));
  return step / 2 + Math.random() * (step / 2);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** `base` with an idempotency key on POSTs (when `idempotency`), retries, and thrown errors. */
export function stewardFetch(
  base: FetchLike,
  retry: RetryOptions | false,
  idempotency: boolean,
): FetchLike {
  const attempts = retry === false ? 1 : Math.max(1, retry.attempts ?? 3);
  const maxWaitMs = retry === false ? 0 : retry.maxWaitMs ?? 10_000;
  const baseDelayMs = retry === false ? 0 : retry.baseDelayMs ?? 250;

  return async (input) => {
    let request = input;
    if (idempotency && request.method === "POST" && !request.headers.has("Idempotency-Key")) {
      const headers = new Headers(request.headers);
      headers.set("Idempotency-Key", crypto.randomUUID());
      request = new Request(request, { headers });
    }
    const repeatable = IDEMPOTENT_METHODS.has(request.method) ||
      (request.method === "POST" && request.headers.has("Idempotency-Key"));

    for (let attempt = 1;; attempt++) {
      const last = attempt >= attempts;
      let response: Response;
      try {
        // A clone per attempt: a body can be read once, and every attempt sends it whole.
        response = await base(last ? request : request.clone());
      } catch (err) {
        if (last || !repeatable || request.signal.aborted) throw err;
        await sleep(backoffMs(attempt, baseDelayMs, maxWaitMs), request.signal);
        continue;
      }
      if (response.status < 400) return response;
      const retryable = response.status === 429 || (response.status >= 500 && repeatable);
      if (!last && retryable) {
        const asked = retryAfterMs(response.headers.get("Retry-After"));
        // A wait beyond the bound would only be refused again sooner: give the answer back now.
        if (asked === null || asked <= maxWaitMs) {
          await response.body?.cancel();
          await sleep(asked ?? backoffMs(attempt, baseDelayMs, maxWaitMs), request.signal);
          continue;
        }
      }
      throw await StewardError.from(response);
    }
  };
}
