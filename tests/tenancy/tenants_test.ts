/**
 * Tenants: every route under /v1/tenants — success, validation, authentication, roles, tenant
 * isolation, If-Match, Idempotency-Key and the audit event each mutation writes.
 */
import assert from "node:assert/strict";
import type { Tenant } from "../../domain/tenancy/tenants.ts";
import type { TenantRole } from "../../domain/access/permissions.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, type Reply, setup } from "../_harness.ts";

// ── helpers ─────────────────────────────────────────────────────────────────────

function assertError(res: Reply, status: number, code: string) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body?.success, false);
  assert.equal(res.body?.error?.code, code);
  assert.equal(typeof res.body.error.request_id, "string");
}

/** 400 BAD_REQUEST whose details name an issue at each of `paths` ("json.slug", …). */
function assertInvalid(res: Reply, ...paths: string[]) {
  assertError(res, 400, "BAD_REQUEST");
  const details = res.body.error.details as { path: unknown[]; message: string }[];
  assert.ok(Array.isArray(details), `details should list the issues: ${res.text}`);
  const got = details.map((d) => d.path.join("."));
  for (const path of paths) {
    assert.ok(got.includes(path), `expected an issue at ${path}, got [${got.join(", ")}]`);
  }
}

/** The ETag header without its quotes. */
function etag(res: Reply): string {
  const value = res.headers.get("ETag");
  assert.ok(value, "the response should carry an ETag");
  return value.replace(/^"(.*)"$/, "$1");
}

async function stored(h: Harness, id: string) {
  const entry = await h.kv.get<Tenant>(keys.tenant(id));
  assert.ok(entry.versionstamp, `tenant ${id} should be stored`);
  return entry as Deno.KvEntry<Tenant>;
}

/** Everything a tenant mutation writes: tenants, slugs, counters, audit and domain events. */
async function writes(h: Harness): Promise<string> {
  const out: string[] = [];
  for (const prefix of [["tenants"], ["tenant_slugs"], ["counters"], ["audit"], ["events"]]) {
    for await (const e of h.kv.list({ prefix })) {
      out.push(`${JSON.stringify(e.key)}@${e.versionstamp}`);
    }
  }
  return out.join("\n");
}

/** A logged-in user without a platform role, made `role` in the tenant. */
async function memberOf(h: Harness, tenantId: string, role: TenantRole) {
  const user = await h.user(null);
  await h.member(tenantId, user.id, role);
  return user;
}

async function auditActions(h: Harness, resourceId: string): Promise<string[]> {
  return (await h.auditFor(resourceId)).map((e) => e.action);
}

/** Number of tenants that are not deleted, from the unfiltered list's total. */
async function liveTenantTotal(h: Harness): Promise<number> {
  const res = await h.call("GET", "/v1/tenants?limit=1", { token: h.root });
  assert.equal(res.status, 200);
  return res.body.pagination.total;
}

const slugsOf = (res: Reply) => (res.body.data as Tenant[]).map((t) => t.slug);

/** Two tenants, A and B, for isolation checks. */
async function twoTenants(h: Harness) {
  const a = await h.tenant("tenant-a");
  const b = await h.tenant("tenant-b");
  return { a, b };
}

const STAFF_WITHOUT_WRITES = ["support", "finance", "ops"] as const;

// ── POST /v1/tenants ────────────────────────────────────────────────────────────

Deno.test("POST /v1/tenants: creates an active, non-test tenant on the free plan", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await h.call("POST", "/v1/tenants", {
    token: admin.token,
    body: { name: "Acme Inc", slug: "acme", metadata: { crm_id: "A-1" } },
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.success, true);
  const t = res.body.data as Tenant;
  assert.match(t.id, /^ten_[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(t.name, "Acme Inc");
  assert.equal(t.slug, "acme");
  assert.equal(t.status, "active");
  assert.equal(t.is_test, false);
  assert.equal(t.plan, "free");
  assert.deepEqual(t.metadata, { crm_id: "A-1" });
  assert.deepEqual(t.feature_flags, {});
  assert.equal(t.created_by, admin.id);
  assert.equal(t.created_at, "2026-03-01T12:00:00.000Z");
  assert.equal(t.deleted_at, null);
  assert.equal(res.headers.get("Location"), `/v1/tenants/${t.id}`);
  assert.equal(etag(res), (await stored(h, t.id)).versionstamp);
  assert.equal(res.body.meta.request_id, res.headers.get("X-Request-Id"));
});

Deno.test("POST /v1/tenants: writes a tenant.created audit event naming the actor", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await h.call("POST", "/v1/tenants", {
    token: admin.token,
    body: { name: "Acme", slug: "acme" },
  });
  const events = await h.auditFor(res.body.data.id);
  assert.equal(events.length, 1);
  assert.equal(events[0].action, "tenant.created");
  assert.equal(events[0].actor_id, admin.id);
  assert.deepEqual(events[0].changes?.slug, { before: null, after: "acme" });
  assert.deepEqual(events[0].changes?.name, { before: null, after: "Acme" });
});

Deno.test("POST /v1/tenants: an invalid body is 400 with each issue's path, and nothing is written", async () => {
  await using h = await setup();
  const before = await writes(h);
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "", slug: "Not A Slug", plan: "enterprise" },
  });
  assertInvalid(res, "json.name", "json.slug", "json");
  assert.ok(
    res.body.error.details.some((d: { message: string }) => d.message.includes("plan")),
    "the unknown field is named",
  );
  assert.equal(await writes(h), before);
});

Deno.test("POST /v1/tenants: a missing body is 400", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/tenants", { token: h.root });
  assertError(res, 400, "BAD_REQUEST");
});

Deno.test("POST /v1/tenants: slugs that are upper-case, short, hyphen-edged, underscored or too long are 400", async () => {
  await using h = await setup();
  for (const slug of ["Acme", "ab", "-acme", "acme-", "ac_me", "a".repeat(64), "acme corp"]) {
    const res = await h.call("POST", "/v1/tenants", { token: h.root, body: { name: "X", slug } });
    assertInvalid(res, "json.slug");
  }
  const longest = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "X", slug: "a".repeat(63) },
  });
  assert.equal(longest.status, 201, "63 characters is allowed");
  assert.equal(await liveTenantTotal(h), 1);
});

Deno.test("POST /v1/tenants: a reserved slug (admin) is 400 naming the slug", async () => {
  await using h = await setup();
  for (const slug of ["admin", "api", "www"]) {
    const res = await h.call("POST", "/v1/tenants", { token: h.root, body: { name: "X", slug } });
    assertError(res, 400, "BAD_REQUEST");
    const paths = res.body.error.details.map((d: { path: string[] }) => d.path.at(-1));
    assert.ok(paths.includes("slug"), res.text);
  }
  assert.equal(await liveTenantTotal(h), 0);
});

Deno.test("POST /v1/tenants: a duplicate slug is 409 and the first tenant is untouched", async () => {
  await using h = await setup();
  const first = await h.tenant("acme");
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Other Acme", slug: "acme" },
  });
  assertError(res, 409, "CONFLICT");
  const read = await h.call("GET", "/v1/tenants/acme", { token: h.root });
  assert.equal(read.body.data.id, first.id);
  assert.equal(await liveTenantTotal(h), 1);
});

Deno.test("POST /v1/tenants: two concurrent creates with one slug: one 201, one 409", async () => {
  await using h = await setup();
  const results = await Promise.all(
    ["First", "Second"].map((name) =>
      h.call("POST", "/v1/tenants", { token: h.root, body: { name, slug: "race" } })
    ),
  );
  assert.deepEqual(results.map((r) => r.status).sort(), [201, 409]);
  assert.equal(await liveTenantTotal(h), 1);
  const winner = results.find((r) => r.status === 201)!;
  assert.equal(
    (await h.call("GET", "/v1/tenants/race", { token: h.root })).body.data.id,
    winner.body.data.id,
  );
});

Deno.test("POST /v1/tenants: a name over 200 characters is 400 and nothing is written", async () => {
  await using h = await setup();
  const before = await writes(h);
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "n".repeat(201), slug: "long-name" },
  });
  assertInvalid(res, "json.name");
  assert.equal(await writes(h), before);
  const exactly200 = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "n".repeat(200), slug: "long-name" },
  });
  assert.equal(exactly200.status, 201);
});

