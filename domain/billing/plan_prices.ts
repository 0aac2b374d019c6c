/**
 * A plan's `stripe_price_id` is checked against Stripe when it is set or the plan's price
 * changes: the price must exist, be recurring, and bill in the plan's currency and interval
 * (every one month or one year), or the subscriptions it makes would not be the plan. Without
 * Stripe configured nothing is checked.
 */
import { AppError } from "../shared/errors.ts";
import type { Services } from "../shared/services.ts";
import type { Plan } from "../tenancy/plans.ts";
import { callStripe, isMissing, stripeFailure } from "./stripe_client.ts";

const refused = (message: string) =>
  new AppError("BAD_REQUEST", message, [{ path: ["stripe_price_id"], message }]);

/** 400 naming `stripe_price_id` when Stripe's price does not match the plan's. */
export async function checkPlanPrice(
  svc: Services,
  plan: { stripe_price_id: string | null; price: Plan["price"] },
): Promise<void> {
  const id = plan.stripe_price_id;
  if (!svc.stripe || !id) return;
  let price;
  try {
    price = await callStripe(svc, (c) => c.prices.retrieve(id));
  } catch (err) {
    if (isMissing(err)) throw refused(`Stripe has no price ${id}`);
    throw stripeFailure(err);
  }
  const { currency, interval } = plan.price;
  if (price.currency !== currency) {
    throw refused(`the Stripe price ${id} is in ${price.currency}, the plan in ${currency}`);
  }
  const recurring = price.recurring;
  if (!recurring || recurring.interval !== interval || recurring.interval_count !== 1) {
    const bills = recurring
      ? `every ${recurring.interval_count} ${recurring.interval}(s)`
      : "once (not recurring)";
    throw refused(`the Stripe price ${id} bills ${bills}, the plan every ${interval}`);
  }
}
