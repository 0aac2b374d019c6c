/**
 * The sections of a tenant's page (pages/tenant.tsx): each renders what the API answered and
 * offers the forms the signed-in user's grants in the tenant allow (`may`).
 */
import type { Child } from "hono/jsx";
import { TENANT_ROLES } from "../../../domain/access/permissions.ts";
import { type ApiAnswer, can } from "../api.ts";
import { ActionForm, Chart, count, Field, money, Pager, Select, Table, when } from "../layout.tsx";
import type { ConsoleContext } from "../session.ts";
import type { MetricUsage } from "../../../domain/usage/usage.ts";

export interface TenantView {
  id: string;
  name: string;
  slug: string;
  status: "active" | "suspended" | "deleted";
  is_test: boolean;
  plan: string;
  plan_override: boolean;
  plan_reason: string | null;
  feature_flags: Record<string, boolean>;
  suspended_reason: string | null;
  suspended_at: string | null;
  created_at: string;
  updated_at: string;
}

/** What a section needs: the page's context, the tenant, and what the user may call in it. */
export interface Scope {
  c: ConsoleContext;
  t: TenantView;
  /** `METHOD /v1/tenants/{tenant}/…` allowed in this tenant (OpenAPI path, as the table has it). */
  may: (method: string, path: string) => boolean;
}

/** A console action on this tenant: `/console/tenants/{id}/…`. */
const to = (s: Scope, suffix: string) => `/console/tenants/${s.t.id}${suffix}`;
const T = "/v1/tenants/{tenant}";

const price = (minor: number, currency: string) => money({ [currency]: minor });
/** A caption with the list's total when the API counted it. */
const titled = (title: string, res: ApiAnswer<unknown[]>) =>
  res.pagination?.total !== undefined ? `${title} (${count(res.pagination.total)})` : title;

const Section = (p: { id: string; title: string; children: Child }) => (
  <section aria-labelledby={p.id}>
    <h2 id={p.id}>{p.title}</h2>
    {p.children}
  </section>
);

/** The API refused a read the user may make (a 5xx, a limit): say so in place. */
const Unread = ({ res }: { res: ApiAnswer<unknown> }) => (
  <p>{`Could not read this: ${res.error?.message ?? `status ${res.status}`}.`}</p>
);

export const Facts = ({ s }: { s: Scope }) => {
  const { t } = s;
  return (
    <Section id="tenant-status" title="Tenant">
      <dl class="facts">
        <dt>Id</dt>
        <dd>{t.id}</dd>
        <dt>Slug</dt>
        <dd>{t.slug}</dd>
        <dt>Status</dt>
        <dd>{t.status}{t.suspended_reason ? ` (${t.suspended_reason})` : ""}</dd>
        {t.suspended_at && (
          <>
            <dt>Suspended at</dt>
            <dd>{when(t.suspended_at)}</dd>
          </>
        )}
        <dt>Sandbox</dt>
        <dd>{t.is_test ? "yes" : "no"}</dd>
        <dt>Created</dt>
        <dd>{when(t.created_at)}</dd>
      </dl>
      {t.status === "active" && s.may("POST", `${T}/suspend`) && (
        <ActionForm c={s.c} action={to(s, "/suspend")} label="Suspend tenant" danger>
          <Field label="Reason for suspending" name="reason" />
        </ActionForm>
      )}
      {t.status === "suspended" && s.may("POST", `${T}/resume`) && (
        <ActionForm c={s.c} action={to(s, "/resume")} label="Resume tenant" />
      )}
    </Section>
  );
};

export interface Plan {
  code: string;
  name: string;
  price: { amount: number; currency: string; interval: string };
  rate_limit: { requests_per_second: number; burst: number };
  quota: { units: number; period: string } | null;
  sla: number;
}
export interface Billing {
  plan: Plan;
  override: boolean;
  reason: string | null;
}
export interface Subscription {
  status: string;
  plan_code: string | null;
  amount: number;
  currency: string;
  interval: string;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
}

