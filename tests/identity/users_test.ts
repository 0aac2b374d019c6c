/**
 * Users: /v1/users — listing and search, create, read with sessions and memberships, update,
 * block, suspend (lifted by the clock), revoke sessions, and the audit trail; each with its
 * validation, authentication, roles, If-Match, Idempotency-Key and audit events. Erasure and
 * password resets have their own suites.
 */
import assert from "node:assert/strict";
import { MAINTENANCE_TASKS } from "../../domain/platform/maintenance.ts";
import { keys } from "../../kv/keys.ts";
import { type Reply, setup, TEST_PASSWORD } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const etag = (res: Reply) => res.headers.get("ETag")!.replace(/^"(.*)"$/, "$1");
const login = (h: Awaited<ReturnType<typeof setup>>, email: string, password = TEST_PASSWORD) =>
  h.call("POST", "/v1/auth/login", { body: { email, password } });

// ── GET /v1/users ───────────────────────────────────────────────────────────────

Deno.test("GET /v1/users: oldest first with a total; search by email or name prefix, any case", async () => {
  await using h = await setup();
  const admin = await h.user("admin", "root-admin@example.com");
  await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: "Alice.Smith@Example.com", name: "Alice Smith" },
  });
  await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: "bob@example.com", name: "Robert Alistair Jones" },
  });
  const all = await h.call("GET", "/v1/users", { token: admin.token });
  assert.equal(all.status, 200, all.text);
  assert.deepEqual(all.body.data.map((u: { email: string }) => u.email), [
    "root-admin@example.com",
    "alice.smith@example.com",
    "bob@example.com",
  ]);
  assert.equal(all.body.pagination.total, 3);
  const search = async (q: string) =>
    (await h.call("GET", `/v1/users?search=${encodeURIComponent(q)}`, { token: admin.token }))
      .body.data.map((u: { name: string }) => u.name);
  assert.deepEqual(await search("ALI"), ["Alice Smith", "Robert Alistair Jones"]);
  assert.deepEqual(await search("alice.smith@ex"), ["Alice Smith"]);
  assert.deepEqual(await search("smi"), ["Alice Smith"]);
  assert.deepEqual(await search("nobody"), []);
  const filtered = await h.call("GET", "/v1/users?search=ali", { token: admin.token });
  assert.equal(filtered.body.pagination.total, 2, "a filtered list counts its matches");
});

Deno.test("GET /v1/users: filters by status, platform role and tenant; paginates", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const support = await h.user("support");
  const t = await h.tenant("acme");
  const member = await memberOf(h, t.id, "viewer");
  await h.call("POST", `/v1/users/${member.id}/block`, {
    token: admin.token,
    body: { blocked: true },
  });
  const ids = async (query: string) =>
    (await h.call("GET", `/v1/users?${query}`, { token: admin.token })).body.data.map((
      u: { id: string },
    ) => u.id);
  assert.deepEqual(await ids("status=blocked"), [member.id]);
  assert.deepEqual(await ids("platform_role=support"), [support.id]);
  assert.deepEqual(await ids("tenant=acme"), [member.id]);
  assert.deepEqual(await ids(`tenant=${t.id}&status=active`), []);
  const page = await h.call("GET", "/v1/users?limit=2", { token: admin.token });
  assert.equal(page.body.data.length, 2);
  assert.equal(page.body.pagination.has_more, true);
  const rest = await h.call(
    "GET",
    `/v1/users?limit=2&cursor=${encodeURIComponent(page.body.pagination.next_cursor)}`,
    { token: admin.token },
  );
  assert.deepEqual(rest.body.data.map((u: { id: string }) => u.id), [member.id]);
});

