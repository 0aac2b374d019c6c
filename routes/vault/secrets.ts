/**
 * Tenant secrets (`/v1/tenants/{tenant}/secrets`): create, new versions, masked reads, audited
 * reveal, delete; the tenant's SMTP settings (the secret named `smtp`) and a test send through
 * them; and every tenant's secrets for the platform (`/v1/admin/secrets`). Values are never
 * answered in clear but by the reveal.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { sendTenantSmtpTest } from "../../domain/email/tenant_smtp.ts";
import { isIpLiteral } from "../../domain/shared/ip_address.ts";
import {
  createSecret,
  deleteSecret,
  listAllSecrets,
  listSecrets,
  MASK,
  type MaskedValue,
  maskValue,
  MAX_VALUE_LENGTH,
  readSecret,
  revealSecret,
  type Secret,
  SECRET_NAME,
  SECRET_TYPES,
  type SecretValue,
  type SecretVersion,
  secretView,
  SMTP_SECRET,
  updateSecret,
} from "../../domain/vault/secrets.ts";
import type { AppEnv } from "../context.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
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
} from "../schemas.ts";

/** Values shared by the documented examples: Acme's SMTP settings, at their second version. */
const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const USER_ID = "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const CREATED_AT = "2026-01-15T09:30:00.000Z";
const UPDATED_AT = "2026-01-31T11:00:00.000Z";
const SMTP_EXAMPLE = {
  host: "smtp.example.com",
  port: 587,
  secure: false,
  username: "apikey",
  password: "EXAMPLE-ONLY-not-a-password",
  from: "Acme <no-reply@acme.example.com>",
};
const GENERIC_EXAMPLE = "EXAMPLE-ONLY-stripe-restricted-key";

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const ADDRESS = /^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/;
/** `addr@example.com`, or `Name <addr@example.com>`. */
const isSender = (s: string) => ADDRESS.test(/^[^<>]*<([^<>]*)>$/.exec(s)?.[1] ?? s);

/** A single line of 1..max characters, kept as written (no trimming: it is a credential). */
const Line = (max: number) =>
  z.string().min(1).max(max)
    .refine((s) => !CONTROL.test(s), "must not contain control characters")
    .refine((s) => s.isWellFormed(), "must be well-formed Unicode");

const Name = z.string().regex(SECRET_NAME, "1–64 of a-z 0-9 _ . - (a letter or digit first)")
  .openapi({ example: SMTP_SECRET });
const Type = z.enum(SECRET_TYPES).openapi({
  description: "`generic`: a string; `smtp`: SMTP settings (the name `smtp` is reserved for " +
    "the tenant's own mail server, and must be of this type).",
  example: "smtp",
});

const GenericValue = z.string().min(1).max(MAX_VALUE_LENGTH)
  .refine((s) => s.isWellFormed(), "must be well-formed Unicode")
  .openapi({
    description: `Any text of 1–${MAX_VALUE_LENGTH} characters (newlines allowed).`,
    example: GENERIC_EXAMPLE,
  });

const SmtpSettings = z.strictObject({
  host: z.string().min(1).max(253)
    .refine((h) => HOST_NAME.test(h) || isIpLiteral(h), "must be a host name or an IP address")
    .openapi({
      description: "Must resolve to public addresses (the webhook rules) to be sent through.",
      example: SMTP_EXAMPLE.host,
    }),
  port: z.number().int().min(1).max(65535).openapi({ example: SMTP_EXAMPLE.port }),
  secure: z.boolean().openapi({
    description: "TLS from the first byte (usually port 465); false: STARTTLS when offered.",
    example: SMTP_EXAMPLE.secure,
  }),
  username: Line(320).openapi({ example: SMTP_EXAMPLE.username }),
  password: Line(1024).openapi({ example: SMTP_EXAMPLE.password }),
  from: Line(320).refine(isSender, "must be addr@example.com or Name <addr@example.com>")
    .openapi({ description: "The sender of the tenant's mail.", example: SMTP_EXAMPLE.from }),
}).openapi("SmtpSettings");

