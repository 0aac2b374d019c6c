/**
 * One tenant's page: its plan and subscription, usage against quota, API keys, members and
 * invitations, projects, webhook endpoints, feature flags, latest audit events, and the actions
 * on them (create, rotate and revoke keys, invite, create projects, toggle flags, suspend,
 * resume). Reads and actions go through the API; each section and button shows only when the
 * user's grants in this tenant allow it. A new key's or invitation's secret is rendered once in
 * the POST's answer, never put in a URL.
 */
import type { Hono } from "hono";
import { type Api, type ApiAnswer, canInTenant, tenantGrants } from "../api.ts";
import { ApiError, offsetOf, Page } from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { Done, failWith, type Form, nonceOf, redirectWith } from "./common.tsx";
import {
  type ApiKey,
  type AuditEvent,
  AuditSection,
  type Billing,
  type DailyUsage,
  type Endpoint,
  Facts,
  FlagsSection,
  type Invitation,
  KEYS_LIMIT,
  KeysSection,
  type Member,
  MembersSection,
  PlanSection,
  type Project,
  ProjectsSection,
  type Scope,
  type Subscription,
  type TenantView,
  UsageSection,
  WebhooksSection,
} from "./tenant_sections.tsx";
import type { MetricUsage } from "../../../domain/usage/usage.ts";

export type { TenantView };

/** An API refusal to show on the page. */
export type ApiRefusal = Pick<ApiAnswer, "status" | "error">;

/** What an action's answer page shows above the tenant. */
interface Outcome {
  refusal?: ApiRefusal;
  secret?: { title: string; value: string };
}

const T = "/v1/tenants/{tenant}";

const SecretOnce = ({ title, value }: { title: string; value: string }) => (
  <section aria-labelledby="secret-title">
    <h2 id="secret-title">{title}</h2>
    <p>Copy it now: Steward keeps only its hash and will not show it again.</p>
    <p class="secret">{value}</p>
  </section>
);

