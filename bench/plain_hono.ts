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

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8001),
  hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  onListen: ({ hostname, port }) =>
    console.log(`plain hono listening on http://${hostname}:${port}`),
}, app.fetch);
