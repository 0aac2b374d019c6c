/** Metered usage: platforms report events; tenants read their period's totals and days. */
import { z } from "@hono/zod-openapi";
import { dayRange } from "../../domain/usage/activity.ts";
import {
  currentUsage,
  dailyUsage,
  ingestUsage,
  type InvalidEvent,
  METRIC_PATTERN,
  type UsageEvent,
} from "../../domain/usage/usage.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  DayRangeQuery,
  envelope,
  jsonBody,
  jsonResponse,
  TenantParams,
  Timestamp,
} from "../schemas.ts";

const Metric = z.string().regex(METRIC_PATTERN, "[a-z][a-z0-9_.]{0,63}");

const UsageEventSchema = z.strictObject({
  id: z.string().min(1).max(128).openapi({ description: "Counts once within 24 h." }),
  tenant_id: z.string().max(64).optional(),
  key_id: z.string().max(64).optional(),
  metric: Metric,
  quantity: z.number().int().min(1).max(1e12),
  timestamp: Timestamp.openapi({ description: "Up to 35 days back and 5 minutes ahead." }),
}).openapi("UsageEvent");

const Ingest = z.strictObject({
  events: z.array(z.unknown()).min(1).max(100).openapi({
    description: "Up to 100 UsageEvent objects; each is judged on its own.",
  }),
}).openapi("UsageBatch");

const OutcomeSchema = z.object({
  id: z.string().nullable(),
  status: z.enum(["accepted", "duplicate", "rejected"]),
  reason: z.string().optional(),
});

const MetricUsage = z.object({
  metric: z.string(),
  used: z.number(),
  quota: z.number().nullable(),
  remaining: z.number().nullable(),
  percent: z.number().nullable(),
  period_start: z.string(),
  period_end: z.string(),
}).openapi("MetricUsage");

const DailyUsage = z.object({
  metric: z.string(),
  from: z.string(),
  to: z.string(),
  total: z.number(),
  days: z.array(z.object({ date: z.string(), used: z.number() })),
}).openapi("DailyUsage");

const tags = ["Usage"];

export function usageRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/usage/events",
      tags,
      summary: "Report usage events (up to 100)",
      description: "Each event names its tenant (`tenant_id`) or a key (`key_id`). The answer " +
        "says per event, in order, `accepted`, `duplicate` (its id counted within 24 h) or " +
        "`rejected` with the reason; a rejected event does not stop the others. A token bound " +
        "to a tenant reports for that tenant only.",
      request: { body: jsonBody(Ingest) },
      responses: {
        200: jsonResponse(envelope(z.object({ results: z.array(OutcomeSchema) })), "Results."),
      },
    }),
    async (c) => {
      const events = c.req.valid("json").events.map((raw): UsageEvent | InvalidEvent => {
        const parsed = UsageEventSchema.safeParse(raw);
        if (parsed.success) return parsed.data;
        const issue = parsed.error.issues[0];
        const id = (raw as { id?: unknown } | null)?.id;
        return {
          id: typeof id === "string" ? id : null,
          invalid: `${issue.path.join(".") || "event"}: ${issue.message}`,
        };
      });
      return ok(c, { results: await ingestUsage(c.var.svc, events, c.var.principal.tenant_id) });
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/usage",
      tags,
      summary: "The tenant's use of each metric in the current quota period",
      description: "Verifications count under `verifications`, against the plan's quota.",
      request: { params: TenantParams },
      responses: {
        200: jsonResponse(envelope(z.object({ metrics: z.array(MetricUsage) })), "Usage."),
      },
    }),
    async (c) => ok(c, { metrics: await currentUsage(c.var.svc, c.var.tenant.value) }),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/usage/daily",
      tags,
      summary: "One metric per day (zero-filled)",
      description: "At most 366 days (400 beyond or inverted); default the last 30 days.",
      request: {
        params: TenantParams,
        query: DayRangeQuery.extend({ metric: Metric.default("verifications") }),
      },
      responses: { 200: jsonResponse(envelope(DailyUsage), "Per day.") },
    }),
    async (c) => {
      const { metric, from, to } = c.req.valid("query");
      const range = dayRange(c.var.svc.now(), from, to);
      return ok(c, await dailyUsage(c.var.svc, c.var.tenant.value.id, metric, range));
    },
  );

  return app;
}
