/**
 * POST /v1/auth/login, POST /v1/auth/logout and GET /v1/auth/me: logging in, throttling, session
 * lifetimes, logging out, and who the caller is (ARCHITECTURE.md, access control).
 */
import assert from "node:assert/strict";
import { PLATFORM_ROLE_GRANTS, PLATFORM_ROLES } from "../../domain/access/permissions.ts";
import { sha256Hex } from "../../domain/shared/secrets.ts";
import type { User } from "../../domain/identity/users.ts";
import {
  delayAfter,
  FREE_FAILURES,
  IP_MAX_FAILURES,
  IP_WINDOW_MS,
  KNOWN_IP_MS,
  MAX_DELAY_MS,
} from "../../domain/identity/login_throttle.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, type Reply, setup, TEST_PASSWORD } from "../_harness.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** POST /v1/auth/login with `email` and `password` (no credentials). */
function login(h: Harness, email: string, password = TEST_PASSWORD, headers = {}) {
  return h.call("POST", "/v1/auth/login", { body: { email, password }, headers });
}

/** GET /v1/auth/me as `token`. */
function me(h: Harness, token?: string) {
  return h.call("GET", "/v1/auth/me", { token });
}

/** Sets a user's status directly in the store (the users' API lands with the identity issue). */
async function setStatus(h: Harness, userId: string, status: User["status"]) {
  const entry = await h.kv.get<User>(keys.user(userId));
  assert.ok(entry.value, `user ${userId} exists`);
  await h.kv.set(keys.user(userId), { ...entry.value, status });
}

/** The paths (joined with ".") named in a 400's details. */
function issuePaths(body: { error: { details?: { path: unknown[] }[] } }): string[] {
  assert.ok(Array.isArray(body.error.details), "details is a list of issues");
  return body.error.details.map((d) => d.path.join("."));
}

// ── Login ─────────────────────────────────────────────────────────────────────

Deno.test("login: the right password returns a session token that works on /v1/auth/me", async () => {
  await using h = await setup();
  const user = await h.user("admin");
  const res = await login(h, user.email);
  assert.equal(res.status, 200);
  assert.equal(res.body.success, true);
  const data = res.body.data;
  assert.match(data.token, /^sts_[0-9A-Za-z]{43}$/);
  assert.match(data.session_id, /^ses_/);
  assert.equal(data.expires_at, new Date(h.clock.now + 12 * HOUR).toISOString());
  assert.equal(data.user.id, user.id);
  assert.equal(data.user.email, user.email);
  assert.equal(data.user.last_login_at, new Date(h.clock.now).toISOString());

  const who = await me(h, data.token);
  assert.equal(who.status, 200);
  assert.equal(who.body.data.type, "user");
  assert.equal(who.body.data.id, user.id);
  assert.equal(who.body.data.session_id, data.session_id);
});

Deno.test("login: the answer never carries a password or its hash", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await login(h, user.email);
  assert.equal(res.status, 200);
  assert.deepEqual(Object.keys(res.body.data.user).sort(), [
    "blocked_reason",
    "can_receive_mail",
    "created_at",
    "deleted_at",
    "email",
    "id",
    "last_login_at",
    "metadata",
    "name",
    "platform_role",
    "roles",
    "status",
    "suspended_reason",
    "suspended_until",
    "updated_at",
    "username",
  ]);
  assert.doesNotMatch(JSON.stringify(res.body.data.user), /password|scrypt|hash/i);
  assert.ok(!res.text.includes(TEST_PASSWORD));
});

Deno.test("login: the email is matched case-insensitively and trimmed", async () => {
  await using h = await setup();
  const user = await h.user(null, "mixed@example.com");
  const res = await login(h, "  MiXeD@Example.COM ");
  assert.equal(res.status, 200);
  assert.equal(res.body.data.user.id, user.id);
});

Deno.test("login: the session token is stored only as its SHA-256, never in clear", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await login(h, user.email);
  assert.equal(res.status, 200);
  const token: string = res.body.data.token;
  const dump = await h.dump();
  assert.ok(!dump.includes(token), "the session token is not in the store");
  assert.ok(!dump.includes(token.slice(4)), "not even without its prefix");
  const hash = await sha256Hex(token);
  assert.ok(
    dump.includes(JSON.stringify(keys.sessionHash(hash))),
    "its SHA-256 indexes the session",
  );
  const pointer = await h.kv.get<string>(keys.sessionHash(hash));
  assert.equal(pointer.value, res.body.data.session_id);
});

