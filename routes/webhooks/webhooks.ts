/**
 * Webhook endpoints and their deliveries, the same routes under two prefixes: the platform's
 * endpoints (`/v1/admin/webhooks`, every tenant's events) and a tenant's own
 * (`/v1/tenants/{tenant}/webhooks`, that tenant's events); plus the event catalog.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { EVENT_CATALOG } from "../../domain/audit/event_catalog.ts";
import { EVENT_SCHEMAS } from "../../domain/audit/event_schema.ts";
import type { Tenant } from "../../domain/tenancy/tenants.ts";
import { requestRecovery, retryMessage, sendTest } from "../../domain/webhooks/dispatch.ts";
import {
  getMessage,
  listAttempts,
  listMessages,
  MESSAGE_STATUSES,
} from "../../domain/webhooks/messages.ts";
import {
  createEndpoint,
  DEFAULT_SECRET_GRACE_SECONDS,
  deleteEndpoint,
  endpointView,
  getEndpoint,
  listEndpoints,
  MAX_EVENT_TYPES,
  MAX_SECRET_GRACE_SECONDS,
  rotateSecret,
  updateEndpoint,
} from "../../domain/webhooks/endpoints.ts";
import { MAX_URL_LENGTH } from "../../domain/webhooks/targets.ts";
import type { AppEnv } from "../context.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  envelope,
  idOf,
  jsonBody,
  jsonResponse,
  listEnvelope,
  Metadata,
  MetadataPatch,
  orNull,
  PageQuery,
  QueryBoolean,
  TenantParams,
  Text,
  Timestamp,
} from "../schemas.ts";

const ADMIN = "/v1/admin/webhooks";
const TENANT = "/v1/tenants/{tenant}/webhooks";
type Prefix = typeof ADMIN | typeof TENANT;

/** Values shared by the documented examples: Acme's endpoint and one of its messages. */
const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const ENDPOINT_ID = "whk_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const MESSAGE_ID = "msg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const HOOK_URL = "https://hooks.example.com/steward";
const DESCRIPTION = "Syncs Acme's API keys into the CRM";
const EVENT_TYPES = ["api_key.created", "api_key.revoked"];
/** The message's first attempt failed; so did its retry 5 s later; the next is due in ~5 min. */
const FIRST_ATTEMPT_AT = "2026-01-31T12:00:00.000Z";
const LAST_ATTEMPT_AT = "2026-01-31T12:00:05.000Z";
const NEXT_ATTEMPT_AT = "2026-01-31T12:05:09.000Z";

