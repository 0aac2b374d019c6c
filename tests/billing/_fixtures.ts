/**
 * Billing records written straight to KV, as the Stripe receiver would leave them, so the
 * finance reports can be checked against figures worked out by hand. Every writer fills the
 * fields a test does not care about with plain defaults.
 */
import { newId } from "../../domain/shared/ids.ts";
import {
  type Invoice,
  type MrrChange,
  mrrOf,
  type StripeEventRecord,
  type Subscription,
} from "../../domain/billing/model.ts";
import { keys } from "../../kv/keys.ts";
import type { Harness } from "../_harness.ts";

const at = (h: Harness) => new Date(h.clock.now).toISOString();

/** A tenant's subscription; `mrr` follows the status, amount and interval unless given. */
export async function subscription(
  h: Harness,
  tenantId: string,
  fields: Partial<Subscription> & Pick<Subscription, "status" | "plan_code" | "amount">,
): Promise<Subscription> {
  const base: Subscription = {
    tenant_id: tenantId,
    customer_id: `cus_${tenantId.slice(-12)}`,
    subscription_id: `sub_${tenantId.slice(-12)}`,
    price_id: fields.plan_code ? `price_${fields.plan_code}` : null,
    quantity: 1,
    current_period_start: at(h),
    current_period_end: null,
    cancel_at_period_end: false,
    canceled_at: null,
    trial_end: null,
    currency: "usd",
    interval: "month",
    mrr: 0,
    stripe_at: Math.floor(h.clock.now / 1000),
    created_at: at(h),
    updated_at: at(h),
    ...fields,
  };
  const sub = { ...base, mrr: fields.mrr ?? mrrOf(base) };
  await h.kv.set(keys.subscription(tenantId), sub);
  return sub;
}

/** An invoice, and its pointer under the tenant. */
export async function invoice(
  h: Harness,
  fields: Partial<Invoice> & Pick<Invoice, "id" | "tenant_id" | "status">,
): Promise<Invoice> {
  const record: Invoice = {
    customer_id: `cus_${fields.tenant_id.slice(-12)}`,
    subscription_id: null,
    number: null,
    amount_due: 0,
    amount_paid: 0,
    amount_refunded: 0,
    currency: "usd",
    period_start: null,
    period_end: null,
    paid_at: null,
    payment_failed_at: null,
    hosted_invoice_url: null,
    created: Math.floor(h.clock.now / 1000),
    stripe_at: Math.floor(h.clock.now / 1000),
    updated_at: at(h),
    ...fields,
  };
  await h.kv.atomic()
    .set(keys.invoice(record.id), record)
    .set(keys.tenantInvoice(record.tenant_id, record.created, record.id), record.id)
    .commit();
  return record;
}

/** A received Stripe event, and its pointer by receipt time. */
export async function stripeEvent(
  h: Harness,
  fields: Pick<StripeEventRecord, "id" | "type" | "status" | "received_at">,
): Promise<StripeEventRecord> {
  const record: StripeEventRecord = {
    created: Math.floor(Date.parse(fields.received_at) / 1000),
    tenant_id: null,
    object_id: null,
    error: fields.status === "failed" ? "boom" : null,
    processed_at: fields.status === "queued" ? null : fields.received_at,
    ...fields,
  };
  await h.kv.atomic()
    .set(keys.stripeEvent(record.id), record)
    .set(keys.stripeEventByTime(record.received_at, record.id), record.id)
    .commit();
  return record;
}

/** A change of a tenant's MRR at `at` (ISO time), under a time-ordered id. */
export async function mrrChange(
  h: Harness,
  change: Omit<MrrChange, "id" | "currency"> & { currency?: string },
): Promise<MrrChange> {
  const record: MrrChange = {
    id: newId("mrr", Date.parse(change.at)),
    currency: "usd",
    ...change,
  };
  await h.kv.set(keys.mrrChange(record.id), record);
  return record;
}

export async function signatureFailures(h: Harness, day: string, count: number) {
  await h.kv.set(keys.stripeSignatureFailures(day), new Deno.KvU64(BigInt(count)));
}

export async function stripeSync(
  h: Harness,
  sync: { last_event_at: string | null; last_api_success_at: string | null },
) {
  await h.kv.set(keys.stripeSync(), sync);
}
