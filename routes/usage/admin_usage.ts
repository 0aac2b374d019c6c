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
  interval_ms: z.number().openapi({ example: 5_000 }),
  allowed: z.number().openapi({ example: 15_840 }),
  skipped_throttled: z.number().openapi({ example: 372_115 }),
  skipped_disabled: z.number().openapi({ example: 2_306 }),
  evicted_entries: z.number().openapi({ example: 0 }),
  tracked_tenants: z.number().openapi({ example: 38 }),
}).openapi("ThresholdGateStatus");

/** This process's leases of quotas (domain/keys/quota_leases.ts), from memory. */
export const QuotaLeaseStatus = z.object({
  taken: z.number().openapi({ description: "Commits that took a block of quota.", example: 41 }),
  returned: z.number().openapi({ description: "Commits that gave units back.", example: 3 }),
  conflicts: z.number().openapi({
    description: "Lease commits that lost a race with another process and were retried.",
    example: 2,
  }),
  waited: z.number().openapi({
    description: "Asks a verify had to wait for (the others were made ahead of need).",
    example: 12,
  }),
  leases: z.number().openapi({ description: "Tenants with a lease now.", example: 9 }),
  held_units: z.number().openapi({
    description: "Units leased and not yet spent.",
    example: 5_210,
  }),
}).openapi("QuotaLeaseStatus");

/** The copy to Postgres (domain/usage/pg_sync.ts); null without DATABASE_URL. */
export const PostgresStatus = z.object({
  enabled: z.boolean(),
  writes: z.number().openapi({ example: 43_170 }),
  write_errors: z.number().openapi({ example: 0 }),
  last_write_at: z.string().nullable().openapi({ example: "2026-01-31T11:59:59.402Z" }),
  last_write_duration_ms: z.number().nullable().openapi({ example: 14 }),
  last_error: z.string().nullable().openapi({ example: null }),
  dropped_rows: z.number().openapi({
    description: "Log entries let go while Postgres was down (bounded buffer).",
    example: 0,
  }),
  logs_written: z.number().openapi({ example: 24_186 }),
  daily_rows_written: z.number().openapi({ example: 9_412 }),
  audit_events_copied: z.number().openapi({ example: 318 }),
  usage_items_copied: z.number().openapi({ example: 6_027 }),
  buffered: z.object({
    logs: z.number().openapi({ example: 4 }),
    daily_counters: z.number().openapi({ example: 12 }),
  }),
  max_buffered: z.number().openapi({ example: 100_000 }),
}).nullable().openapi("PostgresSyncStatus", {
  description: "The copy to Postgres; null without DATABASE_URL.",
});

const AggregatorStatus = z.object({
  generated_at: z.string().openapi({ example: "2026-01-31T12:00:00.000Z" }),
  aggregator: z.object({
    enabled: z.boolean(),
    flush_interval_ms: z.number().openapi({ example: 1_000 }),
    flush_max_entries: z.number().openapi({ example: 1_000 }),
    request_log_sample_rate: z.number().openapi({ example: 0.1 }),
    enqueued_deltas: z.number().openapi({ example: 1_204_518 }),
    dropped_when_disabled: z.number().openapi({ example: 0 }),
    sampled_logs: z.number().openapi({ example: 24_190 }),
    skipped_logs: z.number().openapi({ example: 210_455 }),
    dropped_logs: z.number().openapi({
      description: "Entries let go because writes failed for long (bounded buffer).",
      example: 0,
    }),
    flushes: z.number().openapi({ example: 86_340 }),
    flush_errors: z.number().openapi({ example: 0 }),
    last_flush_at: z.string().nullable().openapi({ example: "2026-01-31T11:59:59.400Z" }),
    last_flush_duration_ms: z.number().nullable().openapi({ example: 12 }),
    last_flush_bucket_count: z.number().openapi({ example: 37 }),
    last_flush_log_count: z.number().openapi({ example: 4 }),
    last_error: z.string().nullable().openapi({ example: null }),
    pending_buckets: z.number().openapi({ example: 9 }),
    pending_logs: z.number().openapi({ example: 2 }),
    prunes: z.number().openapi({ example: 1 }),
    last_prune_at: z.string().nullable().openapi({ example: "2026-01-31T03:17:00.000Z" }),
    last_prune_rows_deleted: z.number().openapi({ example: 18_342 }),
  }),
  threshold_gate: ThresholdGateStatus,
  quota_leases: QuotaLeaseStatus,
  postgres: PostgresStatus,
}).openapi("AggregatorStatus");

const day = (fields: Record<string, z.ZodNumber>) =>
  z.object({
    from: z.string().openapi({ example: "2026-01-29" }),
    to: z.string().openapi({ example: "2026-01-31" }),
    days: z.array(z.object({ date: z.string().openapi({ example: "2026-01-31" }), ...fields })),
    totals: z.object(fields),
  });