const EndpointSchema = z.object({
  id: z.string().openapi({ example: ENDPOINT_ID }),
  tenant_id: z.string().nullable().openapi({
    description: "Null for a platform endpoint.",
    example: TENANT_ID,
  }),
  url: z.string().openapi({ example: HOOK_URL }),
  description: z.string().nullable().openapi({ example: DESCRIPTION }),
  event_types: z.array(z.string()).openapi({
    description: "Delivered types; empty means all.",
    example: EVENT_TYPES,
  }),
  enabled: z.boolean().openapi({ example: true }),
  disabled_reason: z.enum(["gone", "failing"]).nullable().openapi({
    description: "Why Steward disabled it: `gone` (it answered 410) or `failing` (every " +
      "delivery failed for 5 days); null when enabled or disabled by hand.",
    example: null,
  }),
  disabled_at: z.string().nullable().openapi({ example: null }),
  metadata: z.record(z.string(), z.string()).openapi({ example: { crm_id: "A-1234" } }),
  previous_secret_expires_at: z.string().nullable().openapi({
    description: "After a rotation: until when the previous secret signs too.",
    example: "2026-01-31T12:00:00.000Z",
  }),
  created_by: z.string().openapi({ example: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  created_at: z.string().openapi({ example: "2026-01-15T09:30:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-31T11:00:00.000Z" }),
  deleted_at: z.string().nullable().openapi({ example: null }),
}).openapi("WebhookEndpoint");

const WithSecret = EndpointSchema.extend({
  secret: z.string().openapi({
    description: "The signing secret (`whsec_…`): shown this once, never again.",
    // base64 of "EXAMPLE-ONLY-NOT-A-REAL-SECRET!!": the shape of a real one (32 bytes).
    example: "whsec_RVhBTVBMRS1PTkxZLU5PVC1BLVJFQUwtU0VDUkVUISE=",
  }),
}).openapi("WebhookEndpointWithSecret");

const Url = z.url({ protocol: /^https?$/ }).max(MAX_URL_LENGTH).openapi({
  description: "https only, resolving to public addresses (unless WEBHOOK_ALLOW_PRIVATE_URLS).",
  example: HOOK_URL,
});
const EventTypes = z.array(z.string().max(100)).max(MAX_EVENT_TYPES).openapi({
  description: "Types from GET /v1/webhooks/event-types; empty or absent means all.",
  example: EVENT_TYPES,
});
const Description = Text(500).openapi({ example: DESCRIPTION });

const CreateEndpoint = z.strictObject({
  url: Url,
  description: Description.nullable().optional(),
  event_types: EventTypes.optional(),
  enabled: z.boolean().optional().openapi({ description: "Default true.", example: true }),
  metadata: Metadata.optional(),
}).openapi("CreateWebhookEndpoint", {
  example: {
    url: HOOK_URL,
    description: DESCRIPTION,
    event_types: EVENT_TYPES,
    metadata: { crm_id: "A-1234" },
  },
});

const UpdateEndpoint = z.strictObject({
  url: Url.optional(),
  description: Description.nullable().optional(),
  event_types: EventTypes.optional().openapi({ description: "Replaces the list." }),
  enabled: z.boolean().optional().openapi({
    description: "true re-enables an endpoint Steward disabled, and starts its failure count over.",
    example: true,
  }),
  metadata: MetadataPatch.optional().openapi({ example: { crm_id: "A-5678", legacy_id: null } }),
}).openapi("UpdateWebhookEndpoint", {
  example: {
    event_types: [...EVENT_TYPES, "api_key.expired"],
    metadata: { crm_id: "A-5678", legacy_id: null },
  },
});

const RotateSecret = z.strictObject({
  grace_seconds: z.number().int().min(0).max(MAX_SECRET_GRACE_SECONDS).optional().openapi({
    description:
      `How long the previous secret keeps signing (default ${DEFAULT_SECRET_GRACE_SECONDS}).`,
    example: 3600,
  }),
}).openapi("RotateWebhookSecret", { example: { grace_seconds: 3600 } });

const Recover = z.strictObject({
  since: Timestamp.openapi({
    description: "Resend every message that failed since then.",
    example: "2026-01-30T00:00:00.000Z",
  }),
}).openapi("RecoverWebhookEndpoint", { example: { since: "2026-01-30T00:00:00.000Z" } });

const MessageSchema = z.object({
  id: z.string().openapi({
    description: "The `webhook-id` header of every attempt.",
    example: MESSAGE_ID,
  }),
  endpoint_id: z.string().openapi({ example: ENDPOINT_ID }),
  tenant_id: z.string().nullable().openapi({
    description: "The endpoint's tenant; null: platform.",
    example: TENANT_ID,
  }),
  event_id: z.string().openapi({ example: "evt_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  event_type: z.string().openapi({ example: "api_key.revoked" }),
  status: z.enum(MESSAGE_STATUSES).openapi({
    description: "`pending`: waiting for its next attempt; `succeeded`; `failed`: given up.",
    example: "pending",
  }),
  attempts: z.number().int().openapi({ example: 2 }),
  next_attempt_at: z.string().nullable().openapi({ example: NEXT_ATTEMPT_AT }),
  last_attempt_at: z.string().nullable().openapi({ example: LAST_ATTEMPT_AT }),
  failure_reason: z.string().nullable().openapi({ example: null }),
  created_at: z.string().openapi({ example: FIRST_ATTEMPT_AT }),
  updated_at: z.string().openapi({ example: LAST_ATTEMPT_AT }),
}).openapi("WebhookMessage");

const AttemptSchema = z.object({
  id: z.string().openapi({ example: "att_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  message_id: z.string().openapi({ example: MESSAGE_ID }),
  endpoint_id: z.string().openapi({ example: ENDPOINT_ID }),
  status: z.enum(["succeeded", "failed"]).openapi({ example: "failed" }),
  url: z.string().openapi({ example: HOOK_URL }),
  response_status_code: z.number().int().openapi({
    description: "0 when no HTTP answer came back (refused address, network error, timeout).",
    example: 503,
  }),
  response_body: z.string().openapi({
    description: "The first 4 KiB of the answer.",
    example: "Service Unavailable",
  }),
  error: z.string().nullable().openapi({ example: null }),
  duration_ms: z.number().int().openapi({ example: 184 }),
  trigger: z.enum(["scheduled", "manual"]).openapi({ example: "scheduled" }),
  created_at: z.string().openapi({ example: LAST_ATTEMPT_AT }),
  next_attempt_at: z.string().nullable().openapi({ example: NEXT_ATTEMPT_AT }),
}).openapi("WebhookAttempt");

const Delivery = z.object({ message: MessageSchema, attempt: orNull(AttemptSchema) })
  .openapi("WebhookDelivery");

const EventTypeSchema = z.object({
  type: z.string().openapi({ example: "webhook.test" }),
  description: z.string().openapi({
    example: "Sent to one endpoint by `POST …/webhooks/{id}/test`, to check it receives and " +
      "verifies deliveries.",
  }),
  example: z.object({
    type: z.string().openapi({ example: "webhook.test" }),
    timestamp: z.string().openapi({ example: "2026-01-31T12:00:00.000Z" }),
    data: z.record(z.string(), z.unknown()).openapi({
      example: { endpoint_id: ENDPOINT_ID, message: "A test event from Steward." },
    }),
  }).openapi({ description: "A delivery's body." }),
  schema: z.record(z.string(), z.unknown()).openapi({
    description: "A JSON Schema (draft 2020-12) of the event's `data`, derived from the example: " +
      "every listed field is present (`null` when unset) and more may be added.",
    example: {
      type: "object",
      properties: { endpoint_id: { type: "string" }, message: { type: "string" } },
      required: ["endpoint_id", "message"],
      additionalProperties: true,
    },
  }),
}).openapi("WebhookEventType");

const idParam = (prefix: string, name: string) =>
  idOf(prefix).openapi({ param: { name, in: "path" } });

function paramsFor(prefix: Prefix) {
  const base = prefix === ADMIN ? undefined : TenantParams;
  const endpoint = (base ?? z.strictObject({})).extend({ id: idParam("whk", "id") });
  return { base, endpoint, message: endpoint.extend({ message_id: idParam("msg", "message_id") }) };
}

const DeliveryQuery = z.strictObject({
  ...PageQuery,
  status: z.enum(MESSAGE_STATUSES).optional(),
  event_type: z.string().max(100).optional(),
});

/** One family of routes under `prefix`, scoped to the platform or to the path's tenant. */
function scopedRoutes(prefix: Prefix) {
  const app = router();
  const platform = prefix === ADMIN;
  const tags = [platform ? "Platform webhooks" : "Webhooks"];
  const params = paramsFor(prefix);
  const whose = platform ? "the platform's" : "the tenant's";
  const tenantOf = (c: Context<AppEnv>): Tenant | null => platform ? null : c.get("tenant").value;
  const scopeOf = (c: Context<AppEnv>) => tenantOf(c)?.id ?? null;
  const location = (c: Context<AppEnv>, id: string) =>
    platform ? `${ADMIN}/${id}` : `/v1/tenants/${scopeOf(c)}/webhooks/${id}`;

  app.openapi(
    defineRoute({
      method: "get",
      path: prefix,
      tags,
      summary: `List ${whose} webhook endpoints (newest first)`,
      request: {
        params: params.base,
        query: z.strictObject({ ...PageQuery, enabled: QueryBoolean.optional() }),
      },
      responses: { 200: jsonResponse(listEnvelope(EndpointSchema), "A page of endpoints.") },
    }),
    async (c) => {
      const { enabled, ...page } = c.req.valid("query");
      const found = await listEndpoints(c.get("svc"), scopeOf(c), { enabled }, page);
      return okList(c, found, page.limit, endpointView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: prefix,
      tags,
      summary: `Create a webhook endpoint (${platform ? "every tenant's" : "the tenant's"} events)`,
      description: "The signing secret is returned once, in `data.secret`. The URL must be " +
        "https and resolve only to public addresses.",
      request: { params: params.base, body: jsonBody(CreateEndpoint) },
      responses: { 201: jsonResponse(envelope(WithSecret), "Created; store `secret` now.") },
    }),
    async (c) => {
      const { endpoint, secret } = await createEndpoint(
        c.get("svc"),
        actorOf(c),
        tenantOf(c),
        c.req.valid("json"),
      );
      c.header("Location", location(c, endpoint.value.id));
      return okRecord(c, endpoint, (e) => ({ ...endpointView(e), secret }), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: `${prefix}/{id}`,
      tags,
      summary: "Get a webhook endpoint",
      request: { params: params.endpoint },
      responses: {
        200: jsonResponse(envelope(EndpointSchema), "The endpoint (never its secret)."),
      },
    }),
    async (c) =>
      okRecord(
        c,
        await getEndpoint(c.get("svc"), scopeOf(c), c.req.valid("param").id),
        endpointView,
      ),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: `${prefix}/{id}`,
      tags,
      summary: "Update a webhook endpoint",
      description: "Metadata is merged (null removes a key); `event_types` is replaced.",
      request: { params: params.endpoint, body: jsonBody(UpdateEndpoint) },
      responses: { 200: jsonResponse(envelope(EndpointSchema), "Updated.") },
    }),
    async (c) => {
      const endpoint = await updateEndpoint(
        c.get("svc"),
        actorOf(c),
        tenantOf(c),
        c.req.valid("param").id,
        c.req.valid("json"),
        ifMatch(c),
      );
      return okRecord(c, endpoint, endpointView);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: `${prefix}/{id}`,
      tags,
      summary: "Delete a webhook endpoint (nothing more is delivered to it)",
      request: { params: params.endpoint },
      responses: { 200: jsonResponse(envelope(EndpointSchema), "The deleted endpoint.") },
    }),
    async (c) => {
      const endpoint = await deleteEndpoint(
        c.get("svc"),
        actorOf(c),
        scopeOf(c),
        c.req.valid("param").id,
        ifMatch(c),
      );
      return okRecord(c, endpoint, endpointView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: `${prefix}/{id}/rotate-secret`,
      tags,
      summary: "Rotate the signing secret: a new one, returned once",
      description: "Deliveries carry a signature by each secret in use: the previous one keeps " +
        "signing for `grace_seconds` (default 24 h), so receivers can switch without a gap.",
      request: {
        params: params.endpoint,
        body: { ...jsonBody(RotateSecret), required: false },
      },
      responses: { 200: jsonResponse(envelope(WithSecret), "The endpoint and its new secret.") },
    }),
    async (c) => {
      // The body is optional: without one the grace is the default.
      const grace = (c.req.valid("json") as { grace_seconds?: number } | undefined)?.grace_seconds;
      const { endpoint, secret } = await rotateSecret(
        c.get("svc"),
        actorOf(c),
        tenantOf(c),
        c.req.valid("param").id,
        grace,
        ifMatch(c),
      );
      return okRecord(c, endpoint, (e) => ({ ...endpointView(e), secret }));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: `${prefix}/{id}/deliveries`,
      tags,
      summary: "List an endpoint's messages with their latest status (newest first)",
      request: { params: params.endpoint, query: DeliveryQuery },
      responses: { 200: jsonResponse(listEnvelope(MessageSchema), "A page of messages.") },
    }),
    async (c) => {
      const { status, event_type, ...page } = c.req.valid("query");
      const { id } = c.req.valid("param");
      await getEndpoint(c.get("svc"), scopeOf(c), id);
      const found = await listMessages(c.get("svc"), scopeOf(c), id, { status, event_type }, page);
      return okList(c, found, page.limit, (m) => m);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: `${prefix}/{id}/deliveries/{message_id}/attempts`,
      tags,
      summary: "List a message's delivery attempts (newest first)",
      request: { params: params.message, query: z.strictObject(PageQuery) },
      responses: { 200: jsonResponse(listEnvelope(AttemptSchema), "A page of attempts.") },
    }),
    async (c) => {
      const page = c.req.valid("query");
      const { id, message_id } = c.req.valid("param");
      const tenantId = scopeOf(c);
      await getEndpoint(c.get("svc"), tenantId, id);
      await getMessage(c.get("svc"), { tenant_id: tenantId, endpoint_id: id, message_id });
      const found = await listAttempts(c.get("svc"), tenantId, message_id, page);
      return okList(c, found, page.limit, (a) => a);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: `${prefix}/{id}/deliveries/{message_id}/retry`,
      tags,
      summary: "Resend a message now",
      description: "One attempt, made in this request and returned; a message still being " +
        "retried keeps its schedule. 409 when the endpoint is disabled.",
      request: { params: params.message },
      responses: { 200: jsonResponse(envelope(Delivery), "The message and the attempt.") },
    }),
    async (c) => {
      const { id, message_id } = c.req.valid("param");
      const { message, attempt } = await retryMessage(c.get("svc"), {
        tenant_id: scopeOf(c),
        endpoint_id: id,
        message_id,
      });
      return ok(c, { message, attempt });
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: `${prefix}/{id}/recover`,
      tags,
      summary: "Resend every message that failed since a time",
      description: "Each failed message goes back to `pending` with a fresh retry schedule, " +
        "queued by a job (`job_id`, in the `webhooks` queue). 409 when the endpoint is disabled.",
      request: { params: params.endpoint, body: jsonBody(Recover) },
      responses: {
        202: jsonResponse(
          envelope(z.object({
            job_id: z.string().openapi({ example: "job_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
            since: z.string().openapi({ example: "2026-01-30T00:00:00.000Z" }),
          })),
          "Recovery queued.",
        ),
      },
    }),
    async (c) => {
      const { since } = c.req.valid("json");
      const job = await requestRecovery(
        c.get("svc"),
        scopeOf(c),
        c.req.valid("param").id,
        Date.parse(since),
      );
      return ok(c, { job_id: job.id, since: new Date(Date.parse(since)).toISOString() }, 202);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: `${prefix}/{id}/test`,
      tags,
      summary: "Send a webhook.test event to this endpoint now",
      description: "The first attempt is made in this request and returned (a failure is " +
        "retried like any delivery). 409 when the endpoint is disabled.",
      request: { params: params.endpoint },
      responses: { 200: jsonResponse(envelope(Delivery), "The test message and its attempt.") },
    }),
    async (c) => {
      const { message, attempt } = await sendTest(
        c.get("svc"),
        scopeOf(c),
        c.req.valid("param").id,
      );
      return ok(c, { message, attempt });
    },
  );

  return app;
}

const EXAMPLE_TIME = "2026-03-01T12:00:00.000Z";

export function webhookRoutes() {
  const app = router();
  app.route("/", scopedRoutes(ADMIN));
  app.route("/", scopedRoutes(TENANT));

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/webhooks/event-types",
      tags: ["Webhooks"],
      summary: "The event types webhooks deliver, with an example body of each",
      responses: { 200: jsonResponse(envelope(z.array(EventTypeSchema)), "Every event type.") },
    }),
    (c) =>
      ok(
        c,
        EVENT_CATALOG.map((e) => ({
          type: e.type,
          description: e.description,
          example: { type: e.type, timestamp: EXAMPLE_TIME, data: e.example },
          schema: EVENT_SCHEMAS.get(e.type)!,
        })),
      ),
  );

  return app;
}
