/**
 * Verify's fast path (routes/keys/verify.ts) is a second copy of the chain's rules for one route.
 * This runs the same calls through it and through the full chain (`?via=chain` is not a fast
 * path URL), each on its own app built the same way, and compares every answer.
 */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { blockByOperator } from "../../domain/protection/ip_reputation.ts";
import { SYSTEM_ACTOR } from "../../domain/shared/services.ts";

const BLOCKED = "198.51.100.23";
const ALLOWED = "203.0.113.9";
const ELSEWHERE = "192.0.2.50";

/** The same world for both paths: tenants, keys, tokens, a block and the allowlist. */
async function world() {
  const h = await setup({
    bodyLimitBytes: 2048,
    env: { STEWARD_RATE_LIMITS: "on", STEWARD_RATE_LIMIT_ANONYMOUS: "1/2" },
  });
  const acme = await h.tenant("acme");
  const other = await h.tenant("other");
  const key = await h.call("POST", `/v1/tenants/${acme.id}/api-keys`, {
    token: h.root,
    body: { name: "k", environment: "live", scopes: ["orders:read"] },
  });
  assert.equal(key.status, 201);
  const gateway = await h.serviceToken(["keys:verify"]);
  const bound = await h.serviceToken(["keys:verify"], other.id);
  const reader = await h.serviceToken(["keys:read"]);
  await blockByOperator(h.svc, SYSTEM_ACTOR, { cidr: "198.51.100.0/24", reason: "x" });
  await blockByOperator(h.svc, SYSTEM_ACTOR, { ip: ALLOWED, reason: "x" });
  await h.call("PUT", "/v1/admin/system/ip-allowlist", {
    token: h.root,
    body: { entries: [{ cidr: ALLOWED }] },
  });
  await h.ipGuard.reload();
  return { h, secret: key.body.data.key as string, gateway, bound, reader };
}

interface Call {
  name: string;
  expect: number;
  token?: string;
  /** Sent as x-api-key instead of Authorization. */
  apiKey?: boolean;
  body: string;
  type?: string;
  ip?: string;
}

/** What must match: status, outcome or error, and the headers that carry rules. */
async function outcome(res: Response) {
  const body = await res.json();
  return {
    status: res.status,
    result: body.success
      ? { valid: body.data.valid, code: body.data.code, key: body.data.key_id !== null }
      : { code: body.error.code, message: body.error.message, details: body.error.details },
    headers: Object.fromEntries(
      ["Retry-After", "RateLimit", "RateLimit-Policy", "Content-Type", "Cache-Control"].map((
        n,
      ) => [n, res.headers.get(n)]),
    ),
  };
}

Deno.test("verify: the fast path and the full chain apply the same IP, body and token rules", async () => {
  const fast = await world();
  const chain = await world();
  const run = async (w: Awaited<ReturnType<typeof world>>, call: Call, via: string) => {
    const headers: Record<string, string> = {
      "Content-Type": call.type ?? "application/json",
      "Content-Length": String(new TextEncoder().encode(call.body).length),
    };
    const token = call.token ?? w.gateway.token;
    if (call.apiKey) headers["x-api-key"] = token;
    else headers["Authorization"] = `Bearer ${token}`;
    return await outcome(
      await w.h.app.request(`/v1/keys/verify${via}`, {
        method: "POST",
        headers,
        body: call.body,
      }, { remoteAddr: { hostname: call.ip ?? ELSEWHERE } }),
    );
  };
  const calls = (w: Awaited<ReturnType<typeof world>>): Call[] => [
    { name: "a valid key", expect: 200, body: JSON.stringify({ key: w.secret }) },
    { name: "in x-api-key", expect: 200, apiKey: true, body: JSON.stringify({ key: w.secret }) },
    { name: "an unknown key", expect: 200, body: JSON.stringify({ key: "sk_live_nope" }) },
    {
      name: "missing scopes",
      expect: 200,
      body: JSON.stringify({ key: w.secret, scopes: ["orders:write"] }),
    },
    {
      name: "another tenant's token",
      expect: 200,
      token: w.bound.token,
      body: JSON.stringify({ key: w.secret }),
    },
    {
      name: "no keys:verify",
      expect: 403,
      token: w.reader.token,
      body: JSON.stringify({ key: w.secret }),
    },
    { name: "a bad body", expect: 400, body: JSON.stringify({ key: w.secret, cost: -1 }) },
    { name: "not JSON", expect: 400, body: "{x" },
    {
      name: "not JSON by type",
      expect: 415,
      type: "text/plain",
      body: JSON.stringify({ key: w.secret }),
    },
    {
      name: "too large",
      expect: 413,
      body: JSON.stringify({ key: w.secret, scopes: ["a".repeat(3000)] }),
    },
    {
      name: "a blocked address",
      expect: 403,
      ip: BLOCKED,
      body: JSON.stringify({ key: w.secret }),
    },
    {
      name: "allowlisted over its block",
      expect: 200,
      ip: ALLOWED,
      body: JSON.stringify({ key: w.secret }),
    },
    // The IP's unauthenticated budget (2) runs out on the third bad token.
    {
      name: "bad token 1",
      expect: 401,
      token: "stw_bogus",
      body: JSON.stringify({ key: w.secret }),
    },
    {
      name: "bad token 2",
      expect: 401,
      token: "stw_bogus",
      body: JSON.stringify({ key: w.secret }),
    },
    {
      name: "bad token 3",
      expect: 429,
      token: "stw_bogus",
      body: JSON.stringify({ key: w.secret }),
    },
  ];
  const fastCalls = calls(fast);
  const chainCalls = calls(chain);
  try {
    for (const [i, call] of fastCalls.entries()) {
      const a = await run(fast, call, "");
      const b = await run(chain, chainCalls[i], "?via=chain");
      assert.deepEqual(a, b, call.name);
      // Each case did what its name says (not the same thing twice).
      assert.equal(a.status, call.expect, call.name);
    }
    await fast.h.ipGuard.flush();
    await chain.h.ipGuard.flush();
    const blocked = async (w: Awaited<ReturnType<typeof world>>) =>
      (await w.h.call("GET", `/v1/admin/system/ip-reputation/${BLOCKED}`, { token: w.h.root }))
        .body.data.totals;
    const [fastTotals, chainTotals] = [await blocked(fast), await blocked(chain)];
    assert.deepEqual(fastTotals, chainTotals, "counted alike");
    assert.equal(fastTotals.blocked_requests, 1);
    // Traffic and request logs count every answer alike, refusals included.
    const traffic = (w: Awaited<ReturnType<typeof world>>) => {
      const day = new Date(w.h.clock.now).toISOString().slice(0, 10);
      const { sampled_logs, skipped_logs } = w.h.svc.aggregator.status();
      return {
        sampled_logs,
        skipped_logs,
        ...Object.fromEntries(
          (["requests", "client_errors", "verifications", "bytes_in"] as const).map((m) => [
            m,
            w.h.svc.aggregator.pendingTraffic(m, day),
          ]),
        ),
      };
    };
    assert.deepEqual(traffic(fast), traffic(chain), "traffic and logs alike");
  } finally {
    await fast.h[Symbol.asyncDispose]();
    await chain.h[Symbol.asyncDispose]();
  }
});