Deno.test("GET /v1/users: support sees emails and names masked", async () => {
  await using h = await setup();
  await h.user(null, "carol@example.com");
  const support = await h.user("support");
  const res = await h.call("GET", "/v1/users?search=carol", { token: support.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data[0].email, "c***@e***.com");
  assert.match(res.body.data[0].name, /^U\*\*\*$/);
  assert.ok(!res.text.includes("carol@example.com"));
});

Deno.test("GET /v1/users: 401 without credentials; 403 without users:read; 400 on bad filters", async () => {
  await using h = await setup();
  assertError(await h.call("GET", "/v1/users"), 401, "UNAUTHORIZED");
  for (const role of [null, "finance", "qa"] as const) {
    const u = await h.user(role);
    assertError(await h.call("GET", "/v1/users", { token: u.token }), 403, "FORBIDDEN");
  }
  // A tenant owner manages members, not the platform's users.
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  assertError(await h.call("GET", "/v1/users", { token: owner.token }), 403, "FORBIDDEN");
  assertInvalid(await h.call("GET", "/v1/users?status=gone", { token: h.root }), "query.status");
  assertInvalid(await h.call("GET", "/v1/users?role=admin", { token: h.root }));
  assertInvalid(await h.call("GET", "/v1/users?tenant=nope", { token: h.root }), "query.tenant");
});

// ── POST /v1/users ──────────────────────────────────────────────────────────────

Deno.test("POST /v1/users: creates a user who can log in; ETag, Location and audit event", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await h.call("POST", "/v1/users", {
    token: admin.token,
    body: {
      email: " Dana@Example.com ",
      name: "Dana",
      password: TEST_PASSWORD,
      metadata: { crm: "42" },
    },
  });
  assert.equal(res.status, 201, res.text);
  const user = res.body.data;
  assert.equal(user.email, "dana@example.com");
  assert.equal(user.status, "active");
  assert.equal(user.platform_role, null);
  assert.deepEqual(user.metadata, { crm: "42" });
  assert.equal(res.headers.get("Location"), `/v1/users/${user.id}`);
  assert.ok(res.headers.get("ETag"));
  assert.ok(!res.text.includes(TEST_PASSWORD));
  assert.equal((await login(h, "DANA@example.com")).status, 200);
  const [event] = (await h.auditFor(user.id)).filter((e) => e.action === "user.created");
  assert.equal(event.actor_id, admin.id);
  assert.deepEqual(event.changes?.email, { before: null, after: "dana@example.com" });
  assert.ok(!JSON.stringify(event).includes(TEST_PASSWORD));
});

Deno.test("POST /v1/users: the email is unique case-insensitively (409, nothing written)", async () => {
  await using h = await setup();
  await h.user(null, "erin@example.com");
  const res = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: "ERIN@example.com", name: "Other Erin" },
  });
  assertError(res, 409, "CONFLICT");
  const list = await h.call("GET", "/v1/users?search=erin", { token: h.root });
  assert.equal(list.body.data.length, 1);
});

Deno.test("POST /v1/users: only a super admin grants a platform role", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const body = { email: "ops@example.com", name: "Ops", platform_role: "ops" };
  assertError(await h.call("POST", "/v1/users", { token: admin.token, body }), 403, "FORBIDDEN");
  const superAdmin = await h.user("super_admin");
  const res = await h.call("POST", "/v1/users", { token: superAdmin.token, body });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.data.platform_role, "ops");
  const byRoot = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { ...body, email: "ops2@example.com" },
  });
  assert.equal(byRoot.status, 201, byRoot.text);
});

Deno.test("POST /v1/users: a password easy to guess is 400 and says why", async () => {
  await using h = await setup();
  const post = (email: string, name: string, password: string) =>
    h.call("POST", "/v1/users", { token: h.root, body: { email, name, password } });
  for (
    const [password, why] of [
      ["password1234", /commonly used password/],
      ["aaaaaaaaaaaa", /Repeated characters/],
      ["qwertyuiop12", /too easy to guess/],
      ["123456789012", /too easy to guess/],
    ]
  ) {
    const res = await post("g@example.com", "G", password as string);
    assertInvalid(res, "password");
    assert.match(res.body.error.message, /^password is too easy to guess/, password as string);
    assert.match(res.body.error.message, why as RegExp, password as string);
  }
  // The account's own name and email count as known words: weak for its owner only.
  const own = await post("zq@example.com", "Zorblat Quixmonde", "zorblat quixmonde 77");
  assertInvalid(own, "password");
  assert.match(own.body.error.message, /personal/);
  assert.equal((await post("h@example.com", "H", "zorblat quixmonde 77")).status, 201);
  const strong = await post("g@example.com", "G", "quiet lantern over marble rivers");
  assert.equal(strong.status, 201, strong.text);
});

