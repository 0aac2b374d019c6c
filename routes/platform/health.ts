/** Liveness, readiness (KV read/write probe, Postgres when configured) and a combined report. */
import { z } from "@hono/zod-openapi";
import { AppError } from "../../domain/shared/errors.ts";
import { kvProbe, runChecks, vaultProbe } from "../../domain/platform/health.ts";
import type { VaultState } from "../../domain/shared/services.ts";
import type { AppDeps } from "../context.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, ErrorSchema, jsonResponse } from "../schemas.ts";

const Check = z.object({
  status: z.enum(["ok", "failing"]),
  latency_ms: z.number().openapi({ example: 0.42 }),
  error: z.string().optional().openapi({ example: "read did not return the write" }),
});
const Checks = z.record(z.string(), Check).openapi({
  example: {
    kv: { status: "ok", latency_ms: 0.42 },
    vault: { status: "ok", latency_ms: 0.01 },
    postgres: { status: "ok", latency_ms: 1.87 },
  },
});

const VaultReport = z.object({
  state: z.enum(["sealed", "unsealed"]).openapi({ example: "unsealed" }),
  key_id: z.string().nullable().openapi({
    description: "A short public name of the master key.",
    example: "3f9a1c2e7b40",
  }),
  source: z.enum(["env", "file", "memory"]).nullable().openapi({ example: "env" }),
});

const check = (deps: AppDeps) =>
  runChecks([kvProbe(deps.svc.kv), vaultProbe(deps.svc.vault.state), ...(deps.probes ?? [])]);

const vaultReport = ({ sealed, key_id, source }: VaultState) => ({
  state: sealed ? "sealed" as const : "unsealed" as const,
  key_id,
  source,
});

export function healthRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/health/live",
      tags: ["Health"],
      summary: "The process is up",
      responses: { 200: jsonResponse(envelope(z.object({ status: z.literal("ok") })), "Alive.") },
    }),
    (c) => ok(c, { status: "ok" as const }),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/health/ready",
      tags: ["Health"],
      summary: "Dependencies answer (KV, the vault; Postgres when configured)",
      responses: {
        200: jsonResponse(
          envelope(z.object({ status: z.literal("ready"), checks: Checks, vault: VaultReport })),
          "Ready.",
        ),
        503: jsonResponse(ErrorSchema, "A dependency is failing; `details` holds each check."),
      },
    }),
    async (c) => {
      const { checks, failing } = await check(c.get("deps"));
      if (failing.length) {
        throw new AppError("UNAVAILABLE", `not ready: ${failing.join(", ")} failing`, checks, 5);
      }
      return ok(c, {
        status: "ready" as const,
        checks,
        vault: vaultReport(c.get("svc").vault.state),
      }, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/health",
      tags: ["Health"],
      summary: "Version, uptime and each dependency's latency",
      responses: {
        200: jsonResponse(
          envelope(z.object({
            status: z.enum(["ok", "degraded"]),
            version: z.string().openapi({ example: "0.1.0" }),
            uptime_seconds: z.number().openapi({ example: 86_400 }),
            checks: Checks,
            vault: VaultReport,
          })),
          "Report (status `degraded` when a dependency fails).",
        ),
      },
    }),
    async (c) => {
      const { deps } = c.var;
      const { checks, failing } = await check(deps);
      return ok(c, {
        status: failing.length ? "degraded" as const : "ok" as const,
        version: deps.version,
        uptime_seconds: Math.round((deps.svc.now() - deps.startedAt) / 1000),
        checks,
        vault: vaultReport(deps.svc.vault.state),
      });
    },
  );

  return app;
}