Deno.test("POST /v1/tenants: control characters in the name are 400 and nothing is written", async () => {
  await using h = await setup();
  const before = await writes(h);
  for (const name of ["a\u0000b", "line\nbreak", "bell\u0007", "del\u007f"]) {
    const res = await h.call("POST", "/v1/tenants", {
      token: h.root,
      body: { name, slug: "ctrl" },
    });
    assertInvalid(res, "json.name");
  }
  assert.equal(await writes(h), before);
});

Deno.test("POST /v1/tenants: without credentials is 401", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/tenants", { body: { name: "Acme", slug: "acme" } });
  assertError(res, 401, "UNAUTHORIZED");
  assert.ok(res.headers.get("WWW-Authenticate")?.startsWith("Bearer"));
  const bogus = await h.call("POST", "/v1/tenants", {
    token: "stw_not-a-real-token",
    body: { name: "Acme", slug: "acme" },
  });
  assertError(bogus, 401, "UNAUTHORIZED");
  assert.equal(await liveTenantTotal(h), 0);
});

Deno.test("POST /v1/tenants: support, finance, ops and qa staff are 403", async () => {
  await using h = await setup();
  for (const role of [...STAFF_WITHOUT_WRITES, "qa"] as const) {
    const user = await h.user(role);
    const res = await h.call("POST", "/v1/tenants", {
      token: user.token,
      body: { name: "Acme", slug: `acme-${role}` },
    });
    assertError(res, 403, "FORBIDDEN");
  }
  const plain = await h.user(null);
  assertError(
    await h.call("POST", "/v1/tenants", { token: plain.token, body: { name: "A", slug: "abc" } }),
    403,
    "FORBIDDEN",
  );
  assert.equal(await liveTenantTotal(h), 0);
});

Deno.test("POST /v1/tenants: same Idempotency-Key and body replays the first response; one tenant, one event", async () => {
  await using h = await setup();
  const body = { name: "Acme", slug: "acme" };
  const headers = { "Idempotency-Key": "create-acme-0001" };
  const first = await h.call("POST", "/v1/tenants", { token: h.root, body, headers });
  assert.equal(first.status, 201);
  assert.equal(first.headers.get("Idempotent-Replayed"), null);
  const again = await h.call("POST", "/v1/tenants", { token: h.root, body, headers });
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(again.body, first.body);
  assert.equal(again.headers.get("ETag"), first.headers.get("ETag"));
  assert.equal(again.headers.get("Location"), first.headers.get("Location"));
  assert.equal(await liveTenantTotal(h), 1);
  assert.deepEqual(await auditActions(h, first.body.data.id), ["tenant.created"]);
});

Deno.test("POST /v1/tenants: same Idempotency-Key with a different body is 422 and creates nothing", async () => {
  await using h = await setup();
  const headers = { "Idempotency-Key": "create-acme-0002" };
  await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme", slug: "acme" },
    headers,
  });
  const before = await writes(h);
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Beta", slug: "beta" },
    headers,
  });
  assertError(res, 422, "UNPROCESSABLE");
  assert.equal(await writes(h), before);
  assertError(await h.call("GET", "/v1/tenants/beta", { token: h.root }), 404, "NOT_FOUND");
});

// ── POST /v1/tenants/test ───────────────────────────────────────────────────────

Deno.test("POST /v1/tenants/test: creates a test tenant with a generated test- slug", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const res = await h.call("POST", "/v1/tenants/test", {
    token: admin.token,
    body: { name: "Sandbox" },
  });
  assert.equal(res.status, 201, res.text);
  const t = res.body.data as Tenant;
  assert.equal(t.is_test, true);
  assert.equal(t.status, "active");
  assert.match(t.slug, /^test-[a-z0-9]{10}$/);
  assert.equal(res.headers.get("Location"), `/v1/tenants/${t.id}`);
  assert.equal(etag(res), (await stored(h, t.id)).versionstamp);
  const events = await h.auditFor(t.id);
  assert.deepEqual(events.map((e) => e.action), ["tenant.created"]);
  assert.equal(events[0].actor_id, admin.id);
  assert.deepEqual(events[0].changes?.is_test, { before: null, after: true });
});

Deno.test("POST /v1/tenants/test: accepts an explicit slug", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/tenants/test", {
    token: h.root,
    body: { name: "Sandbox", slug: "sandbox-1" },
  });
  assert.equal(res.status, 201);
  assert.equal(res.body.data.slug, "sandbox-1");
  assert.equal(res.body.data.is_test, true);
});

Deno.test("POST /v1/tenants/test: an invalid body is 400 (no mass-assigning is_test or plan)", async () => {
  await using h = await setup();
  const before = await writes(h);
  assertInvalid(await h.call("POST", "/v1/tenants/test", { token: h.root, body: {} }), "json.name");
  assertInvalid(
    await h.call("POST", "/v1/tenants/test", {
      token: h.root,
      body: { name: "S", slug: "_bad" },
    }),
    "json.slug",
  );
  assertInvalid(
    await h.call("POST", "/v1/tenants/test", {
      token: h.root,
      body: { name: "S", is_test: false, plan: "pro" },
    }),
    "json",
  );
  assert.equal(await writes(h), before);
});

Deno.test("POST /v1/tenants/test: a duplicate slug is 409", async () => {
  await using h = await setup();
  await h.tenant("sandbox");
  const res = await h.call("POST", "/v1/tenants/test", {
    token: h.root,
    body: { name: "S", slug: "sandbox" },
  });
  assertError(res, 409, "CONFLICT");
});

Deno.test("POST /v1/tenants/test: without credentials is 401", async () => {
  await using h = await setup();
  assertError(
    await h.call("POST", "/v1/tenants/test", { body: { name: "Sandbox" } }),
    401,
    "UNAUTHORIZED",
  );
});

Deno.test("POST /v1/tenants/test: support, finance and ops are 403", async () => {
  await using h = await setup();
  for (const role of STAFF_WITHOUT_WRITES) {
    const user = await h.user(role);
    const res = await h.call("POST", "/v1/tenants/test", {
      token: user.token,
      body: { name: "Sandbox" },
    });
    assertError(res, 403, "FORBIDDEN");
  }
  assert.equal(await liveTenantTotal(h), 0);
});

Deno.test("POST /v1/tenants/test: the same Idempotency-Key replays the same generated tenant; different body is 422", async () => {
  await using h = await setup();
  const headers = { "Idempotency-Key": "sandbox-request-1" };
  const first = await h.call("POST", "/v1/tenants/test", {
    token: h.root,
    body: { name: "Sandbox" },
    headers,
  });
  assert.equal(first.status, 201);
  const again = await h.call("POST", "/v1/tenants/test", {
    token: h.root,
    body: { name: "Sandbox" },
    headers,
  });
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(again.body, first.body);
  assert.equal(await liveTenantTotal(h), 1);
  assert.deepEqual(await auditActions(h, first.body.data.id), ["tenant.created"]);

  const other = await h.call("POST", "/v1/tenants/test", {
    token: h.root,
    body: { name: "Another sandbox" },
    headers,
  });
  assertError(other, 422, "UNPROCESSABLE");
  assert.equal(await liveTenantTotal(h), 1);
});

// ── GET /v1/tenants ─────────────────────────────────────────────────────────────

Deno.test("GET /v1/tenants: lists every tenant newest first, with a total", async () => {
  await using h = await setup();
  await h.tenant("first");
  h.advance(1_000);
  await h.tenant("second");
  h.advance(1_000);
  await h.tenant("third");
  const res = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(res.status, 200);
  assert.deepEqual(slugsOf(res), ["third", "second", "first"]);
  assert.deepEqual(res.body.pagination, {
    limit: 50,
    next_cursor: null,
    has_more: false,
    total: 3,
  });
});

Deno.test("GET /v1/tenants: tenants created in the same millisecond still list newest first", async () => {
  await using h = await setup();
  for (const slug of ["one", "two", "three", "four", "five"]) await h.tenant(slug);
  const res = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.deepEqual(slugsOf(res), ["five", "four", "three", "two", "one"]);
});

Deno.test("GET /v1/tenants: an unknown query parameter is 400", async () => {
  await using h = await setup();
  assertInvalid(await h.call("GET", "/v1/tenants?colour=red", { token: h.root }), "query");
});

