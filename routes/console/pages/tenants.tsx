/**
 * Tenants: the list (search by name or slug prefix, status, offset pages) and the forms that
 * create a tenant or a sandbox one. Each tenant's own page is pages/tenant.tsx. Everything is
 * read and done through the API, so qa sees only test tenants and a member only their own.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import { type Api, can } from "../api.ts";
import {
  ActionForm,
  ApiError,
  Field,
  offsetOf,
  Page,
  Pager,
  Select,
  Table,
  when,
} from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { failWith, nonceOf, redirectWith } from "./common.tsx";
import { type ApiRefusal, tenantPages, type TenantView } from "./tenant.tsx";

const LIMIT = 25;
const STATUSES = ["active", "suspended", "deleted"];

/** The list's filters from the query string, as the API takes them. */
function filters(c: ConsoleContext) {
  const search = (c.req.query("search") ?? "").trim();
  const wanted = c.req.query("status") ?? "";
  const status = STATUSES.includes(wanted) ? wanted : "";
  return { search, status, offset: offsetOf(c) };
}

const tenantRow = (t: TenantView): Child[] => [
  <a href={`/console/tenants/${t.id}`}>{t.name}</a>,
  t.slug,
  t.status,
  t.plan,
  t.is_test ? "yes" : "no",
  when(t.created_at),
];

async function tenantList(c: ConsoleContext, api: Api, refusal?: ApiRefusal) {
  const { search, status, offset } = filters(c);
  const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  if (search) query.set("search", search);
  if (status) query.set("status", status);
  const res = await api<TenantView[]>(c, "GET", `/v1/tenants?${query}`);
  const tenants = res.ok ? res.data : [];
  return (
    <Page c={c} title="Tenants" section="tenants">
      <ApiError error={refusal?.error ?? (res.ok ? undefined : res.error)} />
      <form class="search" method="get" action="/console/tenants" role="search">
        <Field label="Name or slug starts with" name="search" type="search" value={search} />
        <Select
          label="Status"
          name="status"
          value={status}
          options={[["", "active and suspended"], ...STATUSES.map((v): [string, string] => [v, v])]}
        />
        <button type="submit">Search</button>
      </form>
      <Table
        caption={search ? `Tenants whose name or slug starts with “${search}”` : "Tenants"}
        columns={["Name", "Slug", "Status", "Plan", "Sandbox", "Created"]}
        empty="No tenant matches."
        rows={tenants.map(tenantRow)}
      />
      <Pager c={c} total={res.pagination?.total ?? 0} offset={offset} limit={LIMIT} />
      <CreateForms c={c} />
    </Page>
  );
}

/** A tenant (platform staff with tenants:create) or a sandbox tenant (tenants:test, e.g. qa). */
const CreateForms = ({ c }: { c: ConsoleContext }) => (
  <>
    {can(c, "POST", "/v1/tenants") && (
      <section aria-labelledby="create-tenant">
        <h2 id="create-tenant">Create a tenant</h2>
        <ActionForm c={c} action="/console/tenants" label="Create tenant">
          <Field label="Name" name="name" required />
          <Field
            label="Slug"
            name="slug"
            required
            hint="3–63 lower-case letters, digits, hyphens"
          />
        </ActionForm>
      </section>
    )}
    {can(c, "POST", "/v1/tenants/test") && (
      <section aria-labelledby="create-test-tenant">
        <h2 id="create-test-tenant">Create a sandbox tenant</h2>
        <ActionForm c={c} action="/console/tenants/test" label="Create sandbox tenant">
          <Field label="Sandbox name" name="name" required />
        </ActionForm>
      </section>
    )}
  </>
);

export function tenantsPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get("/console/tenants", async (c) => c.html(await tenantList(c, api)));

  const create = (path: "/v1/tenants" | "/v1/tenants/test") => async (c: ConsoleContext) => {
    const form = await c.req.parseBody();
    const name = String(form.name ?? "").trim();
    const slug = String(form.slug ?? "").trim();
    const res = await api<TenantView>(c, "POST", path, {
      body: path === "/v1/tenants" ? { name, slug } : { name },
      idempotencyKey: nonceOf(form),
    });
    if (res.ok) return redirectWith(c, `/console/tenants/${res.data.id}`, "created");
    failWith(c, res);
    return c.html(await tenantList(c, api, res));
  };
  app.post("/console/tenants", create("/v1/tenants"));
  app.post("/console/tenants/test", create("/v1/tenants/test"));

  tenantPages(app, api);
}
