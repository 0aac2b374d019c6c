/**
 * Turning events into messages, and messages into deliveries on request. The fan-out job of an
 * event makes one message per matching enabled endpoint (the tenant's own, then the
 * platform's), each with its delivery job, in commits of a few endpoints; a marker per event
 * and endpoint makes a fan-out that is run again (its worker lost, its lease expired) skip the
 * endpoints it already served. The rest is what the API offers: a test event to one endpoint,
 * a manual retry of one message, and the recovery of an endpoint's failed messages.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { checksPerCommit } from "../../kv/open.ts";
import { conflict } from "../shared/errors.ts";
import { type DomainEvent, writeEvent } from "../audit/events.ts";
import { newId, timePrefix } from "../shared/ids.ts";
import { enqueueJob, type Job, type JobResult, runJob } from "../jobs/jobs.ts";
import { type Services } from "../shared/services.ts";
import { attemptDelivery, deliverJob, enqueueDelivery } from "./delivery.ts";
import { DELIVER_JOB, RECOVER_JOB, WEBHOOK_QUEUE } from "../jobs/names.ts";
import {
  type AttemptTrigger,
  getMessage,
  listAttempts,
  type MessageRef,
  messageTable,
  type WebhookAttempt,
  type WebhookMessage,
} from "./messages.ts";
import { getEndpoint, type WebhookEndpoint } from "./endpoints.ts";
import { iso } from "../shared/time.ts";

/** Endpoints per fan-out commit: one delivery job (one check) per endpoint; KV Connect allows 10. */
const MAX_CHUNK = 10;
/** How long a fan-out marker is kept: longer than a fan-out job can keep being retried. */
const MARKER_TTL_MS = 7 * 86_400_000;

/** The ULID of a prefixed id: ids made by one process sort in the order they were made. */
const ulidOf = (id: string) => id.slice(id.indexOf("_") + 1);

/**
 * Whether `e` takes `event`: live, enabled, of a wanted type, and made before the event (the
 * fan-out may run after the endpoint was created: it gets only what happened from then on).
 */
const wants = (e: WebhookEndpoint, event: DomainEvent) =>
  e.status === "active" && e.enabled && ulidOf(e.id) < ulidOf(event.id) &&
  (e.event_types.length === 0 || e.event_types.includes(event.type));

async function subscribers(svc: Services, event: DomainEvent): Promise<WebhookEndpoint[]> {
  const found: WebhookEndpoint[] = [];
  for (const scope of event.tenant_id ? [event.tenant_id, null] : [null]) {
    const endpoints = svc.kv.list<WebhookEndpoint>({ prefix: keys.webhookEndpoints(scope) });
    for await (const e of endpoints) if (wants(e.value, event)) found.push(e.value);
  }
  return found;
}

/** A message for `event`; its id carries the event's time, so messages list in event order. */
function newMessage(endpoint: WebhookEndpoint, event: DomainEvent, now: number): WebhookMessage {
  return {
    id: newId("msg", Date.parse(event.created_at)),
    endpoint_id: endpoint.id,
    tenant_id: endpoint.tenant_id,
    event_id: event.id,
    event_type: event.type,
    status: "pending",
    attempts: 0,
    next_attempt_at: iso(now),
    last_attempt_at: null,
    failure_reason: null,
    created_at: iso(now),
    updated_at: iso(now),
  };
}

/** Adds a message and its delivery job to `op`. */
function addMessage(
  op: Deno.AtomicOperation,
  now: number,
  message: WebhookMessage,
  trigger: AttemptTrigger,
): Job {
  op.set(messageTable(message.tenant_id, message.endpoint_id).key(message.id), message);
  return enqueueDelivery(op, now, {
    tenant_id: message.tenant_id,
    endpoint_id: message.endpoint_id,
    message_id: message.id,
    trigger,
  });
}

/** The `webhook.fanout` job: an event's messages, one per matching endpoint. */
export async function fanOutJob(svc: Services, job: Job): Promise<JobResult> {
  const eventId = job.payload.event_id as string;
  const event = (await svc.kv.get<DomainEvent>(keys.event(eventId))).value;
  if (!event) return { ok: true };
  const targets = await subscribers(svc, event);
  for (let i = 0; i < targets.length; i += MAX_CHUNK) {
    const part = targets.slice(i, i + MAX_CHUNK);
    const markers = await svc.kv.getMany<string[]>(
      part.map((e) => keys.webhookFanout(event.id, e.id)),
    );
    const now = svc.now();
    const op = svc.kv.atomic();
    part.forEach((endpoint, j) => {
      if (markers[j].versionstamp !== null) return;
      const message = newMessage(endpoint, event, now);
      op.set(markers[j].key, message.id, { expireIn: MARKER_TTL_MS });
      addMessage(op, now, message, "scheduled");
    });
    if (!(await commit(op))) return { ok: false, error: "a fan-out commit conflicted; retrying" };
  }
  return { ok: true };
}

