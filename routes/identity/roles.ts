/**
 * Roles and the permission table: the built-in platform roles (read-only), custom roles, and
 * every permission with the routes that need it (generated from routes/permissions.ts).
 */
import { z } from "@hono/zod-openapi";
import {
  PERMISSION_DESCRIPTIONS,
  PERMISSIONS,
  PLATFORM_ROLE_GRANTS,
  PLATFORM_ROLES,
  TENANT_PERMISSIONS,
} from "../../domain/access/permissions.ts";
import {
  createRole,
  deleteRole,
  getRole,
  listRoles,
  updateRole,
} from "../../domain/identity/roles.ts";
import { skipOf } from "../../kv/list.ts";
import { ROUTE_ACCESS } from "../permissions.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, jsonBody, jsonResponse, listEnvelope, PageQuery, Text } from "../schemas.ts";

const ROLE_ID = "rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const Permission = z.enum(PERMISSIONS);

/** A billing auditor: reads tenants, billing and the finance reports, changes nothing. */
const RoleSchema = z.object({
  id: z.string().openapi({
    example: ROLE_ID,
    description: "`rol_…` for a custom role; the role's name for a built-in one.",
  }),
  name: z.string().openapi({ example: "Billing auditor" }),
  description: z.string().openapi({ example: "Reads billing and finance; changes nothing." }),
  permissions: z.array(Permission).openapi({
    example: ["billing:read", "finance:read", "tenants:read"],
  }),
  tenant_scoped: z.boolean().openapi({
    example: false,
    description: "A tenant-scoped role holds only tenant permissions, granted inside the " +
      "tenants its holder is a member of (on top of the membership's role); a platform-wide " +
      "one grants its permissions on platform routes and inside every tenant.",
  }),
  in_tenants: z.enum(["all", "test", "member"]).openapi({
    example: "all",
    description: "Where the role's tenant permissions apply: every tenant, test tenants " +
      "(qa), or the tenants the holder is a member of (tenant-scoped).",
  }),
  builtin: z.boolean().openapi({ example: false, description: "Built-in roles are read-only." }),
  holders: z.object({
    users: z.number().int().openapi({ example: 3 }),
    tokens: z.number().int().openapi({ example: 1 }),
  }).nullable().openapi({
    description: "Users and live service tokens holding a custom role; null for built-in ones.",
  }),
  created_at: z.string().nullable().openapi({ example: "2026-01-05T09:30:00.000Z" }),
  updated_at: z.string().nullable().openapi({ example: "2026-01-20T14:10:00.000Z" }),
}).openapi("Role");

const Name = Text(100).openapi({ example: "Billing auditor" });
const Description = Text(500).openapi({ example: "Reads billing and finance; changes nothing." });
const Permissions = z.array(Permission).min(1).max(PERMISSIONS.length).openapi({
  example: ["billing:read", "finance:read", "tenants:read"],
  description: "Permissions from GET /v1/admin/permissions; you must hold every one.",
});

const CreateRole = z.strictObject({
  name: Name,
  description: Description.optional(),
  permissions: Permissions,
  tenant_scoped: z.boolean().optional().openapi({
    example: false,
    description: "Only tenant permissions, granted inside the holder's own tenants. Fixed at " +
      "creation.",
  }),
}).openapi("CreateRole", {
  example: {
    name: "Billing auditor",
    description: "Reads billing and finance; changes nothing.",
    permissions: ["billing:read", "finance:read", "tenants:read"],
  },
});

const UpdateRole = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  permissions: Permissions.optional(),
}).openapi("UpdateRole", {
  example: { permissions: ["billing:read", "finance:read", "tenants:read", "usage:read"] },
});

const RoleParams = z.strictObject({
  id: z.string().regex(
    new RegExp(`^rol_[0-9A-HJKMNP-TV-Z]{26}$|^(${PLATFORM_ROLES.join("|")})$`),
    "must be a rol_ id or a built-in role",
  ).openapi({ param: { name: "id", in: "path" }, example: ROLE_ID }),
});

