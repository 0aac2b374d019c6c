/**
 * The finance API over billing records written by hand (tests/billing/_fixtures.ts): every figure
 * is checked against numbers worked out in the comments, plus validation, authentication and who
 * may read what (finance:read, which support, ops, qa and tenant roles do not hold).
 */
import assert from "node:assert/strict";
import type { StripeAccess } from "../../domain/shared/services.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";
import {
  invoice,
  mrrChange,
  signatureFailures,
  stripeEvent,
  stripeSync,
  subscription,
} from "./_fixtures.ts";

const T = Date.parse("2026-03-01T12:00:00.000Z"); // the harness's clock
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

async function get(h: Harness, path: string, token = h.root) {
  const res = await h.call("GET", path, { token });
  assert.equal(res.status, 200, `${path}: ${res.text}`);
  return res.body;
}

async function setPlan(h: Harness, slug: string, plan_code: string, reason?: string) {
  const res = await h.call("PATCH", `/v1/tenants/${slug}/billing`, {
    token: h.root,
    body: reason ? { plan_code, override: true, reason } : { plan_code, override: false },
  });
  assert.equal(res.status, 200, res.text);
}

async function createPlan(
  h: Harness,
  code: string,
  price: { amount: number; currency: string; interval: string },
  quota: { units: number; period: string },
) {
  const res = await h.call("POST", "/v1/plans", {
    token: h.root,
    body: {
      code,
      name: code,
      price,
      quota,
      rate_limit: { requests_per_second: 10, burst: 20 },
      sla: 99,
    },
  });
  assert.equal(res.status, 201, res.text);
}

/** Reports `quantity` verifications against a new key of the tenant at `at`. */
async function used(h: Harness, slug: string, entries: [number, number][]) {
  const key = await h.call("POST", `/v1/tenants/${slug}/api-keys`, {
    token: h.root,
    body: { name: "usage", environment: "live" },
  });
  assert.equal(key.status, 201, key.text);
  const events = entries.map(([at, quantity], i) => ({
    id: `${slug}-${i}`,
    key_id: key.body.data.id,
    metric: "verifications",
    quantity,
    timestamp: iso(at),
  }));
  const res = await h.call("POST", "/v1/usage/events", { token: h.root, body: { events } });
  assert.ok(
    res.body.data.results.every((r: { status: string }) => r.status === "accepted"),
    res.text,
  );
}

/**
 * Nine tenants, in this creation order, with their plan and subscription:
 *
 * | tenant    | tenant plan            | subscription                                          |
 * | --------- | ---------------------- | ----------------------------------------------------- |
 * | acme      | pro                    | active pro 4900/month, cancels at period end          |
 * | globex    | enterprise (override)  | active starter 10,000,000/year                        |
 * | initech   | free                   | past_due pro 4900/month (plan disagrees)              |
 * | umbrella  | growth                 | trialing growth 25,000,000/year, trial ends in 3 days |
 * | hooli     | free                   | canceled pro 4900/month                               |
 * | stark     | pro                    | unpaid pro 4900/month (lapsed: should be free)        |
 * | wayne     | team-eur               | active team-eur 2000 eur/month                        |
 * | soylent   | pro                    | trialing pro 4900/month, trial ends in 10 days        |
 * | cyberdyne | annual-mq (override)   | none                                                  |
 *
 * team-eur: 2000 eur a month for 10,000 verifications a month. annual-mq: 120,000 usd a year for
 * 1,000 verifications a month.
 */
async function world(h: Harness) {
  await createPlan(h, "team-eur", { amount: 2000, currency: "eur", interval: "month" }, {
    units: 10_000,
    period: "month",
  });
  await createPlan(h, "annual-mq", { amount: 120_000, currency: "usd", interval: "year" }, {
    units: 1_000,
    period: "month",
  });
  const slugs = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "soylent",
    "cyberdyne",
  ] as const;
  const t = {} as Record<typeof slugs[number], string>;
  for (const slug of slugs) t[slug] = (await h.tenant(slug)).id;
  await setPlan(h, "acme", "pro");
  await setPlan(h, "globex", "enterprise", "negotiated deal");
  await setPlan(h, "umbrella", "growth");
  await setPlan(h, "wayne", "team-eur");
  await setPlan(h, "soylent", "pro");
  await setPlan(h, "stark", "pro");
  await setPlan(h, "cyberdyne", "annual-mq", "partner");

  const subs = {
    acme: await subscription(h, t.acme, {
      status: "active",
      plan_code: "pro",
      amount: 4900,
      cancel_at_period_end: true,
    }),
    globex: await subscription(h, t.globex, {
      status: "active",
      plan_code: "starter",
      amount: 10_000_000,
      interval: "year",
    }),
    initech: await subscription(h, t.initech, {
      status: "past_due",
      plan_code: "pro",
      amount: 4900,
    }),
    umbrella: await subscription(h, t.umbrella, {
      status: "trialing",
      plan_code: "growth",
      amount: 25_000_000,
      interval: "year",
      trial_end: iso(T + 3 * DAY),
    }),
    hooli: await subscription(h, t.hooli, { status: "canceled", plan_code: "pro", amount: 4900 }),
    stark: await subscription(h, t.stark, { status: "unpaid", plan_code: "pro", amount: 4900 }),
    wayne: await subscription(h, t.wayne, {
      status: "active",
      plan_code: "team-eur",
      amount: 2000,
      currency: "eur",
    }),
    soylent: await subscription(h, t.soylent, {
      status: "trialing",
      plan_code: "pro",
      amount: 4900,
      trial_end: iso(T + 10 * DAY),
    }),
  };

  const inv = {
    initech1: await invoice(h, {
      id: "in_init_1",
      tenant_id: t.initech,
      status: "open",
      amount_due: 4900,
      payment_failed_at: "2026-02-27T12:00:00.000Z",
    }),
    stark1: await invoice(h, {
      id: "in_stark_1",
      tenant_id: t.stark,
      status: "open",
      amount_due: 4900,
      payment_failed_at: "2026-02-10T08:00:00.000Z",
    }),
    stark2: await invoice(h, {
      id: "in_stark_2",
      tenant_id: t.stark,
      status: "open",
      amount_due: 4900,
      amount_paid: 1000,
      payment_failed_at: "2026-02-20T08:00:00.000Z",
    }),
    acmeOlder: await invoice(h, {
      id: "in_acme_older",
      tenant_id: t.acme,
      status: "paid",
      amount_due: 4900,
      amount_paid: 4900,
      payment_failed_at: "2026-01-15T09:00:00.000Z",
      paid_at: "2026-01-16T09:00:00.000Z",
      created: 1,
    }),
    acmeOld: await invoice(h, {
      id: "in_acme_old",
      tenant_id: t.acme,
      status: "paid",
      amount_due: 4900,
      amount_paid: 4900,
      payment_failed_at: "2026-02-05T09:00:00.000Z",
      paid_at: "2026-02-06T09:00:00.000Z",
      created: 2,
    }),
    acmeFeb: await invoice(h, {
      id: "in_acme_feb",
      tenant_id: t.acme,
      status: "paid",
      amount_due: 4900,
      amount_paid: 4900,
      amount_refunded: 900,
      paid_at: "2026-02-15T10:00:00.000Z",
      created: 3,
    }),
    acmeEur: await invoice(h, {
      id: "in_acme_eur",
      tenant_id: t.acme,
      status: "paid",
      amount_due: 1500,
      amount_paid: 1500,
      amount_refunded: 1500,
      currency: "eur",
      paid_at: "2026-02-20T10:00:00.000Z",
      created: 4,
    }),
    acmeMar: await invoice(h, {
      id: "in_acme_mar",
      tenant_id: t.acme,
      status: "paid",
      amount_due: 4900,
      amount_paid: 4900,
      paid_at: "2026-03-01T01:00:00.000Z",
      created: 5,
    }),
    acmeDraft: await invoice(h, {
      id: "in_acme_draft",
      tenant_id: t.acme,
      status: "draft",
      amount_due: 4900,
      created: 6,
    }),
  };

  // Verifications this month (March), and acme's in February.
  await used(h, "acme", [
    [T, 1_250_000],
    [Date.parse("2026-02-10T10:00:00Z"), 600_000],
    [Date.parse("2026-02-20T10:00:00Z"), 500_000],
  ]);
  await used(h, "initech", [[T, 10_001]]);
  await used(h, "wayne", [[T, 10_500]]);
  await used(h, "cyberdyne", [[T, 1_200]]);
  return { t, subs, inv };
}

