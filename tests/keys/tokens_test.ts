/**
 * Service tokens: GET/POST /v1/admin/tokens and GET/DELETE /v1/admin/tokens/{id}. Secrets are
 * shown once and stored as SHA-256, a token never holds more than its creator, a bound token
 * sees one tenant, and revocation and expiry take effect on the next request.
 */
import assert from "node:assert/strict";
import { sha256Hex } from "../../domain/shared/secrets.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
/** A well-formed token id that names no token. */
const UNKNOWN_ID = "tok_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";

interface TokenBody {
  name?: unknown;
  permissions?: unknown;
  tenant_id?: unknown;
  expires_at?: unknown;
  [extra: string]: unknown;
}

/** POST /v1/admin/tokens as `token`. */
function create(h: Harness, token: string | undefined, body: TokenBody, headers = {}) {
  return h.call("POST", "/v1/admin/tokens", { token, body, headers });
}

/** Creates a token as root and returns the 201's data (including the secret). */
async function created(h: Harness, body: TokenBody) {
  const res = await create(h, h.root, { name: "ci", ...body });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; token: string; [field: string]: unknown };
}

const whoAmI = (h: Harness, token: string) => h.call("GET", "/v1/auth/me", { token });

/** Every store line under the audit trail and the domain-event outbox. */
async function auditAndEventLines(h: Harness): Promise<string[]> {
  return (await h.dump()).split("\n").filter((l) =>
    l.startsWith('["audit"') || l.startsWith('["audit_by_') || l.startsWith('["events"')
  );
}

// ── Create ────────────────────────────────────────────────────────────────────

Deno.test("create: 201 with the secret once, Location and ETag", async () => {
  await using h = await setup();
  const res = await create(h, h.root, { name: "billing sync", permissions: ["tenants:read"] });
  assert.equal(res.status, 201);
  assert.equal(res.body.success, true);
  const data = res.body.data;
  assert.match(data.id, /^tok_[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.match(data.token, /^stw_[0-9A-Za-z]{43}$/);
  assert.equal(data.start, data.token.slice(0, 8));
  assert.equal(data.name, "billing sync");
  assert.deepEqual(data.permissions, ["tenants:read"]);
  assert.equal(data.tenant_id, null);
  assert.equal(data.expires_at, null);
  assert.equal(data.revoked_at, null);
  assert.equal(data.last_used_at, null);
  assert.equal(data.created_at, iso(h.clock.now));
  assert.equal(data.token_hash, undefined);
  assert.equal(res.headers.get("Location"), `/v1/admin/tokens/${data.id}`);
  assert.match(res.headers.get("ETag") ?? "", /^"[0-9a-f]+"$/);
});

Deno.test("create: created_by names the creator and permissions are de-duplicated and sorted", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await create(h, admin.token, {
    name: "x",
    permissions: ["tenants:write", "audit:read", "tenants:write"],
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.data.created_by, admin.id);
  assert.deepEqual(res.body.data.permissions, ["audit:read", "tenants:write"]);
});

Deno.test("create: GET never shows the secret or its hash again", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const one = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(one.status, 200);
  assert.equal(one.body.data.id, token.id);
  assert.equal(one.body.data.token, undefined);
  assert.equal(one.body.data.token_hash, undefined);
  assert.ok(!one.text.includes(token.token));
  assert.ok(!one.text.includes(await sha256Hex(token.token)));

  const list = await h.call("GET", "/v1/admin/tokens", { token: h.root });
  assert.equal(list.status, 200);
  for (const item of list.body.data) {
    assert.equal(item.token, undefined);
    assert.equal(item.token_hash, undefined);
  }
  assert.ok(list.body.data.some((t: { id: string }) => t.id === token.id));
  assert.ok(!list.text.includes(token.token));
});

Deno.test("create: the ETag of the 201 is the one GET answers", async () => {
  await using h = await setup();
  const res = await create(h, h.root, { name: "x", permissions: ["tenants:read"] });
  const one = await h.call("GET", `/v1/admin/tokens/${res.body.data.id}`, { token: h.root });
  assert.equal(one.headers.get("ETag"), res.headers.get("ETag"));
});

Deno.test("create: the secret is not in the store in clear, only its SHA-256", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const dump = await h.dump();
  assert.ok(!dump.includes(token.token), "no secret in the store");
  assert.ok(!dump.includes(token.token.slice(4)), "not even without its prefix");
  const hash = await sha256Hex(token.token);
  assert.equal((await h.kv.get<string>(keys.tokenHash(hash))).value, token.id);
});

