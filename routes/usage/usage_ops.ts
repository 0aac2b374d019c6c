/**
 * Operating the usage pipeline: the stream of what was counted (pages, or a live SSE tail), the
 * pipeline's diagnostics, the platform's running cost, and the daily rollups.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { dayRange } from "../../domain/usage/activity.ts";
import type { CostReports } from "../../domain/usage/cost.ts";
import { usageDiagnostics } from "../../domain/platform/usage_diagnostics.ts";
import { PostgresStatus, ThresholdGateStatus } from "./admin_usage.ts";
import { badRequest } from "../../domain/shared/errors.ts";
import { listRollups } from "../../domain/usage/rollups.ts";
import type { ThresholdGate } from "../../domain/keys/threshold_gate.ts";
import { METRIC_PATTERN } from "../../domain/usage/usage.ts";
import {
  followUsageStream,
  HEARTBEAT_POLLS,
  readUsageStream,
  SETTLE_MS,
  type StreamQuery,
  type UsageItem,
} from "../../domain/usage/stream.ts";
import type { AppEnv } from "../context.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  DayRangeQuery,
  envelope,
  idOf,
  jsonResponse,
  listEnvelope,
  PageQuery,
  Timestamp,
} from "../schemas.ts";
import { monthOf } from "../../domain/shared/time.ts";

const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

const UsageItemSchema = z.object({
  id: z.string().openapi({
    description: "Time-ordered: the cursor (and SSE `id:`).",
    example: "usg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  }),
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  key_id: z.string().nullable().openapi({ example: null }),
  metric: z.string().openapi({ example: "api_calls" }),
  quantity: z.number().openapi({ example: 25 }),
  timestamp: z.string().openapi({
    description: "The event's timestamp; for a verify delta, its flush (within the delta's day).",
    example: "2026-01-31T11:55:00.000Z",
  }),
  source: z.enum(["event", "verify"]).openapi({
    description: "`event`: an accepted usage event; `verify`: a key's verifications of a day, " +
      "as one flush wrote them.",
    example: "event",
  }),
  event_id: z.string().nullable().openapi({ example: "acme-20260131-000042" }),
}).openapi("UsageItem");

/** The live tail as a client reads it: the opening, then `usage` events (and heartbeats). */
const SSE_EXAMPLE = "retry: 1000\n: connected\n\n" +
  [
    {
      id: "usg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      tenant_id: TENANT_ID,
      key_id: null,
      metric: "api_calls",
      quantity: 25,
      timestamp: "2026-01-31T11:55:00.000Z",
      source: "event",
      event_id: "acme-20260131-000042",
    },
    {
      id: "usg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2B",
      tenant_id: TENANT_ID,
      key_id: "key_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      metric: "verifications",
      quantity: 120,
      timestamp: "2026-01-31T11:55:10.000Z",
      source: "verify",
      event_id: null,
    },
  ].map((item) => `id: ${item.id}\nevent: usage\ndata: ${JSON.stringify(item)}\n\n`).join("") +
  ": heartbeat\n\n";

const UsageCursor = idOf("usg");

const StreamQuerySchema = z.strictObject({
  limit: PageQuery.limit,
  cursor: UsageCursor.optional().openapi({
    description: "The last item seen (`pagination.next_cursor`): items after it.",
  }),
  from: Timestamp.optional().openapi({
    description: "Items counted from this instant (instead of a cursor).",
  }),
  tenant_id: z.string().max(64).optional(),
  metric: z.string().regex(METRIC_PATTERN, "[a-z][a-z0-9_.]{0,63}").optional(),
});

const Drifting = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  scope: z.enum(["day", "period"]),
  label: z.string().openapi({
    description: "The day or quota period compared.",
    example: "2026-01-31",
  }),
  per_key: z.number().openapi({
    description: "The tenant's keys' verification units, summed.",
    example: 7_116,
  }),
  per_tenant: z.number().openapi({
    description: "The tenant's own verifications counter.",
    example: 7_118,
  }),
  difference: z.number().openapi({ description: "per_tenant − per_key.", example: 2 }),
});