Deno.test("GET /v1/tenants: limit over 100, limit 0 and a bad status or is_test are 400", async () => {
  await using h = await setup();
  assertInvalid(await h.call("GET", "/v1/tenants?limit=101", { token: h.root }), "query.limit");
  assertInvalid(await h.call("GET", "/v1/tenants?limit=0", { token: h.root }), "query.limit");
  assertInvalid(await h.call("GET", "/v1/tenants?status=gone", { token: h.root }), "query.status");
  assertInvalid(await h.call("GET", "/v1/tenants?is_test=yes", { token: h.root }), "query.is_test");
  assertInvalid(await h.call("GET", "/v1/tenants?offset=-1", { token: h.root }), "query.offset");
  assert.equal((await h.call("GET", "/v1/tenants?limit=100", { token: h.root })).status, 200);
});

Deno.test("GET /v1/tenants: a cursor from elsewhere is 400", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const res = await h.call("GET", "/v1/tenants?cursor=bm90LWEtY3Vyc29y", { token: h.root });
  assertError(res, 400, "BAD_REQUEST");
});

Deno.test("GET /v1/tenants: without credentials is 401", async () => {
  await using h = await setup();
  assertError(await h.call("GET", "/v1/tenants"), 401, "UNAUTHORIZED");
});

Deno.test("GET /v1/tenants: every platform role may list (finance, ops and support see all tenants)", async () => {
  await using h = await setup();
  await twoTenants(h);
  for (const role of ["support", "finance", "ops", "admin"] as const) {
    const user = await h.user(role);
    const res = await h.call("GET", "/v1/tenants", { token: user.token });
    assert.equal(res.status, 200, role);
    assert.deepEqual(slugsOf(res).sort(), ["tenant-a", "tenant-b"], role);
  }
});

Deno.test("GET /v1/tenants: members see only the tenants they belong to", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  h.advance(1_000);
  const c = await h.tenant("tenant-c");
  const user = await memberOf(h, a.id, "viewer");
  await h.member(c.id, user.id, "owner");
  const res = await h.call("GET", "/v1/tenants", { token: user.token });
  assert.equal(res.status, 200);
  assert.deepEqual(slugsOf(res), ["tenant-c", "tenant-a"]);
  assert.ok(!slugsOf(res).includes(b.slug));

  const loner = await h.user(null);
  const none = await h.call("GET", "/v1/tenants", { token: loner.token });
  assert.equal(none.status, 200);
  assert.deepEqual(none.body.data, []);
});

Deno.test("GET /v1/tenants: a token bound to a tenant sees only that tenant", async () => {
  await using h = await setup();
  const { a } = await twoTenants(h);
  const bound = await h.serviceToken(["tenants:read"], a.id);
  const res = await h.call("GET", "/v1/tenants", { token: bound.token });
  assert.equal(res.status, 200);
  assert.deepEqual(slugsOf(res), ["tenant-a"]);
});

Deno.test("GET /v1/tenants: filters by status", async () => {
  await using h = await setup();
  const { a } = await twoTenants(h);
  await h.call("POST", `/v1/tenants/${a.id}/suspend`, { token: h.root });
  const suspended = await h.call("GET", "/v1/tenants?status=suspended", { token: h.root });
  assert.deepEqual(slugsOf(suspended), ["tenant-a"]);
  assert.equal(suspended.body.pagination.total, 1, "a filtered list counts its matches");
  const active = await h.call("GET", "/v1/tenants?status=active", { token: h.root });
  assert.deepEqual(slugsOf(active), ["tenant-b"]);
});

Deno.test("GET /v1/tenants: filters by plan", async () => {
  await using h = await setup();
  await twoTenants(h);
  const free = await h.call("GET", "/v1/tenants?plan=free", { token: h.root });
  assert.deepEqual(slugsOf(free).sort(), ["tenant-a", "tenant-b"]);
  const pro = await h.call("GET", "/v1/tenants?plan=pro", { token: h.root });
  assert.deepEqual(pro.body.data, []);
});

Deno.test("GET /v1/tenants: filters by is_test", async () => {
  await using h = await setup();
  await h.tenant("live-one");
  await h.tenant("sandbox-one", {}, "/v1/tenants/test");
  const tests = await h.call("GET", "/v1/tenants?is_test=true", { token: h.root });
  assert.deepEqual(slugsOf(tests), ["sandbox-one"]);
  const live = await h.call("GET", "/v1/tenants?is_test=false", { token: h.root });
  assert.deepEqual(slugsOf(live), ["live-one"]);
});

Deno.test("GET /v1/tenants: search matches a name prefix case-insensitively, or a slug prefix", async () => {
  await using h = await setup();
  await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme Rockets", slug: "rockets" },
  });
  await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Globex", slug: "acme-globex" },
  });
  await h.call("POST", "/v1/tenants", { token: h.root, body: { name: "Big Acme", slug: "big" } });
  await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Initech", slug: "initech" },
  });

  for (const search of ["acme", "ACME", "aCmE"]) {
    const res = await h.call("GET", `/v1/tenants?search=${search}`, { token: h.root });
    assert.equal(res.status, 200);
    assert.deepEqual(slugsOf(res).sort(), ["acme-globex", "rockets"], search);
  }
  const bySlug = await h.call("GET", "/v1/tenants?search=init", { token: h.root });
  assert.deepEqual(slugsOf(bySlug), ["initech"]);
  const middle = await h.call("GET", "/v1/tenants?search=rockets", { token: h.root });
  assert.deepEqual(slugsOf(middle), ["rockets"], "the slug prefix, not the name's middle");
  const nothing = await h.call("GET", "/v1/tenants?search=zzz", { token: h.root });
  assert.deepEqual(nothing.body.data, []);
});

Deno.test("GET /v1/tenants: cursor pagination walks every tenant exactly once, newest first", async () => {
  await using h = await setup();
  const slugs = ["t-one", "t-two", "t-three", "t-four", "t-five"];
  for (const slug of slugs) {
    await h.tenant(slug);
    h.advance(1_000);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  const hasMore: boolean[] = [];
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const page: Reply = await h.call("GET", `/v1/tenants?limit=2${query}`, { token: h.root });
    assert.equal(page.status, 200, page.text);
    assert.ok(page.body.data.length <= 2);
    seen.push(...slugsOf(page));
    hasMore.push(page.body.pagination.has_more);
    cursor = page.body.pagination.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, [...slugs].reverse());
  assert.deepEqual(hasMore, [true, true, false]);
});

Deno.test("GET /v1/tenants: offset skips matches for jump-to-page views", async () => {
  await using h = await setup();
  for (const slug of ["t-one", "t-two", "t-three", "t-four", "t-five"]) {
    await h.tenant(slug);
    h.advance(1_000);
  }
  const page2 = await h.call("GET", "/v1/tenants?limit=2&offset=2", { token: h.root });
  assert.deepEqual(slugsOf(page2), ["t-three", "t-two"]);
  assert.equal(page2.body.pagination.has_more, true);
  const last = await h.call("GET", "/v1/tenants?limit=2&offset=4", { token: h.root });
  assert.deepEqual(slugsOf(last), ["t-one"]);
  assert.equal(last.body.pagination.has_more, false);
  const past = await h.call("GET", "/v1/tenants?limit=2&offset=10", { token: h.root });
  assert.deepEqual(past.body.data, []);
});

Deno.test("GET /v1/tenants: deleted tenants are left out unless status=deleted asks for them", async () => {
  await using h = await setup();
  const { a } = await twoTenants(h);
  await h.call("DELETE", `/v1/tenants/${a.id}`, { token: h.root });
  const list = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.deepEqual(slugsOf(list), ["tenant-b"]);
  assert.equal(list.body.pagination.total, 1);
  const deleted = await h.call("GET", "/v1/tenants?status=deleted", { token: h.root });
  assert.deepEqual(slugsOf(deleted), ["tenant-a"]);
  assert.equal(deleted.body.data[0].status, "deleted");
});

// ── GET /v1/tenants/{tenant} ────────────────────────────────────────────────────

Deno.test("GET /v1/tenants/{tenant}: reads by id and by slug, with the versionstamp as ETag", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const byId = await h.call("GET", `/v1/tenants/${acme.id}`, { token: h.root });
  const bySlug = await h.call("GET", "/v1/tenants/acme", { token: h.root });
  assert.equal(byId.status, 200);
  assert.equal(bySlug.status, 200);
  assert.deepEqual(byId.body.data, bySlug.body.data);
  assert.equal(byId.body.data.id, acme.id);
  assert.equal(etag(byId), (await stored(h, acme.id)).versionstamp);
  assert.equal(byId.headers.get("ETag"), bySlug.headers.get("ETag"));
});

