/**
 * Quotas across processes (domain/keys/quota_leases.ts): several verifiers on one store, each
 * with its own cache, write-behind counters and leases, as separate processes have. A quota
 * holds exactly across them; unspent units go back at shutdown and when idle; blocks shrink
 * toward the end, so few commits are spent on leases.
 */
import assert from "node:assert/strict";
import { KvCache } from "../../kv/cache.ts";
import { keys } from "../../kv/keys.ts";
import { SumBuffer } from "../../kv/sum_buffer.ts";
import { type QuotaLeaseOptions, QuotaLeases } from "../../domain/keys/quota_leases.ts";
import { Verifier } from "../../domain/keys/verify.ts";
import type { Harness } from "../_harness.ts";
import { setup } from "../_harness.ts";
import { keyFor, onPlan } from "./_keys.ts";

/** One process's share of Steward's verify path, on the harness's store and clock. */
function process(h: Harness, opts: QuotaLeaseOptions = {}) {
  const cache = new KvCache(h.kv, { freshMs: 5_000, maxEntries: 1_000, now: () => h.clock.now });
  const counters = new SumBuffer(h.kv, {
    flushIntervalMs: 1_000,
    maxEntries: 1_000,
    onCommitted: (key, amount) => cache.adjust(key, amount),
    now: () => h.clock.now,
  });
  const svc = { ...h.svc, cache, counters };
  const quotas = new QuotaLeases(svc, opts);
  const verifier = new Verifier(svc, counters, { quotas });
  return {
    quotas,
    counters,
    verify: async (key: string, cost?: number) => (await verifier.verify({ key, cost })).code,
  };
}

async function periodUse(h: Harness, tenantId: string) {
  const entry = await h.kv.get<Deno.KvU64>(keys.usagePeriod(tenantId, "verifications", "2026-03"));
  return Number(entry.value?.value ?? 0n);
}

async function granted(h: Harness, tenantId: string) {
  const entry = await h.kv.get<{ units: number }>(
    keys.quotaGrant(tenantId, "verifications", "2026-03"),
  );
  return entry.value?.units ?? 0;
}

Deno.test("quota leases: 300 concurrent verifies over three processes against a quota of 100 give exactly 100 VALID", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await onPlan(h, "acme", "q100", { quota: 100 });
  const k = await keyFor(h, "acme");
  const procs = [process(h), process(h), process(h)];
  const codes = await Promise.all(
    Array.from({ length: 300 }, (_, i) => procs[i % 3].verify(k.key)),
  );
  const count = (code: string) => codes.filter((c) => c === code).length;
  assert.equal(count("VALID"), 100);
  assert.equal(count("USAGE_EXCEEDED"), 200);
  for (const p of procs) await p.counters.flush();
  assert.equal(await periodUse(h, t.id), 100, "usage reads 100 of 100");
  assert.equal(await granted(h, t.id), 100);
  // And later calls in any process stay refused.
  h.advance(2_000);
  for (const p of procs) assert.equal(await p.verify(k.key), "USAGE_EXCEEDED");
});

Deno.test("quota leases: unspent units go back at shutdown, and another process spends them", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await onPlan(h, "acme", "q100", { quota: 100 });
  const k = await keyFor(h, "acme");
  const [a, b] = [process(h), process(h)];
  assert.equal(await a.verify(k.key), "VALID");
  const held = a.quotas.stats().held_units;
  assert.ok(held > 0 && held < 100 / 8, `a holds a block ahead of need: ${held}`);
  let valid = 0;
  for (let i = 0; i < 100; i++) if (await b.verify(k.key) === "VALID") valid++;
  assert.equal(valid, 99 - held, "b spends all but what a holds");
  await a.quotas.stop();
  assert.equal(a.quotas.stats().held_units, 0);
  assert.equal(await granted(h, t.id), 100 - held);
  h.advance(1_000); // b believed its refusal for a second
  for (let i = 0; i < held + 5; i++) if (await b.verify(k.key) === "VALID") valid++;
  assert.equal(valid, 99, "with a's single VALID, exactly the quota");
});

