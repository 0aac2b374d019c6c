/** Infrastructure health for operators: every component's status and its latency or age. */
import { z } from "@hono/zod-openapi";
import { COMPONENT_STATUSES, infraHealth } from "../../domain/platform/infra_health.ts";
import { JOB_STATUSES } from "../../domain/jobs/jobs.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonResponse } from "../schemas.ts";

const Status = z.enum(COMPONENT_STATUSES).openapi({
  description: "`ok`; `degraded`: working with a problem; `down`: not working; `off`: not " +
    "configured (left out of the overall status).",
  example: "ok",
});
const Overall = z.enum(["ok", "degraded", "down"]).openapi({
  description: "The worst of the components' statuses, `off` left out.",
  example: "degraded",
});
const at = (example: string | null) => z.string().nullable().openapi({ example });
const ms = (example: number | null, description?: string) =>
  z.number().nullable().openapi({ example, ...(description ? { description } : {}) });
const int = (example: number) => z.number().int().openapi({ example });

const Kv = z.object({
  status: Status,
  latency_ms: z.number().openapi({
    description: "A probe key written, read back and deleted.",
    example: 0.84,
  }),
  error: z.string().nullable().openapi({ example: null }),
  size: z.object({
    file_bytes: int(184_549_376),
    wal_bytes: int(4_194_304),
    total_bytes: int(188_743_680),
  }).nullable().openapi({
    description: "The store's file and its write-ahead log (STEWARD_KV_PATH); null for a store " +
      "in memory or remote.",
    example: { file_bytes: 184_549_376, wal_bytes: 4_194_304, total_bytes: 188_743_680 },
  }),
});

const Postgres = z.object({
  status: Status,
  latency_ms: ms(1.92, "The ping's round trip; null when no ping is wired.").optional(),
  error: z.string().nullable().optional().openapi({ example: null }),
  last_write_at: at("2026-01-31T11:59:59.402Z").optional(),
  lag_ms: ms(598, "Since the copy last wrote.").optional(),
  write_errors: int(0).optional(),
  dropped_rows: int(0).optional(),
  buffered: int(16).optional(),
  max_buffered: int(100_000).optional(),
}).openapi({ description: "The Postgres copy; only `status: off` without DATABASE_URL." });

const Vault = z.object({
  status: Status,
  sealed: z.boolean().openapi({ example: false }),
  key_id: at("3f9a1c2e7b40"),
  source: z.enum(["env", "file", "memory"]).nullable().openapi({ example: "env" }),
  previous_key_id: at(null),
});

const Queue = z.object({
  name: z.string().openapi({ example: "webhooks" }),
  status: Status,
  depth: int(45).openapi({ description: "Jobs waiting: pending and failed (due for a retry)." }),
  counts: z.object(
    Object.fromEntries(JOB_STATUSES.map((s) => [s, int(s === "succeeded" ? 18_250 : 1)])),
  ).openapi({
    example: { pending: 42, running: 0, succeeded: 18_250, failed: 3, dead: 1 },
  }),
  oldest_due_age_ms: ms(897_000),
  paused: z.boolean().openapi({ example: true }),
  paused_at: at("2026-01-31T11:45:00.000Z"),
  dead: int(1),
});

const Cron = z.object({
  name: z.string().openapi({ example: "prune-jobs" }),
  schedule: z.string().openapi({ example: "37 3 * * *" }),
  status: Status,
  last_run: z.object({
    started_at: z.string().openapi({ example: "2026-01-31T03:37:00.012Z" }),
    age_ms: int(30_180_000),
    duration_ms: int(412),
    outcome: z.enum(["succeeded", "failed"]).openapi({ example: "succeeded" }),
    error: at(null),
  }).nullable().openapi({ description: "Null before its first run." }),
  next_run_at: at("2026-02-01T03:37:00.000Z").openapi({
    description: "From the schedule (UTC); null when the task is off.",
  }),
});

const Aggregator = z.object({
  status: Status,
  last_flush_at: at("2026-01-31T11:59:59.400Z"),
  flush_lag_ms: ms(600),
  pending_buckets: int(9),
  pending_logs: int(2),
  flush_errors: int(0),
  dropped_logs: int(0),
  last_error: at(null),
});

const Webhooks = z.object({
  status: Status,
  pending_deliveries: int(12),
  retrying_deliveries: int(3),
  dead_deliveries: int(0),
  oldest_due_age_ms: ms(null),
  failing_endpoints: int(1).openapi({
    description: "Endpoints whose every attempt has failed since `oldest_failing_age_ms`.",
  }),
  oldest_failing_age_ms: ms(5_400_000),
  disabled_endpoints: int(2),
  tenants_scanned: int(42),
  truncated: z.boolean().openapi({
    description: "True when more tenants exist than were scanned for endpoints.",
    example: false,
  }),
});

const Stripe = z.object({
  status: Status,
  last_event_at: at("2026-01-31T11:58:12.000Z"),
  last_event_age_ms: ms(108_000),
});

const Email = z.object({
  status: Status,
  mode: z.enum(["smtp", "captured"]).openapi({
    description: "`captured`: no SMTP server; mail stays in the development outbox (`off`).",
    example: "smtp",
  }),
  last_sent_at: at("2026-01-31T11:52:40.000Z"),
  last_sent_age_ms: ms(439_000),
  recent_failed: int(0),
  recent_queued: int(1),
});

export const InfraHealth = z.object({
  status: Overall,
  generated_at: z.string().openapi({ example: "2026-01-31T12:00:00.000Z" }),
  components: z.object({
    kv: Kv,
    postgres: Postgres,
    vault: Vault,
    queues: z.object({ status: Status, queues: z.array(Queue) }),
    crons: z.object({ status: Status, tasks: z.array(Cron) }),
    aggregator: Aggregator,
    webhooks: Webhooks,
    stripe: Stripe,
    email: Email,
  }),
  alerts: z.object({
    firing: int(1),
    items: z.array(z.object({
      id: z.string().openapi({ example: "alr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
      rule: z.string().openapi({ example: "dead_jobs" }),
      value: z.number().openapi({ example: 3 }),
      threshold: z.number().openapi({ example: 1 }),
      link: z.string().openapi({ example: "/v1/admin/system/queues" }),
      started_at: z.string().openapi({ example: "2026-01-31T11:40:00.000Z" }),
      acknowledged_at: at(null),
    })),
  }).openapi({ description: "The firing alerts (GET /v1/admin/system/alerts has them all)." }),
}).openapi("InfraHealth");

export function infraHealthRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/health",
      tags: ["Health"],
      summary: "Every infrastructure component's status, with its latency or age",
      description: "KV (a read/write probe, the store's size), Postgres, the vault, the job " +
        "queues, each cron (last and next run), the usage aggregator (this process), webhooks, " +
        "Stripe and email. `/health` stays the cheap public summary.",
      responses: { 200: jsonResponse(envelope(InfraHealth), "The report.") },
    }),
    async (c) => {
      const { deps } = c.var;
      return ok(
        c,
        await infraHealth(deps.svc, {
          kvPath: deps.config.STEWARD_KV_PATH,
          probes: deps.probes,
        }),
      );
    },
  );

  return app;
}
