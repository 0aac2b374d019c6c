/**
 * Daily request counts (/v1/me/daily, /v1/users/{id}/daily) and the caller's overview
 * (/v1/me/overview): counted in memory by the request middleware, written behind, exact
 * before and after a flush; ranges validated; roles and visibility.
 */
import assert from "node:assert/strict";
import { recordRequest } from "../../domain/usage/activity.ts";
import { keys } from "../../kv/keys.ts";
import { SumBuffer } from "../../kv/sum_buffer.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

async function stored(h: Harness, principalId: string): Promise<number> {
  let n = 0;
  for await (const _ of h.kv.list({ prefix: keys.principalDailies(principalId) })) n++;
  return n;
}

Deno.test("GET /v1/me/daily: every authenticated request counts, with no KV write per request", async () => {
  await using h = await setup();
  const user = await h.user(null);
  for (let i = 0; i < 4; i++) await h.call("GET", "/v1/auth/me", { token: user.token });
  assert.equal(await stored(h, user.id), 0, "nothing written yet");
  const before = await h.call("GET", "/v1/me/daily?from=2026-03-01&to=2026-03-01", {
    token: user.token,
  });
  assert.equal(before.status, 200, before.text);
  // The four calls, and this one (counted before its handler runs).
  assert.deepEqual(before.body.data.days, [{ date: "2026-03-01", requests: 5 }]);
  await h.svc.counters.flush();
  assert.equal(await stored(h, user.id), 1);
  const counter = await h.kv.get<Deno.KvU64>(keys.principalDaily(user.id, "2026-03-01"));
  assert.equal(counter.value?.value, 5n);
  const after = await h.call("GET", "/v1/me/daily?from=2026-03-01&to=2026-03-01", {
    token: user.token,
  });
  assert.deepEqual(after.body.data.days, [{ date: "2026-03-01", requests: 6 }]);
  // Public routes and refused credentials do not count.
  await h.call("GET", "/health/live");
  await h.call("GET", "/v1/auth/me", { token: "stw_nope" });
  const again = await h.call("GET", "/v1/me/daily?from=2026-03-01&to=2026-03-01", {
    token: user.token,
  });
  assert.equal(again.body.data.total, 7);
});

Deno.test("GET /v1/me/daily: days land in their own buckets; the range is zero-filled", async () => {
  await using h = await setup();
  // A service token: a session would end while the clock moves a day.
  const user = await h.serviceToken(["tenants:read"]);
  await h.call("GET", "/v1/auth/me", { token: user.token });
  h.advance(86_400_000);
  await h.call("GET", "/v1/auth/me", { token: user.token });
  await h.call("GET", "/v1/auth/me", { token: user.token });
  await h.svc.counters.flush();
  const res = await h.call("GET", "/v1/me/daily?from=2026-02-28&to=2026-03-03", {
    token: user.token,
  });
  assert.deepEqual(res.body.data.days, [
    { date: "2026-02-28", requests: 0 },
    { date: "2026-03-01", requests: 1 },
    { date: "2026-03-02", requests: 3 },
    { date: "2026-03-03", requests: 0 },
  ]);
  assert.equal(res.body.data.total, 4);
  // Without a range: the last 30 days, ending today.
  const recent = await h.call("GET", "/v1/me/daily", { token: user.token });
  assert.equal(recent.body.data.days.length, 30);
  assert.equal(recent.body.data.to, "2026-03-02");
});

Deno.test("GET /v1/me/daily: 400 on inverted, over-long or malformed ranges; 401 without a token", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const get = (q: string) => h.call("GET", `/v1/me/daily?${q}`, { token: user.token });
  assertInvalid(await get("from=2026-03-02&to=2026-03-01"), "query.from");
  assertInvalid(await get("from=2025-01-01&to=2026-03-01"), "query.from");
  assert.equal((await get("from=2025-03-01&to=2026-03-01")).status, 200, "366 days is allowed");
  assertInvalid(await get("from=2026-02-30"), "query.from");
  assertInvalid(await get("from=yesterday"), "query.from");
  assertInvalid(await get("colour=red"));
  assertError(await h.call("GET", "/v1/me/daily"), 401, "UNAUTHORIZED");
});

