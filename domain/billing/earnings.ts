/**
 * What the platform earned from one tenant in a calendar month: the invoices paid in it (by
 * `paid_at`) and what of them was refunded, the net, the tenant's plan and subscription, and its
 * verifications in the month with the overage (units above the quota, at the plan's unit price).
 */
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import { badRequest } from "../shared/errors.ts";
import type { Services } from "../shared/services.ts";
import { iso, monthOf, monthRange, quotaPeriod } from "../shared/time.ts";
import { dailyUsage } from "../usage/usage.ts";
import { getPlanByCode, type Plan, VERIFICATIONS } from "../tenancy/plans.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { addMoney, billsOverage, type Money, priceOfUnits, unitPriceOf } from "./finance.ts";
import type { Invoice, Subscription } from "./model.ts";

export interface PeriodUsage {
  metric: string;
  /** Verifications in the month. */
  used: number;
  quota: number | null;
  quota_period: "month" | "year" | null;
  /** Units of this month above the quota (a yearly quota counts the year up to the month). */
  overage_units: number;
  unit_price: number | null;
  overage_amount: number;
  currency: string | null;
  /** The plan reports overage to Stripe (a meter), so it is invoiced, not lost. */
  overage_billed: boolean;
}

export interface Earnings {
  tenant_id: string;
  period: string;
  start: string;
  end: string;
  plan: {
    code: string;
    name: string | null;
    price: Plan["price"] | null;
    override: boolean;
    override_reason: string | null;
  };
  subscription: Subscription | null;
  invoices: Invoice[];
  paid: Money;
  refunded: Money;
  net: Money;
  usage: PeriodUsage;
}

async function tenantInvoices(svc: Services, tenantId: string): Promise<Invoice[]> {
  const ids: string[] = [];
  for await (const e of svc.kv.list<string>({ prefix: keys.tenantInvoices(tenantId) })) {
    ids.push(e.value);
  }
  const found = await Promise.all(ids.map((id) => getBatched<Invoice>(svc.kv, keys.invoice(id))));
  return found.flatMap((e) => e.value ? [e.value] : []);
}

/**
 * The month's verifications, and its overage: what the quota period holds up to the month's
 * end above the quota, less what it held above it before the month began.
 */
async function usageIn(
  svc: Services,
  tenantId: string,
  plan: Plan | null,
  month: { from: number; to: number },
): Promise<PeriodUsage> {
  const quota = plan?.quota ?? null;
  const from = quota ? quotaPeriod(quota.period, month.from).start : month.from;
  const { days } = await dailyUsage(svc, tenantId, VERIFICATIONS, { from, to: month.to });
  const first = iso(month.from).slice(0, 10);
  let before = 0, used = 0;
  for (const d of days) {
    if (d.date < first) before += d.used;
    else used += d.used;
  }
  const above = (n: number) => quota ? Math.max(0, n - quota.units) : 0;
  const overage = above(before + used) - above(before);
  return {
    metric: VERIFICATIONS,
    used,
    quota: quota?.units ?? null,
    quota_period: quota?.period ?? null,
    overage_units: overage,
    unit_price: plan && unitPriceOf(plan),
    overage_amount: plan ? priceOfUnits(plan, overage) : 0,
    currency: plan?.price.currency ?? null,
    overage_billed: plan ? billsOverage(plan) : false,
  };
}

/** `period` is YYYY-MM (UTC), by default this month; a later month is refused. */
export async function tenantEarnings(
  svc: Services,
  tenant: Tenant,
  period?: string,
): Promise<Earnings> {
  const now = svc.now();
  const month = period ?? monthOf(now);
  if (month > monthOf(now)) {
    throw badRequest("the period is after this month", [
      { path: ["query", "period"], message: "after this month" },
    ]);
  }
  const start = Date.parse(`${month}-01T00:00:00Z`);
  const next = new Date(start);
  next.setUTCMonth(next.getUTCMonth() + 1);
  const [from, to] = [iso(start), next.toISOString()];
  const [plan, subscription, invoices] = await Promise.all([
    getPlanByCode(svc, tenant.plan),
    svc.kv.get<Subscription>(keys.subscription(tenant.id)),
    tenantInvoices(svc, tenant.id),
  ]);
  const paidIn = invoices
    .filter((i) => i.paid_at && i.paid_at >= from && i.paid_at < to)
    .sort((a, b) => a.paid_at!.localeCompare(b.paid_at!));
  const paid: Money = {}, refunded: Money = {}, net: Money = {};
  for (const i of paidIn) {
    addMoney(paid, i.currency, i.amount_paid);
    addMoney(refunded, i.currency, i.amount_refunded);
    addMoney(net, i.currency, i.amount_paid - i.amount_refunded);
  }
  return {
    tenant_id: tenant.id,
    period: month,
    start: from,
    end: to,
    plan: {
      code: tenant.plan,
      name: plan?.value.name ?? null,
      price: plan?.value.price ?? null,
      override: tenant.plan_override,
      override_reason: tenant.plan_reason,
    },
    subscription: subscription.value,
    invoices: paidIn,
    paid,
    refunded,
    net,
    usage: await usageIn(svc, tenant.id, plan?.value ?? null, monthRange(month, now)),
  };
}
