/**
 * Email that reaches people (domain/email/): invitations, password resets and security notices
 * are messages in the outbox, sent by jobs through SMTP (a real server on 127.0.0.1,
 * tests/_smtp.ts) or, without SMTP, kept in the development outbox. Tokens travel only in the
 * message itself: sealed while it waits, dropped once sent, in no event.
 */
import assert from "node:assert/strict";
import { smtpMailer } from "../../domain/email/smtp.ts";
import { render, TEMPLATES } from "../../domain/email/templates.ts";
import { type Harness, setup, TEST_PASSWORD } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";
import { noticeExpiringKeys } from "../../domain/platform/key_expiry_notices.ts";
import { startSmtpServer, type TestSmtpServer } from "../_smtp.ts";

const PASSPHRASE = "quiet lantern over marble rivers";

/** Every message in the outbox, newest first, with its text and HTML. */
async function outbox(h: Harness, query = "") {
  const list = await h.call("GET", `/v1/admin/emails?limit=100${query}`, { token: h.root });
  assert.equal(list.status, 200, list.text);
  return await Promise.all(
    list.body.data.map(async (m: { id: string }) =>
      (await h.call("GET", `/v1/admin/emails/${m.id}`, { token: h.root })).body.data
    ),
  );
}

const tokenIn = (text: string, prefix: string) =>
  new RegExp(`token=(${prefix}_[0-9A-Za-z]+)`).exec(text)?.[1];

/** An app whose mail goes to a real SMTP server. */
async function withSmtp(): Promise<{ h: Harness; server: TestSmtpServer } & AsyncDisposable> {
  const server = await startSmtpServer();
  const mailer = smtpMailer(server.url, "Steward <steward@steward.test>");
  const h = await setup({ mailer });
  return {
    h,
    server,
    async [Symbol.asyncDispose]() {
      await h[Symbol.asyncDispose]();
      await mailer.close();
      await server.stop();
    },
  };
}

Deno.test("outbox: without SMTP an invitation is captured, and its emailed token joins the tenant", async () => {
  await using h = await setup();
  await h.tenant("acme", { name: "Acme <Labs> & Co" });
  const created = await h.call("POST", "/v1/tenants/acme/invitations", {
    token: h.root,
    body: { email: "New.Person@example.com", role: "member" },
  });
  assert.equal(created.status, 201, created.text);
  const [mail] = await outbox(h);
  assert.equal(mail.to, "new.person@example.com");
  assert.equal(mail.template, "invitation");
  assert.equal(mail.status, "captured");
  assert.equal(mail.subject, "You are invited to join Acme <Labs> & Co on Steward");
  assert.match(
    mail.text,
    /https:\/\/steward\.example\.com\/console\/accept-invitation\?token=sti_/,
  );
  assert.match(mail.html, /Acme &lt;Labs&gt; &amp; Co/, "values are escaped in the HTML");
  assert.doesNotMatch(mail.html, /<Labs>/);
  const token = tokenIn(mail.text, "sti")!;
  assert.equal(token, created.body.data.token, "the mail carries the invitation's token");
  const accepted = await h.call("POST", "/v1/invitations/accept", {
    body: { token, name: "New Person", password: PASSPHRASE },
  });
  assert.equal(accepted.status, 200, accepted.text);
});

Deno.test("outbox: the password-reset flow completes by following the emailed link's token", async () => {
  await using h = await setup();
  const user = await h.user(null, "dana@example.com");
  const asked = await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  assert.equal(asked.status, 202, asked.text);
  const [mail] = await outbox(h, "&template=password_reset");
  assert.equal(mail.to, "dana@example.com");
  const token = tokenIn(mail.text, "str")!;
  assert.ok(token, mail.text);
  const reset = await h.call("POST", "/v1/auth/password-reset", {
    body: { token, new_password: PASSPHRASE },
  });
  assert.equal(reset.status, 200, reset.text);
  const login = await h.call("POST", "/v1/auth/login", {
    body: { email: user.email, password: PASSPHRASE },
  });
  assert.equal(login.status, 200);
  const [changed] = await outbox(h, "&template=password_changed");
  assert.equal(changed.to, "dana@example.com");
  assert.match(changed.text, /every session was signed out/);
});

