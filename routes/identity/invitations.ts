/**
 * Invitations to join a tenant (token shown once, stored hashed), accepting one, and the
 * maintenance task that makes tenants' creators their owners.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  acceptInvitation,
  createInvitation,
  type Invitation,
  invitationView,
  listInvitations,
  revokeInvitation,
} from "../../domain/identity/invitations.ts";
import { backfillOwners } from "../../domain/identity/memberships.ts";
import { TENANT_ROLES } from "../../domain/access/permissions.ts";
import type { AppEnv } from "../context.ts";
import { actorOf, ifMatch, ok, okList, okRecord, originOf } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import {
  envelope,
  idOf,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  TenantParams,
  Text,
} from "../schemas.ts";
import { maskEmail } from "../views.ts";

const STATUSES = ["pending", "accepted", "revoked", "expired"] as const;
const Role = z.enum(TENANT_ROLES).openapi({ example: "member" });

// Ada (owner of Acme Inc.) invites Grace, who has no account yet.
const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const ADA = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const GRACE = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2B";
const TOKEN = "sti_EXAMPLEinvitationTOKENdoNotUse0000000000000";
const CREATED_AT = "2026-01-20T10:00:00.000Z";
const EXPIRES_AT = "2026-01-27T10:00:00.000Z";
const ACCEPTED_AT = "2026-01-21T16:30:00.000Z";

const InvitationSchema = z.object({
  id: z.string().openapi({ example: "inv_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  email: z.string().openapi({ example: "grace@example.com" }),
  role: Role,
  status: z.enum(STATUSES).openapi({
    example: "pending",
    description: "`expired` once `expires_at` has passed while pending.",
  }),
  expires_at: z.string().openapi({ example: EXPIRES_AT }),
  created_by: z.string().openapi({ example: ADA }),
  created_at: z.string().openapi({ example: CREATED_AT }),
  updated_at: z.string().openapi({ example: CREATED_AT }),
  // Pending: neither accepted nor revoked yet.
  accepted_at: z.string().nullable().openapi({ example: null }),
  accepted_by: z.string().nullable().openapi({ example: null }),
  revoked_at: z.string().nullable().openapi({ example: null }),
}).openapi("Invitation");

const CreateInvitation = z.strictObject({
  email: z.string().trim().max(320).email().openapi({ example: "grace@example.com" }),
  role: Role,
  expires_in_days: z.number().int().min(1).max(30).default(7),
}).openapi("CreateInvitation", {
  example: { email: "grace@example.com", role: "member", expires_in_days: 7 },
});

const AcceptInvitation = z.strictObject({
  token: z.string().min(1).max(256).openapi({ example: TOKEN }),
  name: Text(200).optional().openapi({
    example: "Grace Hopper",
    description: "Required when the email has no account.",
  }),
  password: z.string().min(1).max(256).optional().openapi({
    example: "compiler-cobol-nanosecond",
    description: "Required when the email has no account (12–256 characters).",
  }),
}).openapi("AcceptInvitation", {
  example: { token: TOKEN, name: "Grace Hopper", password: "compiler-cobol-nanosecond" },
});

const InvitationParams = TenantParams.extend({
  id: idOf("inv").openapi({ param: { name: "id", in: "path" } }),
});

const ListQuery = z.strictObject({ ...PageQuery, status: z.enum(STATUSES).optional() });

/** Status computed now; support staff read the email masked. */
const view = (c: Context<AppEnv>) => {
  const base = invitationView(c.get("svc").now());
  return (inv: Invitation) => {
    const shown = base(inv);
    return c.get("principal")?.masked ? { ...shown, email: maskEmail(shown.email) } : shown;
  };
};

