/**
 * The SMTP Mailer (domain/email/smtp.ts) against a real SMTP server on 127.0.0.1 (tests/_smtp.ts):
 * what arrives, authentication, refusals, an unreachable server; and the URL parser.
 */
import assert from "node:assert/strict";
import { capturingMailer, parseSmtpUrl, smtpMailer } from "../../domain/email/smtp.ts";
import type { OutgoingEmail } from "../../domain/shared/services.ts";
import { startSmtpServer } from "../_smtp.ts";

const FROM = "Steward <no-reply@steward.test>";

function email(overrides: Partial<OutgoingEmail> = {}): OutgoingEmail {
  return {
    from: FROM,
    to: "ada@example.com",
    subject: "Welcome",
    text: "Hello Ada",
    html: "<p>Hello <b>Ada</b></p>",
    messageId: `<${crypto.randomUUID()}@steward.test>`,
    ...overrides,
  };
}

Deno.test("smtp: a message arrives with its sender, recipient, UTF-8 subject, text and HTML", async () => {
  await using server = await startSmtpServer();
  const mailer = smtpMailer(server.url, FROM);
  try {
    assert.equal(mailer.sends, true);
    assert.equal(mailer.from, FROM);
    const sent = email({
      subject: "Bienvenue, Zoë — ваш аккаунт готов ✉️",
      text: "Bonjour Zoë,\nvotre compte est prêt.",
      html: "<p>Bonjour <b>Zoë</b>, votre compte est prêt.</p>",
    });
    const answer = await mailer.send(sent);
    assert.match(answer, /^250\b/);

    const [got] = await server.waitFor(1);
    assert.equal(got.from, '"Steward" <no-reply@steward.test>');
    assert.deepEqual(got.to, ["ada@example.com"]);
    assert.deepEqual(got.envelope, { from: "no-reply@steward.test", to: ["ada@example.com"] });
    assert.equal(got.subject, sent.subject);
    assert.equal(got.text.trim(), sent.text);
    assert.equal(got.html.trim(), sent.html);
    assert.equal(got.messageId, sent.messageId);
    assert.equal(got.user, null);
    assert.equal(got.helo, "steward.test");
  } finally {
    await mailer.close();
  }
});

Deno.test("smtp: two messages in a row share the pool", async () => {
  await using server = await startSmtpServer();
  const mailer = smtpMailer(server.url, FROM);
  try {
    await Promise.all([
      mailer.send(email({ to: "a@example.com" })),
      mailer.send(email({ to: "b@example.com" })),
      mailer.send(email({ to: "c@example.com" })),
    ]);
    const got = await server.waitFor(3);
    assert.deepEqual(got.flatMap((m) => m.to).sort(), [
      "a@example.com",
      "b@example.com",
      "c@example.com",
    ]);
  } finally {
    await mailer.close();
  }
});

Deno.test("smtp: close() resolves once the sends under way have settled", async () => {
  await using server = await startSmtpServer();
  const mailer = smtpMailer(server.url, FROM);
  await mailer.send(email()); // an open connection in the pool
  let settled = false;
  // Not yet on a connection when the pool closes, it fails ("pool was closed"): the outbox retries.
  const sending = mailer.send(email()).then(() => true, () => false).finally(() => settled = true);
  await mailer.close();
  assert.equal(settled, true);
  const delivered = await sending;
  assert.equal(server.received.length, delivered ? 2 : 1);
  await assert.rejects(mailer.send(email()), /Connection pool was closed/);
});

Deno.test("smtp: the URL's user and password authenticate; a wrong password is refused", async () => {
  await using server = await startSmtpServer({ user: "mail@steward.test", pass: "p@ss:w/rd" });
  assert.match(server.url, /^smtp:\/\/mail%40steward\.test:p%40ss%3Aw%2Frd@127\.0\.0\.1:\d+$/);

  const good = smtpMailer(server.url, FROM);
  try {
    assert.match(await good.send(email()), /^250\b/);
    const [got] = await server.waitFor(1);
    assert.equal(got.user, "mail@steward.test");
  } finally {
    await good.close();
  }

  const bad = smtpMailer(`smtp://mail%40steward.test:wrong@127.0.0.1:${server.port}`, FROM);
  try {
    await assert.rejects(bad.send(email()), (err: Error) => {
      assert.match(err.message, /535/);
      assert.match(err.message, /Authentication credentials invalid/);
      return true;
    });
  } finally {
    await bad.close();
  }

  const anonymous = smtpMailer(`smtp://127.0.0.1:${server.port}`, FROM);
  try {
    await assert.rejects(anonymous.send(email()), /530/);
  } finally {
    await anonymous.close();
  }
  assert.equal(server.received.length, 1);
});