Deno.test("create: audits token.created without the secret or its hash", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const events = await h.auditFor(token.id);
  assert.deepEqual(events.map((e) => e.action), ["token.created"]);
  assert.equal(events[0].actor_id, (await whoAmI(h, h.root)).body.data.id);
  assert.deepEqual(events[0].changes?.permissions, { before: null, after: ["tenants:read"] });

  const hash = await sha256Hex(token.token);
  const text = JSON.stringify(events);
  assert.ok(!text.includes(token.token));
  assert.ok(!text.includes(hash));
  const stored = await auditAndEventLines(h);
  assert.ok(stored.length > 0);
  for (const line of stored) {
    assert.ok(!line.includes(token.token), `secret in ${line.slice(0, 60)}`);
    assert.ok(!line.includes(hash), `hash in ${line.slice(0, 60)}`);
  }
});

Deno.test("create: the new token authenticates with exactly its permissions", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read", "audit:read"] });
  const me = await whoAmI(h, token.token);
  assert.equal(me.status, 200);
  assert.equal(me.body.data.type, "service_token");
  assert.equal(me.body.data.id, token.id);
  assert.deepEqual(me.body.data.permissions, ["audit:read", "tenants:read"]);
  assert.equal((await h.call("GET", "/v1/tenants", { token: token.token })).status, 200);
  const denied = await h.call("POST", "/v1/tenants", {
    token: token.token,
    body: { name: "Nope", slug: "nope" },
  });
  assert.equal(denied.status, 403);
});

Deno.test("create: using the token sets last_used_at", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  h.advance(5 * 60_000);
  assert.equal((await whoAmI(h, token.token)).status, 200);
  const read = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(read.body.data.last_used_at, iso(h.clock.now));
});

// ── Create: validation ────────────────────────────────────────────────────────

/** Asserts a 400 BAD_REQUEST whose details name `path` (joined with "."). */
function assertBadRequest(res: Awaited<ReturnType<typeof create>>, path: string) {
  assert.equal(res.status, 400, res.text);
  assert.equal(res.body.error.code, "BAD_REQUEST");
  const paths = (res.body.error.details ?? []).map((d: { path: unknown[] }) => d.path.join("."));
  assert.ok(paths.includes(path), `expected ${path} in [${paths.join(", ")}]`);
}

Deno.test("create validation: empty permissions are 400", async () => {
  await using h = await setup();
  assertBadRequest(
    await create(h, h.root, { name: "x", permissions: [] }),
    "json.permissions",
  );
});

Deno.test("create validation: an unknown permission name is 400", async () => {
  await using h = await setup();
  assertBadRequest(
    await create(h, h.root, { name: "x", permissions: ["tenants:read", "tenants:destroy"] }),
    "json.permissions.1",
  );
});

Deno.test("create validation: an unknown field is 400 (no mass assignment)", async () => {
  await using h = await setup();
  const res = await create(h, h.root, {
    name: "x",
    permissions: ["tenants:read"],
    created_by: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  });
  assertBadRequest(res, "json");
  assert.equal(res.body.error.details[0].code, "unrecognized_keys");
});

Deno.test("create validation: a missing name is 400", async () => {
  await using h = await setup();
  assertBadRequest(await create(h, h.root, { permissions: ["tenants:read"] }), "json.name");
});

