/**
 * A service token bound to tenant A never reaches tenant B, on any route that accepts it:
 * every route under /v1/tenants/{tenant} answers 404 for B, and every platform route a bound
 * token may call (BOUND_PLATFORM) narrows what it returns or accepts to A. The table below must
 * name each such route, so a new one cannot be added without saying how it narrows.
 */
import assert from "node:assert/strict";
import { PERMISSIONS } from "../../domain/access/permissions.ts";
import { BOUND_PLATFORM } from "../../domain/access/principal.ts";
import { ROUTE_ACCESS } from "../../routes/permissions.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError } from "../_assert.ts";

interface World {
  h: Harness;
  /** A token bound to tenant A holding every permission. */
  token: string;
  a: { id: string; slug: string };
  b: { id: string; slug: string };
  /** Member of B only. */
  userB: string;
  /** Member of A and of B. */
  userAB: string;
  tokenB: string;
  keyB: string;
}

async function world(): Promise<World> {
  const h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const userB = (await h.user(null)).id;
  const userAB = (await h.user(null)).id;
  await h.member(b.id, userB, "admin");
  await h.member(a.id, userAB, "member");
  await h.member(b.id, userAB, "member");
  const keyB = await h.call("POST", `/v1/tenants/${b.slug}/api-keys`, {
    token: h.root,
    body: { name: "b", environment: "live" },
  });
  const tokenB = await h.serviceToken(["tenants:read"], b.id);
  const bound = await h.serviceToken([...PERMISSIONS], a.id);
  return {
    h,
    token: bound.token,
    a,
    b,
    userB,
    userAB,
    tokenB: tokenB.id,
    keyB: keyB.body.data.key,
  };
}

/** The ids and slug of B: none may appear in an answer to A's token. */
const traces = (w: World) => [w.b.id, w.b.slug, w.userB, w.tokenB];

function assertNoTrace(w: World, text: string, route: string) {
  for (const t of traces(w)) assert.ok(!text.includes(t), `${route} shows ${t}: ${text}`);
}

/** How each platform route open to bound tokens narrows to the binding. */
const PLATFORM_CASES: Record<string, (w: World) => Promise<void>> = {
  "GET /v1/users/{id}/audit-trail": async (w) => {
    const only = await w.h.call("GET", `/v1/users/${w.userB}/audit-trail`, { token: w.token });
    assertError(only, 404, "NOT_FOUND");
    const both = await w.h.call("GET", `/v1/users/${w.userAB}/audit-trail`, { token: w.token });
    assert.equal(both.status, 200, both.text);
    assert.ok(both.body.data.length > 0, "A's events of a member of A are shown");
    for (const e of both.body.data) assert.equal(e.tenant_id, w.a.id);
    assertNoTrace(w, both.text, "audit-trail");
    const asked = await w.h.call("GET", `/v1/users/${w.userAB}/audit-trail?tenant_id=${w.b.id}`, {
      token: w.token,
    });
    assertError(asked, 404, "NOT_FOUND");
  },
  "GET /v1/admin/tokens": async (w) => {
    const res = await w.h.call("GET", "/v1/admin/tokens", { token: w.token });
    assert.equal(res.status, 200);
    for (const t of res.body.data) assert.equal(t.tenant_id, w.a.id);
    assertNoTrace(w, res.text, "tokens");
  },
  "POST /v1/admin/tokens": async (w) => {
    const res = await w.h.call("POST", "/v1/admin/tokens", {
      token: w.token,
      body: { name: "x", permissions: ["tenants:read"], tenant_id: w.b.id },
    });
    assert.ok([403, 404].includes(res.status), res.text);
  },
  "GET /v1/admin/tokens/{id}": async (w) => {
    const res = await w.h.call("GET", `/v1/admin/tokens/${w.tokenB}`, { token: w.token });
    assertError(res, 404, "NOT_FOUND");
  },
  "DELETE /v1/admin/tokens/{id}": async (w) => {
    const res = await w.h.call("DELETE", `/v1/admin/tokens/${w.tokenB}`, { token: w.token });
    assertError(res, 404, "NOT_FOUND");
  },
  "POST /v1/tokens": async (w) => {
    const res = await w.h.call("POST", "/v1/tokens", { token: w.token, body: { key: w.keyB } });
    assertError(res, 422, "UNPROCESSABLE");
    assert.equal(res.body.error.details.code, "NOT_FOUND");
  },
  "POST /v1/keys/verify": async (w) => {
    const res = await w.h.call("POST", "/v1/keys/verify", {
      token: w.token,
      body: { key: w.keyB },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.data.code, "NOT_FOUND");
    assertNoTrace(w, res.text, "verify");
  },
  "POST /v1/usage/events": async (w) => {
    const res = await w.h.call("POST", "/v1/usage/events", {
      token: w.token,
      body: {
        events: [{
          id: "e1",
          tenant_id: w.b.id,
          metric: "x",
          quantity: 1,
          timestamp: new Date(w.h.clock.now).toISOString(),
        }],
      },
    });
    assert.equal(res.body.data.results[0].status, "rejected", res.text);
  },
  "GET /v1/admin/audit": async (w) => {
    const res = await w.h.call("GET", "/v1/admin/audit", { token: w.token });
    assert.equal(res.status, 200);
    for (const e of res.body.data) assert.equal(e.tenant_id, w.a.id);
    assertNoTrace(w, res.text, "audit");
    const asked = await w.h.call("GET", `/v1/admin/audit?tenant_id=${w.b.id}`, { token: w.token });
    assertError(asked, 404, "NOT_FOUND");
  },
  "GET /v1/admin/audit/export": async (w) => {
    const res = await w.h.call("GET", "/v1/admin/audit/export", { token: w.token });
    assert.equal(res.status, 200);
    assertNoTrace(w, res.text, "audit export");
  },
};

Deno.test("tenant binding: every platform route open to bound tokens has a narrowing case", () => {
  const open = Object.entries(ROUTE_ACCESS)
    .filter(([route, access]) => !route.includes("{tenant}") && BOUND_PLATFORM.has(access as never))
    .map(([route]) => route).sort();
  assert.deepEqual(open, Object.keys(PLATFORM_CASES).sort());
});

Deno.test("tenant binding: platform routes narrow a bound token to its tenant", async () => {
  const w = await world();
  await using _ = w.h;
  for (const [route, check] of Object.entries(PLATFORM_CASES)) {
    await check(w).catch((err) => {
      throw new Error(`${route}: ${err.message}`);
    });
  }
});

Deno.test("tenant binding: every route under /v1/tenants/{tenant} answers 404 for another tenant", async () => {
  const w = await world();
  await using _ = w.h;
  const placeholder = (name: string) =>
    name === "tenant" ? w.b.slug : "xyz_00000000000000000000000000";
  const tenantRoutes = Object.keys(ROUTE_ACCESS).filter((r) => r.includes("{tenant}"));
  assert.ok(tenantRoutes.length > 20);
  for (const route of tenantRoutes) {
    const [method, template] = route.split(" ");
    const path = template.replace(/\{(\w+)\}/g, (_, name) => placeholder(name));
    const res = await w.h.call(method, path, {
      token: w.token,
      body: method === "GET" || method === "DELETE" ? undefined : {},
    });
    assert.equal(res.status, 404, `${route}: ${res.status} ${res.text}`);
    assertNoTrace(w, res.text, route);
  }
});
