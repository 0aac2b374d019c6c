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
import { HOOK_RESPONSES } from "../plugins/plugins.ts";
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

const Scope = z.string().regex(/^[A-Za-z0-9:._*/-]{1,64}$/, "1–64 of A-Z a-z 0-9 : . _ * / -")
  .openapi({ example: "orders:read" });
export const Scopes = z.array(Scope).max(100).openapi({ example: ["orders:read", "orders:write"] });
const KeyName = Text(200).openapi({ example: "Storefront production" });

/**
 * The examples' key: a fake secret of the generated shape (`sk_live_`, 24 random characters,
 * then 6 check characters, which match), and the key as created with it (never used yet).
 */
export const KEY_SECRET = "sk_live_EXAMPLEexampleEXAMPLE000dHt8CQ";
const KEY_ID = "key_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
export const KEY_CREATED = {
  id: KEY_ID,
  tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  project_id: "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  name: "Storefront production",
  environment: "live",
  start: "sk_live_EXAM",
  status: "active",
  scopes: ["orders:read", "orders:write"],
  expires_at: null,
  rate_limit: { requests_per_second: 10, burst: 20 },
  meta: { customer: "cus_123" },
  external_id: "cus_123",
  revoked_at: null,
  expired_at: null,
  rotated_from: null,
  rotated_to: null,
  created_by: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  created_at: "2026-01-15T09:30:00.000Z",
  updated_at: "2026-01-15T09:30:00.000Z",
  last_used_at: null,
  key: KEY_SECRET,
};
const Meta = z.record(
  z.string().min(1).max(40),
  z.union([z.string().max(500), z.number(), z.boolean(), z.null()]),
).refine((m) => Object.keys(m).length <= 50, "at most 50 keys")
  .openapi({ description: "Returned by verify as is.", example: { customer: "cus_123" } });

export const ApiKeySchema = z.object({
  id: z.string().openapi({ example: KEY_ID }),
  tenant_id: z.string().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  project_id: z.string().nullable().openapi({ example: "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  name: z.string().openapi({ example: "Storefront production" }),
  environment: Environment,
  start: z.string().openapi({
    description: "The key's first characters, for recognising it.",
    example: "sk_live_EXAM",
  }),
  status: z.enum(STATUSES),
  scopes: z.array(z.string()).openapi({ example: ["orders:read", "orders:write"] }),
  expires_at: z.string().nullable().openapi({ example: null }),
  rate_limit: z.object({
    requests_per_second: z.number().openapi({ example: 10 }),
    burst: z.number().openapi({ example: 20 }),
  }).nullable()
    .openapi({ description: "Overrides the plan's; null follows the plan." }),
  meta: z.record(z.string(), z.unknown()).openapi({ example: { customer: "cus_123" } }),
  external_id: z.string().nullable().openapi({ example: "cus_123" }),
  revoked_at: z.string().nullable().openapi({
    description: "When it stops (stopped) working; later than now during a rotation's grace.",
    example: null,
  }),
  expired_at: z.string().nullable().openapi({
    description: "When the expiring cron recorded that `expires_at` passed (the key then no " +
      "longer counts as live); `status` says `expired` from `expires_at` already.",
    example: null,
  }),
  rotated_from: z.string().nullable().openapi({ example: null }),
  rotated_to: z.string().nullable().openapi({ example: null }),
  created_by: z.string().openapi({ example: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  created_at: z.string().openapi({ example: "2026-01-15T09:30:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-20T14:05:00.000Z" }),
  last_used_at: z.string().nullable().openapi({
    description: "When verify last answered for it (written behind: within seconds).",
    example: "2026-01-31T11:59:58.000Z",
  }),
}).openapi("ApiKey");

/** The secret of a key just made, as the API returns it once. */
export const KeySecret = z.string().openapi({
  description: "The key itself: shown this once, never again.",
  example: KEY_SECRET,
});

const WithSecret = ApiKeySchema.extend({ key: KeySecret })
  .openapi("ApiKeyWithSecret", { example: KEY_CREATED });

const CreateApiKey = z.strictObject({
  name: KeyName,
  project_id: idOf("prj").nullable().optional(),
  environment: Environment,
  scopes: Scopes.optional(),
  expires_at: Timestamp.nullable().optional(),
  rate_limit: orNull(RateLimitSchema).optional(),
  meta: Meta.optional(),
  external_id: Text(128).nullable().optional().openapi({
    description: "Your own id for the key's owner (a customer, a user).",
    example: "cus_123",
  }),
}).openapi("CreateApiKey", {
  example: {
    name: "Storefront production",
    project_id: "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
    environment: "live",
    scopes: ["orders:read", "orders:write"],
    rate_limit: { requests_per_second: 10, burst: 20 },
    meta: { customer: "cus_123" },
    external_id: "cus_123",
  },
});

const UpdateApiKey = z.strictObject({
  name: KeyName.optional(),
  scopes: Scopes.optional(),
  expires_at: Timestamp.nullable().optional(),
  rate_limit: orNull(RateLimitSchema).optional(),
  meta: Meta.optional().openapi({ description: "Replaces the key's meta." }),
}).openapi("UpdateApiKey", {
  example: { name: "Storefront production (read-only)", scopes: ["orders:read"] },
});

const RotateApiKey = z.strictObject({
  grace_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).default(0).openapi({
    description: "How long the old key keeps working (up to 7 days); 0 revokes it now.",
    example: 3600,
  }),
}).openapi("RotateApiKey", { example: { grace_seconds: 3600 } });

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
  const used = await lastUsedAt(c.get("svc"), c.get("tenant").value.id, items.map((k) => k.id));
  return apiKeyView(c.get("svc").now(), used);
}
/** A key just made: its secret, shown this once; never used yet. */
export const withSecret = (c: Context<AppEnv>, secret: string) => (k: ApiKey) => ({
  ...apiKeyView(c.get("svc").now(), new Map())(k),
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
      const page = await listApiKeys(c.get("svc"), c.get("tenant").value.id, filter, {
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
      responses: {
        201: jsonResponse(envelope(WithSecret), "Created; store `data.key` now."),
        ...HOOK_RESPONSES,
      },
    }),
    async (c) => {
      const tenant = c.get("tenant").value;
      const { secret, key } = await createApiKey(
        c.get("svc"),
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
      const key = await getApiKey(c.get("svc"), c.get("tenant").value.id, c.req.valid("param").id);
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
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
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
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
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
      const tenant = c.get("tenant").value;
      // The body is optional: without one there is no grace.
      const grace =
        (c.req.valid("json") as { grace_seconds?: number } | undefined)?.grace_seconds ?? 0;
      const { secret, key } = await rotateApiKey(
        c.get("svc"),
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
