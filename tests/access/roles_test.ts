/**
 * Custom roles: /v1/admin/roles and /v1/admin/permissions, granting roles to users
 * (PATCH /v1/users/{id} `roles`) and tokens (POST /v1/admin/tokens `role`), the rule that only
 * someone holding every permission of a role creates, edits or grants it, the delete refused
 * while the role is held, and role edits reaching cached principals. The walk over every route
 * for a role's holder is in tests/api/permissions_test.ts.
 */
import assert from "node:assert/strict";
import { keys } from "../../kv/keys.ts";
import { PERMISSIONS, PLATFORM_ROLES } from "../../domain/access/permissions.ts";
import { ROUTE_ACCESS } from "../../routes/permissions.ts";
import { type Harness, type Reply, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const etag = (res: Reply) => res.headers.get("ETag")!.replace(/^"(.*)"$/, "$1");

async function createRole(h: Harness, body: Record<string, unknown>, token = h.root) {
  const res = await h.call("POST", "/v1/admin/roles", { token, body });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; permissions: string[] };
}

const grant = (h: Harness, userId: string, roles: string[], token = h.root) =>
  h.call("PATCH", `/v1/users/${userId}`, { token, body: { roles } });

// ── CRUD ──────────────────────────────────────────────────────────────────────────

Deno.test("POST /v1/admin/roles: created, audited, listed after the built-in roles, read back", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/admin/roles", {
    token: h.root,
    body: {
      name: "Billing auditor",
      description: "Reads billing",
      permissions: ["finance:read", "billing:read", "billing:read"],
    },
  });
  assert.equal(res.status, 201, res.text);
  const role = res.body.data;
  assert.match(role.id, /^rol_/);
  assert.deepEqual(role.permissions, ["billing:read", "finance:read"]);
  assert.equal(role.tenant_scoped, false);
  assert.equal(role.in_tenants, "all");
  assert.deepEqual(role.holders, { users: 0, tokens: 0 });
  assert.equal(res.headers.get("Location"), `/v1/admin/roles/${role.id}`);
  assert.equal((await h.auditFor(role.id))[0].action, "role.created");

  const list = await h.call("GET", "/v1/admin/roles", { token: h.root });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(
    list.body.data.map((r: { id: string }) => r.id),
    [...PLATFORM_ROLES, role.id],
  );
  assert.equal(list.body.pagination.total, 7);
  const page = await h.call("GET", "/v1/admin/roles?offset=6&limit=5", { token: h.root });
  assert.deepEqual(page.body.data.map((r: { id: string }) => r.id), [role.id]);
  assert.equal(page.body.pagination.has_more, false);

  const one = await h.call("GET", `/v1/admin/roles/${role.id}`, { token: h.root });
  assert.equal(one.status, 200);
  assert.equal(one.body.data.name, "Billing auditor");
  assert.ok(one.headers.get("ETag"));
  const builtin = await h.call("GET", "/v1/admin/roles/support", { token: h.root });
  assert.equal(builtin.status, 200);
  assert.equal(builtin.body.data.builtin, true);
  assert.ok(builtin.body.data.permissions.includes("users:read"));
  const qa = await h.call("GET", "/v1/admin/roles/qa", { token: h.root });
  assert.equal(qa.body.data.in_tenants, "test");
});

