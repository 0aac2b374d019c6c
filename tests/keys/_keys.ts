/** What the verify and quota tests share: a key, a plan with limits, a verify call. */
import assert from "node:assert/strict";
import type { Harness } from "../_harness.ts";

// deno-lint-ignore no-explicit-any
export type Body = any;

export async function keyFor(h: Harness, tenant: string, body: Record<string, unknown> = {}) {
  const res = await h.call("POST", `/v1/tenants/${tenant}/api-keys`, {
    token: h.root,
    body: { name: "k", environment: "live", ...body },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; key: string };
}

export async function verify(
  h: Harness,
  body: Record<string, unknown>,
  token = h.root,
): Promise<Body> {
  const res = await h.call("POST", "/v1/keys/verify", { token, body });
  assert.equal(res.status, 200, res.text);
  return res.body.data;
}

/** A plan with these limits, and the tenant moved onto it. */
export async function onPlan(
  h: Harness,
  tenant: string,
  code: string,
  limits: { rps?: number; burst?: number; quota?: number | null },
) {
  const res = await h.call("POST", "/v1/plans", {
    token: h.root,
    body: {
      code,
      name: code,
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: limits.rps ?? 10_000, burst: limits.burst ?? 10_000 },
      quota: limits.quota === null ? null : { units: limits.quota ?? 1_000_000, period: "month" },
      sla: 99,
    },
  });
  assert.equal(res.status, 201, res.text);
  const moved = await h.call("PATCH", `/v1/tenants/${tenant}/billing`, {
    token: h.root,
    body: { plan_code: code, override: false },
  });
  assert.equal(moved.status, 200, moved.text);
}
