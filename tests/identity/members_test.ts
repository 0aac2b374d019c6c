/**
 * Members: /v1/tenants/{tenant}/members — success, validation, authentication, roles, tenant
 * isolation, If-Match, Idempotency-Key, the audit events, the last-owner rule (also under
 * concurrency), owners at tenant creation and the backfill that seeds them.
 */
import assert from "node:assert/strict";
import { removeUserMemberships } from "../../domain/identity/memberships.ts";
import { listMemberships } from "../../domain/access/principal.ts";
import { SYSTEM_ACTOR } from "../../domain/shared/services.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, type Reply, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const etag = (res: Reply) => res.headers.get("ETag")!.replace(/^"(.*)"$/, "$1");

const path = (t: string, userId?: string) =>
  `/v1/tenants/${t}/members${userId ? `/${userId}` : ""}`;

async function ownerCount(h: Harness, tenantId: string) {
  return Number((await h.kv.get<Deno.KvU64>(keys.ownerCount(tenantId))).value?.value ?? 0n);
}

// ── GET ─────────────────────────────────────────────────────────────────────────

Deno.test("GET members: lists members with email, name and role; filters by role; paginates", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const viewer = await memberOf(h, t.id, "viewer");
  await memberOf(h, t.id, "member");
  const res = await h.call("GET", path("acme"), { token: owner.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.length, 3);
  const first = res.body.data.find((m: { user_id: string }) => m.user_id === owner.id);
  assert.equal(first.email, owner.email);
  assert.match(first.name, /^User \d+$/);
  assert.equal(first.role, "owner");
  assert.equal(first.created_at, "2026-03-01T12:00:00.000Z");
  const viewers = await h.call("GET", `${path("acme")}?role=viewer`, { token: owner.token });
  assert.deepEqual(viewers.body.data.map((m: { user_id: string }) => m.user_id), [viewer.id]);
  const page = await h.call("GET", `${path("acme")}?limit=2`, { token: owner.token });
  assert.equal(page.body.data.length, 2);
  assert.equal(page.body.pagination.has_more, true);
  const rest = await h.call(
    "GET",
    `${path("acme")}?limit=2&cursor=${encodeURIComponent(page.body.pagination.next_cursor)}`,
    { token: owner.token },
  );
  assert.equal(rest.body.data.length, 1);
});

Deno.test("GET members: support sees emails and names masked", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.member(t.id, (await h.user(null, "alice@example.com")).id, "owner");
  const support = await h.user("support");
  const res = await h.call("GET", path("acme"), { token: support.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data[0].email, "a***@e***.com");
  assert.equal(res.body.data[0].name, "U***");
  assert.ok(!res.text.includes("alice@example.com"));
});

Deno.test("GET members: 400 on unknown filters, 401 without credentials, 404 for another tenant", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  await h.tenant("tenant-b");
  const owner = await memberOf(h, a.id, "owner");
  assertInvalid(
    await h.call("GET", `${path("tenant-a")}?role=king`, { token: owner.token }),
    "query.role",
  );
  assertInvalid(await h.call("GET", `${path("tenant-a")}?team=x`, { token: owner.token }), "query");
  assertError(await h.call("GET", path("tenant-a")), 401, "UNAUTHORIZED");
  // Finance staff see the tenant but not its people.
  const finance = await h.user("finance");
  assertError(await h.call("GET", path("tenant-a"), { token: finance.token }), 403, "FORBIDDEN");
  assertError(await h.call("GET", path("tenant-b"), { token: owner.token }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", "/v1/tenants/tenant-b/invitations", { token: owner.token }),
    404,
    "NOT_FOUND",
  );
  // A user with no membership and no platform role: 404 too.
  const stranger = await h.user(null);
  assertError(await h.call("GET", path("tenant-a"), { token: stranger.token }), 404, "NOT_FOUND");
});

// ── POST ────────────────────────────────────────────────────────────────────────