Deno.test("POST /v1/users: password policy errors are specific; bad input is 400 and creates nothing", async () => {
  await using h = await setup();
  const post = (body: unknown) => h.call("POST", "/v1/users", { token: h.root, body });
  const short = await post({ email: "f@example.com", name: "F", password: "short" });
  assertInvalid(short, "password");
  assert.match(short.body.error.message, /at least 12 characters/);
  const long = await post({ email: "f@example.com", name: "F", password: "x".repeat(257) });
  assert.match(long.body.error.message, /at most 256 characters/);
  const own = await post({
    email: "frank.long@example.com",
    name: "F",
    password: "frank.long@example.com",
  });
  assertInvalid(own, "password");
  assert.match(own.body.error.message, /email/);
  assertInvalid(await post({ email: "not-an-email", name: "F" }), "json.email");
  assertInvalid(await post({ email: "f@example.com", name: "" }), "json.name");
  assertInvalid(await post({ email: "f@example.com", name: "F", role: "admin" }));
  assertInvalid(
    await post({ email: "f@example.com", name: "F", platform_role: "god" }),
    "json.platform_role",
  );
  const list = await h.call("GET", "/v1/users?search=f", { token: h.root });
  assert.deepEqual(list.body.data, []);
});

Deno.test("POST /v1/users: 401 without credentials; 403 for support and plain users", async () => {
  await using h = await setup();
  const body = { email: "g@example.com", name: "G" };
  assertError(await h.call("POST", "/v1/users", { body }), 401, "UNAUTHORIZED");
  for (const role of ["support", "finance", null] as const) {
    const u = await h.user(role);
    assertError(await h.call("POST", "/v1/users", { token: u.token, body }), 403, "FORBIDDEN");
  }
});

Deno.test("POST /v1/users: same Idempotency-Key and body replays; one user, one event", async () => {
  await using h = await setup();
  const headers = { "Idempotency-Key": "create-user-0001" };
  const body = { email: "hal@example.com", name: "Hal" };
  const first = await h.call("POST", "/v1/users", { token: h.root, body, headers });
  const again = await h.call("POST", "/v1/users", { token: h.root, body, headers });
  assert.equal(first.status, 201);
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.equal(again.body.data.id, first.body.data.id);
  assert.equal((await h.auditFor(first.body.data.id)).length, 1);
  const other = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { ...body, name: "Other" },
    headers,
  });
  assertError(other, 422, "UNPROCESSABLE");
});

// ── GET /v1/users/{id} ──────────────────────────────────────────────────────────

