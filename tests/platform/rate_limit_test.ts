import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { ApiRateLimiter } from "../../domain/access/api_rate_limit.ts";
import { ConfigError, loadConfig } from "../../config.ts";

/** Small budgets, so a test reaches them in a few calls. */
const LIMITS = {
  STEWARD_RATE_LIMITS: "on",
  STEWARD_RATE_LIMIT_READ: "1/3",
  STEWARD_RATE_LIMIT_WRITE: "1/2",
  STEWARD_RATE_LIMIT_EXPENSIVE: "1/1",
  STEWARD_RATE_LIMIT_INGEST: "1/4",
  STEWARD_RATE_LIMIT_ANONYMOUS: "1/2",
};

const VERIFY = { key: "sk_live_not_a_key" };

Deno.test("rate limits: headers on every limited answer, then 429 with Retry-After", async () => {
  await using h = await setup({ env: LIMITS });
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const res = await h.call("GET", "/v1/tenants", { token: h.root });
    assert.equal(res.status, 200);
    seen.push([res.headers.get("RateLimit-Policy"), res.headers.get("RateLimit")]);
  }
  assert.deepEqual(seen, [
    ['"read";q=3;w=3', '"read";r=2;t=1'],
    ['"read";q=3;w=3', '"read";r=1;t=2'],
    ['"read";q=3;w=3', '"read";r=0;t=3'],
  ]);
  const refused = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(refused.status, 429);
  assert.equal(refused.body.success, false);
  assert.equal(refused.body.error.code, "RATE_LIMITED");
  assert.equal(typeof refused.body.error.request_id, "string");
  assert.equal(refused.headers.get("Retry-After"), "1");
  assert.equal(refused.headers.get("RateLimit-Policy"), '"read";q=3;w=3');
  assert.equal(refused.headers.get("RateLimit"), '"read";r=0;t=3');
  // Half a second refills half a request: still refused, Retry-After stays a whole second.
  h.advance(500);
  const still = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(still.status, 429);
  assert.equal(still.headers.get("Retry-After"), "1");
  h.advance(500);
  const again = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(again.status, 200);
  assert.equal(again.headers.get("RateLimit"), '"read";r=0;t=3');
  // An error answer after authentication is limited, and carries the fields too.
  h.advance(3_000);
  const missing = await h.call("GET", "/v1/tenants/ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", {
    token: h.root,
  });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("RateLimit"), '"read";r=2;t=1');
});

Deno.test("rate limits: read, write and expensive budgets are separate", async () => {
  await using h = await setup({ env: LIMITS });
  for (let i = 0; i < 3; i++) await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal((await h.call("GET", "/v1/tenants", { token: h.root })).status, 429);
  const created = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme", slug: "acme" },
  });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get("RateLimit-Policy"), '"write";q=2;w=2');
  assert.equal(created.headers.get("RateLimit"), '"write";r=1;t=1');
  const exported = await h.call("GET", "/v1/admin/audit/export", { token: h.root });
  assert.equal(exported.status, 200);
  assert.equal(exported.headers.get("RateLimit-Policy"), '"expensive";q=1;w=1');
  assert.equal(exported.headers.get("RateLimit"), '"expensive";r=0;t=1');
  const second = await h.call("GET", "/v1/admin/audit/export", { token: h.root });
  assert.equal(second.status, 429);
  assert.equal(second.headers.get("Retry-After"), "1");
  // The write budget still has one.
  const member = await h.call("PATCH", `/v1/tenants/${created.body.data.id}`, {
    token: h.root,
    body: { name: "Acme Ltd" },
  });
  assert.equal(member.status, 200);
  assert.equal(member.headers.get("RateLimit"), '"write";r=0;t=2');
  // Usage ingestion has a budget of its own: the spent write budget does not stop it.
  const events = await h.call("POST", "/v1/usage/events", { token: h.root, body: { events: [] } });
  assert.equal(events.headers.get("RateLimit-Policy"), '"ingest";q=4;w=4');
  assert.equal(events.headers.get("RateLimit"), '"ingest";r=3;t=1');
});

