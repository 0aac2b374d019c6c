/** Request counts per day for a principal, and the caller's overview of its tenants. */
import { z } from "@hono/zod-openapi";
import { dailyRequests, dayRange, overview } from "../../domain/usage/activity.ts";
import { getUserRecord } from "../../domain/identity/users.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { DayRangeQuery, envelope, IdParams, jsonResponse } from "../schemas.ts";

const Daily = z.object({
  principal_id: z.string(),
  from: z.string(),
  to: z.string(),
  total: z.number().int(),
  days: z.array(z.object({ date: z.string(), requests: z.number().int() })),
}).openapi("DailyRequests");

const Overview = z.object({
  principal_id: z.string(),
  requests_today: z.number().int(),
  tenants: z.array(z.object({
    tenant_id: z.string(),
    slug: z.string(),
    name: z.string(),
    status: z.string(),
    is_test: z.boolean(),
    plan: z.string(),
    role: z.enum(["owner", "admin", "member", "viewer"]).nullable(),
    active_keys: z.number().int(),
  })),
}).openapi("Overview");

const RANGE = "Zero-filled, at most 366 days (400 beyond or inverted); default the last 30 days.";
const tags = ["Activity"];

export function activityRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/me/daily",
      tags,
      summary: "Your authenticated requests per day",
      description: RANGE,
      request: { query: DayRangeQuery },
      responses: { 200: jsonResponse(envelope(Daily), "Requests per day.") },
    }),
    async (c) => {
      const { from, to } = c.req.valid("query");
      const svc = c.var.svc;
      return ok(c, await dailyRequests(svc, c.var.principal.id, dayRange(svc.now(), from, to)));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/me/overview",
      tags,
      summary: "Your tenants (role, plan, status, active keys) and today's requests",
      responses: { 200: jsonResponse(envelope(Overview), "The overview.") },
    }),
    async (c) => ok(c, await overview(c.var.svc, c.var.principal)),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/users/{id}/daily",
      tags: ["Users"],
      summary: "A user's authenticated requests per day",
      description: RANGE,
      request: { params: IdParams("usr"), query: DayRangeQuery },
      responses: { 200: jsonResponse(envelope(Daily), "Requests per day.") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { from, to } = c.req.valid("query");
      const svc = c.var.svc;
      await getUserRecord(svc, id);
      return ok(c, await dailyRequests(svc, id, dayRange(svc.now(), from, to)));
    },
  );

  return app;
}
