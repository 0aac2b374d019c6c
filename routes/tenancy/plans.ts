/** The plan catalogue, and each tenant's plan (billing). */
import { z } from "@hono/zod-openapi";
import { changePlan } from "../../domain/tenancy/billing.ts";
import { followSubscription } from "../../domain/billing/apply.ts";
import { checkPlanPrice } from "../../domain/billing/plan_prices.ts";
import {
  archivePlan,
  createPlan,
  listPlans,
  type Plan,
  resolvePlan,
  updatePlan,
} from "../../domain/tenancy/plans.ts";
import type { Tenant } from "../../domain/tenancy/tenants.ts";
import type { Versioned } from "../../kv/table.ts";
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import {
  envelope,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  QueryBoolean,
  TenantParams,
  Text,
} from "../schemas.ts";

const Interval = z.enum(["month", "year"]);
const Code = z.string().regex(/^[a-z][a-z0-9_-]{1,31}$/, "2–32 lower-case letters, digits, _ or -")
  .openapi({ example: "pro" });
const PlanName = Text(100).openapi({ example: "Pro" });

const Price = z.strictObject({
  amount: z.number().int().min(0).max(1e12).openapi({
    description: "Minor units (cents).",
    example: 4900,
  }),
  currency: z.string().regex(/^[a-z]{3}$/, "ISO 4217 code, lower-case").openapi({ example: "usd" }),
  interval: Interval,
});

export const RateLimitSchema = z.strictObject({
  requests_per_second: z.number().int().min(1).max(1_000_000).openapi({ example: 10 }),
  burst: z.number().int().min(1).max(10_000_000).openapi({
    description: "Most requests allowed in any one second; at least requests_per_second.",
    example: 20,
  }),
}).refine((r) => r.burst >= r.requests_per_second, {
  message: "burst must be at least requests_per_second",
  path: ["burst"],
}).openapi("RateLimit");

const Quota = z.strictObject({
  units: z.number().int().min(1).max(1e15).openapi({ example: 1_000_000 }),
  period: Interval,
}).nullable().openapi({ description: "Units per period; null is unlimited." });

const FeatureValue = z.union([z.boolean(), z.number(), z.string().max(200)]);
const FeatureName = z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/, "lower-case name");
const FEATURES_EXAMPLE = { team_seats: 10, sso: false, support: "email" };
const Features = z.record(FeatureName, FeatureValue)
  .refine((m) => Object.keys(m).length <= 100, "at most 100 features")
  .openapi({ example: FEATURES_EXAMPLE });
const FeaturesPatch = z.record(FeatureName, FeatureValue.nullable())
  .refine((m) => Object.keys(m).length <= 100, "at most 100 features")
  .openapi({ example: { team_seats: 20, support: null } });
const Sla = z.number().min(0).max(100).openapi({
  description: "Availability, in percent.",
  example: 99.5,
});
const StripePrice = z.string().regex(/^price_[A-Za-z0-9]{1,64}$/, "a Stripe price id").nullable()
  .openapi({ example: "price_1QExamplePro0000Monthly" });

/** Stripe's meter event names: 1–100 of letters, digits, `_`, `-`, `.`. */
const StripeMeter = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "a Stripe meter event name")
  .nullable().openapi({
    description: "Usage above the quota is reported to this Stripe billing meter (overage).",
    example: "api_requests_overage",
  });