const MetricsDaily = day({
  requests: z.number().openapi({ example: 96_402 }),
  verifications: z.number().openapi({
    description: "Calls of POST /v1/keys/verify.",
    example: 80_311,
  }),
  errors: z.number().openapi({ description: "Answers with a 5xx status.", example: 29 }),
  client_errors: z.number().openapi({ description: "Answers with a 4xx status.", example: 412 }),
}).openapi("MetricsDaily", {
  example: {
    from: "2026-01-29",
    to: "2026-01-31",
    days: [
      {
        date: "2026-01-29",
        requests: 182_340,
        verifications: 151_020,
        errors: 41,
        client_errors: 802,
      },
      {
        date: "2026-01-30",
        requests: 190_115,
        verifications: 158_776,
        errors: 35,
        client_errors: 779,
      },
      {
        date: "2026-01-31",
        requests: 96_402,
        verifications: 80_311,
        errors: 29,
        client_errors: 412,
      },
    ],
    totals: { requests: 468_857, verifications: 390_107, errors: 105, client_errors: 1_993 },
  },
});

const BandwidthDaily = day({
  bytes_in: z.number().openapi({ example: 28_920_600 }),
  bytes_out: z.number().openapi({ example: 111_826_320 }),
}).openapi("BandwidthDaily", {
  example: {
    from: "2026-01-29",
    to: "2026-01-31",
    days: [
      { date: "2026-01-29", bytes_in: 54_702_000, bytes_out: 211_514_400 },
      { date: "2026-01-30", bytes_in: 57_034_500, bytes_out: 220_533_400 },
      { date: "2026-01-31", bytes_in: 28_920_600, bytes_out: 111_826_320 },
    ],
    totals: { bytes_in: 140_657_100, bytes_out: 543_874_120 },
  },
});

/** Field examples are today's figures (see the PlatformOverview example). */
const Summary = {
  requests: z.number().openapi({ example: 96_402 }),
  verifications: z.number().openapi({ example: 80_311 }),
  errors: z.number().openapi({ example: 29 }),
  bytes_in: z.number().openapi({ example: 28_920_600 }),
  bytes_out: z.number().openapi({ example: 111_826_320 }),
  error_rate: z.number().openapi({
    description: "5xx answers ÷ requests (0 without requests).",
    example: 0.0003,
  }),
};

const Overview = z.object({
  generated_at: z.string().openapi({ example: "2026-01-31T12:00:00.000Z" }),
  tenants: z.object({
    total: z.number().openapi({ example: 42 }),
    by_status: z.record(z.string(), z.number()).openapi({
      example: { active: 40, suspended: 2 },
    }),
    by_plan: z.record(z.string(), z.number()).openapi({
      example: { free: 30, pro: 9, growth: 3 },
    }),
  }),
  users: z.number().openapi({ example: 118 }),
  active_keys: z.number().openapi({ example: 156 }),
  today: z.object(Summary),
  period: z.object({
    month: z.string().openapi({ example: "2026-01" }),
    start: z.string().openapi({ example: "2026-01-01T00:00:00.000Z" }),
    end: z.string().openapi({ example: "2026-01-31T23:59:59.999Z" }),
    ...Summary,
  }).openapi({ description: "The calendar month asked for (UTC), to now for the current one." }),
}).openapi("PlatformOverview", {
  example: {
    generated_at: "2026-01-31T12:00:00.000Z",
    tenants: {
      total: 42,
      by_status: { active: 40, suspended: 2 },
      by_plan: { free: 30, pro: 9, growth: 3 },
    },
    users: 118,
    active_keys: 156,
    today: {
      requests: 96_402,
      verifications: 80_311,
      errors: 29,
      bytes_in: 28_920_600,
      bytes_out: 111_826_320,
      error_rate: 0.0003,
    },
    period: {
      month: "2026-01",
      start: "2026-01-01T00:00:00.000Z",
      end: "2026-01-31T23:59:59.999Z",
      requests: 5_480_213,
      verifications: 4_571_090,
      errors: 1_096,
      bytes_in: 1_644_063_900,
      bytes_out: 6_357_047_080,
      error_rate: 0.0002,
    },
  },
});

const tags = ["Usage"];

export function adminUsageRoutes(gate: ThresholdGate) {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/usage/aggregator-status",
      tags,
      summary:
        "The write-behind aggregator, the threshold gate and the quota leases of this process",
      description: "From memory only (no KV read): each process answers for itself.",
      responses: { 200: jsonResponse(envelope(AggregatorStatus), "Their state.") },
    }),
    (c) => {
      const svc = c.get("svc");
      return ok(c, {
        generated_at: new Date(svc.now()).toISOString(),
        aggregator: svc.aggregator.status(),
        threshold_gate: gate.stats,
        quota_leases: c.get("deps").quotas.stats(),
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
              example: "2026-01",
            }),
        }),
      },
      responses: { 200: jsonResponse(envelope(Overview), "The figures.") },
    }),
    async (c) => ok(c, await platformOverview(c.get("svc"), c.req.valid("query").period)),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/metrics/daily",
      tags,
      summary: "Requests, verifications, client and server errors per day, platform-wide",
      request: { query: DayRangeQuery },
      responses: { 200: jsonResponse(envelope(MetricsDaily), "Zero-filled daily points.") },
    }),
    async (c) => {
      const svc = c.get("svc");
      const { from, to } = c.req.valid("query");
      const range = dayRange(svc.now(), from, to);
      return ok(
        c,
        await dailyTraffic(svc, ["requests", "verifications", "errors", "client_errors"], range),
      );
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
      const svc = c.get("svc");
      const { from, to } = c.req.valid("query");
      return ok(
        c,
        await dailyTraffic(svc, ["bytes_in", "bytes_out"], dayRange(svc.now(), from, to)),
      );
    },
  );

  return app;
}
