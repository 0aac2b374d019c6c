/**
 * Billing on Stripe over HTTP: the webhook receiver (public, signature-checked), a tenant's
 * checkout and billing portal, its subscription, and the operators' forced sync and
 * reconciliation. Without Stripe configured each answers 409 (the subscription, a stored record,
 * still reads).
 */
import { z } from "@hono/zod-openapi";
import { openPortal, startCheckout } from "../../domain/billing/checkout.ts";
import { startReconcile } from "../../domain/billing/reconcile.ts";
import { receiveStripeEvent } from "../../domain/billing/stripe_events.ts";
import { STRIPE_EVENT_TYPES } from "../../domain/billing/stripe_objects.ts";
import { tenantSubscription } from "../../domain/billing/stripe_records.ts";
import { SYNC_OBJECTS, syncObject } from "../../domain/billing/sync.ts";
import { notFound } from "../../domain/shared/errors.ts";
import { actorOf, ok, okRecord } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import { envelope, jsonBody, jsonResponse, TenantParams } from "../schemas.ts";
import { SubscriptionSchema } from "./finance_schemas.ts";

const tags = ["Billing"];
const TENANT_ID = "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const unavailable = { 503: errorResponse("Stripe did not answer, or failed; try again later.") };

const Received = z.object({
  id: z.string().openapi({ example: "evt_1Pgc76B7WZ01zgkWwyRHS12y" }),
  type: z.string().openapi({ example: "customer.subscription.updated" }),
  duplicate: z.boolean().openapi({
    description: "The event was stored before (a redelivery): nothing was done.",
    example: false,
  }),
}).openapi("StripeEventReceipt");

const WebUrl = (example: string) =>
  z.string().max(2048).regex(/^https?:\/\/\S+$/, "an http(s) URL").openapi({ example });

const Checkout = z.strictObject({
  plan_code: z.string().regex(/^[a-z][a-z0-9_-]{1,31}$/, "a plan code").openapi({
    description: "An active plan with a `stripe_price_id`.",
    example: "pro",
  }),
  success_url: WebUrl("https://app.acme.test/billing/done?session={CHECKOUT_SESSION_ID}"),
  cancel_url: WebUrl("https://app.acme.test/billing"),
}).openapi("BillingCheckout", {
  example: {
    plan_code: "pro",
    success_url: "https://app.acme.test/billing/done?session={CHECKOUT_SESSION_ID}",
    cancel_url: "https://app.acme.test/billing",
  },
});

const CheckoutSession = z.object({
  id: z.string().openapi({ example: "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd" }),
  url: z.string().openapi({
    description: "Send the tenant's owner here to pay.",
    example: "https://checkout.stripe.com/c/pay/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQ",
  }),
}).openapi("CheckoutSession");

const Portal = z.strictObject({
  return_url: WebUrl("https://app.acme.test/billing"),
}).openapi("BillingPortalRequest", { example: { return_url: "https://app.acme.test/billing" } });

const PortalSession = z.object({
  url: z.string().openapi({
    description: "Send the tenant's owner here to manage the subscription and its invoices.",
    example: "https://billing.stripe.com/p/session/test_YWNjdF8xUGdhZlRCN1daMDF6",
  }),
}).openapi("BillingPortalSession");

const SYNC_PREFIX = { subscription: "sub", invoice: "in", customer: "cus", checkout_session: "cs" };