export const PlanSection = (
  { billing, subscription }: {
    billing: ApiAnswer<Billing>;
    subscription: ApiAnswer<Subscription> | null;
  },
) => {
  const sub = subscription?.ok ? subscription.data : null;
  return (
    <Section id="tenant-plan" title="Plan and subscription">
      {billing.ok
        ? (
          <dl class="facts">
            <dt>Plan</dt>
            <dd>{`${billing.data.plan.name} (${billing.data.plan.code})`}</dd>
            <dt>Price</dt>
            <dd>
              {`${
                price(billing.data.plan.price.amount, billing.data.plan.price.currency)
              } per ${billing.data.plan.price.interval}`}
            </dd>
            <dt>Rate limit</dt>
            <dd>
              {`${billing.data.plan.rate_limit.requests_per_second}/s, burst ${billing.data.plan.rate_limit.burst}`}
            </dd>
            <dt>Quota</dt>
            <dd>
              {billing.data.plan.quota
                ? `${
                  count(billing.data.plan.quota.units)
                } verifications per ${billing.data.plan.quota.period}`
                : "none"}
            </dd>
            <dt>Set by</dt>
            <dd>
              {billing.data.override
                ? `platform override${billing.data.reason ? `: ${billing.data.reason}` : ""}`
                : "the subscription (or the default plan)"}
            </dd>
            {subscription && (
              <>
                <dt>Subscription</dt>
                <dd>
                  {sub
                    ? `${sub.status}, ${price(sub.amount, sub.currency)} per ${sub.interval}` +
                      (sub.current_period_end
                        ? `, ${sub.cancel_at_period_end ? "ends" : "renews"} ${
                          when(sub.current_period_end)
                        }`
                        : "")
                    : subscription.status === 404
                    ? "none (no Stripe subscription)"
                    : `could not be read (${subscription.status})`}
                </dd>
              </>
            )}
          </dl>
        )
        : <Unread res={billing} />}
    </Section>
  );
};

export interface DailyUsage {
  metric: string;
  days: { date: string; used: number }[];
}

export const UsageSection = (
  { usage, daily }: {
    usage: ApiAnswer<{ metrics: MetricUsage[] }>;
    daily: ApiAnswer<DailyUsage> | null;
  },
) => (
  <Section id="tenant-usage" title="Usage against quota">
    {usage.ok
      ? (
        <Table
          caption="This quota period"
          columns={["Metric", "Used", "Quota", "Share of quota", "Period"]}
          empty="No usage in this period."
          rows={usage.data.metrics.map((m) => [
            m.metric,
            count(m.used),
            m.quota === null ? "no quota" : count(m.quota),
            m.quota === null ? "—" : (
              <>
                <meter
                  min={0}
                  max={m.quota}
                  value={Math.min(m.used, m.quota)}
                  high={m.quota * 0.8}
                  aria-label={`${m.metric}: share of quota used`}
                >
                  {`${m.percent ?? 0} %`}
                </meter>{" "}
                {`${m.percent ?? 0} %`}
              </>
            ),
            `${m.period_start.slice(0, 10)} – ${m.period_end.slice(0, 10)}`,
          ])}
        />
      )
      : <Unread res={usage} />}
    {daily?.ok && (
      <Chart
        id="chart-usage"
        title="Verifications per day (last 30 days)"
        days={daily.data.days.map((d) => d.date)}
        series={[{ label: "Verifications", values: daily.data.days.map((d) => d.used) }]}
      />
    )}
  </Section>
);

export interface ApiKey {
  id: string;
  name: string;
  environment: string;
  start: string;
  status: string;
  project_id: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}
export interface Project {
  id: string;
  name: string;
  status: string;
  allowed_origins: string[];
  created_at: string;
}

export const KEYS_LIMIT = 20;

