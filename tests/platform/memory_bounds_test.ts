/**
 * Every long-lived in-memory collection of a Steward process, and what bounds it (issue 22,
 * Memory). Tested below: each map that grows with input, driven past its bound through its
 * own API. Per-request temporaries and constant tables are left out.
 *
 * | Collection                                   | Bound                                              |
 * | -------------------------------------------- | -------------------------------------------------- |
 * | kv/cache.ts KvCache #slots                   | maxEntries (main.ts: 100,000), CLOCK eviction      |
 * | kv/cache.ts KvCache #epochs                  | maxEntries, then cleared (forget and adjust)       |
 * | kv/cache.ts KvCache #inflight                | reads in flight (each removed when it settles)     |
 * | kv/names.ts remembered(): verify.ts #keyNames, #tenantNames, #planCodeNames, #planNames; |
 * |   usage/activity.ts dailyCounters            | 100,000 each, then cleared                         |
 * | keys/tokens.ts tokenNames (remembered)       | 10,000, then cleared                               |
 * | kv/pointers.ts memo, per KV handle           | 10,000, oldest first out; misses not kept          |
 * | kv/sum_buffer.ts #pending                    | a flush starts at maxEntries eager (× lazyEvery all) distinct keys; while KV refuses writes it keeps them (they are billing counts) |
 * | kv/sum_buffer.ts #inflight                   | the keys of the one flush writing                  |
 * | kv/batch.ts queues                           | reads of one tick, sent at its end                 |
 * | keys/rate_limit.ts RateLimiter #windows      | maxEntries (200,000): idle swept, then oldest      |
 * | keys/threshold_gate.ts #tenants              | MAX_TRACKED (100,000), oldest first out            |
 * | keys/quota_leases.ts #leases                 | maxLeases (tests/keys/quota_leases_test.ts)        |
 * | keys/tokens.ts grants, custom_roles books,   |                                                    |
 * |   middleware/rate_limit.ts preSpent          | WeakMaps: live tokens, KV handles, requests        |
 * | access/api_rate_limit.ts #buckets            | maxEntries (100,000), least recently used out      |
 * | access/custom_roles.ts book.roles            | the custom roles (MAX_CUSTOM_ROLES = 200)          |
 * | access/custom_roles.ts book.grants           | MAX_GRANTS (10,000), then cleared                  |
 * | usage/aggregator.ts #traffic                 | days since the last flush (one entry a day)        |
 * | usage/aggregator.ts #logs                    | maxPendingLogs, oldest tenth dropped               |
 * | usage/answer_rates.ts #minutes               | minutes since the last flush (taken at each)       |
 * | usage/pg_sync.ts #logs, #dirty               | maxBuffered each (past it: dropped_rows)           |
 * | usage/pg_sync.ts Tail #seen                  | ids within TAIL_LOOKBACK_MS, pruned at each run    |
 * | usage/cost.ts #cache                         | MAX_CACHED_PERIODS (36), oldest first out          |
 * | vault/vault.ts #rings, #keys                 | maxCached (MAX_CACHED_KEYS = 10,000) each          |
 * | shared/ids.ts lastRandom                     | REMEMBERED_MS (1,024) instants                     |
 * | shared/time.ts lastDay                       | one value                                          |
 * | protection/ip_guard.ts #tally                | MAX_TALLIED_ADDRESSES (10,000), then flushed       |
 * | protection/ip_rules.ts #byAddress, #ranges   | MAX_BLOCKS_IN_MEMORY (100,000)                     |
 * | protection/ip_rules.ts #allow                | MAX_ALLOWLIST_ENTRIES (1,000), checked on write    |
 * | plugins/hooks.ts #calls                      | one per plugin called, RECENT_CALLS (50) each      |
 * | plugins/hooks.ts #held                       | the plugins' hooks, by hook kind                   |
 * | jobs/worker.ts #inFlight                     | the worker's concurrency                           |
 * | middleware/request_log.ts ROUTE_NAMES        | one per route pattern (a fixed set)                |
 * | routes/match_cache.ts MatchCache #matches    | MATCHES_KEPT (4,096) paths, oldest first out       |
 */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { KvCache } from "../../kv/cache.ts";
