/**
 * The middleware chain's own cost, in process: `GET /health/live` through Steward's whole app
 * (app.fetch on a `:memory:` store, as the test harness builds it) next to plain Hono answering
 * `c.json` (the issue's baseline) and plain Hono sending Steward's headers and bytes (the
 * like-for-like one, as bench/plain_hono.ts does it); then `POST /v1/keys/verify` on 1,000 warm
 * keys (the fast path) next to bench/plain_hono.ts's same-answer route, the baseline of
 * bench/verify.ts, and the same answer with no framework (the header reads and body any verify
 * pays). Each request is built and its body read. No network, no wrk: only the
 * JavaScript a request runs, which is what Steward's code can change, and none of Deno's HTTP
 * server or the kernel (bench/http.ts and bench/verify.ts measure those too). The variants take
 * turns in batches, and each prints the median of its rounds.
 *
 *   deno task bench:chain
 *
 * Settings: BENCH_ROUNDS (12, the first two are warm-up), BENCH_BATCH (20,000 requests).
 */
import { setup } from "../tests/_harness.ts";
import { median, setting, unlimitedTenant } from "./_load.ts";
import { type Fetch, race } from "./_race.ts";
import { plainLiveness, plainLivenessWithStewardHeaders } from "./_liveness.ts";
import { app as plainHono, bareVerifySized } from "./plain_hono.ts";
import { keyFor } from "../tests/keys/_keys.ts";

const ROUNDS = setting("BENCH_ROUNDS", 12, 3, 100);
const BATCH = setting("BENCH_BATCH", 20_000, 100, 1_000_000);

// The default sampling, as `deno task start` runs (the harness logs every request).
await using h = await setup({ env: { REQUEST_LOG_SAMPLE_RATE: "0.1" } });

const plain = plainLiveness();
const sameHeaders = plainLivenessWithStewardHeaders();

/** Races the variants (bench/_race.ts), prints their medians; µs a request by name. */
async function medians(variants: [string, Fetch][]): Promise<(name: string) => number> {
  const perRequest = await race(variants, ROUNDS, BATCH);
  const us = (name: string) => median(perRequest.get(name)!);
  console.log(
    `\nmedian µs a request: ${variants.map(([n]) => `${n} ${us(n).toFixed(2)}`).join(", ")}`,
  );
  return us;
}

const PLAIN = "plain Hono c.json";
const SAME = "plain Hono, Steward's headers and bytes";
const STEWARD = "Steward's app";
const live = () => new Request("http://127.0.0.1/health/live");
const us = await medians([
  [PLAIN, () => plain.fetch(live())],
  [SAME, () => sameHeaders.fetch(live())],
  [STEWARD, () => h.app.fetch(live())],
]);
console.log(
  `Steward's app ÷ plain Hono c.json in requests a second: ${
    (us(PLAIN) / us(STEWARD)).toFixed(3)
  }` +
    `\nSteward's app ÷ plain Hono with the same headers and bytes: ${
      (us(SAME) / us(STEWARD)).toFixed(3)
    }`,
);

// Verify on 1,000 warm keys of bench/verify.ts's tenant, against the same answer from plain Hono.
const KEYS = 1_000;
// Quota leases taken ahead of need, as main.ts runs them.
h.quotas.start();
const tenant = await unlimitedTenant(h, h.root, "bench");
const bodies: string[] = [];
for (let i = 0; i < KEYS; i++) bodies.push(JSON.stringify({ key: (await keyFor(h, tenant)).key }));
const post = (url: string, i: number) =>
  new Request(url, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${h.root}`,
      "Content-Type": "application/json",
      // As a served request has it: verify's fast path reads the body only when it is told.
      "Content-Length": String(bodies[i % KEYS].length),
    },
    body: bodies[i % KEYS],
  });
const VERIFY = "Steward's verify";
const SAME_ANSWER = "plain Hono, verify's answer";
const BARE = "no framework, verify's header reads and answer";
const verifyUs = await medians([
  [VERIFY, (i) => h.app.fetch(post("http://127.0.0.1/v1/keys/verify", i))],
  [SAME_ANSWER, (i) => plainHono.fetch(post("http://127.0.0.1/json/verify-sized", i))],
  [BARE, (i) => bareVerifySized(post("http://127.0.0.1/v1/keys/verify", i))],
]);
console.log(
  `Steward's verify ÷ plain Hono with the same answer: ${
    (verifyUs(SAME_ANSWER) / verifyUs(VERIFY)).toFixed(3)
  }\nSteward's verify, µs a request more than no framework: ${
    (verifyUs(VERIFY) - verifyUs(BARE)).toFixed(2)
  }`,
);
await h.quotas.stop();
