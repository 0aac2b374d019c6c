/** A tenant's members: who belongs to it and with which role. A tenant always keeps an owner. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  addMember,
  changeMemberRole,
  listMembers,
  type Member,
  removeMember,
} from "../../domain/identity/memberships.ts";
import { TENANT_ROLES } from "../../domain/access/permissions.ts";
import type { AppEnv } from "../context.ts";
import { actorOf, ifMatch, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  envelope,
  idOf,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  TenantParams,
} from "../schemas.ts";
import { maskEmail, maskName } from "../views.ts";

const Role = z.enum(TENANT_ROLES);

// Ada, who created Acme Inc. and so became its owner.
const ADA = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

const MemberSchema = z.object({
  user_id: z.string().openapi({ example: ADA }),
  email: z.string().nullable().openapi({ example: "ada@example.com" }),
  name: z.string().nullable().openapi({ example: "Ada Lovelace" }),
  role: Role,
  created_by: z.string().openapi({ example: ADA }),
  created_at: z.string().openapi({ example: "2026-01-05T09:30:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-05T09:30:00.000Z" }),
}).openapi("Member");

const MemberParams = TenantParams.extend({
  user_id: idOf("usr").openapi({ param: { name: "user_id", in: "path" } }),
});

const AddMember = z.strictObject({ user_id: idOf("usr"), role: Role }).openapi("AddMember", {
  example: { user_id: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2B", role: "member" },
});
const UpdateMember = z.strictObject({ role: Role }).openapi("UpdateMember", {
  example: { role: "admin" },
});
const ListQuery = z.strictObject({ ...PageQuery, role: Role.optional() });

/** Support staff read emails and names masked. */
const memberView = (c: Context<AppEnv>) => (m: Member) => ({
  user_id: m.user_id,
  email: m.email && c.get("principal").masked ? maskEmail(m.email) : m.email,
  name: m.name && c.get("principal").masked ? maskName(m.name) : m.name,
  role: m.role,
  created_by: m.created_by,
  created_at: m.created_at,
  updated_at: m.updated_at,
});

const one = envelope(MemberSchema);
const tags = ["Members"];
const OWNER_RULE = "A tenant always keeps at least one owner (409 otherwise); only owners, or " +
  "platform staff holding `members:write`, grant or take away `owner` (403 otherwise).";

export function memberRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/members",
      tags,
      summary: "List the tenant's members",
      request: { params: TenantParams, query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(MemberSchema), "A page of members.") },
    }),
    async (c) => {
      const { role, ...page } = c.req.valid("query");
      const found = await listMembers(c.get("svc"), c.get("tenant").value.id, { role }, page);
      return okList(c, found, page.limit, memberView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/members",
      tags,
      summary: "Add an existing user as a member",
      description: `409 when the user is already a member. ${OWNER_RULE}`,
      request: { params: TenantParams, body: jsonBody(AddMember) },
      responses: { 201: jsonResponse(one, "Added; `ETag` is the membership's version.") },
    }),
    async (c) => {
      const tenant = c.get("tenant").value;
      const member = await addMember(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        tenant,
        c.req.valid("json"),
      );
      c.header("Location", `/v1/tenants/${tenant.id}/members/${member.value.user_id}`);
      return okRecord(c, member, memberView(c), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/tenants/{tenant}/members/{user_id}",
      tags,
      summary: "Change a member's role",
      description: `Send \`If-Match\` to change only the version you read. ${OWNER_RULE}`,
      request: { params: MemberParams, body: jsonBody(UpdateMember) },
      responses: { 200: jsonResponse(one, "Updated.") },
    }),
    async (c) => {
      const member = await changeMemberRole(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.get("tenant").value,
        c.req.valid("param").user_id,
        c.req.valid("json").role,
        ifMatch(c),
      );
      return okRecord(c, member, memberView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/tenants/{tenant}/members/{user_id}",
      tags,
      summary: "Remove a member",
      description: OWNER_RULE,
      request: { params: MemberParams },
      responses: { 200: jsonResponse(one, "The removed membership.") },
    }),
    async (c) => {
      const member = await removeMember(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.get("tenant").value,
        c.req.valid("param").user_id,
        ifMatch(c),
      );
      return okRecord(c, member, memberView(c));
    },
  );

  return app;
}
