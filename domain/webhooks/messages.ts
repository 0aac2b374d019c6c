/**
 * Webhook messages and their attempts. A message is one event for one endpoint; its id is the
 * `webhook-id` a receiver sees on every attempt, so a receiver deduplicates on it. The payload
 * is not copied: it is built from the event in the outbox at each attempt (so a GDPR erasure of
 * the outbox reaches messages still being retried too). Every attempt is recorded with what
 * came back.
 */
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { getRecord, type Table, type Versioned } from "../../kv/table.ts";
import { notFound } from "../shared/errors.ts";

/** pending: waiting for its next attempt; succeeded: one attempt got a 2xx; failed: given up. */
export type MessageStatus = "pending" | "succeeded" | "failed";
export const MESSAGE_STATUSES: readonly MessageStatus[] = ["pending", "succeeded", "failed"];

/** `scheduled`: the first send and its retries; `manual`: asked for (retry, recover, test). */
export type AttemptTrigger = "scheduled" | "manual";

export interface WebhookMessage {
  id: string;
  endpoint_id: string;
  /** The endpoint's scope (null: a platform endpoint). */
  tenant_id: string | null;
  event_id: string;
  event_type: string;
  status: MessageStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  /** Why it was given up (retries spent, endpoint gone or disabled); null otherwise. */
  failure_reason: string | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookAttempt {
  id: string;
  message_id: string;
  endpoint_id: string;
  status: "succeeded" | "failed";
  url: string;
  /** 0 when no HTTP answer came back (refused address, network error, timeout). */
  response_status_code: number;
  /** The first 4 KiB of the answer. */
  response_body: string;
  /** Why there was no answer, or null. */
  error: string | null;
  duration_ms: number;
  trigger: AttemptTrigger;
  created_at: string;
  /** When the message is tried again after this attempt; null when it is not. */
  next_attempt_at: string | null;
}

/** What a delivery job and the routes name a message by. */
export interface MessageRef {
  tenant_id: string | null;
  endpoint_id: string;
  message_id: string;
}

export const messageTable = (
  tenantId: string | null,
  endpointId: string,
): Table<WebhookMessage> => ({
  key: (id) => keys.webhookMessage(tenantId, endpointId, id),
});

export const attemptKey = (a: Pick<WebhookAttempt, "message_id" | "id">, tenantId: string | null) =>
  keys.webhookAttempt(tenantId, a.message_id, a.id);

export async function getMessage(
  svc: { kv: Deno.Kv },
  ref: MessageRef,
): Promise<Versioned<WebhookMessage>> {
  const found = await getRecord(
    svc.kv,
    messageTable(ref.tenant_id, ref.endpoint_id),
    ref.message_id,
  );
  if (!found) throw notFound("message");
  return found;
}

export interface MessageFilter {
  status?: MessageStatus;
  event_type?: string;
}

/** The endpoint's messages, newest event first. */
export function listMessages(
  svc: { kv: Deno.Kv },
  tenantId: string | null,
  endpointId: string,
  filter: MessageFilter,
  page: PageRequest,
): Promise<Page<WebhookMessage> & Counted> {
  return listCounted<WebhookMessage>(svc.kv, {
    selector: { prefix: keys.webhookMessages(tenantId, endpointId) },
    filter: (m) =>
      (!filter.status || m.status === filter.status) &&
      (!filter.event_type || m.event_type === filter.event_type),
  }, { ...page, reverse: true });
}

/** A message's attempts, newest first. */
export function listAttempts(
  svc: { kv: Deno.Kv },
  tenantId: string | null,
  messageId: string,
  page: PageRequest,
): Promise<Page<WebhookAttempt> & Counted> {
  return listCounted<WebhookAttempt>(svc.kv, {
    selector: { prefix: keys.webhookAttempts(tenantId, messageId) },
  }, { ...page, reverse: true });
}