Deno.test("outbox: no reset or invitation token in clear anywhere in the store, events included", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const user = await h.user(null);
  const invited = await h.call("POST", "/v1/tenants/acme/invitations", {
    token: h.root,
    body: { email: "someone@example.com", role: "viewer" },
  });
  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  await h.runJobs();
  const mails = await outbox(h);
  const tokens = [invited.body.data.token, ...mails.map((m) => tokenIn(m.text, "str"))]
    .filter(Boolean);
  assert.equal(tokens.length, 2);
  const dump = await h.dump();
  for (const token of tokens) assert.ok(!dump.includes(token), `${token} is in the store`);
  assert.doesNotMatch(dump, /\b(str|sti)_[0-9A-Za-z]{20,}/);
});

Deno.test("smtp: an invitation arrives with its recipient, subject, link and escaping; the body is then dropped", async () => {
  await using app = await withSmtp();
  const { h, server } = app;
  await h.tenant("acme", { name: "Acme <Labs>" });
  const created = await h.call("POST", "/v1/tenants/acme/invitations", {
    token: h.root,
    body: { email: "ivy@example.com", role: "admin" },
  });
  const [queued] = await outbox(h);
  assert.equal(queued.status, "queued");
  await h.runJobs();
  const [mail] = await server.waitFor(1);
  assert.deepEqual(mail.to, ["ivy@example.com"]);
  assert.equal(mail.subject, "You are invited to join Acme <Labs> on Steward");
  assert.match(mail.text, /as admin/);
  assert.equal(tokenIn(mail.text, "sti"), created.body.data.token);
  assert.match(mail.html, /Acme &lt;Labs&gt;/);
  const [sent] = await outbox(h);
  assert.equal(sent.status, "sent");
  assert.match(sent.smtp_response, /^250/);
  assert.equal(sent.text, null, "the body is not kept once sent");
  assert.ok(!(await h.dump()).includes(created.body.data.token));
});

Deno.test("smtp: a tenant with its own SMTP server sends its members' mail through it, as its sender", async () => {
  await using server = await startSmtpServer({ user: "acme-mailer", pass: "relay-pass-7" });
  // The platform has no SMTP server (development): only the tenant's mail leaves.
  await using h = await setup({ allowPrivateUrls: true });
  await h.tenant("acme");
  await h.tenant("globex");
  const secret = await h.call("POST", "/v1/tenants/acme/secrets", {
    token: h.root,
    body: {
      name: "smtp",
      type: "smtp",
      value: {
        host: "127.0.0.1",
        port: server.port,
        secure: false,
        username: "acme-mailer",
        password: "relay-pass-7",
        from: "Acme <no-reply@acme.example.com>",
      },
    },
  });
  assert.equal(secret.status, 201, secret.text);
  for (const tenant of ["acme", "globex"]) {
    const res = await h.call("POST", `/v1/tenants/${tenant}/invitations`, {
      token: h.root,
      body: { email: `ivy@${tenant}.example.com`, role: "member" },
    });
    assert.equal(res.status, 201, res.text);
  }
  const [globex, acme] = await outbox(h);
  assert.deepEqual([acme.status, acme.from], ["queued", "Acme <no-reply@acme.example.com>"]);
  assert.equal(globex.status, "captured", "another tenant's mail stays in the outbox");
  await h.runJobs();
  const [mail] = await server.waitFor(1);
  assert.deepEqual(mail.to, ["ivy@acme.example.com"]);
  assert.equal(mail.envelope.from, "no-reply@acme.example.com");
  assert.equal(mail.user, "acme-mailer");
  assert.equal((await outbox(h, "&status=sent"))[0].id, acme.id);
});