export const KeysSection = (
  { s, keys, projects, offset }: {
    s: Scope;
    keys: ApiAnswer<ApiKey[]>;
    projects: ApiAnswer<Project[]> | null;
    offset: number;
  },
) => {
  const rotate = s.may("POST", `${T}/api-keys/{id}/rotate`);
  const revoke = s.may("DELETE", `${T}/api-keys/{id}`);
  const live = s.t.status !== "deleted";
  const keyRow = (k: ApiKey): Child[] => [
    k.name,
    <code>{k.start}</code>,
    k.environment,
    k.status,
    when(k.created_at),
    when(k.last_used_at),
    k.status === "active" && live
      ? (
        <>
          {rotate && (
            <ActionForm
              c={s.c}
              action={to(s, `/keys/${k.id}/rotate`)}
              label="Rotate"
              inline
            />
          )}
          {revoke && (
            <ActionForm
              c={s.c}
              action={to(s, `/keys/${k.id}/revoke`)}
              label="Revoke"
              danger
              inline
            />
          )}
        </>
      )
      : "",
  ];
  return (
    <Section id="tenant-keys" title="API keys">
      {live && s.may("POST", `${T}/api-keys`) && (
        <ActionForm c={s.c} action={to(s, "/keys")} label="Create key">
          <Field label="Key name" name="name" required />
          <Select
            label="Environment"
            name="environment"
            options={[["live", "live"], ["test", "test"]]}
          />
          {projects?.ok && projects.data.length > 0 && (
            <Select
              label="Project"
              name="project_id"
              options={[
                ["", "none"],
                ...projects.data.map((p): [string, string] => [p.id, p.name]),
              ]}
            />
          )}
        </ActionForm>
      )}
      {keys.ok
        ? (
          <>
            <Table
              caption={titled("API keys", keys)}
              columns={["Name", "Starts with", "Environment", "Status", "Created", "Last used", ""]}
              empty="No key yet."
              rows={keys.data.map(keyRow)}
            />
            <Pager
              c={s.c}
              total={keys.pagination?.total ?? 0}
              offset={offset}
              limit={KEYS_LIMIT}
            />
          </>
        )
        : <Unread res={keys} />}
    </Section>
  );
};

export interface Member {
  user_id: string;
  email: string | null;
  name: string | null;
  role: string;
  created_at: string;
}
export interface Invitation {
  id: string;
  email: string;
  role: string;
  status: string;
  expires_at: string;
}

export const MembersSection = (
  { s, members, invitations }: {
    s: Scope;
    members: ApiAnswer<Member[]>;
    invitations: ApiAnswer<Invitation[]> | null;
  },
) => {
  const revoke = s.may("DELETE", `${T}/invitations/{id}`);
  return (
    <Section id="tenant-members" title="Members and invitations">
      {members.ok
        ? (
          <Table
            caption={titled("Members", members)}
            columns={["Email", "Name", "Role", "Member since"]}
            empty="No member."
            rows={members.data.map((m) => [
              m.email ?? "—",
              m.name ?? "—",
              m.role,
              when(m.created_at),
            ])}
          />
        )
        : <Unread res={members} />}
      {invitations && (invitations.ok
        ? (
          <Table
            caption={titled("Invitations", invitations)}
            columns={["Email", "Role", "Status", "Expires", ""]}
            empty="No invitation."
            rows={invitations.data.map((i) => [
              i.email,
              i.role,
              i.status,
              when(i.expires_at),
              i.status === "pending" && revoke
                ? (
                  <ActionForm
                    c={s.c}
                    action={to(s, `/invitations/${i.id}/revoke`)}
                    label="Revoke invitation"
                    danger
                    inline
                  />
                )
                : "",
            ])}
          />
        )
        : <Unread res={invitations} />)}
      {s.t.status !== "deleted" && s.may("POST", `${T}/invitations`) && (
        <ActionForm c={s.c} action={to(s, "/invitations")} label="Invite">
          <Field label="Email to invite" name="email" type="email" required />
          <Select
            label="Role"
            name="role"
            value="member"
            options={TENANT_ROLES.map((r): [string, string] => [r, r])}
          />
        </ActionForm>
      )}
    </Section>
  );
};

