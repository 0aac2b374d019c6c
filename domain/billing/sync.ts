/**
 * A forced sync of one Stripe object (`POST /v1/admin/finance/sync-transaction`): fetched from
 * Stripe and applied now, as its events would be, answering what changed. What it fetches is the
 * newest state, so it is never refused as stale.
 */
import { conflict, notFound } from "../shared/errors.ts";
import type { Actor, Services } from "../shared/services.ts";
import {
  checkoutPreparer,
  commitSteps,
  customerStep,
  invoiceStep,
  nowSeconds,
  outcomeOf,
  type Prepare,
  type RecordDiff,
  type Source,
  subscriptionStep,
} from "./apply.ts";
import { askStripe, stripeFailure } from "./stripe_client.ts";
import { checkoutOf, customerOf, invoiceOf, subscriptionOf } from "./stripe_objects.ts";

export const SYNC_OBJECTS = ["subscription", "invoice", "customer", "checkout_session"] as const;
export type SyncObject = typeof SYNC_OBJECTS[number];

export interface SyncResult {
  object: SyncObject;
  id: string;
  tenant_id: string | null;
  result: "updated" | "unchanged";
  changes: RecordDiff[];
}

/** Fetches the object and works out how it applies (Stripe is asked here, once). */
async function preparerOf(
  svc: Services,
  src: Source,
  object: SyncObject,
  id: string,
): Promise<Prepare> {
  switch (object) {
    case "subscription": {
      const snap = subscriptionOf(await askStripe(svc, (c) => c.subscriptions.retrieve(id)));
      return async () => [await subscriptionStep(svc, snap, src)];
    }
    case "invoice": {
      const snap = invoiceOf(await askStripe(svc, (c) => c.invoices.retrieve(id)));
      return async () => [await invoiceStep(svc, snap, src)];
    }
    case "customer": {
      const customer = await askStripe(svc, (c) => c.customers.retrieve(id));
      if (customer.deleted) throw notFound(`Stripe customer ${id} (deleted)`);
      const snap = customerOf(customer);
      return async () => [await customerStep(svc, snap, src)];
    }
    case "checkout_session": {
      const snap = checkoutOf(await askStripe(svc, (c) => c.checkout.sessions.retrieve(id)));
      try {
        return await checkoutPreparer(svc, snap, src);
      } catch (err) {
        throw stripeFailure(err);
      }
    }
  }
}

/** Fetches `object` `id` from Stripe and applies it; 409 when it maps to no tenant. */
export async function syncObject(
  svc: Services,
  actor: Actor,
  object: SyncObject,
  id: string,
): Promise<SyncResult> {
  const src: Source = { actor, at: nowSeconds(svc), fetched: true };
  const steps = await commitSteps(svc, await preparerOf(svc, src, object, id)) ?? [];
  const outcome = outcomeOf(steps);
  if (outcome.status === "failed") throw conflict(outcome.error!);
  const changes = steps.flatMap((s) => s.changes);
  return {
    object,
    id,
    tenant_id: outcome.tenant_id,
    result: changes.length ? "updated" : "unchanged",
    changes,
  };
}