const Diagnostics = z.object({
  generated_at: z.string().openapi({ example: "2026-01-31T12:00:00.000Z" }),
  pipeline: z.object({
    enabled: z.boolean(),
    flush_interval_ms: z.number().openapi({ example: 1_000 }),
    last_flush_at: z.string().nullable().openapi({ example: "2026-01-31T11:59:59.400Z" }),
    flush_lag_ms: z.number().nullable().openapi({
      description: "Now − the last flush of this process (null before the first).",
      example: 600,
    }),
    pending_buckets: z.number().openapi({ example: 9 }),
    pending_logs: z.number().openapi({ example: 2 }),
    flushes: z.number().openapi({ example: 86_340 }),
    flush_errors: z.number().openapi({ example: 0 }),
    last_error: z.string().nullable().openapi({ example: null }),
    dropped_logs: z.number().openapi({ example: 0 }),
  }),
  threshold_gate: ThresholdGateStatus,
  drift: z.object({
    day: z.string().openapi({ example: "2026-01-31" }),
    checked_tenants: z.number().openapi({ example: 42 }),
    more_tenants: z.boolean().openapi({
      description: "Tenants were left unchecked (bounded).",
      example: false,
    }),
    drifting_tenants: z.array(Drifting),
  }),
  maintenance: z.array(z.object({
    task: z.string().openapi({ example: "rollup-daily" }),
    schedule: z.string().openapi({ example: "20 0 * * *" }),
    last_run: z.object({
      started_at: z.string().openapi({ example: "2026-01-31T00:20:00.000Z" }),
      duration_ms: z.number().openapi({ example: 842 }),
      result: z.record(z.string(), z.number()).nullable().openapi({
        example: { days_rolled_up: 1 },
      }),
      error: z.string().nullable().openapi({ example: null }),
    }).nullable(),
  })),
  postgres: PostgresStatus,
}).openapi("UsageDiagnostics");

const Money = z.number().openapi({ description: "In `currency`, to the millionth." });

const CostSchema = z.object({
  period: z.string().openapi({ example: "2026-01" }),
  cost_source: z.enum(["live", "modeled"]).openapi({ example: "modeled" }),
  cost_confidence: z.enum(["high", "medium", "low"]).openapi({
    description: "high: the live source; medium: modeled with storage measured this month; " +
      "low: modeled with storage unknown or from another month.",
    example: "medium",
  }),
  fetched_at: z.string().openapi({ example: "2026-01-31T11:59:18.000Z" }),
  cache_age_ms: z.number().openapi({ example: 42_000 }),
  // Each part's example differs, and total_cost is their sum.
  cost: z.object({
    requests_cost: Money.openapi({ example: 10.960426 }),
    kv_read_cost: Money.openapi({ example: 18.402117 }),
    kv_write_cost: Money.openapi({ example: 5.77635 }),
    storage_cost: Money.openapi({ example: 0.5625 }),
    total_cost: Money.openapi({ example: 35.701393 }),
    currency: z.string().openapi({ example: "USD" }),
  }),
  fallback_reason: z.string().nullable().openapi({
    description: "Why the live source was not used, when it is configured.",
    example: null,
  }),
  usage: z.object({
    requests: z.number().openapi({ example: 5_480_213 }),
    kv_reads: z.number().openapi({ description: "KV read units (4 KiB).", example: 18_402_117 }),
    kv_writes: z.number().openapi({ description: "KV write units (1 KiB).", example: 2_310_540 }),
    stored_bytes: z.number().nullable().openapi({ example: 805_306_368 }),
  }),
  unit_prices: z.object({
    requests: z.number().openapi({ description: "Per million requests.", example: 2 }),
    kv_reads: z.number().openapi({ description: "Per million read units.", example: 1 }),
    kv_writes: z.number().openapi({ description: "Per million write units.", example: 2.5 }),
    storage_gib_month: z.number().openapi({ example: 0.75 }),
    currency: z.string().openapi({ example: "USD" }),
  }),
}).openapi("PlatformCost");