const projectRow = (p: Project): Child[] => [
  p.name,
  <code>{p.id}</code>,
  p.allowed_origins.join(", ") || "—",
  when(p.created_at),
];

export const ProjectsSection = (
  { s, projects }: { s: Scope; projects: ApiAnswer<Project[]> },
) => (
  <Section id="tenant-projects" title="Projects">
    {projects.ok
      ? (
        <Table
          caption={titled("Projects", projects)}
          columns={["Name", "Id", "Allowed origins", "Created"]}
          empty="No project yet."
          rows={projects.data.map(projectRow)}
        />
      )
      : <Unread res={projects} />}
    {s.t.status !== "deleted" && s.may("POST", `${T}/projects`) && (
      <ActionForm c={s.c} action={to(s, "/projects")} label="Create project">
        <Field label="Project name" name="name" required />
      </ActionForm>
    )}
  </Section>
);

export interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  created_at: string;
}

export const WebhooksSection = ({ webhooks }: { webhooks: ApiAnswer<Endpoint[]> }) => (
  <Section id="tenant-webhooks" title="Webhook endpoints">
    {webhooks.ok
      ? (
        <Table
          caption={titled("Webhook endpoints", webhooks)}
          columns={["URL", "Description", "Events", "State", "Created"]}
          empty="No endpoint."
          rows={webhooks.data.map((w) => [
            w.url,
            w.description ?? "—",
            w.event_types.join(", ") || "all",
            w.enabled ? "enabled" : `disabled${w.disabled_reason ? ` (${w.disabled_reason})` : ""}`,
            when(w.created_at),
          ])}
        />
      )
      : <Unread res={webhooks} />}
  </Section>
);

export const FlagsSection = ({ s }: { s: Scope }) => {
  const write = s.t.status !== "deleted" && s.may("PATCH", `${T}/feature-flags`);
  const flags = Object.entries(s.t.feature_flags).sort(([a], [b]) => a.localeCompare(b));
  const flagRow = ([name, on]: [string, boolean]): Child[] => [
    <code>{name}</code>,
    on ? "on" : "off",
    ...(write
      ? [
        <ActionForm
          c={s.c}
          action={to(s, "/flags")}
          label={on ? `Turn ${name} off` : `Turn ${name} on`}
          inline
        >
          <input type="hidden" name="flag" value={name} />
          <input type="hidden" name="on" value={on ? "false" : "true"} />
        </ActionForm>,
      ]
      : []),
  ];
  return (
    <Section id="tenant-flags" title="Feature flags">
      <Table
        caption="Feature flags"
        columns={write ? ["Flag", "State", ""] : ["Flag", "State"]}
        empty="No flag set."
        rows={flags.map(flagRow)}
      />
      {write && (
        <ActionForm c={s.c} action={to(s, "/flags")} label="Set flag">
          <Field label="Flag name" name="flag" required hint="lower-case, e.g. new_dashboard" />
          <Select label="State" name="on" options={[["true", "on"], ["false", "off"]]} />
        </ActionForm>
      )}
    </Section>
  );
};

export interface AuditEvent {
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  ip_address: string | null;
  created_at: string;
}

export const AuditSection = (
  { s, audit }: { s: Scope; audit: ApiAnswer<AuditEvent[]> },
) => (
  <Section id="tenant-audit" title="Audit trail">
    {audit.ok
      ? (
        <Table
          caption="Latest changes"
          columns={["When", "Actor", "Action", "Resource", "IP address"]}
          empty="Nothing recorded."
          rows={audit.data.map((e) => [
            when(e.created_at),
            `${e.actor_type} ${e.actor_id}`,
            e.action,
            `${e.resource_type} ${e.resource_id}`,
            e.ip_address ?? "—",
          ])}
        />
      )
      : <Unread res={audit} />}
    {can(s.c, "GET", "/v1/admin/audit") && (
      <p>
        <a href={`/console/audit?tenant=${s.t.id}`}>The tenant's whole audit trail</a>
      </p>
    )}
  </Section>
);