Deno.test("smtp: a server that refuses, then accepts, gets the message once", async () => {
  await using app = await withSmtp();
  const { h, server } = app;
  server.refuseNext(1, 451, "try again later");
  await h.call("POST", "/v1/admin/emails/test", { token: h.root, body: { to: "ops@example.com" } });
  await h.runJobs();
  let [mail] = await outbox(h);
  assert.equal(mail.status, "queued");
  assert.match(mail.smtp_response, /451/);
  assert.equal(server.received.length, 0);
  h.advance(60_000);
  await h.runJobs();
  await server.waitFor(1);
  [mail] = await outbox(h);
  assert.equal(mail.status, "sent");
  assert.equal(mail.attempts, 2);
  h.advance(3_600_000);
  await h.runJobs();
  assert.equal(server.received.length, 1, "sent once");
});

Deno.test("smtp: a permanent refusal fails at once; a server down past the last retry fails the message", async () => {
  await using app = await withSmtp();
  const { h, server } = app;
  server.refuseNext(1, 550, "no such mailbox");
  await h.call("POST", "/v1/admin/emails/test", {
    token: h.root,
    body: { to: "gone@example.com" },
  });
  await h.runJobs();
  const [refused] = await outbox(h);
  assert.equal(refused.status, "failed");
  assert.match(refused.smtp_response, /550/);

  await server.stop();
  await h.call("POST", "/v1/admin/emails/test", { token: h.root, body: { to: "ops@example.com" } });
  for (let i = 0; i < 8; i++) {
    await h.runJobs();
    h.advance(7 * 3_600_000);
  }
  const [down] = await outbox(h, "&to=ops@example.com");
  assert.equal(down.status, "failed");
  assert.equal(down.attempts, 6);
  assert.match(down.smtp_response, /ECONNREFUSED|connect/);
  assert.equal(down.text, null);
  const dead = await h.call("GET", "/v1/admin/system/queues/email/jobs?status=dead", {
    token: h.root,
  });
  assert.equal(dead.body.data.length, 2, dead.text);
});

Deno.test("notices: a sign-in from a new address, a block and a suspension are mailed to the user", async () => {
  await using h = await setup();
  const user = await h.user(null, "erin@example.com");
  const login = (ip: string) =>
    h.call("POST", "/v1/auth/login", { body: { email: user.email, password: TEST_PASSWORD }, ip });
  // The harness logged the user in from 203.0.113.7: that address is known.
  assert.equal((await login("203.0.113.7")).status, 200);
  assert.equal((await outbox(h, "&template=new_sign_in")).length, 0, "a known address is not new");
  assert.equal((await login("203.0.113.5")).status, 200);
  const [signIn] = await outbox(h, "&template=new_sign_in");
  assert.match(signIn.text, /from 203\.0\.113\.5/);
  assert.equal((await outbox(h, "&template=new_sign_in")).length, 1);

  await h.call("POST", `/v1/users/${user.id}/block`, {
    token: h.root,
    body: { blocked: true, reason: "chargeback <fraud>" },
  });
  const [blocked] = await outbox(h, "&template=account_status");
  assert.equal(blocked.subject, "Your Steward account was blocked");
  assert.match(blocked.html, /chargeback &lt;fraud&gt;/);
});