Deno.test("GET /v1/tenants/{tenant}: an unknown id or slug is 404", async () => {
  await using h = await setup();
  await h.tenant("acme");
  assertError(await h.call("GET", "/v1/tenants/nope", { token: h.root }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", "/v1/tenants/ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A", { token: h.root }),
    404,
    "NOT_FOUND",
  );
  // A {tenant} segment no id or slug can match (over 64 characters) is simply not found.
  assertError(
    await h.call("GET", `/v1/tenants/${"x".repeat(65)}`, { token: h.root }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("GET /v1/tenants/{tenant}: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  assertError(await h.call("GET", `/v1/tenants/${acme.id}`), 401, "UNAUTHORIZED");
  assertError(await h.call("GET", "/v1/tenants/acme"), 401, "UNAUTHORIZED");
});

Deno.test("GET /v1/tenants/{tenant}: a bound token without tenants:read is 403 in its own tenant", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const token = await h.serviceToken(["audit:read"], acme.id);
  assertError(await h.call("GET", "/v1/tenants/acme", { token: token.token }), 403, "FORBIDDEN");
});

Deno.test("GET /v1/tenants/{tenant}: a member of A reading B is 404, by id and by slug", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const user = await memberOf(h, a.id, "owner");
  assert.equal((await h.call("GET", `/v1/tenants/${a.id}`, { token: user.token })).status, 200);
  assertError(await h.call("GET", `/v1/tenants/${b.id}`, { token: user.token }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", `/v1/tenants/${b.slug}`, { token: user.token }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("GET /v1/tenants/{tenant}: a token bound to A reading B is 404, by id and by slug", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const bound = await h.serviceToken(["tenants:read"], a.id);
  assert.equal((await h.call("GET", `/v1/tenants/${a.slug}`, { token: bound.token })).status, 200);
  assertError(await h.call("GET", `/v1/tenants/${b.id}`, { token: bound.token }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", `/v1/tenants/${b.slug}`, { token: bound.token }),
    404,
    "NOT_FOUND",
  );
});

// ── PATCH /v1/tenants/{tenant} ──────────────────────────────────────────────────

Deno.test("PATCH /v1/tenants/{tenant}: updates the name and writes tenant.updated with before and after", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const acme = await h.tenant("acme");
  h.advance(60_000);
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: admin.token,
    body: { name: "Acme Corporation" },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.name, "Acme Corporation");
  assert.equal(res.body.data.updated_at, "2026-03-01T12:01:00.000Z");
  assert.equal(res.body.data.created_at, "2026-03-01T12:00:00.000Z");
  const record = await stored(h, acme.id);
  assert.equal(record.value.name, "Acme Corporation");
  assert.equal(etag(res), record.versionstamp);

  const [latest] = await h.auditFor(acme.id);
  assert.equal(latest.action, "tenant.updated");
  assert.equal(latest.actor_id, admin.id);
  assert.deepEqual(latest.changes, { name: { before: "Tenant acme", after: "Acme Corporation" } });
});

Deno.test("PATCH /v1/tenants/{tenant}: accepts the slug as well as the id", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "New" } });
  assert.equal(res.status, 200);
  assert.equal((await stored(h, acme.id)).value.name, "New");
});

Deno.test("PATCH /v1/tenants/{tenant}: metadata is merged and a null value removes a key", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme", { metadata: { crm_id: "A-1", region: "eu", tier: "gold" } });
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { metadata: { region: null, tier: "platinum", owner: "sales" } },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.metadata, { crm_id: "A-1", tier: "platinum", owner: "sales" });
  const [latest] = await h.auditFor(acme.id);
  assert.deepEqual(latest.changes?.metadata, {
    before: { crm_id: "A-1", region: "eu", tier: "gold" },
    after: { crm_id: "A-1", tier: "platinum", owner: "sales" },
  });
});

Deno.test("PATCH /v1/tenants/{tenant}: changing the slug moves the slug index", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { slug: "acme-corp" },
  });
  assert.equal(res.status, 200);
  assert.equal(
    (await h.call("GET", "/v1/tenants/acme-corp", { token: h.root })).body.data.id,
    acme.id,
  );
  assertError(await h.call("GET", "/v1/tenants/acme", { token: h.root }), 404, "NOT_FOUND");
  const [latest] = await h.auditFor(acme.id);
  assert.deepEqual(latest.changes, { slug: { before: "acme", after: "acme-corp" } });
  // The old slug is free again.
  assert.equal((await h.tenant("acme")).slug, "acme");
});

Deno.test("PATCH /v1/tenants/{tenant}: changing the slug to a taken one is 409 and changes nothing", async () => {
  await using h = await setup();
  const { a } = await twoTenants(h);
  const before = await writes(h);
  const res = await h.call("PATCH", `/v1/tenants/${a.id}`, {
    token: h.root,
    body: { slug: "tenant-b", name: "Renamed" },
  });
  assertError(res, 409, "CONFLICT");
  assert.equal(await writes(h), before);
  assert.equal((await stored(h, a.id)).value.slug, "tenant-a");
});

Deno.test("PATCH /v1/tenants/{tenant}: a reserved slug is 400", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { slug: "admin" },
  });
  assertError(res, 400, "BAD_REQUEST");
  assert.equal((await stored(h, acme.id)).value.slug, "acme");
});

Deno.test("PATCH /v1/tenants/{tenant}: an invalid body is 400 with paths, and nothing is written", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const before = await writes(h);
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { name: "", slug: "Bad Slug" },
    }),
    "json.name",
    "json.slug",
  );
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { status: "active", plan: "enterprise", is_test: true },
    }),
    "json",
  );
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { metadata: { crm_id: 42 } },
    }),
    "json.metadata.crm_id",
  );
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { name: "x".repeat(201) },
    }),
    "json.name",
  );
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { name: "a\u0000b" },
    }),
    "json.name",
  );
  assert.equal(await writes(h), before);
});

Deno.test("PATCH /v1/tenants/{tenant}: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, { body: { name: "X" } });
  assertError(res, 401, "UNAUTHORIZED");
  assert.equal((await stored(h, acme.id)).value.name, "Tenant acme");
});

Deno.test("PATCH /v1/tenants/{tenant}: support, finance and ops staff and a viewer member are 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const viewer = await memberOf(h, acme.id, "viewer");
  const member = await memberOf(h, acme.id, "member");
  const callers = [viewer, member];
  for (const role of STAFF_WITHOUT_WRITES) callers.push(await h.user(role));
  const before = await writes(h);
  for (const caller of callers) {
    const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: caller.token,
      body: { name: "Hijacked" },
    });
    assertError(res, 403, "FORBIDDEN");
  }
  assert.equal(await writes(h), before);
});

Deno.test("PATCH /v1/tenants/{tenant}: a member of A, or a token bound to A, patching B is 404 by id and slug", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const owner = await memberOf(h, a.id, "owner");
  const bound = await h.serviceToken(["tenants:read", "tenants:write"], a.id);
  for (const token of [owner.token, bound.token]) {
    for (const ref of [b.id, b.slug]) {
      const res = await h.call("PATCH", `/v1/tenants/${ref}`, { token, body: { name: "Mine" } });
      assertError(res, 404, "NOT_FOUND");
    }
  }
  assert.equal((await stored(h, b.id)).value.name, "Tenant tenant-b");
  const own = await h.call("PATCH", `/v1/tenants/${a.id}`, {
    token: bound.token,
    body: { name: "Ours" },
  });
  assert.equal(own.status, 200);
});

Deno.test("PATCH /v1/tenants/{tenant}: the ETag from GET as If-Match succeeds and yields a new ETag", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${acme.id}`, { token: h.root });
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { name: "Checked" },
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assert.equal(res.status, 200, res.text);
  assert.notEqual(etag(res), etag(read));
  assert.equal(etag(res), (await stored(h, acme.id)).versionstamp);
  // The bare versionstamp (no quotes) is accepted too.
  const again = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { name: "Checked again" },
    headers: { "If-Match": etag(res) },
  });
  assert.equal(again.status, 200);
});

Deno.test("PATCH /v1/tenants/{tenant}: a stale If-Match is 412 and the record is unchanged", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${acme.id}`, { token: h.root });
  await h.call("PATCH", `/v1/tenants/${acme.id}`, { token: h.root, body: { name: "First" } });
  const current = await stored(h, acme.id);
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { name: "Second" },
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assertError(res, 412, "PRECONDITION_FAILED");
  const after = await stored(h, acme.id);
  assert.equal(after.versionstamp, current.versionstamp);
  assert.equal(after.value.name, "First");
  assert.deepEqual(await auditActions(h, acme.id), ["tenant.updated", "tenant.created"]);
});

