/** Data key rotation: one tenant's, or every key at once, as a job in steps with progress. */
import { z } from "@hono/zod-openapi";
import type { Job } from "../../domain/jobs/jobs.ts";
import { startRotation } from "../../domain/platform/vault_rotation.ts";
import { actorOf, ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonResponse, TenantParams } from "../schemas.ts";

const tags = ["Vault"];

const Rotation = z.object({
  job_id: z.string().openapi({ example: "job_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  scope: z.enum(["tenant", "all"]).openapi({ example: "all" }),
  progress: z.object({
    done: z.number().int().openapi({ example: 0 }),
    total: z.number().int().openapi({
      description: "Owners to rotate: the tenant, or the platform and every tenant.",
      example: 1_001,
    }),
  }),
}).openapi("VaultRotation");

const started = (job: Job) => ({
  job_id: job.id,
  scope: job.payload.scope as "tenant" | "all",
  progress: job.progress ?? { done: 0, total: 0 },
});

const HOW = "The job (queue `vault`) re-seals every value the old data key sealed (signing " +
  "keys, webhook secrets, tenant secrets, mail bodies) in steps, then destroys the old key; " +
  "`GET /v1/admin/system/jobs/{id}` shows its progress. Every value reads throughout. 409 while " +
  "a rotation runs.";

export function vaultRotationRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/vault/rotate",
      tags,
      summary: "Rotate a tenant's data key",
      description: HOW,
      request: { params: TenantParams },
      responses: { 202: jsonResponse(envelope(Rotation), "The rotation job is queued.") },
    }),
    async (c) => {
      const job = await startRotation(c.get("svc"), actorOf(c), c.get("tenant").value.id);
      return ok(c, started(job), 202);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/vault/rotate-all",
      tags,
      summary: "Rotate every data key: the platform's and every tenant's",
      description: HOW,
      responses: { 202: jsonResponse(envelope(Rotation), "The rotation job is queued.") },
    }),
    async (c) => ok(c, started(await startRotation(c.get("svc"), actorOf(c), null)), 202),
  );

  return app;
}