Deno.test("emails API: filters and totals; 401, 403 for support, 404, 400", async () => {
  await using h = await setup();
  for (const to of ["a@example.com", "b@example.com", "a@example.com"]) {
    const res = await h.call("POST", "/v1/admin/emails/test", { token: h.root, body: { to } });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.data.status, "captured");
  }
  const list = await h.call("GET", "/v1/admin/emails?to=a@example.com", { token: h.root });
  assert.equal(list.body.data.length, 2);
  assert.equal(list.body.pagination.total, 2);
  const paged = await h.call("GET", "/v1/admin/emails?limit=1&offset=1", { token: h.root });
  assert.equal(paged.body.data.length, 1);
  assert.equal(paged.body.pagination.total, 3);
  assertError(await h.call("GET", "/v1/admin/emails"), 401, "UNAUTHORIZED");
  const support = await h.user("support");
  assertError(await h.call("GET", "/v1/admin/emails", { token: support.token }), 403, "FORBIDDEN");
  assertError(
    await h.call("POST", "/v1/admin/emails/test", { token: support.token, body: { to: "x@y.io" } }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("GET", "/v1/admin/emails/eml_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(await h.call("GET", "/v1/admin/emails/nope", { token: h.root }), "param.id");
  assertInvalid(
    await h.call("POST", "/v1/admin/emails/test", { token: h.root, body: { to: "not mail" } }),
    "json.to",
  );
  assertInvalid(
    await h.call("GET", "/v1/admin/emails?status=lost", { token: h.root }),
    "query.status",
  );
});

Deno.test("templates: every one renders text and HTML, escapes its values, and names the platform", () => {
  const brand = { platform: "Acme <Cloud>", publicUrl: "https://acme.example.com/" };
  const hostile = "<script>alert(1)</script>";
  const vars = {
    invitation: {
      tenant: hostile,
      role: "member",
      inviter: hostile,
      token: "sti_x",
      expires_at: "t",
    },
    password_reset: { name: hostile, token: "str_x", expires_at: "t" },
    password_changed: { name: hostile, at: "t" },
    new_sign_in: { name: hostile, ip: "203.0.113.5", user_agent: hostile, at: "t" },
    account_status: { name: hostile, status: "suspended" as const, until: "t", reason: hostile },
    api_key_expiring: {
      tenant: hostile,
      key_name: hostile,
      key_start: "sk_live_ab",
      expires_at: "t",
    },
    alert: {
      state: "fired" as const,
      rule: "job_backlog",
      value: hostile,
      started_at: "t",
      resolved_at: null,
      link: "https://acme.example.com/console/alerts/alr_1",
    },
    payment_failed: { tenant: hostile, amount: "$10.00", invoice: "in_1", hosted_url: null },
    test: { sent_by: hostile },
  };
  for (const template of TEMPLATES) {
    const out = render(brand, template, vars[template] as never);
    assert.ok(out.subject && out.text && out.html, template);
    assert.ok(!out.html.includes("<script>"), `${template} escapes its values`);
    assert.match(out.text, /— Acme <Cloud>/, template);
    assert.match(out.html, /Acme &lt;Cloud&gt;/, template);
  }
  const reset = render(brand, "password_reset", vars.password_reset);
  assert.match(reset.text, /https:\/\/acme\.example\.com\/console\/reset-password\?token=str_x/);
});

Deno.test("notices: a tenant's owners hear once that an API key expires within 7 days", async () => {
  await using h = await setup();
  const t = await h.tenant("acme", { name: "Acme" });
  const owner = await memberOf(h, t.id, "owner");
  await memberOf(h, t.id, "admin");
  const key = (name: string, days: number) =>
    h.call("POST", "/v1/tenants/acme/api-keys", {
      token: h.root,
      body: {
        name,
        environment: "live",
        expires_at: new Date(h.clock.now + days * 86_400_000).toISOString(),
      },
    });
  await key("soon", 6);
  await key("later", 10);
  assert.equal(await noticeExpiringKeys(h.svc), 1);
  assert.equal(await noticeExpiringKeys(h.svc), 0, "once per key");
  const [mail] = await outbox(h, "&template=api_key_expiring");
  const ownerEmail = (await h.call("GET", `/v1/users/${owner.id}`, { token: h.root })).body.data
    .email;
  assert.equal(mail.to, ownerEmail, "owners only");
  assert.equal((await outbox(h, "&template=api_key_expiring")).length, 1);
  assert.match(mail.text, /"soon"/);
  h.advance(4 * 86_400_000);
  assert.equal(await noticeExpiringKeys(h.svc), 1, "the later key's turn");
});