const CreateSecret = z.discriminatedUnion("type", [
  z.strictObject({ name: Name, type: z.literal("generic"), value: GenericValue }),
  z.strictObject({ name: Name, type: z.literal("smtp"), value: SmtpSettings }),
]).openapi("CreateSecret", {
  description: "`value` is a string for a `generic` secret, the settings for an `smtp` one.",
  example: { name: SMTP_SECRET, type: "smtp", value: SMTP_EXAMPLE },
});

const ReplaceSecret = z.strictObject({
  value: z.union([GenericValue, SmtpSettings]).openapi({
    description: "The whole new value, of the secret's type (which does not change).",
    example: SMTP_EXAMPLE,
  }),
}).openapi("ReplaceSecret", { example: { value: { ...SMTP_EXAMPLE, port: 465, secure: true } } });

const Reason = Text(500).min(3).openapi({
  description: "Why the value is needed, 3–500 characters: kept in the audit trail.",
  example: "migrating the mail relay to the new provider",
});
const Version = z.number().int().min(1).openapi({ example: 1 });

const RevealSecret = z.strictObject({
  reason: Reason,
  version: Version.optional().openapi({ description: "A kept version; default the current." }),
}).openapi("RevealSecret", { example: { reason: "migrating the mail relay to the new provider" } });

const SmtpTest = z.strictObject({
  to: z.email().max(320).optional().openapi({
    description: "Default: the address of the settings' `from`.",
    example: "ops@acme.example.com",
  }),
}).openapi("SendSmtpTest", { example: { to: "ops@acme.example.com" } });

