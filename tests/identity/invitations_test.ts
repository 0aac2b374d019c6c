/**
 * Invitations: /v1/tenants/{tenant}/invitations and /v1/invitations/accept — success,
 * validation, authentication, roles, tenant isolation, If-Match, Idempotency-Key, audit events,
 * the token's storage, expiry, revocation and concurrent acceptance.
 */
import assert from "node:assert/strict";
import { sha256Hex } from "../../domain/shared/secrets.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup, TEST_PASSWORD } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const DAY = 86_400_000;
const NEW_PASSWORD = "a long enough passphrase";

async function invite(
  h: Harness,
  token: string,
  body: Record<string, unknown> = { email: "new@example.com", role: "member" },
  slug = "acme",
) {
  const res = await h.call("POST", `/v1/tenants/${slug}/invitations`, { token, body });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; token: string; email: string; expires_at: string };
}

const accept = (h: Harness, body: Record<string, unknown>) =>
  h.call("POST", "/v1/invitations/accept", { body });

async function events(h: Harness, type: string) {
  const out = [];
  for await (
    const e of h.kv.list<{ type: string; data: Record<string, unknown> }>({ prefix: ["events"] })
  ) {
    if (e.value.type === type) out.push(e.value);
  }
  return out;
}

// ── POST /v1/tenants/{tenant}/invitations ──────────────────────────────────────

Deno.test("POST invitations: returns the token once; stores only its hash; mailed, in no event", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const admin = await memberOf(h, t.id, "admin");
  const res = await h.call("POST", "/v1/tenants/acme/invitations", {
    token: admin.token,
    body: { email: " New@Example.com ", role: "member" },
  });
  assert.equal(res.status, 201, res.text);
  const inv = res.body.data;
  assert.match(inv.id, /^inv_/);
  assert.match(inv.token, /^sti_[0-9A-Za-z]{43}$/);
  assert.equal(inv.email, "new@example.com");
  assert.equal(inv.role, "member");
  assert.equal(inv.status, "pending");
  assert.equal(inv.expires_at, "2026-03-08T12:00:00.000Z");
  assert.equal(inv.created_by, admin.id);
  assert.equal(inv.token_hash, undefined);
  assert.equal(res.headers.get("Location"), `/v1/tenants/${t.id}/invitations/${inv.id}`);
  const stored = await h.kv.get<{ token_hash: string }>(keys.invitation(t.id, inv.id));
  assert.equal(res.headers.get("ETag"), `"${stored.versionstamp}"`);
  assert.equal(stored.value?.token_hash, sha256Hex(inv.token));
  // In clear nowhere in the store: the mail holding it is sealed; the event does not carry it.
  assert.ok(!(await h.dump()).includes(inv.token));
  const [event] = await events(h, "invitation.created");
  assert.equal(event.data.token, undefined);
  assert.equal(event.data.email, "new@example.com");
  const mails = await h.call("GET", "/v1/admin/emails?template=invitation", { token: h.root });
  assert.equal(mails.body.data[0].to, "new@example.com");
  const audit = await h.auditFor(inv.id);
  assert.deepEqual(audit.map((e) => e.action), ["invitation.created"]);
  assert.equal(audit[0].actor_id, admin.id);
  assert.ok(!JSON.stringify(audit).includes(inv.token));
  // Listing never shows the token.
  const list = await h.call("GET", "/v1/tenants/acme/invitations", { token: admin.token });
  assert.ok(!list.text.includes(inv.token));
});

Deno.test("POST invitations: expires_in_days is 1–30; bad email, role or extra fields are 400", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const ok = await invite(h, h.root, {
    email: "a@example.com",
    role: "viewer",
    expires_in_days: 30,
  });
  assert.equal(ok.expires_at, "2026-03-31T12:00:00.000Z");
  const send = (body: unknown) =>
    h.call("POST", "/v1/tenants/acme/invitations", { token: h.root, body });
  assertInvalid(
    await send({ email: "a@example.com", role: "viewer", expires_in_days: 0 }),
    "json.expires_in_days",
  );
  assertInvalid(
    await send({ email: "a@example.com", role: "viewer", expires_in_days: 31 }),
    "json.expires_in_days",
  );
  assertInvalid(
    await send({ email: "nope", role: "king", plan: "x" }),
    "json.email",
    "json.role",
    "json",
  );
});

