/**
 * Receiving Stripe: `POST /v1/stripe/webhook` verifies the signature over the raw body, stores the
 * event by id with what it carries and the job that applies it, in one commit, and answers at once.
 * A redelivery of a known id changes nothing; a crash after the commit loses nothing (the job runs
 * when the runner next sweeps). The job (`stripe.apply`) applies the event (apply.ts), retrying
 * while Stripe fails.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { enqueueJob, type Job, type JobResult } from "../jobs/jobs.ts";
import { BILLING_QUEUE, STRIPE_APPLY_JOB } from "../jobs/names.ts";
import { AppError } from "../shared/errors.ts";
import type { Services } from "../shared/services.ts";
import { DAY_MS, dayOf, iso } from "../shared/time.ts";
import { commitSteps, eventPreparer, markEventFailed, outcomeOf } from "./apply.ts";
import type { StripeEventRecord } from "./model.ts";
import { HANDLED_EVENTS, type StripeSnapshot } from "./stripe_objects.ts";
import { isStripeError, isTransient, noteSync, STRIPE_CRYPTO, stripeOf } from "./stripe_client.ts";

/** Attempts of an event's job: Stripe down for about a day and a half is waited out. */
const APPLY_ATTEMPTS = 10;

export interface Receipt {
  id: string;
  type: string;
  /** A redelivery of an event already stored: nothing was done. */
  duplicate: boolean;
}

/** Counts a delivery refused for its signature, by UTC day (the sync status reports them). */
async function countSignatureFailure(svc: Services) {
  const key = keys.stripeSignatureFailures(dayOf(svc.now()));
  await commit(svc.kv.atomic().sum(key, 1n));
}

/** What the event carries as applying reads it; an object it cannot read fails the event. */
function readObject(
  type: string,
  object: unknown,
): { snapshot: StripeSnapshot | null; error: string | null } {
  const read = HANDLED_EVENTS[type];
  if (!read) return { snapshot: null, error: null };
  try {
    return { snapshot: read(object), error: null };
  } catch (err) {
    return { snapshot: null, error: `unreadable ${type} object: ${(err as Error).message}` };
  }
}

/**
 * Verifies and stores one delivery. 400 for a bad or stale signature (counted); 409 when Stripe
 * is not configured.
 */
export async function receiveStripeEvent(
  svc: Services,
  payload: string,
  signature: string | null,
): Promise<Receipt> {
  if (!signature) {
    if (svc.stripe) await countSignatureFailure(svc);
    throw new AppError("BAD_REQUEST", "the Stripe-Signature header is missing", [
      { path: ["header", "stripe-signature"], message: "required" },
    ]);
  }
  const stripe = stripeOf(svc);
  let event;
  try {
    event = await stripe.client.webhooks.constructEventAsync(
      payload,
      signature,
      stripe.webhookSecret,
      undefined,
      STRIPE_CRYPTO,
      // The clock Steward runs on judges a signature's age (5 minutes at most).
      svc.now(),
    );
  } catch (err) {
    if (err instanceof SyntaxError) throw new AppError("BAD_REQUEST", "the body is not JSON");
    await countSignatureFailure(svc);
    const why = (err as Error).message.split("\n")[0].slice(0, 300);
    throw new AppError("BAD_REQUEST", `the Stripe-Signature does not verify: ${why}`);
  }

  const now = svc.now();
  const object = event.data.object as { id?: string };
  const { snapshot, error } = readObject(event.type, event.data.object);
  const record: StripeEventRecord = {
    id: event.id,
    type: event.type,
    created: event.created,
    received_at: iso(now),
    status: snapshot ? "queued" : error ? "failed" : "ignored",
    tenant_id: null,
    object_id: typeof object?.id === "string" ? object.id : null,
    error,
    processed_at: snapshot ? null : iso(now),
  };
  const op = svc.kv.atomic()
    .check({ key: keys.stripeEvent(record.id), versionstamp: null })
    .set(keys.stripeEvent(record.id), record)
    .set(keys.stripeEventByTime(record.received_at, record.id), record.id);
  if (snapshot) {
    op.set(keys.stripeEventObject(record.id), snapshot);
    enqueueJob(op, now, {
      queue: BILLING_QUEUE,
      type: STRIPE_APPLY_JOB,
      payload: { event_id: record.id },
      maxAttempts: APPLY_ATTEMPTS,
    });
  }
  const stored = await commit(op);
  await noteSync(svc, "last_event_at");
  return { id: record.id, type: record.type, duplicate: !stored };
}

/**
 * Applies one stored event (what the job does). Returns why it failed, or null: applied, stale,
 * ignored, or no longer pending.
 */
export async function applyStoredEvent(svc: Services, eventId: string): Promise<string | null> {
  const [event, object] = await svc.kv.getMany<[StripeEventRecord, StripeSnapshot]>([
    keys.stripeEvent(eventId),
    keys.stripeEventObject(eventId),
  ]);
  if (!event.value || !["queued", "failed"].includes(event.value.status)) return null;
  if (!object.value) {
    const error = "what the event carried is no longer stored";
    await markEventFailed(svc, eventId, error);
    return error;
  }
  const prepare = await eventPreparer(svc, event.value, object.value);
  const outcome = outcomeOf(await commitSteps(svc, prepare, eventId) ?? []);
  return outcome.status === "failed" ? outcome.error : null;
}

/**
 * The `stripe.apply` job. Stripe unreachable or failing: tried again later (the event stays
 * queued, and fails when the attempts run out). An event that fails (no tenant, refused by
 * Stripe) ends its job dead with the same error: an operator retries it once the cause is fixed.
 */
export async function stripeApplyJob(svc: Services, job: Job): Promise<JobResult> {
  const eventId = String(job.payload.event_id);
  let error: string | null;
  try {
    error = await applyStoredEvent(svc, eventId);
  } catch (err) {
    // Anything but Stripe's answer (the store failing, a bug) is the runner's to retry.
    if (!isStripeError(err)) throw err;
    error = `Stripe: ${err.message}`.slice(0, 500);
    if (isTransient(err) && job.attempts < job.max_attempts) return { ok: false, error };
    await markEventFailed(svc, eventId, error);
  }
  return error ? { ok: false, error, dead: true } : { ok: true };
}

/** How long a received event is kept: Stripe redelivers for 3 days, the sync status reads 24 h. */
export const STRIPE_EVENT_KEEP_DAYS = 90;

/**
 * Deletes the events received more than STRIPE_EVENT_KEEP_DAYS ago, but those still queued or
 * failed (an operator's to look at); returns how many went.
 */
export async function pruneStripeEvents(svc: Services): Promise<number> {
  const before = iso(svc.now() - STRIPE_EVENT_KEEP_DAYS * DAY_MS);
  let deleted = 0;
  const old = svc.kv.list<string>({
    start: keys.stripeEventsByTime(),
    end: [...keys.stripeEventsByTime(), before],
  });
  for await (const pointer of old) {
    const event = await svc.kv.get<StripeEventRecord>(keys.stripeEvent(pointer.value));
    if (event.value && ["queued", "failed"].includes(event.value.status)) continue;
    const op = svc.kv.atomic().check(event).delete(pointer.key).delete(
      keys.stripeEvent(pointer.value),
    )
      .delete(keys.stripeEventObject(pointer.value));
    if (await commit(op)) deleted++;
  }
  return deleted;
}
