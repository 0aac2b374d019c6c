/**
 * Delivering one message: one signed POST, recorded as an attempt in the same commit as the
 * message's new status. A 2xx within 15 s is a success; redirects are not followed. A failure
 * is retried on the schedule of domain/webhooks/schedule.ts by the message's delivery job; a 410
 * disables the endpoint; so does a failure after 5 days in which every attempt to the endpoint
 * failed. The HTTP sender, DNS and the clock come from Services, so tests inject them.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord, replace } from "../../kv/table.ts";
import type { DomainEvent } from "../audit/events.ts";
import { newId } from "../shared/ids.ts";
import { enqueueJob, type Job, type JobResult } from "../jobs/jobs.ts";
import { type Services } from "../shared/services.ts";
import {
  attemptKey,
  type AttemptTrigger,
  type MessageRef,
  messageTable,
  type WebhookAttempt,
  type WebhookMessage,
} from "./messages.ts";
import { DELIVER_JOB, WEBHOOK_QUEUE } from "../jobs/names.ts";
import {
  ATTEMPT_TIMEOUT_MS,
  DISABLE_AFTER_MS,
  MAX_ATTEMPTS,
  parseRetryAfter,
  RESPONSE_BODY_LIMIT,
  retryDelay,
} from "./schedule.ts";
import { signedHeaders } from "./signature.ts";
import { targetProblem } from "./targets.ts";
import {
  disableEndpoint,
  type EndpointHealth,
  endpointTable,
  openSecrets,
  type WebhookEndpoint,
} from "./endpoints.ts";
import { iso } from "../shared/time.ts";

const USER_AGENT = "Steward-Webhooks/1";

/** What one POST gave. */
interface Sent {
  ok: boolean;
  status: number;
  body: string;
  error: string | null;
  duration_ms: number;
  retryAfterMs: number | null;
}

/** The first `limit` bytes of a body, as text; what does not arrive is left unread. */
export async function readStart(res: Response, limit: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A body cut short (or too slow) keeps what arrived: the status already came.
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, (at += c.length) - c.length);
  return new TextDecoder().decode(bytes.subarray(0, limit));
}

const errorText = (err: unknown) =>
  err instanceof DOMException && err.name === "TimeoutError"
    ? `no answer within ${ATTEMPT_TIMEOUT_MS / 1000} s`
    : (err instanceof Error ? err.message : String(err)).slice(0, 500);

/** The Standard Webhooks body: `{ type, timestamp, data }`. */
const payloadOf = (event: DomainEvent) =>
  JSON.stringify({ type: event.type, timestamp: event.created_at, data: event.data });