Deno.test("login: writes a session.created audit event with the caller's ip and user agent", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await h.call("POST", "/v1/auth/login", {
    body: { email: user.email, password: TEST_PASSWORD },
    headers: { "User-Agent": "auth-test/1.0" },
    ip: "198.51.100.23",
  });
  assert.equal(res.status, 200);
  const sessionId = res.body.data.session_id;

  const events = await h.auditFor(sessionId);
  assert.equal(events.length, 1);
  const event = events[0] as (typeof events)[number] & {
    ip_address: string | null;
    user_agent: string | null;
    resource_type: string;
  };
  assert.equal(event.action, "session.created");
  assert.equal(event.resource_type, "session");
  assert.equal(event.actor_id, user.id);
  assert.equal(event.ip_address, "198.51.100.23");
  assert.equal(event.user_agent, "auth-test/1.0");
  assert.deepEqual(event.changes?.ip, { before: null, after: "198.51.100.23" });
  assert.ok(!JSON.stringify(events).includes("sts_"), "the audit trail holds no session token");
});

// ── Login: validation ─────────────────────────────────────────────────────────

Deno.test("login validation: missing fields are 400 BAD_REQUEST naming each path", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/auth/login", { body: {} });
  assert.equal(res.status, 400);
  assert.equal(res.body.success, false);
  assert.equal(res.body.error.code, "BAD_REQUEST");
  const paths = issuePaths(res.body);
  assert.ok(paths.includes("json.password"), paths.join(", "));
  // With a password, the missing name is named: an email or a username.
  const noName = await h.call("POST", "/v1/auth/login", { body: { password: "x" } });
  assert.equal(noName.status, 400);
  assert.ok(issuePaths(noName.body).includes("json.email"), noName.text);
});

Deno.test("login validation: a malformed email is 400 naming json.email", async () => {
  await using h = await setup();
  const res = await login(h, "not-an-email");
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, "BAD_REQUEST");
  assert.deepEqual(issuePaths(res.body), ["json.email"]);
});

Deno.test("login validation: an empty password is 400 naming json.password", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await login(h, user.email, "");
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, "BAD_REQUEST");
  assert.deepEqual(issuePaths(res.body), ["json.password"]);
});

Deno.test("login validation: an unknown field is rejected (strict body)", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await h.call("POST", "/v1/auth/login", {
    body: { email: user.email, password: TEST_PASSWORD, platform_role: "super_admin" },
  });
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, "BAD_REQUEST");
  const issue = res.body.error.details[0];
  assert.deepEqual(issue.path, ["json"]);
  assert.equal(issue.code, "unrecognized_keys");
  assert.match(issue.message, /platform_role/);
});

Deno.test("login validation: a failed validation does not count towards the lockout", async () => {
  await using h = await setup();
  const user = await h.user(null);
  for (let i = 0; i < 12; i++) {
    assert.equal((await login(h, user.email, "")).status, 400);
  }
  assert.equal((await login(h, user.email)).status, 200);
});

// ── Login: failures and lockout ───────────────────────────────────────────────

Deno.test("login: unknown email and wrong password get the same answer", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const wrong = await login(h, user.email, "wrong password entirely");
  const unknown = await login(h, "nobody@example.com", "wrong password entirely");
  assert.equal(wrong.status, 401);
  assert.equal(unknown.status, 401);
  assert.equal(wrong.body.error.code, "UNAUTHORIZED");
  assert.equal(unknown.body.error.code, wrong.body.error.code);
  assert.equal(unknown.body.error.message, wrong.body.error.message);
  assert.equal(unknown.body.error.details, wrong.body.error.details);
});

/** Fails `n` logins for `email` from `ip`, each answered 401. */
async function fail(h: Harness, email: string, n: number, ip?: string) {
  for (let i = 1; i <= n; i++) {
    const res = await h.call("POST", "/v1/auth/login", {
      body: { email, password: `wrong ${i}` },
      ip,
    });
    assert.equal(res.status, 401, `failure ${i}: ${res.text}`);
  }
}

