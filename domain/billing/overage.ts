/**
 * Metered overage: usage above a plan's quota, reported to the plan's Stripe billing meter
 * (`stripe_meter_event_name`) against the subscription's customer. It runs from a maintenance
 * cron over the counters the write-behind path has flushed, never on a request's path.
 *
 * Each report is written down as an intent first (the level it takes the tenant to, and the
 * meter event's identifier), then sent, then recorded as reported. A crash anywhere resends the
 * same intent with the same identifier, which Stripe drops as a repeat: a unit of overage is
 * billed once, however often a report is retried.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord } from "../../kv/table.ts";
import type { Services } from "../shared/services.ts";
import { getPlanByCode, VERIFICATIONS } from "../tenancy/plans.ts";
import { tenantTable } from "../tenancy/tenants.ts";
import { currentUsage } from "../usage/usage.ts";
import { MRR_STATUSES, type Subscription } from "./model.ts";
import { callStripe } from "./stripe_client.ts";

/** What keys.overageReport holds for a tenant: the quota period and the units reported in it. */
export interface OverageReport {
  /** The quota period's start (ISO): a new period starts again from zero. */
  period: string;
  reported: number;
  /** A report being sent: the level it takes `reported` to, and its meter event's identifier. */
  pending: { to: number; identifier: string } | null;
}

/** Reports every paying tenant's new overage; returns how many tenants and units it reported. */
export async function reportOverage(svc: Services): Promise<{ tenants: number; units: number }> {
  const out = { tenants: 0, units: 0 };
  if (!svc.stripe) return out;
  for await (const e of svc.kv.list<Subscription>({ prefix: keys.subscriptions() })) {
    const units = await reportTenant(svc, e.value);
    if (units) {
      out.tenants++;
      out.units += units;
    }
  }
  return out;
}

/** Reports one tenant's overage beyond what was reported; the units reported (0 for none). */
async function reportTenant(svc: Services, sub: Subscription): Promise<number> {
  if (!MRR_STATUSES.has(sub.status)) return 0;
  const tenant = await getRecord(svc.kv, tenantTable, sub.tenant_id);
  const plan = tenant && (await getPlanByCode(svc, tenant.value.plan))?.value;
  if (!tenant || !plan?.quota || !plan.stripe_meter_event_name) return 0;
  const usage = (await currentUsage(svc, tenant.value)).find((m) => m.metric === VERIFICATIONS)!;
  const over = Math.max(0, usage.used - plan.quota.units);

  const key = keys.overageReport(tenant.value.id);
  const stored = await svc.kv.get<OverageReport>(key);
  // A report left pending is finished first, even from a period that has since ended.
  let report: OverageReport = stored.value?.pending || stored.value?.period === usage.period_start
    ? stored.value
    : { period: usage.period_start, reported: 0, pending: null };
  let versionstamp = stored.versionstamp;
  if (!report.pending) {
    if (over <= report.reported) return 0;
    report = {
      ...report,
      pending: {
        to: over,
        identifier: `${tenant.value.id}:${Date.parse(report.period)}:${report.reported}-${over}`,
      },
    };
    const intent = await commit(svc.kv.atomic().check({ key, versionstamp }).set(key, report));
    // Another process reports this tenant now.
    if (!intent) return 0;
    versionstamp = intent.versionstamp;
  }
  const { to, identifier } = report.pending!;
  const units = to - report.reported;
  await callStripe(svc, (stripe) =>
    stripe.billing.meterEvents.create({
      event_name: plan.stripe_meter_event_name!,
      identifier,
      timestamp: Math.floor(svc.now() / 1000),
      payload: { stripe_customer_id: sub.customer_id, value: String(units) },
    }));
  const done: OverageReport = { period: report.period, reported: to, pending: null };
  await commit(svc.kv.atomic().check({ key, versionstamp }).set(key, done));
  return units;
}
