/**
 * Users: the platform's people, searched and paginated, and one user's page with its sessions
 * and memberships and what staff may do to it (block, suspend, revoke sessions, reset the
 * password, erase). Everything is read and done through the API, so support reads the emails,
 * names and addresses masked exactly as the API masks them, and each button shows only when the
 * access table lets the signed-in user press it.
 */
import type { Hono } from "hono";
import { PLATFORM_ROLES } from "../../../domain/access/permissions.ts";
import { USER_STATUSES } from "../../../domain/identity/users.ts";
import { type Api, type ApiAnswer, can } from "../api.ts";
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
import { choices, Done, failWith, type Form, nonceOf, redirectWith, utc } from "./common.tsx";

interface User {
  id: string;
  email: string | null;
  username: string | null;
  can_receive_mail: boolean;
  name: string;
  status: (typeof USER_STATUSES)[number];
  platform_role: string | null;
  blocked_reason: string | null;
  suspended_until: string | null;
  suspended_reason: string | null;
  created_at: string;
  last_login_at: string | null;
  deleted_at: string | null;
}

interface UserDetail extends User {
  sessions: {
    id: string;
    ip: string | null;
    user_agent: string | null;
    created_at: string;
    last_seen_at: string;
    expires_at: string;
  }[];
  memberships: { tenant_id: string; tenant_slug: string; tenant_name: string; role: string }[];
}

type Failure = Pick<ApiAnswer, "status" | "error">;

const LIMIT = 25;
const FILTERS = ["search", "status", "platform_role", "tenant"] as const;

/** What a finished action says on the page it returns to (`?notice=<key>`): no free text in URLs. */
const NOTICES: Record<string, string> = {
  blocked: "The user is blocked and signed out everywhere.",
  unblocked: "The user is unblocked.",
  suspended: "The user is suspended and signed out everywhere.",
  unsuspended: "The suspension is lifted.",
  revoked: "Every session of the user has ended.",
  reset: "A password-reset link is on its way to the user.",
  erased: "The user is erased: only a tombstone is left.",
};

const userPath = (id: string) => `/console/users/${encodeURIComponent(id)}`;
const apiPath = (id: string, rest = "") => `/v1/users/${encodeURIComponent(id)}${rest}`;

/** How a user is named on the page: the email (masked for support), else the username. */
const label = (u: User) => u.email ?? u.username ?? u.id;

function status(u: User): string {
  if (u.status === "suspended" && u.suspended_until) {
    return `suspended until ${when(u.suspended_until)}`;
  }
  return u.status;
}

async function usersList(c: ConsoleContext, api: Api) {
  const offset = offsetOf(c);
  const filters = Object.fromEntries(
    FILTERS.map((f) => [f, c.req.query(f)?.trim() ?? ""]),
  ) as Record<(typeof FILTERS)[number], string>;
  const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  for (const f of FILTERS) if (filters[f]) query.set(f, filters[f]);
  const res = await api<User[]>(c, "GET", `/v1/users?${query}`);
  if (!res.ok) failWith(c, res);
  const users = res.ok ? res.data : [];
  return (
    <Page c={c} title="Users" section="users">
      <Done c={c} notices={NOTICES} />
      <form method="get" action="/console/users" class="search" role="search">
        <Field
          label="Email, username or name"
          name="search"
          type="search"
          value={filters.search}
        />
        <Select
          label="Status"
          name="status"
          value={filters.status}
          options={choices(USER_STATUSES)}
        />
        <Select
          label="Platform role"
          name="platform_role"
          value={filters.platform_role}
          options={choices(PLATFORM_ROLES)}
        />
        <Field label="Member of tenant (id or slug)" name="tenant" value={filters.tenant} />
        <button type="submit">Search</button>
      </form>
      <ApiError error={res.error} />
      <Table
        caption="Users"
        columns={["User", "Name", "Status", "Platform role", "Last sign-in", "Created"]}
        empty="No user matches."
        rows={users.map((u) => [
          <a href={userPath(u.id)}>{label(u)}</a>,
          u.name,
          status(u),
          u.platform_role ?? "—",
          when(u.last_login_at),
          when(u.created_at),
        ])}
      />
      {res.ok && <Pager c={c} total={res.pagination?.total ?? 0} offset={offset} limit={LIMIT} />}
    </Page>
  );
}

