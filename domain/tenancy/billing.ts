/**
 * A tenant's plan. Changing it is one commit on the tenant record: verify reads the tenant's
 * plan and status through the tenant record, so the change reaches every key of the tenant at
 * once, with no fan-out over the keys (and no chunks a crash could leave half-applied).
 *
 * A change between a monthly and a yearly quota carries the usage over: the new period's
 * counter starts at what the daily counters hold for its window so far (this year's, or this
 * month's), set in the same commit, so the quota is neither forgiven nor counted twice.
 *
 * Billing (domain/billing/) moves a tenant onto its subscription's plan with `addFollowedPlan`,
 * in the commit that records the subscription; an override stops it.
 */
import { keys } from "../../kv/keys.ts";
import { replace, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { AppError, forbidden } from "../shared/errors.ts";
import { getPlanByCode, type Interval, type Plan, VERIFICATIONS } from "./plans.ts";
import { dayOf, iso, quotaPeriod } from "../shared/time.ts";
import { type Principal, seesByPlatform } from "../access/principal.ts";
import type { Actor, Services } from "../shared/services.ts";
import { changeTenant, type Tenant, tenantTable } from "./tenants.ts";

export interface PlanChange {
  plan_code: string;
  /** A manual assignment that a billing sync will not undo. */
  override: boolean;
  reason?: string | null;
}

/**
 * Moves a tenant to another active plan. Platform staff only: a tenant's own owners change
 * plans through billing checkout, not by assignment.
 */
export async function changePlan(
  svc: Services,
  actor: Actor,
  caller: Principal,
  tenant: Tenant,
  input: PlanChange,
  ifMatch?: string,
): Promise<Versioned<Tenant>> {
  if (
    caller.tenant_id || !seesByPlatform(caller, tenant) || !caller.inTenants.has("billing:write")
  ) {
    throw forbidden("plans are assigned by platform staff with billing:write");
  }
  if (input.override && !input.reason) {
    throw new AppError("BAD_REQUEST", "an override needs a reason", [
      { path: ["reason"], message: "required when override is true" },
    ]);
  }
  const move = await preparePlanMove(svc, tenant, input.plan_code);
  const changed = await changeTenant(svc, actor, tenant.id, {
    action: "tenant.plan_changed",
    ifMatch,
    apply: (t) => {
      const next = {
        ...t,
        plan: move.plan.value.code,
        plan_override: input.override,
        plan_reason: input.reason ?? null,
      };
      const same = next.plan === t.plan && next.plan_override === t.plan_override &&
        next.plan_reason === t.plan_reason;
      return same ? t : next;
    },
    extra: (op) => addPlanMove(op, move),
  });
  settlePlanMove(svc, move);
  return changed;
}

/** A tenant's move to a plan, worked out before the commit that makes it. */
export interface PlanMove {
  plan: Versioned<Plan>;
  /** The new quota period's counter and what it starts at, when the quota's interval changes. */
  carry: { key: Deno.KvKey; value: number } | null;
}

/** Reads the active plan `code` (400 naming `plan_code` without one) and what a move carries. */
export async function preparePlanMove(
  svc: Services,
  tenant: Tenant,
  code: string,
): Promise<PlanMove> {
  const plan = await getPlanByCode(svc, code);
  if (!plan || !plan.value.active) {
    throw new AppError("BAD_REQUEST", `no active plan with code "${code}"`, [
      { path: ["plan_code"], message: "no such active plan" },
    ]);
  }
  const current = await getPlanByCode(svc, tenant.plan);
  const carry = await carriedUsage(
    svc,
    tenant.id,
    current?.value.quota?.period,
    plan.value.quota?.period,
  );
  return { plan, carry };
}

/**
 * Adds the move's conditions to the commit that makes it. The plan must still be as read: an
 * archive meanwhile fails it (a rare race, answered 409 after the retries; the client's retry
 * then reads the archive).
 */
function addPlanMove(op: Deno.AtomicOperation, move: PlanMove) {
  op.check({ key: keys.plan(move.plan.value.id), versionstamp: move.plan.versionstamp });
  if (move.carry) op.set(move.carry.key, new Deno.KvU64(BigInt(move.carry.value)));
}

/** After the commit: this process's verify cache forgets the counter the move set. */
export function settlePlanMove(svc: Services, move: PlanMove) {
  if (move.carry) svc.cache.forget(move.carry.key);
}

/**
 * Adds to `op` the tenant's move onto `move`'s plan because its subscription says so: the tenant
 * record, the move's conditions and the audit event. Nothing when the plan is overridden (staff
 * set it by hand), the tenant is deleted or already on the plan: returns the next tenant, or
 * null. The caller commits (the tenant's versionstamp is checked), then forgets the tenant in the
 * cache and calls settlePlanMove.
 */
export function addFollowedPlan(
  op: Deno.AtomicOperation,
  svc: Services,
  actor: Actor,
  tenant: Versioned<Tenant>,
  move: PlanMove,
): Tenant | null {
  const t = tenant.value;
  if (t.plan_override || t.status === "deleted" || t.plan === move.plan.value.code) return null;
  const now = svc.now();
  const next: Tenant = {
    ...t,
    plan: move.plan.value.code,
    plan_reason: null,
    updated_at: iso(now),
  };
  replace(op, tenantTable, tenant, next);
  addPlanMove(op, move);
  recordChange(op, now, actor, {
    action: "tenant.plan_changed",
    resource_type: "tenant",
    resource_id: t.id,
    tenant_id: t.id,
    before: { ...t },
    after: { ...next },
  });
  return next;
}

/**
 * The counter of the new quota period and what it must start at, when the quota's interval
 * changes: the verifications the tenant's daily counters hold from the new period's start to
 * today. This process's pending counts are written first; another process's, up to one flush
 * interval, stay with the period they were counted in.
 */
async function carriedUsage(
  svc: Services,
  tenantId: string,
  from: Interval | undefined,
  to: Interval | undefined,
): Promise<{ key: Deno.KvKey; value: number } | null> {
  if (!to || !from || from === to) return null;
  await svc.counters.flush();
  const now = svc.now();
  const period = quotaPeriod(to, now);
  let value = 0;
  const days = svc.kv.list<Deno.KvU64>({
    start: keys.usageDaily(tenantId, VERIFICATIONS, dayOf(period.start)),
    end: keys.usageDaily(tenantId, VERIFICATIONS, `${dayOf(now)}~`),
  });
  for await (const day of days) value += Number(day.value.value);
  return { key: keys.usagePeriod(tenantId, VERIFICATIONS, period.label), value };
}