function assertThrottled(res: Reply, seconds: number) {
  assert.equal(res.status, 429, res.text);
  assert.equal(res.body.error.code, "RATE_LIMITED");
  assert.equal(res.headers.get("Retry-After"), String(seconds));
  assert.equal(res.body.data, undefined);
}

Deno.test("login throttle: five failures are free, then each attempt waits a doubling delay", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await fail(h, user.email, FREE_FAILURES + 1);
  // The sixth attempt started a one-second wait; the right password waits too.
  assertThrottled(await login(h, user.email), 1);
  for (const seconds of [2, 4, 8, 16]) {
    h.advance(seconds * 500);
    await fail(h, user.email, 1);
    assertThrottled(await login(h, user.email), seconds);
  }
  h.advance(16_000);
  assert.equal((await login(h, user.email)).status, 200);
});

Deno.test("login throttle: the delay stops growing at 15 minutes (no lock to hold forever)", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await fail(h, user.email, FREE_FAILURES);
  for (let i = 0; i < 15; i++) {
    await fail(h, user.email, 1);
    h.advance(MAX_DELAY_MS);
  }
  assert.equal(delayAfter(100), MAX_DELAY_MS);
  await fail(h, user.email, 1);
  assertThrottled(await login(h, user.email), MAX_DELAY_MS / 1000);
  h.advance(MAX_DELAY_MS);
  assert.equal((await login(h, user.email)).status, 200);
});

Deno.test("login throttle: a success clears the count", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await fail(h, user.email, FREE_FAILURES - 1);
  assert.equal((await login(h, user.email)).status, 200);
  await fail(h, user.email, FREE_FAILURES);
  assert.equal((await login(h, user.email)).status, 200);
});

Deno.test("login throttle: an unknown email is throttled the same way (no existence leak)", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await fail(h, user.email, FREE_FAILURES + 1);
  await fail(h, "ghost@example.com", FREE_FAILURES + 1);
  const known = await login(h, user.email);
  const unknown = await login(h, "ghost@example.com");
  assertThrottled(unknown, 1);
  assert.equal(unknown.status, known.status);
  assert.equal(unknown.body.error.message, known.body.error.message);
  assert.equal(unknown.headers.get("Retry-After"), known.headers.get("Retry-After"));
});

Deno.test("login throttle: counts per email, whatever its case; other emails are not affected", async () => {
  await using h = await setup();
  const slowed = await h.user(null, "slowed@example.com");
  const other = await h.user(null, "other@example.com");
  for (let i = 0; i <= FREE_FAILURES; i++) {
    await fail(h, i % 2 ? "SLOWED@example.com" : "slowed@example.com", 1);
  }
  assertThrottled(await login(h, slowed.email), 1);
  assert.equal((await login(h, other.email)).status, 200, "another email is not affected");
});

Deno.test("login throttle: a parallel burst gets at most six passwords checked", async () => {
  await using h = await setup();
  const user = await h.user(null);
  // Attempts are counted before any password is checked, so a burst is no better than a
  // sequence: the free ones and one more are checked (401), the rest refused unchecked (429).
  const burst = await Promise.all(
    Array.from({ length: 15 }, (_, i) => login(h, user.email, `wrong ${i}`)),
  );
  const checked = burst.filter((r) => r.status === 401).length;
  const refused = burst.filter((r) => r.status === 429).length;
  assert.equal(checked + refused, 15);
  assert.ok(checked <= FREE_FAILURES + 1, `${checked} passwords were checked`);
  assert.equal((await login(h, user.email)).status, 429);
});

Deno.test("login throttle: the right password from an address the user logged in from gets in", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const home = "198.51.100.20", attacker = "203.0.113.66";
  const from = (ip: string, password = TEST_PASSWORD) =>
    h.call("POST", "/v1/auth/login", { body: { email: user.email, password }, ip });
  assert.equal((await from(home)).status, 200);
  await fail(h, user.email, FREE_FAILURES + 1, attacker);
  h.advance(1000);
  await fail(h, user.email, 1, attacker);
  h.advance(2000);
  await fail(h, user.email, 1, attacker);
  assertThrottled(await from(attacker), 4);
  assertThrottled(await from("192.0.2.50"), 4);
  const owner = await from(home);
  assert.equal(owner.status, 200, "the owner is not locked out by the attacker");
  // A wrong password from the known address is still a plain 401, and still counted.
  assert.equal((await from(home, "wrong")).status, 401);
  // Known for 90 days.
  h.advance(KNOWN_IP_MS);
  await fail(h, user.email, FREE_FAILURES, attacker);
  assertThrottled(await from(home), 1);
});

