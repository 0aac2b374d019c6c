/**
 * Plugins: register, list, read, change, enable, disable and delete them, and their health.
 * A plugin's events go through its platform webhook endpoint (`endpoint_id`, whose deliveries
 * are also under /v1/admin/webhooks/{id}/deliveries); its hooks are asked before creations.
 */
import { z } from "@hono/zod-openapi";
import { CREATION_HOOKS } from "../../domain/shared/services.ts";
import { MAX_EVENT_TYPES } from "../../domain/webhooks/endpoints.ts";
import { MAX_URL_LENGTH } from "../../domain/webhooks/targets.ts";
import { MAX_JSON_BYTES } from "../../domain/plugins/config_schema.ts";
import { RECENT_CALLS } from "../../domain/plugins/hooks.ts";
import { pluginHealth, RECENT_DELIVERIES } from "../../domain/plugins/health.ts";
import {
  createPlugin,
  deletePlugin,
  getPlugin,
  HOOK_FAILURE_MODES,
  listPlugins,
  MAX_HOOK_TIMEOUT_MS,
  MIN_HOOK_TIMEOUT_MS,
  pluginView,
  setPluginEnabled,
  updatePlugin,
} from "../../domain/plugins/plugins.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import {
  envelope,
  IdParams,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  QueryBoolean,
  Text,
} from "../schemas.ts";

const BASE = "/v1/admin/plugins";
const ID = "plg_01JQ3V5W7X9Y1Z3A5B7C9D1E3Y";
const ENDPOINT_ID = "whk_01JQ3V5W7X9Y1Z3A5B7C9D1E3Z";
const URL_EXAMPLE = "https://hooks.example.com/fraud-screen";
const AT = "2026-03-01T12:00:00.000Z";
const SCHEMA_EXAMPLE = {
  type: "object",
  properties: { threshold: { type: "number", minimum: 0, maximum: 1 } },
  required: ["threshold"],
};
const HOOKS_EXAMPLE = [{ name: "tenant.creating", timeout_ms: 2000, on_failure: "open" }];
const tags = ["Plugins"];

/** What a creation that plugins' hooks are asked about may answer besides its own answers. */
export const HOOK_RESPONSES = {
  422: errorResponse(
    "A plugin vetoed the creation (`details.code` `VETOED_BY_PLUGIN`, with the plugin and its " +
      "reason), or `Idempotency-Key` was reused with a different request.",
  ),
  503: errorResponse(
    "A plugin's hook that fails closed gave no usable answer in time (`details.code` " +
      "`PLUGIN_UNAVAILABLE`); try again.",
  ),
};

const Hook = z.strictObject({
  name: z.enum(CREATION_HOOKS).openapi({
    description: "The creation asked about before it commits.",
    example: "tenant.creating",
  }),
  timeout_ms: z.number().int().min(MIN_HOOK_TIMEOUT_MS).max(MAX_HOOK_TIMEOUT_MS).openapi({
    description: "How long the creation waits for the plugin's answer.",
    example: 2000,
  }),
  on_failure: z.enum(HOOK_FAILURE_MODES).openapi({
    description: "Without an answer in time (or with an unusable one): `open` allows the " +
      "creation, `closed` refuses it (503 UNAVAILABLE, `details.code` PLUGIN_UNAVAILABLE).",
    example: "open",
  }),
}).openapi("PluginHook");

const JsonObject = z.record(z.string(), z.unknown());
const ConfigSchema = JsonObject.openapi({
  description: `A JSON Schema (draft 2020-12) for \`config\`; at most ${MAX_JSON_BYTES} bytes.`,
  example: SCHEMA_EXAMPLE,
});
const Config = JsonObject.openapi({
  description: "The plugin's settings: validated against `config_schema` (400 with each issue). " +
    "Shown to anyone who may read plugins: no secrets here.",
  example: { threshold: 0.8 },
});

const PluginSchema = z.object({
  id: z.string().openapi({ example: ID }),
  name: z.string().openapi({ example: "fraud-screen" }),
  version: z.string().openapi({ example: "1.4.0" }),
  url: z.string().openapi({ example: URL_EXAMPLE }),
  events: z.array(z.string()).openapi({
    description: "Event types delivered to `url` (empty: none).",
    example: ["tenant.created"],
  }),
  config_schema: JsonObject.nullable().openapi({ example: SCHEMA_EXAMPLE }),
  config: JsonObject.nullable().openapi({ example: { threshold: 0.8 } }),
  hooks: z.array(Hook),
  enabled: z.boolean().openapi({ example: true }),
  endpoint_id: z.string().openapi({
    description: "The platform webhook endpoint that delivers its events; its deliveries are " +
      "listed at /v1/admin/webhooks/{endpoint_id}/deliveries, its secret rotated there.",
    example: ENDPOINT_ID,
  }),
  created_by: z.string().openapi({ example: "usr_01JQ3V5W7X9Y1Z3A5B7C9D1E3G" }),
  created_at: z.string().openapi({ example: AT }),
  updated_at: z.string().openapi({ example: AT }),
  deleted_at: z.string().nullable().openapi({ example: null }),
}).openapi("Plugin");