import { remembered } from "../../kv/names.ts";
import { peekImmutablePointer, resolveImmutablePointer } from "../../kv/pointers.ts";
import { SumBuffer } from "../../kv/sum_buffer.ts";
import { RateLimiter } from "../../domain/keys/rate_limit.ts";
import { MAX_TRACKED, ThresholdGate } from "../../domain/keys/threshold_gate.ts";
import { ApiRateLimiter } from "../../domain/access/api_rate_limit.ts";
import { customGrant, heldGrants, MAX_GRANTS } from "../../domain/access/custom_roles.ts";
import { Aggregator } from "../../domain/usage/aggregator.ts";
import { AnswerTally } from "../../domain/usage/answer_rates.ts";
import { PgSync } from "../../domain/usage/pg_sync.ts";
import { CostReports, MAX_CACHED_PERIODS } from "../../domain/usage/cost.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { REMEMBERED_MS, rememberedInstants, ulid } from "../../domain/shared/ids.ts";
import { IpGuard, MAX_TALLIED_ADDRESSES } from "../../domain/protection/ip_guard.ts";
import { DEFAULT_REPUTATION } from "../../domain/protection/ip_reputation.ts";
import { type IpBlock, IpRules, MAX_BLOCKS_IN_MEMORY } from "../../domain/protection/ip_rules.ts";
import { MatchCache, MATCHES_KEPT } from "../../routes/match_cache.ts";
import type { Services } from "../../domain/shared/services.ts";
import type { PgAnalytics, RequestLog } from "../../pg/analytics.ts";

/** The `i`th of many distinct IPv4 addresses. */
const address = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

async function memoryKv() {
  const kv = await Deno.openKv(":memory:");
  return { kv, [Symbol.dispose]: () => kv.close() };
}

Deno.test("memory: the KV read cache holds at most maxEntries entries and epochs", async () => {
  using store = await memoryKv();
  const cache = new KvCache(store.kv, { freshMs: 60_000, maxEntries: 50 });
  for (let i = 0; i < 500; i++) {
    await cache.get(["k", i]);
    assert.ok(cache.size <= 50);
  }
  // Each usage commit adjusts its counters, and each change forgets what it wrote.
  for (let i = 0; i < 500; i++) {
    cache.adjust(["usage", i], 1n);
    assert.ok(cache.epochs <= 50);
  }
  for (let i = 0; i < 500; i++) {
    cache.forget(["other", i]);
    assert.ok(cache.epochs <= 50);
  }
});

Deno.test("memory: remembered names start over past their bound (default 100,000)", () => {
  const small = new Map<string, number>();
  for (let i = 0; i < 1_000; i++) {
    remembered(small, `id${i}`, () => i, 100);
    assert.ok(small.size <= 100);
  }
  // The default, as verify's and activity's maps use it.
  const big = new Map<string, number>();
  for (let i = 0; i <= 100_000; i++) remembered(big, `id${i}`, () => i);
  assert.ok(big.size <= 100_000);
});

Deno.test("memory: remembered pointers stay within 10,000 per store, oldest first out", async () => {
  using store = await memoryKv();
  const count = 10_050;
  for (let i = 0; i < count; i += 500) {
    const op = store.kv.atomic();
    for (let j = i; j < Math.min(count, i + 500); j++) op.set(["ptr", j], `id${j}`);
    await op.commit();
  }
  for (let i = 0; i < count; i++) await resolveImmutablePointer(store.kv, ["ptr", i]);
  assert.equal(peekImmutablePointer(store.kv, ["ptr", 0]), undefined);
  assert.equal(peekImmutablePointer(store.kv, ["ptr", count - 1]), `id${count - 1}`);
  // Misses are not remembered.
  for (let i = 0; i < 100; i++) {
    assert.equal(await resolveImmutablePointer(store.kv, ["no", i]), null);
  }
  assert.equal(peekImmutablePointer(store.kv, ["no", 0]), undefined);
});