Deno.test("login throttle: 30 failures from one address, over any accounts, stop it for the window", async () => {
  await using h = await setup();
  const victim = await h.user(null);
  const ip = "203.0.113.9";
  for (let i = 0; i < IP_MAX_FAILURES; i++) {
    await fail(h, `user${i}@example.com`, 1, ip);
  }
  const spray = await h.call("POST", "/v1/auth/login", {
    body: { email: victim.email, password: TEST_PASSWORD },
    ip,
  });
  assert.equal(spray.status, 429);
  assert.ok(Number(spray.headers.get("Retry-After")) <= IP_WINDOW_MS / 1000);
  const elsewhere = await h.call("POST", "/v1/auth/login", {
    body: { email: victim.email, password: TEST_PASSWORD },
    ip: "198.51.100.1",
  });
  assert.equal(elsewhere.status, 200, "another address is not affected");
  h.advance(IP_WINDOW_MS);
  const later = await h.call("POST", "/v1/auth/login", {
    body: { email: victim.email, password: TEST_PASSWORD },
    ip,
  });
  assert.equal(later.status, 200, "the next window starts afresh");
});

Deno.test("login: behind a trusted proxy the client address comes from X-Forwarded-For", async () => {
  await using h = await setup({ env: { STEWARD_TRUSTED_PROXIES: "10.0.0.0/8, fd00::/8" } });
  const user = await h.user(null);
  const loginVia = async (ip: string, xff?: string) => {
    const res = await h.call("POST", "/v1/auth/login", {
      body: { email: user.email, password: TEST_PASSWORD },
      headers: xff ? { "X-Forwarded-For": xff } : {},
      ip,
    });
    assert.equal(res.status, 200, res.text);
    const session = await h.kv.get<{ ip: string }>(keys.session(res.body.data.session_id));
    return session.value?.ip;
  };
  assert.equal(await loginVia("10.1.2.3", "198.51.100.7"), "198.51.100.7");
  // Right to left past the trusted hops; what the client wrote further left proves nothing.
  assert.equal(await loginVia("10.1.2.3", "1.2.3.4, 198.51.100.7, 10.9.9.9"), "198.51.100.7");
  assert.equal(await loginVia("fd00::1", "2001:db8::7"), "2001:db8::7");
  // A peer that is not a trusted proxy is the client, whatever the header says.
  assert.equal(await loginVia("198.51.100.99", "1.2.3.4"), "198.51.100.99");
});

// ── Blocked and suspended users ───────────────────────────────────────────────

for (const status of ["blocked", "suspended"] as const) {
  Deno.test(`login: a ${status} user is answered as a wrong password would be (401)`, async () => {
    await using h = await setup();
    const user = await h.user("admin");
    await setStatus(h, user.id, status);
    const right = await login(h, user.email);
    const wrong = await login(h, user.email, "wrong password entirely");
    assert.equal(right.status, 401);
    assert.equal(right.body.error.code, "UNAUTHORIZED");
    assert.equal(right.body.error.message, wrong.body.error.message);
    assert.equal(right.body.data, undefined);
    assert.doesNotMatch(right.text, /sts_/);
  });

  Deno.test(`session: a ${status} user's existing session is refused on the next request`, async () => {
    await using h = await setup();
    const user = await h.user("admin");
    assert.equal((await me(h, user.token)).status, 200);
    await setStatus(h, user.id, status);
    const res = await me(h, user.token);
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, "UNAUTHORIZED");
    const tenants = await h.call("GET", "/v1/tenants", { token: user.token });
    assert.equal(tenants.status, 401, "on every route, not only /me");
  });
}

Deno.test("login: a blocked user with a wrong password gets the plain 401", async () => {
  await using h = await setup();
  const user = await h.user(null);
  await setStatus(h, user.id, "blocked");
  const res = await login(h, user.email, "wrong password");
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, "UNAUTHORIZED");
});

// ── Session lifetimes ─────────────────────────────────────────────────────────

