/** Alerts (platform operations): the alerts the rules fired, acknowledging one, and the rules. */
import { z } from "@hono/zod-openapi";
import {
  acknowledgeAlert,
  ALERT_STATES,
  getAlert,
  listAlertRules,
  listAlerts,
} from "../../domain/platform/alerts.ts";
import { ALERT_RULE_NAMES } from "../../domain/platform/alert_rules.ts";
import { actorOf, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  envelope,
  IdParams,
  jsonResponse,
  listEnvelope,
  PageQuery,
  Timestamp,
} from "../schemas.ts";

const ID = "alr_01JQ3V5W7X9Y1Z3A5B7C9D1E3X";
const Rule = z.enum(ALERT_RULE_NAMES);

/** Three dead jobs in the webhooks queue, firing since noon, acknowledged two minutes later. */
const AlertSchema = z.object({
  id: z.string().openapi({ example: ID }),
  rule: z.string().openapi({ example: "dead_jobs" }),
  state: z.enum(ALERT_STATES).openapi({
    description: "`firing` while the rule's condition holds; `resolved` once it no longer does.",
    example: "firing",
  }),
  value: z.number().openapi({ description: "The value that fired the alert.", example: 3 }),
  threshold: z.number().openapi({ example: 1 }),
  link: z.string().openapi({
    description: "The resource the alert concerns: a path of this API.",
    example: "/v1/admin/system/queues/webhooks/jobs?status=dead",
  }),
  started_at: z.string().openapi({ example: "2026-03-01T12:00:00.000Z" }),
  resolved_at: z.string().nullable().openapi({ example: null }),
  acknowledged_at: z.string().nullable().openapi({ example: "2026-03-01T12:02:00.000Z" }),
  acknowledged_by: z.string().nullable().openapi({
    description: "The user or service token that acknowledged it.",
    example: "usr_01JQ3V5W7X9Y1Z3A5B7C9D1E3G",
  }),
}).openapi("Alert");

const AlertRuleSchema = z.object({
  name: Rule.openapi({ example: "dead_jobs" }),
  description: z.string().openapi({
    example: "Jobs with no attempts left (dead), over every queue.",
  }),
  unit: z.string().openapi({ example: "jobs" }),
  threshold: z.number().openapi({
    description: "The condition holds while the value is at or above this.",
    example: 1,
  }),
  duration_seconds: z.number().int().openapi({
    description: "How long the condition must hold before the rule fires.",
    example: 0,
  }),
  source: z.enum(["default", "override"]).openapi({
    description: "`override`: threshold or duration set by `STEWARD_ALERT_RULES` or the " +
      "configuration API (`alert_rules` in GET /v1/admin/config says which).",
    example: "default",
  }),
  state: z.enum(["ok", "pending", "firing"]).openapi({
    description: "`pending`: the condition holds, not yet for the duration.",
    example: "firing",
  }),
  pending_since: z.string().nullable().openapi({ example: "2026-03-01T12:00:00.000Z" }),
  last_value: z.number().nullable().openapi({
    description: "The last evaluation's value; null when the rule does not apply (Stripe or " +
      "backups off) or was never evaluated.",
    example: 3,
  }),
  last_evaluated_at: z.string().nullable().openapi({ example: "2026-03-01T12:04:00.000Z" }),
  alert_id: z.string().nullable().openapi({ description: "The firing alert.", example: ID }),
}).openapi("AlertRule");

const tags = ["Alerts"];

export function alertRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/alerts",
      tags,
      summary: "List alerts (newest first), with their total",
      request: {
        query: z.strictObject({
          ...PageQuery,
          state: z.enum(ALERT_STATES).optional(),
          rule: Rule.optional(),
          since: Timestamp.optional().openapi({ description: "Alerts started at or after this." }),
        }),
      },
      responses: { 200: jsonResponse(listEnvelope(AlertSchema), "A page of alerts.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page, state, rule, since } = c.req.valid("query");
      const found = await listAlerts(
        c.get("svc"),
        { state, rule, since: since === undefined ? undefined : Date.parse(since) },
        { limit, cursor, offset, page },
      );
      return okList(c, found, limit, (a) => a);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/alerts/{id}",
      tags,
      summary: "Get an alert",
      request: { params: IdParams("alr") },
      responses: { 200: jsonResponse(envelope(AlertSchema), "The alert.") },
    }),
    async (c) => okRecord(c, await getAlert(c.get("svc"), c.req.valid("param").id), (a) => a),
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/system/alerts/{id}/acknowledge",
      tags,
      summary: "Acknowledge an alert",
      description: "Records who acknowledged it and when; acknowledging it again changes nothing.",
      request: { params: IdParams("alr") },
      responses: { 200: jsonResponse(envelope(AlertSchema), "The acknowledged alert.") },
    }),
    async (c) =>
      okRecord(
        c,
        await acknowledgeAlert(c.get("svc"), actorOf(c), c.req.valid("param").id),
        (a) => a,
      ),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/alert-rules",
      tags,
      summary: "List the alert rules with their thresholds, durations and current state",
      responses: { 200: jsonResponse(envelope(z.array(AlertRuleSchema)), "Every rule.") },
    }),
    async (c) => ok(c, await listAlertRules(c.get("svc"))),
  );

  return app;
}