Deno.test("PATCH /v1/tenants/{tenant}: two concurrent PATCHes with the same If-Match: one 200, one 412", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${acme.id}`, { token: h.root });
  const ifMatch = { "If-Match": read.headers.get("ETag")! };
  const results = await Promise.all(
    ["Left", "Right"].map((name) =>
      h.call("PATCH", `/v1/tenants/${acme.id}`, { token: h.root, body: { name }, headers: ifMatch })
    ),
  );
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 412]);
  const winner = results.find((r) => r.status === 200)!;
  assert.equal((await stored(h, acme.id)).value.name, winner.body.data.name);
  assert.deepEqual(await auditActions(h, acme.id), ["tenant.updated", "tenant.created"]);
});

Deno.test("PATCH /v1/tenants/{tenant}: concurrent PATCHes without If-Match both apply (no lost update)", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const results = await Promise.all([
    h.call("PATCH", `/v1/tenants/${acme.id}`, { token: h.root, body: { name: "Renamed" } }),
    h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { metadata: { region: "eu" } },
    }),
  ]);
  assert.deepEqual(results.map((r) => r.status), [200, 200]);
  const { value } = await stored(h, acme.id);
  assert.equal(value.name, "Renamed");
  assert.deepEqual(value.metadata, { region: "eu" });
  assert.deepEqual(await auditActions(h, acme.id), [
    "tenant.updated",
    "tenant.updated",
    "tenant.created",
  ]);
});

Deno.test("PATCH /v1/tenants/{tenant}: a PATCH that changes nothing writes nothing and keeps the ETag", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme", { metadata: { a: "1" } });
  const read = await h.call("GET", `/v1/tenants/${acme.id}`, { token: h.root });
  const before = await writes(h);
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { name: "Tenant acme", slug: "acme", metadata: { a: "1" } },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("ETag"), read.headers.get("ETag"));
  assert.equal(await writes(h), before);
});

Deno.test("PATCH /v1/tenants/{tenant}: a deleted tenant is 409", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("DELETE", `/v1/tenants/${acme.id}`, { token: h.root });
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
    token: h.root,
    body: { name: "Zombie" },
  });
  assertError(res, 409, "CONFLICT");
  assert.equal((await stored(h, acme.id)).value.name, "Tenant acme");
});

Deno.test("PATCH /v1/tenants/{tenant}: a tenant owner may update the tenant", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const owner = await memberOf(h, acme.id, "owner");
  const res = await h.call("PATCH", "/v1/tenants/acme", {
    token: owner.token,
    body: { name: "Owned" },
  });
  assert.equal(res.status, 200, res.text);
  const [latest] = await h.auditFor(acme.id);
  assert.equal(latest.actor_id, owner.id);
});

// ── DELETE /v1/tenants/{tenant} ─────────────────────────────────────────────────

Deno.test("DELETE /v1/tenants/{tenant}: soft-deletes (status deleted, deleted_at set) and writes tenant.deleted", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const acme = await h.tenant("acme");
  h.advance(5_000);
  const res = await h.call("DELETE", "/v1/tenants/acme", { token: admin.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "deleted");
  assert.equal(res.body.data.deleted_at, "2026-03-01T12:00:05.000Z");
  const record = await stored(h, acme.id);
  assert.equal(record.value.status, "deleted");
  assert.equal(etag(res), record.versionstamp);
  const [latest] = await h.auditFor(acme.id);
  assert.equal(latest.action, "tenant.deleted");
  assert.equal(latest.actor_id, admin.id);
  assert.deepEqual(latest.changes?.status, { before: "active", after: "deleted" });
  assert.deepEqual(latest.changes?.deleted_at, {
    before: null,
    after: "2026-03-01T12:00:05.000Z",
  });
});

Deno.test("DELETE /v1/tenants/{tenant}: releases the slug, so a new tenant can take it", async () => {
  await using h = await setup();
  const old = await h.tenant("acme");
  await h.call("DELETE", `/v1/tenants/${old.id}`, { token: h.root });
  assertError(await h.call("GET", "/v1/tenants/acme", { token: h.root }), 404, "NOT_FOUND");
  assert.equal((await h.kv.get(keys.tenantSlug("acme"))).value, null);
  const fresh = await h.tenant("acme");
  assert.notEqual(fresh.id, old.id);
  assert.equal((await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data.id, fresh.id);
});

Deno.test("DELETE /v1/tenants/{tenant}: the deleted tenant stays readable by id for an admin, with its audit trail", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const acme = await h.tenant("acme");
  await h.call("PATCH", `/v1/tenants/${acme.id}`, { token: h.root, body: { name: "Acme 2" } });
  await h.call("DELETE", `/v1/tenants/${acme.id}`, { token: h.root });
  const read = await h.call("GET", `/v1/tenants/${acme.id}`, { token: admin.token });
  assert.equal(read.status, 200);
  assert.equal(read.body.data.status, "deleted");
  assert.deepEqual(await auditActions(h, acme.id), [
    "tenant.deleted",
    "tenant.updated",
    "tenant.created",
  ]);
  const trail = await h.call("GET", `/v1/tenants/${acme.id}/audit`, { token: admin.token });
  assert.equal(trail.status, 200);
  assert.equal(trail.body.data.length, 3);
});

Deno.test("DELETE /v1/tenants/{tenant}: members of a deleted tenant no longer see it", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const owner = await memberOf(h, acme.id, "owner");
  await h.call("DELETE", `/v1/tenants/${acme.id}`, { token: h.root });
  assertError(
    await h.call("GET", `/v1/tenants/${acme.id}`, { token: owner.token }),
    404,
    "NOT_FOUND",
  );
  const list = await h.call("GET", "/v1/tenants", { token: owner.token });
  assert.deepEqual(list.body.data, []);
  const asked = await h.call("GET", "/v1/tenants?status=deleted", { token: owner.token });
  assert.equal(asked.status, 200);
  assert.deepEqual(asked.body.data, [], "not even when asking for deleted tenants");
});

Deno.test("DELETE /v1/tenants/{tenant}: its invitations and bound tokens are revoked; only platform staff still see it", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const other = await h.tenant("other");
  const invite = (slug: string, email: string) =>
    h.call("POST", `/v1/tenants/${slug}/invitations`, {
      token: h.root,
      body: { email, role: "member" },
    });
  const invited = await invite("acme", "new@example.com");
  const elsewhere = await invite("other", "new@example.com");
  const bound = await h.serviceToken(["tenants:read", "keys:read", "members:read"], acme.id);
  const otherBound = await h.serviceToken(["tenants:read"], other.id);
  await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });

  assert.equal((await h.call("DELETE", `/v1/tenants/${acme.id}`, { token: h.root })).status, 200);
  // At once: the tenant and everything under it is 404 for its own bound token.
  for (const path of ["", "/api-keys", "/members", "/invitations"]) {
    const res = await h.call("GET", `/v1/tenants/${acme.id}${path}`, { token: bound.token });
    assert.ok([401, 404].includes(res.status), `${path}: ${res.status}`);
  }
  const staff = await h.call("GET", `/v1/tenants/${acme.id}/api-keys`, { token: h.root });
  assert.equal(staff.status, 200, "platform staff still read a deleted tenant");

  await h.runJobs();
  const invitations = await h.call("GET", `/v1/tenants/${acme.id}/invitations`, { token: h.root });
  assert.deepEqual(invitations.body.data.map((i: { status: string }) => i.status), ["revoked"]);
  assertError(
    await h.call("POST", "/v1/invitations/accept", {
      body: {
        token: invited.body.data.token,
        name: "New",
        password: "quiet lantern over marble rivers",
      },
    }),
    409,
    "CONFLICT",
  );
  assert.equal((await h.call("GET", "/v1/auth/me", { token: bound.token })).status, 401);
  const audit = (await h.auditFor(bound.id)).map((e) => e.action);
  assert.ok(audit.includes("token.revoked"), audit.join());
  // Another tenant's invitation and token are untouched.
  assert.equal((await h.call("GET", "/v1/auth/me", { token: otherBound.token })).status, 200);
  const theirs = await h.call("GET", "/v1/tenants/other/invitations", { token: h.root });
  assert.equal(theirs.body.data[0].id, elsewhere.body.data.id);
  assert.equal(theirs.body.data[0].status, "pending");
});

Deno.test("DELETE /v1/tenants/{tenant}: the tenant total drops and deleting twice changes nothing", async () => {
  await using h = await setup();
  const { a } = await twoTenants(h);
  assert.equal(await liveTenantTotal(h), 2);
  await h.call("DELETE", `/v1/tenants/${a.id}`, { token: h.root });
  assert.equal(await liveTenantTotal(h), 1);
  const before = await writes(h);
  const again = await h.call("DELETE", `/v1/tenants/${a.id}`, { token: h.root });
  assert.equal(again.status, 200);
  assert.equal(again.body.data.status, "deleted");
  assert.equal(await writes(h), before);
  assert.equal(await liveTenantTotal(h), 1);
});

Deno.test("DELETE /v1/tenants/{tenant}: a malformed JSON body is 400 and deletes nothing", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("DELETE", `/v1/tenants/${acme.id}`, {
    token: h.root,
    raw: "{not json",
    headers: { "Content-Type": "application/json" },
  });
  assertError(res, 400, "BAD_REQUEST");
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("DELETE /v1/tenants/{tenant}: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  assertError(await h.call("DELETE", `/v1/tenants/${acme.id}`), 401, "UNAUTHORIZED");
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("DELETE /v1/tenants/{tenant}: support, finance, ops and the tenant's own owner are 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const callers = [await memberOf(h, acme.id, "owner"), await memberOf(h, acme.id, "admin")];
  for (const role of STAFF_WITHOUT_WRITES) callers.push(await h.user(role));
  for (const caller of callers) {
    assertError(
      await h.call("DELETE", `/v1/tenants/${acme.id}`, { token: caller.token }),
      403,
      "FORBIDDEN",
    );
  }
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("DELETE /v1/tenants/{tenant}: a token bound to A deleting B is 404 by id and by slug", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const bound = await h.serviceToken(["tenants:read", "tenants:manage"], a.id);
  const member = await memberOf(h, a.id, "owner");
  for (const token of [bound.token, member.token]) {
    for (const ref of [b.id, b.slug]) {
      assertError(await h.call("DELETE", `/v1/tenants/${ref}`, { token }), 404, "NOT_FOUND");
    }
  }
  assert.equal((await stored(h, b.id)).value.status, "active");
});

Deno.test("DELETE /v1/tenants/{tenant}: a stale If-Match is 412 and the tenant is not deleted", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${acme.id}`, { token: h.root });
  await h.call("PATCH", `/v1/tenants/${acme.id}`, { token: h.root, body: { name: "Changed" } });
  const current = await stored(h, acme.id);
  const res = await h.call("DELETE", `/v1/tenants/${acme.id}`, {
    token: h.root,
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assertError(res, 412, "PRECONDITION_FAILED");
  const after = await stored(h, acme.id);
  assert.equal(after.versionstamp, current.versionstamp);
  assert.equal(after.value.status, "active");
  const fresh = await h.call("DELETE", `/v1/tenants/${acme.id}`, {
    token: h.root,
    headers: { "If-Match": `"${current.versionstamp}"` },
  });
  assert.equal(fresh.status, 200);
});

