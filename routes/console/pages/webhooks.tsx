/**
 * Webhooks: the platform's endpoints (every tenant's events), each with its deliveries and each
 * delivery's attempts (status and response). Operators create, test, pause, rotate and delete
 * endpoints, retry one delivery, and recover every delivery that failed since a time, all
 * through `/v1/admin/webhooks`; each button shows only to a role that may use it.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
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
import { MESSAGE_STATUSES } from "../../../domain/webhooks/messages.ts";
import {
  choices,
  Done,
  failWith,
  type Form,
  nonceOf,
  redirectWith,
  totalOf,
  utc,
} from "./common.tsx";
import type { WebhookAttempt as Attempt } from "../../../domain/webhooks/messages.ts";

const API = "/v1/admin/webhooks";
const HOME = "/console/webhooks";
const LIMIT = 25;

/** What a finished action says on the page it returns to (`?notice=<key>`). */
const NOTICES: Record<string, string> = {
  "test-delivered": "The test event was delivered.",
  "test-failed": "The test event's first attempt failed: it is retried on schedule.",
  recovering: "Recovery queued: every delivery that failed since then is sent again.",
  enabled: "The endpoint is enabled.",
  disabled: "The endpoint is disabled: nothing is delivered to it.",
  deleted: "The endpoint is deleted.",
  "retry-delivered": "Retried: delivered.",
  "retry-failed": "Retried: the attempt failed (see its response below).",
};

interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: "gone" | "failing" | null;
  disabled_at: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
  secret?: string;
}

interface Message {
  id: string;
  event_id: string;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  failure_reason: string | null;
  created_at: string;
}

/** What a page shows above its content after an action: a notice, a refusal, a secret. */
interface Outcome {
  error?: ApiAnswer["error"];
  secret?: string;
}

const seg = encodeURIComponent;
const endpointPath = (id: string) => `${HOME}/${seg(id)}`;
const deliveryPath = (id: string, message: string) =>
  `${endpointPath(id)}/deliveries/${seg(message)}`;

const Top = ({ c, outcome }: { c: ConsoleContext; outcome?: Outcome }) => (
  <>
    <Done c={c} notices={NOTICES} />
    <ApiError error={outcome?.error} />
    {outcome?.secret && (
      <section aria-labelledby="secret-title">
        <h2 id="secret-title">Signing secret</h2>
        <p>Store it now: it is shown this once.</p>
        <p class="secret">{outcome.secret}</p>
      </section>
    )}
  </>
);

const stateOf = (e: Endpoint) =>
  e.enabled ? "enabled" : e.disabled_reason ? `disabled (${e.disabled_reason})` : "disabled";

async function listPage(c: ConsoleContext, api: Api, outcome?: Outcome) {
  const offset = offsetOf(c);
  const enabled = c.req.query("enabled");
  const filter = enabled === "true" || enabled === "false" ? `&enabled=${enabled}` : "";
  const res = await api<Endpoint[]>(
    c,
    "GET",
    `${API}?limit=${LIMIT}&offset=${offset}${filter}`,
  );
  if (!res.ok) failWith(c, res);
  return (
    <Page c={c} title="Webhooks" section="webhooks">
      <Top c={c} outcome={outcome} />
      <p>The platform's endpoints receive every tenant's events.</p>
      <form class="search" method="get" action={HOME}>
        <Select
          label="State"
          name="enabled"
          options={[["", "any"], ["true", "enabled"], ["false", "disabled"]]}
          value={enabled}
        />
        <button type="submit">Filter</button>
      </form>
      {res.ok
        ? (
          <>
            <Table
              caption="Platform endpoints"
              columns={["URL", "Description", "Events", "State", "Created"]}
              rows={res.data.map((e) => [
                <a href={endpointPath(e.id)}>{e.url}</a>,
                e.description ?? "—",
                e.event_types.length ? e.event_types.join(", ") : "all",
                stateOf(e),
                when(e.created_at),
              ])}
              empty="No platform endpoint."
            />
            <Pager c={c} total={totalOf(res, offset)} offset={offset} limit={LIMIT} />
          </>
        )
        : <ApiError error={res.error} />}
      {can(c, "POST", API) && (
        <section aria-labelledby="create-title">
          <h2 id="create-title">New endpoint</h2>
          <ActionForm c={c} action={HOME} label="Create endpoint">
            <Field label="URL" name="url" type="url" required hint="https, public addresses" />
            <Field label="Description" name="description" />
            <Field
              label="Event types"
              name="event_types"
              hint="Comma-separated; empty: every event"
            />
          </ActionForm>
        </section>
      )}
    </Page>
  );
}

