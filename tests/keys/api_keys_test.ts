/**
 * API keys: /v1/tenants/{tenant}/api-keys — created once in clear, stored hashed, listed with
 * filters, changed, revoked (idempotent) and rotated (with and without grace); roles, tenant
 * isolation, If-Match, Idempotency-Key and audit events; no key in clear anywhere in KV.
 */
import assert from "node:assert/strict";
import { mintKey, wellFormedKey } from "../../domain/keys/api_keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const path = (t: string, id?: string, action?: string) =>
  `/v1/tenants/${t}/api-keys${id ? `/${id}` : ""}${action ? `/${action}` : ""}`;

async function createKey(h: Harness, tenant: string, body: Record<string, unknown> = {}) {
  const res = await h.call("POST", path(tenant), {
    token: h.root,
    body: { name: "server", environment: "live", ...body },
  });
  assert.equal(res.status, 201, res.text);
  return res;
}

const verify = (h: Harness, key: string) =>
  h.call("POST", "/v1/keys/verify", { token: h.root, body: { key } });

Deno.test("keys: minted keys carry a checksum; a typo or a forged shape fails it", () => {
  const key = mintKey("sk_live");
  assert.match(key, /^sk_live_[0-9A-Za-z]{30}$/);
  assert.ok(wellFormedKey(key));
  const typo = key.slice(0, 10) + (key[10] === "a" ? "b" : "a") + key.slice(11);
  assert.ok(!wellFormedKey(typo));
  assert.ok(!wellFormedKey(key.slice(0, -1)));
  assert.ok(!wellFormedKey(`sk_prod_${key.slice(8)}`));
  assert.ok(!wellFormedKey(""));
  assert.notEqual(mintKey("sk_live"), mintKey("sk_live"));
});

Deno.test("POST api-keys: returns the key once, stores only its hash; audited without it", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const member = await memberOf(h, t.id, "member");
  const res = await h.call("POST", path("acme"), {
    token: member.token,
    body: {
      name: "checkout",
      environment: "test",
      scopes: ["orders:write", "orders:read", "orders:read"],
      meta: { customer: "cus_1", seats: 3 },
      external_id: "cus_1",
      rate_limit: { requests_per_second: 5, burst: 10 },
    },
  });
  assert.equal(res.status, 201, res.text);
  const k = res.body.data;
  assert.match(k.key, /^sk_test_/);
  assert.equal(k.start, k.key.slice(0, 12));
  assert.equal(k.status, "active");
  assert.deepEqual(k.scopes, ["orders:read", "orders:write"]);
  assert.equal(k.environment, "test");
  assert.ok(!("key_hash" in k));
  assert.equal(res.headers.get("Location"), `/v1/tenants/${t.id}/api-keys/${k.id}`);
  const dump = await h.dump();
  assert.ok(!dump.includes(k.key), "the key is not stored in clear");
  assert.ok(!dump.includes(k.key.slice(12)), "nor its secret part");
  const [event] = await h.auditFor(k.id);
  assert.equal(event.action, "api_key.created");
  assert.ok(!JSON.stringify(event).includes(k.key));
  const read = await h.call("GET", path("acme", k.id), { token: member.token });
  assert.equal(read.status, 200);
  assert.ok(!("key" in read.body.data));
  assert.equal((await verify(h, k.key)).body.data.code, "VALID");
});

Deno.test("POST api-keys: the tenant's prefix, a project of its own, and validation", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.tenant("globex");
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    token: h.root,
    body: { name: "App" },
  });
  const other = await h.call("POST", "/v1/tenants/globex/projects", {
    token: h.root,
    body: { name: "Theirs" },
  });
  const withProject = await createKey(h, "acme", { project_id: project.body.data.id });
  assert.equal(withProject.body.data.project_id, project.body.data.id);
  const post = (body: unknown) => h.call("POST", path("acme"), { token: h.root, body });
  assertInvalid(
    await post({ name: "x", environment: "live", project_id: other.body.data.id }),
    "project_id",
  );
  assertInvalid(await post({ name: "x", environment: "prod" }), "json.environment");
  assertInvalid(await post({ name: "x" }), "json.environment");
  assertInvalid(
    await post({ name: "x", environment: "live", scopes: ["has space"] }),
    "json.scopes.0",
  );
  assertInvalid(
    await post({
      name: "x",
      environment: "live",
      rate_limit: { requests_per_second: 10, burst: 1 },
    }),
    "json.rate_limit.burst",
  );
  assertInvalid(
    await post({ name: "x", environment: "live", expires_at: "2020-01-01T00:00:00Z" }),
    "expires_at",
  );
  assertInvalid(await post({ name: "x", environment: "live", key: "sk_live_mine" }));
  const list = await h.call("GET", path("acme"), { token: h.root });
  assert.equal(list.body.data.length, 1);
  assert.equal(t.id, list.body.data[0].tenant_id);
});

