/**
 * Vault: every tenant's secrets (names and metadata; a value is revealed only with a reason, is
 * audited by the API, and is shown once in the reveal's own answer, never in a URL), backups of
 * the store, and the data keys' health and rotation. Each action's button is shown only to
 * those the API lets act.
 */
import type { Hono } from "hono";
import type { VaultHealth } from "../../../domain/platform/vault_health.ts";
import type { Backup, BackupStatus } from "../../../domain/vault/backups.ts";
import { SECRET_TYPES, type SecretValue, type secretView } from "../../../domain/vault/secrets.ts";
import { type Api, type ApiAnswer, can, canInTenant, tenantGrants } from "../api.ts";
import {
  ActionForm,
  ApiError,
  count,
  Field,
  Kpi,
  Notice,
  offsetOf,
  Page,
  Pager,
  Select,
  Table,
  when,
} from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { tenantLinks } from "./tenant_links.tsx";
import { choices, Done, failWith, type Form, nonceOf, redirectWith, totalOf } from "./common.tsx";

type SecretMeta = ReturnType<typeof secretView>;
interface SecretShown extends SecretMeta {
  value_version: number;
  value_preview: string | null;
  smtp: Record<string, string | number | boolean> | null;
}
interface Revealed extends SecretMeta {
  value_version: number;
  value: SecretValue;
}
type ApiErr = ApiAnswer["error"];

const PAGE = 25;
const REVEAL = "POST /v1/tenants/{tenant}/secrets/{name}/reveal";
const secretPath = (tenant: string, name: string) =>
  `/v1/tenants/${encodeURIComponent(tenant)}/secrets/${encodeURIComponent(name)}`;
const pagePath = (tenant: string, name: string) =>
  `/console/vault/secrets/${encodeURIComponent(tenant)}/${encodeURIComponent(name)}`;
const [revealMethod, revealRoute] = REVEAL.split(" ");

const link = (href: string, text: string) => <a href={href}>{text}</a>;
const warning = (w: string) => <Notice kind="error" message={w} />;
/** A long hash, wrapped anywhere rather than widening the table. */
const digest = (hex: string) => <code class="digest">{hex}</code>;

/** The vault's own pages, those the user may read. */
const Tabs = ({ c, at }: { c: ConsoleContext; at: string }) => {
  const tabs = [
    { href: "/console/vault", label: "Secrets", needs: "/v1/admin/secrets" },
    { href: "/console/vault/backups", label: "Backups", needs: "/v1/admin/vault/backups" },
    { href: "/console/vault/keys", label: "Keys and rotation", needs: "/v1/admin/vault/health" },
  ].filter((t) => can(c, "GET", t.needs));
  return (
    <nav aria-label="Vault" class="subnav">
      <ul>
        {tabs.map((t) => (
          <li>
            <a href={t.href} aria-current={t.href === at ? "page" : undefined}>{t.label}</a>
          </li>
        ))}
      </ul>
    </nav>
  );
};

/** A page of the vault the user's role may not read. */
const refused = (c: ConsoleContext, title: string, message: string) => {
  c.status(403);
  return (
    <Page c={c} title={title} section="vault">
      <Notice kind="error" message={message} />
    </Page>
  );
};

// ── Secrets ─────────────────────────────────────────────────────────────────

async function secretsPage(c: ConsoleContext, api: Api) {
  if (!can(c, "GET", "/v1/admin/secrets")) {
    return refused(c, "Vault", "Your role may not read tenant secrets.");
  }
  const tenant = (c.req.query("tenant_id") ?? "").trim();
  const type = c.req.query("type") ?? "";
  const offset = offsetOf(c);
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (tenant) q.set("tenant_id", tenant);
  if (type) q.set("type", type);
  const res = await api<SecretMeta[]>(c, "GET", `/v1/admin/secrets?${q}`);
  const rows = res.ok ? res.data : [];
  // Whether the user may reveal in each tenant of the page (the table, tenant by tenant).
  const tenants = [...new Set(rows.map((s) => s.tenant_id))];
  const [grants, tenantOf] = await Promise.all([
    Promise.all(tenants.map(async (t) => [t, await tenantGrants(c, t)] as const))
      .then((pairs) => new Map(pairs)),
    tenantLinks(c, api, tenants),
  ]);
  return (
    <Page c={c} title="Vault" section="vault">
      <Tabs c={c} at="/console/vault" />
      <Done c={c} notices={NOTICES} />
      <h2>Secrets</h2>
      <form method="get" action="/console/vault" class="search">
        <Field label="Tenant id" name="tenant_id" value={tenant} />
        <Select
          label="Type"
          name="type"
          value={type}
          options={choices(SECRET_TYPES)}
        />
        <button type="submit">Filter</button>
      </form>
      <ApiError error={res.error} />
      <Table
        caption="Tenant secrets (names and metadata; values stay sealed)"
        columns={["Name", "Tenant", "Type", "Version", "Updated", "Last revealed", "Action"]}
        rows={rows.map((s) => [
          link(pagePath(s.tenant_id, s.name), s.name),
          tenantOf(s.tenant_id),
          s.type,
          String(s.version),
          when(s.updated_at),
          when(s.last_revealed_at),
          canInTenant(grants.get(s.tenant_id) ?? null, revealMethod, revealRoute)
            ? (
              <a href={pagePath(s.tenant_id, s.name)} aria-label={`Reveal ${s.name}`}>
                Reveal
              </a>
            )
            : "—",
        ])}
        empty="No secret matches."
      />
      <Pager c={c} total={totalOf(res, offset)} offset={offset} limit={PAGE} />
    </Page>
  );
}

