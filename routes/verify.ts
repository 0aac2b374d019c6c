/** POST /v1/keys/verify: the gateway's hot path. */
import { z } from "@hono/zod-openapi";
import { type Verifier, VERIFY_CODES } from "../domain/verify.ts";
import { ok } from "./respond.ts";
import { defineRoute, router } from "./route.ts";
import { envelope, jsonBody, jsonResponse } from "./schemas.ts";

const VerifyRequest = z.strictObject({
  key: z.string().min(1).max(256),
  scopes: z.array(z.string().min(1).max(64)).max(100).optional().openapi({
    description: "Scopes the key must all hold.",
  }),
  cost: z.number().int().min(0).max(1_000_000).optional().openapi({
    description: "Quota units this call spends (default 1; 0 checks without spending).",
  }),
  environment: z.enum(["live", "test"]).optional().openapi({
    description: "When given, a key of the other environment is NOT_FOUND.",
  }),
}).openapi("VerifyKeyRequest");

const VerifyResponse = z.object({
  valid: z.boolean(),
  code: z.enum(VERIFY_CODES),
  key_id: z.string().nullable(),
  tenant_id: z.string().nullable(),
  project_id: z.string().nullable(),
  environment: z.enum(["live", "test"]).nullable(),
  scopes: z.array(z.string()),
  meta: z.record(z.string(), z.unknown()),
  plan: z.object({ code: z.string() }).nullable(),
  ratelimit: z.object({
    limit: z.number(),
    remaining: z.number(),
    reset: z.number().openapi({ description: "When the current window ends (epoch ms)." }),
  }).nullable(),
  quota: z.object({
    limit: z.number().nullable(),
    used: z.number(),
    remaining: z.number().nullable(),
    period_end: z.string(),
  }).nullable(),
  expires_at: z.string().nullable(),
}).openapi("VerifyKeyResult");

export function verifyRoutes(verifier: Verifier) {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/keys/verify",
      tags: ["Verify"],
      summary: "Verify an API key",
      description: "200 for every business outcome: `valid` and `code` say which. Checks run " +
        "in the order of the codes (NOT_FOUND, REVOKED, EXPIRED, TENANT_SUSPENDED, " +
        "INSUFFICIENT_SCOPES, RATE_LIMITED, USAGE_EXCEEDED); only a VALID call spends rate " +
        "limit and quota. A warm key is answered from memory; changes made by another " +
        "process are seen within `STEWARD_VERIFY_CACHE_MS`. A token bound to a tenant " +
        "verifies only that tenant's keys.",
      request: { body: jsonBody(VerifyRequest) },
      responses: { 200: jsonResponse(envelope(VerifyResponse), "The verdict.") },
    }),
    async (c) => ok(c, await verifier.verify(c.req.valid("json"), c.var.principal.tenant_id)),
  );

  return app;
}
