/** Logging in and out, and who the caller is. */
import { z } from "@hono/zod-openapi";
import { AppError } from "../../domain/shared/errors.ts";
import { PERMISSIONS, TENANT_ROLES } from "../../domain/access/permissions.ts";
import { endSession, login } from "../../domain/identity/sessions.ts";
import { completePasswordReset } from "../../domain/identity/password_resets.ts";
import { getUser } from "../../domain/identity/users.ts";
import { Username, UserSchema, userShown } from "./users.ts";
import { listMemberships } from "../../domain/access/principal.ts";
import { actorOf, ok, originOf } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import { envelope, jsonBody, jsonResponse, orNull, Timestamp } from "../schemas.ts";

const ADA = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const SESSION_ID = "ses_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

const LoginBody = z.strictObject({
  email: z.string().trim().max(320).email().optional().openapi({ example: "ada@example.com" }),
  username: Username.optional(),
  password: z.string().min(1).max(256).openapi({ example: "correct-horse-battery-staple" }),
}).refine((b) => (b.email === undefined) !== (b.username === undefined), {
  message: "give either an email or a username",
  path: ["email"],
  // Said even when the password is missing too, so `{}` names every field it needs.
  when: (p) => typeof p.value === "object" && p.value !== null,
}).openapi("LoginRequest", {
  example: { email: "ada@example.com", password: "correct-horse-battery-staple" },
});

const PasswordReset = z.strictObject({
  token: z.string().min(1).max(256).openapi({
    example: "str_EXAMPLEresetTOKENdoNotUse000000000000000000",
  }),
  new_password: z.string().min(1).max(1024).openapi({
    example: "plum-kettle-orbit-harbor",
    description: "12–256 characters, not the account's email.",
  }),
}).openapi("PasswordResetRequest", {
  example: {
    token: "str_EXAMPLEresetTOKENdoNotUse000000000000000000",
    new_password: "plum-kettle-orbit-harbor",
  },
});

// Ada, a tenant owner with no platform role, signed in to the console.
const Me = z.object({
  type: z.enum(["user", "service_token"]),
  id: z.string().openapi({ example: ADA }),
  user: orNull(UserSchema),
  platform_role: UserSchema.shape.platform_role,
  permissions: z.array(z.enum(PERMISSIONS)).openapi({
    example: [],
    description: "Effective platform-wide permissions.",
  }),
  sees_tenants: z.enum(["all", "test", "none"]).openapi({ example: "none" }),
  tenant_id: z.string().nullable().openapi({
    example: null,
    description: "The tenant a bound service token acts in.",
  }),
  memberships: z.array(z.object({
    tenant_id: z.string().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
    role: z.enum(TENANT_ROLES),
  })),
  session_id: z.string().nullable().openapi({ example: SESSION_ID }),
}).openapi("Principal");

export function authRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/auth/login",
      tags: ["Auth"],
      summary: "Log in with an email or a username, and a password",
      description: "Returns a session token once, in `data.token`. Failures are counted per " +
        "account, whichever name it is given by: after five, each further attempt waits longer, " +
        "up to 15 minutes.",
      request: { body: jsonBody(LoginBody) },
      responses: {
        200: jsonResponse(
          envelope(
            z.object({
              token: z.string().openapi({
                example: "sts_EXAMPLEsessionTOKENdoNotUse0000000000000000",
              }),
              session_id: z.string().openapi({ example: SESSION_ID }),
              expires_at: Timestamp.openapi({ example: "2026-01-31T20:00:00.000Z" }),
              user: UserSchema,
            }),
          ),
          "Logged in.",
        ),
        401: errorResponse("Wrong login or password, or the user may not log in."),
      },
    }),
    async (c) => {
      const result = await login(c.get("svc"), c.req.valid("json"), originOf(c));
      return ok(c, {
        token: result.token,
        session_id: result.session.id,
        expires_at: result.session.expires_at,
        user: userShown(result.user),
      }, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/auth/password-reset",
      tags: ["Auth"],
      summary: "Set a new password with a reset token",
      description: "The token (from the link mailed to the user) works once, " +
        "within an hour, and only if no newer reset was requested. Every session of the user ends.",
      request: { body: jsonBody(PasswordReset) },
      responses: {
        200: jsonResponse(
          envelope(z.object({
            user_id: z.string().openapi({ example: ADA }),
            sessions_revoked: z.number().int().openapi({ example: 2 }),
          })),
          "The password is set.",
        ),
        404: errorResponse("No reset was ever made with this token."),
      },
    }),
    async (c) => {
      const done = await completePasswordReset(c.get("svc"), c.req.valid("json"), originOf(c));
      return ok(c, done, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/auth/logout",
      tags: ["Auth"],
      summary: "End the current session",
      responses: {
        200: jsonResponse(envelope(z.object({ revoked: z.literal(true) })), "Logged out."),
      },
    }),
    async (c) => {
      const { principal } = c.var;
      if (!principal.session_id) {
        throw new AppError(
          "BAD_REQUEST",
          "only sessions log out; revoke a service token with DELETE /v1/admin/tokens/{id}",
        );
      }
      await endSession(c.get("svc"), actorOf(c), principal.session_id);
      return ok(c, { revoked: true as const });
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/auth/me",
      tags: ["Auth"],
      summary: "The caller: identity, roles and effective permissions",
      responses: { 200: jsonResponse(envelope(Me), "The principal.") },
    }),
    async (c) => {
      const { principal: p, svc } = c.var;
      const [user, memberships] = p.type === "user"
        ? await Promise.all([getUser(svc, p.id), listMemberships(svc, p.id)])
        : [null, []];
      return ok(c, {
        type: p.type,
        id: p.id,
        user: user && userShown(user),
        platform_role: p.platform_role,
        permissions: [...p.platform].sort(),
        sees_tenants: p.sees,
        tenant_id: p.tenant_id,
        memberships,
        session_id: p.session_id,
      });
    },
  );

  return app;
}