Deno.test("api-keys: roles and tenants — viewers read, members write, strangers 404, no token 401", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const g = await h.tenant("globex");
  const k = (await createKey(h, "acme")).body.data;
  const viewer = await memberOf(h, t.id, "viewer");
  const stranger = await memberOf(h, g.id, "owner");
  assert.equal((await h.call("GET", path("acme"), { token: viewer.token })).status, 200);
  assertError(
    await h.call("POST", path("acme"), {
      token: viewer.token,
      body: { name: "x", environment: "live" },
    }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("DELETE", path("acme", k.id), { token: viewer.token }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("GET", path("acme", k.id), { token: stranger.token }), 404, "NOT_FOUND");
  // Another tenant's key id through one's own tenant: not found.
  assertError(
    await h.call("GET", path("globex", k.id), { token: stranger.token }),
    404,
    "NOT_FOUND",
  );
  assertError(await h.call("GET", path("acme")), 401, "UNAUTHORIZED");
  const finance = await h.user("finance");
  assertError(await h.call("GET", path("acme"), { token: finance.token }), 403, "FORBIDDEN");
});

Deno.test("GET api-keys: newest first; filters by status, project, environment, external id", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const project = (await h.call("POST", "/v1/tenants/acme/projects", {
    token: h.root,
    body: { name: "App" },
  })).body.data;
  const a = (await createKey(h, "acme", { external_id: "cus_a" })).body.data;
  const b = (await createKey(h, "acme", { environment: "test", project_id: project.id })).body.data;
  const c = (await createKey(h, "acme", { expires_at: new Date(h.clock.now + 1000).toISOString() }))
    .body.data;
  await h.call("DELETE", path("acme", a.id), { token: h.root });
  h.advance(1000);
  const ids = async (q = "") =>
    (await h.call("GET", `${path("acme")}${q}`, { token: h.root })).body.data.map((
      k: { id: string },
    ) => k.id);
  assert.deepEqual(await ids(), [c.id, b.id, a.id]);
  assert.deepEqual(await ids("?status=active"), [b.id]);
  assert.deepEqual(await ids("?status=revoked"), [a.id]);
  assert.deepEqual(await ids("?status=expired"), [c.id]);
  assert.deepEqual(await ids(`?project_id=${project.id}`), [b.id]);
  assert.deepEqual(await ids("?environment=test"), [b.id]);
  assert.deepEqual(await ids("?external_id=cus_a"), [a.id]);
  assertInvalid(
    await h.call("GET", `${path("acme")}?status=gone`, { token: h.root }),
    "query.status",
  );
});