async function endpointPage(c: ConsoleContext, api: Api, id: string, outcome?: Outcome) {
  const offset = offsetOf(c);
  const status = c.req.query("status");
  const eventType = c.req.query("event_type")?.trim();
  const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  if (status && (MESSAGE_STATUSES as readonly string[]).includes(status)) {
    query.set("status", status);
  }
  if (eventType) query.set("event_type", eventType);
  const [endpoint, deliveries] = await Promise.all([
    api<Endpoint>(c, "GET", `${API}/${seg(id)}`),
    api<Message[]>(c, "GET", `${API}/${seg(id)}/deliveries?${query}`),
  ]);
  if (!endpoint.ok) {
    failWith(c, endpoint);
    return (
      <Page c={c} title="Webhook endpoint" section="webhooks">
        <ApiError error={endpoint.error} />
        <p>
          <a href={HOME}>All endpoints</a>
        </p>
      </Page>
    );
  }
  const e = endpoint.data;
  const write = can(c, "POST", `${API}/{id}/test`);
  const retry = can(c, "POST", `${API}/{id}/deliveries/{message_id}/retry`);
  const since = new Date(c.get("svc").now() - 86_400_000).toISOString().slice(0, 16);
  return (
    <Page c={c} title={`Endpoint ${e.url}`} section="webhooks">
      <Top c={c} outcome={outcome} />
      <p>
        <a href={HOME}>All endpoints</a>
      </p>
      <dl class="facts">
        <dt>Id</dt>
        <dd>{e.id}</dd>
        <dt>Description</dt>
        <dd>{e.description ?? "—"}</dd>
        <dt>Events</dt>
        <dd>{e.event_types.length ? e.event_types.join(", ") : "all"}</dd>
        <dt>State</dt>
        <dd>{stateOf(e)}{e.disabled_at ? ` since ${when(e.disabled_at)}` : ""}</dd>
        <dt>Previous secret signs until</dt>
        <dd>{when(e.previous_secret_expires_at)}</dd>
        <dt>Created</dt>
        <dd>{when(e.created_at)}</dd>
      </dl>
      {write && (
        <section aria-labelledby="actions-title">
          <h2 id="actions-title">Actions</h2>
          <ActionForm c={c} action={`${endpointPath(id)}/test`} label="Send a test event" />
          <ActionForm c={c} action={`${endpointPath(id)}/recover`} label="Recover failed">
            <Field
              label="Failed since (UTC)"
              name="since"
              type="datetime-local"
              value={since}
              required
            />
          </ActionForm>
          <ActionForm
            c={c}
            action={`${endpointPath(id)}/${e.enabled ? "disable" : "enable"}`}
            label={e.enabled ? "Disable" : "Enable"}
          />
          <ActionForm c={c} action={`${endpointPath(id)}/rotate-secret`} label="Rotate secret" />
          <ActionForm c={c} action={`${endpointPath(id)}/delete`} label="Delete" danger>
            <Field label="Type the endpoint's URL to delete it" name="confirm" required />
          </ActionForm>
        </section>
      )}
      <h2>Deliveries</h2>
      <form class="search" method="get" action={endpointPath(id)}>
        <Select
          label="Status"
          name="status"
          options={choices(MESSAGE_STATUSES)}
          value={status}
        />
        <Field label="Event type" name="event_type" value={eventType} />
        <button type="submit">Filter</button>
      </form>
      {deliveries.ok
        ? (
          <>
            <Table
              caption="Deliveries (newest first)"
              columns={[
                "Message",
                "Event",
                "Status",
                "Attempts",
                "Last attempt",
                "Next attempt",
                ...(retry ? ["Action"] : []),
              ]}
              rows={deliveries.data.map((m) => [
                <a href={deliveryPath(id, m.id)}>{m.id}</a>,
                m.event_type,
                m.failure_reason ? `${m.status}: ${m.failure_reason}` : m.status,
                m.attempts,
                when(m.last_attempt_at),
                when(m.next_attempt_at),
                ...(retry ? [<RetryButton c={c} id={id} message={m.id} />] : []),
              ])}
              empty="No delivery yet."
            />
            <Pager c={c} total={totalOf(deliveries, offset)} offset={offset} limit={LIMIT} />
          </>
        )
        : <ApiError error={deliveries.error} />}
    </Page>
  );
}

