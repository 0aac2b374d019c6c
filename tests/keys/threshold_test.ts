/**
 * The quota threshold gate: usage.threshold_reached at 80 % and 100 % of the plan's quota, once
 * per threshold per period even with two processes, looked at most once per interval per tenant.
 */
import assert from "node:assert/strict";
import type { DomainEvent } from "../../domain/audit/events.ts";
import { ThresholdGate } from "../../domain/keys/threshold_gate.ts";
import { Verifier } from "../../domain/keys/verify.ts";
import { type Harness, setup } from "../_harness.ts";

async function tenantWithQuota(h: Harness, units: number) {
  await h.call("POST", "/v1/plans", {
    token: h.root,
    body: {
      code: "small",
      name: "Small",
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 10_000, burst: 10_000 },
      quota: { units, period: "month" },
      sla: 99,
    },
  });
  const t = await h.tenant("acme");
  await h.call("PATCH", "/v1/tenants/acme/billing", {
    token: h.root,
    body: { plan_code: "small", override: false },
  });
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  return { tenantId: t.id, key: key.body.data.key as string };
}

async function announced(h: Harness) {
  const found: Record<string, unknown>[] = [];
  for await (const e of h.kv.list<DomainEvent>({ prefix: ["events"] })) {
    if (e.value.type === "usage.threshold_reached") found.push(e.value.data);
  }
  return found;
}

/** Lets the gate's background writes land. */
const settle = () => new Promise((r) => setTimeout(r, 20));

Deno.test("threshold gate: 80 % and 100 % announced once each, with used, limit and period", async () => {
  await using h = await setup();
  const { tenantId, key } = await tenantWithQuota(h, 10);
  const gate = new ThresholdGate(h.svc, { intervalMs: 0 });
  const verifier = new Verifier(h.svc, h.svc.counters, { gate });
  const codes = [];
  for (let i = 0; i < 12; i++) codes.push((await verifier.verify({ key })).code);
  await settle();
  assert.deepEqual(codes.filter((c) => c === "VALID").length, 10);
  assert.deepEqual(await announced(h), [
    {
      tenant_id: tenantId,
      metric: "verifications",
      percent: 80,
      used: 8,
      limit: 10,
      period: "2026-03",
    },
    {
      tenant_id: tenantId,
      metric: "verifications",
      percent: 100,
      used: 10,
      limit: 10,
      period: "2026-03",
    },
  ]);
  // Another process's gate (same store) does not announce them again.
  const other = new Verifier(h.svc, h.svc.counters, {
    gate: new ThresholdGate(h.svc, { intervalMs: 0 }),
  });
  await h.call("PATCH", "/v1/plans/small", {
    token: h.root,
    body: { quota: { units: 11, period: "month" } },
  });
  await other.verify({ key });
  await settle();
  assert.equal((await announced(h)).length, 2);
  // A new period starts over.
  h.advance(31 * 86_400_000);
  for (let i = 0; i < 9; i++) await verifier.verify({ key });
  await settle();
  const april = (await announced(h)).filter((e) => e.period === "2026-04");
  assert.deepEqual(april.map((e) => e.percent), [80]);
  assert.equal(gate.stats.allowed > 0, true);
});

Deno.test("threshold gate: a tenant is looked at most once per interval", async () => {
  await using h = await setup();
  const { key } = await tenantWithQuota(h, 10);
  const gate = new ThresholdGate(h.svc, { intervalMs: 5_000 });
  const verifier = new Verifier(h.svc, h.svc.counters, { gate });
  for (let i = 0; i < 9; i++) await verifier.verify({ key });
  await settle();
  assert.deepEqual(
    await announced(h),
    [],
    "crossed at the 8th call, but not looked at since the 1st",
  );
  assert.equal(gate.stats.allowed, 1);
  assert.equal(gate.stats.skipped_throttled, 8);
  h.advance(5_000);
  await verifier.verify({ key });
  await settle();
  assert.deepEqual((await announced(h)).map((e) => e.percent), [80, 100]);
});