Deno.test("rate limits: unauthenticated calls are limited per client IP", async () => {
  await using h = await setup({ env: LIMITS });
  const a = "198.51.100.1";
  const first = await h.call("GET", "/v1/tenants", { ip: a });
  assert.equal(first.status, 401);
  assert.equal(first.headers.get("RateLimit-Policy"), '"anonymous";q=2;w=2');
  assert.equal(first.headers.get("RateLimit"), '"anonymous";r=1;t=1');
  // A public route spends the same budget.
  const health = await h.call("GET", "/health", { ip: a });
  assert.equal(health.headers.get("RateLimit"), '"anonymous";r=0;t=2');
  const refused = await h.call("POST", "/v1/auth/login", {
    ip: a,
    body: { email: "x@example.com", password: "wrong password" },
  });
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, "RATE_LIMITED");
  assert.equal(refused.headers.get("Retry-After"), "1");
  // Another address has its own budget; an authenticated call from `a` its principal's.
  assert.equal((await h.call("GET", "/v1/tenants", { ip: "198.51.100.2" })).status, 401);
  assert.equal((await h.call("GET", "/v1/tenants", { ip: a, token: h.root })).status, 200);
  // Probes are never limited.
  for (let i = 0; i < 5; i++) {
    const live = await h.call("GET", "/health/live", { ip: a });
    assert.equal(live.status, 200);
    assert.equal(live.headers.get("RateLimit"), null);
  }
});

Deno.test("rate limits: STEWARD_TRUSTED_PROXIES decides the client IP", async () => {
  await using h = await setup({
    env: { ...LIMITS, STEWARD_TRUSTED_PROXIES: "10.0.0.0/8" },
  });
  const via = (client: string) => ({ ip: "10.0.0.5", headers: { "X-Forwarded-For": client } });
  await h.call("GET", "/v1/tenants", via("198.51.100.7"));
  await h.call("GET", "/v1/tenants", via("198.51.100.7"));
  assert.equal((await h.call("GET", "/v1/tenants", via("198.51.100.7"))).status, 429);
  assert.equal((await h.call("GET", "/v1/tenants", via("198.51.100.8"))).status, 401);
});

Deno.test("rate limits: a token's own limits, and a platform role's, override the defaults", async () => {
  await using h = await setup({
    env: { ...LIMITS, STEWARD_RATE_LIMIT_ROLES: '{"support":{"read":"2/5"}}' },
  });
  const created = await h.call("POST", "/v1/admin/tokens", {
    token: h.root,
    body: {
      name: "slow",
      permissions: ["tenants:read"],
      rate_limit: { read: { requests_per_second: 0.5, burst: 1 } },
    },
  });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body.data.rate_limit, { read: { requests_per_second: 0.5, burst: 1 } });
  const slow = created.body.data.token;
  const once = await h.call("GET", "/v1/tenants", { token: slow });
  assert.equal(once.status, 200);
  assert.equal(once.headers.get("RateLimit-Policy"), '"read";q=1;w=2');
  const twice = await h.call("GET", "/v1/tenants", { token: slow });
  assert.equal(twice.status, 429);
  assert.equal(twice.headers.get("Retry-After"), "2");
  // Budgets the token leaves out keep the defaults.
  const write = await h.call("POST", "/v1/auth/logout", { token: slow });
  assert.equal(write.headers.get("RateLimit-Policy"), '"write";q=2;w=2');

  const support = await h.user("support");
  const me = await h.call("GET", "/v1/auth/me", { token: support.token });
  assert.equal(me.status, 200);
  assert.equal(me.headers.get("RateLimit-Policy"), '"read";q=5;w=3');
  const admin = await h.user("admin");
  const other = await h.call("GET", "/v1/auth/me", { token: admin.token });
  assert.equal(other.headers.get("RateLimit-Policy"), '"read";q=3;w=3');
  // A bad override is refused at creation.
  const bad = await h.call("POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "x", permissions: ["tenants:read"], rate_limit: { read: { burst: 0 } } },
  });
  assert.equal(bad.status, 400);
});