Deno.test("POST /v1/admin/roles: 400 on bad input, 409 on a taken or built-in name", async () => {
  await using h = await setup();
  const post = (body: unknown) => h.call("POST", "/v1/admin/roles", { token: h.root, body });
  assertInvalid(await post({ name: "x", permissions: ["nope:read"] }), "json.permissions.0");
  assertInvalid(await post({ name: "x", permissions: [] }), "json.permissions");
  assertInvalid(await post({ permissions: ["users:read"] }), "json.name");
  // Tenant-scoped roles hold tenant permissions only.
  assertError(
    await post({ name: "x", permissions: ["users:read"], tenant_scoped: true }),
    400,
    "BAD_REQUEST",
  );
  await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  assertError(await post({ name: "AUDITOR", permissions: ["audit:read"] }), 409, "CONFLICT");
  assertError(await post({ name: "Support", permissions: ["audit:read"] }), 409, "CONFLICT");
  assertInvalid(await h.call("GET", "/v1/admin/roles/nope", { token: h.root }), "param.id");
  assertError(
    await h.call("GET", "/v1/admin/roles/rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", { token: h.root }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("roles routes: 401 without credentials, 403 without users:read / users:write", async () => {
  await using h = await setup();
  const role = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const finance = await h.user("finance");
  const support = await h.user("support");
  for (const [method, path] of [["GET", "/v1/admin/roles"], ["GET", "/v1/admin/permissions"]]) {
    assertError(await h.call(method, path), 401, "UNAUTHORIZED");
    assertError(await h.call(method, path, { token: finance.token }), 403, "FORBIDDEN");
    assert.equal((await h.call(method, path, { token: support.token })).status, 200);
  }
  const body = { name: "Other", permissions: ["audit:read"] };
  assertError(await h.call("POST", "/v1/admin/roles", { body }), 401, "UNAUTHORIZED");
  assertError(
    await h.call("POST", "/v1/admin/roles", { token: support.token, body }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("PATCH", `/v1/admin/roles/${role.id}`, { token: support.token, body }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("DELETE", `/v1/admin/roles/${role.id}`, { token: support.token }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("roles: nobody creates, edits or grants a role holding a permission they lack", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  // Admins lack config:read and vault:reveal.
  assertError(
    await h.call("POST", "/v1/admin/roles", {
      token: admin.token,
      body: { name: "Config", permissions: ["config:read"] },
    }),
    403,
    "FORBIDDEN",
  );
  const own = await createRole(h, { name: "Auditor", permissions: ["audit:read"] }, admin.token);
  const edited = await h.call("PATCH", `/v1/admin/roles/${own.id}`, {
    token: admin.token,
    body: { permissions: ["audit:read", "vault:reveal"] },
  });
  assertError(edited, 403, "FORBIDDEN");
  const revealer = await createRole(h, { name: "Revealer", permissions: ["vault:reveal"] });
  const user = await h.user(null);
  assertError(await grant(h, user.id, [revealer.id], admin.token), 403, "FORBIDDEN");
  // Nor take one away: that changes what its holder may do just as much.
  assert.equal((await grant(h, user.id, [revealer.id])).status, 200);
  assertError(await grant(h, user.id, [], admin.token), 403, "FORBIDDEN");
  // Nor make a token from it.
  assertError(
    await h.call("POST", "/v1/admin/tokens", {
      token: admin.token,
      body: { name: "t", role: revealer.id },
    }),
    403,
    "FORBIDDEN",
  );
  // What the admin holds it grants.
  const granted = await grant(h, user.id, [revealer.id, own.id], h.root);
  assert.equal(granted.status, 200, granted.text);
  assert.deepEqual(granted.body.data.roles, [revealer.id, own.id].sort());
  assert.equal((await grant(h, user.id, [revealer.id], admin.token)).status, 200);
  // Nobody re-roles themselves.
  const self = await createRole(h, { name: "Self", permissions: ["audit:read"] });
  assertError(await grant(h, admin.id, [self.id], admin.token), 403, "FORBIDDEN");
  // An unknown role is 400.
  assertError(
    await grant(h, user.id, ["rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"]),
    400,
    "BAD_REQUEST",
  );
  assertInvalid(await grant(h, user.id, ["admin"]), "json.roles.0");
});

Deno.test("roles: built-in roles are read-only (409 builtin_role)", async () => {
  await using h = await setup();
  for (
    const res of [
      await h.call("PATCH", "/v1/admin/roles/admin", {
        token: h.root,
        body: { description: "x" },
      }),
      await h.call("DELETE", "/v1/admin/roles/super_admin", { token: h.root }),
    ]
  ) {
    assertError(res, 409, "CONFLICT");
    assert.equal(res.body.error.details.reason, "builtin_role");
  }
});

Deno.test("PATCH /v1/admin/roles/{id}: audited, If-Match checked, reaches holders at once", async () => {
  await using h = await setup();
  const role = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const user = await h.user(null);
  assert.equal((await grant(h, user.id, [role.id])).status, 200);
  assert.equal((await h.call("GET", "/v1/admin/audit", { token: user.token })).status, 200);
  assertError(await h.call("GET", "/v1/admin/logs", { token: user.token }), 403, "FORBIDDEN");

  const read = await h.call("GET", `/v1/admin/roles/${role.id}`, { token: h.root });
  assert.deepEqual(read.body.data.holders, { users: 1, tokens: 0 });
  const res = await h.call("PATCH", `/v1/admin/roles/${role.id}`, {
    token: h.root,
    headers: { "If-Match": etag(read) },
    body: { permissions: ["logs:read"] },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.permissions, ["logs:read"]);
  assert.equal((await h.auditFor(role.id))[0].action, "role.updated");
  // The same session, the next request: the new permissions, and only those.
  assert.equal((await h.call("GET", "/v1/admin/logs", { token: user.token })).status, 200);
  assertError(await h.call("GET", "/v1/admin/audit", { token: user.token }), 403, "FORBIDDEN");

  const stale = await h.call("PATCH", `/v1/admin/roles/${role.id}`, {
    token: h.root,
    headers: { "If-Match": etag(read) },
    body: { description: "x" },
  });
  assertError(stale, 412, "PRECONDITION_FAILED");
  assertInvalid(
    await h.call("PATCH", `/v1/admin/roles/${role.id}`, { token: h.root, body: { x: 1 } }),
  );
});

Deno.test("roles: another process sees a role edit within the cache window, without a read per request", async () => {
  await using h = await setup();
  const role = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const user = await h.user(null);
  await grant(h, user.id, [role.id]);
  assert.equal((await h.call("GET", "/v1/admin/audit", { token: user.token })).status, 200);
  // Warm: the role table's version is in the cache, so checks add no cache read.
  const before = h.svc.cache.reads;
  await h.call("GET", "/v1/admin/audit", { token: user.token });
  assert.equal(h.svc.cache.reads, before);
  // Another process edits the role: a commit this process did not make.
  const stored = await h.kv.get<{ permissions: string[] }>(keys.role(role.id));
  await h.kv.atomic()
    .set(keys.role(role.id), { ...stored.value!, permissions: ["logs:read"] })
    .sum(keys.rolesVersion(), 1n)
    .commit();
  assert.equal((await h.call("GET", "/v1/admin/audit", { token: user.token })).status, 200);
  h.advance(5_000);
  assertError(await h.call("GET", "/v1/admin/audit", { token: user.token }), 403, "FORBIDDEN");
  assert.equal((await h.call("GET", "/v1/admin/logs", { token: user.token })).status, 200);
});

Deno.test("DELETE /v1/admin/roles/{id}: 409 with the counts while held, then deleted", async () => {
  await using h = await setup();
  const role = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const user = await h.user(null);
  await grant(h, user.id, [role.id]);
  const token = await h.call("POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "auditor", role: role.id },
  });
  assert.equal(token.status, 201, token.text);
  assert.equal(token.body.data.role_id, role.id);
  assert.deepEqual(token.body.data.permissions, []);
  // The token holds the role's permissions.
  assert.equal(
    (await h.call("GET", "/v1/admin/audit", { token: token.body.data.token })).status,
    200,
  );

  const held = await h.call("DELETE", `/v1/admin/roles/${role.id}`, { token: h.root });
  assertError(held, 409, "CONFLICT");
  assert.deepEqual(held.body.error.details, { reason: "role_in_use", users: 1, tokens: 1 });

  await grant(h, user.id, []);
  await h.call("DELETE", `/v1/admin/tokens/${token.body.data.id}`, { token: h.root });
  const res = await h.call("DELETE", `/v1/admin/roles/${role.id}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal((await h.auditFor(role.id))[0].action, "role.deleted");
  assertError(
    await h.call("GET", `/v1/admin/roles/${role.id}`, { token: h.root }),
    404,
    "NOT_FOUND",
  );
  // Its counters went with it; an erased holder stops counting too.
  assert.equal((await h.kv.get(keys.roleUsers(role.id))).versionstamp, null);
  const again = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const other = await h.user(null);
  await grant(h, other.id, [again.id]);
  assert.equal((await h.call("DELETE", `/v1/users/${other.id}`, { token: h.root })).status, 200);
  assert.equal(
    (await h.call("DELETE", `/v1/admin/roles/${again.id}`, { token: h.root })).status,
    200,
  );
});

Deno.test("tenant-scoped roles: granted inside the holder's own tenants only", async () => {
  await using h = await setup();
  const role = await createRole(h, {
    name: "Webhook keeper",
    permissions: ["webhooks:read"],
    tenant_scoped: true,
  });
  assert.equal(role.permissions[0], "webhooks:read");
  const mine = await h.tenant("mine");
  const other = await h.tenant("other");
  const viewer = await memberOf(h, mine.id, "viewer");
  const before = await h.call("GET", `/v1/tenants/${mine.id}/webhooks`, { token: viewer.token });
  assertError(before, 403, "FORBIDDEN");
  await grant(h, viewer.id, [role.id]);
  assert.equal(
    (await h.call("GET", `/v1/tenants/${mine.id}/webhooks`, { token: viewer.token })).status,
    200,
  );
  // Not in a tenant it is no member of, nor platform-wide.
  assertError(
    await h.call("GET", `/v1/tenants/${other.id}/webhooks`, { token: viewer.token }),
    404,
    "NOT_FOUND",
  );
  assertError(await h.call("GET", "/v1/admin/webhooks", { token: viewer.token }), 403, "FORBIDDEN");
  // A token from it must be bound to a tenant, and acts there.
  assertError(
    await h.call("POST", "/v1/admin/tokens", { token: h.root, body: { name: "t", role: role.id } }),
    400,
    "BAD_REQUEST",
  );
  const bound = await h.call("POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "t", role: role.id, tenant_id: mine.id },
  });
  assert.equal(bound.status, 201, bound.text);
  const t = bound.body.data.token;
  assert.equal((await h.call("GET", `/v1/tenants/${mine.id}/webhooks`, { token: t })).status, 200);
  assertError(
    await h.call("GET", `/v1/tenants/${mine.id}/api-keys`, { token: t }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("POST /v1/admin/tokens with a role: 400 for both or neither of permissions and role", async () => {
  await using h = await setup();
  const role = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const post = (body: unknown) => h.call("POST", "/v1/admin/tokens", { token: h.root, body });
  assertInvalid(await post({ name: "t" }), "json.permissions");
  assertInvalid(await post({ name: "t", role: role.id, permissions: ["audit:read"] }));
  assertInvalid(await post({ name: "t", role: "admin" }), "json.role");
  assertError(
    await post({ name: "t", role: "rol_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
    400,
    "BAD_REQUEST",
  );
});

Deno.test("GET /v1/admin/permissions: every permission, described, with the routes needing it", async () => {
  await using h = await setup();
  const res = await h.call("GET", "/v1/admin/permissions", { token: h.root });
  assert.equal(res.status, 200, res.text);
  const table = res.body.data as {
    permission: string;
    description: string;
    routes: string[];
    builtin_roles: string[];
  }[];
  assert.deepEqual(table.map((p) => p.permission), [...PERMISSIONS]);
  for (const p of table) {
    assert.ok(p.description.length > 0, p.permission);
    const needing = Object.entries(ROUTE_ACCESS).filter(([, a]) => a === p.permission);
    assert.deepEqual(p.routes, needing.map(([k]) => k));
    assert.ok(p.builtin_roles.includes("super_admin"), p.permission);
  }
  const roles = table.find((p) => p.permission === "users:write")!;
  assert.ok(roles.routes.includes("POST /v1/admin/roles"));
});

Deno.test("POST /v1/admin/roles: an Idempotency-Key replays the creation", async () => {
  await using h = await setup();
  const send = () =>
    h.call("POST", "/v1/admin/roles", {
      token: h.root,
      headers: { "Idempotency-Key": "role-once" },
      body: { name: "Auditor", permissions: ["audit:read"] },
    });
  const first = await send();
  assert.equal(first.status, 201, first.text);
  const again = await send();
  assert.equal(again.status, 201, again.text);
  assert.equal(again.body.data.id, first.body.data.id);
  const list = await h.call("GET", "/v1/admin/roles", { token: h.root });
  assert.equal(list.body.pagination.total, PLATFORM_ROLES.length + 1);
});

Deno.test("roles: a grant racing the delete leaves no holder of a deleted role", async () => {
  await using h = await setup();
  const role = await createRole(h, { name: "Auditor", permissions: ["audit:read"] });
  const user = await h.user(null);
  const [granted, deleted] = await Promise.all([
    grant(h, user.id, [role.id]),
    h.call("DELETE", `/v1/admin/roles/${role.id}`, { token: h.root }),
  ]);
  const roleGone = deleted.status === 200;
  const held = granted.status === 200;
  assert.ok(
    roleGone !== held,
    `${granted.status} ${granted.text} / ${deleted.status} ${deleted.text}`,
  );
  const count = await h.kv.get(keys.roleUsers(role.id));
  assert.equal(count.versionstamp === null, roleGone);
});
