/**
 * Password resets: POST /v1/users/{id}/reset-password (staff) and POST /v1/auth/password-reset
 * (public). The token travels only in the mail to the user, works once within an hour, and ends
 * every session when spent.
 */
import assert from "node:assert/strict";
import { type Harness, setup, TEST_PASSWORD } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";

const NEW_PASSWORD = "a brand new passphrase";

/** The token in the newest password-reset mail to `userId` (the development outbox). */
async function deliveredToken(h: Harness, userId: string): Promise<string> {
  const user = await h.call("GET", `/v1/users/${userId}`, { token: h.root });
  const list = await h.call(
    "GET",
    `/v1/admin/emails?template=password_reset&to=${encodeURIComponent(user.body.data.email)}`,
    { token: h.root },
  );
  assert.ok(list.body.data.length, "no reset mail");
  const mail = await h.call("GET", `/v1/admin/emails/${list.body.data[0].id}`, { token: h.root });
  const token = /token=(str_[0-9A-Za-z]+)/.exec(mail.body.data.text)?.[1];
  assert.ok(token, "no token in the mail");
  return token;
}

const reset = (h: Harness, token: string, new_password = NEW_PASSWORD) =>
  h.call("POST", "/v1/auth/password-reset", { body: { token, new_password } });
const login = (h: Harness, email: string, password: string) =>
  h.call("POST", "/v1/auth/login", { body: { email, password } });

Deno.test("reset-password: 202 without the token; mailed to the user, in no event or audit entry", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const user = await h.user(null);
  const res = await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: admin.token });
  assert.equal(res.status, 202, res.text);
  assert.equal(res.body.data.requested, true);
  assert.equal(res.body.data.expires_at, new Date(h.clock.now + 3_600_000).toISOString());
  const token = await deliveredToken(h, user.id);
  assert.match(token, /^str_/);
  assert.ok(!res.text.includes(token));
  // Stored as its hash; the mail holding it is sealed.
  assert.ok(!(await h.dump()).includes(token));
  const [event] = await h.auditFor(user.id);
  assert.equal(event.action, "user.password_reset_requested");
  assert.equal(event.actor_id, admin.id);
  assert.ok(!JSON.stringify(event).includes(token));
});

Deno.test("password-reset: sets the password, ends every session, and works once", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  const token = await deliveredToken(h, user.id);
  const res = await reset(h, token);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data, { user_id: user.id, sessions_revoked: 1 });
  assertError(await h.call("GET", "/v1/auth/me", { token: user.token }), 401, "UNAUTHORIZED");
  assertError(await login(h, user.email, TEST_PASSWORD), 401, "UNAUTHORIZED");
  assert.equal((await login(h, user.email, NEW_PASSWORD)).status, 200);
  const used = await reset(h, token, "yet another passphrase");
  assertError(used, 409, "CONFLICT");
  assert.match(used.body.error.message, /already used/);
  const [event] = (await h.auditFor(user.id)).filter((e) => e.action === "user.password_reset");
  assert.equal(event.actor_id, user.id);
});

Deno.test("password-reset: two concurrent uses of one token, exactly one wins", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  const token = await deliveredToken(h, user.id);
  const answers = await Promise.all([
    reset(h, token, "first racer passphrase"),
    reset(h, token, "second racer passphrase"),
  ]);
  assert.deepEqual(answers.map((r) => r.status).sort(), [200, 409]);
  const winner = answers[0].status === 200 ? "first racer passphrase" : "second racer passphrase";
  assert.equal((await login(h, user.email, winner)).status, 200);
});

Deno.test("password-reset: expires after an hour; a newer request replaces the older token", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  const first = await deliveredToken(h, user.id);
  h.advance(3_600_000);
  const expired = await reset(h, first);
  assertError(expired, 409, "CONFLICT");
  assert.match(expired.body.error.message, /expired/);

  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  const second = await deliveredToken(h, user.id);
  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  const third = await deliveredToken(h, user.id);
  const replaced = await reset(h, second);
  assertError(replaced, 409, "CONFLICT");
  assert.match(replaced.body.error.message, /newer reset/);
  assert.equal((await reset(h, third)).status, 200);
});

Deno.test("password-reset: unknown token 404; policy errors are 400 and spend nothing", async () => {
  await using h = await setup();
  const user = await h.user(null);
  assertError(await reset(h, "str_unknown"), 404, "NOT_FOUND");
  await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  const token = await deliveredToken(h, user.id);
  const short = await reset(h, token, "short");
  assertInvalid(short, "new_password");
  assert.match(short.body.error.message, /at least 12/);
  assertInvalid(await reset(h, token, user.email), "new_password");
  assertInvalid(
    await h.call("POST", "/v1/auth/password-reset", { body: { token } }),
    "json.new_password",
  );
  assertInvalid(
    await h.call("POST", "/v1/auth/password-reset", {
      body: { token, new_password: NEW_PASSWORD, email: "x@example.com" },
    }),
  );
  assert.equal((await reset(h, token)).status, 200);
});

Deno.test("reset-password: 401, 403 (support, self, staff by admin), 404", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const support = await h.user("support");
  const user = await h.user(null);
  const path = (id: string) => `/v1/users/${id}/reset-password`;
  assertError(await h.call("POST", path(user.id)), 401, "UNAUTHORIZED");
  assertError(await h.call("POST", path(user.id), { token: support.token }), 403, "FORBIDDEN");
  assertError(await h.call("POST", path(admin.id), { token: admin.token }), 403, "FORBIDDEN");
  const superAdmin = await h.user("super_admin");
  assertError(await h.call("POST", path(superAdmin.id), { token: admin.token }), 403, "FORBIDDEN");
  assertError(
    await h.call("POST", path("usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"), { token: admin.token }),
    404,
    "NOT_FOUND",
  );
  assert.equal((await h.call("POST", path(superAdmin.id), { token: h.root })).status, 202);
});

Deno.test("reset-password: Idempotency-Key replays the answer and sends one token", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const headers = { "Idempotency-Key": "reset-0001" };
  const first = await h.call("POST", `/v1/users/${user.id}/reset-password`, {
    token: h.root,
    headers,
  });
  const again = await h.call("POST", `/v1/users/${user.id}/reset-password`, {
    token: h.root,
    headers,
  });
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(again.body.data, first.body.data);
  const requested = (await h.auditFor(user.id)).filter((e) =>
    e.action === "user.password_reset_requested"
  );
  assert.equal(requested.length, 1);
});
