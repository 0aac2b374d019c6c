/**
 * Plans: what a tenant buys — price, rate limit, quota, SLA and features. Codes are unique and
 * never reused; deleting archives (a plan in use cannot be archived: the live tenants on each
 * plan are counted in `keys.planTenantCount`). The standard catalogue is seeded on first start.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import {
  getByPointer,
  getRecord,
  insert,
  replace,
  type Table,
  type Versioned,
} from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { conflict, notFound, staleVersion } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { createRecord, mergeMap, updateRecord } from "../audit/records.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

export type Interval = "month" | "year";

export interface RateLimit {
  requests_per_second: number;
  burst: number;
}

/** What a plan's quota counts: key verifications. */
export const VERIFICATIONS = "verifications";

export interface Plan {
  id: string;
  code: string;
  name: string;
  /** Amount in minor units (cents). */
  price: { amount: number; currency: string; interval: Interval };
  rate_limit: RateLimit;
  /** Units per period; null is unlimited. */
  quota: { units: number; period: Interval } | null;
  /** Availability promised, in percent. */
  sla: number;
  features: Record<string, boolean | number | string>;
  stripe_price_id: string | null;
  /**
   * A Stripe billing meter's event name: usage above the quota is reported to it (billing's
   * overage.ts) and billed as overage. Null: usage above the quota is not billed.
   */
  stripe_meter_event_name?: string | null;
  active: boolean;
  created_at: string;
  updated_at: string;
  archived_at: string | null;
}

export const planTable: Table<Plan> = {
  key: keys.plan,
  unique: (p) => [keys.planCode(p.code)],
};

export type NewPlan =
  & Omit<
    Plan,
    | "id"
    | "created_at"
    | "updated_at"
    | "archived_at"
    | "active"
    | "features"
    | "stripe_price_id"
    | "stripe_meter_event_name"
  >
  & {
    active?: boolean;
    features?: Plan["features"];
    stripe_price_id?: string | null;
    stripe_meter_event_name?: string | null;
  };

function build(input: NewPlan, now: number): Plan {
  return {
    id: newId("pln", now),
    code: input.code,
    name: input.name,
    price: input.price,
    rate_limit: input.rate_limit,
    quota: input.quota,
    sla: input.sla,
    features: input.features ?? {},
    stripe_price_id: input.stripe_price_id ?? null,
    stripe_meter_event_name: input.stripe_meter_event_name ?? null,
    active: input.active ?? true,
    created_at: iso(now),
    updated_at: iso(now),
    archived_at: null,
  };
}

const USD = (dollars: number) => dollars * 100;

/**
 * The catalogue seeded on first start: free and pro for self-serve, and the tier table
 * platforms sell validations by (yearly price, validations per year, rate, SLA).
 */
export const STANDARD_PLANS: NewPlan[] = [
  {
    code: "free",
    name: "Free",
    price: { amount: 0, currency: "usd", interval: "month" },
    rate_limit: { requests_per_second: 10, burst: 20 },
    quota: { units: 10_000, period: "month" },
    sla: 99,
  },
  {
    code: "pro",
    name: "Pro",
    price: { amount: USD(49), currency: "usd", interval: "month" },
    rate_limit: { requests_per_second: 25, burst: 50 },
    quota: { units: 1_000_000, period: "month" },
    sla: 99.5,
  },
  ...([
    ["starter", "Starter", 100_000, 2_000_000, 50, 99.9],
    ["growth", "Growth", 250_000, 10_000_000, 100, 99.95],
    ["scale", "Scale", 500_000, 30_000_000, 200, 99.95],
    ["enterprise", "Enterprise", 1_000_000, 80_000_000, 500, 99.99],
    ["custom", "Custom", 2_000_000, 200_000_000, 1_000, 99.99],
  ] as const).map(([code, name, dollars, validations, rps, sla]): NewPlan => ({
    code,
    name,
    price: { amount: USD(dollars), currency: "usd", interval: "year" },
    rate_limit: { requests_per_second: rps, burst: rps * 2 },
    quota: { units: validations, period: "year" },
    sla,
  })),
];