Deno.test("create validation: expires_at in the past (or now) is 400", async () => {
  await using h = await setup();
  for (const when of [h.clock.now - 1000, h.clock.now]) {
    const res = await create(h, h.root, {
      name: "x",
      permissions: ["tenants:read"],
      expires_at: iso(when),
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, "BAD_REQUEST");
    const paths = res.body.error.details.map((d: { path: unknown[] }) => d.path.join("."));
    assert.ok(paths.some((p: string) => p.endsWith("expires_at")), paths.join(", "));
  }
});

Deno.test("create validation: expires_at that is not a timestamp is 400", async () => {
  await using h = await setup();
  assertBadRequest(
    await create(h, h.root, { name: "x", permissions: ["tenants:read"], expires_at: "tomorrow" }),
    "json.expires_at",
  );
});

Deno.test("create validation: a tenant_id that is not a ten_ id is 400", async () => {
  await using h = await setup();
  await h.tenant("acme");
  for (const tenant_id of ["acme", "ten_123", "tok_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"]) {
    assertBadRequest(
      await create(h, h.root, { name: "x", permissions: ["tenants:read"], tenant_id }),
      "json.tenant_id",
    );
  }
});

Deno.test("create: a well-formed tenant_id that names no tenant is 404", async () => {
  await using h = await setup();
  const res = await create(h, h.root, {
    name: "x",
    permissions: ["tenants:read"],
    tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
  });
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, "NOT_FOUND");
});

Deno.test("create validation: nothing is written when validation fails", async () => {
  await using h = await setup();
  const before = await h.dump();
  await create(h, h.root, { name: "x", permissions: [] });
  await create(h, h.root, { name: "x", permissions: ["tenants:read"], expires_at: iso(0) });
  // Only root's last_used_at may have moved; no token, pointer or audit event appeared.
  const tokenKeys = (dump: string) =>
    dump.split("\n").filter((l) => /^\["(tokens|token_hashes|audit)"/.test(l)).map((l) =>
      l.split(" ")[0]
    );
  assert.deepEqual(tokenKeys(await h.dump()), tokenKeys(before));
});

// ── Authorization ─────────────────────────────────────────────────────────────

Deno.test("authz: no credentials are 401 on every token route", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const calls: [string, string][] = [
    ["GET", "/v1/admin/tokens"],
    ["POST", "/v1/admin/tokens"],
    ["GET", `/v1/admin/tokens/${token.id}`],
    ["DELETE", `/v1/admin/tokens/${token.id}`],
  ];
  for (const [method, path] of calls) {
    const res = await h.call(method, path, {
      body: method === "POST" ? { name: "x", permissions: ["tenants:read"] } : undefined,
    });
    assert.equal(res.status, 401, `${method} ${path}`);
    assert.equal(res.body.error.code, "UNAUTHORIZED");
  }
  assert.equal((await whoAmI(h, token.token)).status, 200, "the DELETE did nothing");
});

Deno.test("authz: support reads tokens (200) but cannot create or revoke them (403)", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const support = await h.user("support");
  assert.equal((await h.call("GET", "/v1/admin/tokens", { token: support.token })).status, 200);
  const one = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: support.token });
  assert.equal(one.status, 200);
  const post = await create(h, support.token, { name: "x", permissions: ["tenants:read"] });
  assert.equal(post.status, 403);
  assert.equal(post.body.error.code, "FORBIDDEN");
  const del = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, { token: support.token });
  assert.equal(del.status, 403);
  assert.equal((await whoAmI(h, token.token)).status, 200);
});

Deno.test("authz: finance cannot even list tokens (403, lacks tokens:read)", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const finance = await h.user("finance");
  const list = await h.call("GET", "/v1/admin/tokens", { token: finance.token });
  assert.equal(list.status, 403);
  assert.equal(list.body.error.code, "FORBIDDEN");
  const one = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: finance.token });
  assert.equal(one.status, 403);
});

Deno.test("authz: a user without a platform role cannot touch tokens", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const owner = await h.user(null);
  await h.member(acme.id, owner.id, "owner");
  assert.equal((await h.call("GET", "/v1/admin/tokens", { token: owner.token })).status, 403);
  const res = await create(h, owner.token, {
    name: "x",
    permissions: ["tenants:read"],
    tenant_id: acme.id,
  });
  assert.equal(res.status, 403);
});

