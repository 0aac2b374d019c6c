/** Liveness, readiness (KV read/write probe, Postgres when configured) and a combined report. */
import { z } from "@hono/zod-openapi";
import { AppError } from "../domain/errors.ts";
import { keys } from "../kv/keys.ts";
import type { AppDeps } from "./context.ts";
import { ok } from "./respond.ts";
import { defineRoute, router } from "./route.ts";
import { envelope, ErrorSchema, jsonResponse } from "./schemas.ts";

const Check = z.object({
  status: z.enum(["ok", "failing"]),
  latency_ms: z.number(),
  error: z.string().optional(),
});
const Checks = z.record(z.string(), Check);
type CheckResult = z.infer<typeof Check>;

const instance = crypto.randomUUID();

async function timed(check: () => Promise<void>): Promise<CheckResult> {
  const started = performance.now();
  try {
    await check();
    return { status: "ok", latency_ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    const latency_ms = Math.round((performance.now() - started) * 100) / 100;
    return { status: "failing", latency_ms, error: (err as Error).message };
  }
}

/** Writes and reads back a scratch key: proves KV answers both. */
async function kvProbe(kv: Deno.Kv) {
  const key = keys.healthProbe(instance);
  const stamp = Date.now();
  await kv.set(key, stamp, { expireIn: 60_000 });
  if ((await kv.get<number>(key)).value !== stamp) throw new Error("read did not return the write");
}

async function runChecks(deps: AppDeps): Promise<Record<string, CheckResult>> {
  const probes = [{ name: "kv", check: () => kvProbe(deps.svc.kv) }, ...(deps.probes ?? [])];
  const results = await Promise.all(probes.map((p) => timed(p.check)));
  return Object.fromEntries(probes.map((p, i) => [p.name, results[i]]));
}

const failing = (checks: Record<string, CheckResult>) =>
  Object.entries(checks).filter(([, c]) => c.status !== "ok").map(([name]) => name);

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
      const checks = await runChecks(c.var.deps);
      const down = failing(checks);
      if (down.length) {
        throw new AppError("UNAVAILABLE", `not ready: ${down.join(", ")} failing`, checks, 5);
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
      const checks = await runChecks(deps);
      return ok(c, {
        status: failing(checks).length ? "degraded" as const : "ok" as const,
        version: deps.version,
        uptime_seconds: Math.round((deps.svc.now() - deps.startedAt) / 1000),
        checks,
      });
    },
  );

  return app;
}
