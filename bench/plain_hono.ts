/**
 * The baseline of bench/http.ts: a plain Hono app with one JSON route and no middleware,
 * served the way main.ts serves Steward (Deno.serve + app.fetch).
 *
 *   PORT=8001 deno run --allow-net --allow-env bench/plain_hono.ts
 */
import { Hono } from "hono";

const app = new Hono();
const body = {
  success: true,
  data: { id: "ten_01JBENCH0000000000000000", slug: "acme", name: "Acme", status: "active" },
};
app.get("/json", (c) => c.json(body));
// The baseline for POST routes (verify): read a JSON body, answer JSON.
app.post("/json", async (c) => c.json({ ...body, echo: Object.keys(await c.req.json()) }));

// The same, answering what a verify answers: the same envelope, fields and size (~650
// bytes), and the same response headers as Steward's JSON responses. Deno's cost per header
// and per byte is large next to a small route's, so this is the like-for-like baseline.
const verdict = {
  valid: true,
  code: "VALID",
  key_id: "key_01KAQX5Q6Z8V3J2N1M0P9R8S7T",
  tenant_id: "ten_01KAQX5Q6Z8V3J2N1M0P9R8S7T",
  project_id: null,
  environment: "live",
  scopes: [],
  meta: {},
  plan: { code: "unlimited" },
  ratelimit: { limit: 1_000_000, remaining: 999_999, reset: 1_763_900_001_000 },
  quota: {
    limit: 1e15,
    used: 123_456,
    remaining: 999_999_999_876_544,
    period_end: "2026-12-01T00:00:00.000Z",
  },
  expires_at: null,
};
let requests = 0;
app.post("/json/verify-sized", async (c) => {
  const { key } = await c.req.json<{ key: string }>();
  const requestId = `req_01KAQX5Q6Z8V3J2N1M${String(++requests).padStart(8, "0")}`;
  c.header("X-Request-Id", requestId);
  c.header("Cache-Control", "no-store");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  return c.json({
    success: true,
    data: { ...verdict, key_id: `key_${key.slice(-26)}` },
    meta: { request_id: requestId },
  });
});

// bench/response_size.ts: the same bare answer at any size, to see what size itself costs.
app.get("/size/:bytes", (c) => c.body("x".repeat(Number(c.req.param("bytes")))));

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8001),
  hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  onListen: ({ hostname, port }) =>
    console.log(`plain hono listening on http://${hostname}:${port}`),
}, app.fetch);
