/**
 * The runtime configuration: every setting that may change while Steward runs, changing some
 * (If-Match required), the history of changes, and rolling back to a version.
 */
import { z } from "@hono/zod-openapi";
import {
  listConfigHistory,
  REFRESH_MS,
  rollbackConfig,
  updateConfig,
  versionOf,
  versionRequired,
} from "../../domain/platform/runtime_config.ts";
import {
  SETTING_KEYS,
  type SettingKey,
  settingOf,
} from "../../domain/platform/runtime_settings.ts";
import { actorOf, ifMatch, ok, okList } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import { envelope, jsonBody, jsonResponse, listEnvelope, PageQuery } from "../schemas.ts";
import type { AppEnv } from "../context.ts";
import type { Context } from "hono";

const AT = "2026-03-01T12:00:00.000Z";
const USER = "usr_01JQ3V5W7X9Y1Z3A5B7C9D1E3G";

const SettingViewSchema = z.object({
  value: z.unknown().openapi({ description: "The value in force.", example: 14 }),
  default: z.unknown().openapi({ example: 30 }),
  source: z.enum(["default", "env", "api"]).openapi({
    description: "`env`: set by its environment variable (which pins it); `api`: set through " +
      "this API; `default`: neither.",
    example: "api",
  }),
  type: z.enum(["integer", "number", "rate", "object"]).openapi({
    description: '`rate`: `{ requests_per_second, burst }` (a PATCH may also send `"100/200"`).',
    example: "integer",
  }),
  description: z.string().openapi({
    example: "Days request logs are kept; the daily prune deletes what is older.",
  }),
  env: z.string().openapi({
    description: "The environment variable that pins it.",
    example: "LOG_RETENTION_DAYS",
  }),
}).openapi("ConfigSetting");

const ConfigSchema = z.object({
  version: z.number().int().openapi({
    description: "The document's version (also its ETag); 0 before the first change.",
    example: 3,
  }),
  settings: z.record(z.enum(SETTING_KEYS), SettingViewSchema).openapi({
    description: "Every runtime setting, by key.",
    example: {
      log_retention_days: {
        value: 14,
        default: 30,
        source: "api",
        type: "integer",
        description: "Days request logs are kept; the daily prune deletes what is older.",
        env: "LOG_RETENTION_DAYS",
      },
    },
  }),
  updated_at: z.string().nullable().openapi({ example: AT }),
  updated_by: z.string().nullable().openapi({
    description: "The user or service token behind the last change.",
    example: USER,
  }),
}).openapi("Config");

/** Each setting, optional; null unsets what the API had set (back to the default). */
const ConfigPatch = z.strictObject(
  Object.fromEntries(SETTING_KEYS.map((key) => {
    const s = settingOf(key);
    return [
      key,
      s.schema.nullable().optional().openapi({
        description: `${s.description} Pinned by \`${s.env}\` when that is set.`,
        example: s.default,
      }),
    ];
  })) as unknown as Record<SettingKey, z.ZodType>,
).openapi({
  example: { log_retention_days: 14, rate_limit_read: "50/100" },
});

const ConfigVersionSchema = z.object({
  version: z.number().int().openapi({ example: 4 }),
  action: z.enum(["config.updated", "config.rolled_back"]).openapi({ example: "config.updated" }),
  rolled_back_to: z.number().int().nullable().openapi({
    description: "The version a rollback restored.",
    example: null,
  }),
  changes: z.record(
    z.string(),
    z.object({
      before: z.unknown().openapi({ example: 30 }),
      after: z.unknown().openapi({ example: 14 }),
    }),
  ).openapi({
    description: "The settings whose value in force changed, before and after.",
    example: { log_retention_days: { before: 30, after: 14 } },
  }),
  values: z.record(z.string(), z.unknown()).openapi({
    description: "Every value set through the API in this version.",
    example: { log_retention_days: 14 },
  }),
  actor_type: z.enum(["user", "service_token", "system"]).openapi({ example: "user" }),
  actor_id: z.string().openapi({ example: USER }),
  created_at: z.string().openapi({ example: AT }),
}).openapi("ConfigVersion");

const tags = ["Configuration"];
const APPLIED = `Every process applies a change within about a second (it watches the document), ` +
  `and at the latest within ${REFRESH_MS / 1000} s (it re-reads it).`;

const view = (c: Context<AppEnv>) => {
  const data = c.get("deps").runtime.view();
  return ok(c, data, 200, String(data.version));
};

export function configRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/config",
      tags,
      summary: "Read the runtime configuration",
      description: "Every setting that may change at run time, with its value in force, default " +
        "and source. The ETag is the document's version: send it as `If-Match` to change it.",
      responses: { 200: jsonResponse(envelope(ConfigSchema), "The settings.") },
    }),
    (c) => view(c),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/admin/config",
      tags,
      summary: "Change runtime settings",
      description: "Sets each setting given (null unsets it: back to its default), checked as " +
        "at start-up. `If-Match` (the version read) is required. A setting pinned by its " +
        `environment variable is 409. ${APPLIED}`,
      request: { body: jsonBody(ConfigPatch) },
      responses: {
        200: jsonResponse(envelope(ConfigSchema), "The settings, changed."),
        428: errorResponse("`If-Match` is missing."),
      },
    }),
    async (c) => {
      const tag = ifMatch(c);
      if (tag === undefined) throw versionRequired();
      const patch = c.req.valid("json") as Record<string, unknown>;
      await updateConfig(c.get("svc"), actorOf(c), c.get("deps").runtime, patch, versionOf(tag));
      return view(c);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/config/history",
      tags,
      summary: "List the configuration's versions (newest first), with their total",
      request: { query: z.strictObject(PageQuery) },
      responses: { 200: jsonResponse(listEnvelope(ConfigVersionSchema), "A page of versions.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page } = c.req.valid("query");
      const found = await listConfigHistory(c.get("svc"), { limit, cursor, offset, page });
      return okList(c, found, limit, (v) => v);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/config/rollback",
      tags,
      summary: "Roll the configuration back to a version",
      description: "Makes a new version whose values are those of `version` (0: nothing set " +
        `through the API). Settings pinned by the environment stay pinned. ${APPLIED}`,
      request: {
        body: jsonBody(
          z.strictObject({
            version: z.number().int().min(0).max(1e15).openapi({
              description: "The version to restore (from the history).",
              example: 2,
            }),
          }).openapi({ example: { version: 2 } }),
        ),
      },
      responses: {
        200: jsonResponse(envelope(ConfigSchema), "The settings, rolled back."),
        404: errorResponse("No such version."),
      },
    }),
    async (c) => {
      const { version } = c.req.valid("json");
      await rollbackConfig(c.get("svc"), actorOf(c), c.get("deps").runtime, version);
      return view(c);
    },
  );

  return app;
}
