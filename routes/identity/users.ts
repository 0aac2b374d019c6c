/**
 * The people on the platform, for platform staff: accounts, access (block, suspend, sessions),
 * password resets and GDPR erasure.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { badRequest } from "../../domain/shared/errors.ts";
import { eraseUser } from "../../domain/identity/erasure.ts";
import { requestPasswordReset } from "../../domain/identity/password_resets.ts";
import { PLATFORM_ROLES } from "../../domain/access/permissions.ts";
import { revokeUserSessions } from "../../domain/identity/sessions.ts";
import { resolveTenant } from "../../domain/tenancy/tenants.ts";
import { getUserDetail, type UserDetail } from "../../domain/identity/user_detail.ts";
import { setBlocked, suspendUser, updateUser } from "../../domain/identity/user_lifecycle.ts";
import {
  createUser,
  getUserRecord,
  listUsers,
  type User,
  USER_STATUSES,
  USERNAME_PATTERN,
} from "../../domain/identity/users.ts";
import type { AppEnv } from "../context.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { HOOK_RESPONSES } from "../plugins/plugins.ts";
import {
  envelope,
  idOf,
  IdParams,
  jsonBody,
  jsonResponse,
  listEnvelope,
  Metadata,
  MetadataPatch,
  PageQuery,
  Text,
  Timestamp,
} from "../schemas.ts";
import { maskEmail, maskIp, maskName } from "../views.ts";

const PlatformRole = z.enum(PLATFORM_ROLES);
const ADA = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

export const UserSchema = z.object({
  id: z.string().openapi({ example: ADA }),
  email: z.string().nullable().openapi({
    example: "ada@example.com",
    description: "Null for a user made by username only: such a user receives no mail " +
      "(password resets answer 409 with `details.reason` `no_email`).",
  }),
  username: z.string().nullable().openapi({ example: "ada" }),
  can_receive_mail: z.boolean().openapi({ example: true }),
  name: z.string().openapi({ example: "Ada Lovelace" }),
  status: z.enum(USER_STATUSES).openapi({
    example: "active",
    description: "`suspended` reads as `active` once `suspended_until` has passed.",
  }),
  platform_role: PlatformRole.nullable().openapi({ example: null }),
  roles: z.array(z.string()).openapi({
    example: ["rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"],
    description: "Custom roles held besides the platform role (GET /v1/admin/roles).",
  }),
  metadata: z.record(z.string(), z.string()).openapi({ example: { crm_id: "A-1234" } }),
  // An active user: no block, no suspension, not erased.
  blocked_reason: z.string().nullable().openapi({ example: null }),
  suspended_until: z.string().nullable().openapi({ example: null }),
  suspended_reason: z.string().nullable().openapi({ example: null }),
  created_at: z.string().openapi({ example: "2026-01-05T09:30:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-20T14:10:00.000Z" }),
  last_login_at: z.string().nullable().openapi({ example: "2026-01-31T08:00:00.000Z" }),
  deleted_at: z.string().nullable().openapi({ example: null }),
}).openapi("User");

const UserDetailSchema = UserSchema.extend({
  sessions: z.array(z.object({
    id: z.string().openapi({ example: "ses_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
    ip: z.string().nullable().openapi({ example: "203.0.113.7" }),
    user_agent: z.string().nullable().openapi({
      example: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Firefox/121.0",
    }),
    created_at: z.string().openapi({ example: "2026-01-31T08:00:00.000Z" }),
    last_seen_at: z.string().openapi({ example: "2026-01-31T11:45:00.000Z" }),
    expires_at: z.string().openapi({ example: "2026-01-31T20:00:00.000Z" }),
  })).openapi({ description: "Live sessions, oldest first." }),
  memberships: z.array(z.object({
    tenant_id: z.string().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
    tenant_slug: z.string().openapi({ example: "acme" }),
    tenant_name: z.string().openapi({ example: "Acme Inc." }),
    role: z.string().openapi({ example: "owner" }),
  })),
}).openapi("UserDetail");

const Email = z.string().trim().max(320).email().openapi({ example: "ada@example.com" });
export const Username = z.string().trim().regex(
  USERNAME_PATTERN,
  "3–64 letters, digits, '.', '_' or '-'",
)
  .openapi({
    example: "ada",
    description: "3–64 letters, digits, `.`, `_` and `-`; unique regardless of case. Logs in " +
      "like an email.",
  });
const RoleIds = z.array(idOf("rol")).max(50).openapi({
  example: ["rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"],
  description: "Custom role ids: the whole new list. Granting or taking away a role needs " +
    "every permission it holds (403 otherwise).",
});
const Password = z.string().min(1).max(1024).openapi({
  example: "correct-horse-battery-staple",
  description: "12–256 characters, not the account's email.",
});
const Name = Text(200).openapi({ example: "Ada Lovelace" });
const Reason = Text(500).nullable().optional().openapi({
  example: "Chargebacks on three invoices; under review",
});

const CreateUser = z.strictObject({
  email: Email.optional().openapi({
    description: "An email, a username or both. Without an email the user receives no mail.",
  }),
  username: Username.optional(),
  name: Name,
  password: Password.optional().openapi({
    description: "Without one, the user cannot log in " +
      "until a password reset or the admin CLI sets one.",
  }),
  platform_role: PlatformRole.nullable().optional().openapi({
    description: "Only a super admin grants a platform role.",
  }),
  metadata: Metadata.optional(),
}).refine((u) => u.email !== undefined || u.username !== undefined, {
  message: "give an email, a username, or both",
  path: ["email"],
}).openapi("CreateUser", {
  example: {
    email: "ada@example.com",
    name: "Ada Lovelace",
    password: "correct-horse-battery-staple",
    metadata: { crm_id: "A-1234" },
  },
});

const UpdateUser = z.strictObject({
  name: Name.optional(),
  metadata: MetadataPatch.optional(),
  status: z.enum(["active", "blocked"]).optional().openapi({
    description: "`active` lifts a block or a suspension; suspend with POST …/suspend.",
  }),
  platform_role: PlatformRole.nullable().optional().openapi({
    description: "Super admins only.",
  }),
  username: Username.nullable().optional().openapi({
    description: "Null removes it (not from a user without an email).",
  }),
  roles: RoleIds.optional(),
}).openapi("UpdateUser", {
  example: { name: "Ada Lovelace", metadata: { crm_id: "A-1234", legacy_id: null } },
});

const Block = z.strictObject({ blocked: z.boolean(), reason: Reason }).openapi("BlockUser", {
  example: { blocked: true, reason: "Chargebacks on three invoices; under review" },
});
const Suspend = z.strictObject({
  until: Timestamp.nullable().openapi({
    example: "2026-01-31T00:00:00.000Z",
    description: "Up to 366 days ahead; null lifts now.",
  }),
  reason: Reason,
}).openapi("SuspendUser", {
  example: { until: "2026-01-31T00:00:00.000Z", reason: "Unpaid invoice for January" },
});

const ListQuery = z.strictObject({
  ...PageQuery,
  search: z.string().trim().min(1).max(320).optional().openapi({
    description: "Case-insensitive prefix of the email, the username, the name or a word of " +
      "the name.",
  }),
  status: z.enum(USER_STATUSES).optional(),
  platform_role: PlatformRole.optional(),
  tenant: z.string().min(1).max(64).optional().openapi({
    description: "Members of this tenant (id or slug).",
  }),
});

const Params = IdParams("usr");

type Ctx = Context<AppEnv>;

/** What a user record answers: the fields added since always present. */
export const userShown = <U extends User>(u: U) => ({
  ...u,
  username: u.username ?? null,
  roles: u.roles ?? [],
  can_receive_mail: u.email !== null,
});