/** What the signed-in user may do to `u`, each form only when the access table allows it. */
function Actions({ c, u }: { c: ConsoleContext; u: UserDetail }) {
  const may = (route: string, method = "POST") => can(c, method, route);
  const forms = [
    may("/v1/users/{id}/block") && (
      u.status === "blocked"
        ? (
          <ActionForm c={c} action={`${userPath(u.id)}/block`} label="Unblock">
            <input type="hidden" name="blocked" value="false" />
          </ActionForm>
        )
        : (
          <ActionForm c={c} action={`${userPath(u.id)}/block`} label="Block" danger>
            <input type="hidden" name="blocked" value="true" />
            <Field label="Reason for blocking" name="reason" />
          </ActionForm>
        )
    ),
    may("/v1/users/{id}/suspend") && (
      <ActionForm c={c} action={`${userPath(u.id)}/suspend`} label="Suspend">
        <Field label="Suspend until (UTC)" name="until" type="datetime-local" required />
        <Field label="Reason for suspending" name="reason" />
      </ActionForm>
    ),
    may("/v1/users/{id}/suspend") && u.status === "suspended" && (
      <ActionForm c={c} action={`${userPath(u.id)}/suspend`} label="Lift the suspension">
        <input type="hidden" name="until" value="" />
      </ActionForm>
    ),
    may("/v1/users/{id}/revoke-sessions") && (
      <ActionForm c={c} action={`${userPath(u.id)}/revoke-sessions`} label="Revoke all sessions" />
    ),
    may("/v1/users/{id}/reset-password") && u.can_receive_mail && (
      <ActionForm
        c={c}
        action={`${userPath(u.id)}/reset-password`}
        label="Send a password reset"
      />
    ),
    may("/v1/users/{id}", "DELETE") && (
      <ActionForm c={c} action={`${userPath(u.id)}/erase`} label="Erase this user" danger>
        <Field
          label={u.email
            ? "Type the user's email to erase them"
            : "Type the username to erase them"}
          name="confirm"
          required
          autocomplete="off"
          hint="Erasing cannot be undone: the email and name become a tombstone, sessions and memberships go."
        />
      </ActionForm>
    ),
  ].filter(Boolean);
  if (!forms.length) return null;
  return (
    <section aria-labelledby="actions">
      <h2 id="actions">Actions</h2>
      {forms}
    </section>
  );
}

async function userPage(c: ConsoleContext, api: Api, id: string, failure?: Failure) {
  const res = await api<UserDetail>(c, "GET", apiPath(id));
  if (failure || !res.ok) failWith(c, failure ?? res);
  if (!res.ok) {
    return (
      <Page c={c} title="User" section="users">
        <ApiError error={failure?.error ?? res.error} />
        <p>
          <a href="/console/users">Back to the users</a>
        </p>
      </Page>
    );
  }
  const u = res.data;
  const readsAudit = can(c, "GET", "/v1/admin/audit");
  return (
    <Page c={c} title={`User ${label(u)}`} section="users">
      <Done c={c} notices={NOTICES} />
      <ApiError error={failure?.error} />
      <section aria-labelledby="account">
        <h2 id="account">Account</h2>
        <dl class="facts">
          <dt>Id</dt>
          <dd>
            <code>{u.id}</code>
          </dd>
          <dt>Email</dt>
          <dd>{u.email ?? "— (receives no mail)"}</dd>
          <dt>Username</dt>
          <dd>{u.username ?? "—"}</dd>
          <dt>Name</dt>
          <dd>{u.name}</dd>
          <dt>Status</dt>
          <dd>{status(u)}</dd>
          {u.blocked_reason && <dt>Blocked because</dt>}
          {u.blocked_reason && <dd>{u.blocked_reason}</dd>}
          {u.suspended_reason && <dt>Suspended because</dt>}
          {u.suspended_reason && <dd>{u.suspended_reason}</dd>}
          <dt>Platform role</dt>
          <dd>{u.platform_role ?? "—"}</dd>
          <dt>Created</dt>
          <dd>{when(u.created_at)}</dd>
          <dt>Last sign-in</dt>
          <dd>{when(u.last_login_at)}</dd>
          {u.deleted_at && <dt>Erased</dt>}
          {u.deleted_at && <dd>{when(u.deleted_at)}</dd>}
        </dl>
        {readsAudit && (
          <p>
            Audit trail: <a href={`/console/audit?resource_id=${u.id}`}>changes to this user</a>,
            {" "}
            <a href={`/console/audit?actor=${u.id}`}>what this user did</a>
          </p>
        )}
      </section>
      {u.status !== "deleted" && <Actions c={c} u={u} />}
      <h2>Sessions</h2>
      <Table
        caption="Live sessions, oldest first"
        columns={["Session", "Address", "Browser", "Started", "Last seen", "Expires"]}
        empty="No live session."
        rows={u.sessions.map((s) => [
          <code>{s.id}</code>,
          s.ip ?? "—",
          s.user_agent ?? "—",
          when(s.created_at),
          when(s.last_seen_at),
          when(s.expires_at),
        ])}
      />
      <h2>Memberships</h2>
      <Table
        caption="Tenants the user belongs to"
        columns={["Tenant", "Slug", "Role"]}
        empty="Member of no tenant."
        rows={u.memberships.map((m) => [
          <a href={`/console/tenants/${encodeURIComponent(m.tenant_slug)}`}>{m.tenant_name}</a>,
          m.tenant_slug,
          m.role,
        ])}
      />
    </Page>
  );
}

