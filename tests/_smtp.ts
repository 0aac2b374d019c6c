/**
 * A real SMTP server for tests (npm:smtp-server) on 127.0.0.1 and a free port: plain SMTP (no
 * STARTTLS), authentication optional or required, every message parsed with mailparser and kept
 * in `received`; `refuseNext` makes it answer the next messages' DATA with an error code.
 */
import { SMTPServer } from "smtp-server";
import { simpleParser } from "mailparser";
import type { AddressObject } from "mailparser";

/** One message as the server received and parsed it. */
export interface ReceivedMail {
  /** The SMTP envelope: MAIL FROM and RCPT TO addresses. */
  envelope: { from: string; to: string[] };
  /** The name the client gave in EHLO/HELO. */
  helo: string;
  /** The user who authenticated, or null. */
  user: string | null;
  /** The From header as text (`"Name" <a@b>` or `a@b`). */
  from: string;
  /** The To header's addresses. */
  to: string[];
  subject: string;
  text: string;
  /** The HTML part, or "" when there is none. */
  html: string;
  /** The Message-ID header, with its angle brackets. */
  messageId: string;
  /** mailparser's parsed headers, by lower-case name. */
  headers: Map<string, unknown>;
}

export interface SmtpServerOptions {
  /** Credentials the server requires; without them authentication is optional. */
  user?: string;
  pass?: string;
}

export interface TestSmtpServer extends AsyncDisposable {
  readonly port: number;
  /** `smtp://127.0.0.1:port`, with the required credentials (URL-encoded) when there are any. */
  readonly url: string;
  readonly received: ReceivedMail[];
  /** Resolves with `received` once it holds `n` messages; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Answers the next `count` messages' DATA with `code` and `text` instead of accepting them. */
  refuseNext(count: number, code: number, text?: string): void;
  /** Closes the listener and any open connection (idempotent). */
  stop(): Promise<void>;
}

interface SmtpReplyError extends Error {
  responseCode?: number;
}

function replyError(code: number, text: string): SmtpReplyError {
  return Object.assign(new Error(text), { responseCode: code });
}

const addresses = (to: AddressObject | AddressObject[] | undefined): string[] =>
  [to ?? []].flat().flatMap((a) => a.value.map((v) => v.address ?? ""));

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const required = options.user !== undefined;
  const received: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  let refusal: { count: number; code: number; text: string } | null = null;

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    authOptional: !required,
    disableReverseLookup: true,
    logger: false,
    name: "steward-test-smtp",
    onAuth(auth, _session, callback) {
      if (required && (auth.username !== options.user || auth.password !== options.pass)) {
        return callback(replyError(535, "Authentication credentials invalid"));
      }
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      if (refusal && refusal.count > 0) {
        const { code, text } = refusal;
        if (--refusal.count === 0) refusal = null;
        stream.on("end", () => callback(replyError(code, text)));
        stream.resume();
        return;
      }
      simpleParser(stream).then((mail) => {
        received.push({
          envelope: {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          helo: session.hostNameAppearsAs,
          user: typeof session.user === "string" ? session.user : null,
          from: mail.from?.text ?? "",
          to: addresses(mail.to),
          subject: mail.subject ?? "",
          text: mail.text ?? "",
          html: mail.html || "",
          messageId: mail.messageId ?? "",
          headers: mail.headers as Map<string, unknown>,
        });
        for (const wake of waiters) wake();
        callback();
      }, (err) => callback(replyError(451, `Cannot parse the message: ${err}`)));
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (address === null || typeof address === "string") throw new Error("SMTP server has no port");
  const port = address.port;
  const auth = required
    ? `${encodeURIComponent(options.user!)}:${encodeURIComponent(options.pass ?? "")}@`
    : "";

  let stopped: Promise<void> | null = null;
  const stop = () =>
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Do not wait for closeTimeout (30 s): end the sessions a client left open now.
      for (const connection of server.connections) {
        connection.send(421, "Server shutting down");
        connection.close();
      }
    });

  return {
    port,
    url: `smtp://${auth}127.0.0.1:${port}`,
    received,
    waitFor(n, timeoutMs = 5_000) {
      if (received.length >= n) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (received.length < n) return;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(received);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`waited ${timeoutMs} ms for ${n} messages, got ${received.length}`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    refuseNext(count, code, text = code >= 500 ? "Message rejected" : "Try again later") {
      refusal = count > 0 ? { count, code, text } : null;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