Deno.test("POST members: adds an existing user, with ETag, Location and an audit event", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const admin = await memberOf(h, t.id, "admin");
  const newcomer = await h.user(null);
  const res = await h.call("POST", path("acme"), {
    token: admin.token,
    body: { user_id: newcomer.id, role: "member" },
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.data.user_id, newcomer.id);
  assert.equal(res.body.data.role, "member");
  assert.equal(res.body.data.email, newcomer.email);
  assert.equal(res.body.data.created_by, admin.id);
  assert.equal(res.headers.get("Location"), `/v1/tenants/${t.id}/members/${newcomer.id}`);
  const stored = await h.kv.get(keys.member(t.id, newcomer.id));
  assert.equal(etag(res), stored.versionstamp);
  // The newcomer now sees the tenant.
  const seen = await h.call("GET", "/v1/tenants/acme", { token: newcomer.token });
  assert.equal(seen.status, 200);
  const me = await h.call("GET", "/v1/auth/me", { token: newcomer.token });
  assert.deepEqual(me.body.data.memberships, [{ tenant_id: t.id, role: "member" }]);
  const events = (await h.auditFor(newcomer.id)).filter((e) => e.action.startsWith("membership"));
  assert.equal(events.length, 1);
  assert.equal(events[0].action, "membership.created");
  assert.equal(events[0].actor_id, admin.id);
  assert.deepEqual(events[0].changes?.role, { before: null, after: "member" });
});

Deno.test("POST members: 409 when already a member, 404 for an unknown user, 400 on a bad body", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const again = await h.call("POST", path("acme"), {
    token: owner.token,
    body: { user_id: owner.id, role: "viewer" },
  });
  assertError(again, 409, "CONFLICT");
  const ghost = await h.call("POST", path("acme"), {
    token: owner.token,
    body: { user_id: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", role: "viewer" },
  });
  assertError(ghost, 404, "NOT_FOUND");
  const bad = await h.call("POST", path("acme"), {
    token: owner.token,
    body: { user_id: "bob", role: "king", extra: 1 },
  });
  assertInvalid(bad, "json.user_id", "json.role", "json");
  assertError(
    await h.call("POST", path("acme"), { body: { user_id: owner.id, role: "viewer" } }),
    401,
    "UNAUTHORIZED",
  );
});

Deno.test("POST members: members and viewers are 403; only owners or platform staff grant owner", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const member = await memberOf(h, t.id, "member");
  const admin = await memberOf(h, t.id, "admin");
  const owner = await memberOf(h, t.id, "owner");
  const [u1, u2, u3] = [await h.user(null), await h.user(null), await h.user(null)];
  assertError(
    await h.call("POST", path("acme"), {
      token: member.token,
      body: { user_id: u1.id, role: "viewer" },
    }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("POST", path("acme"), {
      token: admin.token,
      body: { user_id: u1.id, role: "owner" },
    }),
    403,
    "FORBIDDEN",
  );
  const byOwner = await h.call("POST", path("acme"), {
    token: owner.token,
    body: { user_id: u1.id, role: "owner" },
  });
  assert.equal(byOwner.status, 201, byOwner.text);
  const staff = await h.user("admin");
  const byStaff = await h.call("POST", path("acme"), {
    token: staff.token,
    body: { user_id: u2.id, role: "owner" },
  });
  assert.equal(byStaff.status, 201, byStaff.text);
  // A token bound to the tenant is not a platform grant: an admin could mint one.
  const bound = await h.serviceToken(["members:write", "members:read"], t.id);
  assertError(
    await h.call("POST", path("acme"), {
      token: bound.token,
      body: { user_id: u3.id, role: "owner" },
    }),
    403,
    "FORBIDDEN",
  );
  assert.equal(await ownerCount(h, t.id), 3);
});

Deno.test("POST members: Idempotency-Key replays the first answer; a different body is 422", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const u = await h.user(null);
  const send = (role: string) =>
    h.call("POST", path("acme"), {
      token: owner.token,
      headers: { "Idempotency-Key": "add-u" },
      body: { user_id: u.id, role },
    });
  const first = await send("viewer");
  assert.equal(first.status, 201, first.text);
  const replay = await send("viewer");
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(replay.body.data, first.body.data);
  assertError(await send("member"), 422, "UNPROCESSABLE");
});

// ── PATCH ───────────────────────────────────────────────────────────────────────