const field = (form: Form, name: string) => {
  const v = form[name];
  return typeof v === "string" ? v.trim() : "";
};

export function usersPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get("/console/users", async (c) => c.html(await usersList(c, api)));
  app.get("/console/users/:id", async (c) => c.html(await userPage(c, api, c.req.param("id"))));

  /** Runs an action's API call: back to the user's page with a notice, or the page with the refusal. */
  const act = (
    path: string,
    call: (c: ConsoleContext, id: string, form: Form) => Promise<Failure | string>,
  ) =>
    app.post(`/console/users/:id/${path}`, async (c) => {
      const id = c.req.param("id");
      const outcome = await call(c, id, await c.req.parseBody());
      if (typeof outcome === "string") return redirectWith(c, userPath(id), outcome);
      return c.html(await userPage(c, api, id, outcome));
    });

  act("block", async (c, id, form) => {
    const blocked = field(form, "blocked") !== "false";
    const res = await api(c, "POST", apiPath(id, "/block"), {
      body: { blocked, reason: field(form, "reason") || null },
      idempotencyKey: nonceOf(form),
    });
    return res.ok ? (blocked ? "blocked" : "unblocked") : res;
  });

  act("suspend", async (c, id, form) => {
    // An empty time lifts the suspension; one the API cannot read is its 400.
    const typed = field(form, "until");
    const until = typed ? utc(typed) : null;
    const res = await api(c, "POST", apiPath(id, "/suspend"), {
      body: { until, reason: until ? field(form, "reason") || null : null },
      idempotencyKey: nonceOf(form),
    });
    return res.ok ? (until ? "suspended" : "unsuspended") : res;
  });

  act("revoke-sessions", async (c, id, form) => {
    const res = await api(c, "POST", apiPath(id, "/revoke-sessions"), {
      idempotencyKey: nonceOf(form),
    });
    return res.ok ? "revoked" : res;
  });

  act("reset-password", async (c, id, form) => {
    const res = await api(c, "POST", apiPath(id, "/reset-password"), {
      idempotencyKey: nonceOf(form),
    });
    return res.ok ? "reset" : res;
  });

  // Erasing needs the user's email (or username) typed back, checked against what the API shows
  // the signed-in user before it is asked to erase; a role that may not erase is refused first.
  act("erase", async (c, id, form) => {
    if (!can(c, "DELETE", "/v1/users/{id}")) {
      return {
        status: 403,
        error: { code: "FORBIDDEN", message: "You may not erase users (users:write)" },
      };
    }
    const shown = await api<User>(c, "GET", apiPath(id));
    if (!shown.ok) return shown;
    const expected = (shown.data.email ?? shown.data.username ?? shown.data.id).toLowerCase();
    if (field(form, "confirm").toLowerCase() !== expected) {
      return {
        status: 422,
        error: {
          code: "UNPROCESSABLE",
          message: "The confirmation does not match the user's " +
            (shown.data.email ? "email" : "username") + ": nothing was erased",
        },
      };
    }
    const res = await api(c, "DELETE", apiPath(id));
    return res.ok ? "erased" : res;
  });
}