const SecretMetadata = z.object({
  id: z.string().openapi({ example: "sec_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  tenant_id: z.string().openapi({ example: TENANT_ID }),
  name: z.string().openapi({ example: SMTP_SECRET }),
  type: Type,
  version: z.number().int().openapi({ description: "The current version.", example: 2 }),
  versions: z.array(z.number().int()).openapi({
    description: "The versions kept (the last 5), newest first: what `?version=` may name.",
    example: [2, 1],
  }),
  created_at: z.string().openapi({ example: CREATED_AT }),
  created_by: z.string().openapi({ example: USER_ID }),
  updated_at: z.string().openapi({
    description: "When the current version was written.",
    example: UPDATED_AT,
  }),
  updated_by: z.string().openapi({ example: USER_ID }),
  last_revealed_at: z.string().nullable().openapi({ example: null }),
}).openapi("SecretMetadata");

/** The version a read or a reveal shows. */
const ShownVersion = {
  value_version: z.number().int().openapi({
    description: "The version whose value this is (the current one unless `?version=`).",
    example: 2,
  }),
  value_created_at: z.string().openapi({ example: UPDATED_AT }),
  value_created_by: z.string().openapi({ example: USER_ID }),
};

const MaskedSmtp = z.object({
  host: z.string().openapi({ example: SMTP_EXAMPLE.host }),
  port: z.number().int().openapi({ example: SMTP_EXAMPLE.port }),
  secure: z.boolean().openapi({ example: SMTP_EXAMPLE.secure }),
  username: z.string().openapi({ example: SMTP_EXAMPLE.username }),
  password: z.literal(MASK).openapi({ description: "Never shown but by the reveal." }),
  from: z.string().openapi({ example: SMTP_EXAMPLE.from }),
}).openapi("MaskedSmtpSettings");

const SecretSchema = SecretMetadata.extend({
  ...ShownVersion,
  value_preview: z.string().nullable().openapi({
    description: "A generic value masked: its first 2 characters and `••` from 12 characters " +
      "on, else `••••`. Null for smtp secrets, and for support staff.",
    example: null,
  }),
  smtp: orNull(MaskedSmtp).openapi({
    description: "An smtp secret's settings, the password masked. Null for generic secrets, and " +
      "for support staff (names and metadata only).",
  }),
}).openapi("Secret");

const RevealedSchema = SecretMetadata.extend({
  ...ShownVersion,
  value: z.union([z.string(), SmtpSettings]).openapi({
    description: "In clear: a string for a generic secret, the settings for an smtp one.",
    example: SMTP_EXAMPLE,
  }),
}).openapi("RevealedSecret");

const SmtpTestOutcome = z.object({
  sent: z.boolean().openapi({ example: true }),
  to: z.string().openapi({ example: "ops@acme.example.com" }),
  from: z.string().openapi({ example: SMTP_EXAMPLE.from }),
  host: z.string().openapi({ example: SMTP_EXAMPLE.host }),
  port: z.number().int().openapi({ example: SMTP_EXAMPLE.port }),
  response: z.string().nullable().openapi({
    description: "The server's answer when it accepted the message.",
    example: "250 2.0.0 OK queued as 4Zx1",
  }),
  error: z.string().nullable().openapi({
    description: "Why it was not sent: the server's answer or the connection failure.",
    example: null,
  }),
}).openapi("SmtpTestOutcome");

const NameParams = TenantParams.extend({
  name: Name.openapi({ param: { name: "name", in: "path" }, example: SMTP_SECRET }),
});
const ListQuery = z.strictObject({ ...PageQuery, type: z.enum(SECRET_TYPES).optional() });
const AdminListQuery = ListQuery.extend({ tenant_id: idOf("ten").optional() });

const tags = ["Vault"];
const sealed = { 503: errorResponse("The vault is sealed: no master key is set.") };

type Shown = Pick<SecretVersion, "version" | "created_at" | "created_by">;
const shownVersion = (v: Shown) => ({
  value_version: v.version,
  value_created_at: v.created_at,
  value_created_by: v.created_by,
});

/** A secret as reads answer it, with one version's value masked (or left out). */
const secretAnswer = (s: Secret, v: Shown, masked: MaskedValue | null) => ({
  ...secretView(s),
  ...shownVersion(v),
  value_preview: masked?.value_preview ?? null,
  smtp: masked?.smtp ?? null,
});

/** Support staff get names and metadata only. */
const maskedFor = (c: Context<AppEnv>, s: Secret, value: SecretValue) =>
  c.get("principal").masked ? null : maskValue(s.type, value);

/** The version a write just made: the current one. */
const written = (s: Secret): Shown => ({
  version: s.version,
  created_at: s.updated_at,
  created_by: s.updated_by,
});

export function secretRoutes() {
  const app = router();
  const base = "/v1/tenants/{tenant}/secrets";

  app.openapi(
    defineRoute({
      method: "get",
      path: base,
      tags,
      summary: "List the tenant's secrets (newest first): names and metadata, no values",
      request: { params: TenantParams, query: ListQuery },
      responses: { 200: jsonResponse(listEnvelope(SecretMetadata), "A page of secrets.") },
    }),
    async (c) => {
      const { type, ...page } = c.req.valid("query");
      const found = await listSecrets(c.get("svc"), c.get("tenant").value.id, { type }, page);
      return okList(c, found, page.limit, secretView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: base,
      tags,
      summary: "Create a secret (version 1)",
      description: "The value is sealed under the tenant's data key and never answered in " +
        "clear but by the reveal. A name already in use is 409: PUT makes a new version.",
      request: { params: TenantParams, body: jsonBody(CreateSecret) },
      responses: { 201: jsonResponse(envelope(SecretSchema), "Created."), ...sealed },
    }),
    async (c) => {
      const tenant = c.get("tenant").value;
      const input = c.req.valid("json");
      const secret = await createSecret(c.get("svc"), actorOf(c), tenant, input);
      c.header("Location", `/v1/tenants/${tenant.id}/secrets/${secret.value.name}`);
      return okRecord(
        c,
        secret,
        (s) => secretAnswer(s, written(s), maskedFor(c, s, input.value)),
        201,
      );
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: `${base}/{name}`,
      tags,
      summary: "Get a secret, its value masked",
      description: "`GET …/secrets/smtp` is the tenant's own SMTP settings, the password " +
        "masked. `?version=` reads a kept older version. Support staff see names and metadata " +
        "only.",
      request: {
        params: NameParams,
        query: z.strictObject({
          version: z.coerce.number().int().min(1).max(2 ** 31).optional().openapi({
            type: "integer",
            description: "A kept version (see `versions`); default the current.",
          }),
        }),
      },
      responses: { 200: jsonResponse(envelope(SecretSchema), "The secret."), ...sealed },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const { version } = c.req.valid("query");
      const withValue = !c.get("principal").masked;
      const shown = await readSecret(c.get("svc"), c.get("tenant").value.id, name, {
        version,
        withValue,
      });
      return okRecord(c, shown.secret, (s) => secretAnswer(s, shown.version, shown.masked));
    },
  );

  app.openapi(
    defineRoute({
      method: "put",
      path: `${base}/{name}`,
      tags,
      summary: "Write a new version of a secret",
      description: "The value replaces the current one as a new version; the last 5 versions " +
        "are kept. Honours `If-Match`.",
      request: { params: NameParams, body: jsonBody(ReplaceSecret) },
      responses: { 200: jsonResponse(envelope(SecretSchema), "The new version."), ...sealed },
    }),
    async (c) => {
      const { value } = c.req.valid("json");
      const secret = await updateSecret(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value,
        c.req.valid("param").name,
        value,
        ifMatch(c),
      );
      return okRecord(c, secret, (s) => secretAnswer(s, written(s), maskedFor(c, s, value)));
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: `${base}/{name}`,
      tags,
      summary: "Delete a secret with every version",
      request: { params: NameParams },
      responses: { 200: jsonResponse(envelope(SecretMetadata), "The deleted secret.") },
    }),
    async (c) => {
      const secret = await deleteSecret(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        c.req.valid("param").name,
        ifMatch(c),
      );
      return okRecord(c, secret, secretView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: `${base}/{name}/reveal`,
      tags,
      summary: "Reveal a secret's value in clear (audited, with the reason)",
      description: "Every reveal is in the audit trail (`secret.revealed`: the caller, the " +
        "version and the reason) before the value is answered.",
      request: { params: NameParams, body: jsonBody(RevealSecret) },
      responses: { 200: jsonResponse(envelope(RevealedSchema), "The value."), ...sealed },
    }),
    async (c) => {
      c.set("unreplayable", true);
      const revealed = await revealSecret(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        c.req.valid("param").name,
        c.req.valid("json"),
      );
      return okRecord(c, revealed.secret, (s) => ({
        ...secretView(s),
        ...shownVersion(revealed.version),
        value: revealed.value,
      }));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: `${base}/${SMTP_SECRET}/test`,
      tags,
      summary: "Send a test message through the tenant's own SMTP server",
      description: "Uses the secret `smtp` (409 when there is none). The outcome, sent or the " +
        "server's error, is the answer; a host that resolves to a private address is refused.",
      request: {
        params: TenantParams,
        body: { ...jsonBody(SmtpTest), required: false },
      },
      responses: { 200: jsonResponse(envelope(SmtpTestOutcome), "What happened."), ...sealed },
    }),
    async (c) => {
      // The body is optional: without one the message goes to the sender's own address.
      const to = (c.req.valid("json") as { to?: string } | undefined)?.to;
      const outcome = await sendTenantSmtpTest(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value.id,
        to,
      );
      return ok(c, outcome);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/secrets",
      tags,
      summary: "List every tenant's secrets: names and metadata, no values",
      request: { query: AdminListQuery },
      responses: { 200: jsonResponse(listEnvelope(SecretMetadata), "A page of secrets.") },
    }),
    async (c) => {
      const { type, tenant_id, ...page } = c.req.valid("query");
      const found = await listAllSecrets(c.get("svc"), { type, tenant_id }, page);
      return okList(c, found, page.limit, secretView);
    },
  );

  return app;
}