Deno.test("smtp: a 451 refusal rejects with the server's answer; the next send succeeds", async () => {
  await using server = await startSmtpServer();
  const mailer = smtpMailer(server.url, FROM);
  try {
    server.refuseNext(1, 451, "Mailbox busy, try again later");
    await assert.rejects(mailer.send(email({ subject: "first" })), (err: Error) => {
      assert.match(err.message, /451/);
      assert.match(err.message, /Mailbox busy, try again later/);
      return true;
    });
    assert.equal(server.received.length, 0);

    assert.match(await mailer.send(email({ subject: "second" })), /^250\b/);
    const got = await server.waitFor(1);
    assert.deepEqual(got.map((m) => m.subject), ["second"]);
  } finally {
    await mailer.close();
  }
});

Deno.test("smtp: a 550 refusal rejects with the server's answer", async () => {
  await using server = await startSmtpServer();
  const mailer = smtpMailer(server.url, FROM);
  try {
    server.refuseNext(2, 550);
    await assert.rejects(mailer.send(email()), /550 Message rejected/);
    await assert.rejects(mailer.send(email()), /550 Message rejected/);
    await mailer.send(email());
    assert.equal((await server.waitFor(1)).length, 1);
  } finally {
    await mailer.close();
  }
});

Deno.test("smtp: a stopped server rejects with the connection error, well within the timeout", async () => {
  const server = await startSmtpServer();
  await server.stop();
  await server.stop(); // idempotent
  const mailer = smtpMailer(server.url, FROM);
  try {
    const started = Date.now();
    await assert.rejects(mailer.send(email()), (err: Error) => {
      assert.match(err.message, /ECONNREFUSED|ECONNECTION|ESOCKET/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000);
  } finally {
    await mailer.close();
  }
});

Deno.test("smtp: the capturing mailer does not send", async () => {
  const mailer = capturingMailer(FROM);
  assert.equal(mailer.sends, false);
  assert.equal(mailer.from, FROM);
  await assert.rejects(mailer.send(email()), /no SMTP server is configured/);
  await mailer.close();
});

Deno.test("parseSmtpUrl: smtp:// and smtps://, default ports, decoded credentials", () => {
  assert.deepEqual(parseSmtpUrl("smtp://mail.example.com"), {
    host: "mail.example.com",
    port: 587,
    secure: false,
    auth: null,
  });
  assert.deepEqual(parseSmtpUrl("smtps://mail.example.com"), {
    host: "mail.example.com",
    port: 465,
    secure: true,
    auth: null,
  });
  assert.deepEqual(parseSmtpUrl("smtp://apikey:s%40cr%3At%2F@smtp.example.com:2525/"), {
    host: "smtp.example.com",
    port: 2525,
    secure: false,
    auth: { user: "apikey", pass: "s@cr:t/" },
  });
  assert.deepEqual(parseSmtpUrl("smtps://me%40example.com:pw@[::1]:1465"), {
    host: "::1",
    port: 1465,
    secure: true,
    auth: { user: "me@example.com", pass: "pw" },
  });
  assert.deepEqual(parseSmtpUrl("smtp://user@127.0.0.1:25").auth, { user: "user", pass: "" });
});

Deno.test("parseSmtpUrl: rejects what is not an SMTP URL, and says why", () => {
  assert.throws(() => parseSmtpUrl("http://x"), /smtp:\/\/ or smtps:\/\/, not http:/);
  assert.throws(() => parseSmtpUrl("mail.example.com:587"), /smtp:\/\/ or smtps:\/\//);
  assert.throws(() => parseSmtpUrl("not a url"), /not a valid URL/);
  assert.throws(() => parseSmtpUrl(""), /not a valid URL/);
  assert.throws(() => parseSmtpUrl("smtp://"), /no host/);
  assert.throws(() => parseSmtpUrl("smtp://user:pw@:25"), /no host|not a valid URL/);
  assert.throws(() => parseSmtpUrl("smtp://mail.example.com:0"), /invalid port/);
  assert.throws(() => parseSmtpUrl("smtp://mail.example.com:99999"), /invalid port|not a valid/);
  assert.throws(() => parseSmtpUrl("smtp://mail.example.com:abc"), /not a valid URL/);
  assert.throws(() => parseSmtpUrl("smtp://:pw@mail.example.com"), /no user/);
  assert.throws(() => parseSmtpUrl("smtp://mail.example.com?tls=false"), /path, query/);
  assert.throws(() => parseSmtpUrl("smtp://u:%zz@mail.example.com"), /percent-encoded/);
  // The password never appears in an error.
  assert.throws(() => parseSmtpUrl("smtp://u:hunter2@exa mple.com"), (err: Error) => {
    assert.doesNotMatch(err.message, /hunter2/);
    return true;
  });
});
