/** Tenants: the platform's customers, their lifecycle and feature flags. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Versioned } from "../../kv/table.ts";
import type { AppEnv } from "../context.ts";
import { randomBase62 } from "../../domain/shared/secrets.ts";
import {
  createTenant,
  deleteTenant,
  listTenants,
  resumeTenant,
  setFeatureFlags,
  SLUG_PATTERN,
  suspendTenant,
  type Tenant,
  updateTenant,
} from "../../domain/tenancy/tenants.ts";
import { actorOf, ifMatch, okList, okRecord } from "../respond.ts";
import { createTenantWithKey } from "../../domain/keys/api_keys.ts";
import {
  ApiKeySchema,
  Environment,
  KEY_CREATED,
  KeySecret,
  Scopes,
  withSecret,
} from "../keys/api_keys.ts";
import { defineRoute, router } from "../route.ts";
import { HOOK_RESPONSES } from "../plugins/plugins.ts";
import {
  envelope,
  jsonBody,
  jsonResponse,
  listEnvelope,
  Metadata,
  MetadataPatch,
  PageQuery,
  QueryBoolean,
  TenantParams,
  Text,
} from "../schemas.ts";

const STATUSES = ["active", "suspended", "deleted"] as const;

const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const FLAGS_EXAMPLE = { new_dashboard: true };

const TenantSchema = z.object({
  id: z.string().openapi({ example: TENANT_ID }),
  name: z.string().openapi({ example: "Acme Inc." }),
  slug: z.string().openapi({ example: "acme" }),
  status: z.enum(STATUSES),
  is_test: z.boolean().openapi({ example: false }),
  plan: z.string().openapi({ description: "The plan's code (see GET …/billing).", example: "pro" }),
  plan_override: z.boolean().openapi({ example: false }),
  plan_reason: z.string().nullable().openapi({ example: null }),
  metadata: z.record(z.string(), z.string()).openapi({ example: { crm_id: "A-1234" } }),
  feature_flags: z.record(z.string(), z.boolean()).openapi({ example: FLAGS_EXAMPLE }),
  suspended_reason: z.string().nullable().openapi({ example: null }),
  suspended_at: z.string().nullable().openapi({ example: null }),
  created_by: z.string().nullable().openapi({ example: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  created_at: z.string().openapi({ example: "2026-01-10T09:00:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-20T14:05:00.000Z" }),
  deleted_at: z.string().nullable().openapi({ example: null }),
}).openapi("Tenant");

const Slug = z.string().regex(SLUG_PATTERN, "3–63 lower-case letters, digits and inner hyphens")
  .openapi({ example: "acme" });
const TenantName = Text(200).openapi({ example: "Acme Inc." });

const InitialKey = z.strictObject({
  name: Text(200).openapi({ example: "Storefront production" }),
  environment: Environment,
  scopes: Scopes.optional(),
}).openapi("InitialApiKey", {
  description: "The tenant's first API key, made in the same commit; its secret is returned once.",
});

const CreateTenant = z.strictObject({
  name: TenantName,
  slug: Slug,
  metadata: Metadata.optional(),
  initial_key: InitialKey.optional(),
})
  .openapi("CreateTenant", {
    example: {
      name: "Acme Inc.",
      slug: "acme",
      metadata: { crm_id: "A-1234" },
      initial_key: {
        name: "Storefront production",
        environment: "live",
        scopes: ["orders:read", "orders:write"],
      },
    },
  });

const CreateTestTenant = z.strictObject({
  name: TenantName,
  slug: Slug.optional(),
  metadata: Metadata.optional(),
})
  .openapi("CreateTestTenant", {
    example: { name: "Acme Inc. (sandbox)", metadata: { crm_id: "A-1234" } },
  });

const UpdateTenant = z.strictObject({
  name: TenantName.optional(),
  slug: Slug.optional(),
  metadata: MetadataPatch.optional().openapi({ example: { region: "eu", legacy_id: null } }),
})
  .openapi("UpdateTenant", {
    example: { name: "Acme Incorporated", metadata: { region: "eu", legacy_id: null } },
  });

const FlagName = z.string().regex(
  /^[a-z][a-z0-9_.-]{0,63}$/,
  "lower-case name, up to 64 characters",
);
const FeatureFlags = z.object({
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  flags: z.record(z.string(), z.boolean()).openapi({ example: FLAGS_EXAMPLE }),
})
  .openapi("FeatureFlags");
const FlagsPatch = z.record(FlagName, z.boolean().nullable())
  .refine((m) => Object.keys(m).length <= 100, "at most 100 flags")
  .openapi({
    description: "Flags to set; null removes a flag.",
    example: { new_dashboard: true, legacy_exports: null },
  });

const ListQuery = z.strictObject({
  ...PageQuery,
  status: z.enum(STATUSES).optional(),
  plan: z.string().max(64).optional(),
  is_test: QueryBoolean.optional(),
  search: z.string().trim().min(1).max(100).optional().openapi({
    description: "Prefix of the name or slug.",
  }),
});

const tenantView = (t: Tenant) => t;
const flagsView = (t: Tenant) => ({ tenant_id: t.id, flags: t.feature_flags });
const one = envelope(TenantSchema);
const withInitialKey = envelope(TenantSchema.extend({
  initial_key: ApiKeySchema.extend({ key: KeySecret }).optional().openapi({
    description: "Present when `initial_key` was asked for: `key` is shown this once.",
    // Made with the tenant: no project, the plan's rate limit, no meta.
    example: {
      ...KEY_CREATED,
      project_id: null,
      rate_limit: null,
      meta: {},
      external_id: null,
      created_at: "2026-01-10T09:00:00.000Z",
      updated_at: "2026-01-10T09:00:00.000Z",
    },
  }),
}));

/** 201 with the new tenant, its ETag and its Location. */
function created<V = Tenant>(
  c: Context<AppEnv>,
  tenant: Versioned<Tenant>,
  view: (t: Tenant) => V = tenantView as (t: Tenant) => V,
) {
  c.header("Location", `/v1/tenants/${tenant.value.id}`);
  return okRecord(c, tenant, view, 201);
}
const tags = ["Tenants"];