Deno.test("session: idle for an hour ends it (401)", async () => {
  await using h = await setup();
  const user = await h.user(null);
  h.advance(59 * MINUTE);
  assert.equal((await me(h, user.token)).status, 200, "59 minutes idle is still live");
  h.advance(HOUR);
  const res = await me(h, user.token);
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, "UNAUTHORIZED");
  assert.ok(res.headers.get("WWW-Authenticate"));
});

Deno.test("session: exactly one hour of idleness is already too long", async () => {
  await using h = await setup();
  const user = await h.user(null);
  h.advance(HOUR);
  assert.equal((await me(h, user.token)).status, 401);
});

Deno.test("session: activity within the idle window keeps it alive past the first hour", async () => {
  await using h = await setup();
  const user = await h.user(null);
  for (let i = 1; i <= 4; i++) {
    h.advance(50 * MINUTE);
    const res = await me(h, user.token);
    assert.equal(res.status, 200, `after ${i * 50} minutes with activity every 50`);
  }
  // The last request moved last_seen_at: another 50 minutes is fine, 60 idle is not.
  h.advance(50 * MINUTE);
  assert.equal((await me(h, user.token)).status, 200);
  h.advance(HOUR);
  assert.equal((await me(h, user.token)).status, 401);
});

Deno.test("session: last_seen_at is written at most once a minute", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const who = await me(h, user.token);
  const sessionId = who.body.data.session_id;
  const read = async () =>
    (await h.kv.get<{ last_seen_at: string }>(keys.session(sessionId))).value!.last_seen_at;
  const loggedInAt = await read();

  h.advance(30_000);
  assert.equal((await me(h, user.token)).status, 200);
  assert.equal(await read(), loggedInAt, "30 s later: not rewritten");

  h.advance(30_000);
  assert.equal((await me(h, user.token)).status, 200);
  assert.equal(await read(), new Date(h.clock.now).toISOString(), "60 s later: touched");
});

Deno.test("session: ends at the absolute deadline (12 h) however active", async () => {
  await using h = await setup();
  const user = await h.user(null);
  let elapsed = 0;
  while (elapsed + 50 * MINUTE < 12 * HOUR) {
    h.advance(50 * MINUTE);
    elapsed += 50 * MINUTE;
    assert.equal((await me(h, user.token)).status, 200, `live after ${elapsed / MINUTE} min`);
  }
  h.advance(12 * HOUR - elapsed - 1);
  assert.equal((await me(h, user.token)).status, 200, "one millisecond before the deadline");
  h.advance(1);
  const res = await me(h, user.token);
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, "UNAUTHORIZED");
});

Deno.test("session: an unknown session token is 401", async () => {
  await using h = await setup();
  const res = await me(h, "sts_" + "A".repeat(43));
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, "UNAUTHORIZED");
});

// ── Logout ────────────────────────────────────────────────────────────────────

Deno.test("logout: ends the session; the next request with it is 401", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const res = await h.call("POST", "/v1/auth/logout", { token: user.token });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.data, { revoked: true });
  const after = await me(h, user.token);
  assert.equal(after.status, 401);
  assert.equal(after.body.error.code, "UNAUTHORIZED");
  const again = await h.call("POST", "/v1/auth/logout", { token: user.token });
  assert.equal(again.status, 401);
});

Deno.test("logout: only the current session ends, not the user's other sessions", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const second = await login(h, user.email);
  assert.equal(second.status, 200);
  assert.equal((await h.call("POST", "/v1/auth/logout", { token: user.token })).status, 200);
  assert.equal((await me(h, user.token)).status, 401);
  assert.equal((await me(h, second.body.data.token)).status, 200);
});

Deno.test("logout: writes a session.revoked audit event and removes the session from the store", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const sessionId = (await me(h, user.token)).body.data.session_id;
  assert.equal((await h.call("POST", "/v1/auth/logout", { token: user.token })).status, 200);

  const events = await h.auditFor(sessionId);
  const revoked = events.filter((e) => e.action === "session.revoked");
  assert.equal(revoked.length, 1);
  assert.equal(revoked[0].actor_id, user.id);

  assert.equal((await h.kv.get(keys.session(sessionId))).versionstamp, null);
  assert.equal((await h.kv.get(keys.userSession(user.id, sessionId))).versionstamp, null);
  assert.equal(
    (await h.kv.get(keys.sessionHash(await sha256Hex(user.token)))).versionstamp,
    null,
  );
});

