/**
 * The SMTP side of the `Mailer` port: `smtpMailer` hands messages to an SMTP server through a
 * small nodemailer pool; `capturingMailer` stands in when no server is configured. The URL is
 * parsed here (`parseSmtpUrl`) so that config.ts can check STEWARD_SMTP_URL at start-up.
 */
import type { Transporter } from "nodemailer";
import type { Mailer, OutgoingEmail, SendFailure } from "../shared/services.ts";

/** Where and how to reach an SMTP server, from `smtp://` or `smtps://` URL. */
export interface SmtpTarget {
  host: string;
  port: number;
  /** `smtps://`: TLS from the first byte (465). `smtp://` upgrades with STARTTLS when offered. */
  secure: boolean;
  /** URL-decoded credentials, or null for a server without authentication. */
  auth: { user: string; pass: string } | null;
}

/** Connection, greeting and idle-socket timeouts. */
const TIMEOUT_MS = 10_000;

/**
 * Parses `smtp://user:pass@host:port` (STARTTLS when offered, port 587 by default) or
 * `smtps://…` (implicit TLS, port 465 by default). Throws an Error naming what is wrong.
 */
export function parseSmtpUrl(url: string): SmtpTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // The URL parser's own message would echo the URL, password included.
    throw new Error("SMTP URL is not a valid URL (expected smtp://user:pass@host:port)");
  }
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") {
    throw new Error(`SMTP URL must start with smtp:// or smtps://, not ${u.protocol}//`);
  }
  const secure = u.protocol === "smtps:";
  // Non-special schemes keep IPv6 brackets in `hostname`; nodemailer wants the bare address.
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") throw new Error("SMTP URL has no host");
  const port = u.port === "" ? (secure ? 465 : 587) : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`SMTP URL has an invalid port: ${u.port}`);
  }
  if ((u.pathname !== "" && u.pathname !== "/") || u.search !== "" || u.hash !== "") {
    throw new Error("SMTP URL must not have a path, query or fragment");
  }
  let auth: SmtpTarget["auth"] = null;
  if (u.username !== "" || u.password !== "") {
    try {
      auth = { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
    } catch {
      throw new Error("SMTP URL has a badly percent-encoded user or password");
    }
    if (auth.user === "") throw new Error("SMTP URL has a password but no user");
  }
  return { host, port, secure, auth };
}

/** nodemailer's errors carry the SMTP answer and the failed command beside the message. */
interface SmtpFailure {
  message?: string;
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
}

/** An Error whose message holds the server's answer (code and text) or the connection failure. */
function smtpError(err: unknown): Error {
  const e: SmtpFailure = typeof err === "object" && err !== null ? err : { message: String(err) };
  let detail = e.message ?? "unknown error";
  if (e.response && !detail.includes(e.response)) detail += `: ${e.response}`;
  const where = [e.command, e.code].filter(Boolean).join(", ");
  const error = new Error(`SMTP send failed${where ? ` (${where})` : ""}: ${detail}`, {
    cause: err,
  });
  return Object.assign(error, { permanent: (e.responseCode ?? 0) >= 500 }) satisfies SendFailure;
}

/**
 * The name given in EHLO: the sender's domain. nodemailer's default reads os.hostname(), which
 * under Deno needs --allow-sys (and falls back to "[127.0.0.1]" without it).
 */
function ehloName(from: string): string | undefined {
  return /@([A-Za-z0-9.-]+\.[A-Za-z0-9-]+)>?\s*$/.exec(from)?.[1];
}

/**
 * A Mailer that sends through the SMTP server at `url`, over a pool of up to 2 connections.
 * `close()` closes the pool and resolves once the deliveries under way have settled.
 */
export const smtpMailer = (url: string, from: string): Mailer =>
  targetMailer(parseSmtpUrl(url), from);

/** smtpMailer for a server given by its parts (a tenant's own settings). */
export function targetMailer(target: SmtpTarget, from: string): Mailer {
  const inFlight = new Set<Promise<unknown>>();
  // nodemailer is loaded with the first message: a process that sends none never carries it.
  let transport: Promise<Transporter> | null = null;
  const pool = () =>
    transport ??= import("nodemailer").then(({ createTransport }) =>
      createTransport({
        pool: true,
        maxConnections: 2,
        name: ehloName(from),
        host: target.host,
        port: target.port,
        secure: target.secure,
        auth: target.auth ?? undefined,
        connectionTimeout: TIMEOUT_MS,
        greetingTimeout: TIMEOUT_MS,
        socketTimeout: TIMEOUT_MS,
      })
    );
  return {
    sends: true,
    from,
    async send(email: OutgoingEmail): Promise<string> {
      const sending = pool().then((t) =>
        t.sendMail({
          from: email.from,
          to: email.to,
          subject: email.subject,
          text: email.text,
          html: email.html,
          messageId: email.messageId,
        })
      );
      inFlight.add(sending);
      try {
        return (await sending).response ?? "";
      } catch (err) {
        throw smtpError(err);
      } finally {
        inFlight.delete(sending);
      }
    },
    async close(): Promise<void> {
      (await transport)?.close();
      await Promise.allSettled(inFlight);
    },
  };
}

/** The Mailer for STEWARD_SMTP_URL: through that server when set, else the development outbox. */
export const mailerFor = (url: string | undefined, from: string): Mailer =>
  url ? smtpMailer(url, from) : capturingMailer(from);

/**
 * The Mailer without an SMTP server: nothing is sent, and the outbox keeps the messages for
 * development. `send` rejects, because a caller that checks `sends` never calls it.
 */
export function capturingMailer(from: string): Mailer {
  return {
    sends: false,
    from,
    send(): Promise<string> {
      return Promise.reject(
        new Error(
          "no SMTP server is configured (STEWARD_SMTP_URL); the message stays in the outbox",
        ),
      );
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
