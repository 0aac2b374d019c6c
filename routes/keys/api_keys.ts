/** A tenant's API keys: created (shown once), listed, changed, revoked and rotated. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  type ApiKey,
  apiKeyView,
  createApiKey,
  getApiKey,
  lastUsedAt,
  listApiKeys,
  MAX_GRACE_SECONDS,
  revokeApiKey,
  rotateApiKey,
  updateApiKey,
} from "../../domain/keys/api_keys.ts";
import type { AppEnv } from "../context.ts";
import { RateLimitSchema } from "../tenancy/plans.ts";
import { actorOf, ifMatch, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  envelope,
  idOf,
  jsonBody,
  jsonResponse,
  listEnvelope,
  orNull,
  PageQuery,
  TenantParams,
  Text,
  Timestamp,
} from "../schemas.ts";

export const Environment = z.enum(["live", "test"]);
const STATUSES = ["active", "revoked", "expired"] as const;

const Scope = z.string().regex(/^[A-Za-z0-9:._*/-]{1,64}$/, "1–64 of A-Z a-z 0-9 : . _ * / -");
export const Scopes = z.array(Scope).max(100);
const Meta = z.record(
  z.string().min(1).max(40),
  z.union([z.string().max(500), z.number(), z.boolean(), z.null()]),
).refine((m) => Object.keys(m).length <= 50, "at most 50 keys")
  .openapi({ description: "Returned by verify as is.", example: { customer: "cus_123" } });

export const ApiKeySchema = z.object({
  id: z.string(),
  tenant_id: z.string(),
  project_id: z.string().nullable(),
  name: z.string(),
  environment: Environment,
  start: z.string().openapi({ description: "The key's first characters, for recognising it." }),
  status: z.enum(STATUSES),
  scopes: z.array(z.string()),
  expires_at: z.string().nullable(),
  rate_limit: z.object({ requests_per_second: z.number(), burst: z.number() }).nullable()
    .openapi({ description: "Overrides the plan's; null follows the plan." }),
  meta: z.record(z.string(), z.unknown()),
  external_id: z.string().nullable(),
  revoked_at: z.string().nullable().openapi({
    description: "When it stops (stopped) working; later than now during a rotation's grace.",
  }),
  expired_at: z.string().nullable().openapi({
    description: "When the expiring cron recorded that `expires_at` passed (the key then no " +
      "longer counts as live); `status` says `expired` from `expires_at` already.",
  }),
  rotated_from: z.string().nullable(),
  rotated_to: z.string().nullable(),
  created_by: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  last_used_at: z.string().nullable().openapi({
    description: "When verify last answered for it (written behind: within seconds).",
  }),
}).openapi("ApiKey");

const WithSecret = ApiKeySchema.extend({
  key: z.string().openapi({ description: "The key itself: shown this once, never again." }),
}).openapi("ApiKeyWithSecret");

const CreateApiKey = z.strictObject({
  name: Text(200),
  project_id: idOf("prj").nullable().optional(),
  environment: Environment,
  scopes: Scopes.optional(),
  expires_at: Timestamp.nullable().optional(),
  rate_limit: orNull(RateLimitSchema).optional(),
  meta: Meta.optional(),
  external_id: Text(128).nullable().optional().openapi({
    description: "Your own id for the key's owner (a customer, a user).",
  }),
}).openapi("CreateApiKey");

const UpdateApiKey = z.strictObject({
  name: Text(200).optional(),
  scopes: Scopes.optional(),
  expires_at: Timestamp.nullable().optional(),
  rate_limit: orNull(RateLimitSchema).optional(),
  meta: Meta.optional().openapi({ description: "Replaces the key's meta." }),
}).openapi("UpdateApiKey");

const RotateApiKey = z.strictObject({
  grace_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).default(0).openapi({
    description: "How long the old key keeps working (up to 7 days); 0 revokes it now.",
  }),
}).openapi("RotateApiKey");

const KeyParams = TenantParams.extend({
  id: idOf("key").openapi({ param: { name: "id", in: "path" } }),
});

const ListQuery = z.strictObject({
  ...PageQuery,
  status: z.enum(STATUSES).optional(),
  project_id: idOf("prj").optional(),
  environment: Environment.optional(),
  external_id: z.string().max(128).optional(),
});