Deno.test("authz: an admin cannot grant vault:reveal, which it does not hold (403)", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await create(h, admin.token, {
    name: "x",
    permissions: ["tenants:read", "vault:reveal"],
  });
  assert.equal(res.status, 403);
  assert.equal(res.body.error.code, "FORBIDDEN");
  assert.match(res.body.error.message, /vault:reveal/);
});

Deno.test("authz: an admin cannot grant * (every permission) (403)", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await create(h, admin.token, { name: "x", permissions: ["*"] });
  assert.equal(res.status, 403);
  assert.equal(res.body.error.code, "FORBIDDEN");
});

Deno.test("authz: an admin cannot grant vault:reveal inside a tenant either (403)", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const admin = await h.user("admin");
  const res = await create(h, admin.token, {
    name: "x",
    permissions: ["vault:reveal"],
    tenant_id: acme.id,
  });
  assert.equal(res.status, 403);
});

Deno.test("authz: an admin may grant what it holds", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await create(h, admin.token, {
    name: "x",
    permissions: ["tenants:write", "tokens:write"],
  });
  assert.equal(res.status, 201, res.text);
});

Deno.test("authz: a service token cannot mint a token with more than it holds (403)", async () => {
  await using h = await setup();
  const minter = await h.serviceToken(["tokens:write", "tenants:read"]);
  const more = await create(h, minter.token, { name: "x", permissions: ["tenants:write"] });
  assert.equal(more.status, 403);
  assert.equal(more.body.error.code, "FORBIDDEN");
  const all = await create(h, minter.token, { name: "x", permissions: ["*"] });
  assert.equal(all.status, 403);
  const same = await create(h, minter.token, { name: "x", permissions: ["tenants:read"] });
  assert.equal(same.status, 201, same.text);
  assert.equal(same.body.data.created_by, minter.id);
});

Deno.test("authz: only a super admin grants *", async () => {
  await using h = await setup();
  const superAdmin = await h.user("super_admin");
  const res = await create(h, superAdmin.token, { name: "x", permissions: ["*"] });
  assert.equal(res.status, 201, res.text);
  const me = await whoAmI(h, res.body.data.token);
  assert.ok(me.body.data.permissions.includes("vault:reveal"));
});

// ── Tenant-bound tokens ───────────────────────────────────────────────────────

Deno.test("bound token: reads its own tenant, and another tenant is 404", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const bound = await h.serviceToken(["tenants:read"], a.id);
  const own = await h.call("GET", `/v1/tenants/${a.id}`, { token: bound.token });
  assert.equal(own.status, 200);
  assert.equal(own.body.data.id, a.id);
  assert.equal((await h.call("GET", `/v1/tenants/${a.slug}`, { token: bound.token })).status, 200);
  for (const other of [b.id, b.slug]) {
    const res = await h.call("GET", `/v1/tenants/${other}`, { token: bound.token });
    assert.equal(res.status, 404, other);
    assert.equal(res.body.error.code, "NOT_FOUND");
  }
});

Deno.test("bound token: GET /v1/tenants lists only its tenant", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  await h.tenant("tenant-b");
  await h.tenant("tenant-c");
  const bound = await h.serviceToken(["tenants:read"], a.id);
  const res = await h.call("GET", "/v1/tenants", { token: bound.token });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.data.map((t: { id: string }) => t.id), [a.id]);
  assert.equal(res.body.pagination.has_more, false);
});