Deno.test("quota leases: a lease idle for ten ticks goes back; a busy one stays", async () => {
  await using h = await setup();
  const idle = await h.tenant("idle");
  const busy = await h.tenant("busy");
  await onPlan(h, "idle", "q1k", { quota: 1_000 });
  await h.call("PATCH", "/v1/tenants/busy/billing", {
    token: h.root,
    body: { plan_code: "q1k", override: false },
  });
  const [ki, kb] = [await keyFor(h, "idle"), await keyFor(h, "busy")];
  const p = process(h);
  assert.equal(await p.verify(ki.key), "VALID");
  assert.equal(await p.verify(kb.key), "VALID");
  assert.equal(await granted(h, idle.id), 125, "an eighth of what was left");
  for (let tick = 0; tick <= 10; tick++) {
    assert.equal(await p.verify(kb.key), "VALID");
    await p.quotas.tick();
  }
  assert.equal(await granted(h, idle.id), 1, "only the unit it spent stays granted");
  assert.equal(p.quotas.stats().leases, 1, "the busy tenant's lease is kept");
  assert.ok(await granted(h, busy.id) > 11);
});

Deno.test("quota leases: blocks shrink to one unit at the end; a large quota costs a commit per thousands", async () => {
  await using h = await setup();
  const small = await h.tenant("small");
  await onPlan(h, "small", "q100", { quota: 100 });
  await h.tenant("large");
  await onPlan(h, "large", "q1m", { quota: 1_000_000 });
  const [ks, kl] = [await keyFor(h, "small"), await keyFor(h, "large")];
  const p = process(h);
  const codes = [];
  for (let i = 0; i < 110; i++) codes.push(await p.verify(ks.key));
  assert.equal(codes.filter((c) => c === "VALID").length, 100);
  const smallTaken = p.quotas.stats().taken;
  // Each block is an eighth of what is left, so about 8·ln(100) blocks, the last ones of 1.
  assert.ok(smallTaken >= 8 && smallTaken <= 45, `blocks for 100 units: ${smallTaken}`);
  assert.equal(await granted(h, small.id), 100);

  const waitedBefore = p.quotas.stats().waited;
  for (let i = 0; i < 20_000; i++) {
    if (i % 1_000 === 0) h.advance(1_000); // well within the plan's rate limit
    // Calls arrive over time: the event loop turns between them, as it does between requests.
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 0));
    assert.equal(await p.verify(kl.key), "VALID");
  }
  const largeTaken = p.quotas.stats().taken - smallTaken;
  // 10,000 units a block (the largest): 20,000 verifies take 2 or 3 blocks.
  assert.ok(largeTaken <= 3, `commits for 20,000 verifies: ${largeTaken}`);
  assert.equal(p.quotas.stats().waited - waitedBefore, 1, "only the first block was waited for");
});

Deno.test("quota leases: a refusal is re-checked at once when the quota grows", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await onPlan(h, "acme", "q10", { quota: 10 });
  const k = await keyFor(h, "acme");
  const p = process(h);
  for (let i = 0; i < 10; i++) assert.equal(await p.verify(k.key), "VALID");
  assert.equal(await p.verify(k.key), "USAGE_EXCEEDED");
  await h.call("PATCH", "/v1/plans/q10", {
    token: h.root,
    body: { quota: { units: 20, period: "month" } },
  });
  h.advance(5_000); // the other process's cache window
  assert.equal(await p.verify(k.key), "VALID", "no wait for the refusal to age");
});

Deno.test("quota leases: the number of leases held is bounded; the oldest goes back", async () => {
  await using h = await setup();
  const p = process(h, { maxLeases: 2 });
  const ids = [];
  for (const slug of ["one", "two", "three"]) {
    ids.push((await h.tenant(slug)).id);
    await h.call("PATCH", `/v1/tenants/${slug}/billing`, {
      token: h.root,
      body: { plan_code: "free", override: false },
    });
    assert.equal(await p.verify((await keyFor(h, slug)).key), "VALID");
  }
  await p.quotas.tick();
  assert.equal(p.quotas.stats().leases, 2);
  assert.equal(await granted(h, ids[0]), 1, "the first tenant's unspent units went back");
});
