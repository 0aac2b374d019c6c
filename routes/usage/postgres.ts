/** Setting up the Postgres analytics store: schema migrations and the copy of KV's history. */
import { z } from "@hono/zod-openapi";
import { initPostgres, migrateKvToPostgres } from "../../domain/usage/pg_migration.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonResponse } from "../schemas.ts";

const tags = ["Maintenance"];

const notConfigured = "409 when DATABASE_URL is not set; 503 when Postgres is unreachable.";

export function postgresRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/maintenance/db-init",
      tags,
      summary: "Apply the Postgres schema migrations not yet applied",
      description: `Versioned and idempotent: a second run applies nothing. ${notConfigured}`,
      responses: {
        200: jsonResponse(
          envelope(z.object({
            ok: z.literal(true),
            applied: z.array(z.number().int()).openapi({
              description: "Versions applied now.",
              example: [1],
            }),
            schema_version: z.number().int().openapi({ example: 1 }),
          })),
          "The schema is current.",
        ),
      },
    }),
    async (c) => {
      const { applied, version } = await initPostgres(c.get("svc"));
      return ok(c, { ok: true as const, applied, schema_version: version });
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/maintenance/migrate-kv-to-postgres",
      tags,
      summary: "Copy KV's request logs, audit trail and daily counters into Postgres",
      description: "Applies the schema first. Resumable and idempotent: each family is copied " +
        "from where the last run stopped, counters as absolute values, so running it twice " +
        `copies nothing twice. ${notConfigured}`,
      responses: {
        200: jsonResponse(
          envelope(z.object({
            ok: z.literal(true),
            schema_version: z.number().int().openapi({ example: 1 }),
            copied: z.object({
              request_logs: z.number().int().openapi({ example: 48_210 }),
              audit_events: z.number().int().openapi({ example: 3_917 }),
              usage_events: z.number().int().openapi({ example: 12_604 }),
              usage_daily: z.number().int().openapi({ example: 2_318 }),
              traffic_daily: z.number().int().openapi({ example: 217 }),
            }).openapi({ description: "Rows this run wrote, per table." }),
          })),
          "What was copied.",
        ),
      },
    }),
    async (c) => ok(c, { ok: true as const, ...(await migrateKvToPostgres(c.get("svc"))) }),
  );

  return app;
}
