/**
 * Plans (/v1/plans) and a tenant's plan (/v1/tenants/{tenant}/billing): the seeded catalogue,
 * CRUD with validation, roles, If-Match, Idempotency-Key and audit, archiving (never while in
 * use, also under a concurrent move), and plan changes.
 */
import assert from "node:assert/strict";
import { seedPlans } from "../../domain/tenancy/plans.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const NEW_PLAN = {
  code: "team",
  name: "Team",
  price: { amount: 9900, currency: "usd", interval: "month" },
  rate_limit: { requests_per_second: 20, burst: 40 },
  quota: { units: 500_000, period: "month" },
  sla: 99.5,
  features: { sso: false, seats: 10 },
};

const tenantsOn = async (h: Harness, code: string) =>
  Number((await h.kv.get<Deno.KvU64>(keys.planTenantCount(code))).value?.value ?? 0n);

Deno.test("plans: the standard catalogue is seeded once, with the tier table's figures", async () => {
  await using h = await setup();
  const res = await h.call("GET", "/v1/plans", { token: h.root });
  assert.equal(res.status, 200, res.text);
  const byCode = Object.fromEntries(res.body.data.map((p: { code: string }) => [p.code, p]));
  assert.deepEqual(Object.keys(byCode), [
    "free",
    "pro",
    "starter",
    "growth",
    "scale",
    "enterprise",
    "custom",
  ]);
  const tiers = ["starter", "growth", "scale", "enterprise", "custom"].map((code) => {
    const p = byCode[code];
    return [
      p.price.amount / 100,
      p.price.interval,
      p.quota.units,
      p.quota.period,
      p.rate_limit.requests_per_second,
      p.sla,
    ];
  });
  assert.deepEqual(tiers, [
    [100_000, "year", 2_000_000, "year", 50, 99.9],
    [250_000, "year", 10_000_000, "year", 100, 99.95],
    [500_000, "year", 30_000_000, "year", 200, 99.95],
    [1_000_000, "year", 80_000_000, "year", 500, 99.99],
    [2_000_000, "year", 200_000_000, "year", 1_000, 99.99],
  ]);
  assert.equal(byCode.free.price.amount, 0);
  assert.equal(await seedPlans(h.svc), 0, "a second start seeds nothing");
  // An edited seeded plan is left as edited.
  await h.call("PATCH", "/v1/plans/pro", { token: h.root, body: { name: "Pro (legacy)" } });
  await seedPlans(h.svc);
  assert.equal(
    (await h.call("GET", "/v1/plans/pro", { token: h.root })).body.data.name,
    "Pro (legacy)",
  );
});

Deno.test("GET /v1/plans: anyone signed in reads the catalogue; 401 without credentials; active filter", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await h.call("GET", "/v1/plans?limit=2", { token: user.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.length, 2);
  assert.equal(res.body.pagination.has_more, true);
  assertError(await h.call("GET", "/v1/plans"), 401, "UNAUTHORIZED");
  await h.call("DELETE", "/v1/plans/custom", { token: h.root });
  const active = await h.call("GET", "/v1/plans?active=false", { token: user.token });
  assert.deepEqual(active.body.data.map((p: { code: string }) => p.code), ["custom"]);
  assertInvalid(
    await h.call("GET", "/v1/plans?active=maybe", { token: user.token }),
    "query.active",
  );
  assertInvalid(await h.call("GET", "/v1/plans?color=red", { token: user.token }));
});

