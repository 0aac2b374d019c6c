/**
 * Every message is a record in KV (`keys.email`, by time-ordered id) written in the same commit
 * as the change that causes it, with the job that sends it on the `email` queue: a crash between
 * the change and the send loses nothing, and an SMTP server that refuses for a while gets the
 * message once it accepts (the job retries with backoff; after the last attempt the message is
 * `failed`, with the server's answer).
 *
 * The rendered text and HTML may hold a token (an invitation, a password reset): they are kept
 * sealed under the platform's data key (vault) while the message waits, and dropped once it is
 * sent, so a token is in clear only in the mail itself. Without an SMTP server (development) a
 * message is `captured` instead: kept, sealed, for 24 hours in the development outbox, where
 * GET /v1/admin/emails/{id} opens it.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import type { Versioned } from "../../kv/table.ts";
import { enqueueJob, type JobHandler } from "../jobs/jobs.ts";
import { EMAIL_QUEUE, SEND_EMAIL_JOB } from "../jobs/names.ts";
import { notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import type { KeyOwner, Sealed, SealedRecord, SendFailure, Services } from "../shared/services.ts";
import { DAY_MS, iso } from "../shared/time.ts";
import { render, type Rendered, type TemplateName, type TemplateVars } from "./templates.ts";
import { tenantMailer } from "./tenant_smtp.ts";

export type EmailStatus = "queued" | "sent" | "failed" | "captured";

export interface EmailMessage {
  id: string;
  to: string;
  from: string;
  subject: string;
  template: TemplateName;
  /** The tenant the message is about, if any. */
  tenant_id: string | null;
  status: EmailStatus;
  /** Sends tried so far. */
  attempts: number;
  /** The SMTP server's last answer, or the connection failure. */
  smtp_response: string | null;
  created_at: string;
  updated_at: string;
  sent_at: string | null;
  /** The rendered `{ text, html }`, sealed; null once sent or failed. */
  body: Sealed | null;
  /** When the record goes (stored too: expireIn is not prompt). */
  expires_at: string;
}

/** A sent or failed message's record is kept this long, without its body. */
const KEPT_MS = 7 * DAY_MS;
/** The development outbox keeps a captured message, body and all, this long. */
const CAPTURED_MS = DAY_MS;
/** Attempts before a message is failed: the last comes about 2 h 50 min after the first. */
const SEND_ATTEMPTS = 6;

const aadOf = (id: string) => `email:${id}`;
const encoder = new TextEncoder();

export interface NewEmail<T extends TemplateName> {
  to: string;
  template: T;
  vars: TemplateVars<T>;
  tenant_id?: string | null;
}

/**
 * Renders and seals a message (async: sealing is), ready for `queueEmail` to add to the commit of
 * the change that causes it.
 */
export async function composeEmail<T extends TemplateName>(
  svc: Services,
  input: NewEmail<T>,
): Promise<EmailMessage> {
  const now = svc.now();
  const id = newId("eml", now);
  const { subject, text, html } = render(svc.brand, input.template, input.vars);
  const plain = encoder.encode(JSON.stringify({ text, html }));
  // A tenant's members' mail goes through the tenant's own server, when it has one.
  const own = input.tenant_id ? await tenantMailer(svc, input.tenant_id) : null;
  await own?.close();
  const captured = !(own ?? svc.mailer).sends;
  return {
    id,
    to: input.to,
    from: (own ?? svc.mailer).from,
    subject,
    template: input.template,
    tenant_id: input.tenant_id ?? null,
    status: captured ? "captured" : "queued",
    attempts: 0,
    smtp_response: null,
    created_at: iso(now),
    updated_at: iso(now),
    sent_at: null,
    body: await svc.vault.seal(svc.kv, null, plain, aadOf(id)),
    expires_at: iso(now + (captured ? CAPTURED_MS : KEPT_MS)),
  };
}

const keptFor = (m: EmailMessage, now: number) => Math.max(1, Date.parse(m.expires_at) - now);

/** Adds the message, and (with SMTP) the job that sends it, to `op`. */
export function queueEmail(op: Deno.AtomicOperation, now: number, message: EmailMessage): void {
  op.set(keys.email(message.id), message, { expireIn: keptFor(message, now) });
  if (message.status !== "queued") return;
  enqueueJob(op, now, {
    queue: EMAIL_QUEUE,
    type: SEND_EMAIL_JOB,
    payload: { message_id: message.id },
    maxAttempts: SEND_ATTEMPTS,
  });
}

/** Composes and queues one message on its own (when no other change commits with it). */
export async function sendEmail<T extends TemplateName>(
  svc: Services,
  input: NewEmail<T>,
): Promise<EmailMessage> {
  const message = await composeEmail(svc, input);
  const op = svc.kv.atomic();
  queueEmail(op, svc.now(), message);
  await commit(op);
  return message;
}

