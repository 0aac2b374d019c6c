/**
 * Memory benchmark: Steward's resident memory (VmRSS of the process, from /proc) idle after
 * start, and with BENCH_MEMORY_KEYS (100,000) API keys warm in the verify cache.
 *
 * Keys are made through the API (spread over BENCH_MEMORY_TENANTS tenants on an unlimited
 * plan), then each is verified once (cold: read into the cache) and once more (warm). The
 * second pass's rate next to the first's shows whether the keys stayed warm: a warm verify
 * reads nothing from KV. STEWARD_VERIFY_CACHE_MS is raised so no entry ages out meanwhile.
 *
 *   deno task bench:memory
 *   BENCH_MEMORY_KEYS=10000 deno task bench:memory
 *
 * Linux only (/proc/<pid>/status). RSS includes what V8 has not collected yet: a figure, not
 * a bound.
 */
import { type Reply, ServerProcess, tempDir } from "../tests/_server.ts";
import { setting } from "./_load.ts";

const KEYS = setting("BENCH_MEMORY_KEYS", 100_000, 1, 1_000_000);
const TENANTS = setting("BENCH_MEMORY_TENANTS", 100, 1, 10_000);
const CREATE_CONCURRENCY = setting("BENCH_MEMORY_CREATE_CONCURRENCY", 32, 1, 512);
const VERIFY_CONCURRENCY = setting("BENCH_MEMORY_VERIFY_CONCURRENCY", 64, 1, 512);
/** Seconds the idle process is left alone before its RSS is read. */
const SETTLE_SECONDS = setting("BENCH_MEMORY_SETTLE_SECONDS", 5, 0, 120);

/** VmRSS and VmHWM (peak) of `pid`, in bytes. */
async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  // Through cat: Deno lets a script read /proc only with --allow-all.
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const status = new TextDecoder().decode(out.stdout);
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)![1]);
  return { rss: kib("VmRSS") * 1024, peak: kib("VmHWM") * 1024 };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `work(i)` for i in [0, n) with at most `concurrency` at once; returns the seconds taken. */
async function pool(n: number, concurrency: number, work: (i: number) => Promise<void>) {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n) await work(next++);
    }),
  );
  return (performance.now() - started) / 1000;
}

function expect(what: string, res: Reply, status: number) {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${res.text}`);
}

await using dir = await tempDir();
const token = `stw_${crypto.randomUUID().replaceAll("-", "")}`;
await using server = await ServerProcess.start({
  env: {
    STEWARD_KV_PATH: dir.kvPath,
    STEWARD_BOOTSTRAP_TOKEN: token,
    STEWARD_VERIFY_CACHE_MS: "300000",
  },
});
const pid = server.child.pid;

await sleep(SETTLE_SECONDS * 1000);
const idle = await rssOf(pid);
console.log(`idle after start (${SETTLE_SECONDS} s):  RSS ${mib(idle.rss)}`);

expect(
  "plan",
  await server.call("POST", "/v1/plans", {
    token,
    body: {
      code: "unlimited",
      name: "Unlimited",
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 1_000_000, burst: 1_000_000 },
      quota: { units: 1e15, period: "month" },
      sla: 99.9,
    },
  }),
  201,
);
const slugs = Array.from({ length: TENANTS }, (_, i) => `mem-${i}`);
await pool(TENANTS, 8, async (i) => {
  const slug = slugs[i];
  expect(
    "tenant",
    await server.call("POST", "/v1/tenants", { token, body: { name: slug, slug } }),
    201,
  );
  expect(
    "billing",
    await server.call("PATCH", `/v1/tenants/${slug}/billing`, {
      token,
      body: { plan_code: "unlimited", override: true, reason: "benchmark" },
    }),
    200,
  );
});

const secrets: string[] = new Array(KEYS);
const create = async (i: number) => {
  const res = await server.call("POST", `/v1/tenants/${slugs[i % TENANTS]}/api-keys`, {
    token,
    body: { name: `mem ${i}`, environment: "live" },
  });
  expect("key", res, 201);
  secrets[i] = res.body.data.key;
};
// The first thousand alone, to say how long the rest will take.
const probe = Math.min(KEYS, 1_000);
const probeSeconds = await pool(probe, CREATE_CONCURRENCY, create);
console.log(
  `created ${probe} keys in ${probeSeconds.toFixed(1)} s; ${KEYS} expected in ~` +
    `${(probeSeconds * KEYS / probe).toFixed(0)} s`,
);
const restSeconds = await pool(KEYS - probe, CREATE_CONCURRENCY, (i) => create(probe + i));
console.log(`created ${KEYS} keys in ${(probeSeconds + restSeconds).toFixed(1)} s`);
const afterCreate = await rssOf(pid);

let invalid = 0;
const verifyPass = (i: number) =>
  server.call("POST", "/v1/keys/verify", { token, body: { key: secrets[i] } }).then((res) => {
    if (res.status !== 200 || res.body?.data?.code !== "VALID") invalid++;
  });
const coldSeconds = await pool(KEYS, VERIFY_CONCURRENCY, verifyPass);
const warm = await rssOf(pid);
const warmSeconds = await pool(KEYS, VERIFY_CONCURRENCY, verifyPass);
const again = await rssOf(pid);
if (invalid) throw new Error(`${invalid} verifies were not VALID`);

const rate = (s: number) => `${(KEYS / s).toFixed(0)} verifies/s`;
console.log(`after creating the keys:         RSS ${mib(afterCreate.rss)}`);
console.log(`first pass (cold), ${rate(coldSeconds)}:  RSS ${mib(warm.rss)}`);
console.log(`second pass, ${rate(warmSeconds)}:        RSS ${mib(again.rss)}`);
console.log(`peak (VmHWM):                    ${mib(again.peak)}`);
console.log(
  `\nidle RSS                          = ${mib(idle.rss)}` +
    `\n${`RSS with ${KEYS} warm keys`.padEnd(34)}= ${mib(again.rss)}` +
    `\nbytes per warm key, over idle     = ${((again.rss - idle.rss) / KEYS).toFixed(0)}` +
    `\nbytes per warm key, over created  = ${((again.rss - afterCreate.rss) / KEYS).toFixed(0)}` +
    `\nsecond pass ÷ first pass (rate)   = ${(coldSeconds / warmSeconds).toFixed(2)} ` +
    `(≫ 1 when the keys stayed warm)`,
);
await server.stop();
