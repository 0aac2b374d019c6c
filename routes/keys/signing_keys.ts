/** Projects' signing keys, their public JWKS, and JWTs for verified API keys. */
import { z } from "@hono/zod-openapi";
import { issueToken, MAX_TTL_SECONDS } from "../../domain/keys/jwt.ts";
import {
  DEFAULT_GRACE_SECONDS,
  listSigningKeys,
  MAX_GRACE_SECONDS,
  publicJwks,
  rotateSigningKey,
  signingKeyView,
} from "../../domain/keys/signing_keys.ts";
import { getProject } from "../../domain/tenancy/projects.ts";
import type { Verifier } from "../../domain/keys/verify.ts";
import { actorOf, ok } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, idOf, IdParams, jsonBody, jsonResponse, TenantParams } from "../schemas.ts";

const Jwk = z.object({ kty: z.string(), crv: z.string(), x: z.string(), y: z.string() });
const SigningKeySchema = z.object({
  kid: z.string(),
  project_id: z.string(),
  alg: z.literal("ES256"),
  status: z.enum(["active", "retiring", "retired"]),
  public_jwk: Jwk,
  created_at: z.string(),
  retires_at: z.string().nullable(),
  retired_at: z.string().nullable(),
}).openapi("SigningKey");

const Jwks = z.object({
  keys: z.array(Jwk.extend({ kid: z.string(), alg: z.string(), use: z.string() })),
}).openapi("Jwks");

const ProjectParams = TenantParams.extend({
  id: idOf("prj").openapi({ param: { name: "id", in: "path" } }),
});

const Rotate = z.strictObject({
  grace_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).optional().openapi({
    description: `How long the previous key stays published (default ${DEFAULT_GRACE_SECONDS}).`,
  }),
}).openapi("RotateSigningKey");

const TokenRequest = z.strictObject({
  key: z.string().min(1).max(256),
  ttl_seconds: z.number().int().min(1).max(MAX_TTL_SECONDS).optional().openapi({
    description: `Lifetime (default and most ${MAX_TTL_SECONDS}).`,
  }),
}).openapi("TokenRequest");

const Issued = z.object({ token: z.string(), kid: z.string(), expires_at: z.string() })
  .openapi("IssuedToken");

const tags = ["Signing keys"];

export function signingKeyRoutes(verifier: Verifier) {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/projects/{id}/signing-keys",
      tags,
      summary: "The project's signing keys, newest first (public parts only)",
      description: "A project has none until its first token or rotation.",
      request: { params: ProjectParams },
      responses: { 200: jsonResponse(envelope(z.array(SigningKeySchema)), "The keys.") },
    }),
    async (c) => {
      const { svc, tenant } = c.var;
      const { id } = c.req.valid("param");
      await getProject(svc, tenant.value.id, id);
      const listed = await listSigningKeys(svc, tenant.value.id, id);
      return ok(c, listed.map((e) => signingKeyView(svc.now())(e.value)));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/projects/{id}/signing-keys/rotate",
      tags,
      summary: "Rotate: a new active key; the previous one stays published for the grace",
      request: { params: ProjectParams, body: { ...jsonBody(Rotate), required: false } },
      responses: { 201: jsonResponse(envelope(SigningKeySchema), "The new active key.") },
    }),
    async (c) => {
      const { svc, tenant } = c.var;
      const grace = (c.req.valid("json") as { grace_seconds?: number } | undefined)?.grace_seconds;
      const key = await rotateSigningKey(
        svc,
        actorOf(c),
        tenant.value.id,
        c.req.valid("param").id,
        grace ?? DEFAULT_GRACE_SECONDS,
      );
      return ok(c, signingKeyView(svc.now())(key), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/projects/{id}/jwks.json",
      tags,
      summary: "The project's public keys as a JWKS (for verifying its tokens)",
      description: "The raw JWKS a JOSE library reads, not the success envelope. Cacheable for " +
        "5 minutes; retiring keys stay listed until their grace ends.",
      request: { params: IdParams("prj") },
      responses: {
        200: {
          description: "The JWKS.",
          content: { "application/json": { schema: Jwks } },
        },
      },
    }),
    async (c) => {
      const jwks = await publicJwks(c.var.svc, c.req.valid("param").id);
      c.header("Cache-Control", "public, max-age=300");
      return c.json(jwks, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tokens",
      tags,
      summary: "Exchange a valid API key for a short-lived JWT",
      description: "ES256, signed by the key's project's active key (`kid` in the header); " +
        "claims `sub` (key id), `tid`, `pid`, `scopes`, `plan`, `iat`, `exp`. Counts as one " +
        "verification. A key that is not VALID, or has no project, is 422.",
      request: { body: jsonBody(TokenRequest) },
      responses: { 200: jsonResponse(envelope(Issued), "The token.") },
    }),
    async (c) =>
      ok(
        c,
        await issueToken(c.var.svc, verifier, c.req.valid("json"), c.var.principal.tenant_id),
      ),
  );

  return app;
}
