/**
 * Retention of the webhook history: outbox events, messages and their attempts older than
 * WEBHOOK_RETENTION_MS are deleted by the daily `prune-webhook-history` cron (fan-out markers
 * expire on their own, after 7 days). A message
 * still pending is kept whatever its age, and so is its event (its payload is built from it at
 * each attempt). Everything here is under time-ordered ids, so each sweep is a range per family.
 */
import { keys } from "../../kv/keys.ts";
import { deleteRange } from "../../kv/prune.ts";
import { timePrefix } from "../shared/ids.ts";
import type { Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import type { WebhookMessage } from "./messages.ts";
import type { WebhookEndpoint } from "./endpoints.ts";

/** 30 days: the window `POST …/recover` can resend from, like Svix's default retention. */
export const WEBHOOK_RETENTION_MS = 30 * 86_400_000;

export interface WebhookPruneResult {
  events_deleted: number;
  messages_deleted: number;
  attempts_deleted: number;
}

/** Every scope that can hold endpoints: the platform's, and each tenant's (deleted ones too). */
async function scopes(svc: Services): Promise<(string | null)[]> {
  const tenants: (string | null)[] = [null];
  for await (const e of svc.kv.list<Tenant>({ prefix: keys.tenants() })) tenants.push(e.value.id);
  return tenants;
}

/** Deletes the history older than `retentionMs`; returns what went. */
export async function pruneWebhookHistory(
  svc: Services,
  retentionMs = WEBHOOK_RETENTION_MS,
): Promise<WebhookPruneResult> {
  const cutoff = timePrefix(svc.now() - retentionMs);
  const result = { events_deleted: 0, messages_deleted: 0, attempts_deleted: 0 };
  /** Events of old messages still pending: their payloads are still needed. */
  const stillNeeded = new Set<string>();
  for (const tenantId of await scopes(svc)) {
    /** Old messages kept because they are still pending: their attempts stay too. */
    const pending = new Set<string>();
    for await (
      const { value: endpoint } of svc.kv.list<WebhookEndpoint>({
        prefix: keys.webhookEndpoints(tenantId),
      })
    ) {
      const messages = keys.webhookMessages(tenantId, endpoint.id);
      result.messages_deleted += await deleteRange<WebhookMessage>(
        svc.kv,
        { start: [...messages, "msg_"], end: [...messages, `msg_${cutoff}`] },
        ({ value: message }) => {
          if (message.status !== "pending") return false;
          stillNeeded.add(message.event_id);
          pending.add(message.id);
          return true;
        },
      );
    }
    // Attempts sit under their message's time-ordered id: one range per scope.
    const attempts = keys.webhookAttemptsIn(tenantId);
    result.attempts_deleted += await deleteRange(
      svc.kv,
      { start: [...attempts, "msg_"], end: [...attempts, `msg_${cutoff}`] },
      (e) => pending.has(e.key[attempts.length] as string),
    );
  }
  const before = (base: Deno.KvKey) => ({
    start: [...base, "evt_"],
    end: [...base, `evt_${cutoff}`],
  });
  result.events_deleted = await deleteRange<{ id: string }>(
    svc.kv,
    before(keys.events()),
    (e) => stillNeeded.has(e.value.id),
  );
  return result;
}