const RetryButton = ({ c, id, message }: { c: ConsoleContext; id: string; message: string }) => (
  <ActionForm
    c={c}
    action={`${deliveryPath(id, message)}/retry`}
    label="Retry"
    inline
  />
);

/** The response of an attempt: its status code, or why none came, and the start of its body. */
const responseOf = (a: Attempt): Child =>
  a.response_status_code
    ? (
      <>
        <strong>{a.response_status_code}</strong>
        {a.response_body ? <pre class="body">{a.response_body}</pre> : null}
      </>
    )
    : a.error ?? "no answer";

async function deliveryPage(
  c: ConsoleContext,
  api: Api,
  id: string,
  message: string,
  outcome?: Outcome,
) {
  const offset = offsetOf(c);
  const res = await api<Attempt[]>(
    c,
    "GET",
    `${API}/${seg(id)}/deliveries/${seg(message)}/attempts?limit=${LIMIT}&offset=${offset}`,
  );
  if (!res.ok) failWith(c, res);
  return (
    <Page c={c} title={`Delivery ${message}`} section="webhooks">
      <Top c={c} outcome={outcome} />
      <p>
        <a href={endpointPath(id)}>The endpoint and its deliveries</a>
      </p>
      {can(c, "POST", `${API}/{id}/deliveries/{message_id}/retry`) && (
        <ActionForm c={c} action={`${deliveryPath(id, message)}/retry`} label="Retry now" />
      )}
      {res.ok
        ? (
          <>
            <Table
              caption="Attempts (newest first)"
              columns={["At", "Trigger", "Status", "Response", "Duration", "Next attempt"]}
              rows={res.data.map((a) => [
                when(a.created_at),
                a.trigger,
                a.status,
                responseOf(a),
                `${a.duration_ms} ms`,
                when(a.next_attempt_at),
              ])}
              empty="No attempt yet."
            />
            <Pager c={c} total={totalOf(res, offset)} offset={offset} limit={LIMIT} />
          </>
        )
        : <ApiError error={res.error} />}
    </Page>
  );
}

/** The notice key of an attempt made in the request (test send, retry). */
const attemptNotice = (what: "test" | "retry", a: Attempt | null) =>
  a?.status === "succeeded" ? `${what}-delivered` : `${what}-failed`;