Deno.test("memory: the write-behind buffer starts a flush at maxEntries distinct keys", async () => {
  using store = await memoryKv();
  const buffer = new SumBuffer(store.kv, { flushIntervalMs: 60_000, maxEntries: 20, lazyEvery: 1 });
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 20; i++) buffer.add(["c", round, i]);
    // No flush asked for: the bound starts one. Bounded wait, nothing timed.
    for (let tries = 0; tries < 200 && buffer.size > 0; tries++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(buffer.size, 0);
  }
  await buffer.flush();
});

Deno.test("memory: verify's rate limiter holds at most maxEntries keys", () => {
  const limiter = new RateLimiter(100);
  const limit = { requests_per_second: 10, burst: 10 };
  for (let i = 0; i < 1_000; i++) {
    // Every key busy at once: nothing idle to sweep, the oldest go.
    if (limiter.check(`key${i}`, limit, 0).allowed) limiter.take(`key${i}`, 0);
    assert.ok(limiter.size <= 100);
  }
});

Deno.test("memory: the threshold gate tracks at most MAX_TRACKED tenants", () => {
  const svc = { now: () => 0 } as unknown as Services;
  const gate = new ThresholdGate(svc, { intervalMs: 60_000 });
  for (let i = 0; i < MAX_TRACKED + 100; i++) gate.observe(`ten${i}`, 0, 100, { label: "p" });
  assert.equal(gate.stats.tracked_tenants, MAX_TRACKED);
  assert.equal(gate.stats.evicted_entries, 100);
});

Deno.test("memory: the API rate limiter holds at most maxEntries buckets", () => {
  const limit = { requests_per_second: 1, burst: 2 };
  const limiter = new ApiRateLimiter({
    defaults: { read: limit, write: limit, expensive: limit, ingest: limit, anonymous: limit },
    roles: {},
    maxEntries: 100,
  });
  for (let i = 0; i < 1_000; i++) {
    limiter.spendAnonymous(address(i), 0);
    limiter.spend({ id: `usr${i}`, platform_role: null }, "read", 0);
    assert.ok(limiter.size <= 100);
  }
});

Deno.test("memory: custom role grants are held up to MAX_GRANTS per store", async () => {
  await using h = await setup();
  for (let i = 0; i < MAX_GRANTS + 50; i++) {
    await customGrant(h.svc, [`rol_${i}`]);
    assert.ok(heldGrants(h.svc.kv) <= MAX_GRANTS);
  }
});

const entry = (i: number): Omit<RequestLog, "id" | "at" | "level"> => ({
  method: "GET",
  route: "/x",
  path: "/x",
  status: 200,
  duration_ms: 1,
  bytes_in: 0,
  bytes_out: 10,
  tenant_id: null,
  principal_id: null,
  ip: null,
  user_agent: null,
  request_id: `req_${i}`,
  error_code: null,
});

Deno.test("memory: the aggregator holds at most maxPendingLogs log entries", async () => {
  using store = await memoryKv();
  const counters = new SumBuffer(store.kv, { flushIntervalMs: 60_000, maxEntries: 1_000 });
  const aggregator = new Aggregator(counters, store.kv, {
    enabled: true,
    flushIntervalMs: 60_000,
    // Never reached: only the bound keeps the entries in check.
    flushMaxEntries: 1_000_000,
    maxPendingLogs: 100,
    sampleRate: 1,
    retentionDays: 30,
  });
  for (let i = 0; i < 1_000; i++) {
    aggregator.log(entry(i));
    assert.ok(aggregator.pendingLogs <= 100);
  }
  assert.ok(aggregator.stats.dropped_logs >= 900);
});

Deno.test("memory: the answer tally holds the minutes since the last take", () => {
  const tally = new AnswerTally();
  for (let minute = 0; minute < 30; minute++) tally.add(minute * 60_000, 200);
  assert.equal(tally.size, 30);
  tally.take();
  assert.equal(tally.size, 0);
});

