/** The audit trail: platform-wide, per tenant, and as a streamed NDJSON or CSV export. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { exportAudit, listAudit } from "../../domain/audit/audit.ts";
import { EVENT_CATALOG } from "../../domain/audit/event_catalog.ts";
import { notFound } from "../../domain/shared/errors.ts";
import { getUserRecord } from "../../domain/identity/users.ts";
import { membershipRole } from "../../domain/access/principal.ts";
import type { AppEnv } from "../context.ts";
import {
  exportFormat,
  ExportFormatQuery,
  exportResponses,
  streamExport,
  timeBounds,
} from "../export.ts";
import { okList } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  IdParams,
  jsonResponse,
  listEnvelope,
  PageQuery,
  TenantParams,
  Timestamp,
} from "../schemas.ts";
import { auditView } from "../views.ts";
import { type AuditFilter } from "../../pg/analytics.ts";

// Ada, owner of Acme Inc., makes Grace an admin from the console.
const EVENT = {
  id: "aud_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  actor_type: "user",
  actor_id: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  action: "membership.updated",
  resource_type: "membership",
  resource_id: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2B",
  tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  changes: { role: { before: "member", after: "admin" } },
  ip_address: "203.0.113.7",
  user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Firefox/121.0",
  request_id: "req_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  created_at: "2026-01-22T15:04:05.000Z",
} as const;

const AuditEventSchema = z.object({
  id: z.string().openapi({ example: EVENT.id }),
  actor_type: z.enum(["user", "service_token", "system"]),
  actor_id: z.string().openapi({ example: EVENT.actor_id }),
  action: z.string().openapi({ example: EVENT.action }),
  resource_type: z.string().openapi({ example: EVENT.resource_type }),
  resource_id: z.string().openapi({ example: EVENT.resource_id }),
  tenant_id: z.string().nullable().openapi({ example: EVENT.tenant_id }),
  changes: z.record(z.string(), z.object({ before: z.unknown(), after: z.unknown() })).nullable()
    .openapi({ example: EVENT.changes }),
  ip_address: z.string().nullable().openapi({ example: EVENT.ip_address }),
  user_agent: z.string().nullable().openapi({ example: EVENT.user_agent }),
  request_id: z.string().nullable().openapi({ example: EVENT.request_id }),
  created_at: z.string().openapi({ example: EVENT.created_at }),
}).openapi("AuditEvent");

const Filters = {
  actor: z.string().max(64).optional().openapi({ description: "Actor id (usr_…, tok_…, system)." }),
  action: z.string().max(500).optional().openapi({
    description: "Comma-separated actions, e.g. tenant.created,tenant.updated.",
  }),
  resource_type: z.string().max(64).optional(),
  resource_id: z.string().max(64).optional(),
  from: Timestamp.optional().openapi({ description: "Inclusive lower bound." }),
  to: Timestamp.optional().openapi({ description: "Inclusive upper bound." }),
  // The names the audit APIs Steward replaces use; `from` and `to` win when both are given.
  start_date: Timestamp.optional().openapi({ description: "Alias of `from`." }),
  since: Timestamp.optional().openapi({ description: "Alias of `from`." }),
  end_date: Timestamp.optional().openapi({ description: "Alias of `to`." }),
};

const AdminFilters = { ...Filters, tenant_id: z.string().max(64).optional() };

type FilterQuery = { [K in keyof typeof AdminFilters]?: string };

function toFilter(q: FilterQuery, tenantId?: string): AuditFilter {
  const { from, to } = timeBounds({
    from: q.from ?? q.start_date ?? q.since,
    to: q.to ?? q.end_date,
  });
  const actions = q.action?.split(",").map((a) => a.trim()).filter(Boolean);
  const filter: AuditFilter = {
    tenant_id: tenantId ?? q.tenant_id,
    actor: q.actor,
    actions: actions?.length ? actions : undefined,
    resource_type: q.resource_type,
    resource_id: q.resource_id,
    from,
    to,
  };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
}

/** A tenant-bound service token reads the platform trail of its own tenant only. */
function adminFilter(c: Context<AppEnv>, q: FilterQuery): AuditFilter {
  const bound = c.get("principal").tenant_id;
  if (bound && q.tenant_id && q.tenant_id !== bound) throw notFound("tenant");
  return toFilter(q, bound ?? undefined);
}

