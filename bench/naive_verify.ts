/**
 * The naive baseline of bench/verify.ts: what a verify endpoint costs when it reads the key
 * from KV and writes its usage to KV on every request (one `get`, one atomic `sum`), behind
 * a plain Hono route. Seeds its own KV file with the keys listed in BENCH_KEYS_FILE.
 *
 *   BENCH_KEYS_FILE=keys.txt BENCH_KV_PATH=naive.kv PORT=8002 deno run -A bench/naive_verify.ts
 */
import { Hono } from "hono";
import { sha256Hex } from "../domain/shared/secrets.ts";

const kv = await Deno.openKv(Deno.env.get("BENCH_KV_PATH")!);
const keys = (await Deno.readTextFile(Deno.env.get("BENCH_KEYS_FILE")!)).trim().split("\n");
for (let i = 0; i < keys.length; i += 500) {
  const op = kv.atomic();
  keys.slice(i, i + 500).forEach((k, j) => op.set(["keys", sha256Hex(k)], `key_${i + j}`));
  await op.commit();
}

const app = new Hono();
app.post("/v1/keys/verify", async (c) => {
  const { key } = await c.req.json<{ key: string }>();
  const id = (await kv.get<string>(["keys", sha256Hex(key)])).value;
  if (id) await kv.atomic().sum(["usage", id], 1n).commit();
  return c.json({ success: true, data: { valid: id !== null, key_id: id } });
});

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8002),
  hostname: "127.0.0.1",
  onListen: ({ hostname, port }) =>
    console.log(`naive verify listening on http://${hostname}:${port}`),
}, app.fetch);