// ── POST /v1/tenants/{tenant}/suspend ───────────────────────────────────────────

Deno.test("POST /v1/tenants/{tenant}/suspend: suspends with a reason and writes tenant.suspended", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const acme = await h.tenant("acme");
  h.advance(30_000);
  const res = await h.call("POST", "/v1/tenants/acme/suspend", {
    token: admin.token,
    body: { reason: "unpaid invoices" },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "suspended");
  assert.equal(res.body.data.suspended_reason, "unpaid invoices");
  assert.equal(res.body.data.suspended_at, "2026-03-01T12:00:30.000Z");
  assert.equal(etag(res), (await stored(h, acme.id)).versionstamp);
  const [latest] = await h.auditFor(acme.id);
  assert.equal(latest.action, "tenant.suspended");
  assert.equal(latest.actor_id, admin.id);
  assert.deepEqual(latest.changes?.status, { before: "active", after: "suspended" });
  assert.deepEqual(latest.changes?.suspended_reason, { before: null, after: "unpaid invoices" });
});

Deno.test("POST /v1/tenants/{tenant}/suspend: the body is optional", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "suspended");
  assert.equal(res.body.data.suspended_reason, null);
});

Deno.test("POST /v1/tenants/{tenant}/suspend: suspending twice writes one audit event", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root, body: { reason: "a" } });
  const again = await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
    token: h.root,
    body: { reason: "b" },
  });
  assert.equal(again.status, 200);
  assert.equal(again.body.data.suspended_reason, "a");
  assert.deepEqual(await auditActions(h, acme.id), ["tenant.suspended", "tenant.created"]);
});

Deno.test("POST /v1/tenants/{tenant}/suspend: an invalid body is 400 with paths and nothing changes", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const before = await writes(h);
  assertInvalid(
    await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
      token: h.root,
      body: { reason: "r".repeat(501) },
    }),
    "json.reason",
  );
  assertInvalid(
    await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
      token: h.root,
      body: { reason: 5 },
    }),
    "json.reason",
  );
  assertInvalid(
    await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
      token: h.root,
      body: { reason: "x", status: "deleted" },
    }),
    "json",
  );
  assert.equal(await writes(h), before);
});

Deno.test("POST /v1/tenants/{tenant}/suspend: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  assertError(await h.call("POST", `/v1/tenants/${acme.id}/suspend`), 401, "UNAUTHORIZED");
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("POST /v1/tenants/{tenant}/suspend: support, finance, ops and a tenant owner are 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const callers = [await memberOf(h, acme.id, "owner")];
  for (const role of STAFF_WITHOUT_WRITES) callers.push(await h.user(role));
  for (const caller of callers) {
    assertError(
      await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: caller.token }),
      403,
      "FORBIDDEN",
    );
  }
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("POST /v1/tenants/{tenant}/suspend: a member of A, or a token bound to A, suspending B is 404", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const owner = await memberOf(h, a.id, "owner");
  const bound = await h.serviceToken(["tenants:manage"], a.id);
  for (const token of [owner.token, bound.token]) {
    for (const ref of [b.id, b.slug]) {
      assertError(await h.call("POST", `/v1/tenants/${ref}/suspend`, { token }), 404, "NOT_FOUND");
    }
  }
  assert.equal((await stored(h, b.id)).value.status, "active");
});

Deno.test("POST /v1/tenants/{tenant}/suspend: a replayed Idempotency-Key does not suspend again", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const headers = { "Idempotency-Key": "suspend-acme-1" };
  const body = { reason: "fraud check" };
  const first = await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
    token: h.root,
    body,
    headers,
  });
  assert.equal(first.status, 200);
  await h.call("POST", `/v1/tenants/${acme.id}/resume`, { token: h.root });
  const replay = await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
    token: h.root,
    body,
    headers,
  });
  assert.equal(replay.status, 200);
  assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(replay.body, first.body);
  assert.equal((await stored(h, acme.id)).value.status, "active", "the replay did not run again");
  assert.deepEqual(await auditActions(h, acme.id), [
    "tenant.resumed",
    "tenant.suspended",
    "tenant.created",
  ]);

  const other = await h.call("POST", `/v1/tenants/${acme.id}/suspend`, {
    token: h.root,
    body: { reason: "something else" },
    headers,
  });
  assertError(other, 422, "UNPROCESSABLE");
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("POST /v1/tenants/{tenant}/suspend: a deleted tenant is 409", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("DELETE", `/v1/tenants/${acme.id}`, { token: h.root });
  assertError(
    await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root }),
    409,
    "CONFLICT",
  );
});

// ── POST /v1/tenants/{tenant}/resume ────────────────────────────────────────────

