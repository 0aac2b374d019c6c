/**
 * POST /v1/keys/verify: every code, the order of the checks (a denied call spends nothing),
 * exact quotas under concurrency, changes seen at once here and within the cache window in
 * another process, no storage touched for a malformed key or a warm one, usage written behind.
 */
import assert from "node:assert/strict";
import { KvCache } from "../../kv/cache.ts";
import { keys } from "../../kv/keys.ts";
import { Verifier } from "../../domain/keys/verify.ts";
import { type Harness, setup } from "../_harness.ts";
import { keyFor, onPlan, verify } from "./_keys.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

/** Counts every KV read made while `fn` runs. */
async function kvReads(h: Harness, fn: () => Promise<unknown>): Promise<number> {
  const kv = h.kv as unknown as Record<string, (...a: unknown[]) => unknown>;
  const originals = { get: kv.get, getMany: kv.getMany, list: kv.list };
  let reads = 0;
  for (const name of ["get", "getMany", "list"] as const) {
    kv[name] = (...args: unknown[]) => {
      reads++;
      return originals[name].apply(h.kv, args);
    };
  }
  try {
    await fn();
  } finally {
    Object.assign(kv, originals);
  }
  return reads;
}

Deno.test("verify: VALID answers with the key's tenant, project, scopes, meta, plan and limits", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    token: h.root,
    body: { name: "App" },
  });
  const k = await keyFor(h, "acme", {
    project_id: project.body.data.id,
    scopes: ["read", "write"],
    meta: { customer: "cus_1" },
  });
  const r = await verify(h, { key: k.key, scopes: ["read"] });
  assert.equal(r.valid, true);
  assert.equal(r.code, "VALID");
  assert.equal(r.key_id, k.id);
  assert.equal(r.tenant_id, t.id);
  assert.equal(r.project_id, project.body.data.id);
  assert.equal(r.environment, "live");
  assert.deepEqual(r.scopes, ["read", "write"]);
  assert.deepEqual(r.meta, { customer: "cus_1" });
  assert.deepEqual(r.plan, { code: "free" });
  assert.equal(r.ratelimit.limit, 20);
  assert.equal(r.ratelimit.remaining, 19);
  assert.deepEqual(r.quota, {
    limit: 10_000,
    used: 1,
    remaining: 9_999,
    period_end: "2026-04-01T00:00:00.000Z",
  });
  assert.equal(r.expires_at, null);
});

Deno.test("verify: NOT_FOUND for unknown, malformed, other-environment, other-tenant and deleted-project keys", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.tenant("globex");
  const k = await keyFor(h, "acme");
  const theirs = await keyFor(h, "globex");
  const codes = async (body: Record<string, unknown>, token = h.root) =>
    (await verify(h, body, token)).code;
  assert.equal(await codes({ key: "sk_live_" + "A".repeat(30) }), "NOT_FOUND");
  assert.equal(await codes({ key: "not a key" }), "NOT_FOUND");
  assert.equal(
    await codes({ key: k.key.slice(0, -1) + (k.key.endsWith("a") ? "b" : "a") }),
    "NOT_FOUND",
  );
  assert.equal(await codes({ key: k.key, environment: "test" }), "NOT_FOUND");
  assert.equal(await codes({ key: k.key, environment: "live" }), "VALID");
  const bound = await h.serviceToken(["keys:verify"], acme.id);
  assert.equal(await codes({ key: k.key }, bound.token), "VALID");
  assert.equal(await codes({ key: theirs.key }, bound.token), "NOT_FOUND");
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    token: h.root,
    body: { name: "Gone soon" },
  });
  const pk = await keyFor(h, "acme", { project_id: project.body.data.id });
  assert.equal(await codes({ key: pk.key }), "VALID");
  await h.call("DELETE", `/v1/tenants/acme/projects/${project.body.data.id}`, { token: h.root });
  assert.equal(await codes({ key: pk.key }), "NOT_FOUND");
  const notFound = await verify(h, { key: "sk_live_" + "A".repeat(30) });
  assert.equal(notFound.valid, false);
  assert.equal(notFound.key_id, null);
});

