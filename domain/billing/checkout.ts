/**
 * Acting on Stripe for a tenant: a Checkout Session to subscribe to a plan, and a Billing Portal
 * session to manage what it has. Each tenant has one Stripe customer, created on its first
 * checkout with `metadata.tenant_id` (as are the session and the subscription it makes, so their
 * events find the tenant) and reused after.
 */
import { keys } from "../../kv/keys.ts";
import { AppError, conflict } from "../shared/errors.ts";
import type { Actor, Services } from "../shared/services.ts";
import { getPlanByCode } from "../tenancy/plans.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { commitSteps, linkStep, outcomeOf } from "./apply.ts";
import { hasEnded, tenantSubscription } from "./stripe_records.ts";
import { askStripe, stripeOf } from "./stripe_client.ts";

export interface CheckoutRequest {
  plan_code: string;
  success_url: string;
  cancel_url: string;
}

const badPlan = (message: string) =>
  new AppError("BAD_REQUEST", message, [{ path: ["plan_code"], message }]);

/** The tenant's Stripe customer: the one it has, or a new one (created once, even by two calls). */
export async function ensureCustomer(svc: Services, actor: Actor, tenant: Tenant): Promise<string> {
  const known = await svc.kv.get<string>(keys.tenantStripeCustomer(tenant.id));
  if (known.value) return known.value;
  const customer = await askStripe(svc, (c) =>
    c.customers.create(
      { name: tenant.name, metadata: { tenant_id: tenant.id, tenant_slug: tenant.slug } },
      // Two first checkouts at once get the same customer from Stripe.
      { idempotencyKey: `steward-customer-${tenant.id}` },
    ));
  const steps = await commitSteps(
    svc,
    () => Promise.all([linkStep(svc, actor, tenant.id, customer.id)]),
  );
  const outcome = outcomeOf(steps ?? []);
  if (outcome.status === "failed") throw conflict(outcome.error!);
  const linked = await svc.kv.get<string>(keys.tenantStripeCustomer(tenant.id));
  return linked.value ?? customer.id;
}

/** A Checkout Session subscribing the tenant to `plan_code`'s Stripe price: its URL and id. */
export async function startCheckout(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  input: CheckoutRequest,
): Promise<{ url: string; id: string }> {
  stripeOf(svc);
  const plan = await getPlanByCode(svc, input.plan_code);
  if (!plan || !plan.value.active) throw badPlan(`no active plan with code "${input.plan_code}"`);
  const price = plan.value.stripe_price_id;
  if (!price) throw badPlan(`the plan "${input.plan_code}" has no Stripe price`);
  const current = (await tenantSubscription(svc, tenant.id))?.value;
  if (current && !hasEnded(current)) {
    throw conflict(
      `the tenant already has a subscription (${current.subscription_id}, ${current.status}): ` +
        "change it in the billing portal",
    );
  }
  const customer = await ensureCustomer(svc, actor, tenant);
  const metadata = { tenant_id: tenant.id };
  const session = await askStripe(svc, (c) =>
    c.checkout.sessions.create({
      mode: "subscription",
      customer,
      line_items: [{ price, quantity: 1 }],
      success_url: input.success_url,
      cancel_url: input.cancel_url,
      client_reference_id: tenant.id,
      metadata,
      subscription_data: { metadata: { ...metadata, plan_code: plan.value.code } },
    }));
  if (!session.url) throw new AppError("UNAVAILABLE", "Stripe answered a session without a URL");
  return { url: session.url, id: session.id };
}

/** A Billing Portal session for the tenant's customer; 409 before its first checkout. */
export async function openPortal(
  svc: Services,
  tenant: Tenant,
  returnUrl: string,
): Promise<{ url: string }> {
  stripeOf(svc);
  const customer = (await svc.kv.get<string>(keys.tenantStripeCustomer(tenant.id))).value;
  if (!customer) throw conflict("the tenant has no Stripe customer yet: start with a checkout");
  const session = await askStripe(
    svc,
    (c) => c.billingPortal.sessions.create({ customer, return_url: returnUrl }),
  );
  return { url: session.url };
}