/** The `email.send` job: hands a queued message to the SMTP server, once it accepts. */
export const sendEmailJob: JobHandler = async (svc, job) => {
  const key = keys.email(job.payload.message_id as string);
  const entry = await svc.kv.get<EmailMessage>(key);
  const message = entry.value;
  // Gone (expired) or already settled: nothing to send.
  if (!message || message.status !== "queued" || !message.body) return { ok: true };
  const { text, html } = await openBody(svc, message);
  const now = () => svc.now();
  let answer: string;
  let sent = false;
  let permanent = false;
  const own = message.tenant_id ? await tenantMailer(svc, message.tenant_id) : null;
  try {
    answer = await (own ?? svc.mailer).send({
      // The tenant's sender through its own server; the platform's otherwise.
      from: (own ?? svc.mailer).from,
      to: message.to,
      subject: message.subject,
      text,
      html,
      messageId: `<${message.id}@steward>`,
    });
    sent = true;
  } catch (err) {
    answer = err instanceof Error ? err.message : String(err);
    // A 5xx answer is permanent: retrying would be refused the same way.
    permanent = (err as Partial<SendFailure>).permanent === true;
  } finally {
    await own?.close();
  }
  const last = sent || permanent || job.attempts >= job.max_attempts;
  const next: EmailMessage = {
    ...message,
    attempts: message.attempts + 1,
    smtp_response: answer.slice(0, 1_000),
    status: sent ? "sent" : last ? "failed" : "queued",
    sent_at: sent ? iso(now()) : null,
    updated_at: iso(now()),
    body: last ? null : message.body,
    expires_at: last ? iso(now() + KEPT_MS) : message.expires_at,
  };
  // Lost to a concurrent change: the message was settled by another run; its state stands.
  await commit(svc.kv.atomic().check(entry).set(key, next, { expireIn: keptFor(next, now()) }));
  return sent ? { ok: true } : { ok: false, error: answer, dead: permanent };
};

async function openBody(svc: Services, message: EmailMessage): Promise<Omit<Rendered, "subject">> {
  const plain = await svc.vault.open(svc.kv, null, message.body!, aadOf(message.id));
  return JSON.parse(new TextDecoder().decode(plain));
}

/** Deletes every message to `to` (a GDPR erasure): their subjects and bodies name the person. */
export async function forgetRecipient(svc: Services, to: string): Promise<number> {
  let deleted = 0;
  for await (const e of svc.kv.list<EmailMessage>({ prefix: keys.emails() })) {
    if (e.value.to !== to) continue;
    await svc.kv.delete(e.key);
    deleted++;
  }
  return deleted;
}

export interface EmailFilter {
  to?: string;
  template?: TemplateName;
  status?: EmailStatus;
  tenant_id?: string;
}

const live = (m: EmailMessage, now: number) => Date.parse(m.expires_at) > now;
const matches = (f: EmailFilter, m: EmailMessage) =>
  (!f.to || m.to === f.to.toLowerCase()) && (!f.template || m.template === f.template) &&
  (!f.status || m.status === f.status) && (!f.tenant_id || m.tenant_id === f.tenant_id);

/** Messages, newest first, with their total. */
export function listEmails(
  svc: Services,
  filter: EmailFilter,
  page: PageRequest,
): Promise<Page<EmailMessage> & Counted> {
  const now = svc.now();
  return listCounted<EmailMessage>(svc.kv, {
    selector: { prefix: keys.emails() },
    filter: (m) => live(m, now) && matches(filter, m),
  }, { ...page, reverse: true });
}

/** A message, with its text and HTML while it still has them (the development outbox). */
export async function getEmail(
  svc: Services,
  id: string,
): Promise<Versioned<EmailMessage> & { rendered: Omit<Rendered, "subject"> | null }> {
  const entry = await svc.kv.get<EmailMessage>(keys.email(id));
  if (!entry.value || !live(entry.value, svc.now())) throw notFound("email");
  const rendered = entry.value.body ? await openBody(svc, entry.value) : null;
  return { value: entry.value, versionstamp: entry.versionstamp!, rendered };
}

/** Mail bodies not yet sent or dropped, as a data key rotation re-seals them (vault/reseal.ts). */
export async function* sealedMailBodies(
  kv: Deno.Kv,
  owner: KeyOwner,
  now: number,
): AsyncGenerator<SealedRecord<EmailMessage>> {
  if (owner !== null) return;
  for await (const entry of kv.list<EmailMessage>({ prefix: keys.emails() })) {
    if (!entry.value.body) continue;
    yield {
      entry,
      fields: [{ sealed: entry.value.body, aad: aadOf(entry.value.id) }],
      with: ([body]) => ({ ...entry.value, body }),
      expireIn: keptFor(entry.value, now),
    };
  }
}
