/**
 * Webhook delivery throughput, end to end: Steward (main.ts, its own process, a fresh KV file)
 * with platform endpoints pointing at a receiver in this process on 127.0.0.1 that verifies
 * every delivery with the `standardwebhooks` package. Clients change tenants through the API
 * for BENCH_SECONDS; each change emits a `tenant.updated` event, which goes through the outbox,
 * its fan-out job and one delivery job per endpoint to a verified receipt. Reported: events
 * emitted per second, deliveries per second from the first change to the last receipt, and the
 * latency from each event's timestamp to its receipt.
 *
 *   deno task bench:webhooks
 *
 * Settings: BENCH_SECONDS (how long changes are made, 5), BENCH_CONCURRENCY (clients, 8),
 * BENCH_ENDPOINTS (platform endpoints, each receiving every event, 1).
 */
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { randomAlnum, ServerProcess, within } from "../tests/_server.ts";
import { fmt, machine, run, setting } from "./_load.ts";

const SECONDS = setting("BENCH_SECONDS", 5, 1, 60);
const CONCURRENCY = setting("BENCH_CONCURRENCY", 8, 1, 64);
const ENDPOINTS = setting("BENCH_ENDPOINTS", 1, 1, 20);
/** How long deliveries may take to catch up once the changes stop. */
const DRAIN_SECONDS = 60;

const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

async function main(dir: string, servers: ServerProcess[]): Promise<number> {
  const token = `stw_${randomAlnum(40)}`;
  const steward = await ServerProcess.start({
    env: {
      STEWARD_KV_PATH: join(dir, "steward.kv"),
      STEWARD_BOOTSTRAP_TOKEN: token,
      STEWARD_MASTER_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
      WEBHOOK_ALLOW_PRIVATE_URLS: "true",
    },
  });
  servers.push(steward);

  const verifiers = new Map<string, Webhook>();
  /** First receipt of each message (by webhook-id): when, and its event's timestamp. */
  const firsts = new Map<string, { at: number; emittedAt: number }>();
  let duplicates = 0;
  let rejected = 0;
  let caughtUp = () => {};
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    const at = Date.now();
    try {
      const verifier = verifiers.get(new URL(req.url).pathname)!;
      const event = verifier.verify(body, Object.fromEntries(req.headers)) as {
        type: string;
        timestamp: string;
      };
      if (event.type === "tenant.updated") {
        const id = req.headers.get("webhook-id")!;
        if (firsts.has(id)) duplicates++;
        else firsts.set(id, { at, emittedAt: Date.parse(event.timestamp) });
        caughtUp();
      }
      return new Response(null, { status: 204 });
    } catch {
      rejected++;
      return new Response("bad signature", { status: 400 });
    }
  });

  try {
    const slugs = Array.from({ length: CONCURRENCY }, (_, i) => `bench-${i}`);
    for (const slug of slugs) {
      const res = await steward.call("POST", "/v1/tenants", { token, body: { name: slug, slug } });
      if (res.status !== 201) throw new Error(`tenant ${slug}: ${res.status} ${res.text}`);
    }
    for (let i = 0; i < ENDPOINTS; i++) {
      const path = `/hooks/${i}`;
      const res = await steward.call("POST", "/v1/admin/webhooks", {
        token,
        body: { url: `http://127.0.0.1:${receiver.addr.port}${path}` },
      });
      if (res.status !== 201) throw new Error(`endpoint: ${res.status} ${res.text}`);
      verifiers.set(path, new Webhook(res.body.data.secret));
    }

    console.log(`\n${(await machine()).join("\n")}`);
    console.log(
      `${CONCURRENCY} clients changing tenants for ${SECONDS} s; ${ENDPOINTS} endpoint(s), ` +
        `each receiving every event; receiver verifies with standardwebhooks\n`,
    );

    const started = Date.now();
    const until = started + SECONDS * 1000;
    let emitted = 0;
    let failedChanges = 0;
    await Promise.all(slugs.map(async (slug) => {
      for (let n = 0; Date.now() < until; n++) {
        const res = await steward.call("PATCH", `/v1/tenants/${slug}`, {
          token,
          body: { metadata: { n: String(n) } },
        });
        if (res.status === 200) emitted++;
        else failedChanges++;
      }
    }));
    const emitSeconds = (Date.now() - started) / 1000;
    const duringChanges = firsts.size;
    const expected = emitted * ENDPOINTS;
    await within(
      DRAIN_SECONDS,
      `${expected} deliveries (${firsts.size} so far)`,
      new Promise<void>((resolve) => {
        caughtUp = () => firsts.size >= expected && resolve();
        caughtUp();
      }),
    );

    const receipts = [...firsts.values()];
    const last = Math.max(...receipts.map((r) => r.at));
    const latencies = receipts.map((r) => r.at - r.emittedAt);
    const seconds = (last - started) / 1000;
    console.log(
      `changes: ${fmt(emitted)} in ${emitSeconds.toFixed(1)} s = ` +
        `${fmt(emitted / emitSeconds)} events/s emitted (${failedChanges} failed)`,
    );
    console.log(
      `deliveries while the changes went on: ${fmt(duringChanges)} ` +
        `(${fmt(duringChanges / emitSeconds)}/s); the rest followed once they stopped`,
    );
    console.log(
      `deliveries: ${fmt(firsts.size)} verified (${duplicates} duplicates, ${rejected} rejected) ` +
        `in ${seconds.toFixed(1)} s from the first change to the last receipt = ` +
        `${fmt(firsts.size / seconds)} deliveries/s end to end`,
    );
    console.log(
      `latency, event timestamp → verified receipt: p50 ${fmt(percentile(latencies, 0.5))} ms, ` +
        `p90 ${fmt(percentile(latencies, 0.9))} ms, p99 ${fmt(percentile(latencies, 0.99))} ms, ` +
        `max ${fmt(Math.max(...latencies))} ms`,
    );
    return rejected || failedChanges ? 1 : 0;
  } finally {
    await receiver.shutdown();
  }
}

const dir = await Deno.makeTempDir({ prefix: "steward_bench_" });
const servers: ServerProcess[] = [];
let code = 1;
try {
  code = await main(dir, servers);
  console.log(`load average after the run: ${await run("cat", "/proc/loadavg")}`);
} catch (err) {
  console.error(`bench: ${err instanceof Error ? err.message : err}`);
} finally {
  await Promise.all(servers.map((s) => s.stop().catch(() => s[Symbol.asyncDispose]())));
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
Deno.exit(code);
