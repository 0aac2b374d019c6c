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

const Metric = z.string().regex(METRIC_PATTERN, "[a-z][a-z0-9_.]{0,63}").openapi({
  example: "verifications",
});

const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const KEY_ID = "key_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

const UsageEventSchema = z.strictObject({
  id: z.string().min(1).max(128).openapi({
    description: "Counts once within 24 h.",
    example: "acme-20260131-000042",
  }),
  tenant_id: z.string().max(64).optional().openapi({ example: TENANT_ID }),
  key_id: z.string().max(64).optional().openapi({ example: KEY_ID }),
  metric: Metric,
  quantity: z.number().int().min(1).max(1e12).openapi({ example: 25 }),
  timestamp: Timestamp.openapi({
    description: "Up to 35 days back and 5 minutes ahead.",
    example: "2026-01-31T11:55:00.000Z",
  }),
}).openapi("UsageEvent", {
  example: {
    id: "acme-20260131-000042",
    tenant_id: TENANT_ID,
    metric: "api_calls",
    quantity: 25,
    timestamp: "2026-01-31T11:55:00.000Z",
  },
});

const Ingest = z.strictObject({
  events: z.array(z.unknown()).min(1).max(100).openapi({
    description: "Up to 100 UsageEvent objects; each is judged on its own.",
  }),
}).openapi("UsageBatch", {
  example: {
    events: [
      {
        id: "acme-20260131-000042",
        tenant_id: TENANT_ID,
        metric: "api_calls",
        quantity: 25,
        timestamp: "2026-01-31T11:55:00.000Z",
      },
      {
        id: "acme-20260131-000043",
        key_id: KEY_ID,
        metric: "verifications",
        quantity: 1,
        timestamp: "2026-01-31T11:55:02.000Z",
      },
    ],
  },
});

const OutcomeSchema = z.object({
  id: z.string().nullable().openapi({ example: "acme-20260131-000042" }),
  status: z.enum(["accepted", "duplicate", "rejected"]),
  reason: z.string().optional().openapi({ example: "timestamp is more than 35 days old" }),
});

const Outcomes = z.array(OutcomeSchema).openapi({
  example: [
    { id: "acme-20260131-000042", status: "accepted" },
    { id: "acme-20260131-000043", status: "duplicate" },
  ],
});

const MetricUsage = z.object({
  metric: z.string().openapi({ example: "verifications" }),
  used: z.number().openapi({ example: 412_806 }),
  quota: z.number().nullable().openapi({ example: 1_000_000 }),
  remaining: z.number().nullable().openapi({ example: 587_194 }),
  percent: z.number().nullable().openapi({ example: 41.28 }),
  period_start: z.string().openapi({ example: "2026-01-01T00:00:00.000Z" }),
  period_end: z.string().openapi({ example: "2026-02-01T00:00:00.000Z" }),
}).openapi("MetricUsage");

const DailyUsage = z.object({
  metric: z.string().openapi({ example: "verifications" }),
  from: z.string().openapi({ example: "2026-01-29" }),
  to: z.string().openapi({ example: "2026-01-31" }),
  total: z.number().openapi({ example: 36_362 }),
  days: z.array(z.object({
    date: z.string().openapi({ example: "2026-01-31" }),
    used: z.number().openapi({ example: 7_118 }),
  })),
}).openapi("DailyUsage", {
  example: {
    metric: "verifications",
    from: "2026-01-29",
    to: "2026-01-31",
    total: 36_362,
    days: [
      { date: "2026-01-29", used: 14_210 },
      { date: "2026-01-30", used: 15_034 },
      { date: "2026-01-31", used: 7_118 },
    ],
  },
});

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
        200: jsonResponse(envelope(z.object({ results: Outcomes })), "Results."),
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
      return ok(c, {
        results: await ingestUsage(c.get("svc"), events, c.get("principal").tenant_id),
      });
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
    async (c) => ok(c, { metrics: await currentUsage(c.get("svc"), c.get("tenant").value) }),
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
      const range = dayRange(c.get("svc").now(), from, to);
      return ok(c, await dailyUsage(c.get("svc"), c.get("tenant").value.id, metric, range));
    },
  );

  return app;
}