Deno.test("verify: REVOKED, EXPIRED, TENANT_SUSPENDED, INSUFFICIENT_SCOPES", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const revoked = await keyFor(h, "acme");
  await h.call("DELETE", `/v1/tenants/acme/api-keys/${revoked.id}`, { token: h.root });
  assert.equal((await verify(h, { key: revoked.key })).code, "REVOKED");
  const expiring = await keyFor(h, "acme", {
    expires_at: new Date(h.clock.now + 60_000).toISOString(),
  });
  assert.equal((await verify(h, { key: expiring.key })).code, "VALID");
  h.advance(60_000);
  const expired = await verify(h, { key: expiring.key });
  assert.equal(expired.code, "EXPIRED");
  assert.equal(expired.valid, false);
  const scoped = await keyFor(h, "acme", { scopes: ["read"] });
  assert.equal(
    (await verify(h, { key: scoped.key, scopes: ["read", "write"] })).code,
    "INSUFFICIENT_SCOPES",
  );
  await h.call("POST", "/v1/tenants/acme/suspend", { token: h.root, body: { reason: "unpaid" } });
  assert.equal((await verify(h, { key: scoped.key })).code, "TENANT_SUSPENDED");
  // Order: a revoked key of a suspended tenant is REVOKED.
  assert.equal((await verify(h, { key: revoked.key })).code, "REVOKED");
});

Deno.test("verify: RATE_LIMITED past the burst; a denied call spends neither rate nor quota", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await onPlan(h, "acme", "tiny", { rps: 2, burst: 3, quota: 5 });
  const k = await keyFor(h, "acme");
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await verify(h, { key: k.key })).code);
  assert.deepEqual(codes, ["VALID", "VALID", "VALID", "RATE_LIMITED", "RATE_LIMITED"]);
  const limited = await verify(h, { key: k.key });
  assert.equal(limited.ratelimit.remaining, 0);
  assert.ok(limited.ratelimit.reset > h.clock.now);
  // Two rate-limited calls spent no quota: 3 of 5 used. (Two seconds on, the sliding
  // one-second window no longer weighs the burst.)
  h.advance(2_000);
  const next = await verify(h, { key: k.key });
  assert.equal(next.code, "VALID");
  assert.equal(next.quota.used, 4);
  h.advance(2_000);
  assert.equal((await verify(h, { key: k.key })).code, "VALID");
  h.advance(2_000);
  const over = await verify(h, { key: k.key });
  assert.equal(over.code, "USAGE_EXCEEDED");
  assert.equal(over.quota.remaining, 0);
  // Over-quota calls do not spend the rate limit either.
  const remaining = over.ratelimit.remaining;
  assert.equal((await verify(h, { key: k.key })).ratelimit.remaining, remaining);
});

Deno.test("verify: a key's own rate limit overrides the plan's; cost 0 checks without spending", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const k = await keyFor(h, "acme", { rate_limit: { requests_per_second: 1, burst: 1 } });
  assert.equal((await verify(h, { key: k.key, cost: 0 })).quota.used, 0);
  assert.equal((await verify(h, { key: k.key })).code, "RATE_LIMITED");
  h.advance(10_000);
  const big = await verify(h, { key: k.key, cost: 10 });
  assert.equal(big.code, "VALID");
  assert.equal(big.quota.used, 10);
});

Deno.test("verify: 200 concurrent calls against a quota of 100 give exactly 100 VALID", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await onPlan(h, "acme", "q100", { quota: 100 });
  const k = await keyFor(h, "acme");
  const answers = await Promise.all(
    Array.from({ length: 200 }, () => verify(h, { key: k.key })),
  );
  const count = (code: string) => answers.filter((a) => a.code === code).length;
  assert.equal(count("VALID"), 100);
  assert.equal(count("USAGE_EXCEEDED"), 100);
  await h.svc.counters.flush();
  const period = await h.kv.get<Deno.KvU64>(
    keys.usagePeriod(answers[0].tenant_id, "verifications", "2026-03"),
  );
  assert.equal(period.value?.value, 100n);
  // And after the flush, still exact.
  assert.equal((await verify(h, { key: k.key })).code, "USAGE_EXCEEDED");
});

