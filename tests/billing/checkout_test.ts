/**
 * Acting on Stripe for a tenant: checkout (the customer created once, with metadata.tenant_id on
 * the customer, the session and the subscription), the billing portal, the tenant's subscription;
 * who may call them (401, 403, 404 across roles and tenants), input checks, 409 without Stripe.
 */
import assert from "node:assert/strict";
import { BILLING_QUEUE } from "../../domain/jobs/names.ts";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { keys } from "../../kv/keys.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";
import { setup } from "../_harness.ts";
import { billingSetup } from "./_billing.ts";

const CHECKOUT = "/v1/tenants/acme/billing/checkout";
const PORTAL = "/v1/tenants/acme/billing/portal";
const URLS = {
  success_url: "https://app.acme.test/billing/done?session={CHECKOUT_SESSION_ID}",
  cancel_url: "https://app.acme.test/billing",
};

Deno.test("checkout: a session for the plan's price; the tenant's customer is created once and reused", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const owner = await memberOf(b.h, t.id, "owner");

  const first = await b.h.call("POST", CHECKOUT, {
    token: owner.token,
    body: { plan_code: "pro", ...URLS },
  });
  assert.equal(first.status, 201, first.text);
  const session = b.stripe.checkoutSessions.get(first.body.data.id)!;
  assert.equal(first.body.data.url, session.url);
  assert.equal(session.mode, "subscription");
  assert.deepEqual(session.metadata, { tenant_id: t.id });
  assert.equal(session.client_reference_id, t.id);
  assert.deepEqual(session.subscription_data.metadata, { tenant_id: t.id, plan_code: "pro" });
  assert.deepEqual(session.line_items, [{ price: b.prices.pro.id, quantity: "1" }]);
  assert.equal(session.success_url, URLS.success_url);

  const customerId = session.customer as string;
  assert.deepEqual(b.stripe.customers.get(customerId)?.metadata, {
    tenant_id: t.id,
    tenant_slug: "acme",
  });
  assert.equal((await b.h.kv.get(keys.tenantStripeCustomer(t.id))).value, customerId);
  assert.equal((await b.h.kv.get(keys.stripeCustomer(customerId))).value, t.id);
  const [linked] = await b.h.auditFor(customerId);
  assert.deepEqual([linked.action, linked.actor_id], ["billing.customer_linked", owner.id]);

  // Another checkout (abandoned the first) reuses the customer.
  const second = await b.h.call("POST", CHECKOUT, {
    token: owner.token,
    body: { plan_code: "starter", ...URLS },
  });
  assert.equal(second.status, 201, second.text);
  assert.equal(b.stripe.checkoutSessions.get(second.body.data.id)?.customer, customerId);
  assert.equal(b.stripe.calls("POST", "/v1/customers").length, 1);
  assert.equal(b.stripe.customers.size, 1);

  // Paying completes it: the event links the customer and applies the subscription.
  const done = b.stripe.completeCheckout(first.body.data.id);
  await b.send("checkout.session.completed", done.session);
  await b.h.runJobs(JOB_HANDLERS, { queue: BILLING_QUEUE });
  assert.equal((await b.subscription(t.id))?.subscription_id, done.subscription.id);
  assert.equal((await b.tenant(t.id)).plan, "pro");

  // Now the tenant changes plans in the portal, not by another checkout.
  const third = await b.h.call("POST", CHECKOUT, {
    token: owner.token,
    body: { plan_code: "starter", ...URLS },
  });
  assertError(third, 409, "CONFLICT");
  assert.match(third.body.error.message, /billing portal/);
});

Deno.test("checkout: two first checkouts at once make one Stripe customer", async () => {
  await using b = await billingSetup();
  await b.h.tenant("acme");
  const [one, two] = await Promise.all(
    [1, 2].map(() =>
      b.h.call("POST", CHECKOUT, { token: b.h.root, body: { plan_code: "pro", ...URLS } })
    ),
  );
  assert.equal(one.status, 201, one.text);
  assert.equal(two.status, 201, two.text);
  assert.equal(b.stripe.customers.size, 1);
  const customers = [one, two].map((r) => b.stripe.checkoutSessions.get(r.body.data.id)?.customer);
  assert.equal(customers[0], customers[1]);
});