Deno.test("bound token: lists only tokens bound to its tenant and 404s on the others", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const reader = await h.serviceToken(["tokens:read", "tokens:write", "tenants:read"], a.id);
  const sibling = await h.serviceToken(["tenants:read"], a.id);
  const inB = await h.serviceToken(["tenants:read"], b.id);
  const unbound = await h.serviceToken(["tenants:read"]);

  const list = await h.call("GET", "/v1/admin/tokens", { token: reader.token });
  assert.equal(list.status, 200);
  const ids = list.body.data.map((t: { id: string }) => t.id).sort();
  assert.deepEqual(ids, [reader.id, sibling.id].sort());
  for (const t of list.body.data) assert.equal(t.tenant_id, a.id);

  assert.equal(
    (await h.call("GET", `/v1/admin/tokens/${sibling.id}`, { token: reader.token })).status,
    200,
  );
  for (const other of [inB.id, unbound.id]) {
    const get = await h.call("GET", `/v1/admin/tokens/${other}`, { token: reader.token });
    assert.equal(get.status, 404, other);
    assert.equal(get.body.error.code, "NOT_FOUND");
    const del = await h.call("DELETE", `/v1/admin/tokens/${other}`, { token: reader.token });
    assert.equal(del.status, 404, other);
  }
  assert.equal((await whoAmI(h, inB.token)).status, 200, "the other tenant's token still works");
  assert.equal((await whoAmI(h, unbound.token)).status, 200);
});

Deno.test("bound token: may only mint tokens bound to its own tenant", async () => {
  await using h = await setup();
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  const minter = await h.serviceToken(["tokens:write", "tenants:read"], a.id);

  const unbound = await create(h, minter.token, { name: "x", permissions: ["tenants:read"] });
  assert.equal(unbound.status, 403);
  const other = await create(h, minter.token, {
    name: "x",
    permissions: ["tenants:read"],
    tenant_id: b.id,
  });
  assert.equal(other.status, 404);
  const own = await create(h, minter.token, {
    name: "x",
    permissions: ["tenants:read"],
    tenant_id: a.id,
  });
  assert.equal(own.status, 201, own.text);
  assert.equal(own.body.data.tenant_id, a.id);
});

// ── Expiry ────────────────────────────────────────────────────────────────────

Deno.test("expiry: a token stops working once expires_at has passed (401)", async () => {
  await using h = await setup();
  const token = await created(h, {
    permissions: ["tenants:read"],
    expires_at: iso(h.clock.now + HOUR),
  });
  assert.equal(token.expires_at, iso(h.clock.now + HOUR));
  assert.equal((await whoAmI(h, token.token)).status, 200);
  h.advance(HOUR - 1);
  assert.equal((await whoAmI(h, token.token)).status, 200, "a millisecond before expiry");
  h.advance(HOUR + 1);
  const res = await whoAmI(h, token.token);
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, "UNAUTHORIZED");
  assert.ok(res.headers.get("WWW-Authenticate"));
});

Deno.test("expiry: expires_at given with an offset is stored and shown in UTC", async () => {
  await using h = await setup();
  // 2026-03-01T15:00:00+02:00 is 13:00 UTC: one hour after the harness's clock.
  const token = await created(h, {
    permissions: ["tenants:read"],
    expires_at: "2026-03-01T15:00:00+02:00",
  });
  assert.equal(token.expires_at, "2026-03-01T13:00:00.000Z");
  const read = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(read.body.data.expires_at, "2026-03-01T13:00:00.000Z");
  h.advance(HOUR);
  assert.equal((await whoAmI(h, token.token)).status, 401);
});

Deno.test("expiry: a token without expires_at keeps working", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  h.advance(400 * 24 * HOUR);
  assert.equal((await whoAmI(h, token.token)).status, 200);
});

// ── Revoke ────────────────────────────────────────────────────────────────────

Deno.test("revoke: 200 with revoked_at; the token is refused on its very next request", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  assert.equal((await whoAmI(h, token.token)).status, 200);
  h.advance(1000);
  const res = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(res.status, 200);
  assert.equal(res.body.data.id, token.id);
  assert.equal(res.body.data.revoked_at, iso(h.clock.now));
  assert.equal(res.body.data.token_hash, undefined);
  assert.ok(res.headers.get("ETag"));

  const after = await whoAmI(h, token.token);
  assert.equal(after.status, 401);
  assert.equal(after.body.error.code, "UNAUTHORIZED");
  assert.equal((await h.kv.get(keys.tokenHash(await sha256Hex(token.token)))).versionstamp, null);

  const read = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(read.status, 200, "a revoked token stays readable");
  assert.equal(read.body.data.revoked_at, iso(h.clock.now));
});

