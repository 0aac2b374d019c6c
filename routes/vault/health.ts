/** The vault's health for operators: keys, rotation, backups and what needs doing. */
import { z } from "@hono/zod-openapi";
import { vaultHealth } from "../../domain/platform/vault_health.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonResponse, orNull } from "../schemas.ts";

const Count = (example: number) => z.number().int().openapi({ example });
const At = (example: string) => z.string().openapi({ example });

const VaultHealth = z.object({
  sealed: z.boolean().openapi({ example: false }),
  master_key: z.object({
    id: orNull(z.string()).openapi({ example: "3f9a1c2e7b40" }),
    source: orNull(z.enum(["env", "file", "memory"])).openapi({ example: "env" }),
  }),
  previous_key: orNull(z.object({
    id: z.string().openapi({ example: "9b1d04c7a2e8" }),
    needed: z.boolean().openapi({
      description: "Whether a data key is still wrapped by it (restart to re-wrap).",
      example: false,
    }),
  })).openapi({ description: "STEWARD_MASTER_KEY_PREVIOUS, when set.", example: null }),
  data_keys: z.object({
    owners: Count(1_001).openapi({ description: "The platform and each tenant with a key." }),
    keys: Count(1_001),
    by_age: z.object({
      under_30_days: Count(1_001),
      days_30_to_90: Count(0),
      over_90_days: Count(0),
    }),
    oldest_created_at: orNull(z.string()).openapi({ example: "2026-01-05T03:00:00.000Z" }),
    wrapped_by_other_master: Count(0),
  }),
  secrets: Count(10_010),
  last_rotation: orNull(z.object({
    at: At("2026-01-05T03:04:11.000Z"),
    job_id: At("job_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"),
    scope: z.enum(["tenant", "all"]).openapi({ example: "all" }),
  })),
  last_backup: orNull(z.object({
    at: At("2026-01-31T02:23:09.000Z"),
    age_seconds: Count(34_611),
  })),
  warnings: z.array(z.string()).openapi({
    description: "What needs doing: no backup in 48 hours, a data key older than " +
      "STEWARD_DATA_KEY_MAX_AGE_DAYS, a master key from a file in production, a previous " +
      "master key still needed.",
    example: [],
  }),
}).openapi("VaultHealth");

export function vaultHealthRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/vault/health",
      tags: ["Vault"],
      summary: "The vault's health: keys, rotation, backups, warnings",
      responses: { 200: jsonResponse(envelope(VaultHealth), "The vault's health.") },
    }),
    async (c) => {
      const { config } = c.get("deps");
      return ok(
        c,
        await vaultHealth(c.get("svc"), {
          maxDataKeyAgeDays: config.STEWARD_DATA_KEY_MAX_AGE_DAYS,
          production: config.STEWARD_ENV === "production",
        }),
      );
    },
  );

  return app;
}