Deno.test("POST /v1/tenants/{tenant}/resume: resumes, clears the suspension and writes tenant.resumed", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const acme = await h.tenant("acme");
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root, body: { reason: "x" } });
  const res = await h.call("POST", "/v1/tenants/acme/resume", { token: admin.token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "active");
  assert.equal(res.body.data.suspended_reason, null);
  assert.equal(res.body.data.suspended_at, null);
  assert.equal(etag(res), (await stored(h, acme.id)).versionstamp);
  const [latest] = await h.auditFor(acme.id);
  assert.equal(latest.action, "tenant.resumed");
  assert.equal(latest.actor_id, admin.id);
  assert.deepEqual(latest.changes?.status, { before: "suspended", after: "active" });
});

Deno.test("POST /v1/tenants/{tenant}/resume: resuming an active tenant changes nothing", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const before = await writes(h);
  const res = await h.call("POST", `/v1/tenants/${acme.id}/resume`, { token: h.root });
  assert.equal(res.status, 200);
  assert.equal(res.body.data.status, "active");
  assert.equal(await writes(h), before);
});

Deno.test("POST /v1/tenants/{tenant}/resume: a malformed Idempotency-Key or body is 400", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root });
  assertError(
    await h.call("POST", `/v1/tenants/${acme.id}/resume`, {
      token: h.root,
      headers: { "Idempotency-Key": "has spaces in it" },
    }),
    400,
    "BAD_REQUEST",
  );
  assertError(
    await h.call("POST", `/v1/tenants/${acme.id}/resume`, {
      token: h.root,
      raw: "{oops",
      headers: { "Content-Type": "application/json" },
    }),
    400,
    "BAD_REQUEST",
  );
  assert.equal((await stored(h, acme.id)).value.status, "suspended");
});

Deno.test("POST /v1/tenants/{tenant}/resume: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root });
  assertError(await h.call("POST", `/v1/tenants/${acme.id}/resume`), 401, "UNAUTHORIZED");
  assert.equal((await stored(h, acme.id)).value.status, "suspended");
});

Deno.test("POST /v1/tenants/{tenant}/resume: support, finance, ops and a tenant owner are 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root });
  const callers = [await memberOf(h, acme.id, "owner")];
  for (const role of STAFF_WITHOUT_WRITES) callers.push(await h.user(role));
  for (const caller of callers) {
    assertError(
      await h.call("POST", `/v1/tenants/${acme.id}/resume`, { token: caller.token }),
      403,
      "FORBIDDEN",
    );
  }
  assert.equal((await stored(h, acme.id)).value.status, "suspended");
});

Deno.test("POST /v1/tenants/{tenant}/resume: a member of A, or a token bound to A, resuming B is 404", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  await h.call("POST", `/v1/tenants/${b.id}/suspend`, { token: h.root });
  const owner = await memberOf(h, a.id, "owner");
  const bound = await h.serviceToken(["tenants:manage"], a.id);
  for (const token of [owner.token, bound.token]) {
    for (const ref of [b.id, b.slug]) {
      assertError(await h.call("POST", `/v1/tenants/${ref}/resume`, { token }), 404, "NOT_FOUND");
    }
  }
  assert.equal((await stored(h, b.id)).value.status, "suspended");
});

Deno.test("POST /v1/tenants/{tenant}/resume: a replayed Idempotency-Key does not resume again; another body is 422", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root });
  const headers = { "Idempotency-Key": "resume-acme-1" };
  const first = await h.call("POST", `/v1/tenants/${acme.id}/resume`, { token: h.root, headers });
  assert.equal(first.status, 200);
  await h.call("POST", `/v1/tenants/${acme.id}/suspend`, { token: h.root });
  const replay = await h.call("POST", `/v1/tenants/${acme.id}/resume`, { token: h.root, headers });
  assert.equal(replay.status, 200);
  assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
  assert.deepEqual(replay.body, first.body);
  assert.equal((await stored(h, acme.id)).value.status, "suspended", "the replay did not run");
  assert.equal(
    (await auditActions(h, acme.id)).filter((a) => a === "tenant.resumed").length,
    1,
  );
  const other = await h.call("POST", `/v1/tenants/${acme.id}/resume`, {
    token: h.root,
    headers,
    body: { note: "different" },
  });
  assertError(other, 422, "UNPROCESSABLE");
  assert.equal((await stored(h, acme.id)).value.status, "suspended");
});

// ── GET /v1/tenants/{tenant}/feature-flags ──────────────────────────────────────

Deno.test("GET /v1/tenants/{tenant}/feature-flags: returns the flags with the tenant's ETag", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const res = await h.call("GET", "/v1/tenants/acme/feature-flags", { token: h.root });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.data, { tenant_id: acme.id, flags: {} });
  assert.equal(etag(res), (await stored(h, acme.id)).versionstamp);
});

Deno.test("GET /v1/tenants/{tenant}/feature-flags: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  assertError(await h.call("GET", `/v1/tenants/${acme.id}/feature-flags`), 401, "UNAUTHORIZED");
});

Deno.test("GET /v1/tenants/{tenant}/feature-flags: a bound token without tenants:read is 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const token = await h.serviceToken(["audit:read"], acme.id);
  assertError(
    await h.call("GET", `/v1/tenants/${acme.id}/feature-flags`, { token: token.token }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("GET /v1/tenants/{tenant}/feature-flags: a member of A, or a token bound to A, reading B is 404", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const viewer = await memberOf(h, a.id, "viewer");
  const bound = await h.serviceToken(["tenants:read"], a.id);
  for (const token of [viewer.token, bound.token]) {
    assert.equal(
      (await h.call("GET", `/v1/tenants/${a.id}/feature-flags`, { token })).status,
      200,
    );
    for (const ref of [b.id, b.slug]) {
      assertError(
        await h.call("GET", `/v1/tenants/${ref}/feature-flags`, { token }),
        404,
        "NOT_FOUND",
      );
    }
  }
});

// ── PATCH /v1/tenants/{tenant}/feature-flags ────────────────────────────────────

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: sets and removes flags, changes the ETag and writes the audit event", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const acme = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${acme.id}/feature-flags`, { token: h.root });
  const set = await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: admin.token,
    body: { new_dashboard: true, beta_api: false, "ui.dark-mode": true },
  });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual(set.body.data, {
    tenant_id: acme.id,
    flags: { new_dashboard: true, beta_api: false, "ui.dark-mode": true },
  });
  assert.notEqual(etag(set), etag(read));
  assert.equal(etag(set), (await stored(h, acme.id)).versionstamp);

  const removed = await h.call("PATCH", "/v1/tenants/acme/feature-flags", {
    token: admin.token,
    body: { beta_api: null, new_dashboard: false },
  });
  assert.equal(removed.status, 200);
  assert.deepEqual(removed.body.data.flags, { new_dashboard: false, "ui.dark-mode": true });
  assert.notEqual(etag(removed), etag(set));
  assert.deepEqual((await stored(h, acme.id)).value.feature_flags, {
    new_dashboard: false,
    "ui.dark-mode": true,
  });

  const [latest, previous] = await h.auditFor(acme.id);
  assert.equal(latest.action, "tenant.feature_flags_updated");
  assert.equal(latest.actor_id, admin.id);
  assert.deepEqual(latest.changes, {
    feature_flags: {
      before: { new_dashboard: true, beta_api: false, "ui.dark-mode": true },
      after: { new_dashboard: false, "ui.dark-mode": true },
    },
  });
  assert.equal(previous.action, "tenant.feature_flags_updated");
  assert.deepEqual(previous.changes?.feature_flags, {
    before: {},
    after: { new_dashboard: true, beta_api: false, "ui.dark-mode": true },
  });
});

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: setting flags to what they are writes nothing", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: h.root,
    body: { on: true },
  });
  const before = await writes(h);
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: h.root,
    body: { on: true, absent: null },
  });
  assert.equal(res.status, 200);
  assert.equal(await writes(h), before);
});

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: bad flag names and non-boolean values are 400 with paths", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const before = await writes(h);
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: h.root,
    body: { "Bad Flag": true, good_flag: "yes" },
  });
  assertInvalid(res, "json.Bad Flag", "json.good_flag");
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
      token: h.root,
      body: ["not", "an", "object"],
    }),
    "json",
  );
  const tooMany = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`flag_${i}`, true]));
  assertInvalid(
    await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
      token: h.root,
      body: tooMany,
    }),
    "json",
  );
  assert.equal(await writes(h), before);
});

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: without credentials is 401", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  assertError(
    await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, { body: { on: true } }),
    401,
    "UNAUTHORIZED",
  );
  assert.deepEqual((await stored(h, acme.id)).value.feature_flags, {});
});

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: support, finance, ops and a viewer member are 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const callers = [await memberOf(h, acme.id, "viewer")];
  for (const role of STAFF_WITHOUT_WRITES) callers.push(await h.user(role));
  for (const caller of callers) {
    assertError(
      await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
        token: caller.token,
        body: { on: true },
      }),
      403,
      "FORBIDDEN",
    );
  }
  assert.deepEqual((await stored(h, acme.id)).value.feature_flags, {});
});

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: a member of A, or a token bound to A, patching B is 404", async () => {
  await using h = await setup();
  const { a, b } = await twoTenants(h);
  const owner = await memberOf(h, a.id, "owner");
  const bound = await h.serviceToken(["tenants:write"], a.id);
  for (const token of [owner.token, bound.token]) {
    for (const ref of [b.id, b.slug]) {
      assertError(
        await h.call("PATCH", `/v1/tenants/${ref}/feature-flags`, { token, body: { on: true } }),
        404,
        "NOT_FOUND",
      );
    }
  }
  assert.deepEqual((await stored(h, b.id)).value.feature_flags, {});
});