Deno.test("PATCH members: changes the role with If-Match; a stale version is 412; audited", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const viewer = await memberOf(h, t.id, "viewer");
  const list = await h.call("GET", path("acme"), { token: owner.token });
  assert.equal(list.status, 200);
  const before = await h.kv.get(keys.member(t.id, viewer.id));
  const res = await h.call("PATCH", path("acme", viewer.id), {
    token: owner.token,
    headers: { "If-Match": `"${before.versionstamp}"` },
    body: { role: "admin" },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.role, "admin");
  assert.equal(res.body.data.updated_at, "2026-03-01T12:00:00.000Z");
  const stale = await h.call("PATCH", path("acme", viewer.id), {
    token: owner.token,
    headers: { "If-Match": `"${before.versionstamp}"` },
    body: { role: "member" },
  });
  assertError(stale, 412, "PRECONDITION_FAILED");
  const updated = (await h.auditFor(viewer.id)).find((e) => e.action === "membership.updated");
  assert.ok(updated);
  assert.equal(updated.actor_id, owner.id);
  assert.deepEqual(updated.changes?.role, { before: "viewer", after: "admin" });
  const me = await h.call("GET", "/v1/auth/me", { token: viewer.token });
  assert.deepEqual(me.body.data.memberships, [{ tenant_id: t.id, role: "admin" }]);
});