Deno.test("verify: a plan change and a suspension reach every key of the tenant at once", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const ks = [await keyFor(h, "acme"), await keyFor(h, "acme"), await keyFor(h, "acme")];
  for (const k of ks) assert.equal((await verify(h, { key: k.key })).plan.code, "free");
  await h.call("PATCH", "/v1/tenants/acme/billing", {
    token: h.root,
    body: { plan_code: "enterprise", override: true, reason: "contract" },
  });
  for (const k of ks) {
    const r = await verify(h, { key: k.key });
    assert.equal(r.plan.code, "enterprise");
    assert.equal(r.quota.limit, 80_000_000);
    assert.equal(r.ratelimit.limit, 1_000);
  }
  await h.call("POST", "/v1/tenants/acme/suspend", { token: h.root });
  for (const k of ks) assert.equal((await verify(h, { key: k.key })).code, "TENANT_SUSPENDED");
  await h.call("POST", "/v1/tenants/acme/resume", { token: h.root });
  for (const k of ks) assert.equal((await verify(h, { key: k.key })).code, "VALID");
  await h.call("DELETE", "/v1/tenants/acme", { token: h.root });
  for (const k of ks) assert.equal((await verify(h, { key: k.key })).code, "NOT_FOUND");
});

Deno.test("verify: another process sees a revocation, a suspension or a plan change within the cache window", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const k = await keyFor(h, "acme");
  // A second process: same store, its own cache and counters.
  const other = new Verifier(
    {
      ...h.svc,
      cache: new KvCache(h.kv, { freshMs: 5_000, maxEntries: 100, now: () => h.clock.now }),
    },
    h.svc.counters,
  );
  assert.equal((await other.verify({ key: k.key })).code, "VALID");
  await h.call("DELETE", `/v1/tenants/acme/api-keys/${k.id}`, { token: h.root });
  assert.equal((await verify(h, { key: k.key })).code, "REVOKED", "at once in this process");
  h.advance(4_999);
  assert.equal((await other.verify({ key: k.key })).code, "VALID", "still within the window");
  h.advance(1);
  assert.equal((await other.verify({ key: k.key })).code, "REVOKED", "at the window's end");
});

Deno.test("verify: a malformed key reads nothing; a warm key reads nothing either", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const k = await keyFor(h, "acme");
  await verify(h, { key: k.key }); // warms the caller's token and the key
  const malformed = await kvReads(h, async () => {
    for (const key of ["nope", "sk_live_" + "x".repeat(30), k.key.slice(0, -2) + "zz"]) {
      assert.equal((await verify(h, { key })).code, "NOT_FOUND");
    }
  });
  assert.equal(malformed, 0);
  const warm = await kvReads(h, async () => {
    for (let i = 0; i < 5; i++) assert.equal((await verify(h, { key: k.key })).code, "VALID");
  });
  assert.equal(warm, 0);
  const usage = await h.kv.get(keys.keyUsageDaily(await tenantOf(h), k.id, "2026-03-01"));
  assert.equal(usage.value, null, "written behind: nothing yet");
});

Deno.test("verify: a tenant's warm keys stay fresh through one read of its stamp per half window", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const ks: { id: string; key: string }[] = [];
  for (let i = 0; i < 100; i++) ks.push(await keyFor(h, "acme"));
  /** `seconds` of traffic: every key every 500 ms. */
  const traffic = async (seconds: number) => {
    for (let step = 0; step < seconds * 2; step++) {
      h.advance(500);
      const answers = await Promise.all(ks.map((k) => verify(h, { key: k.key, cost: 0 })));
      assert.ok(answers.every((r) => r.code === "VALID"));
      // The refreshes these calls started land before the clock moves on, however busy the
      // machine: a refresh still in flight at the next step would be counted as another read.
      await h.svc.cache.settled();
    }
  };
  // A key's pointer names its tenant, hence its stamp: its first refresh reads it with it.
  await traffic(5);
  const reads = h.svc.cache.reads;
  await traffic(30); // 12 half windows of the 5 s cache
  // Each half window refreshes the stamp, the period's usage, the plan and the token, not the
  // keys: 30 reads here, where reading each key and its pointer again made 1,230.
  const made = h.svc.cache.reads - reads;
  assert.ok(made <= 12 * 6, `${made} reads`);
  // (How a change made elsewhere shows through the stamp: the test above, and kv_test.ts.)
});