Deno.test("revoke: revoking twice is 200 and writes no second audit event", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const first = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(first.status, 200);
  h.advance(60_000);
  const second = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, { token: h.root });
  assert.equal(second.status, 200);
  assert.equal(second.body.data.revoked_at, first.body.data.revoked_at);
  assert.equal(second.headers.get("ETag"), first.headers.get("ETag"));

  const actions = (await h.auditFor(token.id)).map((e) => e.action);
  assert.deepEqual(actions, ["token.revoked", "token.created"]);
});

Deno.test("revoke: a stale If-Match is 412 and leaves the token working", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const res = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, {
    token: h.root,
    headers: { "If-Match": '"0000"' },
  });
  assert.equal(res.status, 412);
  assert.equal(res.body.error.code, "PRECONDITION_FAILED");
  assert.equal((await whoAmI(h, token.token)).status, 200);
  const actions = (await h.auditFor(token.id)).map((e) => e.action);
  assert.deepEqual(actions, ["token.created"]);
});

Deno.test("revoke: If-Match with the current ETag revokes", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  const read = await h.call("GET", `/v1/admin/tokens/${token.id}`, { token: h.root });
  const res = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, {
    token: h.root,
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assert.equal(res.status, 200);
  assert.ok(res.body.data.revoked_at);
  assert.notEqual(res.headers.get("ETag"), read.headers.get("ETag"));
});

Deno.test("revoke: audits token.revoked without the secret or its hash", async () => {
  await using h = await setup();
  const token = await created(h, { permissions: ["tenants:read"] });
  await h.call("DELETE", `/v1/admin/tokens/${token.id}`, { token: h.root });
  const [revoked] = await h.auditFor(token.id);
  assert.equal(revoked.action, "token.revoked");
  assert.deepEqual(Object.keys(revoked.changes ?? {}), ["revoked_at"]);
  const hash = await sha256Hex(token.token);
  for (const line of await auditAndEventLines(h)) {
    assert.ok(!line.includes(hash) && !line.includes(token.token), line.slice(0, 60));
  }
});

Deno.test("revoke: a token may revoke itself, and is refused afterwards", async () => {
  await using h = await setup();
  const token = await h.serviceToken(["tokens:write"]);
  const res = await h.call("DELETE", `/v1/admin/tokens/${token.id}`, { token: token.token });
  assert.equal(res.status, 200);
  assert.equal((await whoAmI(h, token.token)).status, 401);
});

Deno.test("get and revoke: an unknown id is 404", async () => {
  await using h = await setup();
  for (const method of ["GET", "DELETE"]) {
    const res = await h.call(method, `/v1/admin/tokens/${UNKNOWN_ID}`, { token: h.root });
    assert.equal(res.status, 404, method);
    assert.equal(res.body.error.code, "NOT_FOUND");
  }
});

Deno.test("get and revoke: a malformed id is 400", async () => {
  await using h = await setup();
  for (
    const id of [
      "123",
      "tok_short",
      "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      "tok_01jd2z3q4r5s6t7v8w9x0y1z2a",
    ]
  ) {
    for (const method of ["GET", "DELETE"]) {
      const res = await h.call(method, `/v1/admin/tokens/${id}`, { token: h.root });
      assert.equal(res.status, 400, `${method} ${id}`);
      assert.equal(res.body.error.code, "BAD_REQUEST");
    }
  }
});

// ── Idempotency ───────────────────────────────────────────────────────────────