Deno.test("PATCH /v1/tenants/{tenant}/feature-flags: a stale If-Match is 412 and the flags are unchanged", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${acme.id}/feature-flags`, { token: h.root });
  await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: h.root,
    body: { first: true },
  });
  const current = await stored(h, acme.id);
  const res = await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: h.root,
    body: { second: true },
    headers: { "If-Match": read.headers.get("ETag")! },
  });
  assertError(res, 412, "PRECONDITION_FAILED");
  const after = await stored(h, acme.id);
  assert.equal(after.versionstamp, current.versionstamp);
  assert.deepEqual(after.value.feature_flags, { first: true });

  const ok = await h.call("PATCH", `/v1/tenants/${acme.id}/feature-flags`, {
    token: h.root,
    body: { second: true },
    headers: { "If-Match": `"${current.versionstamp}"` },
  });
  assert.equal(ok.status, 200);
});

// ── Roles across the routes ─────────────────────────────────────────────────────

Deno.test("qa: lists only test tenants and cannot see a live tenant (404)", async () => {
  await using h = await setup();
  const live = await h.tenant("live");
  await h.tenant("sandbox", {}, "/v1/tenants/test");
  const qa = await h.user("qa");
  const list = await h.call("GET", "/v1/tenants", { token: qa.token });
  assert.equal(list.status, 200);
  assert.deepEqual(slugsOf(list), ["sandbox"]);
  const all = await h.call("GET", "/v1/tenants?is_test=false", { token: qa.token });
  assert.deepEqual(all.body.data, []);
  assertError(await h.call("GET", `/v1/tenants/${live.id}`, { token: qa.token }), 404, "NOT_FOUND");
  assertError(await h.call("GET", "/v1/tenants/live", { token: qa.token }), 404, "NOT_FOUND");
  assertError(
    await h.call("PATCH", "/v1/tenants/live", { token: qa.token, body: { name: "X" } }),
    404,
    "NOT_FOUND",
  );
  assertError(await h.call("DELETE", "/v1/tenants/live", { token: qa.token }), 404, "NOT_FOUND");
});

Deno.test("qa: creates test tenants and manages them, but POST /v1/tenants is 403", async () => {
  await using h = await setup();
  const qa = await h.user("qa");
  const created = await h.call("POST", "/v1/tenants/test", {
    token: qa.token,
    body: { name: "QA sandbox", slug: "qa-box" },
  });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.data.is_test, true);
  assert.equal(created.body.data.created_by, qa.id);

  const patched = await h.call("PATCH", "/v1/tenants/qa-box", {
    token: qa.token,
    body: { name: "QA sandbox 2" },
  });
  assert.equal(patched.status, 200, patched.text);
  const read = await h.call("GET", "/v1/tenants/qa-box", { token: qa.token });
  assert.equal(read.body.data.name, "QA sandbox 2");
  const flags = await h.call("PATCH", "/v1/tenants/qa-box/feature-flags", {
    token: qa.token,
    body: { experiment: true },
  });
  assert.equal(flags.status, 200);

  assertError(
    await h.call("POST", "/v1/tenants", { token: qa.token, body: { name: "Live", slug: "live" } }),
    403,
    "FORBIDDEN",
  );
  assert.deepEqual(await auditActions(h, created.body.data.id), [
    "tenant.feature_flags_updated",
    "tenant.updated",
    "tenant.created",
  ]);
});

Deno.test("support: reads every tenant route but every write is 403", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const support = await h.user("support");
  const token = support.token;
  assert.equal((await h.call("GET", "/v1/tenants", { token })).status, 200);
  assert.equal((await h.call("GET", "/v1/tenants/acme", { token })).status, 200);
  assert.equal((await h.call("GET", "/v1/tenants/acme/feature-flags", { token })).status, 200);
  const before = await writes(h);
  const attempts: [string, string, unknown][] = [
    ["POST", "/v1/tenants", { name: "X", slug: "xyz" }],
    ["POST", "/v1/tenants/test", { name: "X" }],
    ["PATCH", `/v1/tenants/${acme.id}`, { name: "X" }],
    ["DELETE", `/v1/tenants/${acme.id}`, undefined],
    ["POST", `/v1/tenants/${acme.id}/suspend`, undefined],
    ["POST", `/v1/tenants/${acme.id}/resume`, undefined],
    ["PATCH", `/v1/tenants/${acme.id}/feature-flags`, { on: true }],
  ];
  for (const [method, path, body] of attempts) {
    assertError(await h.call(method, path, { token, body }), 403, "FORBIDDEN");
  }
  assert.equal(await writes(h), before);
});

Deno.test("tenant owner: may PATCH the tenant and its flags but not suspend, resume or delete it", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const owner = await memberOf(h, acme.id, "owner");
  const token = owner.token;
  assert.equal((await h.call("GET", "/v1/tenants/acme", { token })).status, 200);
  assert.equal(
    (await h.call("PATCH", "/v1/tenants/acme", { token, body: { name: "Mine" } })).status,
    200,
  );
  assert.equal(
    (await h.call("PATCH", "/v1/tenants/acme/feature-flags", { token, body: { x: true } })).status,
    200,
  );
  assertError(await h.call("POST", "/v1/tenants/acme/suspend", { token }), 403, "FORBIDDEN");
  assertError(await h.call("POST", "/v1/tenants/acme/resume", { token }), 403, "FORBIDDEN");
  assertError(await h.call("DELETE", "/v1/tenants/acme", { token }), 403, "FORBIDDEN");
  assert.equal((await stored(h, acme.id)).value.status, "active");
});

Deno.test("POST /v1/tenants: initial_key makes the tenant's first API key in the same commit, shown once", async () => {
  await using h = await setup();
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: {
      name: "Acme",
      slug: "acme",
      initial_key: { name: "default", environment: "live", scopes: ["read"] },
    },
  });
  assert.equal(res.status, 201, res.text);
  const initial = res.body.data.initial_key;
  assert.match(initial.key, /^sk_live_/);
  assert.equal(initial.tenant_id, res.body.data.id);
  assert.deepEqual(initial.scopes, ["read"]);
  const verifier = await h.serviceToken(["keys:verify"]);
  const verdict = await h.call("POST", "/v1/keys/verify", {
    token: verifier.token,
    body: { key: initial.key },
  });
  assert.equal(verdict.body.data.code, "VALID");
  const keys = await h.call("GET", "/v1/tenants/acme/api-keys", { token: h.root });
  assert.equal(keys.body.data.length, 1);
  assert.ok(!keys.text.includes(initial.key), "shown once");
  assert.ok(!(await h.dump()).includes(initial.key));

  // A refused tenant leaves no key behind; a bad initial_key is a 400 naming its field.
  const clash = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme 2", slug: "acme", initial_key: { name: "k", environment: "live" } },
  });
  assert.equal(clash.status, 409);
  const bad = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "B", slug: "bee", initial_key: { name: "k", environment: "prod" } },
  });
  assertError(bad, 400, "BAD_REQUEST");
  assert.ok(
    bad.body.error.details.some((d: { path: string[] }) =>
      d.path.join(".") === "json.initial_key.environment"
    ),
  );
  const all = await h.call("GET", "/v1/tenants?limit=100", { token: h.root });
  assert.deepEqual(all.body.data.map((t: { slug: string }) => t.slug), ["acme"]);
});