const WithSecret = PluginSchema.extend({
  secret: z.string().openapi({
    description: "The signing secret (`whsec_…`) of its events and hook calls (Standard " +
      "Webhooks): shown this once, never again.",
    // base64 of "EXAMPLE-ONLY-NOT-A-REAL-SECRET!!": the shape of a real one (32 bytes).
    example: "whsec_RVhBTVBMRS1PTkxZLU5PVC1BLVJFQUwtU0VDUkVUISE=",
  }),
}).openapi("PluginWithSecret");

const Name = Text(64).openapi({
  description: "Unique regardless of case.",
  example: "fraud-screen",
});
const Version = Text(32).openapi({ example: "1.4.0" });
const Url = z.url({ protocol: /^https?$/ }).max(MAX_URL_LENGTH).openapi({
  description: "Where events and hook calls are POSTed: https, resolving to public addresses " +
    "only (unless WEBHOOK_ALLOW_PRIVATE_URLS), as for webhooks.",
  example: URL_EXAMPLE,
});
const Events = z.array(z.string().max(100)).max(MAX_EVENT_TYPES).openapi({
  description: "Types from GET /v1/webhooks/event-types; empty: no events, only hooks.",
  example: ["tenant.created"],
});
const Hooks = z.array(Hook).max(CREATION_HOOKS.length).openapi({
  description: "At most one per creation.",
  example: HOOKS_EXAMPLE,
});

const CreatePlugin = z.strictObject({
  name: Name,
  version: Version,
  url: Url,
  events: Events,
  config_schema: ConfigSchema.nullable().optional(),
  config: Config.nullable().optional(),
  hooks: Hooks.optional(),
  enabled: z.boolean().optional().openapi({ description: "Default true.", example: true }),
}).openapi("CreatePlugin", {
  example: {
    name: "fraud-screen",
    version: "1.4.0",
    url: URL_EXAMPLE,
    events: ["tenant.created"],
    config_schema: SCHEMA_EXAMPLE,
    config: { threshold: 0.8 },
    hooks: HOOKS_EXAMPLE,
  },
});

const UpdatePlugin = z.strictObject({
  name: Name.optional(),
  version: Version.optional(),
  url: Url.optional(),
  events: Events.optional().openapi({ description: "Replaces the list." }),
  config_schema: ConfigSchema.nullable().optional(),
  config: Config.nullable().optional(),
  hooks: Hooks.optional().openapi({ description: "Replaces the list." }),
}).openapi("UpdatePlugin", { example: { version: "1.5.0", config: { threshold: 0.9 } } });

const latency = {
  avg_latency_ms: z.number().int().nullable().openapi({ example: 120 }),
  max_latency_ms: z.number().int().nullable().openapi({ example: 310 }),
};

const HealthSchema = z.object({
  plugin_id: z.string().openapi({ example: ID }),
  enabled: z.boolean().openapi({ example: true }),
  endpoint: z.object({
    id: z.string().openapi({ example: ENDPOINT_ID }),
    enabled: z.boolean().openapi({ example: true }),
    disabled_reason: z.enum(["gone", "failing"]).nullable().openapi({ example: null }),
    failing_since: z.string().nullable().openapi({
      description: "Since when every delivery failed; null while it is healthy.",
      example: null,
    }),
  }),
  deliveries: z.object({
    shown: z.number().int().openapi({ example: 2 }),
    succeeded: z.number().int().openapi({ example: 1 }),
    failed: z.number().int().openapi({ example: 0 }),
    pending: z.number().int().openapi({ example: 1 }),
    ...latency,
    recent: z.array(z.object({
      message_id: z.string().openapi({ example: "msg_01JQ3V5W7X9Y1Z3A5B7C9D1E3M" }),
      event_type: z.string().openapi({ example: "tenant.created" }),
      status: z.enum(["pending", "succeeded", "failed"]).openapi({ example: "succeeded" }),
      attempts: z.number().int().openapi({ example: 1 }),
      last_attempt_at: z.string().nullable().openapi({ example: AT }),
      response_status_code: z.number().int().nullable().openapi({ example: 204 }),
      duration_ms: z.number().int().nullable().openapi({ example: 120 }),
      error: z.string().nullable().openapi({ example: null }),
    })).openapi({ description: `The newest ${RECENT_DELIVERIES} deliveries, newest first.` }),
  }),
  hooks: z.object({
    shown: z.number().int().openapi({ example: 1 }),
    allowed: z.number().int().openapi({ example: 0 }),
    vetoed: z.number().int().openapi({ example: 1 }),
    failed: z.number().int().openapi({ example: 0 }),
    ...latency,
    recent: z.array(z.object({
      hook: z.enum(CREATION_HOOKS).openapi({ example: "tenant.creating" }),
      at: z.string().openapi({ example: AT }),
      outcome: z.enum(["allowed", "vetoed", "failed"]).openapi({ example: "vetoed" }),
      applied: z.enum(["allowed", "refused"]).openapi({
        description: "What the creation did: for a failure, what `on_failure` made of it.",
        example: "refused",
      }),
      latency_ms: z.number().int().openapi({ example: 85 }),
      status: z.number().int().nullable().openapi({ example: 200 }),
      reason: z.string().nullable().openapi({ example: "the slug names a competitor" }),
      error: z.string().nullable().openapi({ example: null }),
    })).openapi({
      description: `This process's last ${RECENT_CALLS} calls of the plugin's hooks, newest first.`,
    }),
  }),
}).openapi("PluginHealth");

