/**
 * Operations › request logs: search with filters, export what matches (CSV or NDJSON, streamed
 * from the API's export through the session: the API's URL needs a bearer token a browser does
 * not hold), write a test entry through the pipeline, prune past retention.
 */
import type { Hono } from "hono";
import { type Api, type ApiAnswer, can } from "../api.ts";
import { ActionForm, ApiError, Field, offsetOf, Pager, Select, Table, when } from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { choices, failWith, type Form, nonceOf, redirectWith, totalOf, utc } from "./common.tsx";
import { OPS, OpsPage } from "./operations_nav.tsx";

const API = "/v1/admin/logs";
const HOME = `${OPS}/logs`;
const LIMIT = 50;
const LEVELS = ["info", "warn", "error"] as const;

const NOTICES: Record<string, string> = {
  "test-queued": "A test entry is on its way: it is written with the next flush (level info, " +
    "path /v1/admin/logs/test).",
  pruned: "Entries past retention are deleted.",
};

interface LogEntry {
  id: string;
  at: string;
  level: string;
  method: string;
  path: string;
  status: number;
  duration_ms: number;
  tenant_id: string | null;
  ip: string | null;
  request_id: string;
  error_code: string | null;
  test?: true;
}

/** The page's filters as the API's query: only those given; times typed as UTC. */
function filtersOf(c: ConsoleContext): { form: Record<string, string>; query: URLSearchParams } {
  const form: Record<string, string> = {};
  const query = new URLSearchParams();
  for (const name of ["level", "status", "tenant_id", "path", "from", "to"]) {
    const value = c.req.query(name)?.trim();
    if (!value) continue;
    form[name] = value;
    query.set(name, name === "from" || name === "to" ? utc(value) : value);
  }
  return { form, query };
}

async function logsPage(c: ConsoleContext, api: Api, error?: ApiAnswer["error"]) {
  const offset = offsetOf(c);
  const { form, query } = filtersOf(c);
  const res = await api<LogEntry[]>(
    c,
    "GET",
    `${API}?${new URLSearchParams([...query, ["limit", String(LIMIT)], [
      "offset",
      String(offset),
    ]])}`,
  );
  if (!res.ok) failWith(c, res);
  const exportAt = (format: string) =>
    `${HOME}/export?${new URLSearchParams([...Object.entries(form), ["format", format]])}`;
  const write = can(c, "POST", `${API}/test`);
  return (
    <OpsPage c={c} title="Request logs" tab="logs" notices={NOTICES} error={error}>
      <form class="search" method="get" action={HOME}>
        <Select label="Level" name="level" options={choices(LEVELS)} value={form.level} />
        <Field label="Status" name="status" type="number" value={form.status} />
        <Field label="Tenant id" name="tenant_id" value={form.tenant_id} />
        <Field label="Path starts with" name="path" value={form.path} />
        <Field label="From (UTC)" name="from" type="datetime-local" value={form.from} />
        <Field label="To (UTC)" name="to" type="datetime-local" value={form.to} />
        <button type="submit">Search</button>
      </form>
      <p>
        {"Export what matches: "}
        <a href={exportAt("csv")} hx-boost="false" download>CSV</a>
        {" · "}
        <a href={exportAt("ndjson")} hx-boost="false" download>NDJSON</a>
      </p>
      {res.ok
        ? (
          <>
            <Table
              caption="Request logs (newest first)"
              columns={[
                "At",
                "Level",
                "Request",
                "Status",
                "Took",
                "Tenant",
                "Address",
                "Request id",
                "Error",
              ]}
              rows={res.data.map((e) => [
                when(e.at),
                e.test ? `${e.level} (test)` : e.level,
                <code>{`${e.method} ${e.path}`}</code>,
                e.status,
                `${e.duration_ms} ms`,
                e.tenant_id ?? "—",
                e.ip ?? "—",
                e.request_id,
                e.error_code ?? "—",
              ])}
              empty="No entry matches."
            />
            <Pager c={c} total={totalOf(res, offset)} offset={offset} limit={LIMIT} />
          </>
        )
        : <ApiError error={res.error} />}
      {write && (
        <section aria-labelledby="pipeline-title">
          <h2 id="pipeline-title">Pipeline</h2>
          <ActionForm c={c} action={`${HOME}/test`} label="Write a test entry" />
          <ActionForm c={c} action={`${HOME}/prune`} label="Prune past retention" danger>
            <Field
              label="Keep days"
              name="retention_days"
              type="number"
              hint="Empty: LOG_RETENTION_DAYS"
            />
          </ActionForm>
        </section>
      )}
    </OpsPage>
  );
}

export function logPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get(HOME, async (c) => c.html(await logsPage(c, api)));

  // The API's export streamed on as it comes, under the console's session.
  app.get(`${HOME}/export`, async (c) => {
    const { query } = filtersOf(c);
    const format = c.req.query("format") === "ndjson" ? "ndjson" : "csv";
    query.set("format", format);
    const res = await api(c, "GET", `${API}/export?${query}`);
    if (!res.ok || !res.body) {
      failWith(c, res);
      return c.html(await logsPage(c, api, res.error));
    }
    return c.body(res.body, 200, {
      "Content-Type": res.headers.get("Content-Type") ?? "application/octet-stream",
      "Content-Disposition": res.headers.get("Content-Disposition") ?? "attachment",
      "Cache-Control": "no-store",
    });
  });

  app.post(`${HOME}/test`, async (c) => {
    const form: Form = await c.req.parseBody();
    const res = await api(c, "POST", `${API}/test`, { idempotencyKey: nonceOf(form) });
    if (!res.ok) {
      failWith(c, res);
      return c.html(await logsPage(c, api, res.error));
    }
    return redirectWith(c, HOME, "test-queued");
  });

  app.post(`${HOME}/prune`, async (c) => {
    const form: Form = await c.req.parseBody();
    const days = String(form.retention_days ?? "").trim();
    const res = await api(c, "POST", `${API}/prune`, {
      body: days ? { retention_days: Number(days) } : {},
      idempotencyKey: nonceOf(form),
    });
    if (!res.ok) {
      failWith(c, res);
      return c.html(await logsPage(c, api, res.error));
    }
    return redirectWith(c, HOME, "pruned");
  });
}
