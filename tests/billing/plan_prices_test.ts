/**
 * A plan's `stripe_price_id` against Stripe: on create and on update, the price must exist, be
 * recurring, and bill in the plan's currency every one month or year as the plan does.
 */
import assert from "node:assert/strict";
import { assertError, assertInvalid } from "../_assert.ts";
import { billingSetup } from "./_billing.ts";

const team = (stripe_price_id: string, interval: "month" | "year" = "month", currency = "usd") => ({
  code: "team",
  name: "Team",
  price: { amount: 19_900, currency, interval },
  rate_limit: { requests_per_second: 50, burst: 100 },
  quota: { units: 5_000_000, period: "month" },
  sla: 99.9,
  stripe_price_id,
});

Deno.test("plans: a stripe_price_id Stripe does not have, or that bills otherwise, is 400 naming it", async () => {
  await using b = await billingSetup();
  const as = { token: b.h.root };
  const monthlyEur = b.stripe.addPrice({ unit_amount: 19_900, currency: "eur", interval: "month" });
  const quarterly = b.stripe.addPrice({
    unit_amount: 59_700,
    interval: "month",
    interval_count: 3,
  });
  const oneOff = b.stripe.addPrice({ unit_amount: 19_900, interval: null });
  const cases: [string, RegExp][] = [
    ["price_DoesNotExist", /Stripe has no price price_DoesNotExist/],
    [monthlyEur.id, /is in eur, the plan in usd/],
    [b.prices.starter.id, /bills every 1 year\(s\), the plan every month/],
    [quarterly.id, /bills every 3 month\(s\)/],
    [oneOff.id, /bills once \(not recurring\)/],
  ];
  for (const [price, message] of cases) {
    const res = await b.h.call("POST", "/v1/plans", { ...as, body: team(price) });
    assertInvalid(res, "stripe_price_id");
    assert.match(res.body.error.message, message);
  }
  assertError(await b.h.call("GET", "/v1/plans/team", as), 404, "NOT_FOUND");

  const monthlyUsd = b.stripe.addPrice({ unit_amount: 19_900, interval: "month" });
  const created = await b.h.call("POST", "/v1/plans", { ...as, body: team(monthlyUsd.id) });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.data.stripe_price_id, monthlyUsd.id);
});

Deno.test("plans: an update is checked with what the plan becomes (price or stripe_price_id)", async () => {
  await using b = await billingSetup();
  const as = { token: b.h.root };
  // pro is monthly, sold at a monthly price: a yearly price for it is refused, and the reverse.
  assertInvalid(
    await b.h.call("PATCH", "/v1/plans/pro", {
      ...as,
      body: { stripe_price_id: b.prices.starter.id },
    }),
    "stripe_price_id",
  );
  assertInvalid(
    await b.h.call("PATCH", "/v1/plans/pro", {
      ...as,
      body: { price: { amount: 49_000, currency: "usd", interval: "year" } },
    }),
    "stripe_price_id",
  );
  // Both at once agree.
  const yearly = b.stripe.addPrice({ unit_amount: 49_000, interval: "year" });
  const both = await b.h.call("PATCH", "/v1/plans/pro", {
    ...as,
    body: {
      price: { amount: 49_000, currency: "usd", interval: "year" },
      stripe_price_id: yearly.id,
    },
  });
  assert.equal(both.status, 200, both.text);
  // Unsetting the price, or changing what Stripe does not bill, asks Stripe nothing.
  const asked = b.stripe.calls("GET", "/v1/prices").length;
  assert.equal(
    (await b.h.call("PATCH", "/v1/plans/pro", { ...as, body: { sla: 99.9 } })).status,
    200,
  );
  assert.equal(
    (await b.h.call("PATCH", "/v1/plans/pro", { ...as, body: { stripe_price_id: null } })).status,
    200,
  );
  assert.equal(b.stripe.calls("GET", "/v1/prices").length, asked);
});

Deno.test("plans: Stripe failing during the check is 503, and the plan is not created", async () => {
  await using b = await billingSetup();
  b.stripe.fail(1, 500);
  const res = await b.h.call("POST", "/v1/plans", {
    token: b.h.root,
    body: team(b.prices.pro.id),
  });
  assertError(res, 503, "UNAVAILABLE");
  assertError(await b.h.call("GET", "/v1/plans/team", { token: b.h.root }), 404, "NOT_FOUND");
});
