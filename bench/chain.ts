/**
 * The middleware chain's own cost, in process: `GET /health/live` through Steward's whole app
 * (app.fetch on a `:memory:` store, as the test harness builds it) next to plain Hono answering
 * `c.json` (the issue's baseline) and plain Hono sending Steward's headers and bytes (the
 * like-for-like one, as bench/plain_hono.ts does it), each request built and its body read. No
 * network, no wrk: only the JavaScript a request runs, which is what the chain can change, and
 * none of Deno's HTTP server or the kernel (bench/http.ts measures those too). The variants take
 * turns in batches, and each prints the median of its rounds.
 *
 *   deno task bench:chain
 *
 * Settings: BENCH_ROUNDS (12, the first two are warm-up), BENCH_BATCH (20,000 requests).
 */
import { setup } from "../tests/_harness.ts";
import { setting } from "./_load.ts";
import { plainLiveness, plainLivenessWithStewardHeaders } from "./_liveness.ts";

const ROUNDS = setting("BENCH_ROUNDS", 12, 3, 100);
const BATCH = setting("BENCH_BATCH", 20_000, 100, 1_000_000);

// The default sampling, as `deno task start` runs (the harness logs every request).
await using h = await setup({ env: { REQUEST_LOG_SAMPLE_RATE: "0.1" } });

const plain = plainLiveness();
const sameHeaders = plainLivenessWithStewardHeaders();

const PLAIN = "plain Hono c.json";
const SAME = "plain Hono, Steward's headers and bytes";
const STEWARD = "Steward's app";
const variants: [string, (req: Request) => Response | Promise<Response>][] = [
  [PLAIN, (req) => plain.fetch(req)],
  [SAME, (req) => sameHeaders.fetch(req)],
  [STEWARD, (req) => h.app.fetch(req)],
];
for (const [name, fetch] of variants) {
  const res = await fetch(new Request("http://127.0.0.1/health/live"));
  if (res.status !== 200) throw new Error(`${name}: ${res.status} ${await res.text()}`);
  console.log(`${name}: 200, ${(await res.arrayBuffer()).byteLength} bytes`);
}

const perRequest = new Map<string, number[]>(variants.map(([name]) => [name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  const line: string[] = [];
  for (const [name, fetch] of round % 2 ? variants : [...variants].reverse()) {
    const started = performance.now();
    for (let i = 0; i < BATCH; i++) {
      await (await fetch(new Request("http://127.0.0.1/health/live"))).arrayBuffer();
    }
    const us = ((performance.now() - started) * 1000) / BATCH;
    if (round > 2) perRequest.get(name)!.push(us);
    line.push(`${name} ${us.toFixed(2)} µs`);
  }
  console.log(`round ${round}${round <= 2 ? " (warm-up)" : ""}: ${line.join(", ")}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const us = (name: string) => median(perRequest.get(name)!);
console.log(
  `\nmedian µs a request: ${variants.map(([n]) => `${n} ${us(n).toFixed(2)}`).join(", ")}` +
    `\nSteward's app ÷ plain Hono c.json in requests a second: ${
      (us(PLAIN) / us(STEWARD)).toFixed(3)
    }` +
    `\nSteward's app ÷ plain Hono with the same headers and bytes: ${
      (us(SAME) / us(STEWARD)).toFixed(3)
    }`,
);
