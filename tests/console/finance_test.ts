/**
 * The console's Finance page (routes/console/pages/finance.tsx) in-process: the finance reports
 * shown to roles with finance:read, over billing records written by hand; billing off (no
 * Stripe) and on; the section hidden from and refused to support, which reads no finance.
 */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { billingSetup } from "../billing/_billing.ts";
import { invoice, mrrChange, subscription } from "../billing/_fixtures.ts";
import { signedIn, textOf } from "./_console.ts";

const T = Date.parse("2026-03-01T12:00:00.000Z"); // the harness's clock
const DAY = 86_400_000;

/** The data a chart on the page draws. */
function chartOf(html: string, id: string): { days: string[]; series: { label: string }[] } {
  const found = new RegExp(`id="${id}"[^>]*data-chart="([^"]+)"`).exec(html);
  assert.ok(found, `chart ${id} on the page`);
  return JSON.parse(found[1].replace(/&quot;/g, '"').replace(/&amp;/g, "&"));
}

Deno.test("console finance: the finance role sees MRR and ARR charted, subscriptions by status, revenue at risk and Stripe's sync; billing is off", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const initech = await h.tenant("initech");
  await subscription(h, acme.id, { status: "active", plan_code: "pro", amount: 4900 });
  await subscription(h, initech.id, { status: "past_due", plan_code: "pro", amount: 4900 });
  await mrrChange(h, {
    tenant_id: acme.id,
    at: new Date(T - 40 * DAY).toISOString(),
    plan_before: null,
    plan_after: "pro",
    mrr_before: 0,
    mrr_after: 4900,
  });
  await mrrChange(h, {
    tenant_id: initech.id,
    at: new Date(T - 3 * DAY).toISOString(),
    plan_before: null,
    plan_after: "pro",
    mrr_before: 0,
    mrr_after: 4900,
  });
  await invoice(h, {
    id: "in_initech_1",
    tenant_id: initech.id,
    status: "open",
    amount_due: 4900,
    payment_failed_at: new Date(T - 2 * DAY).toISOString(),
  });

  const { client } = await signedIn(h, "finance");
  const page = await client.get("/console/finance");
  assert.equal(page.status, 200, page.text);
  const text = textOf(page.text);
  assert.match(page.text, /<a href="\/console\/finance" aria-current="page">Finance<\/a>/);
  assert.match(text, /Billing is off: Stripe is not configured/);
  assert.match(text, /MRR 98\.00 USD/);
  assert.match(text, /ARR 1,176\.00 USD/);
  assert.match(text, /Paying subscriptions 2/);
  // By month: twelve buckets, the last one this month, at 98.00.
  const mrr = chartOf(page.text, "chart-mrr");
  assert.equal(mrr.days.length, 12);
  assert.equal(mrr.days.at(-1), "2026-03-01");
  assert.deepEqual(mrr.series.map((s) => s.label), ["MRR (USD)"]);
  assert.match(text, /2026-03-01 98 /, "the numbers under the chart");
  assert.deepEqual(chartOf(page.text, "chart-arr").series.map((s) => s.label), ["ARR (USD)"]);
  // February's movements: 49.00 at its start, initech's 49.00 new, 98.00 at its end.
  assert.match(
    text,
    /2026-02 49\.00 USD 49\.00 USD 0\.00 USD 0\.00 USD 0\.00 USD 98\.00 USD 2 0\.0 % 100\.0 %/,
  );
  // Statuses link to the filtered list; the list shows both subscriptions.
  assert.match(page.text, /href="\/console\/finance\?status=past_due#subscriptions">past_due</);
  assert.match(text, /acme active pro 49\.00 USD \/ month 49\.00 USD/);
  assert.match(text, /1–2 of 2/);
  // Revenue protection: initech's past-due subscription and failed payment.
  assert.match(text, /MRR at risk 49\.00 USD/);
  assert.match(text, /initech past_due pro 49\.00 USD 49\.00 USD/);
  assert.match(text, /in_initech_1 initech open 49\.00 USD 0\.00 USD/);
  // Stripe's sync: not configured, nothing received.
  assert.match(text, /Stripe configured no Last event none yet/);

  // By day: thirty-one buckets ending today; a status filter narrows the list.
  const daily = await client.get("/console/finance?interval=day&status=past_due");
  assert.equal(daily.status, 200);
  const days = chartOf(daily.text, "chart-mrr").days;
  assert.equal(days.at(-1), "2026-03-01");
  assert.ok(days.length >= 30, `${days.length} daily buckets`);
  const filtered = textOf(daily.text);
  assert.match(filtered, /1–1 of 1/);
  assert.match(filtered, /initech past_due/);
  assert.doesNotMatch(filtered, /acme active/);
  assert.match(daily.text, /<a href="\/console\/tenants\/initech">initech<\/a>/);
  assert.match(daily.text, /<option value="past_due" selected>past_due<\/option>/);

  // A status the API does not know: its refusal, the rest of the page still there.
  const bad = await client.get("/console/finance?status=bogus");
  assert.equal(bad.status, 200);
  assert.match(bad.text, /class="notice error" role="alert"/);
  assert.match(textOf(bad.text), /MRR 98\.00 USD/);
});

Deno.test("console finance: super_admin sees the page; with Stripe configured there is no billing-off notice", async () => {
  await using b = await billingSetup();
  const { client } = await signedIn(b.h, "super_admin");
  const page = await client.get("/console/finance");
  assert.equal(page.status, 200, page.text);
  const text = textOf(page.text);
  assert.doesNotMatch(text, /Billing is off/);
  assert.match(text, /Stripe configured yes/);
  assert.match(text, /MRR 0 ARR 0/);
  assert.match(text, /No subscription has brought revenue in this range yet\./);
  assert.match(text, /No subscription matches\./);
});

Deno.test("console finance: support, ops and qa read no finance: no Finance in the nav, the page is 403", async () => {
  await using h = await setup();
  for (const role of ["support", "ops", "qa"] as const) {
    const { client } = await signedIn(h, role);
    const home = await client.get("/console");
    assert.doesNotMatch(home.text, /href="\/console\/finance"/, role);
    const page = await client.get("/console/finance");
    assert.equal(page.status, 403, role);
    assert.match(textOf(page.text), /Your role may not read the finance reports\./);
    assert.doesNotMatch(page.text, /chart-mrr/);
  }
  // Admin holds finance:read.
  const { client } = await signedIn(h, "admin");
  assert.match((await client.get("/console")).text, /href="\/console\/finance"/);
});
