/**
 * The finance API: reports over the billing records Stripe's events keep (finance:read). The
 * platform's reports are under /v1/admin/finance; what the platform earns from one tenant is
 * under the tenant, and needs finance:read there (platform staff's; no tenant role holds it).
 */
import { revenueAnalytics } from "../../domain/billing/finance_analytics.ts";
import { listSubscriptions, subscriptionSummary } from "../../domain/billing/finance_summary.ts";
import { revenueProtection } from "../../domain/billing/revenue_protection.ts";
import { stripeSyncStatus } from "../../domain/billing/sync_status.ts";
import { tenantEarnings } from "../../domain/billing/earnings.ts";
import type { Subscription } from "../../domain/billing/model.ts";
import { ok, okList } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonResponse, listEnvelope, TenantParams } from "../schemas.ts";
import {
  AnalyticsQuery,
  AnalyticsSchema,
  EarningsQuery,
  EarningsSchema,
  ProtectionQuery,
  RevenueProtectionSchema,
  StripeSyncStatusSchema,
  SubscriptionSchema,
  SubscriptionsQuery,
  SubscriptionSummarySchema,
} from "./finance_schemas.ts";

const tags = ["Finance"];
const MONEY = "Amounts are in minor units (cents) and kept per currency, never added across.";

export function financeRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/finance/subscription-summary",
      tags,
      summary: "Subscriptions by status and plan, MRR and ARR, trials ending, cancellations",
      description: `MRR counts active and past_due subscriptions (a yearly price ÷ 12). ${MONEY}`,
      responses: { 200: jsonResponse(envelope(SubscriptionSummarySchema), "The summary.") },
    }),
    async (c) => ok(c, await subscriptionSummary(c.get("svc"))),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/finance/stripe-sync-status",
      tags,
      summary: "How Steward keeps up with Stripe: events, failures, backlog, overrides, drift",
      description: "Events of the last 24 hours by type and outcome, signature failures, " +
        "events waiting or failed, the last successful API call, overridden tenants and tenants " +
        "whose plan disagrees with their subscription.",
      responses: { 200: jsonResponse(envelope(StripeSyncStatusSchema), "The status.") },
    }),
    async (c) => ok(c, await stripeSyncStatus(c.get("svc"))),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/finance/subscriptions",
      tags,
      summary: "List subscriptions (filter by status, plan, tenant)",
      description: "In tenant order (oldest tenant first); `offset` or `page` jump to a page.",
      request: { query: SubscriptionsQuery },
      responses: {
        200: jsonResponse(listEnvelope(SubscriptionSchema), "A page of subscriptions."),
      },
    }),
    async (c) => {
      const { limit, cursor, offset, page, ...filter } = c.req.valid("query");
      const found = await listSubscriptions(c.get("svc"), filter, { limit, cursor, offset, page });
      return okList(c, found, limit, (s: Subscription) => s);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/finance/analytics",
      tags,
      summary: "MRR series and movements, ARPU, churn, retention and revenue by plan",
      description: "Replayed from the MRR changes and the invoices paid, per day or calendar " +
        "month. Every figure is given per currency, and rates within a currency. " +
        "`from` after `to`, `to` after today, or a range over 366 days (by day) or 36 months " +
        `(by month) is 400. ${MONEY}`,
      request: { query: AnalyticsQuery },
      responses: { 200: jsonResponse(envelope(AnalyticsSchema), "The buckets.") },
    }),
    async (c) => {
      const { interval, from, to } = c.req.valid("query");
      return ok(c, await revenueAnalytics(c.get("svc"), interval, from, to));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/finance/revenue-protection",
      tags,
      summary: "Revenue at risk: overdue subscriptions, failed payments, unbilled use, overrides",
      description: "`from` and `to` bound the failed payments (default the last 30 days, at " +
        "most 366). Over-quota usage is this quota period's, priced at the plan's unit price " +
        `(its price for a quota period ÷ the quota). ${MONEY}`,
      request: { query: ProtectionQuery },
      responses: { 200: jsonResponse(envelope(RevenueProtectionSchema), "The report.") },
    }),
    async (c) => {
      const { from, to } = c.req.valid("query");
      return ok(c, await revenueProtection(c.get("svc"), from, to));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/earnings",
      tags,
      summary: "What the platform earned from the tenant in a month",
      description: "Invoices paid in the month (by `paid_at`) and what of them was refunded, " +
        "the net, the tenant's plan and subscription, and its verifications in the month with " +
        `the overage above the quota at the plan's unit price. ${MONEY}`,
      request: { params: TenantParams, query: EarningsQuery },
      responses: { 200: jsonResponse(envelope(EarningsSchema), "The month's earnings.") },
    }),
    async (c) =>
      ok(c, await tenantEarnings(c.get("svc"), c.get("tenant").value, c.req.valid("query").period)),
  );

  return app;
}
