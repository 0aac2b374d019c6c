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

const EmailSchema = z.object({
  id: z.string(),
  to: z.string(),
  from: z.string(),
  subject: z.string(),
  template: z.enum(TEMPLATES),
  tenant_id: z.string().nullable(),
  status: z.enum(["queued", "sent", "failed", "captured"]).openapi({
    description: "`captured`: no SMTP server is configured; the message is kept, not sent.",
  }),
  attempts: z.number().int(),
  smtp_response: z.string().nullable().openapi({
    description: "The SMTP server's last answer, or why the connection failed.",
  }),
  created_at: z.string(),
  updated_at: z.string(),
  sent_at: z.string().nullable(),
  expires_at: z.string(),
}).openapi("Email");

const EmailDetail = EmailSchema.extend({
  text: z.string().nullable().openapi({ description: "Null once sent: the body is not kept." }),
  html: z.string().nullable(),
}).openapi("EmailDetail");

const view = ({ body: _, ...shown }: { body: unknown } & z.infer<typeof EmailSchema>) => shown;

const Email = z.string().email().max(320);

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
      const page = await listEmails(c.var.svc, filter, { limit, cursor, offset, page: pageNo });
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
      const { value, versionstamp, rendered } = await getEmail(c.var.svc, c.req.valid("param").id);
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
      const message = await sendEmail(c.var.svc, {
        to: to.toLowerCase(),
        template: "test",
        vars: { sent_by: actorOf(c).id },
      });
      return ok(c, view(message), 202);
    },
  );

  return app;
}