Deno.test("GET /v1/users/{id}: the user with live sessions and memberships; support sees PII masked", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const user = await memberOf(h, t.id, "admin");
  const res = await h.call("GET", `/v1/users/${user.id}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get("ETag") !== null, true);
  assert.equal(res.body.data.email, user.email);
  assert.equal(res.body.data.sessions.length, 1);
  const [session] = res.body.data.sessions;
  assert.equal(session.ip, "203.0.113.7");
  assert.equal(session.user_agent, "harness");
  assert.ok(session.created_at && session.last_seen_at && session.expires_at);
  assert.ok(!("token_hash" in session));
  assert.deepEqual(res.body.data.memberships, [
    { tenant_id: t.id, tenant_slug: "acme", tenant_name: "Tenant acme", role: "admin" },
  ]);
  const support = await h.user("support");
  const masked = await h.call("GET", `/v1/users/${user.id}`, { token: support.token });
  assert.equal(masked.body.data.sessions[0].ip, "203.0.x.x");
  assert.match(masked.body.data.email, /^u\*\*\*@e\*\*\*\.com$/);
  assert.ok(!masked.text.includes(user.email));
  // An ended session is not listed.
  h.advance(13 * 3_600_000);
  const later = await h.call("GET", `/v1/users/${user.id}`, { token: h.root });
  assert.deepEqual(later.body.data.sessions, []);
});

Deno.test("GET /v1/users/{id}: 404 unknown, 400 malformed, 401, 403 for plain users and tenant owners", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const viewer = await memberOf(h, t.id, "viewer");
  assertError(
    await h.call("GET", "/v1/users/usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(await h.call("GET", "/v1/users/nope", { token: h.root }), "param.id");
  assertError(await h.call("GET", `/v1/users/${viewer.id}`), 401, "UNAUTHORIZED");
  assertError(
    await h.call("GET", `/v1/users/${viewer.id}`, { token: owner.token }),
    403,
    "FORBIDDEN",
  );
});

// ── PATCH /v1/users/{id} ────────────────────────────────────────────────────────

Deno.test("PATCH /v1/users/{id}: name and metadata (merged), audited; If-Match stale is 412", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const user = await h.user(null);
  await h.call("PATCH", `/v1/users/${user.id}`, {
    token: admin.token,
    body: { metadata: { a: "1", b: "2" } },
  });
  const read = await h.call("GET", `/v1/users/${user.id}`, { token: admin.token });
  const res = await h.call("PATCH", `/v1/users/${user.id}`, {
    token: admin.token,
    body: { name: "Renamed", metadata: { a: null, c: "3" } },
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.name, "Renamed");
  assert.deepEqual(res.body.data.metadata, { b: "2", c: "3" });
  assert.notEqual(etag(res), etag(read));
  const stale = await h.call("PATCH", `/v1/users/${user.id}`, {
    token: admin.token,
    body: { name: "Again" },
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assertError(stale, 412, "PRECONDITION_FAILED");
  const [event] = await h.auditFor(user.id);
  assert.equal(event.action, "user.updated");
  assert.deepEqual(event.changes?.name, { before: "User 2", after: "Renamed" });
});

Deno.test("PATCH /v1/users/{id}: platform roles are for super admins; staff are managed by super admins", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const user = await h.user(null);
  const otherAdmin = await h.user("admin");
  assertError(
    await h.call("PATCH", `/v1/users/${user.id}`, {
      token: admin.token,
      body: { platform_role: "support" },
    }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("PATCH", `/v1/users/${otherAdmin.id}`, {
      token: admin.token,
      body: { name: "Demoted" },
    }),
    403,
    "FORBIDDEN",
  );
  const promoted = await h.call("PATCH", `/v1/users/${user.id}`, {
    token: h.root,
    body: { platform_role: "support" },
  });
  assert.equal(promoted.status, 200, promoted.text);
  assert.equal(promoted.body.data.platform_role, "support");
  // The new role applies to the user's existing session at once.
  const list = await h.call("GET", "/v1/users", { token: user.token });
  assert.equal(list.status, 200);
  const superAdmin = await h.user("super_admin");
  assertError(
    await h.call("PATCH", `/v1/users/${superAdmin.id}`, {
      token: superAdmin.token,
      body: { platform_role: null },
    }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("PATCH /v1/users/{id}: status blocked ends sessions; active lifts it; bad fields are 400", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await h.call("PATCH", `/v1/users/${user.id}`, {
    token: h.root,
    body: { status: "blocked" },
  });
  assert.equal(res.body.data.status, "blocked");
  assertError(await h.call("GET", "/v1/auth/me", { token: user.token }), 401, "UNAUTHORIZED");
  const back = await h.call("PATCH", `/v1/users/${user.id}`, {
    token: h.root,
    body: { status: "active" },
  });
  assert.equal(back.body.data.status, "active");
  assert.equal((await login(h, user.email)).status, 200);
  const patch = (body: unknown) => h.call("PATCH", `/v1/users/${user.id}`, { token: h.root, body });
  assertInvalid(await patch({ status: "suspended" }), "json.status");
  assertInvalid(await patch({ email: "x@example.com" }));
  assertInvalid(await patch({ name: "" }), "json.name");
  assertError(
    await h.call("PATCH", `/v1/users/${user.id}`, { body: { name: "X" } }),
    401,
    "UNAUTHORIZED",
  );
});

// ── Block ───────────────────────────────────────────────────────────────────────

Deno.test("POST /v1/users/{id}/block: the existing session is refused at once, logins stop; unblock restores", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const user = await h.user(null);
  assert.equal((await h.call("GET", "/v1/auth/me", { token: user.token })).status, 200);
  const res = await h.call("POST", `/v1/users/${user.id}/block`, {
    token: admin.token,
    body: { blocked: true, reason: "chargeback fraud" },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "blocked");
  assert.equal(res.body.data.blocked_reason, "chargeback fraud");
  assertError(await h.call("GET", "/v1/auth/me", { token: user.token }), 401, "UNAUTHORIZED");
  // Answered like a wrong password: the answer does not confirm the password.
  const refused = await login(h, user.email);
  assertError(refused, 401, "UNAUTHORIZED");
  assert.equal(refused.body.error.message, "invalid email, username or password");
  const actions = (await h.auditFor(user.id)).map((e) => e.action);
  assert.ok(actions.includes("user.blocked"));
  assert.ok(actions.includes("user.sessions_revoked"));
  const unblocked = await h.call("POST", `/v1/users/${user.id}/block`, {
    token: admin.token,
    body: { blocked: false },
  });
  assert.equal(unblocked.body.data.status, "active");
  assert.equal(unblocked.body.data.blocked_reason, null);
  assert.equal((await login(h, user.email)).status, 200);
  assert.equal((await h.auditFor(user.id))[0].action, "user.unblocked");
});

Deno.test("POST /v1/users/{id}/block: a block set directly in the store still stops the session", async () => {
  await using h = await setup();
  const user = await h.user(null);
  // Even if the revocation after the commit never ran, the status check refuses the session.
  const entry = await h.kv.get<Record<string, unknown>>(keys.user(user.id));
  await h.kv.set(keys.user(user.id), { ...entry.value, status: "blocked" });
  assertError(await h.call("GET", "/v1/auth/me", { token: user.token }), 401, "UNAUTHORIZED");
});

Deno.test("POST /v1/users/{id}/block: 400, 401, 403 (support, self, staff by admin), 404", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const support = await h.user("support");
  const user = await h.user(null);
  const path = `/v1/users/${user.id}/block`;
  assertInvalid(await h.call("POST", path, { token: admin.token, body: {} }), "json.blocked");
  assertInvalid(
    await h.call("POST", path, { token: admin.token, body: { blocked: "yes" } }),
    "json.blocked",
  );
  assertError(await h.call("POST", path, { body: { blocked: true } }), 401, "UNAUTHORIZED");
  assertError(
    await h.call("POST", path, { token: support.token, body: { blocked: true } }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("POST", `/v1/users/${admin.id}/block`, {
      token: admin.token,
      body: { blocked: true },
    }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("POST", `/v1/users/${support.id}/block`, {
      token: admin.token,
      body: { blocked: true },
    }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("POST", "/v1/users/usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/block", {
      token: admin.token,
      body: { blocked: true },
    }),
    404,
    "NOT_FOUND",
  );
  assert.equal((await h.call("GET", "/v1/auth/me", { token: user.token })).status, 200);
});

Deno.test("POST /v1/users/{id}/block: Idempotency-Key replays the first answer", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const headers = { "Idempotency-Key": "block-0001" };
  const body = { blocked: true, reason: "abuse" };
  const first = await h.call("POST", `/v1/users/${user.id}/block`, {
    token: h.root,
    body,
    headers,
  });
  const again = await h.call("POST", `/v1/users/${user.id}/block`, {
    token: h.root,
    body,
    headers,
  });
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(again.body.data, first.body.data);
  const blocks = (await h.auditFor(user.id)).filter((e) => e.action === "user.blocked");
  assert.equal(blocks.length, 1);
});

// ── Suspend ─────────────────────────────────────────────────────────────────────

Deno.test("POST /v1/users/{id}/suspend: refused until `until`, then lifted by itself (clock, no write)", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const until = new Date(h.clock.now + 2 * 3_600_000).toISOString();
  const res = await h.call("POST", `/v1/users/${user.id}/suspend`, {
    token: h.root,
    body: { until, reason: "cooling off" },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "suspended");
  assert.equal(res.body.data.suspended_until, until);
  assertError(await h.call("GET", "/v1/auth/me", { token: user.token }), 401, "UNAUTHORIZED");
  const refused = await login(h, user.email);
  assertError(refused, 401, "UNAUTHORIZED");
  assert.equal(refused.body.error.message, "invalid email, username or password");

  h.advance(2 * 3_600_000 - 1);
  assertError(await login(h, user.email), 401, "UNAUTHORIZED");
  h.advance(1);
  const stored = await h.kv.get<{ status: string }>(keys.user(user.id));
  assert.equal(stored.value?.status, "suspended", "nothing was written yet");
  assert.equal((await login(h, user.email)).status, 200);
  const read = await h.call("GET", `/v1/users/${user.id}`, { token: h.root });
  assert.equal(read.body.data.status, "active");
  assert.equal(read.body.data.suspended_until, null);
  const active = await h.call("GET", "/v1/users?status=active", { token: h.root });
  assert.ok(active.body.data.some((u: { id: string }) => u.id === user.id));

  // The cron writes it down, audited as the system, and frees the index.
  const task = MAINTENANCE_TASKS.find((t) => t.name === "lift-suspensions")!;
  assert.deepEqual(await task.run(h.svc), { suspensions_lifted: 1 });
  assert.deepEqual(await task.run(h.svc), { suspensions_lifted: 0 });
  const after = await h.kv.get<{ status: string }>(keys.user(user.id));
  assert.equal(after.value?.status, "active");
  const [lifted] = await h.auditFor(user.id);
  assert.equal(lifted.action, "user.suspension_lifted");
  assert.equal(lifted.actor_id, "system");
});

Deno.test("POST /v1/users/{id}/suspend: until null lifts now; bad until is 400; blocked users are not suspended", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const path = `/v1/users/${user.id}/suspend`;
  const soon = new Date(h.clock.now + 3_600_000).toISOString();
  await h.call("POST", path, { token: h.root, body: { until: soon } });
  const lifted = await h.call("POST", path, { token: h.root, body: { until: null } });
  assert.equal(lifted.body.data.status, "active");
  assert.equal((await h.auditFor(user.id))[0].action, "user.unsuspended");
  const past = new Date(h.clock.now - 1000).toISOString();
  assertInvalid(await h.call("POST", path, { token: h.root, body: { until: past } }), "until");
  const far = new Date(h.clock.now + 400 * 86_400_000).toISOString();
  assertInvalid(await h.call("POST", path, { token: h.root, body: { until: far } }), "until");
  assertInvalid(
    await h.call("POST", path, { token: h.root, body: { until: "tomorrow" } }),
    "json.until",
  );
  assertInvalid(await h.call("POST", path, { token: h.root, body: {} }), "json.until");
  await h.call("POST", `/v1/users/${user.id}/block`, { token: h.root, body: { blocked: true } });
  assertError(
    await h.call("POST", path, { token: h.root, body: { until: soon } }),
    400,
    "BAD_REQUEST",
  );
  const support = await h.user("support");
  assertError(
    await h.call("POST", path, { token: support.token, body: { until: soon } }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("POST", path, { body: { until: soon } }), 401, "UNAUTHORIZED");
});

// ── Revoke sessions ─────────────────────────────────────────────────────────────

Deno.test("POST /v1/users/{id}/revoke-sessions: ends every session and says how many", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const second = (await login(h, user.email)).body.data.token;
  const res = await h.call("POST", `/v1/users/${user.id}/revoke-sessions`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data, { revoked: 2 });
  for (const token of [user.token, second]) {
    assertError(await h.call("GET", "/v1/auth/me", { token }), 401, "UNAUTHORIZED");
  }
  const again = await h.call("POST", `/v1/users/${user.id}/revoke-sessions`, { token: h.root });
  assert.deepEqual(again.body.data, { revoked: 0 });
  assert.equal((await h.auditFor(user.id))[0].action, "user.sessions_revoked");
  const support = await h.user("support");
  assertError(
    await h.call("POST", `/v1/users/${user.id}/revoke-sessions`, { token: support.token }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("POST", `/v1/users/${user.id}/revoke-sessions`), 401, "UNAUTHORIZED");
  assertError(
    await h.call("POST", "/v1/users/usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/revoke-sessions", {
      token: h.root,
    }),
    404,
    "NOT_FOUND",
  );
});

// ── Audit trail ─────────────────────────────────────────────────────────────────

Deno.test("GET /v1/users/{id}/audit-trail: what the user did and what was done to it, newest first", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const user = await memberOf(h, t.id, "owner");
  const other = await h.user(null);
  await h.call("PATCH", "/v1/tenants/acme", { token: user.token, body: { name: "Acme Inc" } });
  const res = await h.call("GET", `/v1/users/${user.id}/audit-trail`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  const actions = res.body.data.map((e: { action: string }) => e.action);
  assert.deepEqual(actions, [
    "tenant.updated",
    "membership.created",
    "session.created",
    "user.created",
  ]);
  assert.ok(!res.text.includes(other.id));
  const filtered = await h.call(
    "GET",
    `/v1/users/${user.id}/audit-trail?action=session.created&limit=1`,
    { token: h.root },
  );
  assert.deepEqual(filtered.body.data.map((e: { action: string }) => e.action), [
    "session.created",
  ]);
  const support = await h.user("support");
  const masked = await h.call("GET", `/v1/users/${user.id}/audit-trail`, { token: support.token });
  assert.ok(!masked.text.includes("203.0.113.7"));
  assert.ok(!masked.text.includes(user.email));
});

Deno.test("GET /v1/users/{id}/audit-trail: 404 unknown user, 400 bad filters, 401, 403", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const path = `/v1/users/${user.id}/audit-trail`;
  assertError(
    await h.call("GET", "/v1/users/usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/audit-trail", { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(await h.call("GET", `${path}?from=yesterday`, { token: h.root }), "query.from");
  assertInvalid(await h.call("GET", `${path}?colour=red`, { token: h.root }));
  assertError(await h.call("GET", path), 401, "UNAUTHORIZED");
  const finance = await h.user("finance");
  assertError(await h.call("GET", path, { token: finance.token }), 403, "FORBIDDEN");
  assertError(await h.call("GET", path, { token: user.token }), 403, "FORBIDDEN");
});

Deno.test("GET /v1/users: an erased user is neither listed nor counted unless asked for; totals agree", async () => {
  await using h = await setup();
  const gone = await h.user(null);
  await h.user(null);
  assert.equal((await h.call("DELETE", `/v1/users/${gone.id}`, { token: h.root })).status, 200);
  const page = await h.call("GET", "/v1/users?offset=0&limit=100", { token: h.root });
  assert.equal(page.body.pagination.total, page.body.data.length);
  assert.ok(!page.body.data.some((u: { id: string }) => u.id === gone.id));
  const erased = await h.call("GET", "/v1/users?status=deleted", { token: h.root });
  assert.deepEqual(erased.body.data.map((u: { id: string }) => u.id), [gone.id]);
});