Deno.test("PATCH api-key: changes what verify returns at once; 412 stale; 409 once revoked", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const created = await createKey(h, "acme", { scopes: ["a"] });
  const k = created.body.data;
  assert.deepEqual((await verify(h, k.key)).body.data.scopes, ["a"]);
  const res = await h.call("PATCH", path("acme", k.id), {
    token: h.root,
    body: { name: "renamed", scopes: ["b"], meta: { plan: "gold" } },
    headers: { "If-Match": created.headers.get("ETag")! },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.scopes, ["b"]);
  const after = (await verify(h, k.key)).body.data;
  assert.deepEqual(after.scopes, ["b"]);
  assert.deepEqual(after.meta, { plan: "gold" });
  assert.equal((await h.auditFor(k.id))[0].action, "api_key.updated");
  assertError(
    await h.call("PATCH", path("acme", k.id), {
      token: h.root,
      body: { name: "stale" },
      headers: { "If-Match": created.headers.get("ETag")! },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  assertInvalid(
    await h.call("PATCH", path("acme", k.id), { token: h.root, body: { environment: "test" } }),
  );
  await h.call("DELETE", path("acme", k.id), { token: h.root });
  assertError(
    await h.call("PATCH", path("acme", k.id), { token: h.root, body: { name: "late" } }),
    409,
    "CONFLICT",
  );
});

Deno.test("DELETE api-key: revokes at once (verify says REVOKED), twice is a no-op, others untouched", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const k = (await createKey(h, "acme")).body.data;
  const other = (await createKey(h, "acme")).body.data;
  assert.equal((await verify(h, k.key)).body.data.code, "VALID");
  const res = await h.call("DELETE", path("acme", k.id), { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "revoked");
  assert.equal((await verify(h, k.key)).body.data.code, "REVOKED");
  assert.equal((await verify(h, other.key)).body.data.code, "VALID");
  const again = await h.call("DELETE", path("acme", k.id), { token: h.root });
  assert.equal(again.status, 200);
  assert.equal(again.body.data.revoked_at, res.body.data.revoked_at);
  const revocations = (await h.auditFor(k.id)).filter((e) => e.action === "api_key.revoked");
  assert.equal(revocations.length, 1);
});

Deno.test("POST rotate: a new key with the same settings; the old one stops now", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const old = (await createKey(h, "acme", { scopes: ["s"], meta: { m: 1 }, external_id: "x" })).body
    .data;
  const res = await h.call("POST", path("acme", old.id, "rotate"), { token: h.root });
  assert.equal(res.status, 201, res.text);
  const fresh = res.body.data;
  assert.notEqual(fresh.key, old.key);
  assert.notEqual(fresh.id, old.id);
  assert.deepEqual([fresh.scopes, fresh.meta, fresh.external_id], [["s"], { m: 1 }, "x"]);
  assert.equal(fresh.rotated_from, old.id);
  assert.equal((await verify(h, old.key)).body.data.code, "REVOKED");
  assert.equal((await verify(h, fresh.key)).body.data.code, "VALID");
  const previous = await h.call("GET", path("acme", old.id), { token: h.root });
  assert.equal(previous.body.data.rotated_to, fresh.id);
  assertError(
    await h.call("POST", path("acme", old.id, "rotate"), { token: h.root }),
    409,
    "CONFLICT",
  );
  assert.equal((await h.auditFor(old.id))[0].action, "api_key.rotated");
  assert.equal((await h.auditFor(fresh.id))[0].action, "api_key.created");
});

Deno.test("POST rotate: with grace both keys work until it ends; grace is bounded", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const old = (await createKey(h, "acme")).body.data;
  const res = await h.call("POST", path("acme", old.id, "rotate"), {
    token: h.root,
    body: { grace_seconds: 3600 },
  });
  const fresh = res.body.data;
  assert.equal((await verify(h, old.key)).body.data.code, "VALID");
  assert.equal((await verify(h, fresh.key)).body.data.code, "VALID");
  h.advance(3600_000);
  assert.equal((await verify(h, old.key)).body.data.code, "REVOKED");
  assert.equal((await verify(h, fresh.key)).body.data.code, "VALID");
  const other = (await createKey(h, "acme")).body.data;
  assertInvalid(
    await h.call("POST", path("acme", other.id, "rotate"), {
      token: h.root,
      body: { grace_seconds: 8 * 86_400 },
    }),
    "json.grace_seconds",
  );
  assertInvalid(
    await h.call("POST", path("acme", other.id, "rotate"), { token: h.root, body: { grace: 1 } }),
  );
});

Deno.test("POST rotate and create: Idempotency-Key replays the same key, minting one", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const headers = { "Idempotency-Key": "create-key-1" };
  const body = { name: "server", environment: "live" };
  const first = await h.call("POST", path("acme"), { token: h.root, body, headers });
  const again = await h.call("POST", path("acme"), { token: h.root, body, headers });
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.equal(again.body.data.key, first.body.data.key);
  const list = await h.call("GET", path("acme"), { token: h.root });
  assert.equal(list.body.data.length, 1);
  // The replay store keeps the response sealed: the key is not in KV in clear.
  assert.ok(!(await h.dump()).includes(first.body.data.key));
  const rotateHeaders = { "Idempotency-Key": "rotate-1" };
  const r1 = await h.call("POST", path("acme", first.body.data.id, "rotate"), {
    token: h.root,
    headers: rotateHeaders,
  });
  const r2 = await h.call("POST", path("acme", first.body.data.id, "rotate"), {
    token: h.root,
    headers: rotateHeaders,
  });
  assert.equal(r1.status, 201, r1.text);
  assert.equal(r2.body.data.key, r1.body.data.key);
});

Deno.test("api-keys: last_used_at follows verify, before and after the counters are written", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const k = (await createKey(h, "acme")).body.data;
  assert.equal(k.last_used_at, null);
  h.advance(5_000);
  await verify(h, k.key);
  const at = new Date(h.clock.now).toISOString();
  const pending = await h.call("GET", path("acme", k.id), { token: h.root });
  assert.equal(pending.body.data.last_used_at, at, "from the write-behind counters");
  await h.svc.counters.flush();
  const list = await h.call("GET", path("acme"), { token: h.root });
  assert.equal(list.body.data[0].last_used_at, at, "persisted");
});
