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
import { median, setting } from "./_load.ts";
import { race } from "./_race.ts";

const [beforeDir, path = "/health/live"] = Deno.args;
if (!beforeDir) {
  console.error("usage: deno run -A bench/ab_chain.ts BEFORE_DIR [PATH]");
  Deno.exit(2);
}
const ROUNDS = setting("BENCH_ROUNDS", 42, 3, 1_000);
const BATCH = setting("BENCH_BATCH", 20_000, 100, 1_000_000);

const previous: { setup: typeof setup } = await import(
  join(resolve(beforeDir), "tests/_harness.ts")
);
// The default sampling, as `deno task start` runs (the harness logs every request).
const env = { REQUEST_LOG_SAMPLE_RATE: "0.1" };
await using old = await previous.setup({ env });
await using now = await setup({ env });

const fetchPath = (app: { fetch: (req: Request) => Response | Promise<Response> }) => () =>
  app.fetch(new Request(`http://127.0.0.1${path}`));
const laps = await race(
  [["before", fetchPath(old.app)], ["after", fetchPath(now.app)]],
  ROUNDS,
  BATCH,
);
const [before, after] = [laps.get("before")!, laps.get("after")!];
const ratios = after.map((us, round) => us / before[round]);

console.log(`GET ${path}, ${ROUNDS - 2} rounds of ${BATCH} requests a build after 2 of warm-up`);
console.log(`after ÷ before by round: ${ratios.map((r) => r.toFixed(2)).join(" ")}`);
console.log(
  `median µs a request: before ${median(before).toFixed(2)}, after ${
    median(after).toFixed(2)
  }; median after ÷ before ${median(ratios).toFixed(3)}, ` +
    `${ratios.filter((r) => r < 1).length} of ${ratios.length} rounds below 1`,
);
