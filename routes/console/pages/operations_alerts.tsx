/**
 * Operations › alerts: what the rules fired, firing or resolved (acknowledge), and each rule
 * with its threshold and current state.
 */
import type { Hono } from "hono";
import { ALERT_STATES } from "../../../domain/platform/alerts.ts";
import { ALERT_RULE_NAMES } from "../../../domain/platform/alert_rules.ts";
import { type Api, type ApiAnswer, can } from "../api.ts";
import { ActionForm, ApiError, offsetOf, Pager, Select, Table, when } from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import {
  choices,
  duration,
  failWith,
  type Form,
  nonceOf,
  redirectWith,
  totalOf,
} from "./common.tsx";
import { OPS, OpsPage } from "./operations_nav.tsx";
import type { Alert } from "../../../domain/platform/alerts.ts";

const API = "/v1/admin/system";
const HOME = `${OPS}/alerts`;
const LIMIT = 25;

const NOTICES: Record<string, string> = {
  acknowledged: "The alert is acknowledged.",
};

interface Rule {
  name: string;
  description: string;
  unit: string;
  threshold: number;
  duration_seconds: number;
  source: string;
  state: string;
  pending_since: string | null;
  last_value: number | null;
  last_evaluated_at: string | null;
}

/**
 * Where an alert's link (a path of the API) is in the console: a queue's jobs, a webhook
 * endpoint; other resources are named as the API has them.
 */
function consoleLink(link: string) {
  const url = new URL(link, "http://steward.internal");
  const queue = /^\/v1\/admin\/system\/queues\/([^/]+)\/jobs$/.exec(url.pathname);
  if (queue) return `${OPS}/queues/${queue[1]}${url.search}`;
  if (url.pathname === "/v1/admin/system/queues") return `${OPS}/queues`;
  const hook = /^\/v1\/admin\/webhooks(\/[^/]+)?$/.exec(url.pathname);
  if (hook) return `/console/webhooks${hook[1] ?? ""}`;
  return null;
}

const Concerns = ({ link }: { link: string }) => {
  const to = consoleLink(link);
  return to ? <a href={to}>{link}</a> : <code>{link}</code>;
};

async function alertsPage(c: ConsoleContext, api: Api, error?: ApiAnswer["error"]) {
  const offset = offsetOf(c);
  const state = c.req.query("state");
  const rule = c.req.query("rule");
  const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  if (state && (ALERT_STATES as readonly string[]).includes(state)) query.set("state", state);
  if (rule && (ALERT_RULE_NAMES as readonly string[]).includes(rule)) query.set("rule", rule);
  const [alerts, rules] = await Promise.all([
    api<Alert[]>(c, "GET", `${API}/alerts?${query}`),
    api<Rule[]>(c, "GET", `${API}/alert-rules`),
  ]);
  if (!alerts.ok) failWith(c, alerts);
  const ack = can(c, "POST", `${API}/alerts/{id}/acknowledge`);
  return (
    <OpsPage c={c} title="Alerts" tab="alerts" notices={NOTICES} error={error}>
      <form class="search" method="get" action={HOME}>
        <Select label="State" name="state" options={choices(ALERT_STATES)} value={state} />
        <Select label="Rule" name="rule" options={choices(ALERT_RULE_NAMES)} value={rule} />
        <button type="submit">Filter</button>
      </form>
      {alerts.ok
        ? (
          <>
            <Table
              caption="Alerts (newest first)"
              columns={[
                "Rule",
                "State",
                "Value",
                "Threshold",
                "Started",
                "Resolved",
                "Concerns",
                "Acknowledged",
              ]}
              rows={alerts.data.map((a) => [
                a.rule,
                a.state,
                a.value,
                a.threshold,
                when(a.started_at),
                when(a.resolved_at),
                <Concerns link={a.link} />,
                a.acknowledged_at
                  ? `${when(a.acknowledged_at)} by ${a.acknowledged_by ?? "—"}`
                  : ack
                  ? (
                    <ActionForm
                      c={c}
                      action={`${HOME}/${encodeURIComponent(a.id)}/acknowledge`}
                      label="Acknowledge"
                      inline
                    />
                  )
                  : "no",
              ])}
              empty="No alert."
            />
            <Pager c={c} total={totalOf(alerts, offset)} offset={offset} limit={LIMIT} />
          </>
        )
        : <ApiError error={alerts.error} />}
      <h2>Rules</h2>
      {rules.ok
        ? (
          <Table
            caption="Alert rules"
            columns={["Rule", "What", "Threshold", "For", "State", "Last value", "Evaluated"]}
            rows={rules.data.map((r) => [
              r.name,
              r.description,
              `${r.threshold} ${r.unit}${r.source === "env" ? " (set)" : ""}`,
              r.duration_seconds ? duration(r.duration_seconds * 1_000) : "at once",
              r.pending_since ? `${r.state} since ${when(r.pending_since)}` : r.state,
              r.last_value ?? "—",
              when(r.last_evaluated_at),
            ])}
          />
        )
        : <ApiError error={rules.error} />}
    </OpsPage>
  );
}

export function alertPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get(HOME, async (c) => c.html(await alertsPage(c, api)));

  app.post(`${HOME}/:id/acknowledge`, async (c) => {
    const form: Form = await c.req.parseBody();
    const res = await api(
      c,
      "POST",
      `${API}/alerts/${encodeURIComponent(c.req.param("id"))}/acknowledge`,
      { idempotencyKey: nonceOf(form) },
    );
    if (!res.ok) {
      failWith(c, res);
      return c.html(await alertsPage(c, api, res.error));
    }
    return redirectWith(c, HOME, "acknowledged");
  });
}