/** Support staff read emails, names and IPs masked. */
function userView(c: Ctx) {
  const masked = c.get("principal").masked;
  return <U extends User>(u: U) => {
    const shown = userShown(u);
    return masked
      ? { ...shown, email: shown.email && maskEmail(shown.email), name: maskName(u.name) }
      : shown;
  };
}

function detailView(c: Ctx) {
  const base = userView(c);
  return (u: UserDetail) => {
    const shown = base(u);
    if (!c.get("principal").masked) return shown;
    return { ...shown, sessions: shown.sessions.map((s) => ({ ...s, ip: s.ip && maskIp(s.ip) })) };
  };
}

const one = envelope(UserSchema);
const tags = ["Users"];
const STAFF_RULE = "Only a super admin acts on a user who holds a platform role, and nobody " +
  "blocks, suspends, erases, resets or re-roles their own account (403).";

export function userRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/users",
      tags,
      summary: "List users (oldest first)",
      description: "`total` is given for the unfiltered list.",
      request: { query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(UserSchema), "A page of users.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, tenant, ...filter } = c.req.valid("query");
      let tenant_id: string | undefined;
      if (tenant) {
        const found = await resolveTenant(c.get("svc"), tenant);
        if (!found) {
          throw badRequest("no such tenant", [{ path: ["query", "tenant"], message: "not found" }]);
        }
        tenant_id = found.value.id;
      }
      const page = await listUsers(c.get("svc"), { ...filter, tenant_id }, {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, userView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/users",
      tags,
      summary: "Create a user",
      description: "With an email, a username, or both. 409 when the email or the username " +
        "(case-insensitive) belongs to another user.",
      request: { body: jsonBody(CreateUser) },
      responses: { 201: jsonResponse(one, "Created."), ...HOOK_RESPONSES },
    }),
    async (c) => {
      const user = await createUser(
        c.get("svc"),
        actorOf(c),
        c.req.valid("json"),
        c.get("principal"),
      );
      c.header("Location", `/v1/users/${user.value.id}`);
      return okRecord(c, user, userView(c), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/users/{id}",
      tags,
      summary: "Get a user with its live sessions and its memberships",
      request: { params: Params },
      responses: { 200: jsonResponse(envelope(UserDetailSchema), "The user.") },
    }),
    async (c) =>
      okRecord(c, await getUserDetail(c.get("svc"), c.req.valid("param").id), detailView(c)),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/users/{id}",
      tags,
      summary: "Update name, username, metadata, status, platform role or custom roles",
      description: "Metadata is merged; a null value removes a key. Blocking ends every " +
        "session. `roles` replaces the custom roles; each role added or taken away needs every " +
        `permission it holds (403), an unknown role is 400. ${STAFF_RULE}`,
      request: { params: Params, body: jsonBody(UpdateUser) },
      responses: { 200: jsonResponse(one, "Updated.") },
    }),
    async (c) => {
      const user = await updateUser(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, user, userView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/users/{id}",
      tags,
      summary: "Erase a user (GDPR)",
      description: "Email and name become a tombstone, the password and sessions go, " +
        "memberships are removed, and the audit trail and the event outbox keep the user id " +
        `but lose the email, name, IP and user agent. The email is free again. ${STAFF_RULE}`,
      request: { params: Params },
      responses: { 200: jsonResponse(one, "The tombstone.") },
    }),
    async (c) => {
      const user = await eraseUser(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
        ifMatch(c),
      );
      return okRecord(c, user, userView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/users/{id}/block",
      tags,
      summary: "Block or unblock a user",
      description: `Blocking ends every session and stops logins. ${STAFF_RULE}`,
      request: { params: Params, body: jsonBody(Block) },
      responses: { 200: jsonResponse(one, "The user.") },
    }),
    async (c) => {
      const user = await setBlocked(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
        c.req.valid("json"),
      );
      return okRecord(c, user, userView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/users/{id}/suspend",
      tags,
      summary: "Suspend a user until a time (lifted by itself then)",
      description: `Ends every session and stops logins until \`until\`. ${STAFF_RULE}`,
      request: { params: Params, body: jsonBody(Suspend) },
      responses: { 200: jsonResponse(one, "The user.") },
    }),
    async (c) => {
      const user = await suspendUser(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
        c.req.valid("json"),
      );
      return okRecord(c, user, userView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/users/{id}/revoke-sessions",
      tags,
      summary: "End every session of a user",
      request: { params: Params },
      responses: {
        200: jsonResponse(
          envelope(z.object({ revoked: z.number().int().openapi({ example: 2 }) })),
          "How many ended.",
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const user = await getUserRecord(c.get("svc"), id);
      const revoked = user.value.status === "deleted"
        ? 0
        : await revokeUserSessions(c.get("svc"), actorOf(c), id);
      return ok(c, { revoked });
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/users/{id}/reset-password",
      tags,
      summary: "Send the user a password-reset token",
      description: "Creates a single-use token valid for one hour, stored hashed, and mails the " +
        "user a link with it. It is in no response and no event. A new request replaces the " +
        `last. ${STAFF_RULE}`,
      request: { params: Params },
      responses: {
        202: jsonResponse(
          envelope(z.object({
            requested: z.literal(true),
            expires_at: z.string().openapi({ example: "2026-01-31T13:00:00.000Z" }),
          })),
          "Requested; the token is on its way through the event.",
        ),
      },
    }),
    async (c) => {
      const { expires_at } = await requestPasswordReset(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.req.valid("param").id,
      );
      return ok(c, { requested: true as const, expires_at }, 202);
    },
  );

  return app;
}
