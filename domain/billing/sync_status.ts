/**
 * How well Steward keeps up with Stripe: the events received and what became of them, the
 * signatures refused, what waits to be applied, the last API call that worked, and the tenants
 * whose plan does not follow their subscription (overridden on purpose, or drifted: not on the
 * plan the subscription puts them on, stripe_records.ts `followedPlan`).
 */
import { keys } from "../../kv/keys.ts";
import type { Services } from "../shared/services.ts";
import { DAY_MS, dayOf, iso } from "../shared/time.ts";
import { ageSeconds, readSubscriptions, readTenants } from "./finance.ts";
import { followedPlan } from "./stripe_records.ts";
import {
  STRIPE_EVENT_STATUSES,
  type StripeEventRecord,
  type StripeEventStatus,
  type Subscription,
  type SubscriptionStatus,
} from "./model.ts";

export interface EventBrief {
  id: string;
  type: string;
  status: StripeEventStatus;
  received_at: string;
  age_seconds: number;
}

export interface StripeSyncStatus {
  generated_at: string;
  configured: boolean;
  last_event: EventBrief | null;
  last_24h: {
    events: number;
    by_type: Record<string, number>;
    by_status: Record<StripeEventStatus, number>;
  };
  /** Deliveries refused for their signature, per UTC day: the last 24 h fall in these two. */
  signature_failures: { today: number; yesterday: number };
  processing: { queued: number; failed: number; oldest_queued: EventBrief | null };
  last_api_success_at: string | null;
  last_api_success_age_seconds: number | null;
  overridden_tenants: { count: number; tenants: { id: string; slug: string; plan: string }[] };
  plan_mismatches: {
    count: number;
    tenants: {
      id: string;
      slug: string;
      plan: string;
      subscription_plan: string;
      subscription_status: SubscriptionStatus;
    }[];
  };
}

const brief = (e: StripeEventRecord, now: number): EventBrief => ({
  id: e.id,
  type: e.type,
  status: e.status,
  received_at: e.received_at,
  age_seconds: ageSeconds(e.received_at, now),
});

const earlier = (a: StripeEventRecord | null, b: StripeEventRecord) =>
  !a || b.received_at < a.received_at ? b : a;

async function readCount(svc: Services, day: string): Promise<number> {
  const entry = await svc.kv.get<Deno.KvU64>(keys.stripeSignatureFailures(day));
  return Number(entry.value?.value ?? 0n);
}

/**
 * One pass over the stored events (a queued one may be of any age, so no time range bounds
 * the walk): the latest, the last day's by type and status, what waits or failed.
 */
async function eventFigures(svc: Services, now: number) {
  const since = iso(now - DAY_MS);
  const day = {
    events: 0,
    by_type: {} as Record<string, number>,
    by_status: Object.fromEntries(STRIPE_EVENT_STATUSES.map((s) => [s, 0])) as Record<
      StripeEventStatus,
      number
    >,
  };
  let latest: StripeEventRecord | null = null;
  let oldestQueued: StripeEventRecord | null = null;
  let queued = 0, failed = 0;
  const events = svc.kv.list<StripeEventRecord>({ prefix: keys.stripeEvents() }, {
    batchSize: 500,
  });
  for await (const { value: e } of events) {
    if (!latest || e.received_at > latest.received_at) latest = e;
    if (e.received_at >= since) {
      day.events++;
      day.by_type[e.type] = (day.by_type[e.type] ?? 0) + 1;
      day.by_status[e.status]++;
    }
    if (e.status === "queued") {
      queued++;
      oldestQueued = earlier(oldestQueued, e);
    } else if (e.status === "failed") failed++;
  }
  return {
    last_event: latest && brief(latest, now),
    last_24h: day,
    processing: { queued, failed, oldest_queued: oldestQueued && brief(oldestQueued, now) },
  };
}

export async function stripeSyncStatus(svc: Services): Promise<StripeSyncStatus> {
  const now = svc.now();
  const [events, today, yesterday, sync, tenants, subs] = await Promise.all([
    eventFigures(svc, now),
    readCount(svc, dayOf(now)),
    readCount(svc, dayOf(now - DAY_MS)),
    svc.kv.get<{ last_api_success_at: string | null }>(keys.stripeSync()),
    readTenants(svc),
    readSubscriptions(svc),
  ]);
  const subOf = new Map<string, Subscription>(subs.map((s) => [s.tenant_id, s]));
  const overridden = tenants.filter((t) => t.plan_override);
  const mismatched = tenants.flatMap((t) => {
    const s = subOf.get(t.id);
    const due = s && !t.plan_override ? followedPlan(s) : null;
    return s && due && due !== t.plan
      ? [{
        id: t.id,
        slug: t.slug,
        plan: t.plan,
        subscription_plan: due,
        subscription_status: s.status,
      }]
      : [];
  });
  const apiAt = sync.value?.last_api_success_at ?? null;
  return {
    generated_at: iso(now),
    configured: svc.stripe !== null,
    ...events,
    signature_failures: { today, yesterday },
    last_api_success_at: apiAt,
    last_api_success_age_seconds: apiAt === null ? null : ageSeconds(apiAt, now),
    overridden_tenants: {
      count: overridden.length,
      tenants: overridden.map((t) => ({ id: t.id, slug: t.slug, plan: t.plan })),
    },
    plan_mismatches: { count: mismatched.length, tenants: mismatched },
  };
}