Deno.test("GET /v1/users/{id}/daily: staff read anyone's; others 403; unknown user 404", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await h.call("GET", "/v1/auth/me", { token: user.token });
  for (const role of ["admin", "support"] as const) {
    const staff = await h.user(role);
    const res = await h.call("GET", `/v1/users/${user.id}/daily?from=2026-03-01&to=2026-03-01`, {
      token: staff.token,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.total, 1);
  }
  const other = await h.user(null);
  assertError(
    await h.call("GET", `/v1/users/${user.id}/daily`, { token: other.token }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("GET", "/v1/users/usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/daily", { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertError(await h.call("GET", `/v1/users/${user.id}/daily`), 401, "UNAUTHORIZED");
});

Deno.test("service tokens are counted too", async () => {
  await using h = await setup();
  const token = await h.serviceToken(["tenants:read"]);
  await h.call("GET", "/v1/tenants", { token: token.token });
  const res = await h.call("GET", "/v1/me/daily?from=2026-03-01&to=2026-03-01", {
    token: token.token,
  });
  assert.equal(res.body.data.principal_id, token.id);
  assert.equal(res.body.data.total, 2);
});

Deno.test("GET /v1/me/overview: the caller's tenants with role, plan, status and active keys", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.tenant("globex");
  const owner = await memberOf(h, acme.id, "owner");
  await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: owner.token,
    body: { name: "server", environment: "live" },
  });
  await h.call("PATCH", "/v1/tenants/acme/billing", {
    token: h.root,
    body: { plan_code: "pro", override: false },
  });
  const res = await h.call("GET", "/v1/me/overview", { token: owner.token });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.tenants, [{
    tenant_id: acme.id,
    slug: "acme",
    name: "Tenant acme",
    status: "active",
    is_test: false,
    plan: "pro",
    role: "owner",
    active_keys: 1,
  }]);
  // Creating the key, and this call.
  assert.equal(res.body.data.requests_today, 2);
  const bound = await h.serviceToken(["tenants:read"], acme.id);
  const forToken = await h.call("GET", "/v1/me/overview", { token: bound.token });
  assert.deepEqual(forToken.body.data.tenants.map((t: { slug: string }) => t.slug), ["acme"]);
  assert.equal(forToken.body.data.tenants[0].role, null);
  const loner = await h.user(null);
  const empty = await h.call("GET", "/v1/me/overview", { token: loner.token });
  assert.deepEqual(empty.body.data.tenants, []);
  assertError(await h.call("GET", "/v1/me/overview"), 401, "UNAUTHORIZED");
});

Deno.test("recordRequest: in memory only, on the UTC day of the time given", async () => {
  await using kv = await Deno.openKv(":memory:");
  const buffer = new SumBuffer(kv, { flushIntervalMs: 60_000, maxEntries: 1_000 });
  recordRequest(buffer, "tok_a", Date.UTC(2026, 2, 1, 23, 59, 59, 999));
  recordRequest(buffer, "tok_a", Date.UTC(2026, 2, 2, 0, 0, 0, 0));
  recordRequest(buffer, "tok_a", Date.UTC(2026, 2, 2, 12, 0, 0, 0));
  assert.equal(buffer.pending(keys.principalDaily("tok_a", "2026-03-01")), 1);
  assert.equal(buffer.pending(keys.principalDaily("tok_a", "2026-03-02")), 2);
  assert.equal((await kv.get(keys.principalDaily("tok_a", "2026-03-02"))).versionstamp, null);
  await buffer.flush();
  const stored = await kv.get<Deno.KvU64>(keys.principalDaily("tok_a", "2026-03-02"));
  assert.ok(stored.value instanceof Deno.KvU64);
  assert.equal(stored.value.value, 2n);
});

Deno.test("a request refused by authorization still counts (authenticated before authorized)", async () => {
  await using h = await setup();
  const user = await h.user(null);
  assertError(await h.call("GET", "/v1/users", { token: user.token }), 403, "FORBIDDEN");
  const res = await h.call("GET", "/v1/me/daily?from=2026-03-01&to=2026-03-01", {
    token: user.token,
  });
  assert.equal(res.body.data.total, 2);
});
