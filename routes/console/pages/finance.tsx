/**
 * Finance: MRR and ARR over time, subscriptions by status and the list of them, revenue at risk
 * and how Steward keeps up with Stripe, all read from the finance reports (finance:read). With
 * billing off (no Stripe keys) the same reports answer from the records Steward holds, and the
 * page says so.
 */
import type { z } from "@hono/zod-openapi";
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import { SUBSCRIPTION_STATUSES } from "../../../domain/billing/model.ts";
import type {
  AnalyticsSchema,
  RevenueProtectionSchema,
  StripeSyncStatusSchema,
  SubscriptionSchema,
  SubscriptionSummarySchema,
} from "../../billing/finance_schemas.ts";
import { type Api, can } from "../api.ts";
import {
  ApiError,
  Chart,
  count,
  Field,
  Kpi,
  money,
  Notice,
  offsetOf,
  Page,
  Pager,
  Select,
  type Series,
  Table,
  when,
} from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { choices, totalOf } from "./common.tsx";
import { tenantLinks } from "./tenant_links.tsx";

type Summary = z.infer<typeof SubscriptionSummarySchema>;
type Analytics = z.infer<typeof AnalyticsSchema>;
type Protection = z.infer<typeof RevenueProtectionSchema>;
type SyncStatus = z.infer<typeof StripeSyncStatusSchema>;
type Subscription = z.infer<typeof SubscriptionSchema>;

const PAGE = 25;
const INTERVALS: [string, string][] = [["month", "By month (last 12)"], [
  "day",
  "By day (last 30)",
]];

/** One amount in minor units, as people read it. */
const amount = (minor: number, currency: string) => money({ [currency]: minor });
const yesNo = (b: boolean) => (b ? "yes" : "no");

/**
 * Per currency, the chart series of one figure over the buckets, in major units (the chart
 * draws plain numbers; the currencies are never added together).
 */
function perCurrency(a: Analytics, label: string, of: (mrr: number) => number): Series[] {
  return a.currencies.map((cur) => ({
    label: `${label} (${cur.toUpperCase()})`,
    values: a.buckets.map((b) => {
      const figures = b.by_currency[cur];
      return figures ? of(figures.mrr) / 100 : null;
    }),
  }));
}

const rate = (r: number | null) => (r === null ? "—" : `${(r * 100).toFixed(1)} %`);

/** Where each bucket's MRR came from and went, in one currency, newest first. */
const movementsOf = (a: Analytics) => (currency: string) => {
  const m = (minor: number) => amount(minor, currency);
  return (
    <Table
      caption={`MRR movements (${currency.toUpperCase()}), newest first`}
      columns={[
        a.interval === "month" ? "Month" : "Day",
        "MRR at start",
        "New",
        "Expansion",
        "Contraction",
        "Churned",
        "MRR at end",
        "Paying tenants",
        "Revenue churn",
        "Net retention",
        "Invoices paid",
      ]}
      rows={a.buckets.toReversed().flatMap((b) => {
        const f = b.by_currency[currency];
        return f
          ? [[
            b.period,
            m(f.mrr_start),
            m(f.new),
            m(f.expansion),
            m(f.contraction),
            m(f.churned),
            m(f.mrr),
            count(f.paying_tenants),
            rate(f.revenue_churn_rate),
            rate(f.net_revenue_retention),
            m(f.revenue),
          ]]
          : [];
      })}
    />
  );
};

const RevenueCharts = ({ a }: { a: Analytics }) => {
  // A month bucket is charted at its first day: the chart's axis is days.
  const days = a.buckets.map((b) => b.start.slice(0, 10));
  const unit = a.interval === "month" ? "month" : "day";
  if (!a.currencies.length) {
    return <p>No subscription has brought revenue in this range yet.</p>;
  }
  return (
    <>
      <div class="charts">
        <Chart
          id="chart-mrr"
          title={`MRR at the end of each ${unit} (major units)`}
          days={days}
          series={perCurrency(a, "MRR", (m) => m)}
        />
        <Chart
          id="chart-arr"
          title={`ARR (MRR × 12) at the end of each ${unit} (major units)`}
          days={days}
          series={perCurrency(a, "ARR", (m) => m * 12)}
        />
      </div>
      {a.currencies.map(movementsOf(a))}
    </>
  );
};

const statusLink = (st: string) => <a href={`/console/finance?status=${st}#subscriptions`}>{st}</a>;

const StatusCounts = ({ s }: { s: Summary }) => (
  <Table
    caption="Subscriptions by status"
    columns={["Status", "Subscriptions"]}
    rows={SUBSCRIPTION_STATUSES.map((st) => [
      statusLink(st),
      count(s.by_status[st] ?? 0),
    ])}
  />
);

const PlanCounts = ({ s }: { s: Summary }) => (
  <Table
    caption="Current subscriptions by plan"
    columns={["Plan", "Subscriptions"]}
    rows={Object.entries(s.by_plan).map(([plan, n]) => [plan, count(n)])}
    empty="No current subscription."
  />
);