Deno.test("logout: a service token cannot log out (400) and keeps working", async () => {
  await using h = await setup();
  const token = await h.serviceToken(["tenants:read"]);
  const res = await h.call("POST", "/v1/auth/logout", { token: token.token });
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, "BAD_REQUEST");
  assert.equal((await me(h, token.token)).status, 200);
});

Deno.test("logout and me: no credentials are 401 with WWW-Authenticate", async () => {
  await using h = await setup();
  for (const [method, path] of [["POST", "/v1/auth/logout"], ["GET", "/v1/auth/me"]]) {
    const res = await h.call(method, path);
    assert.equal(res.status, 401, `${method} ${path}`);
    assert.equal(res.body.success, false);
    assert.equal(res.body.error.code, "UNAUTHORIZED");
    assert.equal(typeof res.body.error.request_id, "string");
    assert.match(res.headers.get("WWW-Authenticate") ?? "", /^Bearer/);
  }
});

Deno.test("auth: a malformed Authorization header is 401 with WWW-Authenticate", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const malformed = [
    `Basic ${btoa(`${user.email}:${TEST_PASSWORD}`)}`,
    "Bearer",
    "Bearer ",
    `Bearer ${user.token} extra`,
    user.token,
    `Token ${user.token}`,
    `Bearer ${"x".repeat(600)}`,
    "Bearer not_a_steward_token",
  ];
  for (const header of malformed) {
    const res = await h.call("GET", "/v1/auth/me", { headers: { Authorization: header } });
    assert.equal(res.status, 401, header.slice(0, 40));
    assert.equal(res.body.error.code, "UNAUTHORIZED");
    assert.match(res.headers.get("WWW-Authenticate") ?? "", /^Bearer realm=/);
  }
  // The scheme is case-insensitive.
  const lower = await h.call("GET", "/v1/auth/me", {
    headers: { Authorization: `bearer ${user.token}` },
  });
  assert.equal(lower.status, 200);
});

// ── /v1/auth/me ───────────────────────────────────────────────────────────────

for (const role of PLATFORM_ROLES) {
  Deno.test(`me: a user with platform role ${role} sees exactly that role's permissions`, async () => {
    await using h = await setup();
    const user = await h.user(role);
    const res = await me(h, user.token);
    assert.equal(res.status, 200);
    const data = res.body.data;
    assert.equal(data.type, "user");
    assert.equal(data.id, user.id);
    assert.equal(data.platform_role, role);
    assert.equal(data.user.id, user.id);
    assert.equal(data.user.platform_role, role);
    assert.deepEqual(data.permissions, [...PLATFORM_ROLE_GRANTS[role].platform].sort());
    assert.equal(data.sees_tenants, PLATFORM_ROLE_GRANTS[role].sees);
    assert.equal(data.tenant_id, null);
    assert.deepEqual(data.memberships, []);
    assert.match(data.session_id, /^ses_/);
  });
}

Deno.test("me: an admin's permissions exclude vault:reveal and config", async () => {
  await using h = await setup();
  const user = await h.user("admin");
  const permissions: string[] = (await me(h, user.token)).body.data.permissions;
  assert.ok(permissions.includes("tokens:write"));
  assert.ok(permissions.includes("tenants:write"));
  for (const p of ["vault:reveal", "config:read", "config:write"]) {
    assert.ok(!permissions.includes(p), p);
  }
});

Deno.test("me: the user record it returns has no password fields", async () => {
  await using h = await setup();
  const user = await h.user("support");
  const res = await me(h, user.token);
  assert.equal(res.status, 200);
  assert.equal(res.body.data.user.email, user.email);
  assert.doesNotMatch(JSON.stringify(res.body.data.user), /password|scrypt|hash/i);
});

