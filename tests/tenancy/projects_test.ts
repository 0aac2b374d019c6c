/**
 * Projects: /v1/tenants/{tenant}/projects — CRUD with origin and redirect validation, roles,
 * tenant isolation, If-Match, Idempotency-Key, soft delete and the audit events.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const path = (t: string, id?: string) => `/v1/tenants/${t}/projects${id ? `/${id}` : ""}`;

async function project(h: Harness, tenant: string, body: Record<string, unknown> = {}) {
  const res = await h.call("POST", path(tenant), {
    token: h.root,
    body: { name: "Storefront", ...body },
  });
  assert.equal(res.status, 201, res.text);
  return res;
}

Deno.test("POST projects: creates with normalized origins and redirect URLs; audited", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const member = await memberOf(h, t.id, "member");
  const res = await h.call("POST", path("acme"), {
    token: member.token,
    body: {
      name: "Storefront",
      allowed_origins: [
        "https://App.Example.com:443",
        "https://app.example.com",
        "http://localhost:3000",
      ],
      redirect_urls: ["https://app.example.com/callback?x=1", "http://127.0.0.1:8080/cb"],
      metadata: { team: "web" },
    },
  });
  assert.equal(res.status, 201, res.text);
  const p = res.body.data;
  assert.match(p.id, /^prj_/);
  assert.equal(p.tenant_id, t.id);
  assert.equal(p.status, "active");
  assert.deepEqual(p.allowed_origins, ["https://app.example.com", "http://localhost:3000"]);
  assert.deepEqual(p.redirect_urls, [
    "https://app.example.com/callback?x=1",
    "http://127.0.0.1:8080/cb",
  ]);
  assert.equal(res.headers.get("Location"), `/v1/tenants/${t.id}/projects/${p.id}`);
  assert.ok(res.headers.get("ETag"));
  const [event] = await h.auditFor(p.id);
  assert.equal(event.action, "project.created");
  assert.equal(event.actor_id, member.id);
});

Deno.test("POST projects: bad origins, redirect URLs and fields are 400 naming each item", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const post = (body: unknown) => h.call("POST", path("acme"), { token: h.root, body });
  assertInvalid(
    await post({ name: "A", allowed_origins: ["https://a.com", "https://a.com/path"] }),
    "json.allowed_origins.1",
  );
  for (
    const origin of [
      "ftp://a.com",
      "a.com",
      "https://a.com?x",
      "https://u:p@a.com",
      "https://a.com#x",
    ]
  ) {
    assertInvalid(await post({ name: "A", allowed_origins: [origin] }), "json.allowed_origins.0");
  }
  for (
    const url of [
      "http://example.com/cb",
      "/relative",
      "https://a.com/cb#frag",
      "javascript:alert(1)",
    ]
  ) {
    assertInvalid(await post({ name: "A", redirect_urls: [url] }), "json.redirect_urls.0");
  }
  assertInvalid(await post({ name: "" }), "json.name");
  assertInvalid(await post({ name: "A", owner: "me" }));
  assertInvalid(
    await post({ name: "A", allowed_origins: Array(51).fill("https://a.com") }),
    "json.allowed_origins",
  );
  const list = await h.call("GET", path("acme"), { token: h.root });
  assert.deepEqual(list.body.data, []);
});

Deno.test("GET projects: newest first with a total; deleted ones only when asked", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const a = (await project(h, "acme", { name: "A" })).body.data;
  const b = (await project(h, "acme", { name: "B" })).body.data;
  await h.call("DELETE", path("acme", a.id), { token: h.root });
  const live = await h.call("GET", path("acme"), { token: h.root });
  assert.deepEqual(live.body.data.map((p: { id: string }) => p.id), [b.id]);
  assert.equal(live.body.pagination.total, 1);
  const deleted = await h.call("GET", `${path("acme")}?status=deleted`, { token: h.root });
  assert.deepEqual(deleted.body.data.map((p: { id: string }) => p.id), [a.id]);
  assertInvalid(
    await h.call("GET", `${path("acme")}?status=gone`, { token: h.root }),
    "query.status",
  );
});

Deno.test("GET project: by id; 404 once deleted, unknown, or another tenant's", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await h.tenant("globex");
  const p = (await project(h, "acme")).body.data;
  const res = await h.call("GET", path("acme", p.id), { token: h.root });
  assert.equal(res.status, 200);
  assert.equal(res.body.data.name, "Storefront");
  assertError(await h.call("GET", path("globex", p.id), { token: h.root }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", path("acme", "prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"), { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(await h.call("GET", path("acme", "nope"), { token: h.root }), "param.id");
  await h.call("DELETE", path("acme", p.id), { token: h.root });
  assertError(await h.call("GET", path("acme", p.id), { token: h.root }), 404, "NOT_FOUND");
});

Deno.test("projects: roles — viewers read, members write, strangers get 404, no token 401", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const other = await h.tenant("globex");
  const p = (await project(h, "acme")).body.data;
  const viewer = await memberOf(h, t.id, "viewer");
  const stranger = await memberOf(h, other.id, "owner");
  assert.equal((await h.call("GET", path("acme"), { token: viewer.token })).status, 200);
  assertError(
    await h.call("POST", path("acme"), { token: viewer.token, body: { name: "X" } }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("PATCH", path("acme", p.id), { token: viewer.token, body: { name: "X" } }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("DELETE", path("acme", p.id), { token: viewer.token }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("GET", path("acme"), { token: stranger.token }), 404, "NOT_FOUND");
  assertError(await h.call("GET", path("acme", p.id), { token: stranger.token }), 404, "NOT_FOUND");
  assertError(await h.call("GET", path("acme")), 401, "UNAUTHORIZED");
  const support = await h.user("support");
  assert.equal((await h.call("GET", path("acme", p.id), { token: support.token })).status, 200);
  assertError(
    await h.call("POST", path("acme"), { token: support.token, body: { name: "X" } }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("PATCH project: replaces lists, merges metadata, audited; If-Match stale is 412", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const created = await project(h, "acme", {
    allowed_origins: ["https://a.com"],
    metadata: { a: "1", b: "2" },
  });
  const id = created.body.data.id;
  const res = await h.call("PATCH", path("acme", id), {
    token: h.root,
    body: { allowed_origins: ["https://b.com"], metadata: { a: null, c: "3" } },
    headers: { "If-Match": created.headers.get("ETag")! },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.allowed_origins, ["https://b.com"]);
  assert.deepEqual(res.body.data.metadata, { b: "2", c: "3" });
  const [event] = await h.auditFor(id);
  assert.equal(event.action, "project.updated");
  assert.deepEqual(event.changes?.allowed_origins, {
    before: ["https://a.com"],
    after: ["https://b.com"],
  });
  assertError(
    await h.call("PATCH", path("acme", id), {
      token: h.root,
      body: { name: "Stale" },
      headers: { "If-Match": created.headers.get("ETag")! },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  assertInvalid(
    await h.call("PATCH", path("acme", id), {
      token: h.root,
      body: { redirect_urls: ["http://evil.com"] },
    }),
    "json.redirect_urls.0",
  );
  assertInvalid(await h.call("PATCH", path("acme", id), { token: h.root, body: { status: "x" } }));
});

Deno.test("DELETE project: soft, audited, 412 on a stale If-Match, then 404", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const created = await project(h, "acme");
  const id = created.body.data.id;
  await h.call("PATCH", path("acme", id), { token: h.root, body: { name: "Renamed" } });
  assertError(
    await h.call("DELETE", path("acme", id), {
      token: h.root,
      headers: { "If-Match": created.headers.get("ETag")! },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  const res = await h.call("DELETE", path("acme", id), { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "deleted");
  assert.ok(res.body.data.deleted_at);
  assert.equal((await h.auditFor(id))[0].action, "project.deleted");
  assertError(await h.call("DELETE", path("acme", id), { token: h.root }), 404, "NOT_FOUND");
});

Deno.test("POST projects: same Idempotency-Key and body replays; a deleted tenant takes none", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const headers = { "Idempotency-Key": "project-1" };
  const body = { name: "Storefront" };
  const first = await h.call("POST", path("acme"), { token: h.root, body, headers });
  const again = await h.call("POST", path("acme"), { token: h.root, body, headers });
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.equal(again.body.data.id, first.body.data.id);
  const list = await h.call("GET", path("acme"), { token: h.root });
  assert.equal(list.body.data.length, 1);
  await h.call("DELETE", "/v1/tenants/acme", { token: h.root });
  assertError(
    await h.call("POST", path(t.id), { token: h.root, body: { name: "Late" } }),
    409,
    "CONFLICT",
  );
});