const Accepted = z.object({
  invitation: InvitationSchema,
  user: z.object({
    id: z.string().openapi({ example: GRACE }),
    email: z.string().openapi({ example: "grace@example.com" }),
    name: z.string().openapi({ example: "Grace Hopper" }),
  }),
  membership: z.object({
    tenant_id: z.string().openapi({ example: TENANT_ID }),
    user_id: z.string().openapi({ example: GRACE }),
    role: Role,
  }),
  user_created: z.boolean().openapi({ description: "True when the email had no account yet." }),
}).openapi("InvitationAccepted", {
  // Whole, so the invitation reads accepted rather than the pending one of `Invitation`.
  example: {
    invitation: {
      id: "inv_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      tenant_id: TENANT_ID,
      email: "grace@example.com",
      role: "member",
      status: "accepted",
      expires_at: EXPIRES_AT,
      created_by: ADA,
      created_at: CREATED_AT,
      updated_at: ACCEPTED_AT,
      accepted_at: ACCEPTED_AT,
      accepted_by: GRACE,
      revoked_at: null,
    },
    user: { id: GRACE, email: "grace@example.com", name: "Grace Hopper" },
    membership: { tenant_id: TENANT_ID, user_id: GRACE, role: "member" },
    user_created: true,
  },
});

const tags = ["Invitations"];

export function invitationRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/invitations",
      tags,
      summary: "List the tenant's invitations (newest first)",
      request: { params: TenantParams, query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(InvitationSchema), "A page of invitations.") },
    }),
    async (c) => {
      const { status, ...page } = c.req.valid("query");
      const found = await listInvitations(c.get("svc"), c.get("tenant").value.id, { status }, page);
      return okList(c, found, page.limit, view(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/invitations",
      tags,
      summary: "Invite an email to join the tenant",
      description: "The token is returned once, in `data.token`, and mailed to the invitee " +
        "with a link to accept; only its SHA-256 is stored, and no event carries it. " +
        "Only owners (or platform staff with `members:write`) invite owners.",
      request: { params: TenantParams, body: jsonBody(CreateInvitation) },
      responses: {
        201: jsonResponse(
          envelope(InvitationSchema.extend({ token: z.string().openapi({ example: TOKEN }) })),
          "Created; send `token` to the invitee.",
        ),
      },
    }),
    async (c) => {
      const tenant = c.get("tenant").value;
      const { secret, invitation } = await createInvitation(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        tenant,
        c.req.valid("json"),
      );
      c.header("Location", `/v1/tenants/${tenant.id}/invitations/${invitation.value.id}`);
      const shown = view(c);
      return okRecord(c, invitation, (i) => ({ ...shown(i), token: secret }), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/tenants/{tenant}/invitations/{id}",
      tags,
      summary: "Revoke an invitation",
      description: "Its token stops working at once. Revoking twice changes nothing; an " +
        "accepted invitation is 409.",
      request: { params: InvitationParams },
      responses: { 200: jsonResponse(envelope(InvitationSchema), "The revoked invitation.") },
    }),
    async (c) => {
      const invitation = await revokeInvitation(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        c.req.valid("param").id,
        ifMatch(c),
      );
      return okRecord(c, invitation, view(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/invitations/accept",
      tags,
      summary: "Accept an invitation with its token",
      description: "Creates the account when the email has none (then `name` and `password` " +
        "are required; an existing account keeps its name and password), adds the membership " +
        "and marks the invitation accepted, in one commit. Unknown token: 404; accepted, " +
        "revoked or expired: 409.",
      request: { body: jsonBody(AcceptInvitation) },
      responses: {
        200: jsonResponse(envelope(Accepted), "Accepted."),
        404: errorResponse("No invitation was ever made with this token."),
      },
    }),
    async (c) => {
      const result = await acceptInvitation(c.get("svc"), c.req.valid("json"), originOf(c));
      const u = result.user;
      return ok(c, {
        invitation: invitationView(c.get("svc").now())(result.invitation.value),
        // Made or found by the invitation's email, so that is the user's email.
        user: { id: u.id, email: result.invitation.value.email, name: u.name },
        membership: {
          tenant_id: result.membership.tenant_id,
          user_id: u.id,
          role: result.membership.role,
        },
        user_created: result.user_created,
      }, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/maintenance/backfill-members",
      tags: ["Maintenance"],
      summary: "Make each tenant's creator its owner where it has none",
      description: "For tenants created by a user before creators became owners. Safe to run " +
        "any number of times; returns how many memberships it added.",
      responses: {
        200: jsonResponse(
          envelope(z.object({
            ok: z.literal(true),
            seeded: z.number().int().openapi({ example: 3 }),
          })),
          "Done.",
        ),
      },
    }),
    async (c) =>
      ok(c, { ok: true as const, seeded: await backfillOwners(c.get("svc"), actorOf(c)) }),
  );

  return app;
}