export function webhooksPages(app: Hono<ConsoleEnv>, api: Api) {
  const call = (c: ConsoleContext, method: string, path: string, form: Form, body?: unknown) =>
    api(c, method, path, { body, idempotencyKey: nonceOf(form) });

  app.get(HOME, async (c) => c.html(await listPage(c, api)));

  app.post(HOME, async (c) => {
    const form = await c.req.parseBody();
    const types = String(form.event_types ?? "").split(",").map((t) => t.trim()).filter(Boolean);
    const description = String(form.description ?? "").trim();
    const res = await call(c, "POST", API, form, {
      url: String(form.url ?? "").trim(),
      ...(description ? { description } : {}),
      event_types: types,
    });
    if (!res.ok) {
      failWith(c, res);
      return c.html(await listPage(c, api, { error: res.error }));
    }
    // The secret is shown once, in this answer: the endpoint's page, never a redirect.
    const created = res.data as Endpoint;
    c.status(201);
    return c.html(await endpointPage(c, api, created.id, { secret: created.secret }));
  });

  app.get(`${HOME}/:id`, async (c) => c.html(await endpointPage(c, api, c.req.param("id"))));

  /** An endpoint action: the API call, then back to its page with a notice, or the refusal. */
  const act = <T,>(
    action: string,
    send: (c: ConsoleContext, id: string, form: Form) => Promise<ApiAnswer>,
    notice: (data: T) => string,
  ) =>
    app.post(`${HOME}/:id/${action}`, async (c) => {
      const id = c.req.param("id");
      const res = await send(c, id, await c.req.parseBody());
      if (!res.ok) {
        failWith(c, res);
        return c.html(await endpointPage(c, api, id, { error: res.error }));
      }
      return redirectWith(c, endpointPath(id), notice(res.data as T));
    });

  act(
    "test",
    (c, id, form) => call(c, "POST", `${API}/${seg(id)}/test`, form),
    (d: { attempt: Attempt | null }) => attemptNotice("test", d.attempt),
  );
  act(
    "recover",
    (c, id, form) =>
      call(c, "POST", `${API}/${seg(id)}/recover`, form, { since: utc(String(form.since ?? "")) }),
    () => "recovering",
  );
  for (const enabled of [true, false]) {
    act(
      enabled ? "enable" : "disable",
      (c, id, form) => call(c, "PATCH", `${API}/${seg(id)}`, form, { enabled }),
      () => enabled ? "enabled" : "disabled",
    );
  }

  app.post(`${HOME}/:id/rotate-secret`, async (c) => {
    const id = c.req.param("id");
    const res = await call(c, "POST", `${API}/${seg(id)}/rotate-secret`, await c.req.parseBody());
    if (!res.ok) failWith(c, res);
    return c.html(
      await endpointPage(
        c,
        api,
        id,
        res.ok ? { secret: (res.data as Endpoint).secret } : { error: res.error },
      ),
    );
  });

  app.post(`${HOME}/:id/delete`, async (c) => {
    const id = c.req.param("id");
    const form = await c.req.parseBody();
    const found = await api<Endpoint>(c, "GET", `${API}/${seg(id)}`);
    // The typed confirmation: the URL the operator sees on the page.
    if (found.ok && String(form.confirm ?? "").trim() !== found.data.url) {
      c.status(422);
      return c.html(
        await endpointPage(c, api, id, {
          error: { code: "VALIDATION_FAILED", message: "Type the endpoint's URL to delete it." },
        }),
      );
    }
    const res = found.ok ? await call(c, "DELETE", `${API}/${seg(id)}`, form) : found;
    if (!res.ok) {
      failWith(c, res);
      return c.html(await endpointPage(c, api, id, { error: res.error }));
    }
    return redirectWith(c, HOME, "deleted");
  });

  app.get(
    `${HOME}/:id/deliveries/:message`,
    async (c) => c.html(await deliveryPage(c, api, c.req.param("id"), c.req.param("message"))),
  );

  app.post(`${HOME}/:id/deliveries/:message/retry`, async (c) => {
    const { id, message } = c.req.param();
    const res = await call(
      c,
      "POST",
      `${API}/${seg(id)}/deliveries/${seg(message)}/retry`,
      await c.req.parseBody(),
    );
    if (!res.ok) {
      failWith(c, res);
      return c.html(await deliveryPage(c, api, id, message, { error: res.error }));
    }
    const { attempt } = res.data as { attempt: Attempt | null };
    return redirectWith(c, deliveryPath(id, message), attemptNotice("retry", attempt));
  });
}
