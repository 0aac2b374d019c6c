/**
 * The domain event outbox. Each mutation writes its event in the same atomic commit as the
 * change (DESIGN §8); webhook delivery jobs read the outbox.
 */
import { keys } from "../kv/keys.ts";
import { newId } from "./ids.ts";
import { iso } from "./services.ts";

export interface DomainEvent {
  id: string;
  type: string;
  tenant_id: string | null;
  data: Record<string, unknown>;
  created_at: string;
}

export function emitEvent(
  op: Deno.AtomicOperation,
  now: number,
  event: Pick<DomainEvent, "type" | "tenant_id" | "data">,
): DomainEvent {
  const record: DomainEvent = { id: newId("evt", now), ...event, created_at: iso(now) };
  op.set(keys.event(record.id), record);
  return record;
}
