/** Service tokens: created with explicit permissions or from a role, shown once, revoked at once. */
import { z } from "@hono/zod-openapi";
import { ALL_PERMISSIONS, PERMISSIONS } from "../../domain/access/permissions.ts";
import {
  createToken,
  getToken,
  listTokens,
  revokeToken,
  tokenView,
} from "../../domain/keys/tokens.ts";
import { actorOf, ifMatch, okList, okRecord } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import {
  envelope,
  idOf,
  IdParams,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  Text,
  Timestamp,
} from "../schemas.ts";

/** A fake secret of the generated shape (`stw_` and 43 base62 characters). */
const SECRET_EXAMPLE = "stw_EXAMPLEexampleEXAMPLEexampleEXAMPLEexample0";

const Rate = z.strictObject({
  requests_per_second: z.number().positive().max(1_000_000).openapi({ example: 50 }),
  burst: z.number().int().min(1).max(1_000_000).openapi({ example: 100 }),
});

/** Per budget, overriding the role's and the global limits; budgets left out keep those. */
const RateLimitOverrides = z.strictObject({
  read: Rate.optional(),
  write: Rate.optional(),
  expensive: Rate.optional(),
  ingest: Rate.optional(),
}).openapi("TokenRateLimit");

const TokenSchema = z.object({
  id: z.string().openapi({ example: "tok_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  name: z.string().openapi({ example: "API gateway" }),
  start: z.string().openapi({
    description: "The first characters, to recognise the token.",
    example: "stw_EXAM",
  }),
  permissions: z.array(z.string()).openapi({
    example: ["keys:verify"],
    description: "Empty for a token made from a role (`role_id`).",
  }),
  role_id: z.string().optional().openapi({
    example: "rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
    description: "The custom role whose permissions the token holds, as the role is now.",
  }),
  tenant_id: z.string().nullable().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  test_tenants_only: z.boolean().openapi({ example: false }),
  expires_at: z.string().nullable().openapi({ example: null }),
  created_by: z.string().openapi({ example: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  created_at: z.string().openapi({ example: "2026-01-15T09:30:00.000Z" }),
  last_used_at: z.string().nullable().openapi({ example: "2026-01-31T11:59:58.000Z" }),
  revoked_at: z.string().nullable().openapi({ example: null }),
  rate_limit: RateLimitOverrides.optional(),
}).openapi("ServiceToken");

const CreateToken = z.strictObject({
  name: Text(100).openapi({ example: "API gateway" }),
  permissions: z.array(z.enum([...PERMISSIONS, ALL_PERMISSIONS])).min(1).max(PERMISSIONS.length + 1)
    .optional().openapi({
      description: 'Permissions to grant; "*" is every permission (super admins only). Or `role`.',
      example: ["keys:verify"],
    }),
  role: idOf("rol").optional().openapi({
    description: "A custom role instead of `permissions`: the token holds the role's " +
      "permissions as the role is at each request (an edit reaches it within the role " +
      "table's refresh, 5 s by default). A tenant-scoped role needs `tenant_id`.",
  }),
  tenant_id: idOf("ten").nullable().optional(),
  expires_at: Timestamp.nullable().optional(),
  rate_limit: RateLimitOverrides.optional(),
}).refine((t) => (t.permissions === undefined) !== (t.role === undefined), {
  message: "give either permissions or a role",
  path: ["permissions"],
}).openapi("CreateServiceToken", {
  example: {
    name: "API gateway",
    permissions: ["keys:verify"],
    tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  },
});

export function tokenRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/tokens",
      tags: ["Service tokens"],
      summary: "List service tokens (newest first)",
      request: { query: z.strictObject(PageQuery) },
      responses: { 200: jsonResponse(listEnvelope(TokenSchema), "A page of tokens.") },
    }),
    async (c) => {
      const page = c.req.valid("query");
      return okList(
        c,
        await listTokens(c.get("svc"), c.get("principal"), page),
        page.limit,
        tokenView,
      );
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/tokens",
      tags: ["Service tokens"],
      summary: "Create a service token",
      description: "The secret is returned once, in `data.token`; only its SHA-256 is stored. " +
        "A token can never hold a permission its creator does not hold; one made from a role " +
        "needs every permission of the role.",
      request: { body: jsonBody(CreateToken) },
      responses: {
        201: jsonResponse(
          envelope(TokenSchema.extend({ token: z.string().openapi({ example: SECRET_EXAMPLE }) })),
          "Created; copy `token` now.",
        ),
        404: errorResponse("`tenant_id` names no tenant the caller sees."),
      },
    }),
    async (c) => {
      const { secret, token } = await createToken(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("json"),
      );
      c.header("Location", `/v1/admin/tokens/${token.value.id}`);
      return okRecord(c, token, (t) => ({ ...tokenView(t), token: secret }), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/tokens/{id}",
      tags: ["Service tokens"],
      summary: "Get a service token",
      request: { params: IdParams("tok") },
      responses: { 200: jsonResponse(envelope(TokenSchema), "The token (never its secret).") },
    }),
    async (c) =>
      okRecord(
        c,
        await getToken(c.get("svc"), c.get("principal"), c.req.valid("param").id),
        tokenView,
      ),
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/admin/tokens/{id}",
      tags: ["Service tokens"],
      summary: "Revoke a service token",
      description: "Takes effect on the next request. Revoking a revoked token changes nothing.",
      request: { params: IdParams("tok") },
      responses: { 200: jsonResponse(envelope(TokenSchema), "The revoked token.") },
    }),
    async (c) => {
      const token = await revokeToken(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
        ifMatch(c),
      );
      return okRecord(c, token, tokenView);
    },
  );

  return app;
}