// ── Subscription summary ────────────────────────────────────────────────────────

Deno.test("subscription-summary: counts, MRR, ARR, trials and cancellations on a hand-computed world", async () => {
  await using h = await setup();
  await world(h);
  const s = (await get(h, "/v1/admin/finance/subscription-summary")).data;
  assert.equal(s.generated_at, iso(T));
  assert.equal(s.total, 8);
  // active: acme, globex, wayne; trialing: umbrella, soylent; one each past_due, canceled, unpaid.
  assert.deepEqual(s.by_status, {
    trialing: 2,
    active: 3,
    past_due: 1,
    unpaid: 1,
    canceled: 1,
    incomplete: 0,
    incomplete_expired: 0,
    paused: 0,
  });
  // Not over (hooli's canceled one left out): pro = acme, initech, stark, soylent.
  assert.deepEqual(s.by_plan, { pro: 4, starter: 1, growth: 1, "team-eur": 1 });
  // MRR counts active and past_due: acme 4900 + globex 10,000,000 ÷ 12 = 833,333 (rounded)
  // + initech 4900 = 843,133 usd; wayne 2000 eur. Paying: those four.
  assert.equal(s.paying, 4);
  assert.deepEqual(s.mrr, { usd: 843_133, eur: 2000 });
  // ARR: 4900 × 12 + 10,000,000 (a yearly price as it is) + 4900 × 12 = 10,117,600 usd;
  // 2000 × 12 = 24,000 eur.
  assert.deepEqual(s.arr, { usd: 10_117_600, eur: 24_000 });
  // umbrella's trial ends in 3 days; soylent's in 10 (outside the 7-day window).
  assert.equal(s.trials_ending_soon, 1);
  assert.deepEqual(s.scheduled_cancellations, { count: 1, mrr: { usd: 4900 } });
});

Deno.test("subscription-summary: an empty store answers zeros", async () => {
  await using h = await setup();
  const s = (await get(h, "/v1/admin/finance/subscription-summary")).data;
  assert.equal(s.total, 0);
  assert.deepEqual([s.by_plan, s.mrr, s.arr, s.paying], [{}, {}, {}, 0]);
  assert.equal(s.by_status.active, 0);
  assert.deepEqual(s.scheduled_cancellations, { count: 0, mrr: {} });
});

// ── Stripe sync status ──────────────────────────────────────────────────────────

async function events(h: Harness) {
  const ago = (ms: number) => iso(T - ms);
  await stripeEvent(h, {
    id: "evt_1",
    type: "invoice.paid",
    status: "applied",
    received_at: ago(2 * HOUR),
  });
  await stripeEvent(h, {
    id: "evt_2",
    type: "customer.subscription.updated",
    status: "applied",
    received_at: ago(HOUR),
  });
  await stripeEvent(h, {
    id: "evt_3",
    type: "customer.subscription.updated",
    status: "stale",
    received_at: ago(30 * 60_000),
  });
  await stripeEvent(h, {
    id: "evt_4",
    type: "invoice.payment_failed",
    status: "queued",
    received_at: ago(10 * 60_000),
  });
  await stripeEvent(h, {
    id: "evt_5",
    type: "charge.refunded",
    status: "failed",
    received_at: ago(5 * 60_000),
  });
  await stripeEvent(h, {
    id: "evt_6",
    type: "customer.subscription.created",
    status: "queued",
    received_at: ago(30 * HOUR),
  });
  await stripeEvent(h, {
    id: "evt_7",
    type: "payment_intent.created",
    status: "ignored",
    received_at: ago(48 * HOUR),
  });
  await signatureFailures(h, "2026-03-01", 3);
  await signatureFailures(h, "2026-02-28", 2);
  await signatureFailures(h, "2026-02-27", 7);
  await stripeSync(h, { last_event_at: ago(5 * 60_000), last_api_success_at: ago(15 * 60_000) });
}