Deno.test("rate limits: STEWARD_RATE_LIMITS=off sends no headers and never refuses", async () => {
  await using h = await setup({ env: { ...LIMITS, STEWARD_RATE_LIMITS: "off" } });
  for (let i = 0; i < 10; i++) {
    const res = await h.call("GET", "/v1/tenants", { token: h.root });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("RateLimit"), null);
    assert.equal(res.headers.get("RateLimit-Policy"), null);
  }
  assert.equal(loadConfig({}).STEWARD_RATE_LIMITS, "on");
  assert.throws(() => loadConfig({ STEWARD_RATE_LIMIT_READ: "fast" }), ConfigError);
  assert.throws(
    () => loadConfig({ STEWARD_RATE_LIMIT_ROLES: '{"nobody":{"read":"1/1"}}' }),
    ConfigError,
  );
  assert.deepEqual(
    loadConfig({ STEWARD_RATE_LIMIT_ROLES: '{"support":{"read":"20/40"}}' })
      .STEWARD_RATE_LIMIT_ROLES,
    { support: { read: { requests_per_second: 20, burst: 40 } } },
  );
});

Deno.test("rate limits: verify is excluded for good tokens, limited per IP for bad ones", async () => {
  await using h = await setup({ env: LIMITS });
  const gateway = await h.serviceToken(["keys:verify"]);
  const ip = "198.51.100.9";
  // A valid token: the fast path, never limited and without the fields.
  for (let i = 0; i < 10; i++) {
    const res = await h.call("POST", "/v1/keys/verify", { token: gateway.token, body: VERIFY, ip });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("RateLimit"), null);
  }
  // A refused token: the fast path spends once, and the full chain (which answers 401) does not
  // spend again.
  const bad = "stw_notARealTokenNotARealTokenNotARealToken000";
  const first = await h.call("POST", "/v1/keys/verify", { token: bad, body: VERIFY, ip });
  assert.equal(first.status, 401);
  assert.equal(first.headers.get("RateLimit"), '"anonymous";r=1;t=1');
  const second = await h.call("POST", "/v1/keys/verify", { token: bad, body: VERIFY, ip });
  assert.equal(second.status, 401);
  assert.equal(second.headers.get("RateLimit"), '"anonymous";r=0;t=2');
  // The fast path answers the flood itself.
  const third = await h.call("POST", "/v1/keys/verify", { token: bad, body: VERIFY, ip });
  assert.equal(third.status, 429);
  assert.equal(third.body.error.code, "RATE_LIMITED");
  assert.equal(third.headers.get("Retry-After"), "1");
  assert.equal(third.headers.get("RateLimit-Policy"), '"anonymous";q=2;w=2');
  // No token at all goes the full chain's way, and is limited there too.
  const none = await h.call("POST", "/v1/keys/verify", { body: VERIFY, ip });
  assert.equal(none.status, 429);
  assert.equal(none.headers.get("Retry-After"), "1");
  // The good token is still unaffected from the same IP.
  const good = await h.call("POST", "/v1/keys/verify", { token: gateway.token, body: VERIFY, ip });
  assert.equal(good.status, 200);
  // Another IP, no token, full chain: its own budget.
  const other = await h.call("POST", "/v1/keys/verify", { body: VERIFY, ip: "198.51.100.10" });
  assert.equal(other.status, 401);
  assert.equal(other.headers.get("RateLimit"), '"anonymous";r=1;t=1');
});

Deno.test("rate limits: the bucket map stays within its bound, evicting the least recently used", () => {
  const limiter = new ApiRateLimiter({
    defaults: {
      read: { requests_per_second: 1, burst: 2 },
      write: { requests_per_second: 1, burst: 2 },
      expensive: { requests_per_second: 1, burst: 2 },
      ingest: { requests_per_second: 1, burst: 2 },
      anonymous: { requests_per_second: 1, burst: 2 },
    },
    roles: {},
    maxEntries: 100,
  });
  limiter.spendAnonymous("keep", 0);
  for (let i = 0; i < 10_000; i++) {
    limiter.spendAnonymous(`10.0.${i >> 8}.${i & 255}`, 0);
    // Used again and again: stays, and keeps its spend.
    if (i % 50 === 0) limiter.spendAnonymous("keep", 0);
    assert.ok(limiter.size <= 100);
  }
  assert.equal(limiter.size, 100);
  assert.equal(limiter.spendAnonymous("keep", 0).allowed, false);
});