Deno.test("idempotency: the same key and body replay the 201 with the same secret", async () => {
  await using h = await setup();
  const body = { name: "deploy", permissions: ["tenants:read"] };
  const headers = { "Idempotency-Key": "create-deploy-token" };
  const first = await create(h, h.root, body, headers);
  assert.equal(first.status, 201);
  assert.equal(first.headers.get("Idempotent-Replayed"), null);

  const second = await create(h, h.root, body, headers);
  assert.equal(second.status, 201);
  assert.equal(second.headers.get("Idempotent-Replayed"), "true");
  assert.equal(second.text, first.text);
  assert.equal(second.body.data.id, first.body.data.id);
  assert.equal(second.body.data.token, first.body.data.token);
  assert.equal(second.headers.get("Location"), first.headers.get("Location"));
  assert.equal(second.headers.get("ETag"), first.headers.get("ETag"));

  const list = await h.call("GET", "/v1/admin/tokens", { token: h.root });
  const named = list.body.data.filter((t: { name: string }) => t.name === "deploy");
  assert.equal(named.length, 1, "only one token was created");
  assert.deepEqual((await h.auditFor(first.body.data.id)).map((e) => e.action), ["token.created"]);
});

Deno.test("idempotency: the stored replay does not hold the secret in clear", async () => {
  await using h = await setup();
  const key = "create-token-secret-check";
  const res = await create(h, h.root, { name: "x", permissions: ["tenants:read"] }, {
    "Idempotency-Key": key,
  });
  assert.equal(res.status, 201);
  const dump = await h.dump();
  assert.ok(!dump.includes(res.body.data.token), "no secret in the store");
  assert.ok(!dump.includes(key), "no Idempotency-Key in the store");
});

Deno.test("idempotency: the same key with a different body is 422", async () => {
  await using h = await setup();
  const headers = { "Idempotency-Key": "create-token-twice" };
  const first = await create(h, h.root, { name: "a", permissions: ["tenants:read"] }, headers);
  assert.equal(first.status, 201);
  const second = await create(h, h.root, { name: "b", permissions: ["tenants:read"] }, headers);
  assert.equal(second.status, 422);
  assert.equal(second.body.error.code, "UNPROCESSABLE");
  assert.doesNotMatch(second.text, /stw_/);
});

Deno.test("idempotency: keys are per caller; another caller's same key creates its own token", async () => {
  await using h = await setup();
  const other = await h.serviceToken(["tokens:write", "tenants:read"]);
  const body = { name: "shared", permissions: ["tenants:read"] };
  const headers = { "Idempotency-Key": "same-key" };
  const mine = await create(h, h.root, body, headers);
  const theirs = await create(h, other.token, body, headers);
  assert.equal(mine.status, 201);
  assert.equal(theirs.status, 201);
  assert.equal(theirs.headers.get("Idempotent-Replayed"), null);
  assert.notEqual(theirs.body.data.token, mine.body.data.token);
});

// ── Pagination ────────────────────────────────────────────────────────────────

Deno.test("pagination: walking next_cursor with limit=2 sees every token once, newest first", async () => {
  await using h = await setup();
  const createdIds: string[] = [];
  for (let i = 0; i < 5; i++) {
    h.advance(1000);
    createdIds.push((await created(h, { name: `t${i}`, permissions: ["tenants:read"] })).id);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const res = await h.call("GET", `/v1/admin/tokens?limit=2${query}`, { token: h.root });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.data.length <= 2);
    assert.equal(res.body.pagination.limit, 2);
    seen.push(...res.body.data.map((t: { id: string }) => t.id));
    cursor = res.body.pagination.has_more ? res.body.pagination.next_cursor : null;
    if (res.body.pagination.has_more) assert.ok(cursor, "has_more comes with a cursor");
    else assert.equal(res.body.pagination.next_cursor, null);
    assert.ok(++pages <= 10, "the walk ends");
  } while (cursor);

  // Five created plus the bootstrap token.
  assert.equal(seen.length, 6);
  assert.equal(new Set(seen).size, seen.length, "no token twice");
  for (const id of createdIds) assert.ok(seen.includes(id), id);
  assert.deepEqual(seen.slice(0, 5), [...createdIds].reverse(), "newest first");
  assert.equal(pages, 3);
});