/** A value in clear, as the reveal answered it. */
const clear = (v: SecretValue) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));

async function secretPage(
  c: ConsoleContext,
  api: Api,
  outcome: { revealed?: Revealed; error?: ApiErr } = {},
) {
  const tenant = c.req.param("tenant")!;
  const name = c.req.param("name")!;
  const [res, grants, tenantOf] = await Promise.all([
    api<SecretShown>(c, "GET", secretPath(tenant, name)),
    tenantGrants(c, tenant),
    tenantLinks(c, api, [tenant]),
  ]);
  const title = `Secret ${name}`;
  if (!res.ok) {
    failWith(c, res);
    return (
      <Page c={c} title={title} section="vault">
        <Tabs c={c} at="" />
        <ApiError error={res.error} />
      </Page>
    );
  }
  const s = res.data;
  const mayReveal = canInTenant(grants, revealMethod, revealRoute);
  const mayDelete = canInTenant(grants, "DELETE", "/v1/tenants/{tenant}/secrets/{name}");
  const { revealed, error } = outcome;
  return (
    <Page c={c} title={title} section="vault">
      <Tabs c={c} at="" />
      <ApiError error={error} />
      {revealed && (
        <section aria-labelledby="revealed-title">
          <h2 id="revealed-title">{`Value of version ${revealed.value_version}`}</h2>
          <Notice
            kind="ok"
            message="Shown once: this page is not kept, and the reveal is in the audit trail with your reason."
          />
          <pre class="secret body" tabindex={0}>{clear(revealed.value)}</pre>
          {can(c, "GET", "/v1/admin/audit") && (
            <p>
              <a href={`/console/audit?action=secret.revealed&resource_id=${s.id}`}>
                Reveals of this secret in the audit trail
              </a>
            </p>
          )}
        </section>
      )}
      <dl class="facts">
        <dt>Tenant</dt>
        <dd>{tenantOf(s.tenant_id)}</dd>
        <dt>Type</dt>
        <dd>{s.type}</dd>
        <dt>Current version</dt>
        <dd>{String(s.version)}</dd>
        <dt>Versions kept</dt>
        <dd>{s.versions.join(", ")}</dd>
        <dt>Created</dt>
        <dd>{`${when(s.created_at)} by ${s.created_by}`}</dd>
        <dt>Updated</dt>
        <dd>{`${when(s.updated_at)} by ${s.updated_by}`}</dd>
        <dt>Last revealed</dt>
        <dd>{when(s.last_revealed_at)}</dd>
        {s.value_preview !== null && (
          <>
            <dt>Value (masked)</dt>
            <dd>{s.value_preview}</dd>
          </>
        )}
        {s.smtp &&
          Object.entries(s.smtp).map(([k, v]) => (
            <>
              <dt>{`SMTP ${k}`}</dt>
              <dd>{String(v)}</dd>
            </>
          ))}
      </dl>
      {mayReveal && (
        <>
          <h2>Reveal the value</h2>
          <ActionForm c={c} action={`${pagePath(tenant, name)}/reveal`} label="Reveal">
            <Field
              label="Reason"
              name="reason"
              required
              hint="Why you need the value (3–500 characters): kept in the audit trail."
            />
            <Select
              label="Version"
              name="version"
              options={s.versions.map((v): [string, string] => [
                v === s.version ? "" : String(v),
                v === s.version ? `${v} (current)` : String(v),
              ])}
            />
          </ActionForm>
        </>
      )}
      {mayDelete && (
        <>
          <h2>Delete the secret</h2>
          <ActionForm
            c={c}
            action={`${pagePath(tenant, name)}/delete`}
            label="Delete with every version"
            danger
          >
            <Field
              label="Type the secret's name to confirm"
              name="confirm"
              required
              autocomplete="off"
            />
          </ActionForm>
        </>
      )}
    </Page>
  );
}