Deno.test("POST invitations: 401, 403 for members and for admins inviting owners, 404 across tenants, 409 for members", async () => {
  await using h = await setup();
  const a = await h.tenant("acme");
  await h.tenant("other");
  const member = await memberOf(h, a.id, "member");
  const admin = await memberOf(h, a.id, "admin");
  const owner = await memberOf(h, a.id, "owner");
  const body = { email: "x@example.com", role: "viewer" };
  const post = (token: string | undefined, b: unknown, slug = "acme") =>
    h.call("POST", `/v1/tenants/${slug}/invitations`, { token, body: b });
  assertError(await post(undefined, body), 401, "UNAUTHORIZED");
  assertError(await post(member.token, body), 403, "FORBIDDEN");
  assertError(await post(admin.token, { ...body, role: "owner" }), 403, "FORBIDDEN");
  assert.equal((await post(owner.token, { ...body, role: "owner" })).status, 201);
  assertError(await post(owner.token, body, "other"), 404, "NOT_FOUND");
  assertError(await post(owner.token, { email: admin.email, role: "viewer" }), 409, "CONFLICT");
});

Deno.test("POST invitations: Idempotency-Key replays the first answer; a different body is 422", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const send = (email: string) =>
    h.call("POST", "/v1/tenants/acme/invitations", {
      token: h.root,
      headers: { "Idempotency-Key": "inv-1" },
      body: { email, role: "viewer" },
    });
  const first = await send("a@example.com");
  assert.equal(first.status, 201);
  const replay = await send("a@example.com");
  assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(replay.body.data, first.body.data);
  assertError(await send("b@example.com"), 422, "UNPROCESSABLE");
  const list = await h.call("GET", "/v1/tenants/acme/invitations", { token: h.root });
  assert.equal(list.body.data.length, 1);
  // The replayed token is not stored in clear either.
  assert.ok(!(await h.dump()).includes(first.body.data.token));
});

// ── GET /v1/tenants/{tenant}/invitations ───────────────────────────────────────

Deno.test("GET invitations: newest first, filtered by status (expired computed), paginated", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const short = await invite(h, h.root, {
    email: "s@example.com",
    role: "viewer",
    expires_in_days: 1,
  });
  h.advance(1000);
  const revoked = await invite(h, h.root, { email: "r@example.com", role: "viewer" });
  h.advance(1000);
  const accepted = await invite(h, h.root, { email: "a@example.com", role: "viewer" });
  h.advance(1000);
  const pending = await invite(h, h.root, { email: "p@example.com", role: "viewer" });
  await h.call("DELETE", `/v1/tenants/acme/invitations/${revoked.id}`, { token: h.root });
  const ok = await accept(h, { token: accepted.token, name: "Ann", password: NEW_PASSWORD });
  assert.equal(ok.status, 200, ok.text);
  h.advance(DAY);
  const ids = async (q = "") =>
    (await h.call("GET", `/v1/tenants/acme/invitations${q}`, { token: h.root })).body.data.map((
      i: { id: string },
    ) => i.id);
  assert.deepEqual(await ids(), [pending.id, accepted.id, revoked.id, short.id]);
  assert.deepEqual(await ids("?status=expired"), [short.id]);
  assert.deepEqual(await ids("?status=pending"), [pending.id]);
  assert.deepEqual(await ids("?status=accepted"), [accepted.id]);
  assert.deepEqual(await ids("?status=revoked"), [revoked.id]);
  const page = await h.call("GET", "/v1/tenants/acme/invitations?limit=3", { token: h.root });
  assert.equal(page.body.data.length, 3);
  assert.equal(page.body.pagination.has_more, true);
  assertInvalid(
    await h.call("GET", "/v1/tenants/acme/invitations?status=lost", { token: h.root }),
    "query.status",
  );
});