Deno.test("stripe-sync-status: events, failures, backlog, overrides and drift on a hand-computed world", async () => {
  await using h = await setup();
  const { t } = await world(h);
  await events(h);
  const s = (await get(h, "/v1/admin/finance/stripe-sync-status")).data;
  assert.equal(s.configured, false);
  // The latest received: evt_5, 5 minutes ago.
  assert.deepEqual(s.last_event, {
    id: "evt_5",
    type: "charge.refunded",
    status: "failed",
    received_at: "2026-03-01T11:55:00.000Z",
    age_seconds: 300,
  });
  // Within 24 h: evt_1 … evt_5 (evt_6 came 30 h ago, evt_7 48 h ago).
  assert.deepEqual(s.last_24h, {
    events: 5,
    by_type: {
      "invoice.paid": 1,
      "customer.subscription.updated": 2,
      "invoice.payment_failed": 1,
      "charge.refunded": 1,
    },
    by_status: { queued: 1, applied: 2, ignored: 0, stale: 1, failed: 1 },
  });
  // Per UTC day: today (03-01) 3, yesterday (02-28) 2; 02-27's 7 are older.
  assert.deepEqual(s.signature_failures, { today: 3, yesterday: 2 });
  // Queued: evt_4 and evt_6 (the older, 30 h = 108,000 s); failed: evt_5.
  assert.deepEqual(s.processing, {
    queued: 2,
    failed: 1,
    oldest_queued: {
      id: "evt_6",
      type: "customer.subscription.created",
      status: "queued",
      received_at: "2026-02-28T06:00:00.000Z",
      age_seconds: 108_000,
    },
  });
  assert.equal(s.last_api_success_at, "2026-03-01T11:45:00.000Z");
  assert.equal(s.last_api_success_age_seconds, 900);
  assert.deepEqual(s.overridden_tenants, {
    count: 2,
    tenants: [
      { id: t.globex, slug: "globex", plan: "enterprise" },
      { id: t.cyberdyne, slug: "cyberdyne", plan: "annual-mq" },
    ],
  });
  // initech is on free while its past_due subscription is pro; stark is on pro while its unpaid
  // subscription has lapsed (free). hooli's canceled one puts it on free, where it is; globex is
  // overridden; umbrella, soylent, acme and wayne are on their subscriptions' plans.
  assert.deepEqual(s.plan_mismatches, {
    count: 2,
    tenants: [{
      id: t.initech,
      slug: "initech",
      plan: "free",
      subscription_plan: "pro",
      subscription_status: "past_due",
    }, {
      id: t.stark,
      slug: "stark",
      plan: "pro",
      subscription_plan: "free",
      subscription_status: "unpaid",
    }],
  });
});

Deno.test("stripe-sync-status: nothing received yet; configured when Stripe is", async () => {
  const stripe: StripeAccess = {
    client: {} as StripeAccess["client"],
    webhookSecret: "whsec_test",
  };
  await using h = await setup({ stripe });
  const s = (await get(h, "/v1/admin/finance/stripe-sync-status")).data;
  assert.equal(s.configured, true);
  assert.equal(s.last_event, null);
  assert.equal(s.last_24h.events, 0);
  assert.deepEqual(s.signature_failures, { today: 0, yesterday: 0 });
  assert.deepEqual(s.processing, { queued: 0, failed: 0, oldest_queued: null });
  assert.equal(s.last_api_success_at, null);
  assert.equal(s.last_api_success_age_seconds, null);
  assert.deepEqual(s.overridden_tenants, { count: 0, tenants: [] });
  assert.deepEqual(s.plan_mismatches, { count: 0, tenants: [] });
});

// ── Subscriptions list ──────────────────────────────────────────────────────────