/** Sends a `webhook.test` event to one endpoint now; returns its message and the attempt. */
export async function sendTest(
  svc: Services,
  tenantId: string | null,
  endpointId: string,
): Promise<{ message: WebhookMessage; attempt: WebhookAttempt | null }> {
  const endpoint = (await getEndpoint(svc, tenantId, endpointId)).value;
  if (!endpoint.enabled) throw conflict("the endpoint is disabled: enable it to test it");
  const now = svc.now();
  const op = svc.kv.atomic();
  const event = writeEvent(op, now, {
    type: "webhook.test",
    tenant_id: tenantId,
    data: { endpoint_id: endpoint.id, message: "A test event from Steward." },
  });
  const message = newMessage(endpoint, event, now);
  const job = addMessage(op, now, message, "manual");
  await commit(op);
  // Its first attempt runs here, in the request; a failure is retried like any other.
  await runJob(svc, { [DELIVER_JOB]: deliverJob }, job.id);
  return await withLatestAttempt(svc, {
    tenant_id: tenantId,
    endpoint_id: endpointId,
    message_id: message.id,
  });
}

async function withLatestAttempt(svc: Services, ref: MessageRef) {
  const [message, attempts] = await Promise.all([
    getMessage(svc, ref),
    listAttempts(svc, ref.tenant_id, ref.message_id, { limit: 1 }),
  ]);
  return { message: message.value, attempt: attempts.items[0]?.value ?? null };
}

/**
 * Sends one message again now, whatever its status (a manual attempt: a pending message keeps
 * its retry schedule). 409 when the endpoint is disabled.
 */
export async function retryMessage(
  svc: Services,
  ref: MessageRef,
): Promise<{ message: WebhookMessage; attempt: WebhookAttempt }> {
  const endpoint = (await getEndpoint(svc, ref.tenant_id, ref.endpoint_id)).value;
  if (!endpoint.enabled) throw conflict("the endpoint is disabled: enable it to resend");
  await getMessage(svc, ref);
  const outcome = await attemptDelivery(svc, ref, "manual", null);
  if (!outcome.attempt) throw conflict(outcome.error);
  return { message: (await getMessage(svc, ref)).value, attempt: outcome.attempt };
}

/**
 * Queues the recovery of an endpoint's failed messages of events since `since`: each is sent
 * again, with a fresh retry schedule, by a job (a long backlog resumes where it was cut off).
 */
export async function requestRecovery(
  svc: Services,
  tenantId: string | null,
  endpointId: string,
  since: number,
): Promise<Job> {
  const endpoint = (await getEndpoint(svc, tenantId, endpointId)).value;
  if (!endpoint.enabled) throw conflict("the endpoint is disabled: enable it to recover");
  const now = svc.now();
  const op = svc.kv.atomic();
  const job = enqueueJob(op, now, {
    queue: WEBHOOK_QUEUE,
    type: RECOVER_JOB,
    payload: { tenant_id: tenantId, endpoint_id: endpointId, since },
  });
  await commit(op);
  return job;
}

/** The `webhook.recover` job: failed messages since `since` back to pending, each with a job. */
export async function recoverJob(svc: Services, job: Job): Promise<JobResult> {
  const { tenant_id, endpoint_id, since } = job.payload as {
    tenant_id: string | null;
    endpoint_id: string;
    since: number;
  };
  const prefix = keys.webhookMessages(tenant_id, endpoint_id);
  const selector = { start: [...prefix, `msg_${timePrefix(since)}`], end: [...prefix, "msg_~"] };
  // Each message re-queued costs two checks: its own version and its new job.
  const chunk = Math.min(MAX_CHUNK, checksPerCommit(svc.kv) / 2);
  const requeue = (batch: Deno.KvKey[]) =>
    retrying(async () => {
      const now = svc.now();
      const op = svc.kv.atomic();
      for (const entry of await svc.kv.getMany<WebhookMessage[]>(batch)) {
        if (entry.value?.status !== "failed") continue;
        const next: WebhookMessage = {
          ...entry.value,
          status: "pending",
          next_attempt_at: iso(now),
          failure_reason: null,
          updated_at: iso(now),
        };
        op.check(entry).set(entry.key, next);
        enqueueDelivery(op, now, {
          tenant_id,
          endpoint_id,
          message_id: next.id,
          trigger: "manual",
        });
      }
      return (await commit(op)) ? null : CONFLICT;
    });
  let batch: Deno.KvKey[] = [];
  for await (const entry of svc.kv.list<WebhookMessage>(selector)) {
    if (entry.value.status !== "failed") continue;
    batch.push(entry.key);
    if (batch.length >= chunk) {
      await requeue(batch);
      batch = [];
    }
  }
  if (batch.length) await requeue(batch);
  return { ok: true };
}