Deno.test("memory: the Postgres copy holds at most maxBuffered logs and daily counters", async () => {
  using store = await memoryKv();
  const sync = new PgSync(store.kv, {} as PgAnalytics, { maxBuffered: 50 });
  for (let i = 0; i < 500; i++) {
    sync.touched(["traffic", "requests", `2026-01-${i}`]);
    sync.touched(["t", `ten${i}`, "usage_daily", "verifications", "2026-01-01"]);
    sync.addLogs([{ ...entry(i), id: `log${i}`, at: "2026-01-01T00:00:00.000Z", level: "info" }]);
    assert.ok(sync.buffered.daily_counters <= 50);
    assert.ok(sync.buffered.logs <= 50);
  }
  assert.ok(sync.stats.dropped_rows > 0);
});

Deno.test("memory: cost reports are cached for at most MAX_CACHED_PERIODS months", async () => {
  await using h = await setup();
  const costs = new CostReports(h.svc, {
    currency: "USD",
    prices: { requests: 1, kv_reads: 1, kv_writes: 1, storage_gib_month: 1 },
    storePath: ":memory:",
    live: null,
  });
  for (let i = 0; i < MAX_CACHED_PERIODS + 10; i++) {
    const year = 2020 - Math.floor(i / 12);
    await costs.report(`${year}-${String(i % 12 + 1).padStart(2, "0")}`);
    assert.ok(costs.cachedPeriods <= MAX_CACHED_PERIODS);
  }
});

Deno.test("memory: the vault holds at most maxCached rings and data keys", async () => {
  using store = await memoryKv();
  const vault = new Vault(crypto.getRandomValues(new Uint8Array(32)), "env", { maxCached: 5 });
  const plain = new TextEncoder().encode("secret");
  for (let i = 0; i < 30; i++) {
    await vault.seal(store.kv, `ten_${i}`, plain, "aad");
    assert.ok(vault.cached.rings <= 5);
    assert.ok(vault.cached.keys <= 5);
  }
});

Deno.test("memory: ids remember the last random part of at most REMEMBERED_MS instants", () => {
  for (let ms = 1; ms <= REMEMBERED_MS * 3; ms++) {
    ulid(ms);
    assert.ok(rememberedInstants() <= REMEMBERED_MS);
  }
});

Deno.test("memory: the IP guard tallies at most MAX_TALLIED_ADDRESSES addresses", async () => {
  await using h = await setup();
  const guard = new IpGuard(h.svc, { ...DEFAULT_REPUTATION, blockScore: 0 });
  for (let i = 0; i < MAX_TALLIED_ADDRESSES + 50; i++) {
    guard.note(address(i), "client_errors");
    assert.ok(guard.tallied <= MAX_TALLIED_ADDRESSES);
  }
  await guard.flush();
});

Deno.test("memory: IP rules hold at most MAX_BLOCKS_IN_MEMORY blocks", () => {
  const rules = new IpRules();
  const block = (i: number): IpBlock => ({
    id: `ipb_${i}`,
    cidr: `${address(i)}/32`,
    ip: address(i),
    reason: "test",
    source: "manual",
    score: null,
    created_at: "2026-01-01T00:00:00.000Z",
    created_by: "system",
    expires_at: null,
  });
  for (let i = 0; i < MAX_BLOCKS_IN_MEMORY + 100; i++) rules.add(block(i));
  assert.equal(rules.size, MAX_BLOCKS_IN_MEMORY);
});

Deno.test("memory: the app's router remembers at most MATCHES_KEPT paths", async () => {
  await using h = await setup();
  const router = h.app.router as MatchCache<unknown>;
  assert.ok(router instanceof MatchCache);
  for (let i = 0; i < MATCHES_KEPT + 100; i++) {
    const res = await h.call("GET", `/v1/tenants/ten_${i}`);
    assert.equal(res.status, 401);
    assert.ok(router.size <= MATCHES_KEPT);
  }
});