// ── Backups ─────────────────────────────────────────────────────────────────

async function backupsPage(c: ConsoleContext, api: Api, error?: ApiErr) {
  if (!can(c, "GET", "/v1/admin/vault/backups")) {
    return refused(c, "Backups", "Your role may not read the vault's backups.");
  }
  const offset = offsetOf(c);
  const [status, list] = await Promise.all([
    api<BackupStatus>(c, "GET", "/v1/admin/vault/backup-status"),
    api<Backup[]>(c, "GET", `/v1/admin/vault/backups?limit=${PAGE}&offset=${offset}`),
  ]);
  const st = status.ok ? status.data : null;
  const rows = list.ok ? list.data : [];
  return (
    <Page c={c} title="Backups" section="vault">
      <Tabs c={c} at="/console/vault/backups" />
      <Done c={c} notices={NOTICES} />
      <ApiError error={error ?? status.error ?? list.error} />
      {st && (
        <dl class="facts">
          <dt>Backups</dt>
          <dd>{st.enabled ? `on, into ${st.directory}` : "off (no backup directory)"}</dd>
          <dt>Kept</dt>
          <dd>{count(st.keep)}</dd>
          <dt>Daily run</dt>
          <dd>{st.schedule ? `${st.schedule} (next ${when(st.next_run_at)})` : "—"}</dd>
          <dt>Last success</dt>
          <dd>{when(st.last_success?.finished_at)}</dd>
          <dt>Last failure</dt>
          <dd>
            {st.last_failure ? `${when(st.last_failure.failed_at)}: ${st.last_failure.error}` : "—"}
          </dd>
        </dl>
      )}
      {st?.enabled && can(c, "POST", "/v1/admin/vault/backups") && (
        <ActionForm c={c} action="/console/vault/backups" label="Back up now" />
      )}
      <Table
        caption="Backups, newest first"
        columns={["Started", "Status", "File", "Entries", "Size (bytes)", "SHA-256", "Error"]}
        rows={rows.map((b) => [
          when(b.started_at),
          b.status,
          b.file,
          b.entries === null ? "—" : count(b.entries),
          b.bytes === null ? "—" : count(b.bytes),
          b.sha256 ? digest(b.sha256) : "—",
          b.error ?? "",
        ])}
        empty="No backup yet."
      />
      <Pager c={c} total={totalOf(list, offset)} offset={offset} limit={PAGE} />
    </Page>
  );
}

// ── Keys and rotation ───────────────────────────────────────────────────────

async function keysPage(c: ConsoleContext, api: Api, error?: ApiErr) {
  if (!can(c, "GET", "/v1/admin/vault/health")) {
    return refused(c, "Keys and rotation", "Your role may not read the vault's health.");
  }
  const res = await api<VaultHealth>(c, "GET", "/v1/admin/vault/health");
  const v = res.ok ? res.data : null;
  return (
    <Page c={c} title="Keys and rotation" section="vault">
      <Tabs c={c} at="/console/vault/keys" />
      <Done c={c} notices={NOTICES} />
      <ApiError error={error ?? res.error} />
      {v && (
        <>
          {v.warnings.map(warning)}
          <dl class="kpis">
            <Kpi label="Sealed" value={v.sealed ? "yes" : "no"} />
            <Kpi label="Data keys" value={count(v.data_keys.keys)} />
            <Kpi label="Secrets" value={count(v.secrets)} />
            <Kpi label="Keys over 90 days" value={count(v.data_keys.by_age.over_90_days)} />
          </dl>
          <dl class="facts">
            <dt>Master key</dt>
            <dd>{v.master_key.id ? `${v.master_key.id} (from ${v.master_key.source})` : "none"}</dd>
            <dt>Previous master key</dt>
            <dd>
              {v.previous_key
                ? `${v.previous_key.id}${v.previous_key.needed ? " (still needed)" : ""}`
                : "—"}
            </dd>
            <dt>Data keys by age</dt>
            <dd>
              {`${count(v.data_keys.by_age.under_30_days)} under 30 days, ${
                count(v.data_keys.by_age.days_30_to_90)
              } 30–90 days, ${count(v.data_keys.by_age.over_90_days)} over 90 days`}
            </dd>
            <dt>Oldest data key</dt>
            <dd>{when(v.data_keys.oldest_created_at)}</dd>
            <dt>Wrapped by another master key</dt>
            <dd>{count(v.data_keys.wrapped_by_other_master)}</dd>
            <dt>Last rotation</dt>
            <dd>
              {v.last_rotation
                ? `${
                  when(v.last_rotation.at)
                } (${v.last_rotation.scope}, job ${v.last_rotation.job_id})`
                : "never"}
            </dd>
            <dt>Last backup</dt>
            <dd>{when(v.last_backup?.at)}</dd>
          </dl>
        </>
      )}
      {can(c, "POST", "/v1/admin/vault/rotate-all") && (
        <>
          <h2>Rotate every data key</h2>
          <p>
            A job re-seals every value under new data keys (the platform's and every tenant's), then
            destroys the old keys. Values read throughout.
          </p>
          <ActionForm c={c} action="/console/vault/rotate-all" label="Rotate every data key" />
        </>
      )}
      {can(c, "POST", "/v1/tenants/{tenant}/vault/rotate") && (
        <>
          <h2>Rotate one tenant's data key</h2>
          <ActionForm c={c} action="/console/vault/rotate" label="Rotate the tenant's key">
            <Field label="Tenant id or slug" name="tenant" required />
          </ActionForm>
        </>
      )}
    </Page>
  );
}

