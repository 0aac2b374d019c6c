/**
 * Operations › the reports that only read: infrastructure health (every component, queue and
 * cron), the usage pipeline (this process's aggregator, the threshold gate, the Postgres copy,
 * counter drift, maintenance runs) and what running Steward costs in a month.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { InfraHealth } from "../../../domain/platform/infra_health.ts";
import { monthOf } from "../../../domain/shared/time.ts";
import type { Api } from "../api.ts";
import { ApiError, count, Field, Kpi, Table, when } from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import { duration, failWith } from "./common.tsx";
import { Facts, OPS, OpsPage } from "./operations_nav.tsx";

/** A size in bytes as people read it. */
function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

const plural = (n: number, noun: string) => `${count(n)} ${noun}${n === 1 ? "" : "s"}`;

const yesNo = (b: boolean) => b ? "yes" : "no";

type Components = InfraHealth["components"];

/** One line on each component: what its status rests on. */
function details(c: Components): [string, string, Child][] {
  const pg = c.postgres as Partial<{
    latency_ms: number | null;
    lag_ms: number | null;
    write_errors: number;
    buffered: number;
  }>;
  return [
    [
      "KV store",
      c.kv.status,
      `probe ${c.kv.latency_ms.toFixed(2)} ms; size ${bytes(c.kv.size?.total_bytes)}` +
      (c.kv.error ? `; ${c.kv.error}` : ""),
    ],
    [
      "Postgres copy",
      c.postgres.status,
      c.postgres.status === "off"
        ? "not configured"
        : `ping ${duration(pg.latency_ms)}; lag ${duration(pg.lag_ms)}; ` +
          `${count(pg.write_errors ?? 0)} write errors; ${count(pg.buffered ?? 0)} buffered`,
    ],
    [
      "Vault",
      c.vault.status,
      c.vault.sealed ? "sealed" : `key ${c.vault.key_id ?? "—"} from ${c.vault.source ?? "—"}`,
    ],
    ["Job queues", c.queues.status, plural(c.queues.queues.length, "queue") + " (below)"],
    ["Scheduled tasks", c.crons.status, plural(c.crons.tasks.length, "task") + " (below)"],
    [
      "Usage aggregator",
      c.aggregator.status,
      `last flush ${when(c.aggregator.last_flush_at)} (lag ${
        duration(c.aggregator.flush_lag_ms)
      }); ${c.aggregator.pending_buckets} buckets and ${c.aggregator.pending_logs} logs pending; ` +
      `${c.aggregator.flush_errors} flush errors`,
    ],
    [
      "Webhooks",
      c.webhooks.status,
      `${count(c.webhooks.pending_deliveries)} pending, ${
        count(c.webhooks.retrying_deliveries)
      } retrying, ${count(c.webhooks.dead_deliveries)} dead deliveries; ` +
      `${c.webhooks.failing_endpoints} failing and ${c.webhooks.disabled_endpoints} disabled ` +
      "endpoints",
    ],
    [
      "Stripe",
      c.stripe.status,
      c.stripe.status === "off"
        ? "not configured"
        : `last event ${when(c.stripe.last_event_at)} (${
          duration(c.stripe.last_event_age_ms)
        } ago)`,
    ],
    [
      "Email",
      c.email.status,
      `${c.email.mode}; last sent ${when(c.email.last_sent_at)}; ${c.email.recent_failed} ` +
      `recent failures, ${c.email.recent_queued} queued`,
    ],
  ];
}

