/**
 * The subscriptions at a glance (counts, MRR and ARR, trials ending, cancellations ahead) and
 * the list of them, filtered.
 */
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import type { Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import {
  addMoney,
  type Money,
  readSubscriptions,
  trialsEndingSoon,
  UNMAPPED_PLAN,
} from "./finance.ts";
import {
  MRR_STATUSES,
  type Subscription,
  SUBSCRIPTION_STATUSES,
  type SubscriptionStatus,
} from "./model.ts";
import { hasEnded } from "./stripe_records.ts";

export interface SubscriptionSummary {
  generated_at: string;
  total: number;
  by_status: Record<SubscriptionStatus, number>;
  /** Subscriptions that are not over, by plan code. */
  by_plan: Record<string, number>;
  /** Subscriptions counted in MRR with an amount above zero. */
  paying: number;
  mrr: Money;
  arr: Money;
  trials_ending_soon: number;
  scheduled_cancellations: { count: number; mrr: Money };
}

/** A year of the subscription's amount: exact for a yearly price, where MRR is rounded. */
const yearly = (s: Subscription) => s.interval === "year" ? s.amount : s.amount * 12;

export async function subscriptionSummary(svc: Services): Promise<SubscriptionSummary> {
  const now = svc.now();
  const subs = await readSubscriptions(svc);
  const summary: SubscriptionSummary = {
    generated_at: iso(now),
    total: subs.length,
    by_status: Object.fromEntries(SUBSCRIPTION_STATUSES.map((s) => [s, 0])) as Record<
      SubscriptionStatus,
      number
    >,
    by_plan: {},
    paying: 0,
    mrr: {},
    arr: {},
    trials_ending_soon: trialsEndingSoon(subs, now).length,
    scheduled_cancellations: { count: 0, mrr: {} },
  };
  for (const s of subs) {
    summary.by_status[s.status]++;
    if (hasEnded(s)) continue;
    const plan = s.plan_code ?? UNMAPPED_PLAN;
    summary.by_plan[plan] = (summary.by_plan[plan] ?? 0) + 1;
    if (MRR_STATUSES.has(s.status)) {
      addMoney(summary.mrr, s.currency, s.mrr);
      addMoney(summary.arr, s.currency, yearly(s));
      if (s.mrr > 0) summary.paying++;
    }
    if (s.cancel_at_period_end) {
      summary.scheduled_cancellations.count++;
      addMoney(summary.scheduled_cancellations.mrr, s.currency, s.mrr);
    }
  }
  return summary;
}

export interface SubscriptionFilter {
  status?: SubscriptionStatus;
  /** A plan code. */
  plan?: string;
  tenant_id?: string;
}

/** Subscriptions in tenant order (oldest tenant first), filtered, with the total. */
export function listSubscriptions(
  svc: Services,
  filter: SubscriptionFilter,
  page: PageRequest,
): Promise<Page<Subscription> & Counted> {
  // One tenant's: the range that holds exactly its key.
  const one = filter.tenant_id && keys.subscription(filter.tenant_id);
  return listCounted<Subscription>(svc.kv, {
    selector: one ? { start: one, end: [...one, ""] } : { prefix: keys.subscriptions() },
    filter: (s) =>
      (!filter.status || s.status === filter.status) &&
      (!filter.plan || s.plan_code === filter.plan),
  }, page);
}
