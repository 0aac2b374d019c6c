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
import { KEY_SECRET } from "./api_keys.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, idOf, IdParams, jsonBody, jsonResponse, TenantParams } from "../schemas.ts";

/** A P-256 public key (public by nature: the example is a real, unused one). */
const Jwk = z.object({
  kty: z.string().openapi({ example: "EC" }),
  crv: z.string().openapi({ example: "P-256" }),
  x: z.string().openapi({ example: "HSom4zmHk0C3u0hXQI1La0paoQJu-4tBDnOVdUN3MD4" }),
  y: z.string().openapi({ example: "MpLnMf9b_Sh_rwUH7n4O_JNJ1GG8S96M5c-MTg_rQnc" }),
});
const Kid = z.string().openapi({ example: "sig_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" });
const SigningKeySchema = z.object({
  kid: Kid,
  project_id: z.string().openapi({ example: "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  alg: z.literal("ES256"),
  status: z.enum(["active", "retiring", "retired"]),
  public_jwk: Jwk,
  created_at: z.string().openapi({ example: "2026-01-15T09:30:00.000Z" }),
  retires_at: z.string().nullable().openapi({ example: null }),
  retired_at: z.string().nullable().openapi({ example: null }),
}).openapi("SigningKey");

const Jwks = z.object({
  keys: z.array(Jwk.extend({
    kid: Kid,
    alg: z.string().openapi({ example: "ES256" }),
    use: z.string().openapi({ example: "sig" }),
  })),
}).openapi("Jwks");

const ProjectParams = TenantParams.extend({
  id: idOf("prj").openapi({ param: { name: "id", in: "path" } }),
});

const Rotate = z.strictObject({
  grace_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).optional().openapi({
    description: `How long the previous key stays published (default ${DEFAULT_GRACE_SECONDS}).`,
    example: 86_400,
  }),
}).openapi("RotateSigningKey", { example: { grace_seconds: 86_400 } });

const TokenRequest = z.strictObject({
  key: z.string().min(1).max(256).openapi({ example: KEY_SECRET }),
  ttl_seconds: z.number().int().min(1).max(MAX_TTL_SECONDS).optional().openapi({
    description: `Lifetime (default and most ${MAX_TTL_SECONDS}).`,
    example: 900,
  }),
}).openapi("TokenRequest", { example: { key: KEY_SECRET, ttl_seconds: 900 } });

/** Header and claims as issued (iat 2026-01-31T12:00:00Z, 900 s); the signature is a fake. */
const JWT_EXAMPLE = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InNpZ18wMUpEMlozUTRSNVM2VDdWOFc5" +
  "WDBZMVoyQSJ9.eyJpc3MiOiJzdGV3YXJkIiwic3ViIjoia2V5XzAxSkQyWjNRNFI1UzZUN1Y4VzlYMFkxWjJBIiwidGlk" +
  "IjoidGVuXzAxSkQyWjNRNFI1UzZUN1Y4VzlYMFkxWjJBIiwicGlkIjoicHJqXzAxSkQyWjNRNFI1UzZUN1Y4VzlYMFkx" +
  "WjJBIiwic2NvcGVzIjpbIm9yZGVyczpyZWFkIiwib3JkZXJzOndyaXRlIl0sInBsYW4iOiJwcm8iLCJpYXQiOjE3Njk4" +
  "NjA4MDAsImV4cCI6MTc2OTg2MTcwMH0.ZXhhbXBsZS1zaWduYXR1cmUtbm90LXZhbGlk";

const Issued = z.object({
  token: z.string().openapi({ example: JWT_EXAMPLE }),
  kid: Kid,
  expires_at: z.string().openapi({ example: "2026-01-31T12:15:00.000Z" }),
}).openapi("IssuedToken");

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
      const jwks = await publicJwks(c.get("svc"), c.req.valid("param").id);
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
        await issueToken(c.get("svc"), verifier, c.req.valid("json"), c.get("principal").tenant_id),
      ),
  );

  return app;
}