async function healthPage(c: ConsoleContext, api: Api) {
  const res = await api<InfraHealth>(c, "GET", "/v1/admin/system/health");
  if (!res.ok) {
    failWith(c, res);
    return <OpsPage c={c} title="Infrastructure health" tab="health" error={res.error} />;
  }
  const h = res.data;
  return (
    <OpsPage c={c} title="Infrastructure health" tab="health">
      <dl class="kpis">
        <Kpi label="Overall" value={h.status} />
        <Kpi label="Firing alerts" value={count(h.alerts.firing)} href={`${OPS}/alerts`} />
      </dl>
      <p>{`Checked ${when(h.generated_at)}.`}</p>
      <Table
        caption="Components"
        columns={["Component", "Status", "Details"]}
        rows={details(h.components)}
      />
      <h2>Job queues</h2>
      <Table
        caption="Queues"
        columns={["Queue", "Status", "Waiting", "Dead", "Oldest due waits", "Paused"]}
        rows={h.components.queues.queues.map((q) => [
          <a href={`${OPS}/queues/${encodeURIComponent(q.name)}`}>{q.name}</a>,
          q.status,
          count(q.depth),
          count(q.dead),
          duration(q.oldest_due_age_ms),
          q.paused ? `since ${when(q.paused_at)}` : "no",
        ])}
        empty="No queue has had a job yet."
      />
      <h2>Scheduled tasks</h2>
      <Table
        caption="Scheduled tasks"
        columns={["Task", "Schedule (UTC)", "Status", "Last run", "Took", "Outcome", "Next run"]}
        rows={h.components.crons.tasks.map((t) => [
          t.name,
          <code>{t.schedule}</code>,
          t.status,
          when(t.last_run?.started_at),
          duration(t.last_run?.duration_ms),
          t.last_run ? (t.last_run.error ?? t.last_run.outcome) : "never ran",
          when(t.next_run_at),
        ])}
      />
      <h2>Firing alerts</h2>
      <Table
        caption="Firing alerts"
        columns={["Rule", "Value", "Threshold", "Since", "Acknowledged"]}
        rows={h.alerts.items.map((a) => [
          a.rule,
          a.value,
          a.threshold,
          when(a.started_at),
          when(a.acknowledged_at),
        ])}
        empty="Nothing is firing."
      />
    </OpsPage>
  );
}

interface AggregatorStatus {
  generated_at: string;
  aggregator: Record<string, number | string | boolean | null>;
  threshold_gate: Record<string, number | boolean>;
  postgres: Record<string, unknown> | null;
}

interface Diagnostics {
  pipeline: { flush_lag_ms: number | null };
  drift: {
    day: string;
    checked_tenants: number;
    more_tenants: boolean;
    drifting_tenants: {
      tenant_id: string;
      scope: string;
      label: string;
      per_key: number;
      per_tenant: number;
      difference: number;
    }[];
  };
  maintenance: {
    task: string;
    schedule: string;
    last_run: {
      started_at: string;
      duration_ms: number;
      result: Record<string, number> | null;
      error: string | null;
    } | null;
  }[];
}

/** A status object's fields as label and value (nested objects as JSON). */
const factsOf = (o: Record<string, unknown>): [string, Child][] =>
  Object.entries(o).map(([k, v]) => [
    k.replaceAll("_", " "),
    v === null
      ? "—"
      : typeof v === "boolean"
      ? yesNo(v)
      : typeof v === "number"
      ? count(v)
      : typeof v === "object"
      ? JSON.stringify(v)
      : k.endsWith("_at")
      ? when(String(v))
      : String(v),
  ]);

async function usagePage(c: ConsoleContext, api: Api) {
  const [status, diagnostics] = await Promise.all([
    api<AggregatorStatus>(c, "GET", "/v1/admin/usage/aggregator-status"),
    api<Diagnostics>(c, "GET", "/v1/admin/usage/diagnostics"),
  ]);
  if (!status.ok) failWith(c, status);
  const d = diagnostics.ok ? diagnostics.data : null;
  return (
    <OpsPage c={c} title="Usage pipeline" tab="usage">
      <p>
        The aggregator, the threshold gate and the Postgres copy are this process's, from memory.
      </p>
      {status.ok
        ? (
          <>
            <h2>Aggregator</h2>
            <Facts items={factsOf(status.data.aggregator)} />
            <h2>Threshold gate</h2>
            <Facts items={factsOf(status.data.threshold_gate)} />
            <h2>Postgres copy</h2>
            {status.data.postgres
              ? <Facts items={factsOf(status.data.postgres)} />
              : <p>Off: no DATABASE_URL.</p>}
          </>
        )
        : <ApiError error={status.error} />}
      {d
        ? (
          <>
            <h2>Counter drift</h2>
            <p>
              {`${d.drift.checked_tenants} tenants checked on ${d.drift.day}${
                d.drift.more_tenants ? " (more were left unchecked)" : ""
              }.`}
            </p>
            <Table
              caption="Tenants whose keys' verifications differ from their own counter"
              columns={[
                "Tenant",
                "Scope",
                "Compared",
                "Keys' units",
                "Tenant's counter",
                "Difference",
              ]}
              rows={d.drift.drifting_tenants.map((t) => [
                <a href={`/console/tenants/${encodeURIComponent(t.tenant_id)}`}>{t.tenant_id}</a>,
                t.scope,
                t.label,
                count(t.per_key),
                count(t.per_tenant),
                count(t.difference),
              ])}
              empty="No drift."
            />
            <h2>Maintenance</h2>
            <Table
              caption="Maintenance tasks and their last run"
              columns={["Task", "Schedule (UTC)", "Last run", "Took", "Result"]}
              rows={d.maintenance.map((m) => [
                m.task,
                <code>{m.schedule}</code>,
                when(m.last_run?.started_at),
                duration(m.last_run?.duration_ms),
                !m.last_run ? "never ran" : m.last_run.error ??
                  (m.last_run.result
                    ? Object.entries(m.last_run.result).map(([k, v]) => `${k}: ${v}`).join(", ")
                    : "done"),
              ])}
            />
          </>
        )
        : <ApiError error={diagnostics.error} />}
    </OpsPage>
  );
}