Deno.test("subscriptions: filters, offset and cursor pages, totals", async () => {
  await using h = await setup();
  const { t, subs } = await world(h);
  const list = (query: string) => get(h, `/v1/admin/finance/subscriptions${query}`);
  const tenants = (body: { data: { tenant_id: string }[] }) => body.data.map((s) => s.tenant_id);

  const all = await list("");
  assert.deepEqual(all.data[0], subs.acme, "the record as stored");
  const order = [
    t.acme,
    t.globex,
    t.initech,
    t.umbrella,
    t.hooli,
    t.stark,
    t.wayne,
    t.soylent,
  ];
  assert.deepEqual(tenants(all), order, "in tenant order");
  assert.deepEqual(all.pagination, { limit: 50, next_cursor: null, has_more: false, total: 8 });

  // Cursor pages of 3: 3 + 3 + 2, each with the total.
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await list(`?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    assert.equal(page.pagination.total, 8);
    seen.push(...tenants(page));
    cursor = page.pagination.next_cursor;
    pages++;
  } while (cursor);
  assert.deepEqual([seen, pages], [order, 3]);
  const jumped = await list("?offset=6&limit=3");
  assert.deepEqual(tenants(jumped), order.slice(6));
  assert.equal(jumped.pagination.has_more, false);
  assert.deepEqual(tenants(await list("?page=2&limit=3")), order.slice(3, 6));

  const active = await list("?status=active");
  assert.deepEqual(tenants(active), [t.acme, t.globex, t.wayne]);
  assert.equal(active.pagination.total, 3);
  // Every status: hooli's canceled pro counts too.
  const pro = await list("?plan=pro&limit=2");
  assert.deepEqual(tenants(pro), [t.acme, t.initech]);
  assert.deepEqual([pro.pagination.total, pro.pagination.has_more], [5, true]);
  assert.deepEqual(tenants(await list("?plan=pro&status=past_due")), [t.initech]);
  const one = await list(`?tenant_id=${t.stark}`);
  assert.deepEqual([tenants(one), one.pagination.total], [[t.stark], 1]);
  const none = await list(`?tenant_id=${t.cyberdyne}`);
  assert.deepEqual([none.data, none.pagination.total], [[], 0]);
});

Deno.test("subscriptions: bad filters and pages are 400", async () => {
  await using h = await setup();
  const path = "/v1/admin/finance/subscriptions";
  for (
    const [query, at] of [
      ["status=bogus", "query.status"],
      ["tenant_id=acme", "query.tenant_id"],
      ["limit=0", "query.limit"],
      ["limit=101", "query.limit"],
      ["offset=-1", "query.offset"],
      ["plan=", "query.plan"],
      ["tenant=acme", "query"],
    ]
  ) {
    assertInvalid(await h.call("GET", `${path}?${query}`, { token: h.root }), at);
  }
  assertError(await h.call("GET", `${path}?cursor=garbage`, { token: h.root }), 400, "BAD_REQUEST");
});

// ── Revenue protection ──────────────────────────────────────────────────────────

Deno.test("revenue-protection: at risk, failed payments, unbilled use, overrides, trials on a hand-computed world", async () => {
  await using h = await setup();
  const { t } = await world(h);
  const r = (await get(h, "/v1/admin/finance/revenue-protection")).data;
  // The default period: the last 30 days, to today.
  assert.deepEqual([r.from, r.to], ["2026-01-31", "2026-03-01"]);

  // past_due initech and unpaid stark, a month of 4900 each. Outstanding: initech's open invoice
  // owes 4900; stark's two owe 4900 and 4900 − 1000 = 3900, so 8800.
  assert.deepEqual(r.at_risk, {
    subscriptions: [
      {
        tenant_id: t.initech,
        tenant_slug: "initech",
        status: "past_due",
        plan_code: "pro",
        amount: 4900,
        currency: "usd",
        interval: "month",
        current_period_end: null,
        mrr_at_risk: 4900,
        outstanding: 4900,
      },
      {
        tenant_id: t.stark,
        tenant_slug: "stark",
        status: "unpaid",
        plan_code: "pro",
        amount: 4900,
        currency: "usd",
        interval: "month",
        current_period_end: null,
        mrr_at_risk: 4900,
        outstanding: 8800,
      },
    ],
    mrr_at_risk: { usd: 9800 },
    outstanding: { usd: 13_700 },
  });

  // Failed since 01-31, newest first: initech 02-27, stark 02-20, stark 02-10, acme 02-05 (paid
  // since: recovered); acme's of 01-15 is older. 4 × 4900 due = 19,600.
  const failed = r.failed_payments;
  assert.deepEqual(failed.invoices.map((i: { id: string }) => i.id), [
    "in_init_1",
    "in_stark_2",
    "in_stark_1",
    "in_acme_old",
  ]);
  assert.deepEqual(
    [failed.count, failed.amount_due, failed.recovered_count, failed.recovered],
    [4, { usd: 19_600 }, 1, { usd: 4900 }],
  );
  assert.deepEqual(failed.invoices[1], {
    id: "in_stark_2",
    tenant_id: t.stark,
    tenant_slug: "stark",
    number: null,
    status: "open",
    amount_due: 4900,
    amount_paid: 1000,
    currency: "usd",
    payment_failed_at: "2026-02-20T08:00:00.000Z",
    recovered: false,
  });
  assert.equal(failed.invoices[3].recovered, true);

  // Over quota this month (March), on plans without overage:
  // acme, pro: 1,250,000 of 1,000,000 → 250,000 over at 4900 ÷ 1,000,000 = 0.0049 → 1225 usd;
  // initech, free: 10,001 of 10,000 → 1 over at 0 ÷ 10,000 → 0 usd;
  // wayne, team-eur: 10,500 of 10,000 → 500 over at 2000 ÷ 10,000 = 0.2 → 100 eur;
  // cyberdyne, annual-mq: 1200 of 1000 a month → 200 over at (120,000 ÷ 12) ÷ 1000 = 10 → 2000.
  const month = {
    period_start: "2026-03-01T00:00:00.000Z",
    period_end: "2026-04-01T00:00:00.000Z",
  };
  assert.deepEqual(r.over_quota, {
    tenants: [
      {
        tenant_id: t.acme,
        tenant_slug: "acme",
        plan: "pro",
        quota: 1_000_000,
        used: 1_250_000,
        over_units: 250_000,
        unit_price: 0.0049,
        unbilled: 1225,
        currency: "usd",
        ...month,
      },
      {
        tenant_id: t.initech,
        tenant_slug: "initech",
        plan: "free",
        quota: 10_000,
        used: 10_001,
        over_units: 1,
        unit_price: 0,
        unbilled: 0,
        currency: "usd",
        ...month,
      },
      {
        tenant_id: t.wayne,
        tenant_slug: "wayne",
        plan: "team-eur",
        quota: 10_000,
        used: 10_500,
        over_units: 500,
        unit_price: 0.2,
        unbilled: 100,
        currency: "eur",
        ...month,
      },
      {
        tenant_id: t.cyberdyne,
        tenant_slug: "cyberdyne",
        plan: "annual-mq",
        quota: 1_000,
        used: 1_200,
        over_units: 200,
        unit_price: 10,
        unbilled: 2000,
        currency: "usd",
        ...month,
      },
    ],
    units: 250_701,
    unbilled: { usd: 3225, eur: 100 },
  });

  // globex: enterprise would be 100,000,000 ÷ 12 = 8,333,333 a month; its starter subscription
  // brings 833,333: 7,500,000 short. cyberdyne: annual-mq 120,000 ÷ 12 = 10,000, no
  // subscription.
  assert.deepEqual(r.overrides, {
    tenants: [
      {
        tenant_id: t.globex,
        tenant_slug: "globex",
        plan: "enterprise",
        plan_price: { amount: 100_000_000, currency: "usd", interval: "year" },
        would_pay_mrr: 8_333_333,
        subscription: {
          plan_code: "starter",
          status: "active",
          amount: 10_000_000,
          currency: "usd",
          interval: "year",
        },
        paying_mrr: 833_333,
        difference_mrr: 7_500_000,
      },
      {
        tenant_id: t.cyberdyne,
        tenant_slug: "cyberdyne",
        plan: "annual-mq",
        plan_price: { amount: 120_000, currency: "usd", interval: "year" },
        would_pay_mrr: 10_000,
        subscription: null,
        paying_mrr: 0,
        difference_mrr: 10_000,
      },
    ],
    would_pay_mrr: { usd: 8_343_333 },
    paying_mrr: { usd: 833_333 },
  });

  // umbrella's growth trial ends in 3 days: 25,000,000 ÷ 12 = 2,083,333 a month after it.
  assert.deepEqual(r.trials_ending, [{
    tenant_id: t.umbrella,
    tenant_slug: "umbrella",
    plan_code: "growth",
    trial_end: "2026-03-04T12:00:00.000Z",
    amount: 25_000_000,
    currency: "usd",
    interval: "year",
    mrr_after_trial: 2_083_333,
  }]);
});

Deno.test("revenue-protection: from/to bound the failed payments; bad ranges are 400", async () => {
  await using h = await setup();
  await world(h);
  const path = "/v1/admin/finance/revenue-protection";
  const january = (await get(h, `${path}?from=2026-01-01&to=2026-01-31`)).data.failed_payments;
  // Only acme's of 01-15, paid since.
  assert.deepEqual(
    [january.count, january.invoices[0].id, january.recovered_count, january.amount_due],
    [1, "in_acme_older", 1, { usd: 4900 }],
  );
  // Bounds are whole UTC days: 02-27 holds initech's failure at 12:00.
  assert.equal(
    (await get(h, `${path}?from=2026-02-27&to=2026-02-27`)).data.failed_payments.count,
    1,
  );
  for (
    const [query, at] of [
      ["from=2026-02-30", "query.from"],
      ["to=26-01-01", "query.to"],
      ["from=2026-03-01&to=2026-02-01", "query.from"],
      ["from=2024-01-01&to=2026-01-31", "query.from"],
      ["period=2026-01", "query"],
    ]
  ) {
    assertInvalid(await h.call("GET", `${path}?${query}`, { token: h.root }), at);
  }
});

// ── Analytics ───────────────────────────────────────────────────────────────────

/**
 * MRR history (usd unless said), ids and amounts chosen by hand:
 *
 *   2025-11-05 A 0 → 3000 plus        2025-12-15 D 0 → 1000 basic (new)
 *   2025-11-10 B 0 → 1000 basic       2025-12-20 D 1000 → 0 (churn, D was not paying at start)
 *   2025-11-20 C 0 → 6000 max         2025-12-28 A 3000 → 1000 plus → basic (contraction)
 *   2025-11-25 E 0 → 2000 eur         2026-01-05 C 0 → 6000 max (new again)
 *   2025-12-03 12:00 B 1000 → 3000    2026-01-12 E 2000 → 0 eur (churn)
 *     basic → plus (expansion)        2026-01-20 B 3000 → 6000 plus → max (expansion)
 *   2025-12-10 C 6000 → 0 (churn)
 *
 * Invoices paid: 12-01 00:00 A 3000 (plus); 12-03 06:00 B 1000 (basic); 12-03 12:00 B 2000 (at
 * the same instant as B's upgrade, so plus); 12-25 E 2000 eur (eur-basic); 01-05 00:05 C 6000
 * (max); 01-15 F 700 (no MRR change: its subscription's plan, plus); 02-10 G 300 (no
 * subscription: unmapped); and outside: 11-30 23:59 A, 03-01 A; one never paid.
 */
async function history(h: Harness) {
  const id = (c: string) => `ten_01JAAAAAAAAAAAAAAAAAAAAAA${c}`;
  const change = (
    at: string,
    tenant: string,
    [mrr_before, mrr_after]: [number, number],
    [plan_before, plan_after]: [string | null, string | null],
    currency = "usd",
  ) =>
    mrrChange(h, {
      at,
      tenant_id: id(tenant),
      mrr_before,
      mrr_after,
      plan_before,
      plan_after,
      currency,
    });
  await change("2025-11-05T00:00:00.000Z", "A", [0, 3000], [null, "plus"]);
  await change("2025-11-10T00:00:00.000Z", "B", [0, 1000], [null, "basic"]);
  await change("2025-11-20T00:00:00.000Z", "C", [0, 6000], [null, "max"]);
  await change("2025-11-25T00:00:00.000Z", "E", [0, 2000], [null, "eur-basic"], "eur");
  await change("2025-12-03T12:00:00.000Z", "B", [1000, 3000], ["basic", "plus"]);
  await change("2025-12-10T00:00:00.000Z", "C", [6000, 0], ["max", null]);
  await change("2025-12-15T00:00:00.000Z", "D", [0, 1000], [null, "basic"]);
  await change("2025-12-20T00:00:00.000Z", "D", [1000, 0], ["basic", null]);
  await change("2025-12-28T00:00:00.000Z", "A", [3000, 1000], ["plus", "basic"]);
  await change("2026-01-05T00:00:00.000Z", "C", [0, 6000], [null, "max"]);
  await change("2026-01-12T00:00:00.000Z", "E", [2000, 0], ["eur-basic", null], "eur");
  await change("2026-01-20T00:00:00.000Z", "B", [3000, 6000], ["plus", "max"]);
  await subscription(h, id("F"), { status: "trialing", plan_code: "plus", amount: 3000 });
  const paid = (n: string, tenant: string, paid_at: string, amount: number, currency = "usd") =>
    invoice(h, {
      id: `in_${n}`,
      tenant_id: id(tenant),
      status: "paid",
      amount_due: amount,
      amount_paid: amount,
      currency,
      paid_at,
    });
  await paid("i0", "A", "2025-11-30T23:59:59.000Z", 3000);
  await paid("i1", "A", "2025-12-01T00:00:00.000Z", 3000);
  await paid("i2", "B", "2025-12-03T06:00:00.000Z", 1000);
  await paid("i3", "B", "2025-12-03T12:00:00.000Z", 2000);
  await paid("i4", "E", "2025-12-25T00:00:00.000Z", 2000, "eur");
  await paid("i5", "C", "2026-01-05T00:05:00.000Z", 6000);
  await paid("i6", "F", "2026-01-15T00:00:00.000Z", 700);
  await paid("i7", "G", "2026-02-10T00:00:00.000Z", 300);
  await paid("i8", "A", "2026-03-01T00:00:00.000Z", 1000);
  await invoice(h, { id: "in_open", tenant_id: id("A"), status: "open", amount_due: 1000 });
}

const figures = (
  mrr_start: number,
  mrr: number,
  moves: { new?: number; expansion?: number; contraction?: number; churned?: number },
  rest: {
    paying_tenants: number;
    arpu: number | null;
    revenue_churn_rate: number | null;
    net_revenue_retention: number | null;
    revenue: number;
  },
) => ({
  mrr_start,
  mrr,
  new: moves.new ?? 0,
  expansion: moves.expansion ?? 0,
  contraction: moves.contraction ?? 0,
  churned: moves.churned ?? 0,
  ...rest,
});

Deno.test("analytics: by month, every figure on a hand-computed history", async () => {
  await using h = await setup();
  await history(h);
  const a = (await get(h, "/v1/admin/finance/analytics?interval=month&from=2025-12&to=2026-02"))
    .data;
  assert.deepEqual(
    [a.interval, a.from, a.to, a.currencies],
    ["month", "2025-12-01", "2026-02-28", ["eur", "usd"]],
  );
  assert.deepEqual(a.buckets.map((b: { period: string }) => b.period), [
    "2025-12",
    "2026-01",
    "2026-02",
  ]);
  const [dec, jan, feb] = a.buckets;

  // December starts with A 3000 + B 1000 + C 6000 = 10,000 usd and E 2000 eur: 4 paying.
  // new: D 1000; expansion: B +2000; contraction: A −2000; churned: C 6000 + D 1000 = 7000.
  // End: 10,000 + 1000 + 2000 − 2000 − 7000 = 4000 (A 1000, B 3000): 2 paying usd, ARPU 2000.
  // Revenue churn (7000 + 2000) ÷ 10,000 = 0.9; NRR (10,000 + 2000 − 2000 − 7000) ÷ 10,000 = 0.3.
  // Logo churn: C was paying at the start (D was not): 1 ÷ 4 = 0.25.
  assert.deepEqual(dec, {
    period: "2025-12",
    start: "2025-12-01T00:00:00.000Z",
    end: "2026-01-01T00:00:00.000Z",
    paying_tenants_start: 4,
    paying_tenants: 3,
    churned_tenants: 1,
    logo_churn_rate: 0.25,
    by_currency: {
      eur: figures(2000, 2000, {}, {
        paying_tenants: 1,
        arpu: 2000,
        revenue_churn_rate: 0,
        net_revenue_retention: 1,
        revenue: 2000,
      }),
      usd: figures(10_000, 4000, { new: 1000, expansion: 2000, contraction: 2000, churned: 7000 }, {
        paying_tenants: 2,
        arpu: 2000,
        revenue_churn_rate: 0.9,
        net_revenue_retention: 0.3,
        revenue: 6000,
      }),
    },
    // i1 A 3000 under plus, i2 B 1000 under basic, i3 B 2000 under plus (B moved to plus at
    // that instant), i4 E 2000 eur under eur-basic.
    revenue_by_plan: { plus: { usd: 5000 }, basic: { usd: 1000 }, "eur-basic": { eur: 2000 } },
  });

  // January starts with 4000 usd (A, B) and 2000 eur (E): 3 paying. new: C 6000; expansion:
  // B +3000. End: 4000 + 6000 + 3000 = 13,000 (A 1000, B 6000, C 6000), ARPU 13,000 ÷ 3 = 4333.
  // Revenue churn 0 ÷ 4000 = 0; NRR (4000 + 3000) ÷ 4000 = 1.75. eur: E churns 2000: revenue churn
  // 2000 ÷ 2000 = 1, NRR 0, no ARPU. Logo churn: E, 1 of 3 = 0.3333.
  assert.deepEqual(jan, {
    period: "2026-01",
    start: "2026-01-01T00:00:00.000Z",
    end: "2026-02-01T00:00:00.000Z",
    paying_tenants_start: 3,
    paying_tenants: 3,
    churned_tenants: 1,
    logo_churn_rate: 0.3333,
    by_currency: {
      eur: figures(2000, 0, { churned: 2000 }, {
        paying_tenants: 0,
        arpu: null,
        revenue_churn_rate: 1,
        net_revenue_retention: 0,
        revenue: 0,
      }),
      usd: figures(4000, 13_000, { new: 6000, expansion: 3000 }, {
        paying_tenants: 3,
        arpu: 4333,
        revenue_churn_rate: 0,
        net_revenue_retention: 1.75,
        revenue: 6700,
      }),
    },
    // i5 C 6000 under max (C's change came 5 minutes before); i6 F 700 under its subscription's
    // plan (no MRR change of F).
    revenue_by_plan: { max: { usd: 6000 }, plus: { usd: 700 } },
  });

  // February: nothing moves. eur starts at 0: no rates. G's 300 has no plan: unmapped.
  assert.deepEqual(feb, {
    period: "2026-02",
    start: "2026-02-01T00:00:00.000Z",
    end: "2026-03-01T00:00:00.000Z",
    paying_tenants_start: 3,
    paying_tenants: 3,
    churned_tenants: 0,
    logo_churn_rate: 0,
    by_currency: {
      eur: figures(0, 0, {}, {
        paying_tenants: 0,
        arpu: null,
        revenue_churn_rate: null,
        net_revenue_retention: null,
        revenue: 0,
      }),
      usd: figures(13_000, 13_000, {}, {
        paying_tenants: 3,
        arpu: 4333,
        revenue_churn_rate: 0,
        net_revenue_retention: 1,
        revenue: 300,
      }),
    },
    revenue_by_plan: { unmapped: { usd: 300 } },
  });
});

Deno.test("analytics: by day, and the default of the last 30 days", async () => {
  await using h = await setup();
  await history(h);
  const a = (await get(h, "/v1/admin/finance/analytics?from=2025-12-02&to=2025-12-04")).data;
  assert.deepEqual([a.interval, a.from, a.to], ["day", "2025-12-02", "2025-12-04"]);
  const usd = a.buckets.map((b: { by_currency: { usd: unknown } }) => b.by_currency.usd);
  // 12-02: 10,000 (A 3000, B 1000, C 6000), 3 paying, ARPU 3333.
  assert.deepEqual(
    usd[0],
    figures(10_000, 10_000, {}, {
      paying_tenants: 3,
      arpu: 3333,
      revenue_churn_rate: 0,
      net_revenue_retention: 1,
      revenue: 0,
    }),
  );
  // 12-03: B +2000 → 12,000, ARPU 4000, NRR 12,000 ÷ 10,000 = 1.2; i2 1000 + i3 2000 paid.
  assert.deepEqual(
    usd[1],
    figures(10_000, 12_000, { expansion: 2000 }, {
      paying_tenants: 3,
      arpu: 4000,
      revenue_churn_rate: 0,
      net_revenue_retention: 1.2,
      revenue: 3000,
    }),
  );
  assert.deepEqual(a.buckets[1].revenue_by_plan, { basic: { usd: 1000 }, plus: { usd: 2000 } });
  assert.equal(usd[2].mrr_start, 12_000);
  assert.equal(a.buckets[2].end, "2025-12-05T00:00:00.000Z");

  // No range: 30 days by day, 01-31 to today (03-01); MRR then is 13,000 usd all along.
  const recent = (await get(h, "/v1/admin/finance/analytics")).data;
  assert.equal(recent.buckets.length, 30);
  assert.deepEqual(
    [recent.buckets[0].period, recent.buckets[29].period, recent.from, recent.to],
    ["2026-01-31", "2026-03-01", "2026-01-31", "2026-03-01"],
  );
  assert.equal(recent.buckets[0].by_currency.usd.mrr, 13_000);
  // By month without a range: the last 12 months, to this one.
  const months = (await get(h, "/v1/admin/finance/analytics?interval=month")).data;
  assert.deepEqual(
    [months.buckets.length, months.buckets[0].period, months.buckets[11].period, months.to],
    [12, "2025-04", "2026-03", "2026-03-01"],
  );
  // This month's bucket runs to now: i8 (paid today) counts under A's plan, basic.
  assert.deepEqual(months.buckets[11].revenue_by_plan, { basic: { usd: 1000 } });
});

Deno.test("analytics: bad ranges are 400", async () => {
  await using h = await setup();
  const path = "/v1/admin/finance/analytics";
  for (
    const [query, at] of [
      ["interval=week", "query.interval"],
      ["from=2026-13-01", "query.from"],
      ["from=2026-02-30", "query.from"],
      ["to=2026-3", "query.to"],
      ["from=2026-02-10&to=2026-02-01", "query.from"],
      ["to=2026-03-02", "query.to"],
      ["interval=month&to=2026-04", "query.to"],
      ["from=2025-01-01&to=2026-02-28", "query.from"], // 424 days by day
      ["interval=month&from=2023-01&to=2026-02", "query.from"], // 38 months
      ["currency=usd", "query"],
    ]
  ) {
    assertInvalid(await h.call("GET", `${path}?${query}`, { token: h.root }), at);
  }
  // The limits themselves are allowed: 366 days, 36 months.
  await get(h, `${path}?from=2025-03-01&to=2026-03-01`);
  await get(h, `${path}?interval=month&from=2023-04&to=2026-03`);
});

// ── Earnings ────────────────────────────────────────────────────────────────────

Deno.test("earnings: invoices paid and refunded in the month, net, plan, usage and overage", async () => {
  await using h = await setup();
  const { t, subs, inv } = await world(h);
  const feb = (await get(h, "/v1/tenants/acme/earnings?period=2026-02")).data;
  // Paid in February (by paid_at): in_acme_old 02-06 and in_acme_feb 02-15 (4900 each, 900 of
  // the second refunded), in_acme_eur 02-20 (1500 eur, all refunded). Net: 9800 − 900 = 8900 usd,
  // 0 eur.
  assert.deepEqual(feb, {
    tenant_id: t.acme,
    period: "2026-02",
    start: "2026-02-01T00:00:00.000Z",
    end: "2026-03-01T00:00:00.000Z",
    plan: {
      code: "pro",
      name: "Pro",
      price: { amount: 4900, currency: "usd", interval: "month" },
      override: false,
      override_reason: null,
    },
    subscription: subs.acme,
    invoices: [inv.acmeOld, inv.acmeFeb, inv.acmeEur],
    paid: { usd: 9800, eur: 1500 },
    refunded: { usd: 900, eur: 1500 },
    net: { usd: 8900, eur: 0 },
    // 600,000 + 500,000 verifications in February against 1,000,000 a month: 100,000 over, at
    // 4900 ÷ 1,000,000 = 0.0049 → 490.
    usage: {
      metric: "verifications",
      used: 1_100_000,
      quota: 1_000_000,
      quota_period: "month",
      overage_units: 100_000,
      unit_price: 0.0049,
      overage_amount: 490,
      currency: "usd",
      overage_billed: false,
    },
  });

  // This month by default: in_acme_mar; 1,250,000 used → 250,000 over → 1225.
  const march = (await get(h, "/v1/tenants/acme/earnings")).data;
  assert.equal(march.period, "2026-03");
  assert.deepEqual(march.invoices, [inv.acmeMar]);
  assert.deepEqual([march.paid, march.refunded, march.net], [
    { usd: 4900 },
    { usd: 0 },
    { usd: 4900 },
  ]);
  assert.deepEqual(
    [march.usage.used, march.usage.overage_units, march.usage.overage_amount],
    [1_250_000, 250_000, 1225],
  );
  const january = (await get(h, `/v1/tenants/${t.acme}/earnings?period=2026-01`)).data;
  assert.deepEqual(january.invoices, [inv.acmeOlder]);
  assert.deepEqual([january.usage.used, january.usage.overage_units], [0, 0]);

  // An overridden tenant without a subscription or invoices.
  const partner = (await get(h, "/v1/tenants/cyberdyne/earnings")).data;
  assert.deepEqual(partner.plan, {
    code: "annual-mq",
    name: "annual-mq",
    price: { amount: 120_000, currency: "usd", interval: "year" },
    override: true,
    override_reason: "partner",
  });
  assert.deepEqual([partner.subscription, partner.invoices, partner.paid], [null, [], {}]);
  // 1200 of 1000 a month: 200 over at 10 → 2000.
  assert.deepEqual([partner.usage.overage_units, partner.usage.overage_amount], [200, 2000]);
});

Deno.test("earnings: a yearly quota counts the month's units above what the year had used", async () => {
  await using h = await setup();
  await h.tenant("yearly");
  await setPlan(h, "yearly", "starter"); // 10,000,000 a year for 2,000,000 a year: 5 a unit
  await used(h, "yearly", [
    [Date.parse("2026-01-28T10:00:00Z"), 1_900_000],
    [Date.parse("2026-02-10T10:00:00Z"), 300_000],
    [T, 50_000],
  ]);
  const usage = async (period: string) =>
    (await get(h, `/v1/tenants/yearly/earnings?period=${period}`)).data.usage;
  // January: 1,900,000, under the quota.
  assert.deepEqual(
    [(await usage("2026-01")).used, (await usage("2026-01")).overage_units],
    [1_900_000, 0],
  );
  // February: the year reaches 2,200,000: 200,000 over, all of them February's → 1,000,000.
  const feb = await usage("2026-02");
  assert.deepEqual(
    [feb.used, feb.quota, feb.quota_period, feb.overage_units, feb.unit_price, feb.overage_amount],
    [300_000, 2_000_000, "year", 200_000, 5, 1_000_000],
  );
  // March: 2,250,000 − 2,200,000 already over = 50,000 more → 250,000.
  const march = await usage("2026-03");
  assert.deepEqual([march.used, march.overage_units, march.overage_amount], [
    50_000,
    50_000,
    250_000,
  ]);
});

Deno.test("earnings: a month long past is empty, in any year the pattern allows", async () => {
  await using h = await setup();
  await h.tenant("acme");
  // Date.UTC reads the years 0–99 as 1900–1999: the quota period began after the month ended.
  for (const period of ["0000-01", "0069-10", "0999-12", "1969-12"]) {
    const earnings = (await get(h, `/v1/tenants/acme/earnings?period=${period}`)).data;
    assert.equal(earnings.period, period);
    assert.equal(earnings.start, `${period}-01T00:00:00.000Z`);
    assert.deepEqual([earnings.invoices, earnings.usage.used], [[], 0]);
  }
});

Deno.test("earnings: a bad or later period is 400; an unknown tenant 404", async () => {
  await using h = await setup();
  await h.tenant("acme");
  for (const period of ["2026-13", "2026-1", "2026-02-01", "next"]) {
    assertInvalid(
      await h.call("GET", `/v1/tenants/acme/earnings?period=${period}`, { token: h.root }),
      "query.period",
    );
  }
  assertInvalid(
    await h.call("GET", "/v1/tenants/acme/earnings?period=2026-04", { token: h.root }),
    "query.period",
  );
  assertInvalid(
    await h.call("GET", "/v1/tenants/acme/earnings?month=2026-02", { token: h.root }),
    "query",
  );
  assertError(
    await h.call("GET", "/v1/tenants/nobody/earnings", { token: h.root }),
    404,
    "NOT_FOUND",
  );
});

// ── Who may read ────────────────────────────────────────────────────────────────

const ADMIN_ROUTES = [
  "/v1/admin/finance/subscription-summary",
  "/v1/admin/finance/stripe-sync-status",
  "/v1/admin/finance/subscriptions",
  "/v1/admin/finance/analytics",
  "/v1/admin/finance/revenue-protection",
];

Deno.test("finance: no credentials is 401 on every route", async () => {
  await using h = await setup();
  await h.tenant("acme");
  for (const path of [...ADMIN_ROUTES, "/v1/tenants/acme/earnings"]) {
    assertError(await h.call("GET", path), 401, "UNAUTHORIZED");
    assertError(await h.call("GET", path, { token: "stw_notarealtoken" }), 401, "UNAUTHORIZED");
  }
});

Deno.test("finance: finance and admin staff read the reports; support, ops, qa and members are 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  for (const role of ["finance", "admin", "super_admin"] as const) {
    const { token } = await h.user(role);
    for (const path of ADMIN_ROUTES) await get(h, path, token);
  }
  const owner = await memberOf(h, acme.id, "owner");
  for (const role of ["support", "ops", "qa", null] as const) {
    const { token } = await h.user(role);
    for (const path of ADMIN_ROUTES) {
      assertError(await h.call("GET", path, { token }), 403, "FORBIDDEN");
    }
  }
  for (const path of ADMIN_ROUTES) {
    assertError(await h.call("GET", path, { token: owner.token }), 403, "FORBIDDEN");
  }
  // A token bound to a tenant reaches no platform report, even holding finance:read.
  const bound = await h.serviceToken(["finance:read"], acme.id);
  assertError(
    await h.call("GET", ADMIN_ROUTES[0], { token: bound.token }),
    403,
    "FORBIDDEN",
  );
  const unbound = await h.serviceToken(["finance:read"]);
  await get(h, ADMIN_ROUTES[0], unbound.token);
});

Deno.test("earnings: finance:read inside the tenant; no tenant role has it; strangers get 404", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const sandbox = await h.tenant("sandbox-acme", {}, "/v1/tenants/test");
  const path = (slug: string) => `/v1/tenants/${slug}/earnings`;
  for (const role of ["finance", "admin"] as const) {
    const { token } = await h.user(role);
    await get(h, path("acme"), token);
  }
  // Every tenant role, owners included, sees the tenant but may not read this.
  for (const role of ["owner", "admin", "member", "viewer"] as const) {
    const member = await memberOf(h, acme.id, role);
    assertError(await h.call("GET", path("acme"), { token: member.token }), 403, "FORBIDDEN");
  }
  for (const role of ["support", "ops"] as const) {
    const { token } = await h.user(role);
    assertError(await h.call("GET", path("acme"), { token }), 403, "FORBIDDEN");
  }
  // qa holds admin powers in test tenants, but not the finance reports; other tenants are hidden.
  const qa = await h.user("qa");
  assertError(await h.call("GET", path(sandbox.slug), { token: qa.token }), 403, "FORBIDDEN");
  assertError(await h.call("GET", path("acme"), { token: qa.token }), 404, "NOT_FOUND");
  const stranger = await h.user(null);
  assertError(await h.call("GET", path("acme"), { token: stranger.token }), 404, "NOT_FOUND");
  // Tokens: bound to the tenant with finance:read, yes; to another tenant, 404; without it, 403.
  const bound = await h.serviceToken(["finance:read"], acme.id);
  await get(h, path("acme"), bound.token);
  const elsewhere = await h.serviceToken(["finance:read"], sandbox.id);
  assertError(await h.call("GET", path("acme"), { token: elsewhere.token }), 404, "NOT_FOUND");
  const reader = await h.serviceToken(["tenants:read"], acme.id);
  assertError(await h.call("GET", path("acme"), { token: reader.token }), 403, "FORBIDDEN");
});
