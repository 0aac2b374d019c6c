/** Platform operations on usage and traffic: the aggregator's state and daily traffic. */
import { z } from "@hono/zod-openapi";
import { dayRange } from "../../domain/usage/activity.ts";
import type { ThresholdGate } from "../../domain/keys/threshold_gate.ts";
import { dailyTraffic, platformOverview } from "../../domain/usage/traffic.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { DayRangeQuery, envelope, jsonResponse } from "../schemas.ts";

/** The threshold gate's counters (domain/keys/threshold_gate.ts), from memory. */
export const ThresholdGateStatus = z.object({
  enabled: z.boolean(),
  interval_ms: z.number(),
  allowed: z.number(),
  skipped_throttled: z.number(),
  skipped_disabled: z.number(),
  evicted_entries: z.number(),
  tracked_tenants: z.number(),
}).openapi("ThresholdGateStatus");

/** The copy to Postgres (domain/usage/pg_sync.ts); null without DATABASE_URL. */
export const PostgresStatus = z.object({
  enabled: z.boolean(),
  writes: z.number(),
  write_errors: z.number(),
  last_write_at: z.string().nullable(),
  last_write_duration_ms: z.number().nullable(),
  last_error: z.string().nullable(),
  dropped_rows: z.number().openapi({
    description: "Log entries let go while Postgres was down (bounded buffer).",
  }),
  logs_written: z.number(),
  daily_rows_written: z.number(),
  audit_events_copied: z.number(),
  usage_items_copied: z.number(),
  buffered: z.object({ logs: z.number(), daily_counters: z.number() }),
  max_buffered: z.number(),
}).nullable().openapi("PostgresSyncStatus", {
  description: "The copy to Postgres; null without DATABASE_URL.",
});

const AggregatorStatus = z.object({
  generated_at: z.string(),
  aggregator: z.object({
    enabled: z.boolean(),
    flush_interval_ms: z.number(),
    flush_max_entries: z.number(),
    request_log_sample_rate: z.number(),
    enqueued_deltas: z.number(),
    dropped_when_disabled: z.number(),
    sampled_logs: z.number(),
    skipped_logs: z.number(),
    dropped_logs: z.number().openapi({
      description: "Entries let go because writes failed for long (bounded buffer).",
    }),
    flushes: z.number(),
    flush_errors: z.number(),
    last_flush_at: z.string().nullable(),
    last_flush_duration_ms: z.number().nullable(),
    last_flush_bucket_count: z.number(),
    last_flush_log_count: z.number(),
    last_error: z.string().nullable(),
    pending_buckets: z.number(),
    pending_logs: z.number(),
    prunes: z.number(),
    last_prune_at: z.string().nullable(),
    last_prune_rows_deleted: z.number(),
  }),
  threshold_gate: ThresholdGateStatus,
  postgres: PostgresStatus,
}).openapi("AggregatorStatus");

const day = (fields: Record<string, z.ZodNumber>) =>
  z.object({
    from: z.string(),
    to: z.string(),
    days: z.array(z.object({ date: z.string(), ...fields })),
    totals: z.object(fields),
  });

const MetricsDaily = day({
  requests: z.number(),
  verifications: z.number().openapi({ description: "Calls of POST /v1/keys/verify." }),
  errors: z.number().openapi({ description: "Answers with a 5xx status." }),
}).openapi("MetricsDaily");

const BandwidthDaily = day({ bytes_in: z.number(), bytes_out: z.number() })
  .openapi("BandwidthDaily");

const Summary = {
  requests: z.number(),
  verifications: z.number(),
  errors: z.number(),
  bytes_in: z.number(),
  bytes_out: z.number(),
  error_rate: z.number().openapi({ description: "5xx answers ÷ requests (0 without requests)." }),
};

const Overview = z.object({
  generated_at: z.string(),
  tenants: z.object({
    total: z.number(),
    by_status: z.record(z.string(), z.number()),
    by_plan: z.record(z.string(), z.number()),
  }),
  users: z.number(),
  active_keys: z.number(),
  today: z.object(Summary),
  period: z.object({ month: z.string(), start: z.string(), end: z.string(), ...Summary })
    .openapi({ description: "The calendar month asked for (UTC), to now for the current one." }),
}).openapi("PlatformOverview");

const tags = ["Usage"];

export function adminUsageRoutes(gate: ThresholdGate) {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/usage/aggregator-status",
      tags,
      summary: "The write-behind aggregator and the threshold gate of this process",
      description: "From memory only (no KV read): each process answers for itself.",
      responses: { 200: jsonResponse(envelope(AggregatorStatus), "Their state.") },
    }),
    (c) => {
      const svc = c.var.svc;
      return ok(c, {
        generated_at: new Date(svc.now()).toISOString(),
        aggregator: svc.aggregator.status(),
        threshold_gate: gate.stats,
        postgres: svc.pg?.status() ?? null,
      });
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/overview",
      tags,
      summary: "The platform at a glance: tenants, users, keys and traffic",
      description: "Tenants by status and plan (deleted ones left out), users, active keys, and " +
        "traffic today and this month, exact in this process.",
      request: {
        query: z.strictObject({
          period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "a month as YYYY-MM").optional()
            .openapi({
              description: "The month of `period` figures; default the current one (UTC).",
            }),
        }),
      },
      responses: { 200: jsonResponse(envelope(Overview), "The figures.") },
    }),
    async (c) => ok(c, await platformOverview(c.var.svc, c.req.valid("query").period)),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/metrics/daily",
      tags,
      summary: "Requests, verifications and server errors per day, platform-wide",
      request: { query: DayRangeQuery },
      responses: { 200: jsonResponse(envelope(MetricsDaily), "Zero-filled daily points.") },
    }),
    async (c) => {
      const svc = c.var.svc;
      const { from, to } = c.req.valid("query");
      const range = dayRange(svc.now(), from, to);
      return ok(c, await dailyTraffic(svc, ["requests", "verifications", "errors"], range));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/bandwidth/daily",
      tags,
      summary: "Bytes received and sent per day, platform-wide",
      request: { query: DayRangeQuery },
      responses: { 200: jsonResponse(envelope(BandwidthDaily), "Zero-filled daily points.") },
    }),
    async (c) => {
      const svc = c.var.svc;
      const { from, to } = c.req.valid("query");
      return ok(
        c,
        await dailyTraffic(svc, ["bytes_in", "bytes_out"], dayRange(svc.now(), from, to)),
      );
    },
  );

  return app;
}