async function tenantOf(h: Harness) {
  return (await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data.id as string;
}

Deno.test("verify: usage is written behind — per tenant per period and day, per key per day, last used", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const t = await tenantOf(h);
  const k = await keyFor(h, "acme");
  for (let i = 0; i < 3; i++) await verify(h, { key: k.key, cost: 2 });
  await verify(h, { key: k.key, scopes: ["missing"] }); // denied: not counted
  await h.svc.counters.flush();
  const read = async (key: Deno.KvKey) => (await h.kv.get<Deno.KvU64>(key)).value?.value;
  assert.equal(await read(keys.usagePeriod(t, "verifications", "2026-03")), 6n);
  assert.equal(await read(keys.usageDaily(t, "verifications", "2026-03-01")), 6n);
  assert.equal(
    await read(keys.keyUsageDaily(t, k.id, "2026-03-01")),
    6n,
    "in units, like the tenant's",
  );
  assert.equal(await read(keys.keyLastUsed(t, k.id)), BigInt(h.clock.now));
});

Deno.test("verify: 400 on bad input; 401 without a token; 403 without keys:verify", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const post = (body: unknown, token = h.root) =>
    h.call("POST", "/v1/keys/verify", { token, body });
  assertInvalid(await post({}), "json.key");
  assertInvalid(await post({ key: "x", cost: -1 }), "json.cost");
  assertInvalid(await post({ key: "x", environment: "prod" }), "json.environment");
  assertInvalid(await post({ key: "x", tenant: "acme" }));
  assertError(await h.call("POST", "/v1/keys/verify", { body: { key: "x" } }), 401, "UNAUTHORIZED");
  const owner = await memberOf(h, t.id, "owner");
  assertError(await post({ key: "x" }, owner.token), 403, "FORBIDDEN");
  const reader = await h.serviceToken(["keys:read"]);
  assertError(await post({ key: "x" }, reader.token), 403, "FORBIDDEN");
  const gateway = await h.serviceToken(["keys:verify"]);
  assert.equal((await post({ key: "x" }, gateway.token)).status, 200);
});

Deno.test("verify: the fast path and the full chain answer a call alike; errors take the full chain", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const k = await keyFor(h, "acme", { scopes: ["a"] });
  const send = (headers: Record<string, string>, body: string) =>
    h.app.request("/v1/keys/verify", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${h.root}`,
        "Content-Type": "application/json",
        ...headers,
      },
      body,
    });
  const body = JSON.stringify({ key: k.key, scopes: ["a"], cost: 0 });
  const fast = await send({ "Content-Length": String(body.length), "X-Request-Id": "gw-1" }, body);
  const full = await send({ "X-Request-Id": "gw-2" }, body); // no length: the full chain
  const [a, b] = [await fast.json(), await full.json()];
  // The second call spent one more request of the rate limit; all else is the same.
  assert.deepEqual({ ...a.data, ratelimit: null }, { ...b.data, ratelimit: null });
  assert.equal(a.data.ratelimit.remaining, b.data.ratelimit.remaining + 1);
  assert.equal(a.meta.request_id, "gw-1");
  assert.equal(b.meta.request_id, "gw-2");
  for (
    const name of [
      "X-Request-Id",
      "Cache-Control",
      "X-Content-Type-Options",
      "Content-Security-Policy",
    ]
  ) {
    assert.ok(fast.headers.get(name), name);
    if (name !== "X-Request-Id") assert.equal(fast.headers.get(name), full.headers.get(name), name);
  }
  assert.equal(fast.headers.get("Content-Type"), "application/json");
  // Invalid bodies, bad tokens and missing permissions are answered by the full chain.
  const bad = JSON.stringify({ key: k.key, cost: -1 });
  const invalid = await send({ "Content-Length": String(bad.length) }, bad);
  assert.equal(invalid.status, 400);
  assert.equal((await invalid.json()).error.details[0].path.join("."), "json.cost");
  const reader = await h.serviceToken(["keys:read"]);
  const denied = await h.app.request("/v1/keys/verify", {
    method: "POST",
    headers: {
      Authorization: `Bearer ${reader.token}`,
      "Content-Type": "application/json",
      "Content-Length": String(body.length),
    },
    body,
  });
  assert.equal(denied.status, 403);
  const garbled = await send({ "Content-Length": "3" }, "{x}");
  assert.equal(garbled.status, 400);
});