async function send(
  svc: Services,
  endpoint: WebhookEndpoint,
  messageId: string,
  event: DomainEvent,
  now: number,
): Promise<Sent> {
  const started = performance.now();
  const failed = (error: string): Sent => ({
    ok: false,
    status: 0,
    body: "",
    error,
    duration_ms: Math.round(performance.now() - started),
    retryAfterMs: null,
  });
  // Checked again at each attempt: the name may resolve elsewhere than when it was saved.
  const refused = await targetProblem(svc.webhooks, endpoint.url);
  if (refused) return failed(`not sent: the url ${refused}`);
  const body = payloadOf(event);
  const secrets = await openSecrets(svc, endpoint, now);
  try {
    const res = await svc.webhooks.fetch(endpoint.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        ...signedHeaders(secrets, messageId, Math.floor(now / 1000), body),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    return {
      ok: res.status >= 200 && res.status < 300,
      status: res.status,
      body: await readStart(res, RESPONSE_BODY_LIMIT),
      error: null,
      duration_ms: Math.round(performance.now() - started),
      retryAfterMs: parseRetryAfter(res.headers.get("retry-after"), now),
    };
  } catch (err) {
    return failed(errorText(err));
  }
}

export type Outcome =
  /** Nothing was sent: the message is settled, or there is no such message. */
  | { kind: "skipped"; attempt: null; error: string }
  | { kind: "succeeded"; attempt: WebhookAttempt }
  /** Failed; the job tries again at `retryAt`. */
  | { kind: "retry"; attempt: WebhookAttempt; retryAt: number; error: string }
  /** Failed, and the message stays as it was (a manual attempt). */
  | { kind: "unchanged"; attempt: WebhookAttempt; error: string }
  /** The message is given up (attempt null when none was made: endpoint disabled, event gone). */
  | { kind: "failed"; attempt: WebhookAttempt | null; error: string };

/** Gives up on a message without an attempt (the endpoint or the event went away). */
async function giveUp(svc: Services, ref: MessageRef, reason: string): Promise<Outcome> {
  const table = messageTable(ref.tenant_id, ref.endpoint_id);
  await retrying(async () => {
    const current = await getRecord(svc.kv, table, ref.message_id);
    if (!current || current.value.status === "failed") return null;
    const now = iso(svc.now());
    const next: WebhookMessage = {
      ...current.value,
      status: "failed",
      next_attempt_at: null,
      failure_reason: reason,
      updated_at: now,
    };
    return (await commit(replace(svc.kv.atomic(), table, current, next))) ? null : CONFLICT;
  });
  return { kind: "failed", attempt: null, error: reason };
}

/**
 * Makes one attempt to deliver a message and records it. `series` is the attempt's number in
 * its delivery job (1 = the first send), which picks the wait before the next; null for a
 * manual attempt, which leaves the schedule alone.
 */
export async function attemptDelivery(
  svc: Services,
  ref: MessageRef,
  trigger: AttemptTrigger,
  series: number | null,
): Promise<Outcome> {
  const table = messageTable(ref.tenant_id, ref.endpoint_id);
  const [message, endpoint, health] = await Promise.all([
    getRecord(svc.kv, table, ref.message_id),
    getRecord(svc.kv, endpointTable(ref.tenant_id), ref.endpoint_id),
    svc.kv.get<EndpointHealth>(keys.webhookHealth(ref.tenant_id, ref.endpoint_id)),
  ]);
  if (!message) return { kind: "skipped", attempt: null, error: "no such message" };
  const m = message.value;
  // A job's first run sends whatever the message's state (an operator may have retried the job);
  // later runs only while the message still waits for them.
  if (series !== null && (m.status === "succeeded" || (m.status === "failed" && series > 1))) {
    return { kind: "skipped", attempt: null, error: `the message already ${m.status}` };
  }
  if (!endpoint || endpoint.value.status === "deleted") {
    return await giveUp(svc, ref, "the endpoint was deleted");
  }
  if (!endpoint.value.enabled) return await giveUp(svc, ref, "the endpoint is disabled");
  const event = (await svc.kv.get<DomainEvent>(keys.event(m.event_id))).value;
  if (!event) return await giveUp(svc, ref, "the event is no longer in the outbox");

  const now = svc.now();
  const sent = await send(svc, endpoint.value, m.id, event, now);
  const gone = sent.status === 410;
  const delay = sent.ok || gone || series === null
    ? null
    : retryDelay(series, sent.retryAfterMs, Math.random, svc.webhookRetry);
  const failure = sent.error ?? `the endpoint answered ${sent.status}`;

  const outcome = await retrying(async (): Promise<Outcome | typeof CONFLICT> => {
    const current = await getRecord(svc.kv, table, ref.message_id);
    if (!current) return { kind: "skipped", attempt: null, error: "no such message" };
    const before = current.value;
    let next: WebhookMessage;
    let result: Outcome["kind"];
    if (sent.ok) {
      result = "succeeded";
      next = { ...before, status: "succeeded", next_attempt_at: null, failure_reason: null };
    } else if (delay !== null) {
      result = "retry";
      next = { ...before, status: "pending", next_attempt_at: iso(now + delay) };
    } else if (series === null && !gone && before.status !== "failed") {
      // A manual attempt that failed: a pending message keeps its schedule, a delivered one
      // stays delivered.
      result = "unchanged";
      next = before;
    } else {
      result = "failed";
      next = {
        ...before,
        status: "failed",
        next_attempt_at: null,
        failure_reason: gone
          ? "the endpoint answered 410 Gone"
          : series === null
          ? before.failure_reason ?? failure
          : `all ${series} attempts failed`,
      };
    }
    next = {
      ...next,
      attempts: before.attempts + 1,
      last_attempt_at: iso(now),
      updated_at: iso(now),
    };
    const attempt: WebhookAttempt = {
      id: newId("att", now),
      message_id: m.id,
      endpoint_id: ref.endpoint_id,
      status: sent.ok ? "succeeded" : "failed",
      url: endpoint.value.url,
      response_status_code: sent.status,
      response_body: sent.body,
      error: sent.error,
      duration_ms: sent.duration_ms,
      trigger,
      created_at: iso(now),
      next_attempt_at: next.status === "pending" ? next.next_attempt_at : null,
    };
    const op = replace(svc.kv.atomic(), table, current, next)
      .set(attemptKey(attempt, ref.tenant_id), attempt);
    // The endpoint's failure streak: started by a failure, ended by a success.
    if (sent.ok && health.value) op.delete(health.key);
    if (!sent.ok && !health.value) {
      op.set(health.key, { failing_since: now } satisfies EndpointHealth);
    }
    if (!(await commit(op))) return CONFLICT;
    return result === "succeeded"
      ? { kind: "succeeded", attempt }
      : result === "retry"
      ? { kind: "retry", attempt, retryAt: now + delay!, error: failure }
      : result === "unchanged"
      ? { kind: "unchanged", attempt, error: failure }
      : { kind: "failed", attempt, error: failure };
  });

  const failingFor = health.value ? now - health.value.failing_since : 0;
  if (gone) await disableEndpoint(svc, ref.tenant_id, ref.endpoint_id, "gone");
  else if (!sent.ok && failingFor >= DISABLE_AFTER_MS) {
    await disableEndpoint(svc, ref.tenant_id, ref.endpoint_id, "failing");
  }
  return outcome;
}

/** What a delivery job carries. */
export interface DeliveryPayload extends MessageRef {
  /** The trigger of the job's first run; its retries are `scheduled`. */
  trigger: AttemptTrigger;
}

/** Adds the job that delivers a message (first attempt at `runAt`, default now) to `op`. */
export function enqueueDelivery(
  op: Deno.AtomicOperation,
  now: number,
  payload: DeliveryPayload,
  runAt = now,
): Job {
  return enqueueJob(op, now, {
    queue: WEBHOOK_QUEUE,
    type: DELIVER_JOB,
    payload: { ...payload },
    runAt,
    maxAttempts: MAX_ATTEMPTS,
  });
}

/** The `webhook.deliver` job: one attempt per run; the outcome decides whether it runs again. */
export async function deliverJob(svc: Services, job: Job): Promise<JobResult> {
  const payload = job.payload as unknown as DeliveryPayload;
  const trigger = job.attempts === 1 ? payload.trigger : "scheduled";
  const outcome = await attemptDelivery(svc, payload, trigger, job.attempts);
  switch (outcome.kind) {
    case "succeeded":
    case "skipped":
      return { ok: true };
    case "retry":
      return { ok: false, error: outcome.error, retryAt: outcome.retryAt };
    default:
      return { ok: false, error: outcome.error, dead: true };
  }
}