const SubscriptionList = (
  { c, rows, tenantOf, total, offset, status, plan }: {
    c: ConsoleContext;
    rows: Subscription[];
    tenantOf: (id: string) => Child;
    total: number;
    offset: number;
    status: string;
    plan: string;
  },
) => (
  <>
    <form method="get" action="/console/finance#subscriptions" class="search">
      <Select
        label="Status"
        name="status"
        value={status}
        options={choices(SUBSCRIPTION_STATUSES)}
      />
      <Field label="Plan code" name="plan" value={plan} />
      <button type="submit">Filter</button>
    </form>
    <Table
      caption="Subscriptions"
      columns={["Tenant", "Status", "Plan", "Price", "MRR", "Period ends", "Cancels at end"]}
      rows={rows.map((s) => [
        tenantOf(s.tenant_id),
        s.status,
        s.plan_code ?? "—",
        `${amount(s.amount, s.currency)} / ${s.interval}`,
        amount(s.mrr, s.currency),
        when(s.current_period_end),
        yesNo(s.cancel_at_period_end),
      ])}
      empty="No subscription matches."
    />
    <Pager c={c} total={total} offset={offset} limit={PAGE} />
  </>
);

const ProtectionReport = ({ p }: { p: Protection }) => (
  <>
    <dl class="kpis">
      <Kpi label="MRR at risk" value={money(p.at_risk.mrr_at_risk)} />
      <Kpi label="Outstanding" value={money(p.at_risk.outstanding)} />
      <Kpi label="Failed payments" value={count(p.failed_payments.count)} />
      <Kpi label="Recovered" value={money(p.failed_payments.recovered)} />
      <Kpi label="Unbilled over quota" value={money(p.over_quota.unbilled)} />
    </dl>
    <Table
      caption="Subscriptions past due or unpaid"
      columns={["Tenant", "Status", "Plan", "MRR at risk", "Outstanding", "Period ends"]}
      rows={p.at_risk.subscriptions.map((s) => [
        s.tenant_slug ?? s.tenant_id,
        s.status,
        s.plan_code ?? "—",
        amount(s.mrr_at_risk, s.currency),
        amount(s.outstanding, s.currency),
        when(s.current_period_end),
      ])}
      empty="No subscription is past due or unpaid."
    />
    <Table
      caption={`Failed payments from ${p.from} to ${p.to}`}
      columns={["Invoice", "Tenant", "Status", "Due", "Paid", "Failed at", "Recovered"]}
      rows={p.failed_payments.invoices.map((i) => [
        i.number ?? i.id,
        i.tenant_slug ?? i.tenant_id,
        i.status,
        amount(i.amount_due, i.currency),
        amount(i.amount_paid, i.currency),
        when(i.payment_failed_at),
        yesNo(i.recovered),
      ])}
      empty="No payment failed."
    />
    <Table
      caption="Over quota on a plan that bills no overage"
      columns={["Tenant", "Plan", "Quota", "Used", "Over", "Unbilled"]}
      rows={p.over_quota.tenants.map((t) => [
        t.tenant_slug,
        t.plan,
        count(t.quota),
        count(t.used),
        count(t.over_units),
        amount(t.unbilled, t.currency),
      ])}
      empty="No tenant is over its quota."
    />
    <Table
      caption="Overridden plans: what they would pay"
      columns={["Tenant", "Plan", "Would pay (MRR)", "Pays (MRR)", "Difference"]}
      rows={p.overrides.tenants.map((t) => {
        const currency = t.plan_price?.currency ?? t.subscription?.currency ?? "usd";
        return [
          t.tenant_slug,
          t.plan,
          t.plan_price ? amount(t.would_pay_mrr, t.plan_price.currency) : "—",
          t.subscription ? amount(t.paying_mrr, t.subscription.currency) : "nothing",
          t.difference_mrr === null ? "other currency" : amount(t.difference_mrr, currency),
        ];
      })}
      empty="No tenant has an overridden plan."
    />
    <Table
      caption="Trials ending within 7 days"
      columns={["Tenant", "Plan", "Trial ends", "MRR after the trial"]}
      rows={p.trials_ending.map((t) => [
        t.tenant_slug ?? t.tenant_id,
        t.plan_code ?? "—",
        when(t.trial_end),
        amount(t.mrr_after_trial, t.currency),
      ])}
      empty="No trial ends within 7 days."
    />
  </>
);

const age = (seconds: number | null) =>
  seconds === null ? "" : ` (${count(Math.round(seconds / 60))} min ago)`;

