/** Request logs: search, streamed export, a test entry through the pipeline, and pruning. */
import { z } from "@hono/zod-openapi";
import { exportLogs, listLogs, pruneExpiredLogs } from "../../domain/usage/request_logs.ts";
import {
  exportFormat,
  ExportFormatQuery,
  exportResponses,
  streamExport,
  timeBounds,
} from "../export.ts";
import { clientIp, ok, okList } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { logView } from "../views.ts";
import {
  envelope,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  Timestamp,
} from "../schemas.ts";
import { LOG_FIELDS, type LogFilter } from "../../pg/analytics.ts";

/** A request as the log keeps it: the RequestLog example, and the first of the exported. */
const ENTRY = {
  id: "log_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  at: "2026-01-31T11:58:07.214Z",
  level: "info",
  method: "GET",
  route: "/v1/tenants/{tenant}/usage",
  path: "/v1/tenants/acme/usage",
  status: 200,
  duration_ms: 4.37,
  bytes_in: 0,
  bytes_out: 412,
  tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  principal_id: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  ip: "203.0.113.7",
  user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15",
  request_id: "req_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  error_code: null,
} as const;

const RequestLogSchema = z.object({
  id: z.string(),
  at: z.string(),
  method: z.string(),
  route: z.string().nullable().openapi({ description: "The matched route's pattern." }),
  path: z.string(),
  status: z.number().int(),
  duration_ms: z.number(),
  bytes_in: z.number().int(),
  bytes_out: z.number().int().nullable().openapi({ description: "Null for a streamed answer." }),
  tenant_id: z.string().nullable(),
  principal_id: z.string().nullable(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  request_id: z.string(),
  level: z.enum(["info", "warn", "error"]),
  error_code: z.string().nullable(),
  test: z.literal(true).optional(),
}).openapi("RequestLog", { example: ENTRY });

const Filters = {
  level: z.enum(["info", "warn", "error"]).optional(),
  status: z.coerce.number().int().min(100).max(599).optional(),
  tenant_id: z.string().max(64).optional(),
  path: z.string().startsWith("/").max(512).optional().openapi({ description: "Path prefix." }),
  from: Timestamp.optional().openapi({ description: "Inclusive lower bound." }),
  to: Timestamp.optional().openapi({ description: "Inclusive upper bound." }),
};

const toFilter = (q: { [K in keyof typeof Filters]?: string | number }): LogFilter => ({
  ...q,
  ...timeBounds(q as { from?: string; to?: string }),
} as LogFilter);

const CSV_COLUMNS = LOG_FIELDS;

/** Two entries as an export gives them (oldest first): the RequestLog example and a warning. */
const EXPORTED: Record<(typeof LOG_FIELDS)[number], string | number | null>[] = [
  ENTRY,
  {
    id: "log_01JD2Z3Q4R5S6T7V8W9X0Y1Z2B",
    at: "2026-01-31T11:58:09.880Z",
    level: "warn",
    method: "POST",
    route: "/v1/keys/verify",
    path: "/v1/keys/verify",
    status: 429,
    duration_ms: 1.12,
    bytes_in: 58,
    bytes_out: 164,
    tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
    principal_id: "tok_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
    ip: "198.51.100.23",
    user_agent: "acme-billing/2.3",
    request_id: "req_01JD2Z3Q4R5S6T7V8W9X0Y1Z2B",
    error_code: "RATE_LIMITED",
  },
];

const PruneBody = z.strictObject({
  retention_days: z.number().int().min(1).max(3_650).optional().openapi({
    description: "Keep this many days (default `LOG_RETENTION_DAYS`).",
    example: 30,
  }),
}).openapi({ example: { retention_days: 30 } });

const tags = ["Logs"];

export function logRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/logs",
      tags,
      summary: "Search request logs (newest first)",
      description: "Entries are written behind (within `USAGE_FLUSH_INTERVAL_MS`); successful " +
        "requests are sampled at `REQUEST_LOG_SAMPLE_RATE`, warnings and errors always kept.",
      request: { query: z.strictObject({ ...PageQuery, ...Filters }) },
      responses: { 200: jsonResponse(listEnvelope(RequestLogSchema), "A page of entries.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...q } = c.req.valid("query");
      const page = await listLogs(c.get("svc"), toFilter(q), {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, logView(c.get("principal")));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/logs/export",
      tags,
      summary: "Export request logs as NDJSON or CSV (streamed, oldest first)",
      request: { query: z.strictObject({ ...Filters, ...ExportFormatQuery }) },
      responses: exportResponses("The matching entries.", EXPORTED, CSV_COLUMNS),
    }),
    (c) => {
      const { format, ...q } = c.req.valid("query");
      return streamExport(c, exportLogs(c.get("svc"), toFilter(q)), {
        format: exportFormat(c, format),
        name: "request-logs",
        columns: CSV_COLUMNS,
        view: logView(c.get("principal")),
        // deno-lint-ignore no-explicit-any
      }) as any;
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/logs/test",
      tags,
      summary: "Write a marked entry through the log pipeline",
      description: "The entry (`test: true`) is written with the next flush, whatever the " +
        "sampling: search for its id to check the pipeline end to end.",
      responses: {
        200: jsonResponse(
          envelope(z.object({ ok: z.boolean(), id: z.string().openapi({ example: ENTRY.id }) })),
          "Queued.",
        ),
      },
    }),
    (c) => {
      const principal = c.get("principal");
      const id = c.get("svc").aggregator.log({
        method: "POST",
        route: "/v1/admin/logs/test",
        path: c.req.path,
        status: 200,
        duration_ms: 0,
        bytes_in: 0,
        bytes_out: 0,
        tenant_id: principal.tenant_id,
        principal_id: principal.id,
        ip: clientIp(c),
        user_agent: c.req.header("User-Agent")?.slice(0, 512) ?? null,
        request_id: c.get("requestId"),
        error_code: null,
        test: true,
      });
      return ok(c, { ok: true, id });
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/logs/prune",
      tags,
      summary: "Delete request logs past retention",
      request: {
        body: {
          ...jsonBody(PruneBody),
          required: false,
        },
      },
      responses: {
        200: jsonResponse(
          envelope(z.object({
            ok: z.boolean(),
            deleted: z.number().int().openapi({ example: 18_342 }),
          })),
          "How many entries were deleted.",
        ),
      },
    }),
    async (c) => {
      const days = c.req.valid("json")?.retention_days;
      return ok(c, { ok: true, deleted: await pruneExpiredLogs(c.get("svc"), days) });
    },
  );

  return app;
}