const Sync = z.strictObject({
  object: z.enum(SYNC_OBJECTS).openapi({ example: "subscription" }),
  id: z.string().regex(/^[a-z]{2,4}_[A-Za-z0-9_]{1,250}$/, "a Stripe id").openapi({
    description: "The object's Stripe id: `sub_…`, `in_…`, `cus_…` or `cs_…`.",
    example: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
  }),
}).refine((b) => b.id.startsWith(`${SYNC_PREFIX[b.object]}_`), {
  path: ["id"],
  message: "the id is not of that object (sub_, in_, cus_ or cs_)",
}).openapi("StripeSyncRequest", {
  example: { object: "subscription", id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw" },
});

const RecordState = z.record(z.string(), z.unknown());
const SyncResult = z.object({
  object: z.enum(SYNC_OBJECTS).openapi({ example: "subscription" }),
  id: z.string().openapi({ example: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw" }),
  tenant_id: z.string().nullable().openapi({ example: TENANT_ID }),
  result: z.enum(["updated", "unchanged"]).openapi({ example: "updated" }),
  changes: z.array(z.object({
    record: z.enum(["subscription", "invoice", "customer"]).openapi({ example: "subscription" }),
    id: z.string().openapi({ example: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw" }),
    before: RecordState.nullable().openapi({
      description: "The record before (null: Steward had none).",
      example: { status: "active", plan_code: "starter", mrr: 8333 },
    }),
    after: RecordState.openapi({
      description: "The record as Stripe says it now.",
      example: { status: "active", plan_code: "growth", mrr: 20833 },
    }),
  })).openapi({ description: "What changed; empty when Steward already agreed with Stripe." }),
}).openapi("StripeSyncResult");

const Counts = z.object({
  matched: z.number().int().openapi({ example: 0 }),
  fixed: z.number().int().openapi({ example: 0 }),
  overridden: z.number().int().openapi({ example: 0 }),
  missing_in_steward: z.number().int().openapi({ example: 0 }),
  missing_in_stripe: z.number().int().openapi({ example: 0 }),
  unmapped: z.number().int().openapi({
    description: "Stripe subscriptions that belong to no tenant.",
    example: 0,
  }),
});

const Reconciliation = z.object({
  job_id: z.string().openapi({ example: "job_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  progress: z.object({
    done: z.number().int().openapi({ example: 0 }),
    total: z.number().int().openapi({ example: 0 }),
  }),
  counts: Counts,
}).openapi("StripeReconciliation");

export function stripeRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/stripe/webhook",
      tags,
      summary: "Receive a Stripe event",
      description: "Stripe's webhook endpoint. The signature (`Stripe-Signature`, over the raw " +
        "body, at most 5 minutes old) is checked with STRIPE_WEBHOOK_SECRET: a bad or stale one " +
        "is 400, and counted. The event is stored by id with the job that applies it, and " +
        "answered at once; a redelivery changes nothing. Applied: " +
        STRIPE_EVENT_TYPES.map((t) => `\`${t}\``).join(", ") + "; other types are stored and " +
        "marked ignored.",
      parameters: [{
        name: "Stripe-Signature",
        in: "header",
        required: true,
        schema: { type: "string", minLength: 1 },
        description: "Stripe's signature of the body: `t=<timestamp>,v1=<hmac>`.",
      }],
      responses: {
        200: jsonResponse(envelope(Received), "Stored (or stored before); applied by a job."),
      },
    }),
    async (c) => {
      const signature = c.req.header("Stripe-Signature") ?? null;
      const receipt = await receiveStripeEvent(c.get("svc"), await c.req.text(), signature);
      return ok(c, receipt);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/billing/checkout",
      tags,
      summary: "Start a Stripe Checkout for a plan",
      description: "A Checkout Session that subscribes the tenant to the plan's Stripe price. " +
        "The tenant's Stripe customer is created on its first checkout and reused after; the " +
        "customer, the session and the subscription carry `metadata.tenant_id`. 409 while the " +
        "tenant has a subscription that has not ended (change it in the billing portal).",
      request: { params: TenantParams, body: jsonBody(Checkout) },
      responses: {
        201: jsonResponse(envelope(CheckoutSession), "Send the owner to `url`."),
        ...unavailable,
      },
    }),
    async (c) => {
      const session = await startCheckout(
        c.get("svc"),
        actorOf(c),
        c.get("tenant").value,
        c.req.valid("json"),
      );
      return ok(c, session, 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/tenants/{tenant}/billing/portal",
      tags,
      summary: "Open the Stripe billing portal",
      description: "A Billing Portal session for the tenant's Stripe customer: its " +
        "subscription, payment methods and invoices. 409 before the tenant's first checkout.",
      request: { params: TenantParams, body: jsonBody(Portal) },
      responses: {
        201: jsonResponse(envelope(PortalSession), "Send the owner to `url`."),
        ...unavailable,
      },
    }),
    async (c) => {
      const { return_url } = c.req.valid("json");
      return ok(c, await openPortal(c.get("svc"), c.get("tenant").value, return_url), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/tenants/{tenant}/subscription",
      tags,
      summary: "The tenant's subscription",
      description: "As Stripe last told it (events, syncs); 404 when the tenant has none.",
      request: { params: TenantParams },
      responses: { 200: jsonResponse(envelope(SubscriptionSchema), "The subscription.") },
    }),
    async (c) => {
      const subscription = await tenantSubscription(c.get("svc"), c.get("tenant").value.id);
      if (!subscription) throw notFound("subscription");
      return okRecord(c, subscription, (s) => s);
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/finance/sync-transaction",
      tags,
      summary: "Sync one Stripe object now",
      description: "Fetches a subscription, invoice, customer or checkout session from Stripe " +
        "and applies it at once, as its events would be (the tenant's plan follows, unless " +
        "overridden). Answers each record changed, before and after. 404 when Stripe has no such " +
        "object; 409 when it belongs to no tenant.",
      request: { body: jsonBody(Sync) },
      responses: { 200: jsonResponse(envelope(SyncResult), "Applied."), ...unavailable },
    }),
    async (c) => {
      const { object, id } = c.req.valid("json");
      return ok(c, await syncObject(c.get("svc"), actorOf(c), object, id));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/finance/reconcile",
      tags,
      summary: "Reconcile every subscription with Stripe",
      description: "A job (queue `billing`) that pages through every Stripe subscription and " +
        "fixes what differs, then checks each record Stripe did not list; " +
        "`GET /v1/admin/system/jobs/{id}` shows its progress and, in its payload, the counts. " +
        "The audit event `billing.reconciled` reports them at the end. 409 while one runs.",
      responses: { 202: jsonResponse(envelope(Reconciliation), "The job is queued.") },
    }),
    async (c) => {
      const job = await startReconcile(c.get("svc"), actorOf(c));
      return ok(c, {
        job_id: job.id,
        progress: job.progress ?? { done: 0, total: 0 },
        counts: job.payload.counts as z.infer<typeof Counts>,
      }, 202);
    },
  );

  return app;
}