const SyncReport = ({ s }: { s: SyncStatus }) => (
  <>
    <dl class="facts">
      <dt>Stripe configured</dt>
      <dd>{yesNo(s.configured)}</dd>
      <dt>Last event</dt>
      <dd>
        {s.last_event ? `${s.last_event.type}, ${when(s.last_event.received_at)}` : "none yet"}
      </dd>
      <dt>Events in the last 24 hours</dt>
      <dd>{count(s.last_24h.events)}</dd>
      <dt>Signature failures</dt>
      <dd>
        {`${count(s.signature_failures.today)} today, ${
          count(s.signature_failures.yesterday)
        } yesterday`}
      </dd>
      <dt>Waiting to be applied</dt>
      <dd>
        {count(s.processing.queued)}
        {s.processing.oldest_queued &&
          `, the oldest since ${when(s.processing.oldest_queued.received_at)}`}
      </dd>
      <dt>Failed to apply</dt>
      <dd>{count(s.processing.failed)}</dd>
      <dt>Last successful call to Stripe</dt>
      <dd>{`${when(s.last_api_success_at)}${age(s.last_api_success_age_seconds)}`}</dd>
    </dl>
    <Table
      caption="Events of the last 24 hours by outcome"
      columns={["Outcome", "Events"]}
      rows={Object.entries(s.last_24h.by_status).map(([k, n]) => [k, count(n)])}
      empty="No event in the last 24 hours."
    />
    <Table
      caption="Tenants whose plan disagrees with their subscription"
      columns={["Tenant", "Plan", "Subscription's plan", "Subscription status"]}
      rows={s.plan_mismatches.tenants.map((t) => [
        t.slug,
        t.plan,
        t.subscription_plan,
        t.subscription_status,
      ])}
      empty="Every plan agrees with its subscription."
    />
    <Table
      caption="Tenants on a plan set by hand"
      columns={["Tenant", "Plan"]}
      rows={s.overridden_tenants.tenants.map((t) => [t.slug, t.plan])}
      empty="No tenant's plan is set by hand."
    />
  </>
);

async function financePage(c: ConsoleContext, api: Api) {
  if (!can(c, "GET", "/v1/admin/finance/subscription-summary")) {
    c.status(403);
    return (
      <Page c={c} title="Finance" section="finance">
        <Notice kind="error" message="Your role may not read the finance reports." />
      </Page>
    );
  }
  const interval = c.req.query("interval") === "day" ? "day" : "month";
  const status = c.req.query("status") ?? "";
  const plan = (c.req.query("plan") ?? "").trim();
  const offset = offsetOf(c);
  const filter = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (status) filter.set("status", status);
  if (plan) filter.set("plan", plan);

  const [summary, analytics, subs, protection, sync] = await Promise.all([
    api<Summary>(c, "GET", "/v1/admin/finance/subscription-summary"),
    api<Analytics>(c, "GET", `/v1/admin/finance/analytics?interval=${interval}`),
    api<Subscription[]>(c, "GET", `/v1/admin/finance/subscriptions?${filter}`),
    api<Protection>(c, "GET", "/v1/admin/finance/revenue-protection"),
    api<SyncStatus>(c, "GET", "/v1/admin/finance/stripe-sync-status"),
  ]);
  const s = summary.ok ? summary.data : null;
  const tenantOf = await tenantLinks(c, api, subs.ok ? subs.data.map((x) => x.tenant_id) : []);
  return (
    <Page c={c} title="Finance" section="finance">
      {sync.ok && !sync.data.configured && (
        <Notice
          kind="ok"
          message="Billing is off: Stripe is not configured (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET). The figures below come from the billing records Steward holds, if any."
        />
      )}
      <ApiError error={summary.error} />
      {s && (
        <dl class="kpis">
          <Kpi label="MRR" value={money(s.mrr)} />
          <Kpi label="ARR" value={money(s.arr)} />
          <Kpi label="Paying subscriptions" value={count(s.paying)} />
          <Kpi label="Trials ending in 7 days" value={count(s.trials_ending_soon)} />
          <Kpi
            label="Cancelling at period end"
            value={`${count(s.scheduled_cancellations.count)} (${
              money(s.scheduled_cancellations.mrr)
            })`}
          />
        </dl>
      )}

      <h2>MRR and ARR over time</h2>
      <form method="get" action="/console/finance" class="search">
        <Select label="Buckets" name="interval" value={interval} options={INTERVALS} />
        <button type="submit">Show</button>
      </form>
      {analytics.ok ? <RevenueCharts a={analytics.data} /> : <ApiError error={analytics.error} />}

      <h2>Subscriptions by status</h2>
      {s && (
        <div class="charts">
          <StatusCounts s={s} />
          <PlanCounts s={s} />
        </div>
      )}
      <h2 id="subscriptions">Subscriptions</h2>
      {subs.ok
        ? (
          <SubscriptionList
            c={c}
            rows={subs.data}
            tenantOf={tenantOf}
            total={totalOf(subs, offset)}
            offset={offset}
            status={status}
            plan={plan}
          />
        )
        : <ApiError error={subs.error} />}

      <h2>Revenue protection</h2>
      {protection.ok
        ? <ProtectionReport p={protection.data} />
        : <ApiError error={protection.error} />}

      <h2>Stripe sync</h2>
      {sync.ok ? <SyncReport s={sync.data} /> : <ApiError error={sync.error} />}
    </Page>
  );
}

export function financePages(app: Hono<ConsoleEnv>, api: Api) {
  app.get("/console/finance", async (c) => c.html(await financePage(c, api)));
}
