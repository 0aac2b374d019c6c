/**
 * Plain Hono answering `GET /health/live`, the baselines of bench/chain.ts and bench/layers.ts:
 * with `c.json` alone (the baseline), and with Steward's headers and bytes set the way a
 * Hono app sets headers (`c.header`, as bench/plain_hono.ts does), with a fresh request id.
 */
import { Hono } from "hono";

export const plainLiveness = () =>
  new Hono().get("/health/live", (c) => c.json({ success: true, data: { status: "ok" } }));

export function plainLivenessWithStewardHeaders() {
  let requests = 0;
  return new Hono().get("/health/live", (c) => {
    const requestId = `req_01KAQX5Q6Z8V3J2N1M${String(++requests).padStart(8, "0")}`;
    c.header("X-Request-Id", requestId);
    c.header("Cache-Control", "no-store");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    c.header("Content-Type", "application/json");
    return c.body(
      JSON.stringify({ success: true, data: { status: "ok" }, meta: { request_id: requestId } }),
    );
  });
}