Deno.test("GET invitations: support sees emails masked; 401; a viewer reads; 404 for another tenant", async () => {
  await using h = await setup();
  const a = await h.tenant("acme");
  const b = await h.tenant("other");
  await invite(h, h.root, { email: "alice@example.com", role: "viewer" });
  const support = await h.user("support");
  const res = await h.call("GET", "/v1/tenants/acme/invitations", { token: support.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data[0].email, "a***@e***.com");
  assert.ok(!res.text.includes("alice@example.com"));
  assertError(await h.call("GET", "/v1/tenants/acme/invitations"), 401, "UNAUTHORIZED");
  const viewer = await memberOf(h, a.id, "viewer");
  assert.equal(
    (await h.call("GET", "/v1/tenants/acme/invitations", { token: viewer.token })).status,
    200,
  );
  const outsider = await memberOf(h, b.id, "owner");
  assertError(
    await h.call("GET", "/v1/tenants/acme/invitations", { token: outsider.token }),
    404,
    "NOT_FOUND",
  );
});

// ── DELETE /v1/tenants/{tenant}/invitations/{id} ───────────────────────────────

Deno.test("DELETE invitations: revokes (audited), twice changes nothing; the token stops working", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const admin = await memberOf(h, t.id, "admin");
  const inv = await invite(h, admin.token);
  const res = await h.call("DELETE", `/v1/tenants/acme/invitations/${inv.id}`, {
    token: admin.token,
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "revoked");
  assert.equal(res.body.data.revoked_at, "2026-03-01T12:00:00.000Z");
  const again = await h.call("DELETE", `/v1/tenants/acme/invitations/${inv.id}`, {
    token: admin.token,
  });
  assert.equal(again.status, 200);
  assert.equal(again.headers.get("ETag"), res.headers.get("ETag"));
  assert.deepEqual((await h.auditFor(inv.id)).map((e) => e.action), [
    "invitation.revoked",
    "invitation.created",
  ]);
  const refused = await accept(h, { token: inv.token, name: "N", password: NEW_PASSWORD });
  assertError(refused, 409, "CONFLICT");
  assert.equal((await h.kv.get(keys.userEmail("new@example.com"))).versionstamp, null);
});

Deno.test("DELETE invitations: 400, 401, 403, 404 across tenants, 412 on a stale If-Match, 409 once accepted", async () => {
  await using h = await setup();
  const a = await h.tenant("acme");
  await h.tenant("other");
  const viewer = await memberOf(h, a.id, "viewer");
  const inv = await invite(h, h.root);
  const theirs = await invite(h, h.root, { email: "o@example.com", role: "viewer" }, "other");
  const url = (slug: string, id: string) => `/v1/tenants/${slug}/invitations/${id}`;
  assertInvalid(await h.call("DELETE", url("acme", "inv_nope"), { token: h.root }), "param.id");
  assertError(await h.call("DELETE", url("acme", inv.id)), 401, "UNAUTHORIZED");
  assertError(
    await h.call("DELETE", url("acme", inv.id), { token: viewer.token }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("DELETE", url("acme", theirs.id), { token: h.root }), 404, "NOT_FOUND");
  const owner = await memberOf(h, a.id, "owner");
  assertError(
    await h.call("DELETE", url("other", theirs.id), { token: owner.token }),
    404,
    "NOT_FOUND",
  );
  assertError(
    await h.call("DELETE", url("acme", inv.id), {
      token: h.root,
      headers: { "If-Match": '"00000000000000010000"' },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  const used = await invite(h, h.root, { email: "u@example.com", role: "viewer" });
  assert.equal(
    (await accept(h, { token: used.token, name: "U", password: NEW_PASSWORD })).status,
    200,
  );
  assertError(await h.call("DELETE", url("acme", used.id), { token: h.root }), 409, "CONFLICT");
});

// ── POST /v1/invitations/accept ─────────────────────────────────────────────────

Deno.test("accept: a new email becomes a user, a member and an accepted invitation, in one commit", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const inv = await invite(h, h.root, { email: "new@example.com", role: "admin" });
  const res = await h.call("POST", "/v1/invitations/accept", {
    body: { token: inv.token, name: "New Person", password: NEW_PASSWORD },
    ip: "198.51.100.4",
  });
  assert.equal(res.status, 200, res.text);
  const d = res.body.data;
  assert.equal(d.user_created, true);
  assert.equal(d.user.email, "new@example.com");
  assert.equal(d.user.name, "New Person");
  assert.deepEqual(d.membership, { tenant_id: t.id, user_id: d.user.id, role: "admin" });
  assert.equal(d.invitation.status, "accepted");
  assert.equal(d.invitation.accepted_by, d.user.id);
  // Everything carries the same versionstamp: one commit.
  const [user, member, stored] = await h.kv.getMany([
    keys.user(d.user.id),
    keys.member(t.id, d.user.id),
    keys.invitation(t.id, inv.id),
  ]);
  assert.ok(user.versionstamp);
  assert.equal(member.versionstamp, user.versionstamp);
  assert.equal(stored.versionstamp, user.versionstamp);
  // The new user logs in and sees the tenant as admin.
  const login = await h.call("POST", "/v1/auth/login", {
    body: { email: "new@example.com", password: NEW_PASSWORD },
  });
  assert.equal(login.status, 200, login.text);
  const seen = await h.call("GET", "/v1/tenants/acme", { token: login.body.data.token });
  assert.equal(seen.status, 200);
  const audit = await h.auditFor(inv.id);
  assert.deepEqual(audit.map((e) => e.action), ["invitation.accepted", "invitation.created"]);
  assert.equal(audit[0].actor_id, d.user.id);
  const userEvents = (await h.auditFor(d.user.id)).map((e) => e.action).sort();
  assert.deepEqual(userEvents, ["membership.created", "user.created"]);
  assert.equal((await events(h, "invitation.accepted")).length, 1);
});

Deno.test("accept: an existing user only gains the membership; name and password stay", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const existing = await h.user(null, "known@example.com");
  const inv = await invite(h, h.root, { email: "KNOWN@example.com", role: "viewer" });
  const res = await accept(h, {
    token: inv.token,
    name: "Hijack",
    password: "another long password",
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.user_created, false);
  assert.equal(res.body.data.user.id, existing.id);
  assert.match(res.body.data.user.name, /^User \d+$/);
  const member = await h.kv.get<{ role: string }>(keys.member(t.id, existing.id));
  assert.equal(member.value?.role, "viewer");
  const login = await h.call("POST", "/v1/auth/login", {
    body: { email: "known@example.com", password: TEST_PASSWORD },
  });
  assert.equal(login.status, 200, "the old password still works");
  assert.ok(
    !(await h.auditFor(existing.id)).some((e) =>
      e.action === "user.created" && e.actor_id !== "system"
    ),
  );
});

Deno.test("accept: a new email needs name and password (400 naming them); the password policy applies", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const inv = await invite(h, h.root);
  assertInvalid(await accept(h, { token: inv.token }), "json.name", "json.password");
  const short = await accept(h, { token: inv.token, name: "N", password: "short" });
  assertInvalid(short, "password");
  assert.match(short.body.error.message, /at least 12/);
  const withEmail = await accept(h, {
    token: inv.token,
    name: "N",
    password: "xx new@example.com xx",
  });
  assertInvalid(withEmail, "password");
  assertInvalid(
    await accept(h, { token: inv.token, name: "N", password: NEW_PASSWORD, role: "owner" }),
    "json",
  );
  assertInvalid(await accept(h, {}), "json.token");
  // Nothing was accepted along the way.
  const ok = await accept(h, { token: inv.token, name: "N", password: NEW_PASSWORD });
  assert.equal(ok.status, 200, ok.text);
});

Deno.test("accept: a second use, an unknown, a revoked and an expired token are clear 4xx", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const inv = await invite(h, h.root);
  const body = { token: inv.token, name: "N", password: NEW_PASSWORD };
  assert.equal((await accept(h, body)).status, 200);
  const twice = await accept(h, body);
  assertError(twice, 409, "CONFLICT");
  assert.match(twice.body.error.message, /already accepted/);
  assertError(await accept(h, { ...body, token: "sti_unknown" }), 404, "NOT_FOUND");

  const revoked = await invite(h, h.root, { email: "r@example.com", role: "viewer" });
  await h.call("DELETE", `/v1/tenants/acme/invitations/${revoked.id}`, { token: h.root });
  const refused = await accept(h, { ...body, token: revoked.token });
  assertError(refused, 409, "CONFLICT");
  assert.match(refused.body.error.message, /revoked/);

  const expiring = await invite(h, h.root, {
    email: "e@example.com",
    role: "viewer",
    expires_in_days: 2,
  });
  h.advance(2 * DAY - 1);
  const inTime = await invite(h, h.root, {
    email: "t@example.com",
    role: "viewer",
    expires_in_days: 1,
  });
  h.advance(1);
  const expired = await accept(h, { ...body, token: expiring.token });
  assertError(expired, 409, "CONFLICT");
  assert.match(expired.body.error.message, /expired/);
  const listed = await h.call("GET", `/v1/tenants/acme/invitations?status=expired`, {
    token: h.root,
  });
  assert.deepEqual(listed.body.data.map((i: { id: string }) => i.id), [expiring.id]);
  assert.equal((await accept(h, { ...body, token: inTime.token })).status, 200);
});

Deno.test("accept: two concurrent accepts of one invitation: exactly one succeeds", async () => {
  for (let round = 0; round < 5; round++) {
    await using h = await setup();
    const t = await h.tenant("acme");
    const inv = await invite(h, h.root, { email: `c${round}@example.com`, role: "owner" });
    const body = { token: inv.token, name: "C", password: NEW_PASSWORD };
    const results = await Promise.all([accept(h, body), accept(h, body), accept(h, body)]);
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, results.map((r) => r.text).join("\n"));
    for (const r of results.filter((r) => r.status !== 200)) {
      assertError(r, 409, "CONFLICT");
    }
    const members = [];
    for await (const m of h.kv.list({ prefix: keys.members(t.id) })) members.push(m);
    assert.equal(members.length, 1);
    const owners = await h.kv.get<Deno.KvU64>(keys.ownerCount(t.id));
    assert.equal(owners.value?.value, 1n);
    assert.equal((await events(h, "invitation.accepted")).length, 1);
  }
});

Deno.test("accept: Idempotency-Key replays the first answer; a different body is 422", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const inv = await invite(h, h.root);
  const send = (name: string) =>
    h.call("POST", "/v1/invitations/accept", {
      headers: { "Idempotency-Key": `accept-${inv.id}` },
      body: { token: inv.token, name, password: NEW_PASSWORD },
    });
  const first = await send("N");
  assert.equal(first.status, 200, first.text);
  const replay = await send("N");
  assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(replay.body.data, first.body.data);
  assertError(await send("Other"), 422, "UNPROCESSABLE");
});