const Traffic = z.object({
  requests: z.number().openapi({ example: 190_115 }),
  errors: z.number().openapi({ example: 35 }),
  bytes_in: z.number().openapi({ example: 57_034_500 }),
  bytes_out: z.number().openapi({ example: 220_533_400 }),
  verifications: z.number().openapi({ example: 158_776 }),
  kv_reads: z.number().openapi({ example: 612_400 }),
  kv_writes: z.number().openapi({ example: 80_950 }),
});

const Rollups = z.object({
  from: z.string().openapi({ example: "2026-01-29" }),
  to: z.string().openapi({ example: "2026-01-31" }),
  days: z.array(z.object({
    day: z.string().openapi({ example: "2026-01-30" }),
    traffic: Traffic,
    usage: z.record(z.string(), z.number()).openapi({
      example: { api_calls: 48_200, verifications: 158_776 },
    }),
    tenant_count: z.number().openapi({ example: 38 }),
  })),
}).openapi("UsageRollups", {
  example: {
    from: "2026-01-29",
    to: "2026-01-31",
    days: [
      {
        day: "2026-01-29",
        traffic: {
          requests: 182_340,
          errors: 41,
          bytes_in: 54_702_000,
          bytes_out: 211_514_400,
          verifications: 151_020,
          kv_reads: 588_910,
          kv_writes: 77_204,
        },
        usage: { api_calls: 45_930, verifications: 151_020 },
        tenant_count: 37,
      },
      {
        day: "2026-01-30",
        traffic: {
          requests: 190_115,
          errors: 35,
          bytes_in: 57_034_500,
          bytes_out: 220_533_400,
          verifications: 158_776,
          kv_reads: 612_400,
          kv_writes: 80_950,
        },
        usage: { api_calls: 48_200, verifications: 158_776 },
        tenant_count: 38,
      },
    ],
  },
});

const tags = ["Usage"];
const encoder = new TextEncoder();

const frame = (item: UsageItem) =>
  `id: ${item.id}\nevent: usage\ndata: ${JSON.stringify(item)}\n\n`;

/**
 * The live tail as Server-Sent Events: items as they settle, a comment as heartbeat. It ends
 * when the request is aborted or the body cancelled (the client left); cancelling waits for
 * the tail's last read, so nothing of it outlives the answer.
 */
function tail(c: Context<AppEnv>, q: StreamQuery, pollMs: number) {
  const left = new AbortController();
  const signal = AbortSignal.any([c.req.raw.signal, left.signal]);
  const events = followUsageStream(c.get("svc"), q, { pollMs, signal });
  let reading: Promise<void> = Promise.resolve();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(`retry: ${Math.max(1_000, pollMs)}\n: connected\n\n`));
    },
    pull(controller) {
      reading = (async () => {
        const next = await events.next();
        if (left.signal.aborted) return;
        if (next.done) return controller.close();
        const text = next.value === null ? ": heartbeat\n\n" : next.value.map(frame).join("");
        controller.enqueue(encoder.encode(text));
      })();
      return reading;
    },
    async cancel() {
      left.abort();
      await reading.catch(() => {});
      await events.return(undefined);
    },
  });
  return c.body(body, 200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "X-Accel-Buffering": "no",
  });
}

