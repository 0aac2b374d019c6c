/**
 * Users by name: a username set at creation (with or without an email) or by PATCH, unique
 * regardless of case; logging in with it (throttled per account, whichever name is used);
 * search; a user without an email receiving no mail; erasure freeing the name.
 */
import assert from "node:assert/strict";
import { FREE_FAILURES } from "../../domain/identity/login_throttle.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup, TEST_PASSWORD } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";

const PASSWORD = "plum-kettle-orbit-harbor";

async function createByName(h: Harness, body: Record<string, unknown>) {
  const res = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { name: "Alice", password: PASSWORD, ...body },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; email: string | null; username: string | null };
}

const loginAs = (h: Harness, body: Record<string, unknown>, ip?: string) =>
  h.call("POST", "/v1/auth/login", { body, ip });

Deno.test("POST /v1/users by username only: no email, says it receives no mail, logs in by name", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { username: "alice", name: "Alice", password: PASSWORD },
  });
  assert.equal(res.status, 201, res.text);
  const user = res.body.data;
  assert.equal(user.email, null);
  assert.equal(user.username, "alice");
  assert.equal(user.can_receive_mail, false);
  assert.equal((await h.auditFor(user.id))[0].action, "user.created");

  const login = await loginAs(h, { username: "ALICE", password: PASSWORD });
  assert.equal(login.status, 200, login.text);
  assert.equal(login.body.data.user.id, user.id);
  const me = await h.call("GET", "/v1/auth/me", { token: login.body.data.token });
  assert.equal(me.body.data.user.username, "alice");
  assertError(await loginAs(h, { username: "alice", password: "wrong" }), 401, "UNAUTHORIZED");
  assertError(await loginAs(h, { username: "nobody", password: PASSWORD }), 401, "UNAUTHORIZED");

  // Mail-sending actions say why they cannot.
  const reset = await h.call("POST", `/v1/users/${user.id}/reset-password`, { token: h.root });
  assertError(reset, 409, "CONFLICT");
  assert.equal(reset.body.error.details.reason, "no_email");
});

Deno.test("POST /v1/users: email and username together; either logs in", async () => {
  await using h = await setup();
  const user = await createByName(h, { email: "ada@example.com", username: "Ada.L" });
  assert.equal(user.username, "Ada.L");
  for (const body of [{ email: "ada@example.com" }, { username: "ada.l" }]) {
    const res = await loginAs(h, { ...body, password: PASSWORD });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.user.id, user.id);
  }
});

Deno.test("POST /v1/users: 400 on a bad or missing name, 409 on a taken one (any case)", async () => {
  await using h = await setup();
  const post = (body: unknown) => h.call("POST", "/v1/users", { token: h.root, body });
  assertInvalid(await post({ name: "No name" }), "json.email");
  for (const username of ["al", "a".repeat(65), "al ice", "al@ice", "ålice"]) {
    assertInvalid(await post({ username, name: "x" }), "json.username");
  }
  await createByName(h, { username: "alice" });
  assertError(await post({ username: "ALICE", name: "x" }), 409, "CONFLICT");
  assertError(await post({ username: "x" }), 400, "BAD_REQUEST");
  assertError(
    await h.call("POST", "/v1/users", { body: { username: "bob", name: "Bob" } }),
    401,
    "UNAUTHORIZED",
  );
  const support = await h.user("support");
  assertError(
    await h.call("POST", "/v1/users", {
      token: support.token,
      body: { username: "bob", name: "Bob" },
    }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("login validation: an email or a username, not both, not neither", async () => {
  await using h = await setup();
  assertInvalid(await loginAs(h, { password: PASSWORD }), "json.email");
  assertInvalid(await loginAs(h, { email: "a@example.com", username: "a", password: PASSWORD }));
  assertInvalid(await loginAs(h, { username: "a b", password: PASSWORD }), "json.username");
});

Deno.test("PATCH /v1/users/{id}: set, change and remove a username; the old name is free again", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const patch = (id: string, body: unknown) =>
    h.call("PATCH", `/v1/users/${id}`, { token: h.root, body });
  const set = await patch(user.id, { username: "grace" });
  assert.equal(set.status, 200, set.text);
  assert.equal(set.body.data.username, "grace");
  assert.equal((await loginAs(h, { username: "grace", password: TEST_PASSWORD })).status, 200);

  const other = await createByName(h, { username: "hopper" });
  assertError(await patch(other.id, { username: "GRACE" }), 409, "CONFLICT");
  assertInvalid(await patch(other.id, { username: "x" }), "json.username");
  // A user without an email keeps its username: it is its only way in.
  assertError(await patch(other.id, { username: null }), 400, "BAD_REQUEST");

  assert.equal((await patch(user.id, { username: "grace2" })).status, 200);
  assert.equal((await patch(other.id, { username: "grace" })).status, 200);
  const removed = await patch(user.id, { username: null });
  assert.equal(removed.body.data.username, null);
  assert.equal((await h.kv.get(keys.userUsername("grace2"))).versionstamp, null);
});

Deno.test("GET /v1/users?search= matches a username prefix", async () => {
  await using h = await setup();
  const user = await createByName(h, { username: "zed.admin" });
  const res = await h.call("GET", "/v1/users?search=ZED", { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.map((u: { id: string }) => u.id), [user.id]);
});

Deno.test("login throttle: one count per account, whichever of its names is used", async () => {
  await using h = await setup();
  await createByName(h, { email: "ada@example.com", username: "ada" });
  for (let i = 0; i < FREE_FAILURES + 1; i++) {
    const res = await loginAs(h, { username: "ada", password: "wrong" }, "198.51.100.7");
    assertError(res, 401, "UNAUTHORIZED");
  }
  // The delay now runs for the account, by its email too.
  const byEmail = await loginAs(
    h,
    { email: "ada@example.com", password: PASSWORD },
    "198.51.100.8",
  );
  assertError(byEmail, 429, "RATE_LIMITED");
});

Deno.test("DELETE /v1/users/{id}: erasure frees the username and scrubs it", async () => {
  await using h = await setup();
  const user = await createByName(h, { username: "erin" });
  const res = await h.call("DELETE", `/v1/users/${user.id}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.username, null);
  assert.equal((await h.kv.get(keys.userUsername("erin"))).versionstamp, null);
  assertError(await loginAs(h, { username: "erin", password: PASSWORD }), 401, "UNAUTHORIZED");
  const trail = JSON.stringify(await h.auditFor(user.id));
  assert.ok(!trail.includes('"erin"'), trail);
  await createByName(h, { username: "erin" });
});
