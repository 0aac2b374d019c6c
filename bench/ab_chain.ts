/**
 * Two builds of Steward in one process: BEFORE (another checkout, e.g. a git worktree) and this
 * checkout, each its own app on its own `:memory:` store (tests/_harness.ts of each), answering
 * the same GET in process in batches that take turns. A change worth a few per cent of a cheap
 * route is lost in this machine's noise over the wire (bench/ab_builds.sh); in process, with
 * the two builds in one heap and the order swapped every round, it shows.
 *
 *   git worktree add /tmp/before 832d4fe
 *   deno run -A bench/ab_chain.ts /tmp/before [/health/live]
 *
 * Settings: BENCH_ROUNDS (42, the first two are warm-up), BENCH_BATCH (20,000 requests).
 */
import { join, resolve } from "node:path";
import { setup } from "../tests/_harness.ts";
import { setting } from "./_load.ts";

const [beforeDir, path = "/health/live"] = Deno.args;
if (!beforeDir) {
  console.error("usage: deno run -A bench/ab_chain.ts BEFORE_DIR [PATH]");
  Deno.exit(2);
}
const ROUNDS = setting("BENCH_ROUNDS", 42, 3, 1_000);
const BATCH = setting("BENCH_BATCH", 20_000, 100, 1_000_000);

const before: { setup: typeof setup } = await import(
  join(resolve(beforeDir), "tests/_harness.ts")
);
// The default sampling, as `deno task start` runs (the harness logs every request).
const env = { REQUEST_LOG_SAMPLE_RATE: "0.1" };
await using old = await before.setup({ env });
await using now = await setup({ env });

const builds: [string, (req: Request) => Response | Promise<Response>][] = [
  ["before", (req) => old.app.fetch(req)],
  ["after", (req) => now.app.fetch(req)],
];
const us: Record<string, number[]> = { before: [], after: [] };
const ratios: number[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const lap: Record<string, number> = {};
  for (const [name, fetch] of round % 2 ? builds : [...builds].reverse()) {
    const started = performance.now();
    for (let i = 0; i < BATCH; i++) {
      await (await fetch(new Request(`http://127.0.0.1${path}`))).arrayBuffer();
    }
    lap[name] = ((performance.now() - started) * 1000) / BATCH;
  }
  if (round <= 2) continue;
  us.before.push(lap.before);
  us.after.push(lap.after);
  ratios.push(lap.after / lap.before);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
console.log(`GET ${path}, ${ROUNDS - 2} rounds of ${BATCH} requests a build after 2 of warm-up`);
console.log(`after ÷ before by round: ${ratios.map((r) => r.toFixed(2)).join(" ")}`);
console.log(
  `median µs a request: before ${median(us.before).toFixed(2)}, after ${
    median(us.after).toFixed(2)
  }; median after ÷ before ${median(ratios).toFixed(3)}, ` +
    `${ratios.filter((r) => r < 1).length} of ${ratios.length} rounds below 1`,
);