Deno.test("checkout: a plan that is unknown, inactive or without a Stripe price is 400; bad URLs are 400", async () => {
  await using b = await billingSetup();
  await b.h.tenant("acme");
  const as = { token: b.h.root };
  assertInvalid(
    await b.h.call("POST", CHECKOUT, { ...as, body: { plan_code: "nope", ...URLS } }),
    "plan_code",
  );
  await b.h.call("PATCH", "/v1/plans/starter", { ...as, body: { active: false } });
  assertInvalid(
    await b.h.call("POST", CHECKOUT, { ...as, body: { plan_code: "starter", ...URLS } }),
    "plan_code",
  );
  const noPrice = await b.h.call("POST", CHECKOUT, { ...as, body: { plan_code: "free", ...URLS } });
  assertInvalid(noPrice, "plan_code");
  assert.match(noPrice.body.error.message, /has no Stripe price/);
  assertInvalid(
    await b.h.call("POST", CHECKOUT, {
      ...as,
      body: { plan_code: "pro", success_url: "javascript:alert(1)", cancel_url: URLS.cancel_url },
    }),
    "json.success_url",
  );
  assertInvalid(
    await b.h.call("POST", CHECKOUT, { ...as, body: { plan_code: "pro" } }),
    "json.success_url",
    "json.cancel_url",
  );
  assertInvalid(
    await b.h.call("POST", CHECKOUT, { ...as, body: { plan_code: "pro", ...URLS, price: "x" } }),
    "json",
  );
  assert.equal(b.stripe.customers.size, 0, "nothing reached Stripe");
});

Deno.test("checkout: an Idempotency-Key replays the same session", async () => {
  await using b = await billingSetup();
  await b.h.tenant("acme");
  const call = () =>
    b.h.call("POST", CHECKOUT, {
      token: b.h.root,
      body: { plan_code: "pro", ...URLS },
      headers: { "Idempotency-Key": "checkout-1" },
    });
  const first = await call();
  const again = await call();
  assert.equal(again.status, 201);
  assert.equal(again.body.data.id, first.body.data.id);
  assert.equal(b.stripe.checkoutSessions.size, 1);
});

Deno.test("portal: 409 before the first checkout; then a session for the tenant's customer", async () => {
  await using b = await billingSetup();
  await b.h.tenant("acme");
  const as = { token: b.h.root };
  const early = await b.h.call("POST", PORTAL, { ...as, body: { return_url: URLS.cancel_url } });
  assertError(early, 409, "CONFLICT");
  assert.match(early.body.error.message, /no Stripe customer/);

  await b.h.call("POST", CHECKOUT, { ...as, body: { plan_code: "pro", ...URLS } });
  const res = await b.h.call("POST", PORTAL, { ...as, body: { return_url: URLS.cancel_url } });
  assert.equal(res.status, 201, res.text);
  const [session] = b.stripe.portalSessions.values();
  assert.equal(res.body.data.url, session.url);
  assert.equal(session.return_url, URLS.cancel_url);
  const tenantId = (await b.h.call("GET", "/v1/tenants/acme", as)).body.data.id;
  const customer = await b.h.kv.get(keys.tenantStripeCustomer(tenantId));
  assert.equal(session.customer, customer.value);
  assertInvalid(
    await b.h.call("POST", PORTAL, { ...as, body: { return_url: "ftp://x" } }),
    "json.return_url",
  );
});

Deno.test("billing: Stripe failing answers 503 with Retry-After", async () => {
  await using b = await billingSetup();
  await b.h.tenant("acme");
  b.stripe.fail(1, 503);
  const res = await b.h.call("POST", CHECKOUT, {
    token: b.h.root,
    body: { plan_code: "pro", ...URLS },
  });
  assertError(res, 503, "UNAVAILABLE");
  assert.match(res.body.error.message, /^Stripe: /);
  assert.equal(res.headers.get("Retry-After"), "30");
});