Deno.test("PATCH members: 400 on a bad role or user id, 401, 403 for a member, 404 elsewhere", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const owner = await memberOf(h, a.id, "owner");
  const member = await memberOf(h, a.id, "member");
  const other = await memberOf(h, b.id, "viewer");
  assertInvalid(
    await h.call("PATCH", path("tenant-a", member.id), { token: owner.token, body: { role: "x" } }),
    "json.role",
  );
  assertInvalid(
    await h.call("PATCH", path("tenant-a", "bob"), { token: owner.token, body: { role: "admin" } }),
    "param.user_id",
  );
  assertError(
    await h.call("PATCH", path("tenant-a", member.id), { body: { role: "admin" } }),
    401,
    "UNAUTHORIZED",
  );
  assertError(
    await h.call("PATCH", path("tenant-a", owner.id), {
      token: member.token,
      body: { role: "viewer" },
    }),
    403,
    "FORBIDDEN",
  );
  // Another tenant's member, through this tenant: not a member here.
  assertError(
    await h.call("PATCH", path("tenant-a", other.id), {
      token: owner.token,
      body: { role: "admin" },
    }),
    404,
    "NOT_FOUND",
  );
  // Another tenant altogether.
  assertError(
    await h.call("PATCH", path("tenant-b", other.id), {
      token: owner.token,
      body: { role: "admin" },
    }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("PATCH members: the last owner cannot be demoted; an admin cannot demote an owner", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const admin = await memberOf(h, t.id, "admin");
  const last = await h.call("PATCH", path("acme", owner.id), {
    token: owner.token,
    body: { role: "admin" },
  });
  assertError(last, 409, "CONFLICT");
  assert.match(last.body.error.message, /at least one owner/);
  assertError(
    await h.call("PATCH", path("acme", owner.id), { token: admin.token, body: { role: "viewer" } }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("PATCH", path("acme", admin.id), { token: admin.token, body: { role: "owner" } }),
    403,
    "FORBIDDEN",
  );
  // With a second owner, the first may step down.
  const promoted = await h.call("PATCH", path("acme", admin.id), {
    token: owner.token,
    body: { role: "owner" },
  });
  assert.equal(promoted.status, 200, promoted.text);
  const down = await h.call("PATCH", path("acme", owner.id), {
    token: owner.token,
    body: { role: "member" },
  });
  assert.equal(down.status, 200, down.text);
  assert.equal(await ownerCount(h, t.id), 1);
});

// ── DELETE ──────────────────────────────────────────────────────────────────────

Deno.test("DELETE members: removes the member (audited); the tenant is then 404 for them", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const viewer = await memberOf(h, t.id, "viewer");
  const res = await h.call("DELETE", path("acme", viewer.id), { token: owner.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.user_id, viewer.id);
  assert.equal((await h.kv.get(keys.member(t.id, viewer.id))).versionstamp, null);
  assert.equal((await h.kv.get(keys.userTenant(viewer.id, t.id))).versionstamp, null);
  assertError(await h.call("GET", "/v1/tenants/acme", { token: viewer.token }), 404, "NOT_FOUND");
  const removed = (await h.auditFor(viewer.id)).find((e) => e.action === "membership.deleted");
  assert.equal(removed?.actor_id, owner.id);
  assertError(
    await h.call("DELETE", path("acme", viewer.id), { token: owner.token }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("DELETE members: 400, 401, 403 for a viewer, 404 across tenants, 412 on a stale If-Match", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const owner = await memberOf(h, a.id, "owner");
  const viewer = await memberOf(h, a.id, "viewer");
  const other = await memberOf(h, b.id, "owner");
  assertInvalid(
    await h.call("DELETE", path("tenant-a", "nope"), { token: owner.token }),
    "param.user_id",
  );
  assertError(await h.call("DELETE", path("tenant-a", viewer.id)), 401, "UNAUTHORIZED");
  assertError(
    await h.call("DELETE", path("tenant-a", owner.id), { token: viewer.token }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("DELETE", path("tenant-b", other.id), { token: owner.token }),
    404,
    "NOT_FOUND",
  );
  const current = await h.kv.get(keys.member(a.id, viewer.id));
  await h.call("PATCH", path("tenant-a", viewer.id), {
    token: owner.token,
    body: { role: "member" },
  });
  assertError(
    await h.call("DELETE", path("tenant-a", viewer.id), {
      token: owner.token,
      headers: { "If-Match": `"${current.versionstamp}"` },
    }),
    412,
    "PRECONDITION_FAILED",
  );
});

Deno.test("DELETE members: the last owner cannot be removed; an admin cannot remove an owner", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await memberOf(h, t.id, "owner");
  const admin = await memberOf(h, t.id, "admin");
  assertError(
    await h.call("DELETE", path("acme", owner.id), { token: owner.token }),
    409,
    "CONFLICT",
  );
  assertError(await h.call("DELETE", path("acme", owner.id), { token: h.root }), 409, "CONFLICT");
  const second = await memberOf(h, t.id, "owner");
  assertError(
    await h.call("DELETE", path("acme", second.id), { token: admin.token }),
    403,
    "FORBIDDEN",
  );
  const res = await h.call("DELETE", path("acme", second.id), { token: owner.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(await ownerCount(h, t.id), 1);
});

Deno.test("members: two concurrent removals of the last two owners: exactly one succeeds", async () => {
  for (let round = 0; round < 5; round++) {
    await using h = await setup();
    const t = await h.tenant("acme");
    const o1 = await memberOf(h, t.id, "owner");
    const o2 = await memberOf(h, t.id, "owner");
    const [r1, r2] = await Promise.all([
      h.call("DELETE", path("acme", o2.id), { token: h.root }),
      h.call("DELETE", path("acme", o1.id), { token: h.root }),
    ]);
    const statuses = [r1.status, r2.status].sort();
    assert.deepEqual(statuses, [200, 409], `${r1.text} / ${r2.text}`);
    assert.equal(await ownerCount(h, t.id), 1);
    const owners = [];
    for await (const e of h.kv.list<{ role: string }>({ prefix: keys.members(t.id) })) {
      if (e.value.role === "owner") owners.push(e.key);
    }
    assert.equal(owners.length, 1);
  }
});

Deno.test("members: two owners removing each other at once: one stays owner", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const o1 = await memberOf(h, t.id, "owner");
  const o2 = await memberOf(h, t.id, "owner");
  const [r1, r2] = await Promise.all([
    h.call("DELETE", path("acme", o2.id), { token: o1.token }),
    h.call("DELETE", path("acme", o1.id), { token: o2.token }),
  ]);
  // The loser is no longer an owner (403), or no longer a member (404), or the last owner (409).
  const statuses = [r1.status, r2.status].sort();
  assert.equal(statuses[0], 200, `${r1.text} / ${r2.text}`);
  assert.ok([403, 404, 409].includes(statuses[1]), `${r1.text} / ${r2.text}`);
  assert.equal(await ownerCount(h, t.id), 1);
});

Deno.test("members: concurrent demotion and removal of the two owners: one stays owner", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const o1 = await memberOf(h, t.id, "owner");
  const o2 = await memberOf(h, t.id, "owner");
  const [r1, r2] = await Promise.all([
    h.call("PATCH", path("acme", o1.id), { token: o1.token, body: { role: "admin" } }),
    h.call("DELETE", path("acme", o2.id), { token: h.root }),
  ]);
  assert.deepEqual([r1.status, r2.status].sort(), [200, 409], `${r1.text} / ${r2.text}`);
  assert.equal(await ownerCount(h, t.id), 1);
});

// ── Owners at creation, and the backfill ────────────────────────────────────────

Deno.test("POST /v1/tenants by a user makes that user the owner in the same commit", async () => {
  await using h = await setup();
  const creator = await h.user("admin");
  const res = await h.call("POST", "/v1/tenants", {
    token: creator.token,
    body: { name: "Mine", slug: "mine" },
  });
  assert.equal(res.status, 201, res.text);
  const m = await h.kv.get<{ role: string; created_at: string }>(
    keys.member(res.body.data.id, creator.id),
  );
  assert.equal(m.value?.role, "owner");
  assert.equal(m.value?.created_at, res.body.data.created_at);
  assert.equal(await ownerCount(h, res.body.data.id), 1);
  // A service token's tenant has no owner membership.
  const byToken = await h.tenant("by-token");
  assert.equal(await ownerCount(h, byToken.id), 0);
});

Deno.test("POST /v1/admin/maintenance/backfill-members: seeds missing owners, idempotently, audited", async () => {
  await using h = await setup();
  const creator = await h.user("admin");
  const made = [];
  for (const slug of ["old-1", "old-2", "old-3"]) {
    const res = await h.call("POST", "/v1/tenants", {
      token: creator.token,
      body: { name: slug, slug },
    });
    made.push(res.body.data.id as string);
  }
  // Simulate tenants created before creators became owners.
  for (const id of made.slice(0, 2)) {
    await h.kv.atomic().delete(keys.member(id, creator.id)).delete(keys.userTenant(creator.id, id))
      .delete(keys.ownerCount(id)).commit();
  }
  // old-2's creator is still a member, as a viewer: promoted.
  await h.member(made[1], creator.id, "viewer");
  await h.tenant("by-root"); // created by a token: nothing to seed
  const ops = await h.user("ops");
  const support = await h.user("support");
  const route = "/v1/admin/maintenance/backfill-members";
  assertError(await h.call("POST", route), 401, "UNAUTHORIZED");
  assertError(await h.call("POST", route, { token: support.token }), 403, "FORBIDDEN");
  assertError(
    await h.call("POST", route, { token: ops.token, headers: { "Idempotency-Key": "a b" } }),
    400,
    "BAD_REQUEST",
  );
  const first = await h.call("POST", route, { token: ops.token });
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.body.data, { ok: true, seeded: 2 });
  for (const id of made) assert.equal(await ownerCount(h, id), 1);
  const roles = await Promise.all(
    made.map(async (id) =>
      (await h.kv.get<{ role: string }>(keys.member(id, creator.id))).value?.role
    ),
  );
  assert.deepEqual(roles, ["owner", "owner", "owner"]);
  const again = await h.call("POST", route, { token: ops.token });
  assert.deepEqual(again.body.data, { ok: true, seeded: 0 });
  // Concurrent runs never seed twice.
  const [c1, c2] = await Promise.all([
    h.call("POST", route, { token: h.root }),
    h.call("POST", route, { token: h.root }),
  ]);
  assert.equal(c1.body.data.seeded + c2.body.data.seeded, 0);
  // Idempotency-Key replays the first answer.
  const k1 = await h.call("POST", route, {
    token: ops.token,
    headers: { "Idempotency-Key": "bf" },
  });
  const k2 = await h.call("POST", route, {
    token: ops.token,
    headers: { "Idempotency-Key": "bf" },
  });
  assert.equal(k2.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(k2.body, k1.body);
  // Audited: the run, and each seeded membership, by the caller.
  const runs = await h.auditFor("backfill-members");
  assert.ok(runs.length >= 2);
  assert.equal(runs.at(-1)?.action, "maintenance.members_backfilled");
  assert.equal(runs.at(-1)?.actor_id, ops.id);
  assert.deepEqual(runs.at(-1)?.changes?.seeded, { before: null, after: 2 });
  const seededEvents = (await h.auditFor(creator.id)).filter((e) =>
    e.actor_id === ops.id && e.action.startsWith("membership.")
  );
  assert.deepEqual(seededEvents.map((e) => e.action).sort(), [
    "membership.created",
    "membership.updated",
  ]);
});

Deno.test("removeUserMemberships (for a GDPR erase): removes every membership, owners included", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const user = await memberOf(h, a.id, "owner");
  await h.member(b.id, user.id, "viewer");
  const removed = await removeUserMemberships(h.svc, SYSTEM_ACTOR, user.id);
  assert.equal(removed, 2);
  assert.equal(await ownerCount(h, a.id), 0);
  for (const t of [a, b]) {
    assert.equal((await h.kv.get(keys.member(t.id, user.id))).versionstamp, null);
  }
  assert.deepEqual(await listMemberships(h.svc, user.id), []);
  const deleted = (await h.auditFor(user.id)).filter((e) => e.action === "membership.deleted");
  assert.equal(deleted.length, 2);
  assert.equal(await removeUserMemberships(h.svc, SYSTEM_ACTOR, user.id), 0);
});
