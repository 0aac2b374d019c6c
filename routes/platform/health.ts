/** Liveness, readiness (KV read/write probe, Postgres when configured) and a combined report. */
import { z } from "@hono/zod-openapi";
import { AppError } from "../../domain/shared/errors.ts";
import { kvProbe, runChecks } from "../../domain/platform/health.ts";
import type { AppDeps } from "../context.ts";
import { ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, ErrorSchema, jsonResponse } from "../schemas.ts";

const Check = z.object({
  status: z.enum(["ok", "failing"]),
  latency_ms: z.number(),
  error: z.string().optional(),
});
const Checks = z.record(z.string(), Check);

const check = (deps: AppDeps) => runChecks([kvProbe(deps.svc.kv), ...(deps.probes ?? [])]);

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
      summary: "Dependencies answer (KV; Postgres when configured)",
      responses: {
        200: jsonResponse(
          envelope(z.object({ status: z.literal("ready"), checks: Checks })),
          "Ready.",
        ),
        503: jsonResponse(ErrorSchema, "A dependency is failing; `details` holds each check."),
      },
    }),
    async (c) => {
      const { checks, failing } = await check(c.var.deps);
      if (failing.length) {
        throw new AppError("UNAVAILABLE", `not ready: ${failing.join(", ")} failing`, checks, 5);
      }
      return ok(c, { status: "ready" as const, checks }, 200);
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
            version: z.string(),
            uptime_seconds: z.number(),
            checks: Checks,
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
      });
    },
  );

  return app;
}