/** The view of `items` with their last use (one batched read). */
async function viewOf(c: Context<AppEnv>, items: ApiKey[]) {
  const used = await lastUsedAt(c.var.svc, c.var.tenant.value.id, items.map((k) => k.id));
  return apiKeyView(c.var.svc.now(), used);
}
/** A key just made: its secret, shown this once; never used yet. */
export const withSecret = (c: Context<AppEnv>, secret: string) => (k: ApiKey) => ({
  ...apiKeyView(c.var.svc.now(), new Map())(k),
  key: secret,
});
const one = envelope(ApiKeySchema);
const tags = ["API keys"];

export function apiKeyRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/api-keys",
      tags,
      summary: "List the tenant's API keys (newest first)",
      request: { params: TenantParams, query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(ApiKeySchema), "A page of keys.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...filter } = c.req.valid("query");
      const page = await listApiKeys(c.var.svc, c.var.tenant.value.id, filter, {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, await viewOf(c, page.items.map((i) => i.value)));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/api-keys",
      tags,
      summary: "Create an API key (returned once in `data.key`)",
      description: "The key is `{prefix}_{random}{checksum}` (prefix `sk_live`/`sk_test` unless " +
        "the tenant sets its own); only its SHA-256 is stored.",
      request: { params: TenantParams, body: jsonBody(CreateApiKey) },
      responses: { 201: jsonResponse(envelope(WithSecret), "Created; store `data.key` now.") },
    }),
    async (c) => {
      const tenant = c.var.tenant.value;
      const { secret, key } = await createApiKey(
        c.var.svc,
        actorOf(c),
        tenant,
        c.req.valid("json"),
      );
      c.header("Location", `/v1/tenants/${tenant.id}/api-keys/${key.value.id}`);
      return okRecord(c, key, withSecret(c, secret), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/api-keys/{id}",
      tags,
      summary: "Get an API key (never the key itself)",
      request: { params: KeyParams },
      responses: { 200: jsonResponse(one, "The key; `ETag` is its version.") },
    }),
    async (c) => {
      const key = await getApiKey(c.var.svc, c.var.tenant.value.id, c.req.valid("param").id);
      return okRecord(c, key, await viewOf(c, [key.value]));
    },
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/tenants/{tenant}/api-keys/{id}",
      tags,
      summary: "Change a key's name, scopes, expiry, rate limit or meta",
      description: "Verify sees the change at once in this process, and within " +
        "`STEWARD_VERIFY_CACHE_MS` elsewhere. A revoked key cannot be changed (409).",
      request: { params: KeyParams, body: jsonBody(UpdateApiKey) },
      responses: { 200: jsonResponse(one, "Updated.") },
    }),
    async (c) => {
      const key = await updateApiKey(
        c.var.svc,
        actorOf(c),
        c.var.tenant.value.id,
        c.req.valid("param").id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, key, await viewOf(c, [key.value]));
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/tenants/{tenant}/api-keys/{id}",
      tags,
      summary: "Revoke a key (now; revoking twice changes nothing)",
      request: { params: KeyParams },
      responses: { 200: jsonResponse(one, "Revoked.") },
    }),
    async (c) => {
      const key = await revokeApiKey(
        c.var.svc,
        actorOf(c),
        c.var.tenant.value.id,
        c.req.valid("param").id,
        ifMatch(c),
      );
      return okRecord(c, key, await viewOf(c, [key.value]));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/api-keys/{id}/rotate",
      tags,
      summary: "Rotate a key: a new secret with the same settings, returned once",
      description: "The old key stops now, or after `grace_seconds`; both commit together.",
      request: {
        params: KeyParams,
        body: { ...jsonBody(RotateApiKey), required: false },
      },
      responses: { 201: jsonResponse(envelope(WithSecret), "The new key; store `data.key` now.") },
    }),
    async (c) => {
      const tenant = c.var.tenant.value;
      // The body is optional: without one there is no grace.
      const grace =
        (c.req.valid("json") as { grace_seconds?: number } | undefined)?.grace_seconds ?? 0;
      const { secret, key } = await rotateApiKey(
        c.var.svc,
        actorOf(c),
        tenant,
        c.req.valid("param").id,
        grace,
        ifMatch(c),
      );
      c.header("Location", `/v1/tenants/${tenant.id}/api-keys/${key.value.id}`);
      return okRecord(c, key, withSecret(c, secret), 201);
    },
  );

  return app;
}
