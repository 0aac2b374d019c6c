/**
 * One call of Steward's `POST /v1/keys/verify`, bounded by a timeout, turned into a verdict or
 * the reason there is none. The key travels only in the request body; no error message built
 * here contains it.
 */
import type { UnavailableReason, VerifyResult } from "./types.ts";

export interface VerifyCall {
  key: string;
  scopes?: string[];
  cost?: number;
  environment?: "live" | "test";
}

export type VerifyOutcome =
  | { kind: "verdict"; result: VerifyResult }
  /** Steward did not answer in time, could not be reached, or failed (5xx, 429). */
  | { kind: "unavailable"; reason: UnavailableReason; status?: number }
  /** Steward refused the gateway's own call (bad token, missing keys:verify, bad options). */
  | { kind: "refused"; status: number; code: string | null };

export interface VerifyClientOptions {
  url: string;
  token: string;
  timeoutMs: number;
  fetch: typeof fetch;
}

export function verifyClient(
  opts: VerifyClientOptions,
): (call: VerifyCall) => Promise<VerifyOutcome> {
  const endpoint = `${opts.url.replace(/\/+$/, "")}/v1/keys/verify`;
  const authorization = `Bearer ${opts.token}`;
  const doFetch = opts.fetch;
  return async (call) => {
    let res: Response;
    try {
      // Deno's fetch pools connections per origin and keeps them alive between calls.
      res = await doFetch(endpoint, {
        method: "POST",
        headers: { "Authorization": authorization, "Content-Type": "application/json" },
        body: JSON.stringify(call),
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof DOMException && err.name === "TimeoutError";
      return { kind: "unavailable", reason: timedOut ? "timeout" : "unreachable" };
    }
    let body: { data?: VerifyResult; error?: { code?: string } } | undefined;
    try {
      body = await res.json();
    } catch (err) {
      // The timeout also covers reading the body.
      const timedOut = err instanceof DOMException && err.name === "TimeoutError";
      if (timedOut) return { kind: "unavailable", reason: "timeout" };
      body = undefined;
    }
    if (res.status >= 500 || res.status === 429) {
      return { kind: "unavailable", reason: "steward_error", status: res.status };
    }
    if (res.status !== 200) {
      return { kind: "refused", status: res.status, code: body?.error?.code ?? null };
    }
    if (!body?.data || typeof body.data.code !== "string") {
      return { kind: "unavailable", reason: "steward_error", status: res.status };
    }
    return { kind: "verdict", result: body.data };
  };
}