Deno.test("subscription: the tenant's record for billing:read; 404 without one", async () => {
  await using b = await billingSetup();
  const t = await b.h.tenant("acme");
  const owner = await memberOf(b.h, t.id, "owner");
  assertError(
    await b.h.call("GET", "/v1/tenants/acme/subscription", { token: owner.token }),
    404,
    "NOT_FOUND",
  );
  await b.send("customer.subscription.created", b.subscribe(t.id, b.prices.pro));
  await b.h.runJobs(JOB_HANDLERS, { queue: BILLING_QUEUE });
  const res = await b.h.call("GET", "/v1/tenants/acme/subscription", { token: owner.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.plan_code, "pro");
  assert.equal(res.body.data.tenant_id, t.id);
  assert.ok(res.headers.get("ETag"));
});

Deno.test("billing routes: who may call them (401, 403 by role, 404 across tenants)", async () => {
  await using b = await billingSetup();
  const acme = await b.h.tenant("acme");
  const globex = await b.h.tenant("globex");
  // Owner of another tenant: acme does not exist for it.
  const stranger = await memberOf(b.h, globex.id, "owner");
  const roles = {
    owner: await memberOf(b.h, acme.id, "owner"),
    admin: await memberOf(b.h, acme.id, "admin"),
    member: await memberOf(b.h, acme.id, "member"),
    viewer: await memberOf(b.h, acme.id, "viewer"),
  };
  const finance = await b.h.user("finance");
  const support = await b.h.user("support");
  const ops = await b.h.user("ops");
  const bound = await b.h.serviceToken(["billing:write"], acme.id);
  const readOnly = await b.h.serviceToken(["billing:read"], acme.id);

  const portal = { return_url: URLS.cancel_url };
  const writes: [string, unknown][] = [[CHECKOUT, { plan_code: "pro", ...URLS }], [PORTAL, portal]];
  for (const [path, body] of writes) {
    assertError(await b.h.call("POST", path, { body }), 401, "UNAUTHORIZED");
    for (const who of [roles.admin, roles.member, roles.viewer, support, ops]) {
      assertError(await b.h.call("POST", path, { token: who.token, body }), 403, "FORBIDDEN");
    }
    assertError(await b.h.call("POST", path, { token: readOnly.token, body }), 403, "FORBIDDEN");
    assertError(await b.h.call("POST", path, { token: stranger.token, body }), 404, "NOT_FOUND");
  }
  for (const who of [roles.owner, finance, bound]) {
    const res = await b.h.call("POST", CHECKOUT, {
      token: who.token,
      body: { plan_code: "pro", ...URLS },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal((await b.h.call("POST", PORTAL, { token: who.token, body: portal })).status, 201);
  }

  const read = "/v1/tenants/acme/subscription";
  assertError(await b.h.call("GET", read), 401, "UNAUTHORIZED");
  for (const who of [roles.member, roles.viewer, ops]) {
    assertError(await b.h.call("GET", read, { token: who.token }), 403, "FORBIDDEN");
  }
  assertError(await b.h.call("GET", read, { token: stranger.token }), 404, "NOT_FOUND");
  for (const who of [roles.owner, roles.admin, finance, support, readOnly]) {
    assertError(await b.h.call("GET", read, { token: who.token }), 404, "NOT_FOUND"); // none yet
  }
});

Deno.test("billing routes: 409 `Stripe is not configured`; the subscription still reads", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const as = { token: h.root };
  for (
    const [path, body] of [
      [CHECKOUT, { plan_code: "pro", ...URLS }],
      [PORTAL, { return_url: URLS.cancel_url }],
      ["/v1/admin/finance/sync-transaction", { object: "subscription", id: "sub_1" }],
      ["/v1/admin/finance/reconcile", undefined],
    ] as const
  ) {
    const res = await h.call("POST", path, { ...as, body });
    assertError(res, 409, "CONFLICT");
    assert.equal(res.body.error.message, "Stripe is not configured", path);
  }
  assertError(await h.call("GET", "/v1/tenants/acme/subscription", as), 404, "NOT_FOUND");
  // Plans with a Stripe price are not checked without Stripe.
  const plan = await h.call("PATCH", "/v1/plans/pro", {
    ...as,
    body: { stripe_price_id: "price_NotCheckedAnywhere" },
  });
  assert.equal(plan.status, 200, plan.text);
});