const list = listEnvelope(AuditEventSchema);
const tags = ["Audit"];

const CSV_COLUMNS = [
  "id",
  "created_at",
  "actor_type",
  "actor_id",
  "action",
  "resource_type",
  "resource_id",
  "tenant_id",
  "ip_address",
  "user_agent",
  "request_id",
  "changes",
] as const;

/** The vault's own trail: secret writes and reveals, data key rotations, backups, restores. */
const VAULT_ACTIONS = EVENT_CATALOG.map((e) => e.type).filter((t) => /^(secret|vault)\./.test(t));

export function auditRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/audit",
      tags,
      summary: "Search the platform's audit trail (newest first)",
      request: { query: z.strictObject({ ...PageQuery, ...AdminFilters }) },
      responses: { 200: jsonResponse(list, "A page of audit events.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...q } = c.req.valid("query");
      const page = await listAudit(c.get("svc"), adminFilter(c, q), {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, auditView(c.get("principal")));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/audit/export",
      tags,
      summary: "Export the audit trail as NDJSON or CSV (streamed, oldest first)",
      request: {
        query: z.strictObject({ ...AdminFilters, ...ExportFormatQuery }),
      },
      responses: exportResponses("The matching events.", [EVENT], CSV_COLUMNS),
    }),
    (c) => {
      const { format, ...q } = c.req.valid("query");
      return streamExport(c, exportAudit(c.get("svc"), adminFilter(c, q)), {
        format: exportFormat(c, format),
        name: "audit",
        columns: CSV_COLUMNS,
        view: auditView(c.get("principal")),
        // deno-lint-ignore no-explicit-any
      }) as any;
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/audit",
      tags,
      summary: "The tenant's audit trail (newest first)",
      request: { params: TenantParams, query: z.strictObject({ ...PageQuery, ...Filters }) },
      responses: { 200: jsonResponse(list, "A page of audit events.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...q } = c.req.valid("query");
      const page = await listAudit(c.get("svc"), toFilter(q, c.get("tenant").value.id), {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, auditView(c.get("principal")));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/users/{id}/audit-trail",
      tags: ["Users"],
      summary: "A user's audit trail: events it did or that were done to it (newest first)",
      request: {
        params: IdParams("usr"),
        query: z.strictObject({ ...PageQuery, ...AdminFilters }),
      },
      responses: { 200: jsonResponse(list, "A page of audit events.") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await getUserRecord(c.get("svc"), id);
      // A tenant-bound token sees members of its tenant only, and their events in it.
      const bound = c.get("principal").tenant_id;
      if (bound && !await membershipRole(c.get("svc"), bound, id)) throw notFound("user");
      const { limit, cursor, offset, page: pageNo, ...q } = c.req.valid("query");
      const filter = { ...adminFilter(c, q), user: id };
      const page = await listAudit(c.get("svc"), filter, { limit, cursor, offset, page: pageNo });
      return okList(c, page, limit, auditView(c.get("principal")));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/vault/audit",
      tags: ["Vault"],
      summary: "Search the vault's audit trail (newest first)",
      description: `The audit trail of ${VAULT_ACTIONS.map((a) => `\`${a}\``).join(", ")}; ` +
        "`action` narrows it to some of them.",
      request: { query: z.strictObject({ ...PageQuery, ...AdminFilters }) },
      responses: { 200: jsonResponse(list, "A page of audit events.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, ...q } = c.req.valid("query");
      const filter = adminFilter(c, q);
      const actions = (filter.actions ?? VAULT_ACTIONS).filter((a) => VAULT_ACTIONS.includes(a));
      // No vault action asked for: an action no event has, so the page is empty and counted.
      filter.actions = actions.length ? actions : ["(none)"];
      const page = await listAudit(c.get("svc"), filter, {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, auditView(c.get("principal")));
    },
  );

  return app;
}