const PermissionSchema = z.object({
  permission: Permission.openapi({ example: "finance:read" }),
  description: z.string().openapi({
    example: "Read the finance reports (revenue, MRR, a tenant's earnings).",
  }),
  tenant: z.boolean().openapi({
    example: true,
    description: "Checked inside a tenant on `{tenant}` routes; a tenant-scoped role may hold it.",
  }),
  routes: z.array(z.string()).openapi({
    example: ["GET /v1/admin/finance/analytics", "GET /v1/tenants/{tenant}/earnings"],
    description: "Every route that needs it (`METHOD /path`).",
  }),
  builtin_roles: z.array(z.enum(PLATFORM_ROLES)).openapi({
    example: ["super_admin", "finance"],
    description: "The built-in platform roles granting it.",
  }),
}).openapi("PermissionEntry");

/** The permission table, built once from the access table. */
const PERMISSION_TABLE = PERMISSIONS.map((permission) => ({
  permission,
  description: PERMISSION_DESCRIPTIONS[permission],
  tenant: TENANT_PERMISSIONS.has(permission),
  routes: Object.entries(ROUTE_ACCESS).filter(([, a]) => a === permission).map(([k]) => k),
  builtin_roles: PLATFORM_ROLES.filter((r) =>
    PLATFORM_ROLE_GRANTS[r].platform.has(permission) ||
    PLATFORM_ROLE_GRANTS[r].inTenants.has(permission)
  ),
}));

const tags = ["Roles"];
const GRANT_RULE = "You must hold every permission the role holds (403 otherwise).";
const one = envelope(RoleSchema);
const view = <T>(r: T) => r;

export function roleRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/roles",
      tags,
      summary: "List roles: the built-in platform roles, then custom roles by creation",
      request: {
        query: z.strictObject({
          limit: PageQuery.limit,
          offset: PageQuery.offset,
          page: PageQuery.page,
        }),
      },
      responses: { 200: jsonResponse(listEnvelope(RoleSchema), "A page of roles.") },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const { items, total } = await listRoles(c.get("svc"), {
        offset: skipOf(query),
        limit: query.limit,
      });
      const has_more = skipOf(query) + items.length < total;
      return okList(c, { items, total, has_more, next_cursor: null }, query.limit, view);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/roles",
      tags,
      summary: "Create a custom role",
      description:
        `Names are unique regardless of case, built-in ones included (409). ${GRANT_RULE}`,
      request: { body: jsonBody(CreateRole) },
      responses: { 201: jsonResponse(one, "Created.") },
    }),
    async (c) => {
      const role = await createRole(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("json"),
      );
      c.header("Location", `/v1/admin/roles/${role.value.id}`);
      return okRecord(c, role, view, 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/roles/{id}",
      tags,
      summary: "Get a role, with how many users and tokens hold it",
      request: { params: RoleParams },
      responses: { 200: jsonResponse(one, "The role.") },
    }),
    async (c) => okRecord(c, await getRole(c.get("svc"), c.req.valid("param").id), view),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/admin/roles/{id}",
      tags,
      summary: "Change a custom role's name, description or permissions",
      description: "Its holders have the new permissions at once on this process, and within " +
        "the role table's refresh (`STEWARD_VERIFY_CACHE_MS`, 5 s by default) on the others. " +
        `${GRANT_RULE} Built-in roles are read-only: 409 with \`details.reason\` ` +
        "`builtin_role`.",
      request: { params: RoleParams, body: jsonBody(UpdateRole) },
      responses: { 200: jsonResponse(one, "Updated.") },
    }),
    async (c) => {
      const role = await updateRole(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, role, view);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/admin/roles/{id}",
      tags,
      summary: "Delete a custom role no one holds",
      description: "409 with `details.reason` `role_in_use` and the `users` and `tokens` " +
        "holding it while any user or unrevoked token does; 409 `builtin_role` for a built-in " +
        "role.",
      request: { params: RoleParams },
      responses: { 200: jsonResponse(one, "The deleted role.") },
    }),
    async (c) => {
      const role = await deleteRole(c.get("svc"), actorOf(c), c.req.valid("param").id, ifMatch(c));
      return okRecord(c, role, view);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/permissions",
      tags,
      summary: "The permission table: each permission, what it allows and the routes needing it",
      responses: {
        200: jsonResponse(envelope(z.array(PermissionSchema)), "Every permission."),
      },
    }),
    (c) => ok(c, PERMISSION_TABLE),
  );

  return app;
}