const PlanSchema = z.object({
  id: z.string().openapi({ example: "pln_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  code: z.string().openapi({ example: "pro" }),
  name: z.string().openapi({ example: "Pro" }),
  price: z.object({
    amount: z.number().openapi({ example: 4900 }),
    currency: z.string().openapi({ example: "usd" }),
    interval: Interval,
  }),
  rate_limit: z.object({
    requests_per_second: z.number().openapi({ example: 25 }),
    burst: z.number().openapi({ example: 50 }),
  }),
  quota: z.object({ units: z.number().openapi({ example: 1_000_000 }), period: Interval })
    .nullable(),
  sla: z.number().openapi({ example: 99.5 }),
  features: z.record(z.string(), FeatureValue).openapi({ example: FEATURES_EXAMPLE }),
  stripe_price_id: z.string().nullable().openapi({ example: "price_1QExamplePro0000Monthly" }),
  // Absent on plans made before overage billing.
  stripe_meter_event_name: StripeMeter.optional(),
  active: z.boolean(),
  created_at: z.string().openapi({ example: "2026-01-05T08:00:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-05T08:00:00.000Z" }),
  archived_at: z.string().nullable().openapi({ example: null }),
}).openapi("Plan");

const CreatePlan = z.strictObject({
  code: Code,
  name: PlanName,
  price: Price,
  rate_limit: RateLimitSchema,
  quota: Quota,
  sla: Sla,
  features: Features.optional(),
  stripe_price_id: StripePrice.optional(),
  stripe_meter_event_name: StripeMeter.optional(),
  active: z.boolean().optional(),
}).openapi("CreatePlan", {
  example: {
    code: "team",
    name: "Team",
    price: { amount: 19_900, currency: "usd", interval: "month" },
    rate_limit: { requests_per_second: 50, burst: 100 },
    quota: { units: 5_000_000, period: "month" },
    sla: 99.9,
    features: { team_seats: 25, sso: true, support: "priority" },
    stripe_price_id: "price_1QExampleTeam000Monthly",
  },
});

const UpdatePlan = z.strictObject({
  name: PlanName.optional(),
  price: Price.optional(),
  rate_limit: RateLimitSchema.optional(),
  quota: Quota.optional(),
  sla: Sla.optional(),
  features: FeaturesPatch.optional(),
  stripe_price_id: StripePrice.optional(),
  stripe_meter_event_name: StripeMeter.optional(),
  active: z.boolean().optional(),
}).openapi("UpdatePlan", {
  example: {
    price: { amount: 5900, currency: "usd", interval: "month" },
    features: { team_seats: 20, support: null },
  },
});

const PlanParams = z.strictObject({
  id: z.string().min(1).max(64).openapi({
    param: { name: "id", in: "path" },
    description: "The plan's id or code.",
    example: "pro",
  }),
});

const Billing = z.object({
  tenant_id: z.string().openapi({ example: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  plan: PlanSchema,
  override: z.boolean().openapi({ example: false }),
  reason: z.string().nullable().openapi({ example: null }),
}).openapi("TenantBilling");

const ChangePlan = z.strictObject({
  plan_code: Code,
  override: z.boolean().openapi({ example: false }),
  reason: Text(500).nullable().optional().openapi({
    description: "Required with override.",
    example: "Upgrade agreed with sales; invoiced manually",
  }),
}).openapi("ChangePlan", { example: { plan_code: "pro", override: false } });

/** Plans made before overage billing have no meter: null. */
const planView = (p: Plan) => ({
  ...p,
  stripe_meter_event_name: p.stripe_meter_event_name ?? null,
});
const stripeUnavailable = {
  503: errorResponse("Stripe did not answer while checking `stripe_price_id`; try again later."),
};

/** The tenant's plan in the envelope, with the tenant's ETag. */
async function billing(c: Context<AppEnv>, tenant: Versioned<Tenant>) {
  const plan = await resolvePlan(c.get("svc"), tenant.value.plan);
  const data = {
    tenant_id: tenant.value.id,
    plan: plan.value,
    override: tenant.value.plan_override,
    reason: tenant.value.plan_reason,
  };
  return ok(c, data, 200, tenant.versionstamp);
}
const one = envelope(PlanSchema);
const tags = ["Plans"];

export function planRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/plans",
      tags,
      summary: "The plan catalogue (creation order)",
      request: { query: z.strictObject({ ...PageQuery, active: QueryBoolean.optional() }) },
      responses: { 200: jsonResponse(listEnvelope(PlanSchema), "A page of plans.") },
    }),
    async (c) => {
      const { active, ...page } = c.req.valid("query");
      return okList(c, await listPlans(c.get("svc"), { active }, page), page.limit, planView);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/plans",
      tags,
      summary: "Create a plan",
      description: "409 when the code is taken (codes of archived plans stay taken). With Stripe " +
        "configured, a `stripe_price_id` must name a recurring Stripe price in the plan's " +
        "currency and interval (400 otherwise).",
      request: { body: jsonBody(CreatePlan) },
      responses: { 201: jsonResponse(one, "Created."), ...stripeUnavailable },
    }),
    async (c) => {
      const input = c.req.valid("json");
      await checkPlanPrice(c.get("svc"), {
        stripe_price_id: input.stripe_price_id ?? null,
        price: input.price,
      });
      const plan = await createPlan(c.get("svc"), actorOf(c), input);
      c.header("Location", `/v1/plans/${plan.value.id}`);
      return okRecord(c, plan, planView, 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/plans/{id}",
      tags,
      summary: "Get a plan by id or code",
      request: { params: PlanParams },
      responses: { 200: jsonResponse(one, "The plan.") },
    }),
    async (c) => okRecord(c, await resolvePlan(c.get("svc"), c.req.valid("param").id), planView),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/plans/{id}",
      tags,
      summary: "Update a plan",
      description: "Takes effect for every tenant on the plan at once (verify reads the plan). " +
        "Features are merged; a null value removes one. A new `stripe_price_id` or price is " +
        "checked against Stripe, as on create.",
      request: { params: PlanParams, body: jsonBody(UpdatePlan) },
      responses: { 200: jsonResponse(one, "Updated."), ...stripeUnavailable },
    }),
    async (c) => {
      const current = await resolvePlan(c.get("svc"), c.req.valid("param").id);
      const patch = c.req.valid("json");
      if (patch.stripe_price_id !== undefined || patch.price) {
        await checkPlanPrice(c.get("svc"), {
          stripe_price_id: patch.stripe_price_id !== undefined
            ? patch.stripe_price_id
            : current.value.stripe_price_id,
          price: patch.price ?? current.value.price,
        });
      }
      const plan = await updatePlan(c.get("svc"), actorOf(c), current.value.id, patch, ifMatch(c));
      return okRecord(c, plan, planView);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/plans/{id}",
      tags,
      summary: "Archive a plan",
      description:
        "Kept for history, inactive, its code stays taken. 409 while any tenant is on it.",
      request: { params: PlanParams },
      responses: { 200: jsonResponse(one, "Archived.") },
    }),
    async (c) =>
      okRecord(
        c,
        await archivePlan(c.get("svc"), actorOf(c), c.req.valid("param").id, ifMatch(c)),
        planView,
      ),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/billing",
      tags,
      summary: "The tenant's plan",
      request: { params: TenantParams },
      responses: { 200: jsonResponse(envelope(Billing), "The plan; `ETag` is the tenant's.") },
    }),
    (c) => billing(c, c.get("tenant")),
  );

  app.openapi(
    defineRoute({
      method: "patch",
      path: "/v1/tenants/{tenant}/billing",
      tags,
      summary: "Move the tenant to another plan",
      description: "Platform staff only (a tenant's owners change plans through checkout). " +
        "The tenant's plan and so every key's limits change in one commit. `override: true` " +
        "needs a reason and is kept over what Stripe says; `override: false` on a tenant with a " +
        "Stripe subscription then moves it to the subscription's plan (answered here).",
      request: { params: TenantParams, body: jsonBody(ChangePlan) },
      responses: { 200: jsonResponse(envelope(Billing), "The new plan.") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const changed = await changePlan(
        c.get("svc"),
        actorOf(c),
        c.get("principal"),
        c.get("tenant").value,
        input,
        ifMatch(c),
      );
      // Without an override the subscription decides the plan (domain/billing/apply.ts).
      const followed = input.override
        ? null
        : await followSubscription(c.get("svc"), actorOf(c), changed.value.id);
      return await billing(c, followed ?? changed);
    },
  );

  return app;
}