export function usageOpsRoutes(gate: ThresholdGate, costs: CostReports, pollMs: number) {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/usage/stream",
      tags,
      summary: "What was counted, in order: accepted usage events and flushed verifications",
      description: "Items of the last 7 days, oldest first, after `cursor` (or from `from`); " +
        "without either, the latest `limit`. `pagination.next_cursor` is where to resume, " +
        "also when `has_more` is false. Items show once " + `${SETTLE_MS / 1000}` +
        " s old, so a cursor never passes an item still being written. A key's " +
        "verifications appear as they are flushed (every ten flush intervals).\n\n" +
        "With `Accept: text/event-stream`, a live tail: each item is a `usage` event whose " +
        "`id:` is its cursor (a reconnecting client's `Last-Event-ID` resumes after it), and a " +
        `comment is sent as heartbeat after ${HEARTBEAT_POLLS} polls without an item.`,
      request: { query: StreamQuerySchema },
      responses: {
        200: {
          description: "A page of items, or the live tail.",
          content: {
            "application/json": { schema: listEnvelope(UsageItemSchema) },
            "text/event-stream": { schema: z.string(), example: SSE_EXAMPLE },
          },
        },
      },
    }),
    async (c) => {
      const { limit, cursor, from, tenant_id, metric } = c.req.valid("query");
      if (cursor && from) {
        throw badRequest("give cursor or from, not both", [{
          path: ["query", "from"],
          message: "not with cursor",
        }]);
      }
      const q: StreamQuery = {
        limit,
        cursor,
        from: from ? Date.parse(from) : undefined,
        tenant_id,
        metric,
      };
      if (c.req.header("Accept")?.includes("text/event-stream")) {
        const resumeAt = c.req.header("Last-Event-ID");
        if (resumeAt !== undefined) {
          if (!UsageCursor.safeParse(resumeAt).success) {
            throw badRequest("Last-Event-ID is not an item id", [{
              path: ["header", "last-event-id"],
              message: "must be a usg_ id",
            }]);
          }
          Object.assign(q, { cursor: resumeAt, from: undefined });
        }
        // deno-lint-ignore no-explicit-any
        return tail(c, q, pollMs) as any;
      }
      const page = await readUsageStream(c.get("svc"), q);
      return c.json({
        success: true as const,
        data: page.items,
        meta: { request_id: c.get("requestId") },
        pagination: { limit, next_cursor: page.next_cursor, has_more: page.has_more },
      }, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/usage/diagnostics",
      tags,
      summary: "The usage pipeline's health: flush lag, counter drift, maintenance runs",
      description: "Flushes, pending work and the threshold gate are this process's. Drift " +
        "compares each tenant's keys' verification units with its own counters, today and in " +
        "its quota period (persisted plus pending here: 0 on a healthy pipeline; another " +
        "process's unflushed deltas show until they are written). Every maintenance task is " +
        "listed with its last run.",
      request: {
        query: z.strictObject({
          drift_tenants: z.coerce.number().int().min(1).max(1_000).default(50).openapi({
            description: "How many tenants the drift check reads (in id order).",
          }),
        }),
      },
      responses: { 200: jsonResponse(envelope(Diagnostics), "The diagnostics.") },
    }),
    async (c) =>
      ok(
        c,
        await usageDiagnostics(c.get("svc"), gate.stats, c.req.valid("query").drift_tenants),
      ),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/cost",
      tags,
      summary: "What running Steward costs in a month, live or modeled",
      description: "From `COST_LIVE_URL` when it is set and answers (`live`), else modeled from " +
        "the requests Steward answered, the KV read and write units it used and the size of " +
        "its KV file, at the configured unit prices. Kept 10 minutes per period " +
        "(`cache_age_ms`); a fallback to the model says why in `fallback_reason`.",
      request: {
        query: z.strictObject({
          period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "a month as YYYY-MM").optional()
            .openapi({ description: "Default: the current month (UTC)." }),
        }),
      },
      responses: { 200: jsonResponse(envelope(CostSchema), "The month's cost.") },
    }),
    async (c) => {
      const svc = c.get("svc");
      const period = c.req.valid("query").period ?? monthOf(svc.now());
      return ok(c, await costs.report(period));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/usage/rollups",
      tags,
      summary: "Days rolled up: platform traffic and usage totals per day",
      description: "Written by the daily `rollup-daily` task for each finished day; days " +
        "without a rollup are left out.",
      request: { query: DayRangeQuery },
      responses: { 200: jsonResponse(envelope(Rollups), "The rolled-up days in range.") },
    }),
    async (c) => {
      const svc = c.get("svc");
      const { from, to } = c.req.valid("query");
      const range = dayRange(svc.now(), from, to);
      return ok(c, {
        from: new Date(range.from).toISOString().slice(0, 10),
        to: new Date(range.to).toISOString().slice(0, 10),
        days: await listRollups(svc, range),
      });
    },
  );

  return app;
}