Deno.test("GET /v1/plans/{id}: by id or code, with ETag; 404 unknown", async () => {
  await using h = await setup();
  const byCode = await h.call("GET", "/v1/plans/growth", { token: h.root });
  assert.equal(byCode.status, 200);
  const byId = await h.call("GET", `/v1/plans/${byCode.body.data.id}`, { token: h.root });
  assert.deepEqual(byId.body.data, byCode.body.data);
  assert.equal(byId.headers.get("ETag"), byCode.headers.get("ETag"));
  assertError(await h.call("GET", "/v1/plans/nope", { token: h.root }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", "/v1/plans/pln_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", { token: h.root }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("POST /v1/plans: finance creates a plan, audited; the code is unique (409)", async () => {
  await using h = await setup();
  const finance = await h.user("finance");
  const res = await h.call("POST", "/v1/plans", { token: finance.token, body: NEW_PLAN });
  assert.equal(res.status, 201, res.text);
  assert.match(res.body.data.id, /^pln_/);
  assert.equal(res.body.data.active, true);
  assert.equal(res.body.data.stripe_price_id, null);
  assert.equal(res.headers.get("Location"), `/v1/plans/${res.body.data.id}`);
  const [event] = await h.auditFor(res.body.data.id);
  assert.equal(event.action, "plan.created");
  assert.equal(event.actor_id, finance.id);
  assertError(
    await h.call("POST", "/v1/plans", {
      token: finance.token,
      body: { ...NEW_PLAN, name: "Other" },
    }),
    409,
    "CONFLICT",
  );
});

Deno.test("POST /v1/plans: validation names each bad field and creates nothing", async () => {
  await using h = await setup();
  const post = (body: unknown) => h.call("POST", "/v1/plans", { token: h.root, body });
  assertInvalid(await post({ ...NEW_PLAN, code: "Team!" }), "json.code");
  assertInvalid(
    await post({ ...NEW_PLAN, rate_limit: { requests_per_second: 50, burst: 10 } }),
    "json.rate_limit.burst",
  );
  assertInvalid(
    await post({ ...NEW_PLAN, price: { amount: 1, currency: "USD", interval: "month" } }),
    "json.price.currency",
  );
  assertInvalid(
    await post({ ...NEW_PLAN, price: { amount: -1, currency: "usd", interval: "week" } }),
    "json.price.amount",
    "json.price.interval",
  );
  assertInvalid(await post({ ...NEW_PLAN, sla: 101 }), "json.sla");
  assertInvalid(await post({ ...NEW_PLAN, stripe_price_id: "prod_1" }), "json.stripe_price_id");
  assertInvalid(await post({ ...NEW_PLAN, owner: "me" }));
  const { quota: _, ...noQuota } = NEW_PLAN;
  assertInvalid(await post(noQuota), "json.quota");
  assertError(await h.call("GET", "/v1/plans/team", { token: h.root }), 404, "NOT_FOUND");
  // null quota is unlimited, and valid.
  assert.equal((await post({ ...NEW_PLAN, quota: null })).status, 201);
});

Deno.test("POST /v1/plans: 401; 403 for support, ops, plain users and tenant owners", async () => {
  await using h = await setup();
  assertError(await h.call("POST", "/v1/plans", { body: NEW_PLAN }), 401, "UNAUTHORIZED");
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  for (const who of [await h.user("support"), await h.user("ops"), await h.user(null), owner]) {
    assertError(
      await h.call("POST", "/v1/plans", { token: who.token, body: NEW_PLAN }),
      403,
      "FORBIDDEN",
    );
  }
});

Deno.test("POST /v1/plans: same Idempotency-Key and body replays; one plan", async () => {
  await using h = await setup();
  const headers = { "Idempotency-Key": "plan-team-1" };
  const first = await h.call("POST", "/v1/plans", { token: h.root, body: NEW_PLAN, headers });
  const again = await h.call("POST", "/v1/plans", { token: h.root, body: NEW_PLAN, headers });
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.equal(again.body.data.id, first.body.data.id);
});

Deno.test("PATCH /v1/plans/{id}: fields change, features merge, audited; If-Match stale is 412", async () => {
  await using h = await setup();
  const read = await h.call("POST", "/v1/plans", { token: h.root, body: NEW_PLAN });
  const res = await h.call("PATCH", "/v1/plans/team", {
    token: h.root,
    body: {
      rate_limit: { requests_per_second: 30, burst: 60 },
      features: { sso: true, seats: null },
    },
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.rate_limit, { requests_per_second: 30, burst: 60 });
  assert.deepEqual(res.body.data.features, { sso: true });
  const [event] = await h.auditFor(read.body.data.id);
  assert.equal(event.action, "plan.updated");
  assertError(
    await h.call("PATCH", "/v1/plans/team", {
      token: h.root,
      body: { name: "Stale" },
      headers: { "If-Match": read.headers.get("ETag")! },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  assertInvalid(
    await h.call("PATCH", "/v1/plans/team", { token: h.root, body: { code: "other" } }),
  );
  const support = await h.user("support");
  assertError(
    await h.call("PATCH", "/v1/plans/team", { token: support.token, body: { name: "X" } }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("DELETE /v1/plans/{id}: archives an unused plan; 409 while a tenant is on it", async () => {
  await using h = await setup();
  await h.tenant("acme");
  assert.equal(await tenantsOn(h, "free"), 1);
  const inUse = await h.call("DELETE", "/v1/plans/free", { token: h.root });
  assertError(inUse, 409, "CONFLICT");
  assert.match(inUse.body.error.message, /in use by 1 tenant/);
  const res = await h.call("DELETE", "/v1/plans/scale", { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.active, false);
  assert.ok(res.body.data.archived_at);
  assert.equal((await h.call("DELETE", "/v1/plans/scale", { token: h.root })).status, 200);
  assertError(
    await h.call("PATCH", "/v1/plans/scale", { token: h.root, body: { name: "Back" } }),
    409,
    "CONFLICT",
  );
  assertError(
    await h.call("POST", "/v1/plans", { token: h.root, body: { ...NEW_PLAN, code: "scale" } }),
    409,
    "CONFLICT",
  );
  // A deleted tenant no longer holds its plan.
  await h.call("DELETE", "/v1/tenants/acme", { token: h.root });
  assert.equal(await tenantsOn(h, "free"), 0);
  assert.equal((await h.call("DELETE", "/v1/plans/free", { token: h.root })).status, 200);
});

Deno.test("DELETE /v1/plans/{id}: an archive racing a move onto the plan never leaves a tenant on an archived plan", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const [archive, move] = await Promise.all([
    h.call("DELETE", "/v1/plans/growth", { token: h.root }),
    h.call("PATCH", "/v1/tenants/acme/billing", {
      token: h.root,
      body: { plan_code: "growth", override: false },
    }),
  ]);
  const plan = (await h.call("GET", "/v1/plans/growth", { token: h.root })).body.data;
  const tenant = (await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data;
  assert.ok(
    !(tenant.plan === "growth" && !plan.active),
    `archive ${archive.status}, move ${move.status}`,
  );
});

// ── Billing ─────────────────────────────────────────────────────────────────────

Deno.test("GET /v1/tenants/{tenant}/billing: the tenant's plan for its members; 404 across tenants", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.tenant("globex");
  const owner = await memberOf(h, t.id, "owner");
  const res = await h.call("GET", "/v1/tenants/acme/billing", { token: owner.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.plan.code, "free");
  assert.equal(res.body.data.override, false);
  assertError(
    await h.call("GET", "/v1/tenants/globex/billing", { token: owner.token }),
    404,
    "NOT_FOUND",
  );
  const viewer = await memberOf(h, t.id, "viewer");
  assertError(
    await h.call("GET", "/v1/tenants/acme/billing", { token: viewer.token }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("GET", "/v1/tenants/acme/billing"), 401, "UNAUTHORIZED");
});

Deno.test("PATCH /v1/tenants/{tenant}/billing: staff move a tenant; counters, audit and override", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const finance = await h.user("finance");
  const res = await h.call("PATCH", "/v1/tenants/acme/billing", {
    token: finance.token,
    body: { plan_code: "enterprise", override: true, reason: "signed contract #42" },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.plan.code, "enterprise");
  assert.equal(res.body.data.override, true);
  assert.equal(res.body.data.reason, "signed contract #42");
  assert.equal(await tenantsOn(h, "free"), 0);
  assert.equal(await tenantsOn(h, "enterprise"), 1);
  const [event] = await h.auditFor(t.id);
  assert.equal(event.action, "tenant.plan_changed");
  assert.deepEqual(event.changes?.plan, { before: "free", after: "enterprise" });
  const tenant = await h.call("GET", "/v1/tenants/acme", { token: h.root });
  assert.equal(tenant.body.data.plan, "enterprise");
  assert.equal(tenant.body.data.plan_override, true);
  // Stale If-Match.
  assertError(
    await h.call("PATCH", "/v1/tenants/acme/billing", {
      token: h.root,
      body: { plan_code: "pro", override: false },
      headers: { "If-Match": res.headers.get("ETag")!.replace(/.$/, '0"') },
    }),
    412,
    "PRECONDITION_FAILED",
  );
});

Deno.test("PATCH /v1/tenants/{tenant}/billing: 400 bad plan or missing reason; 403 owners and support; 404 hidden", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.tenant("globex");
  const patch = (body: unknown, token = h.root, tenant = "acme") =>
    h.call("PATCH", `/v1/tenants/${tenant}/billing`, { token, body });
  assertInvalid(await patch({ plan_code: "nope", override: false }), "plan_code");
  assertInvalid(await patch({ plan_code: "pro", override: true }), "reason");
  assertInvalid(await patch({ plan_code: "pro" }), "json.override");
  assertInvalid(await patch({ plan_code: "pro", override: false, price: 0 }));
  await h.call("DELETE", "/v1/plans/custom", { token: h.root });
  assertInvalid(await patch({ plan_code: "custom", override: false }), "plan_code");
  const owner = await memberOf(h, t.id, "owner");
  assertError(await patch({ plan_code: "pro", override: false }, owner.token), 403, "FORBIDDEN");
  const support = await h.user("support");
  assertError(await patch({ plan_code: "pro", override: false }, support.token), 403, "FORBIDDEN");
  assertError(
    await patch({ plan_code: "pro", override: false }, owner.token, "globex"),
    404,
    "NOT_FOUND",
  );
  const bound = await h.serviceToken(["billing:write"], t.id);
  assertError(await patch({ plan_code: "pro", override: false }, bound.token), 403, "FORBIDDEN");
  assert.equal((await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data.plan, "free");
});