interface Cost {
  period: string;
  cost_source: string;
  cost_confidence: string;
  fetched_at: string;
  cache_age_ms: number;
  cost: Record<string, number | string> & { currency: string; total_cost: number };
  fallback_reason: string | null;
  usage: { requests: number; kv_reads: number; kv_writes: number; stored_bytes: number | null };
  unit_prices: Record<string, number | string> & { currency: string };
}

const amount = (n: number, currency: string) =>
  `${
    n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
  } ${currency}`;

async function costPage(c: ConsoleContext, api: Api) {
  const asked = c.req.query("period");
  const period = asked && /^\d{4}-\d{2}$/.test(asked) ? asked : monthOf(c.get("svc").now());
  const res = await api<Cost>(c, "GET", `/v1/admin/cost?period=${period}`);
  if (!res.ok) failWith(c, res);
  const k = res.ok ? res.data : null;
  const cur = k?.cost.currency ?? "";
  return (
    <OpsPage c={c} title="Cost" tab="cost" error={res.error}>
      <form class="search" method="get" action={`${OPS}/cost`}>
        <Field label="Month" name="period" type="month" value={period} />
        <button type="submit">Show</button>
      </form>
      {k && (
        <>
          <dl class="kpis">
            <Kpi label={`Total ${k.period}`} value={amount(k.cost.total_cost, cur)} />
            <Kpi label="Requests" value={amount(Number(k.cost.requests_cost), cur)} />
            <Kpi label="KV reads" value={amount(Number(k.cost.kv_read_cost), cur)} />
            <Kpi label="KV writes" value={amount(Number(k.cost.kv_write_cost), cur)} />
            <Kpi label="Storage" value={amount(Number(k.cost.storage_cost), cur)} />
          </dl>
          <Facts
            items={[
              ["Source", `${k.cost_source} (confidence ${k.cost_confidence})`],
              ["Why not live", k.fallback_reason ?? "—"],
              ["Fetched", `${when(k.fetched_at)} (${duration(k.cache_age_ms)} ago)`],
            ]}
          />
          <h2>Usage</h2>
          <Table
            caption="What the month used, and the unit prices"
            columns={["Resource", "Used", `Unit price (${k.unit_prices.currency})`]}
            rows={[
              ["Requests", count(k.usage.requests), `${k.unit_prices.requests} per million`],
              ["KV read units", count(k.usage.kv_reads), `${k.unit_prices.kv_reads} per million`],
              [
                "KV write units",
                count(k.usage.kv_writes),
                `${k.unit_prices.kv_writes} per million`,
              ],
              [
                "Stored",
                bytes(k.usage.stored_bytes),
                `${k.unit_prices.storage_gib_month} per GiB-month`,
              ],
            ]}
          />
        </>
      )}
    </OpsPage>
  );
}

export function statusPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get(`${OPS}/health`, async (c) => c.html(await healthPage(c, api)));
  app.get(`${OPS}/usage`, async (c) => c.html(await usagePage(c, api)));
  app.get(`${OPS}/cost`, async (c) => c.html(await costPage(c, api)));
}