/** Adds the standard plans whose codes are not taken yet; safe on every start. Returns how many. */
export async function seedPlans(svc: Services): Promise<number> {
  let seeded = 0;
  for (const input of STANDARD_PLANS) {
    const now = svc.now();
    const plan = build(input, now);
    const op = insert(svc.kv.atomic(), planTable, plan);
    recordChange(op, now, SYSTEM_ACTOR, {
      action: "plan.created",
      resource_type: "plan",
      resource_id: plan.id,
      tenant_id: null,
      after: { ...plan },
    });
    // A taken code fails the insert's check: that plan exists (perhaps edited), leave it be.
    if (await commit(op)) seeded++;
  }
  return seeded;
}

export function createPlan(svc: Services, actor: Actor, input: NewPlan): Promise<Versioned<Plan>> {
  return createRecord(svc, actor, planTable, build(input, svc.now()), {
    action: "plan.created",
    resource_type: "plan",
    tenant_id: () => null,
    clash: (p) => `the plan code "${p.code}" is taken`,
  });
}

export function getPlanByCode(svc: Services, code: string): Promise<Versioned<Plan> | null> {
  return getByPointer(svc.kv, planTable, keys.planCode(code));
}

/** `{id}` accepts the plan's id or its code. */
export async function resolvePlan(svc: Services, idOrCode: string): Promise<Versioned<Plan>> {
  const plan = idOrCode.startsWith("pln_")
    ? await getRecord(svc.kv, planTable, idOrCode)
    : await getPlanByCode(svc, idOrCode);
  if (!plan) throw notFound("plan");
  return plan;
}

/** Plans in creation order; archived ones only when asked for. */
export function listPlans(
  svc: Services,
  filter: { active?: boolean },
  page: PageRequest,
): Promise<Page<Plan> & Counted> {
  return listCounted<Plan>(svc.kv, {
    selector: { prefix: keys.plans() },
    filter: (p) => filter.active === undefined || p.active === filter.active,
  }, page);
}

export type PlanPatch =
  & Partial<
    Pick<
      Plan,
      | "name"
      | "price"
      | "rate_limit"
      | "quota"
      | "sla"
      | "stripe_price_id"
      | "stripe_meter_event_name"
      | "active"
    >
  >
  & { features?: Record<string, boolean | number | string | null> };

export function updatePlan(
  svc: Services,
  actor: Actor,
  id: string,
  patch: PlanPatch,
  ifMatch?: string,
): Promise<Versioned<Plan>> {
  const { features, ...fields } = patch;
  return updateRecord(svc, actor, planTable, {
    id,
    noun: "plan",
    ifMatch,
    action: "plan.updated",
    resource_type: "plan",
    tenant_id: () => null,
    apply: (p) => {
      if (p.archived_at) throw conflict("the plan is archived");
      const next: Plan = {
        ...p,
        ...fields,
        features: features ? mergeMap(p.features, features) : p.features,
      };
      if (JSON.stringify(next) === JSON.stringify(p)) return p;
      return { ...next, updated_at: iso(svc.now()) };
    },
  });
}

/**
 * Archives a plan (inactive, kept for history); 409 while any live tenant is on it. The
 * tenant counter's version is checked in the commit, so a tenant moving onto the plan
 * meanwhile makes this re-read and refuse.
 */
export function archivePlan(
  svc: Services,
  actor: Actor,
  idOrCode: string,
  ifMatch?: string,
): Promise<Versioned<Plan>> {
  return retrying(async () => {
    const plan = await resolvePlan(svc, idOrCode);
    if (ifMatch && ifMatch !== plan.versionstamp) throw staleVersion();
    if (plan.value.archived_at) return plan;
    const inUse = await svc.kv.get<Deno.KvU64>(keys.planTenantCount(plan.value.code));
    const tenants = inUse.value?.value ?? 0n;
    if (tenants > 0n) {
      throw conflict(`the plan is in use by ${tenants} tenant(s); move them to another plan first`);
    }
    const now = svc.now();
    const next: Plan = {
      ...plan.value,
      active: false,
      archived_at: iso(now),
      updated_at: iso(now),
    };
    const op = replace(svc.kv.atomic(), planTable, plan, next).check(inUse);
    recordChange(op, now, actor, {
      action: "plan.archived",
      resource_type: "plan",
      resource_id: next.id,
      tenant_id: null,
      before: plan.value as unknown as Record<string, unknown>,
      after: next as unknown as Record<string, unknown>,
    });
    const res = await commit(op);
    if (res) {
      svc.cache.forget(keys.plan(next.id));
      return { value: next, versionstamp: res.versionstamp };
    }
    if (ifMatch) throw staleVersion();
    return CONFLICT;
  });
}