async function tenantDetail(c: ConsoleContext, api: Api, ref: string, outcome: Outcome = {}) {
  const found = await api<TenantView>(c, "GET", `/v1/tenants/${encodeURIComponent(ref)}`);
  if (!found.ok) {
    failWith(c, found);
    return (
      <Page c={c} title="Tenant" section="tenants">
        <ApiError error={found.error} />
        <p>
          <a href="/console/tenants">All tenants</a>
        </p>
      </Page>
    );
  }
  const t = found.data;
  const grants = await tenantGrants(c, t.id);
  const s: Scope = { c, t, may: (method, path) => canInTenant(grants, method, path) };
  const base = `/v1/tenants/${t.id}`;
  /** `GET base+path` when the user may read it, else null (the section is left out). */
  const read = <R,>(path: string, query = "") =>
    s.may("GET", `${T}${path}`)
      ? api<R>(c, "GET", `${base}${path}${query}`)
      : Promise.resolve(null);
  const keysOffset = offsetOf(c);
  const [
    billing,
    subscription,
    usage,
    daily,
    keys,
    members,
    invitations,
    projects,
    webhooks,
    audit,
  ] = await Promise.all([
    read<Billing>("/billing"),
    read<Subscription>("/subscription"),
    read<{ metrics: MetricUsage[] }>("/usage"),
    read<DailyUsage>("/usage/daily", "?metric=verifications"),
    read<ApiKey[]>("/api-keys", `?limit=${KEYS_LIMIT}&offset=${keysOffset}`),
    read<Member[]>("/members", "?limit=50"),
    read<Invitation[]>("/invitations", "?limit=20"),
    read<Project[]>("/projects", "?limit=50"),
    read<Endpoint[]>("/webhooks", "?limit=50"),
    read<AuditEvent[]>("/audit", "?limit=10"),
  ]);
  const contents: [string, string, unknown][] = [
    ["tenant-plan", "Plan", billing],
    ["tenant-usage", "Usage", usage],
    ["tenant-keys", "API keys", keys],
    ["tenant-members", "Members", members],
    ["tenant-projects", "Projects", projects],
    ["tenant-webhooks", "Webhooks", webhooks],
    ["tenant-flags", "Feature flags", true],
    ["tenant-audit", "Audit trail", audit],
  ];
  return (
    <Page c={c} title={`Tenant ${t.name}`} section="tenants">
      <p>
        <a href="/console/tenants">All tenants</a>
      </p>
      {!outcome.refusal && <Done c={c} notices={NOTICES} />}
      <ApiError error={outcome.refusal?.error} />
      {outcome.secret && <SecretOnce {...outcome.secret} />}
      <nav class="contents" aria-label="On this page">
        <ul>
          {contents.filter(([, , shown]) => shown).map(([id, label]) => (
            <li>
              <a href={`#${id}`}>{label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <Facts s={s} />
      {billing && <PlanSection billing={billing} subscription={subscription} />}
      {usage && <UsageSection usage={usage} daily={daily} />}
      {keys && <KeysSection s={s} keys={keys} projects={projects} offset={keysOffset} />}
      {members && <MembersSection s={s} members={members} invitations={invitations} />}
      {projects && <ProjectsSection s={s} projects={projects} />}
      {webhooks && <WebhooksSection webhooks={webhooks} />}
      <FlagsSection s={s} />
      {audit && <AuditSection s={s} audit={audit} />}
    </Page>
  );
}

const field = (form: Form, name: string) => String(form[name] ?? "").trim();

/** What a finished action says on the tenant's page (`?notice=<key>`: no free text in URLs). */
const NOTICES = {
  created: "Tenant created.",
  "key-revoked": "Key revoked.",
  "invitation-revoked": "Invitation revoked.",
  "project-created": "Project created.",
  "flag-set": "Feature flag changed.",
  suspended: "Tenant suspended.",
  resumed: "Tenant resumed.",
} as const;

/** One API call a form asks for, and how its success is told. */
type Call =
  & {
    method: string;
    /** Below `/v1/tenants/{id}`. */
    path: string;
    body?: unknown;
  }
  & (
    /** Redirect with this notice… */
    | { done: keyof typeof NOTICES }
    /** …or render the page with this secret from the answer, once. */
    | { secret: (data: Record<string, unknown>) => { title: string; value: string } }
  );

/** Each action: its path below `/console/tenants/:tenant` and the call it makes. */
const ACTIONS: Record<string, (form: Form, param: (name: string) => string) => Call> = {
  "/keys": (form) => ({
    method: "POST",
    path: "/api-keys",
    body: {
      name: field(form, "name"),
      environment: field(form, "environment"),
      ...(field(form, "project_id") ? { project_id: field(form, "project_id") } : {}),
    },
    secret: (d) => ({ title: `New API key ${d.name}`, value: String(d.key) }),
  }),
  "/keys/:id/rotate": (_form, param) => ({
    method: "POST",
    path: `/api-keys/${encodeURIComponent(param("id"))}/rotate`,
    secret: (d) => ({ title: `Rotated API key ${d.name}`, value: String(d.key) }),
  }),
  "/keys/:id/revoke": (_form, param) => ({
    method: "DELETE",
    path: `/api-keys/${encodeURIComponent(param("id"))}`,
    done: "key-revoked",
  }),
  "/invitations": (form) => ({
    method: "POST",
    path: "/invitations",
    body: { email: field(form, "email"), role: field(form, "role") },
    secret: (d) => ({
      title: `Invitation sent to ${d.email}; its token`,
      value: String(d.token),
    }),
  }),
  "/invitations/:id/revoke": (_form, param) => ({
    method: "DELETE",
    path: `/invitations/${encodeURIComponent(param("id"))}`,
    done: "invitation-revoked",
  }),
  "/projects": (form) => ({
    method: "POST",
    path: "/projects",
    body: { name: field(form, "name") },
    done: "project-created",
  }),
  "/flags": (form) => ({
    method: "PATCH",
    path: "/feature-flags",
    body: { [field(form, "flag")]: field(form, "on") === "true" },
    done: "flag-set",
  }),
  "/suspend": (form) => ({
    method: "POST",
    path: "/suspend",
    body: field(form, "reason") ? { reason: field(form, "reason") } : {},
    done: "suspended",
  }),
  "/resume": () => ({ method: "POST", path: "/resume", done: "resumed" }),
};

export function tenantPages(app: Hono<ConsoleEnv>, api: Api) {
  const page = (c: ConsoleContext, ref: string, outcome?: Outcome) =>
    tenantDetail(c, api, ref, outcome);
  app.get("/console/tenants/:tenant", async (c) => c.html(await page(c, c.req.param("tenant"))));

  for (const [suffix, make] of Object.entries(ACTIONS)) {
    app.post(`/console/tenants/:tenant${suffix}`, async (c) => {
      const ref = c.req.param("tenant");
      const form = await c.req.parseBody();
      const call = make(form, (name) => c.req.param(name) ?? "");
      const res = await api<Record<string, unknown>>(
        c,
        call.method,
        `/v1/tenants/${encodeURIComponent(ref)}${call.path}`,
        { body: call.body, idempotencyKey: nonceOf(form) },
      );
      if (!res.ok) {
        failWith(c, res);
        return c.html(await page(c, ref, { refusal: res }));
      }
      if ("secret" in call) {
        c.header("Cache-Control", "no-store");
        return c.html(await page(c, ref, { secret: call.secret(res.data) }));
      }
      return redirectWith(c, `/console/tenants/${encodeURIComponent(ref)}`, call.done);
    });
  }
  // An action's address opened again (a reload after htmx pushed it): the tenant's page.
  app.get(
    "/console/tenants/:tenant/*",
    (c) => c.redirect(`/console/tenants/${encodeURIComponent(c.req.param("tenant"))}`, 303),
  );
}