Deno.test("me: a tenant member without a platform role lists its memberships", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const globex = await h.tenant("globex");
  await h.tenant("initech");
  const user = await h.user(null);
  await h.member(acme.id, user.id, "owner");
  await h.member(globex.id, user.id, "viewer");

  const res = await me(h, user.token);
  assert.equal(res.status, 200);
  const data = res.body.data;
  assert.equal(data.type, "user");
  assert.equal(data.platform_role, null);
  assert.deepEqual(data.permissions, []);
  assert.equal(data.sees_tenants, "none");
  const memberships = [...data.memberships].sort((a, b) => a.tenant_id.localeCompare(b.tenant_id));
  const expected = [
    { tenant_id: acme.id, role: "owner" },
    { tenant_id: globex.id, role: "viewer" },
  ].sort((a, b) => a.tenant_id.localeCompare(b.tenant_id));
  assert.deepEqual(memberships, expected);
});

Deno.test("me: an unbound service token is described as a service_token", async () => {
  await using h = await setup();
  const token = await h.serviceToken(["tenants:read", "audit:read"]);
  const res = await me(h, token.token);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.data, {
    type: "service_token",
    id: token.id,
    user: null,
    platform_role: null,
    permissions: ["audit:read", "tenants:read"],
    sees_tenants: "all",
    tenant_id: null,
    memberships: [],
    session_id: null,
  });
});

Deno.test("me: a tenant-bound service token names its tenant", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const token = await h.serviceToken(["tenants:read", "keys:read"], acme.id);
  const res = await me(h, token.token);
  assert.equal(res.status, 200);
  assert.equal(res.body.data.type, "service_token");
  assert.equal(res.body.data.id, token.id);
  assert.equal(res.body.data.tenant_id, acme.id);
  assert.equal(res.body.data.sees_tenants, "none");
  assert.equal(res.body.data.user, null);
  // Platform-wide, a bound token holds at most what it was granted (it acts in its tenant).
  for (const p of res.body.data.permissions) {
    assert.ok(["keys:read", "tenants:read"].includes(p), p);
  }
});

Deno.test("me: the bootstrap token holds every permission", async () => {
  await using h = await setup();
  const res = await me(h, h.root);
  assert.equal(res.status, 200);
  assert.equal(res.body.data.type, "service_token");
  assert.deepEqual(
    res.body.data.permissions,
    [...PLATFORM_ROLE_GRANTS.super_admin.platform].sort(),
  );
});

// ── Idempotent login ──────────────────────────────────────────────────────────

Deno.test("login idempotency: the same key and body replay the first answer, same token", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const headers = { "Idempotency-Key": "login-attempt-1" };
  const first = await login(h, user.email, TEST_PASSWORD, headers);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("Idempotent-Replayed"), null);

  const second = await login(h, user.email, TEST_PASSWORD, headers);
  assert.equal(second.status, 200);
  assert.equal(second.headers.get("Idempotent-Replayed"), "true");
  assert.equal(second.body.data.token, first.body.data.token);
  assert.equal(second.body.data.session_id, first.body.data.session_id);
  assert.equal(second.text, first.text);

  // Replaying created no second session.
  const sessions = [];
  for await (const e of h.kv.list({ prefix: keys.userSessions(user.id) })) sessions.push(e);
  assert.equal(sessions.length, 2, "the harness's session and the one login");
});

Deno.test("login idempotency: the stored replay does not hold the session token in clear", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const key = "login-attempt-secret-check";
  const first = await login(h, user.email, TEST_PASSWORD, { "Idempotency-Key": key });
  assert.equal(first.status, 200);
  const dump = await h.dump();
  assert.ok(!dump.includes(first.body.data.token), "no session token in the store");
  assert.ok(!dump.includes(key), "no Idempotency-Key in the store");
});

Deno.test("login idempotency: the same key with a different body is 422", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const other = await h.user(null);
  const headers = { "Idempotency-Key": "login-attempt-2" };
  assert.equal((await login(h, user.email, TEST_PASSWORD, headers)).status, 200);
  const res = await login(h, other.email, TEST_PASSWORD, headers);
  assert.equal(res.status, 422);
  assert.equal(res.body.error.code, "UNPROCESSABLE");
  assert.doesNotMatch(res.text, /sts_/);
});

Deno.test("login idempotency: a failed login is not stored; the key can be retried", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const headers = { "Idempotency-Key": "login-attempt-3" };
  assert.equal((await login(h, user.email, "typo", headers)).status, 401);
  const retry = await login(h, user.email, TEST_PASSWORD, headers);
  assert.equal(retry.status, 200);
  assert.equal(retry.headers.get("Idempotent-Replayed"), null);
});