export function pluginRoutes() {
  const app = router();
  const params = IdParams("plg");

  app.openapi(
    defineRoute({
      method: "get",
      path: BASE,
      tags,
      summary: "List plugins (newest first), with their total",
      request: { query: z.strictObject({ ...PageQuery, enabled: QueryBoolean.optional() }) },
      responses: { 200: jsonResponse(listEnvelope(PluginSchema), "A page of plugins.") },
    }),
    async (c) => {
      const { enabled, ...page } = c.req.valid("query");
      return okList(c, await listPlugins(c.get("svc"), { enabled }, page), page.limit, pluginView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: BASE,
      tags,
      summary: "Register a plugin",
      description: "Creates the plugin and the platform webhook endpoint that delivers its " +
        "events, in one commit. The signing secret of its events and hook calls is returned " +
        "once, in `data.secret`.",
      request: { body: jsonBody(CreatePlugin) },
      responses: { 201: jsonResponse(envelope(WithSecret), "Registered; store `secret` now.") },
    }),
    async (c) => {
      const { plugin, secret } = await createPlugin(c.get("svc"), actorOf(c), c.req.valid("json"));
      c.header("Location", `${BASE}/${plugin.value.id}`);
      return okRecord(c, plugin, (p) => ({ ...pluginView(p), secret }), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: `${BASE}/{id}`,
      tags,
      summary: "Get a plugin",
      request: { params },
      responses: { 200: jsonResponse(envelope(PluginSchema), "The plugin (never its secret).") },
    }),
    async (c) => okRecord(c, await getPlugin(c.get("svc"), c.req.valid("param").id), pluginView),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: `${BASE}/{id}`,
      tags,
      summary: "Update a plugin",
      description: "Its endpoint follows (URL, events). `config` is checked against the " +
        "`config_schema` the plugin will have.",
      request: { params, body: jsonBody(UpdatePlugin) },
      responses: { 200: jsonResponse(envelope(PluginSchema), "Updated.") },
    }),
    async (c) =>
      okRecord(
        c,
        await updatePlugin(
          c.get("svc"),
          actorOf(c),
          c.req.valid("param").id,
          c.req.valid("json"),
          ifMatch(c),
        ),
        pluginView,
      ),
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: `${BASE}/{id}`,
      tags,
      summary: "Delete a plugin (and its endpoint and secret)",
      request: { params },
      responses: { 200: jsonResponse(envelope(PluginSchema), "The deleted plugin.") },
    }),
    async (c) =>
      okRecord(
        c,
        await deletePlugin(c.get("svc"), actorOf(c), c.req.valid("param").id, ifMatch(c)),
        pluginView,
      ),
  );

  for (const enabled of [true, false]) {
    app.openapi(
      defineRoute({
        method: "post",
        path: `${BASE}/{id}/${enabled ? "enable" : "disable"}`,
        tags,
        summary: enabled
          ? "Enable a plugin: its events and hooks resume"
          : "Disable a plugin: no events, no hook calls",
        description: enabled
          ? "Also enables its endpoint again if Steward had disabled it (410, or failing)."
          : "Doing it twice changes nothing.",
        request: { params },
        responses: { 200: jsonResponse(envelope(PluginSchema), "The plugin.") },
      }),
      async (c) =>
        okRecord(
          c,
          await setPluginEnabled(
            c.get("svc"),
            actorOf(c),
            c.req.valid("param").id,
            enabled,
            ifMatch(c),
          ),
          pluginView,
        ),
    );
  }

  app.openapi(
    defineRoute({
      method: "get",
      path: `${BASE}/{id}/health`,
      tags,
      summary: "A plugin's recent deliveries and hook calls, their latency and errors",
      request: { params },
      responses: { 200: jsonResponse(envelope(HealthSchema), "The plugin's health.") },
    }),
    async (c) => ok(c, await pluginHealth(c.get("svc"), c.req.valid("param").id)),
  );

  return app;
}