export function tenantRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants",
      tags,
      summary: "List the tenants the caller can see (newest first)",
      description: "Platform staff see every tenant (qa: test tenants); members see their own.",
      request: { query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(TenantSchema), "A page of tenants.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...filter } = c.req.valid("query");
      const page = await listTenants(c.get("svc"), c.get("principal"), filter, {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, tenantView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants",
      tags,
      summary: "Create a tenant",
      description: "A user (session) who creates a tenant becomes its owner in the same commit. " +
        "`initial_key` makes its first API key in that commit too (returned once, in " +
        "`data.initial_key.key`).",
      request: { body: jsonBody(CreateTenant) },
      responses: { 201: jsonResponse(withInitialKey, "Created."), ...HOOK_RESPONSES },
    }),
    async (c) => {
      const { initial_key, ...input } = c.req.valid("json");
      if (!initial_key) {
        return created(c, await createTenant(c.get("svc"), actorOf(c), input, { is_test: false }));
      }
      const made = await createTenantWithKey(
        c.get("svc"),
        actorOf(c),
        input,
        { is_test: false },
        initial_key,
      );
      return created(
        c,
        made.tenant,
        (t) => ({ ...tenantView(t), initial_key: withSecret(c, made.secret)(made.key) }),
      );
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/test",
      tags,
      summary: "Create a sandbox tenant (is_test: true)",
      description: "The slug defaults to `test-` and random characters.",
      request: { body: jsonBody(CreateTestTenant) },
      responses: { 201: jsonResponse(one, "Created."), ...HOOK_RESPONSES },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const slug = input.slug ?? `test-${randomBase62(10).toLowerCase()}`;
      return created(
        c,
        await createTenant(c.get("svc"), actorOf(c), { ...input, slug }, { is_test: true }),
      );
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}",
      tags,
      summary: "Get a tenant by id or slug",
      request: { params: TenantParams },
      responses: { 200: jsonResponse(one, "The tenant; `ETag` is its version.") },
    }),
    (c) => okRecord(c, c.get("tenant"), tenantView),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/tenants/{tenant}",
      tags,
      summary: "Update name, slug or metadata",
      description:
        "Metadata is merged; a null value removes a key. Send `If-Match` to update only the version you read.",
      request: { params: TenantParams, body: jsonBody(UpdateTenant) },
      responses: { 200: jsonResponse(one, "Updated.") },
    }),
    async (c) => {
      const tenant = await updateTenant(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, tenant, tenantView);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/tenants/{tenant}",
      tags,
      summary: "Delete a tenant (soft: status deleted, slug released, audit trail kept)",
      request: { params: TenantParams },
      responses: { 200: jsonResponse(one, "The deleted tenant.") },
    }),
    async (c) =>
      okRecord(
        c,
        await deleteTenant(c.get("svc"), actorOf(c), c.get("tenant").value.id, ifMatch(c)),
        tenantView,
      ),
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/suspend",
      tags,
      summary: "Suspend a tenant",
      request: {
        params: TenantParams,
        body: {
          ...jsonBody(
            z.strictObject({
              reason: Text(500).optional().openapi({ example: "Invoice INV-2026-0042 is overdue" }),
            }).openapi({ example: { reason: "Invoice INV-2026-0042 is overdue" } }),
          ),
          required: false,
        },
      },
      responses: { 200: jsonResponse(one, "Suspended (suspending twice changes nothing).") },
    }),
    async (c) => {
      const { reason } = c.req.valid("json") ?? {};
      return okRecord(
        c,
        await suspendTenant(c.get("svc"), actorOf(c), c.get("tenant").value.id, reason ?? null),
        tenantView,
      );
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/resume",
      tags,
      summary: "Resume a suspended tenant",
      request: { params: TenantParams },
      responses: { 200: jsonResponse(one, "Active.") },
    }),
    async (c) =>
      okRecord(
        c,
        await resumeTenant(c.get("svc"), actorOf(c), c.get("tenant").value.id),
        tenantView,
      ),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/feature-flags",
      tags,
      summary: "The tenant's feature flags",
      request: { params: TenantParams },
      responses: {
        200: jsonResponse(envelope(FeatureFlags), "Flags; `ETag` is the tenant's version."),
      },
    }),
    (c) => okRecord(c, c.get("tenant"), flagsView),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/tenants/{tenant}/feature-flags",
      tags,
      summary: "Set or remove feature flags",
      request: { params: TenantParams, body: jsonBody(FlagsPatch) },
      responses: { 200: jsonResponse(envelope(FeatureFlags), "The flags after the change.") },
    }),
    async (c) => {
      const tenant = await setFeatureFlags(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, tenant, flagsView);
    },
  );

  return app;
}
