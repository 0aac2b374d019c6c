/**
 * Audit: the platform's trail, newest first, filtered by actor, action, tenant, resource and
 * dates, each event's change shown field by field (before struck out, after underlined). Read
 * through `GET /v1/admin/audit`, so support reads emails and addresses in it masked.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import { type Api, type ApiAnswer, can } from "../api.ts";
import { ApiError, Field, offsetOf, Page, Pager, Table, when } from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { failWith } from "./common.tsx";
import { tenantLinks } from "./tenant_links.tsx";

type Changes = Record<string, { before: unknown; after: unknown }>;

interface AuditEvent {
  id: string;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  changes: Changes | null;
  ip_address: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: string;
}

const LIMIT = 25;
const FILTERS = ["actor", "action", "tenant", "resource_id", "from", "to"] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

/** What the page shows of the API's answer (or of the console's own refusal of a filter). */
type Answer = Pick<ApiAnswer<AuditEvent[]>, "status" | "ok" | "data" | "error" | "pagination">;

/** A filter the console could not turn into the API's query, answered as the API would. */
const refused = (message: string): Answer => ({
  status: 400,
  ok: false,
  data: [],
  error: { code: "BAD_REQUEST", message },
});

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * One line per changed leaf: nested objects (metadata, settings) are walked so a change of one
 * key reads as `metadata.crm_id`, not as two whole objects to compare by eye.
 */
export function changedLeaves(
  changes: Changes,
): { path: string; before: unknown; after: unknown }[] {
  const out: { path: string; before: unknown; after: unknown }[] = [];
  const walk = (path: string, before: unknown, after: unknown) => {
    if (isRecord(before) && isRecord(after)) {
      for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
        walk(`${path}.${key}`, before[key], after[key]);
      }
    } else if (JSON.stringify(before ?? null) !== JSON.stringify(after ?? null)) {
      out.push({ path, before, after });
    }
  };
  for (const [field, { before, after }] of Object.entries(changes)) walk(field, before, after);
  return out;
}

/** One side of a change: struck out (before) or marked (after); an absent value as "none". */
const side = (v: unknown, Mark: "del" | "ins"): Child =>
  v === null || v === undefined
    ? <span class="none">none</span>
    : <Mark>{typeof v === "string" ? v : JSON.stringify(v)}</Mark>;

const Diff = ({ changes }: { changes: Changes | null }) => {
  const leaves = changes ? changedLeaves(changes) : [];
  if (!leaves.length) return <>—</>;
  return (
    <ul class="diff">
      {leaves.map((l) => (
        <li>
          <code>{l.path}</code>: <span class="visually-hidden">from</span>
          {side(l.before, "del")} <span aria-hidden="true">→</span>
          <span class="visually-hidden">to</span> {side(l.after, "ins")}
        </li>
      ))}
    </ul>
  );
};

/** A date (YYYY-MM-DD, as a date field sends it) as the start or the end of that UTC day. */
const dayBound = (day: string, end: boolean) =>
  /^\d{4}-\d{2}-\d{2}$/.test(day) ? `${day}T${end ? "23:59:59.999" : "00:00:00.000"}Z` : day;

/**
 * The query for the API from the page's filters: a tenant given by slug and an actor given by
 * email are looked up through the API first (as the signed-in user may see them).
 */
async function apiQuery(
  c: ConsoleContext,
  api: Api,
  f: Filters,
  offset: number,
): Promise<URLSearchParams | Answer> {
  const q = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  if (f.action) q.set("action", f.action);
  if (f.resource_id) q.set("resource_id", f.resource_id);
  if (f.from) q.set("from", dayBound(f.from, false));
  if (f.to) q.set("to", dayBound(f.to, true));
  if (f.tenant) {
    if (f.tenant.startsWith("ten_")) q.set("tenant_id", f.tenant);
    else {
      const t = await api<{ id: string }>(c, "GET", `/v1/tenants/${encodeURIComponent(f.tenant)}`);
      if (!t.ok) return refused("No such tenant");
      q.set("tenant_id", t.data.id);
    }
  }
  if (f.actor.includes("@")) {
    const found = can(c, "GET", "/v1/users")
      ? await api<{ id: string }[]>(
        c,
        "GET",
        `/v1/users?limit=2&search=${encodeURIComponent(f.actor)}`,
      )
      : null;
    if (found?.ok && found.data.length === 1) q.set("actor", found.data[0].id);
    else {
      return refused(
        found?.ok && found.data.length > 1
          ? "More than one user matches that email: give the actor's id"
          : "No user found by that email: give the actor's id",
      );
    }
  } else if (f.actor) q.set("actor", f.actor);
  return q;
}

async function auditPage(c: ConsoleContext, api: Api) {
  const offset = offsetOf(c);
  const f = Object.fromEntries(FILTERS.map((k) => [k, c.req.query(k)?.trim() ?? ""])) as Filters;
  const query = await apiQuery(c, api, f, offset);
  const [res, types]: [Answer, ApiAnswer<{ type: string }[]>] = await Promise.all([
    query instanceof URLSearchParams
      ? api<AuditEvent[]>(c, "GET", `/v1/admin/audit?${query}`)
      : query,
    api<{ type: string }[]>(c, "GET", "/v1/webhooks/event-types"),
  ]);
  if (!res.ok) failWith(c, res);
  const events = res.ok ? res.data : [];
  const tenant = await tenantLinks(c, api, events.flatMap((e) => e.tenant_id ?? []));
  const readsUsers = can(c, "GET", "/v1/users/{id}");
  const who = (id: string, text: Child = id) =>
    readsUsers && id.startsWith("usr_")
      ? <a href={`/console/users/${encodeURIComponent(id)}`}>{text}</a>
      : text;
  return (
    <Page c={c} title="Audit trail" section="audit">
      <form method="get" action="/console/audit" class="search" role="search">
        <Field
          label="Actor (id, or a user's email)"
          name="actor"
          value={f.actor}
        />
        <label class="field">
          <span>Action (comma-separated)</span>
          <input name="action" value={f.action} list="audit-actions" autocomplete="off" />
        </label>
        <datalist id="audit-actions">
          {types.ok ? types.data.map((t) => <option value={t.type} />) : null}
        </datalist>
        <Field label="Tenant (id or slug)" name="tenant" value={f.tenant} />
        <Field label="Resource id" name="resource_id" value={f.resource_id} />
        <Field label="From (UTC day)" name="from" type="date" value={f.from} />
        <Field label="To (UTC day)" name="to" type="date" value={f.to} />
        <button type="submit">Filter</button>
      </form>
      <ApiError error={res.error} />
      <Table
        caption="Audit events, newest first"
        columns={["When", "Actor", "Action", "Resource", "Tenant", "Changes"]}
        empty="No event matches."
        rows={events.map((e) => [
          when(e.created_at),
          <>
            {e.actor_type} {who(e.actor_id)}
            {e.ip_address && <small class="meta">{e.ip_address}</small>}
          </>,
          <code>{e.action}</code>,
          <>
            {e.resource_type} {who(e.resource_id)}
          </>,
          e.tenant_id ? tenant(e.tenant_id) : "—",
          <Diff changes={e.changes} />,
        ])}
      />
      {res.ok && <Pager c={c} total={res.pagination?.total ?? 0} offset={offset} limit={LIMIT} />}
    </Page>
  );
}

export function auditPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get("/console/audit", async (c) => c.html(await auditPage(c, api)));
}
