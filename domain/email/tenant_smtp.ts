/**
 * A tenant's own SMTP server (its secret `smtp`, vault/secrets.ts): the mailer its members' mail
 * goes through (outbox.ts), and the test message that shows its settings work. The tenant names the host, so it must pass the address rules webhook
 * targets do (webhooks/targets.ts): public addresses only, unless WEBHOOK_ALLOW_PRIVATE_URLS.
 * Otherwise a tenant could make Steward probe its own network and read the answers.
 */
import { conflict } from "../shared/errors.ts";
import type { Actor, Mailer, Services } from "../shared/services.ts";
import { tenantSmtp } from "../vault/secrets.ts";
import { targetProblem } from "../webhooks/targets.ts";
import { targetMailer } from "./smtp.ts";
import { render } from "./templates.ts";

export interface SmtpTestOutcome {
  sent: boolean;
  to: string;
  from: string;
  host: string;
  port: number;
  /** The server's answer to the message (`250 …`) when it was accepted. */
  response: string | null;
  /** Why it was not sent: the server's answer, the connection failure or a refused address. */
  error: string | null;
}

/** The address of a `Name <addr>` or bare `addr` sender. */
const addressOf = (from: string) => /<([^<>]+)>\s*$/.exec(from)?.[1] ?? from.trim();

/** Why Steward must not connect to `host`, or null (the webhook rules, on a URL naming it). */
const hostProblem = (svc: Services, host: string) =>
  targetProblem(svc.webhooks, `https://${host.includes(":") ? `[${host}]` : host}/`);

/**
 * The mailer of the tenant's own SMTP server, sending as its `from`; null when the tenant has no
 * `smtp` secret or its host is refused (then the platform's mailer sends). Close it after use.
 */
export async function tenantMailer(svc: Services, tenantId: string): Promise<Mailer | null> {
  const smtp = await tenantSmtp(svc, tenantId);
  if (!smtp || await hostProblem(svc, smtp.host)) return null;
  return targetMailer({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    auth: { user: smtp.username, pass: smtp.password },
  }, smtp.from);
}

/**
 * Sends a test message through the tenant's SMTP server, to `to` or else to its own sender
 * address; 409 when the tenant has no `smtp` secret. A failure is reported, not thrown.
 */
export async function sendTenantSmtpTest(
  svc: Services,
  actor: Actor,
  tenantId: string,
  to?: string,
): Promise<SmtpTestOutcome> {
  const smtp = await tenantSmtp(svc, tenantId);
  if (!smtp) throw conflict("the tenant has no smtp secret: create one named smtp first");
  const outcome = {
    to: to ?? addressOf(smtp.from),
    from: smtp.from,
    host: smtp.host,
    port: smtp.port,
  };
  const problem = await hostProblem(svc, smtp.host);
  if (problem) return { ...outcome, sent: false, response: null, error: `host ${problem}` };
  const mailer = targetMailer({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    auth: { user: smtp.username, pass: smtp.password },
  }, smtp.from);
  const message = render(svc.brand, "test", { sent_by: actor.id });
  const domain = addressOf(smtp.from).split("@")[1] ?? "steward";
  try {
    const response = await mailer.send({
      ...message,
      from: smtp.from,
      to: outcome.to,
      messageId: `<${crypto.randomUUID()}@${domain}>`,
    });
    return { ...outcome, sent: true, response, error: null };
  } catch (err) {
    return { ...outcome, sent: false, response: null, error: (err as Error).message };
  } finally {
    await mailer.close();
  }
}
