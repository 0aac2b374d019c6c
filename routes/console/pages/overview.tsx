/**
 * Overview: the platform at a glance (tenants, active keys, today's verifications, requests and
 * error rate, MRR, firing alerts) and the last 30 days charted. Each tile and chart is shown only
 * when the signed-in user may read what it comes from.
 */
import type { Hono } from "hono";
import { iso } from "../../../domain/shared/time.ts";
import { type Api, can } from "../api.ts";
import { Chart, count, Kpi, money, Page } from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";

interface Overview {
  tenants: { total: number };
  active_keys: number;
  today: { requests: number; verifications: number; error_rate: number };
}

interface Daily<T> {
  days: (T & { date: string })[];
}

const number = count;
const percent = (r: number) => `${(r * 100).toFixed(2)} %`;

async function overview(c: ConsoleContext, api: Api) {
  const now = c.get("svc").now();
  const range = `from=${iso(now - 29 * 86_400_000).slice(0, 10)}&to=${iso(now).slice(0, 10)}`;
  const usage = can(c, "GET", "/v1/admin/overview");
  const [glance, metrics, bandwidth, mrr, alerts] = await Promise.all([
    usage ? api<Overview>(c, "GET", "/v1/admin/overview") : null,
    usage
      ? api<
        Daily<{ requests: number; verifications: number; errors: number; client_errors: number }>
      >(c, "GET", `/v1/admin/metrics/daily?${range}`)
      : null,
    usage
      ? api<Daily<{ bytes_in: number; bytes_out: number }>>(
        c,
        "GET",
        `/v1/admin/bandwidth/daily?${range}`,
      )
      : null,
    can(c, "GET", "/v1/admin/finance/subscription-summary")
      ? api<{ mrr: Record<string, number> }>(c, "GET", "/v1/admin/finance/subscription-summary")
      : null,
    can(c, "GET", "/v1/admin/system/alerts")
      ? api(c, "GET", "/v1/admin/system/alerts?state=firing&limit=1")
      : null,
  ]);
  const g = glance?.ok ? glance.data : null;
  const m = metrics?.ok ? metrics.data.days : null;
  const b = bandwidth?.ok ? bandwidth.data.days : null;
  return (
    <Page c={c} title="Overview" section="overview">
      <dl class="kpis">
        {g && <Kpi label="Tenants" value={number(g.tenants.total)} href="/console/tenants" />}
        {g && <Kpi label="Active keys" value={number(g.active_keys)} />}
        {g && <Kpi label="Verifications today" value={number(g.today.verifications)} />}
        {g && <Kpi label="Requests today" value={number(g.today.requests)} />}
        {g && <Kpi label="Error rate today" value={percent(g.today.error_rate)} />}
        {mrr?.ok && <Kpi label="MRR" value={money(mrr.data.mrr)} href="/console/finance" />}
        {alerts?.ok && (
          <Kpi
            label="Firing alerts"
            value={number(alerts.pagination?.total ?? 0)}
            href="/console/operations"
          />
        )}
      </dl>
      {!g && !mrr?.ok && !alerts?.ok && (
        <p>Your role reads no platform figures; the sections above are what you may open.</p>
      )}
      {m && b && (
        <div class="charts">
          <Chart
            id="chart-requests"
            title="Requests and verifications per day"
            days={m.map((d) => d.date)}
            series={[
              { label: "Requests", values: m.map((d) => d.requests) },
              { label: "Verifications", values: m.map((d) => d.verifications) },
            ]}
          />
          <Chart
            id="chart-bandwidth"
            title="Bandwidth per day (bytes)"
            days={b.map((d) => d.date)}
            series={[
              { label: "Received", values: b.map((d) => d.bytes_in) },
              { label: "Sent", values: b.map((d) => d.bytes_out) },
            ]}
          />
          <Chart
            id="chart-errors"
            title="Client (4xx) and server (5xx) errors per day"
            days={m.map((d) => d.date)}
            series={[
              { label: "4xx", values: m.map((d) => d.client_errors) },
              { label: "5xx", values: m.map((d) => d.errors) },
            ]}
          />
        </div>
      )}
    </Page>
  );
}

export function overviewPages(app: Hono<ConsoleEnv>, api: Api) {
  app.get("/console", async (c) => c.html(await overview(c, api)));
}
