/**
 * The naive baseline of bench/usage_events.ts: usage events committed one by one behind a
 * plain Hono route — per event one dedupe read and one atomic commit of the id marker (checked
 * absent), the period and day sums and the event's usage-stream item: what Steward writes per
 * event, with the same duplicate-safety and none of its batching. `POST /v1/usage/events/batched`
 * is the floor: the batch's writes in one commit as Steward makes it (each marker checked
 * absent, one sum per counter, one stream page), with no validation, lookup or authentication.
 *
 *   BENCH_KV_PATH=naive.kv PORT=8003 deno run -A bench/naive_usage.ts
 */
import { Hono } from "hono";

const kv = await Deno.openKv(Deno.env.get("BENCH_KV_PATH")!);
const DAY_MS = 86_400_000;
const STREAM_TTL_MS = 7 * DAY_MS;
let item = 0;

interface Event {
  id: string;
  tenant_id: string;
  metric: string;
  quantity: number;
  timestamp: string;
}

/** One event, read then committed on its own; whether it was new. */
async function commitOne(e: Event): Promise<boolean> {
  const marker = ["usage_event_ids", e.tenant_id, e.id];
  const seen = await kv.get(marker);
  const amount = BigInt(e.quantity);
  return seen.versionstamp === null &&
    (await kv.atomic()
      .check(seen)
      .set(marker, true, { expireIn: DAY_MS })
      .sum(["usage", e.tenant_id, e.metric, e.timestamp.slice(0, 7)], amount)
      .sum(["usage_daily", e.tenant_id, e.metric, e.timestamp.slice(0, 10)], amount)
      .set(
        ["usage_items", `${Date.now()}-${item++}`],
        { ...e, until: Date.now() + STREAM_TTL_MS },
        { expireIn: STREAM_TTL_MS },
      )
      .commit()).ok;
}

const app = new Hono();
app.post("/v1/usage/events", async (c) => {
  const { events } = await c.req.json<{ events: Event[] }>();
  const results = [];
  for (const e of events) {
    results.push({ id: e.id, status: (await commitOne(e)) ? "accepted" : "duplicate" });
  }
  return c.json({ success: true, data: { results } });
});

app.post("/v1/usage/events/batched", async (c) => {
  const { events } = await c.req.json<{ events: Event[] }>();
  const op = kv.atomic();
  const sums = new Map<string, [Deno.KvKey, bigint]>();
  const add = (key: Deno.KvKey, amount: bigint) => {
    const name = JSON.stringify(key);
    const sum = sums.get(name);
    if (sum) sum[1] += amount;
    else sums.set(name, [key, amount]);
  };
  for (const e of events) {
    const marker = ["usage_event_ids", e.tenant_id, e.id];
    op.check({ key: marker, versionstamp: null }).set(marker, true, { expireIn: DAY_MS });
    add(["usage", e.tenant_id, e.metric, e.timestamp.slice(0, 7)], BigInt(e.quantity));
    add(["usage_daily", e.tenant_id, e.metric, e.timestamp.slice(0, 10)], BigInt(e.quantity));
  }
  for (const [key, amount] of sums.values()) op.sum(key, amount);
  op.set(
    ["usage_items", `${Date.now()}-${item++}`],
    { events, until: Date.now() + STREAM_TTL_MS },
    { expireIn: STREAM_TTL_MS },
  );
  // A marker already there: each event of the batch on its own, as the naive route does.
  const fresh = (await op.commit()).ok
    ? events.map(() => true)
    : await Promise.all(events.map(commitOne));
  return c.json({
    success: true,
    data: {
      results: events.map((e, i) => ({ id: e.id, status: fresh[i] ? "accepted" : "duplicate" })),
    },
  });
});

// Events committed so far (every event has quantity 1 in the benchmark): how it measures the rate.
app.get("/v1/usage/total", async (c) => {
  let total = 0n;
  for await (const e of kv.list<Deno.KvU64>({ prefix: ["usage"] })) total += e.value.value;
  return c.json({ success: true, data: { total: Number(total) } });
});

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8003),
  hostname: "127.0.0.1",
  onListen: ({ hostname, port }) =>
    console.log(`naive usage listening on http://${hostname}:${port}`),
}, app.fetch);
