/** Fixtures the webhook suites share: endpoints made through the API, and a recording receiver. */
import assert from "node:assert/strict";
import type { Harness } from "./_harness.ts";

export const ADMIN = "/v1/admin/webhooks";
export const tenantHooks = (tenant: string) => `/v1/tenants/${tenant}/webhooks`;
export const HOOK_URL = "https://hooks.example.com/steward";

/** Creates an endpoint under `base` as root; returns its view and its secret. */
export async function createHook(
  h: Harness,
  base: string,
  body: Record<string, unknown> = {},
): Promise<{ id: string; secret: string; etag: string; [field: string]: unknown }> {
  const res = await h.call("POST", base, { token: h.root, body: { url: HOOK_URL, ...body } });
  assert.equal(res.status, 201, res.text);
  return { ...res.body.data, etag: res.headers.get("ETag")! };
}

export interface Received {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Replaces the harness's HTTP sender with one that records every request and answers with
 * `answer` (default 204); `answer` may throw to act as a network error.
 */
export function receiver(
  h: Harness,
  answer: (req: Received, n: number) => Response | Promise<Response> = () =>
    new Response(null, { status: 204 }),
) {
  const received: Received[] = [];
  h.network.fetch = async (url, init) => {
    const req: Received = {
      url,
      headers: Object.fromEntries(new Headers(init.headers).entries()),
      body: String(init.body),
    };
    received.push(req);
    return await answer(req, received.length);
  };
  return received;
}

/** Runs due jobs until none is left due at the harness clock. */
export async function drain(h: Harness): Promise<number> {
  let total = 0;
  for (let ran; (ran = await h.runJobs()) > 0;) total += ran;
  return total;
}
