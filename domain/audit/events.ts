/**
 * The domain event outbox. Each mutation writes its event in the same atomic commit as the
 * change, with the job that fans it out to the webhook endpoints that want it (ARCHITECTURE.md,
 * one mutation, one commit).
 */
import { keys } from "../../kv/keys.ts";
import { newId } from "../shared/ids.ts";
import { enqueueJob } from "../jobs/jobs.ts";
import { FANOUT_JOB, WEBHOOK_QUEUE } from "../jobs/names.ts";
import { iso } from "../shared/time.ts";

export interface DomainEvent {
  id: string;
  type: string;
  tenant_id: string | null;
  data: Record<string, unknown>;
  created_at: string;
}

/** Adds the event to the outbox only: for an event addressed to one endpoint (a test). */
export function writeEvent(
  op: Deno.AtomicOperation,
  now: number,
  event: Pick<DomainEvent, "type" | "tenant_id" | "data">,
): DomainEvent {
  const record: DomainEvent = { id: newId("evt", now), ...event, created_at: iso(now) };
  op.set(keys.event(record.id), record);
  return record;
}

/** Adds the event to the outbox, and the job that delivers it to every matching endpoint. */
export function emitEvent(
  op: Deno.AtomicOperation,
  now: number,
  event: Pick<DomainEvent, "type" | "tenant_id" | "data">,
): DomainEvent {
  const record = writeEvent(op, now, event);
  enqueueJob(op, now, { queue: WEBHOOK_QUEUE, type: FANOUT_JOB, payload: { event_id: record.id } });
  return record;
}
