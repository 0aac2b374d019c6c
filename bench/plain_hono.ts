/**
 * The baseline of bench/http.ts: a plain Hono app with one JSON route and no middleware,
 * served the way main.ts serves Steward (Deno.serve + app.fetch). Next to it, like-for-like
 * baselines of Steward's routes: the same response headers and bytes, and, with BENCH_KV_PATH
 * set, the same Deno KV reads, each without any of Steward's code.
 *
 *   PORT=8001 deno run --allow-net --allow-env bench/plain_hono.ts
 */
import { type Context, Hono } from "hono";

export const app = new Hono();
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
/** The headers every Steward answer carries (routes/middleware/request.ts), with a fresh id. */
function stewardHeaders(c: Context): string {
  const requestId = `req_01KAQX5Q6Z8V3J2N1M${String(++requests).padStart(8, "0")}`;
  c.header("X-Request-Id", requestId);
  c.header("Cache-Control", "no-store");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  return requestId;
}

async function verifySized(c: Context) {
  const { key } = await c.req.json<{ key: string }>();
  const requestId = stewardHeaders(c);
  return c.json({
    success: true,
    data: { ...verdict, key_id: `key_${key.slice(-26)}` },
    meta: { request_id: requestId },
  });
}
app.post("/json/verify-sized", verifySized);

/**
 * The same answer with no framework at all (bench/chain.ts): `Deno.serve`'s kind of handler,
 * reading the request headers Steward's verify reads (content length, credentials, idempotency
 * key, content type, request id) and the body, answering with the five headers. What any verify
 * pays before it does any work of its own.
 */
export async function bareVerifySized(req: Request): Promise<Response> {
  const h = req.headers;
  const length = Number(h.get("content-length"));
  const told = h.get("authorization") !== null && !h.has("idempotency-key") &&
    (h.get("content-type") ?? "").startsWith("application/json") && length > 0;
  // Checked before the body is read, as verify's fast path does.
  if (!told) return new Response(null, { status: 400 });
  const { key } = JSON.parse(await req.text());
  const requestId = h.get("x-request-id") ??
    `req_01KAQX5Q6Z8V3J2N1M${String(++requests).padStart(8, "0")}`;
  const body = JSON.stringify({
    success: true,
    data: { ...verdict, key_id: `key_${key.slice(-26)}` },
    meta: { request_id: requestId },
  });
  return new Response(body, {
    headers: {
      "Content-Type": "application/json",
      "X-Request-Id": requestId,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    },
  });
}
// Served behind Hono's router alone (bench/verify.ts): the floor over the wire.
app.post("/bare/verify-sized", (c) => bareVerifySized(c.req.raw));

// The same answer after a busy wait of `us` µs: bench/verify.ts sets it so this route answers
// at verify's rate, to compare latency tails at the same throughput.
app.post("/json/verify-sized/slowed/:us", (c) => {
  const until = performance.now() + Number(c.req.param("us")) / 1_000;
  while (performance.now() < until) { /* busy: the CPU a slower handler would use */ }
  return verifySized(c);
});

// bench/response_size.ts: the same bare answer at any size, to see what size itself costs.
app.get("/size/:bytes", (c) => c.body("x".repeat(Number(c.req.param("bytes")))));

/** A JSON text of exactly `bytes` bytes (at least 12), made once per size. */
const sized = new Map<number, string>();
const jsonOf = (bytes: number, data: unknown) => {
  const head = `{"data":${JSON.stringify(data)},"pad":"`;
  let text = sized.get(bytes);
  if (!text) sized.set(bytes, text = "x".repeat(Math.max(0, bytes - 2)));
  return head.length + 2 >= bytes ? `${head}"}` : `${head}${text.slice(head.length)}"}`;
};
const answer = (c: Context, bytes: number, data: unknown) => {
  stewardHeaders(c);
  c.header("Content-Type", "application/json");
  return c.body(jsonOf(bytes, data));
};

// Steward's answer on the wire with no work behind it: its headers and its number of bytes.
app.get("/headers/:bytes", (c) => answer(c, Number(c.req.param("bytes")), "ok"));

// The KV reads of Steward's routes, on a store of this process's own (BENCH_KV_PATH): one
// strong read of a record (`GET /v1/tenants/{id}`), or a page (`GET …/api-keys?limit=50`: a
// list of 51 records, then their 50 last-used times in getMany calls of 10, and a count).
const kvPath = Deno.env.get("BENCH_KV_PATH");
if (kvPath) {
  const kv = await Deno.openKv(kvPath);
  const RECORD = { id: "ten_01JBENCH0000000000000000", name: "Bench Inc", notes: "x".repeat(300) };
  const seed = kv.atomic().set(["one"], RECORD).set(["count"], new Deno.KvU64(51n));
  for (let i = 0; i < 51; i++) seed.set(["page", i], { ...RECORD, i }).set(["used", i], i);
  await seed.commit();
  app.get("/kv/one/:bytes", async (c) => {
    const one = await kv.get(["one"]);
    return answer(c, Number(c.req.param("bytes")), one.value);
  });
  app.get("/kv/page/:bytes", async (c) => {
    const page = await Array.fromAsync(kv.list({ prefix: ["page"] }, { limit: 51 }));
    const used = await Promise.all(
      [0, 10, 20, 30, 40].map((from) =>
        kv.getMany(page.slice(from, from + 10).map((_, i) => ["used", from + i]))
      ),
    );
    const count = await kv.get<Deno.KvU64>(["count"]);
    const data = page.slice(0, 50).map((e, i) => ({
      ...e.value as typeof RECORD,
      last_used: used[Math.floor(i / 10)][i % 10].value,
    }));
    return answer(c, Number(c.req.param("bytes")), { data, total: Number(count.value?.value) });
  });
}

// Served when run; bench/chain.ts imports the app to call it in process.
if (import.meta.main) {
  Deno.serve({
    port: Number(Deno.env.get("PORT") ?? 8001),
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
    onListen: ({ hostname, port }) =>
      console.log(`plain hono listening on http://${hostname}:${port}`),
  }, app.fetch);
}
