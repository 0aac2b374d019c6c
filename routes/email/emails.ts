/**
 * The platform's mail: the messages it sent or keeps (the development outbox, like Mailpit: each
 * message with its text and HTML while it has them), and a test message through the platform's
 * SMTP settings.
 */
import { z } from "@hono/zod-openapi";
import { getEmail, listEmails, sendEmail } from "../../domain/email/outbox.ts";
import { TEMPLATES } from "../../domain/email/templates.ts";
import { actorOf, ok, okList } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, idOf, jsonBody, jsonResponse, listEnvelope, PageQuery } from "../schemas.ts";

// The invitation Ada sent Grace to join Acme Inc., delivered through SMTP.
const MESSAGE = {
  id: "eml_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  to: "grace@example.com",
  from: "Steward <no-reply@example.com>",
  subject: "You are invited to join Acme Inc. on Steward",
  template: "invitation",
  tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  created_at: "2026-01-20T10:00:00.000Z",
} as const;
const INVITATION_LINK = "https://app.example.com/console/accept-invitation?token=" +
  "sti_EXAMPLEinvitationTOKENdoNotUse0000000000000";

const EmailSchema = z.object({
  id: z.string().openapi({ example: MESSAGE.id }),
  to: z.string().openapi({ example: MESSAGE.to }),
  from: z.string().openapi({ example: MESSAGE.from }),
  subject: z.string().openapi({ example: MESSAGE.subject }),
  template: z.enum(TEMPLATES).openapi({ example: MESSAGE.template }),
  tenant_id: z.string().nullable().openapi({ example: MESSAGE.tenant_id }),
  status: z.enum(["queued", "sent", "failed", "captured"]).openapi({
    example: "sent",
    description: "`captured`: no SMTP server is configured; the message is kept, not sent.",
  }),
  attempts: z.number().int().openapi({ example: 1 }),
  smtp_response: z.string().nullable().openapi({
    example: "250 2.0.0 OK: queued as 4Xk9TzQ1",
    description: "The SMTP server's last answer, or why the connection failed.",
  }),
  created_at: z.string().openapi({ example: MESSAGE.created_at }),
  updated_at: z.string().openapi({ example: "2026-01-20T10:00:02.000Z" }),
  sent_at: z.string().nullable().openapi({ example: "2026-01-20T10:00:02.000Z" }),
  expires_at: z.string().openapi({ example: "2026-01-27T10:00:02.000Z" }),
}).openapi("Email");

const TEXT_EXAMPLE = [
  "Ada Lovelace invited you to join Acme Inc. as member.",
  `Accept the invitation: ${INVITATION_LINK}`,
  "The invitation expires at 2026-01-27T10:00:00.000Z. If you did not expect it, ignore this message.",
  "",
  "— Steward",
].join("\n");
const HTML_EXAMPLE = "<!doctype html><html><body>" +
  "<p>Ada Lovelace invited you to join Acme Inc. as member.</p>" +
  `<p><a href="${INVITATION_LINK}">Accept the invitation</a></p>` +
  "<p>The invitation expires at 2026-01-27T10:00:00.000Z. If you did not expect it, ignore this message.</p>" +
  "<p>— Steward</p></body></html>";

const EmailDetail = EmailSchema.extend({
  text: z.string().nullable().openapi({
    example: TEXT_EXAMPLE,
    description: "Null once sent: the body is not kept.",
  }),
  html: z.string().nullable().openapi({ example: HTML_EXAMPLE }),
}).openapi("EmailDetail", {
  // Whole, so the body is shown on a message that still keeps it: one captured without SMTP.
  example: {
    ...MESSAGE,
    status: "captured",
    attempts: 0,
    smtp_response: null,
    updated_at: MESSAGE.created_at,
    sent_at: null,
    expires_at: "2026-01-21T10:00:00.000Z",
    text: TEXT_EXAMPLE,
    html: HTML_EXAMPLE,
  },
});

const view = ({ body: _, ...shown }: { body: unknown } & z.infer<typeof EmailSchema>) => shown;

const Email = z.string().email().max(320).openapi({ example: "ops@example.com" });

const tags = ["Email"];

export function emailRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/emails",
      tags,
      summary: "Messages sent, failing, or kept in the development outbox (newest first)",
      request: {
        query: z.strictObject({
          ...PageQuery,
          to: Email.optional(),
          template: z.enum(TEMPLATES).optional(),
          status: z.enum(["queued", "sent", "failed", "captured"]).optional(),
          tenant_id: z.string().max(64).optional(),
        }),
      },
      responses: { 200: jsonResponse(listEnvelope(EmailSchema), "A page of messages.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...filter } = c.req.valid("query");
      const page = await listEmails(c.get("svc"), filter, { limit, cursor, offset, page: pageNo });
      return okList(c, page, limit, view);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/emails/{id}",
      tags,
      summary: "A message, with its text and HTML while they are kept",
      request: {
        params: z.strictObject({ id: idOf("eml").openapi({ param: { name: "id", in: "path" } }) }),
      },
      responses: { 200: jsonResponse(envelope(EmailDetail), "The message.") },
    }),
    async (c) => {
      const { value, versionstamp, rendered } = await getEmail(
        c.get("svc"),
        c.req.valid("param").id,
      );
      return ok(
        c,
        { ...view(value), text: rendered?.text ?? null, html: rendered?.html ?? null },
        200,
        versionstamp,
      );
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/emails/test",
      tags,
      summary: "Send a test message through the platform's mail settings",
      request: {
        body: jsonBody(
          z.strictObject({ to: Email }).openapi({ example: { to: "ops@example.com" } }),
        ),
      },
      responses: {
        202: jsonResponse(envelope(EmailSchema), "Queued (or captured without SMTP)."),
      },
    }),
    async (c) => {
      const { to } = c.req.valid("json");
      const message = await sendEmail(c.get("svc"), {
        to: to.toLowerCase(),
        template: "test",
        vars: { sent_by: actorOf(c).id },
      });
      return ok(c, view(message), 202);
    },
  );

  return app;
}