Deno.test("pagination: a cursor that was not issued for this list is 400", async () => {
  await using h = await setup();
  for (let i = 0; i < 3; i++) await created(h, { name: `t${i}`, permissions: ["tenants:read"] });
  await h.tenant("acme");
  await h.tenant("globex");
  const page = await h.call("GET", "/v1/admin/tokens?limit=1", { token: h.root });
  const real: string = page.body.pagination.next_cursor;
  assert.ok(real);
  const tenants = await h.call("GET", "/v1/tenants?limit=1", { token: h.root });
  const foreign: string = tenants.body.pagination.next_cursor;
  assert.ok(foreign);

  const invalid = [
    "not-a-cursor", // valid base64url, so Deno KV alone would take it as a position
    "AAAA",
    "garbage!!",
    real.slice(0, -1),
    `${real}x`,
    `x${real}`,
    foreign, // another list's cursor
  ];
  for (const cursor of invalid) {
    const res = await h.call(
      "GET",
      `/v1/admin/tokens?limit=1&cursor=${encodeURIComponent(cursor)}`,
      { token: h.root },
    );
    assert.equal(res.status, 400, cursor);
    assert.equal(res.body.error.code, "BAD_REQUEST");
  }
  const ok = await h.call("GET", `/v1/admin/tokens?limit=1&cursor=${encodeURIComponent(real)}`, {
    token: h.root,
  });
  assert.equal(ok.status, 200, "the issued cursor still works");
  assert.notEqual(ok.body.data[0].id, page.body.data[0].id);
});

Deno.test("pagination: limit out of range and unknown query parameters are 400", async () => {
  await using h = await setup();
  for (const query of ["limit=0", "limit=101", "limit=abc", "tenant=acme"]) {
    const res = await h.call("GET", `/v1/admin/tokens?${query}`, { token: h.root });
    assert.equal(res.status, 400, query);
    assert.equal(res.body.error.code, "BAD_REQUEST");
  }
});

Deno.test("revoke: nobody revokes a token holding more than they do (admin vs the bootstrap token)", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const tokens = await h.call("GET", "/v1/admin/tokens", { token: h.root });
  const bootstrap = tokens.body.data.find((t: { name: string }) => t.name === "bootstrap");
  const res = await h.call("DELETE", `/v1/admin/tokens/${bootstrap.id}`, { token: admin.token });
  assert.equal(res.status, 403);
  assert.equal((await h.call("GET", "/v1/auth/me", { token: h.root })).status, 200);
  const own = await h.serviceToken(["tenants:read"]);
  assert.equal(
    (await h.call("DELETE", `/v1/admin/tokens/${own.id}`, { token: admin.token })).status,
    200,
  );
});

Deno.test("expiry: a token minted by an expiring token expires no later than its creator", async () => {
  await using h = await setup();
  const limit = iso(h.clock.now + 3_600_000);
  const parent = await created(h, {
    permissions: ["tokens:write", "tenants:read"],
    expires_at: limit,
  });
  const unasked = await create(h, parent.token, { name: "child", permissions: ["tenants:read"] });
  assert.equal(unasked.status, 201, unasked.text);
  assert.equal(unasked.body.data.expires_at, limit, "inherits the creator's expiry");
  const sooner = iso(h.clock.now + 600_000);
  const earlier = await create(h, parent.token, {
    name: "child",
    permissions: ["tenants:read"],
    expires_at: sooner,
  });
  assert.equal(earlier.body.data.expires_at, sooner);
  const later = await create(h, parent.token, {
    name: "child",
    permissions: ["tenants:read"],
    expires_at: iso(h.clock.now + 7_200_000),
  });
  assert.equal(later.status, 400);
  assert.equal(later.body.error.code, "BAD_REQUEST");
  assert.match(later.body.error.message, /may not be later than the creating token's/);
  h.advance(3_600_000);
  assert.equal((await whoAmI(h, unasked.body.data.token)).status, 401);
});