/** What each action's redirect tells (by key: a URL never carries the text a page shows). */
const NOTICES = {
  deleted: "The secret is deleted, with every version.",
  backup: "The backup is written.",
  rotation: "The rotation is started: a job re-seals every value, then destroys the old keys.",
};

/** A failed action: its page again, with the API's refusal and status (a 403 stays 403). */
async function failed(
  c: ConsoleContext,
  res: Pick<ApiAnswer, "status">,
  page: Promise<string | Promise<string>>,
) {
  const html = await page;
  failWith(c, res);
  return c.html(html);
}

export function vaultPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get("/console/vault", async (c) => c.html(await secretsPage(c, api)));
  app.get("/console/vault/secrets/:tenant/:name", async (c) => c.html(await secretPage(c, api)));
  // A reload of the reveal's answer asks again: the value is never kept.
  app.get(
    "/console/vault/secrets/:tenant/:name/reveal",
    (c) => c.redirect(pagePath(c.req.param("tenant"), c.req.param("name")), 303),
  );

  app.post("/console/vault/secrets/:tenant/:name/reveal", async (c) => {
    const form = await c.req.parseBody();
    const version = Number.parseInt(String(form.version ?? ""), 10);
    const res = await api<Revealed>(
      c,
      "POST",
      `${secretPath(c.req.param("tenant"), c.req.param("name"))}/reveal`,
      {
        body: {
          reason: String(form.reason ?? ""),
          ...(Number.isInteger(version) ? { version } : {}),
        },
        idempotencyKey: nonceOf(form),
      },
    );
    // The answer holds a value in clear: never stored by the browser or a proxy.
    c.header("Cache-Control", "no-store");
    if (!res.ok) return await failed(c, res, secretPage(c, api, { error: res.error }));
    return c.html(await secretPage(c, api, { revealed: res.data }));
  });

  app.post("/console/vault/secrets/:tenant/:name/delete", async (c) => {
    const form = await c.req.parseBody();
    const { tenant, name } = c.req.param();
    if (String(form.confirm ?? "").trim() !== name) {
      const error = {
        code: "BAD_REQUEST",
        message: "Type the name of the secret exactly to delete it.",
      };
      return await failed(c, { status: 400 }, secretPage(c, api, { error }));
    }
    const res = await api(c, "DELETE", secretPath(tenant, name), {
      idempotencyKey: nonceOf(form),
    });
    if (!res.ok) return await failed(c, res, secretPage(c, api, { error: res.error }));
    return redirectWith(c, "/console/vault", "deleted");
  });

  app.get("/console/vault/backups", async (c) => c.html(await backupsPage(c, api)));
  app.post("/console/vault/backups", async (c) => {
    const form = await c.req.parseBody();
    const res = await api<Backup>(c, "POST", "/v1/admin/vault/backups", {
      idempotencyKey: nonceOf(form),
    });
    if (!res.ok) return await failed(c, res, backupsPage(c, api, res.error));
    return redirectWith(c, "/console/vault/backups", "backup");
  });

  app.get("/console/vault/keys", async (c) => c.html(await keysPage(c, api)));
  const rotate = (path: (form: Form) => string) => async (c: ConsoleContext) => {
    const form = await c.req.parseBody();
    const res = await api(c, "POST", path(form), { idempotencyKey: nonceOf(form) });
    if (!res.ok) return await failed(c, res, keysPage(c, api, res.error));
    return redirectWith(c, "/console/vault/keys", "rotation");
  };
  app.post("/console/vault/rotate-all", rotate(() => "/v1/admin/vault/rotate-all"));
  app.post(
    "/console/vault/rotate",
    rotate((form) =>
      `/v1/tenants/${encodeURIComponent(String(form.tenant ?? "").trim() || "-")}/vault/rotate`
    ),
  );
}
