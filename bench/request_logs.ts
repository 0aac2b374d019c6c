/**
 * The request log's write cost (issue 22): CPU per entry (every thread of this process, so
 * KV's SQLite work counts) when the aggregator flushes entries in pages, against one KV value
 * per entry in commits of 200 (how it wrote them before): the same entries, on a KV file, in
 * the same run, alternating, each round printed.
 *
 *   deno task bench:logs                      # 20,000 entries a flush, 5 rounds
 *   BENCH_ENTRIES=50000 BENCH_ROUNDS=3 deno task bench:logs
 */
import { join } from "node:path";
import { Aggregator } from "../domain/usage/aggregator.ts";
import { newId } from "../domain/shared/ids.ts";
import { iso } from "../domain/shared/time.ts";
import { keys } from "../kv/keys.ts";
import { SumBuffer } from "../kv/sum_buffer.ts";
import type { RequestLog } from "../pg/analytics.ts";
import { machine } from "./_load.ts";

const ENTRIES = Number(Deno.env.get("BENCH_ENTRIES") ?? 20_000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 5);

const dir = await Deno.makeTempDir({ prefix: "steward-bench-logs-" });
const kv = await Deno.openKv(join(dir, "logs.kv"));

/** What the middleware logs for a request to a tenant route. */
const fields = (i: number) => ({
  method: "GET",
  route: "/v1/tenants/{tenant}/api-keys",
  path: "/v1/tenants/ten_01KAQX5Q6Z8V3J2N1M0P9R8S7T/api-keys",
  status: i % 10 ? 200 : 404,
  duration_ms: 1.25,
  bytes_in: 0,
  bytes_out: 24_343,
  tenant_id: "ten_01KAQX5Q6Z8V3J2N1M0P9R8S7T",
  principal_id: "tok_01KAQX5Q6Z8V3J2N1M0P9R8S7T",
  ip: "203.0.113.9",
  user_agent: "acme-billing/2.3 (+https://acme.example)",
  request_id: newId("req"),
  error_code: i % 10 ? null : "NOT_FOUND",
});

/** CPU µs and wall ms of `work`. */
async function measure(work: () => Promise<unknown>) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const used = process.cpuUsage(cpu);
  return { cpuUs: used.user + used.system, wallMs: performance.now() - started };
}

/** The aggregator's own flush: pages. */
async function pages() {
  const counters = new SumBuffer(kv, { flushIntervalMs: 60_000, maxEntries: 1_000_000 });
  const aggregator = new Aggregator(counters, kv, {
    enabled: true,
    flushIntervalMs: 60_000,
    flushMaxEntries: ENTRIES + 1,
    sampleRate: 1,
    retentionDays: 30,
  });
  for (let i = 0; i < ENTRIES; i++) aggregator.log(fields(i));
  return await measure(() => aggregator.flush());
}

/** The same entries, one value each, 200 per commit. */
async function perEntry() {
  const now = Date.now();
  const entries: RequestLog[] = Array.from({ length: ENTRIES }, (_, i) => ({
    id: newId("log", now),
    at: iso(now),
    level: i % 10 ? "info" : "warn",
    ...fields(i),
  }));
  return await measure(async () => {
    for (let i = 0; i < entries.length; i += 200) {
      const op = kv.atomic();
      for (const entry of entries.slice(i, i + 200)) op.set(keys.requestLog(entry.id), entry);
      await op.commit();
    }
  });
}

const perEntryUs = (r: { cpuUs: number }) => r.cpuUs / ENTRIES;
const rows: { pages: number; perEntry: number }[] = [];
await pages(); // warm-up, both
await perEntry();
for (let round = 1; round <= ROUNDS; round++) {
  // Alternating which goes first: the file grows as the rounds go.
  let a, b;
  if (round % 2) [a, b] = [await pages(), await perEntry()];
  else [b, a] = [await perEntry(), await pages()];
  rows.push({ pages: perEntryUs(a), perEntry: perEntryUs(b) });
  console.log(
    `round ${round}: pages ${perEntryUs(a).toFixed(2)} µs CPU/entry (${a.wallMs.toFixed(0)} ms), ` +
      `one value per entry ${perEntryUs(b).toFixed(2)} µs (${b.wallMs.toFixed(0)} ms), ` +
      `ratio ${(perEntryUs(a) / perEntryUs(b)).toFixed(2)}`,
  );
}
const median = (xs: number[]) => xs.toSorted((x, y) => x - y)[Math.floor(xs.length / 2)];
const p = median(rows.map((r) => r.pages));
const e = median(rows.map((r) => r.perEntry));
console.log(
  `\n${ENTRIES} entries a flush, median of ${ROUNDS}: pages ${p.toFixed(2)} µs CPU/entry, ` +
    `one value per entry ${e.toFixed(2)} µs; pages ÷ per entry ${(p / e).toFixed(2)}`,
);
console.log(`\n${(await machine()).join("\n")}`);
kv.close();
await Deno.remove(dir, { recursive: true });
