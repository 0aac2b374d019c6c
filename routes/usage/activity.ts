/** Request counts per day for a principal, and the caller's overview of its tenants. */
import { z } from "@hono/zod-openapi";
import { dailyRequests, dayRange, overview } from "../../domain/usage/activity.ts";
import { getUserRecord } from "../../domain/identity/users.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { DayRangeQuery, envelope, IdParams, jsonResponse } from "../schemas.ts";

const PRINCIPAL_ID = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

const Daily = z.object({
  principal_id: z.string().openapi({ example: PRINCIPAL_ID }),
  from: z.string().openapi({ example: "2026-01-29" }),
  to: z.string().openapi({ example: "2026-01-31" }),
  total: z.number().int().openapi({ example: 1342 }),
  days: z.array(z.object({
    date: z.string().openapi({ example: "2026-01-31" }),
    requests: z.number().int().openapi({ example: 444 }),
  })),
}).openapi("DailyRequests", {
  example: {
    principal_id: PRINCIPAL_ID,
    from: "2026-01-29",
    to: "2026-01-31",
    total: 1342,
    days: [
      { date: "2026-01-29", requests: 412 },
      { date: "2026-01-30", requests: 486 },
      { date: "2026-01-31", requests: 444 },
    ],
  },
});

const Overview = z.object({
  principal_id: z.string().openapi({ example: PRINCIPAL_ID }),
  requests_today: z.number().int().openapi({ example: 444 }),
  tenants: z.array(z.object({
    tenant_id: z.string().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
    slug: z.string().openapi({ example: "acme" }),
    name: z.string().openapi({ example: "Acme Inc." }),
    status: z.string().openapi({ example: "active" }),
    is_test: z.boolean().openapi({ example: false }),
    plan: z.string().openapi({ example: "pro" }),
    role: z.enum(["owner", "admin", "member", "viewer"]).nullable().openapi({ example: "owner" }),
    active_keys: z.number().int().openapi({ example: 3 }),
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
      const svc = c.get("svc");
      return ok(c, await dailyRequests(svc, c.get("principal").id, dayRange(svc.now(), from, to)));
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
    async (c) => ok(c, await overview(c.get("svc"), c.get("principal"))),
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
      const svc = c.get("svc");
      await getUserRecord(svc, id);
      return ok(c, await dailyRequests(svc, id, dayRange(svc.now(), from, to)));
    },
  );

  return app;
}
