/**
 * The audit trail: GET /v1/admin/audit, GET /v1/admin/audit/export and
 * GET /v1/tenants/{tenant}/audit — what every mutation records, filters, ordering, pagination,
 * tenant isolation, NDJSON and CSV exports, support masking and secrets kept out.
 */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../domain/audit/audit.ts";
import type { TenantRole } from "../../domain/access/permissions.ts";
import { sha256Hex } from "../../domain/shared/secrets.ts";
import { type CallOptions, type Harness, type Reply, setup, TEST_PASSWORD } from "../_harness.ts";

const IP = "203.0.113.7";
const MASKED_IP = "203.0.x.x";
const UA = "steward-audit-tests/1.0";
const FIELDS = [
  "action",
  "actor_id",
  "actor_type",
  "changes",
  "created_at",
  "id",
  "ip_address",
  "request_id",
  "resource_id",
  "resource_type",
  "tenant_id",
  "user_agent",
];
const CSV_HEADER =
  "id,created_at,actor_type,actor_id,action,resource_type,resource_id,tenant_id,ip_address,user_agent,request_id,changes";

// ── helpers ─────────────────────────────────────────────────────────────────────

/** Like h.call, but from a peer address and with a User-Agent, as a real client would be. */
function send(h: Harness, method: string, path: string, o: CallOptions = {}): Promise<Reply> {
  return h.call(method, path, {
    ...o,
    ip: o.ip ?? IP,
    headers: { "User-Agent": UA, ...o.headers },
  });
}

function assertError(res: Reply, status: number, code: string) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body?.success, false);
  assert.equal(res.body?.error?.code, code);
}

function assertInvalid(res: Reply, ...paths: string[]) {
  assertError(res, 400, "BAD_REQUEST");
  const got = (res.body.error.details as { path: unknown[] }[]).map((d) => d.path.join("."));
  for (const path of paths) {
    assert.ok(got.includes(path), `expected an issue at ${path}, got [${got.join(", ")}]`);
  }
}

/** GET /v1/admin/audit?{query} as `token` (root by default); asserts 200. */
async function audit(h: Harness, query = "", token = h.root) {
  const res = await h.call("GET", `/v1/admin/audit${query ? `?${query}` : ""}`, { token });
  assert.equal(res.status, 200, res.text);
  return res;
}

const events = (res: Reply) => res.body.data as AuditEvent[];
const actions = (res: Reply) => events(res).map((e) => e.action);
const iso = (h: Harness) => new Date(h.clock.now).toISOString();

/** Every audit event, newest first (walks the pages). */
async function allEvents(h: Harness): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  let cursor: string | null = null;
  do {
    const page: Reply = await audit(
      h,
      `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    out.push(...events(page));
    cursor = page.body.pagination.next_cursor;
  } while (cursor);
  return out;
}

async function createTenant(h: Harness, slug: string, token = h.root, extra = {}) {
  const res = await send(h, "POST", "/v1/tenants", {
    token,
    body: { name: `Tenant ${slug}`, slug, ...extra },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; slug: string };
}

async function memberOf(h: Harness, tenantId: string, role: TenantRole) {
  const user = await h.user(null);
  await h.member(tenantId, user.id, role);
  return user;
}

/** RFC 4180: quoted cells may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch !== '"') cell += ch;
      else if (text[i + 1] === '"') {
        cell += '"';
        i++;
      } else quoted = false;
    } else if (ch === '"' && cell === "") quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += ch;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** The CSV export as objects keyed by the header row. */
function csvRecords(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  assert.equal(header.join(","), CSV_HEADER);
  return rows.map((cells) => {
    assert.equal(cells.length, header.length, `row has ${cells.length} cells: ${cells.join("|")}`);
    return Object.fromEntries(header.map((name, i) => [name, cells[i]]));
  });
}

const ndjson = (text: string) =>
  text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as AuditEvent);

/**
 * A small trail spread over four minutes (plus the harness's own events at t0):
 *   t0  admin creates A        t1  root creates B
 *   t2  admin renames A        t3  root suspends B
 */
async function seedTrail(h: Harness) {
  const admin = await h.user("admin");
  const t0 = iso(h);
  const a = await createTenant(h, "tenant-a", admin.token);
  h.advance(60_000);
  const t1 = iso(h);
  const b = await createTenant(h, "tenant-b");
  h.advance(60_000);
  const t2 = iso(h);
  await send(h, "PATCH", `/v1/tenants/${a.id}`, { token: admin.token, body: { name: "A2" } });
  h.advance(60_000);
  const t3 = iso(h);
  await send(h, "POST", `/v1/tenants/${b.id}/suspend`, { token: h.root });
  const me = await h.call("GET", "/v1/auth/me", { token: h.root });
  return { admin, a, b, t0, t1, t2, t3, rootId: me.body.data.id as string };
}

// ── What every mutation records ─────────────────────────────────────────────────

Deno.test("audit: every tenant mutation records who, what, where and when", async () => {
  await using h = await setup({ seedPlans: false });
  const admin = await h.user("admin");
  const tenant = await createTenant(h, "acme", admin.token);
  const steps: [string, string, unknown, string][] = [
    ["PATCH", "/v1/tenants/acme", { name: "Acme 2" }, "tenant.updated"],
    ["PATCH", "/v1/tenants/acme/feature-flags", { beta: true }, "tenant.feature_flags_updated"],
    ["POST", "/v1/tenants/acme/suspend", { reason: "audit" }, "tenant.suspended"],
    ["POST", "/v1/tenants/acme/resume", undefined, "tenant.resumed"],
    ["DELETE", `/v1/tenants/${tenant.id}`, undefined, "tenant.deleted"],
  ];
  const expected: { action: string; request_id: string | null; at: string }[] = [{
    action: "tenant.created",
    request_id: null,
    at: "2026-03-01T12:00:00.000Z",
  }];
  for (const [method, path, body, action] of steps) {
    h.advance(1_000);
    const res = await send(h, method, path, { token: admin.token, body });
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`);
    expected.push({ action, request_id: res.headers.get("X-Request-Id"), at: iso(h) });
  }

  const trail = events(await audit(h, `resource_id=${tenant.id}`)).reverse();
  assert.deepEqual(trail.map((e) => e.action), expected.map((e) => e.action));
  trail.forEach((event, i) => {
    assert.deepEqual(Object.keys(event).sort(), FIELDS);
    assert.match(event.id, /^aud_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(event.actor_type, "user");
    assert.equal(event.actor_id, admin.id);
    assert.equal(event.resource_type, "tenant");
    assert.equal(event.resource_id, tenant.id);
    assert.equal(event.tenant_id, tenant.id);
    assert.equal(event.ip_address, IP);
    assert.equal(event.user_agent, UA);
    assert.equal(event.created_at, expected[i].at);
    assert.ok(event.changes && Object.keys(event.changes).length > 0, event.action);
    if (i > 0) assert.equal(event.request_id, expected[i].request_id, event.action);
  });
});

Deno.test("audit: request_id is the X-Request-Id answered to the mutating request", async () => {
  await using h = await setup({ seedPlans: false });
  const res = await send(h, "POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme", slug: "acme" },
  });
  const [event] = events(await audit(h, `resource_id=${res.body.data.id}`));
  assert.equal(event.request_id, res.headers.get("X-Request-Id"));
  assert.equal(event.request_id, res.body.meta.request_id);

  // A caller-supplied request id is carried through to the audit event.
  const traced = await send(h, "PATCH", "/v1/tenants/acme", {
    token: h.root,
    body: { name: "Traced" },
    headers: { "X-Request-Id": "trace-1234.abc" },
  });
  assert.equal(traced.headers.get("X-Request-Id"), "trace-1234.abc");
  const [latest] = events(await audit(h, `resource_id=${res.body.data.id}`));
  assert.equal(latest.request_id, "trace-1234.abc");
});

Deno.test("audit: updates record only the changed fields, before and after", async () => {
  await using h = await setup({ seedPlans: false });
  const tenant = await createTenant(h, "acme", h.root, { metadata: { tier: "gold" } });
  h.advance(1_000);
  await send(h, "PATCH", "/v1/tenants/acme", {
    token: h.root,
    body: { name: "Renamed", metadata: { tier: "silver" } },
  });
  const [update, create] = events(await audit(h, `resource_id=${tenant.id}`));
  assert.deepEqual(update.changes, {
    name: { before: "Tenant acme", after: "Renamed" },
    metadata: { before: { tier: "gold" }, after: { tier: "silver" } },
  });
  assert.equal(create.action, "tenant.created");
  assert.deepEqual(create.changes?.slug, { before: null, after: "acme" });
  assert.equal(create.changes?.updated_at, undefined, "timestamps are not changes");
});

Deno.test("audit: a service token's mutations name the token as the actor", async () => {
  await using h = await setup({ seedPlans: false });
  const token = await h.serviceToken(["tenants:create"]);
  const res = await send(h, "POST", "/v1/tenants", {
    token: token.token,
    body: { name: "Acme", slug: "acme" },
  });
  assert.equal(res.status, 201);
  const [event] = events(await audit(h, `resource_id=${res.body.data.id}`));
  assert.equal(event.actor_type, "service_token");
  assert.equal(event.actor_id, token.id);
});

Deno.test("audit: creating a service token and logging in are recorded too", async () => {
  await using h = await setup({ seedPlans: false });
  const created = await send(h, "POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "deployer", permissions: ["tenants:read"] },
  });
  assert.equal(created.status, 201, created.text);
  const [tokenEvent] = events(await audit(h, `resource_id=${created.body.data.id}`));
  assert.equal(tokenEvent.action, "token.created");
  assert.equal(tokenEvent.resource_type, "service_token");
  assert.equal(tokenEvent.request_id, created.headers.get("X-Request-Id"));
  assert.equal(tokenEvent.ip_address, IP);

  const user = await h.user(null);
  const login = await send(h, "POST", "/v1/auth/login", {
    body: { email: user.email, password: TEST_PASSWORD },
    ip: "198.51.100.23",
  });
  assert.equal(login.status, 200, login.text);
  const [loginEvent] = events(await audit(h, `actor=${user.id}&action=session.created`));
  assert.equal(loginEvent.actor_type, "user");
  assert.equal(loginEvent.resource_id, login.body.data.session_id);
  assert.equal(loginEvent.ip_address, "198.51.100.23");
  assert.equal(loginEvent.request_id, login.headers.get("X-Request-Id"));
});

Deno.test("audit: a rejected mutation records nothing", async () => {
  await using h = await setup({ seedPlans: false });
  const before = (await audit(h)).body.pagination.total;
  await send(h, "POST", "/v1/tenants", { token: h.root, body: { name: "a\u0000b", slug: "x1x" } });
  await send(h, "POST", "/v1/tenants", { body: { name: "Acme", slug: "acme" } });
  const support = await h.user("support");
  const after = (await audit(h)).body.pagination.total;
  await send(h, "POST", "/v1/tenants", {
    token: support.token,
    body: { name: "Acme", slug: "acme" },
  });
  // Only the support user's own creation and login were recorded.
  assert.equal(after, before + 2);
  assert.equal((await audit(h)).body.pagination.total, after);
});

// ── Listing: order, filters, pagination ─────────────────────────────────────────

Deno.test("GET /v1/admin/audit: newest first, even for events in the same millisecond", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const all = await allEvents(h);
  for (let i = 1; i < all.length; i++) {
    assert.ok(all[i - 1].id > all[i].id, "ids strictly decrease");
    assert.ok(all[i - 1].created_at >= all[i].created_at, "times never increase");
  }
  // t0 holds four events written in one millisecond, in this order.
  assert.deepEqual(all.slice(-4).map((e) => e.action), [
    "tenant.created",
    "session.created",
    "user.created",
    "token.created",
  ]);
  assert.deepEqual(all.slice(0, 3).map((e) => e.action), [
    "tenant.suspended",
    "tenant.updated",
    "tenant.created",
  ]);
});

Deno.test("GET /v1/admin/audit: filters by actor", async () => {
  await using h = await setup({ seedPlans: false });
  const { admin, rootId, a, b } = await seedTrail(h);
  const byAdmin = await audit(h, `actor=${admin.id}`);
  assert.deepEqual(actions(byAdmin), ["tenant.updated", "tenant.created", "session.created"]);
  assert.ok(events(byAdmin).every((e) => e.actor_id === admin.id));
  const byRoot = await audit(h, `actor=${rootId}`);
  assert.deepEqual(events(byRoot).map((e) => [e.action, e.resource_id]), [
    ["tenant.suspended", b.id],
    ["tenant.created", b.id],
  ]);
  const bySystem = await audit(h, "actor=system");
  assert.deepEqual(actions(bySystem), ["user.created", "token.created"]);
  assert.ok(!events(byAdmin).some((e) => e.resource_id === b.id));
  assert.ok(events(byAdmin).some((e) => e.resource_id === a.id));
});

Deno.test("GET /v1/admin/audit: filters by a comma-separated list of actions", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b } = await seedTrail(h);
  const res = await audit(h, "action=tenant.created,tenant.suspended");
  assert.deepEqual(events(res).map((e) => [e.action, e.resource_id]), [
    ["tenant.suspended", b.id],
    ["tenant.created", b.id],
    ["tenant.created", a.id],
  ]);
  const spaced = await audit(h, `action=${encodeURIComponent(" tenant.updated , ")}`);
  assert.deepEqual(actions(spaced), ["tenant.updated"]);
  assert.deepEqual(events(await audit(h, "action=tenant.exploded")), []);
});

Deno.test("GET /v1/admin/audit: filters by resource_type and resource_id", async () => {
  await using h = await setup({ seedPlans: false });
  const { a } = await seedTrail(h);
  const tenants = await audit(h, "resource_type=tenant");
  assert.equal(events(tenants).length, 4);
  assert.ok(events(tenants).every((e) => e.resource_type === "tenant"));
  assert.deepEqual(actions(await audit(h, "resource_type=session")), ["session.created"]);
  const one = await audit(h, `resource_id=${a.id}`);
  assert.deepEqual(actions(one), ["tenant.updated", "tenant.created"]);
  assert.ok(events(one).every((e) => e.resource_id === a.id));
});

Deno.test("GET /v1/admin/audit: filters by tenant_id", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b } = await seedTrail(h);
  const forB = await audit(h, `tenant_id=${b.id}`);
  assert.deepEqual(actions(forB), ["tenant.suspended", "tenant.created"]);
  assert.ok(events(forB).every((e) => e.tenant_id === b.id));
  const forA = await audit(h, `tenant_id=${a.id}&action=tenant.updated`);
  assert.deepEqual(actions(forA), ["tenant.updated"]);
});

Deno.test("GET /v1/admin/audit: from and to are inclusive time bounds", async () => {
  await using h = await setup({ seedPlans: false });
  const { t0, t1, t2, t3 } = await seedTrail(h);
  const q = (s: string) => encodeURIComponent(s);
  const middle = await audit(h, `from=${q(t1)}&to=${q(t2)}`);
  assert.deepEqual(actions(middle), ["tenant.updated", "tenant.created"]);
  assert.ok(events(middle).every((e) => e.created_at >= t1 && e.created_at <= t2));
  const fromT3 = await audit(h, `from=${q(t3)}`);
  assert.deepEqual(actions(fromT3), ["tenant.suspended"]);
  const untilT0 = await audit(h, `to=${q(t0)}`);
  assert.equal(events(untilT0).length, 4);
  assert.ok(events(untilT0).every((e) => e.created_at === t0));
  const between = await audit(
    h,
    `from=${q("2026-03-01T12:00:30Z")}&to=${q("2026-03-01T12:01:30Z")}`,
  );
  assert.deepEqual(actions(between), ["tenant.created"]);
  const combined = await audit(h, `from=${q(t1)}&resource_type=tenant&action=tenant.created`);
  assert.deepEqual(actions(combined), ["tenant.created"]);
});

Deno.test("GET /v1/admin/audit: from after to is 400", async () => {
  await using h = await setup({ seedPlans: false });
  const res = await h.call(
    "GET",
    "/v1/admin/audit?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
    { token: h.root },
  );
  assertInvalid(res, "query.from");
});

Deno.test("GET /v1/admin/audit: unknown filters, bad timestamps and limit over 100 are 400", async () => {
  await using h = await setup({ seedPlans: false });
  assertInvalid(await h.call("GET", "/v1/admin/audit?user=bob", { token: h.root }), "query");
  assertInvalid(
    await h.call("GET", "/v1/admin/audit?from=yesterday", { token: h.root }),
    "query.from",
  );
  assertInvalid(await h.call("GET", "/v1/admin/audit?limit=101", { token: h.root }), "query.limit");
  assertInvalid(await h.call("GET", "/v1/admin/audit?offset=x", { token: h.root }), "query.offset");
});

Deno.test("GET /v1/admin/audit: cursor pagination walks every event exactly once", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const everything = events(await audit(h, "limit=100"));
  assert.equal(everything.length, 7);
  const walked: string[] = [];
  const pages: number[] = [];
  let cursor: string | null = null;
  do {
    const page: Reply = await audit(
      h,
      `limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    walked.push(...events(page).map((e) => e.id));
    pages.push(events(page).length);
    cursor = page.body.pagination.next_cursor;
    assert.equal(page.body.pagination.has_more, cursor !== null);
  } while (cursor);
  assert.deepEqual(walked, everything.map((e) => e.id));
  assert.deepEqual(pages, [3, 3, 1]);
});

Deno.test("GET /v1/admin/audit: filtered lists paginate too", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const first = await audit(h, "resource_type=tenant&limit=3");
  assert.equal(events(first).length, 3);
  assert.equal(first.body.pagination.has_more, true);
  const rest = await audit(
    h,
    `resource_type=tenant&limit=3&cursor=${encodeURIComponent(first.body.pagination.next_cursor)}`,
  );
  assert.equal(events(rest).length, 1);
  assert.equal(rest.body.pagination.has_more, false);
  const ids = [...events(first), ...events(rest)].map((e) => e.id);
  assert.equal(new Set(ids).size, 4);
});

Deno.test("GET /v1/admin/audit: offset skips events", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const everything = events(await audit(h));
  const page = await audit(h, "limit=2&offset=3");
  assert.deepEqual(events(page).map((e) => e.id), everything.slice(3, 5).map((e) => e.id));
  const past = await audit(h, "offset=100");
  assert.deepEqual(events(past), []);
});

Deno.test("GET /v1/admin/audit: a total on every list, counted for filtered ones", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const unfiltered = await audit(h, "limit=2");
  assert.equal(unfiltered.body.pagination.total, 7);
  assert.equal(unfiltered.body.pagination.limit, 2);
  const next = await audit(
    h,
    `limit=2&cursor=${encodeURIComponent(unfiltered.body.pagination.next_cursor)}`,
  );
  assert.equal(next.body.pagination.total, 7, "a cursor is not a filter");
  for (const filter of ["action=tenant.created", "resource_type=tenant", "actor=system"]) {
    const res = await audit(h, `${filter}&limit=100`);
    assert.equal(res.body.pagination.total, res.body.data.length, filter);
  }
});

Deno.test("GET /v1/admin/audit: without credentials is 401", async () => {
  await using h = await setup({ seedPlans: false });
  assertError(await h.call("GET", "/v1/admin/audit"), 401, "UNAUTHORIZED");
  assertError(await h.call("GET", "/v1/admin/audit/export"), 401, "UNAUTHORIZED");
  const acme = await h.tenant("acme");
  assertError(await h.call("GET", `/v1/tenants/${acme.id}/audit`), 401, "UNAUTHORIZED");
});

Deno.test("GET /v1/admin/audit: finance (no audit:read) and plain users are 403; ops may read", async () => {
  await using h = await setup({ seedPlans: false });
  const finance = await h.user("finance");
  assertError(await h.call("GET", "/v1/admin/audit", { token: finance.token }), 403, "FORBIDDEN");
  assertError(
    await h.call("GET", "/v1/admin/audit/export", { token: finance.token }),
    403,
    "FORBIDDEN",
  );
  const plain = await h.user(null);
  assertError(await h.call("GET", "/v1/admin/audit", { token: plain.token }), 403, "FORBIDDEN");
  const qa = await h.user("qa");
  assertError(await h.call("GET", "/v1/admin/audit", { token: qa.token }), 403, "FORBIDDEN");
  const ops = await h.user("ops");
  assert.equal((await h.call("GET", "/v1/admin/audit", { token: ops.token })).status, 200);
});

Deno.test("GET /v1/admin/audit: a token bound to a tenant sees only that tenant's events", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b } = await seedTrail(h);
  const bound = await h.serviceToken(["audit:read"], a.id);
  const res = await audit(h, "", bound.token);
  assert.ok(events(res).length > 0);
  assert.ok(events(res).every((e) => e.tenant_id === a.id), JSON.stringify(actions(res)));
  assert.equal(res.body.pagination.total, events(res).length, "its own total, not the platform's");
  assertError(
    await h.call("GET", `/v1/admin/audit?tenant_id=${b.id}`, { token: bound.token }),
    404,
    "NOT_FOUND",
  );
  const exported = await h.call("GET", "/v1/admin/audit/export", { token: bound.token });
  assert.equal(exported.status, 200);
  assert.ok(ndjson(exported.text).every((e) => e.tenant_id === a.id));
});

// ── GET /v1/tenants/{tenant}/audit ──────────────────────────────────────────────

Deno.test("GET /v1/tenants/{tenant}/audit: shows only that tenant's events, newest first", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b } = await seedTrail(h);
  h.advance(1_000);
  const bound = await send(h, "POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "a's token", permissions: ["tenants:read"], tenant_id: a.id },
  });
  const res = await h.call("GET", "/v1/tenants/tenant-a/audit", { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(actions(res), ["token.created", "tenant.updated", "tenant.created"]);
  assert.equal(events(res)[0].resource_id, bound.body.data.id);
  assert.ok(events(res).every((e) => e.tenant_id === a.id));
  assert.ok(!events(res).some((e) => e.resource_id === b.id));
  const byId = await h.call("GET", `/v1/tenants/${a.id}/audit`, { token: h.root });
  assert.deepEqual(byId.body.data, res.body.data);
});

Deno.test("GET /v1/tenants/{tenant}/audit: filters and pagination apply within the tenant", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, t1, admin } = await seedTrail(h);
  const token = h.root;
  const updates = await h.call("GET", `/v1/tenants/${a.id}/audit?action=tenant.updated`, { token });
  assert.deepEqual(actions(updates), ["tenant.updated"]);
  const later = await h.call(
    "GET",
    `/v1/tenants/${a.id}/audit?from=${encodeURIComponent(t1)}`,
    { token },
  );
  assert.deepEqual(actions(later), ["tenant.updated"]);
  const byActor = await h.call("GET", `/v1/tenants/${a.id}/audit?actor=${admin.id}`, { token });
  assert.deepEqual(actions(byActor), ["tenant.updated", "tenant.created"]);
  const first = await h.call("GET", `/v1/tenants/${a.id}/audit?limit=1`, { token });
  assert.equal(events(first).length, 1);
  assert.equal(first.body.pagination.has_more, true);
  const second = await h.call(
    "GET",
    `/v1/tenants/${a.id}/audit?limit=1&cursor=${
      encodeURIComponent(first.body.pagination.next_cursor)
    }`,
    { token },
  );
  assert.deepEqual(actions(second), ["tenant.created"]);
  const offset = await h.call("GET", `/v1/tenants/${a.id}/audit?offset=1`, { token });
  assert.deepEqual(actions(offset), ["tenant.created"]);
});

Deno.test("GET /v1/tenants/{tenant}/audit: a tenant_id filter or unknown parameter is 400", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b } = await seedTrail(h);
  assertInvalid(
    await h.call("GET", `/v1/tenants/${a.id}/audit?tenant_id=${b.id}`, { token: h.root }),
    "query",
  );
  assertInvalid(
    await h.call(
      "GET",
      `/v1/tenants/${a.id}/audit?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`,
      {
        token: h.root,
      },
    ),
    "query.from",
  );
});

Deno.test("GET /v1/tenants/{tenant}/audit: a viewer member is 403, an owner member is 200", async () => {
  await using h = await setup({ seedPlans: false });
  const { a } = await seedTrail(h);
  const viewer = await memberOf(h, a.id, "viewer");
  const member = await memberOf(h, a.id, "member");
  const owner = await memberOf(h, a.id, "owner");
  for (const user of [viewer, member]) {
    assertError(
      await h.call("GET", `/v1/tenants/${a.id}/audit`, { token: user.token }),
      403,
      "FORBIDDEN",
    );
  }
  const res = await h.call("GET", "/v1/tenants/tenant-a/audit", { token: owner.token });
  assert.equal(res.status, 200);
  // Adding the three members is audited in the tenant's trail too.
  assert.deepEqual(actions(res), [
    "membership.created",
    "membership.created",
    "membership.created",
    "tenant.updated",
    "tenant.created",
  ]);
});

Deno.test("GET /v1/tenants/{tenant}/audit: another tenant's trail is 404 for members and bound tokens", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b } = await seedTrail(h);
  const owner = await memberOf(h, a.id, "owner");
  const bound = await h.serviceToken(["audit:read"], a.id);
  for (const token of [owner.token, bound.token]) {
    assert.equal((await h.call("GET", `/v1/tenants/${a.id}/audit`, { token })).status, 200);
    for (const ref of [b.id, b.slug]) {
      assertError(await h.call("GET", `/v1/tenants/${ref}/audit`, { token }), 404, "NOT_FOUND");
    }
  }
});

Deno.test("GET /v1/tenants/{tenant}/audit: a deleted tenant's trail stays readable by platform staff", async () => {
  await using h = await setup({ seedPlans: false });
  const { a } = await seedTrail(h);
  await send(h, "DELETE", `/v1/tenants/${a.id}`, { token: h.root });
  const ops = await h.user("ops");
  const res = await h.call("GET", `/v1/tenants/${a.id}/audit`, { token: ops.token });
  assert.equal(res.status, 200);
  assert.deepEqual(actions(res), ["tenant.deleted", "tenant.updated", "tenant.created"]);
});

// ── Export ──────────────────────────────────────────────────────────────────────

Deno.test("GET /v1/admin/audit/export: NDJSON by default, one event per line, oldest first", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const res = await h.call("GET", "/v1/admin/audit/export", { token: h.root });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), "application/x-ndjson");
  assert.equal(res.headers.get("Content-Disposition"), 'attachment; filename="audit.ndjson"');
  assert.ok(res.headers.get("X-Request-Id"));
  assert.ok(res.text.endsWith("\n"));
  const exported = ndjson(res.text);
  const listed = await allEvents(h);
  assert.equal(exported.length, listed.length);
  assert.deepEqual(exported, [...listed].reverse());
  for (const event of exported) assert.deepEqual(Object.keys(event).sort(), FIELDS);
});

Deno.test("GET /v1/admin/audit/export: format=csv has a header row and one quoted row per event", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const res = await h.call("GET", "/v1/admin/audit/export?format=csv", { token: h.root });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), "text/csv; charset=utf-8");
  assert.equal(res.headers.get("Content-Disposition"), 'attachment; filename="audit.csv"');
  assert.ok(res.text.startsWith(CSV_HEADER + "\r\n"));
  assert.ok(res.text.endsWith("\r\n"));
  const rows = csvRecords(res.text);
  const listed = [...await allEvents(h)].reverse();
  assert.equal(rows.length, listed.length);
  rows.forEach((row, i) => {
    const event = listed[i];
    assert.equal(row.id, event.id);
    assert.equal(row.action, event.action);
    assert.equal(row.actor_id, event.actor_id);
    assert.equal(row.tenant_id, event.tenant_id ?? "");
    assert.equal(row.ip_address, event.ip_address ?? "");
    assert.equal(row.request_id, event.request_id ?? "");
    assert.deepEqual(row.changes === "" ? null : JSON.parse(row.changes), event.changes);
  });
});

Deno.test("GET /v1/admin/audit/export: CSV cells with commas and quotes are quoted and round-trip", async () => {
  await using h = await setup({ seedPlans: false });
  const agent = 'Mozilla/5.0 (X11, "quoted")';
  const res = await send(h, "POST", "/v1/tenants", {
    token: h.root,
    body: { name: 'Acme, "the best"', slug: "acme", metadata: { note: 'a,b;"c"' } },
    headers: { "User-Agent": agent },
  });
  assert.equal(res.status, 201, res.text);
  const csv = await h.call(
    "GET",
    `/v1/admin/audit/export?format=csv&resource_id=${res.body.data.id}`,
    { token: h.root },
  );
  assert.ok(csv.text.includes('"Mozilla/5.0 (X11, ""quoted"")"'), csv.text);
  const [row, ...more] = csvRecords(csv.text);
  assert.equal(more.length, 0);
  assert.equal(row.user_agent, agent);
  const changes = JSON.parse(row.changes);
  assert.equal(changes.name.after, 'Acme, "the best"');
  assert.equal(changes.metadata.after.note, 'a,b;"c"');
});

Deno.test("GET /v1/admin/audit/export: Accept: text/csv picks CSV; format wins over Accept", async () => {
  await using h = await setup({ seedPlans: false });
  await seedTrail(h);
  const csv = await h.call("GET", "/v1/admin/audit/export", {
    token: h.root,
    headers: { Accept: "text/csv" },
  });
  assert.equal(csv.status, 200);
  assert.equal(csv.headers.get("Content-Type"), "text/csv; charset=utf-8");
  assert.ok(csv.text.startsWith(CSV_HEADER));
  const forced = await h.call("GET", "/v1/admin/audit/export?format=ndjson", {
    token: h.root,
    headers: { Accept: "text/csv" },
  });
  assert.equal(forced.headers.get("Content-Type"), "application/x-ndjson");
  assert.equal(ndjson(forced.text).length, 7);
});

Deno.test("GET /v1/admin/audit/export: filters apply", async () => {
  await using h = await setup({ seedPlans: false });
  const { a, b, t1, admin } = await seedTrail(h);
  const get = (q: string) => h.call("GET", `/v1/admin/audit/export?${q}`, { token: h.root });
  const created = ndjson((await get("action=tenant.created")).text);
  assert.deepEqual(created.map((e) => e.resource_id), [a.id, b.id]);
  const forB = ndjson((await get(`tenant_id=${b.id}`)).text);
  assert.deepEqual(forB.map((e) => e.action), ["tenant.created", "tenant.suspended"]);
  const byAdmin = ndjson((await get(`actor=${admin.id}&resource_type=tenant`)).text);
  assert.deepEqual(byAdmin.map((e) => e.action), ["tenant.created", "tenant.updated"]);
  const since = ndjson((await get(`from=${encodeURIComponent(t1)}`)).text);
  assert.deepEqual(since.map((e) => e.action), [
    "tenant.created",
    "tenant.updated",
    "tenant.suspended",
  ]);
  const csv = csvRecords((await get(`format=csv&resource_id=${a.id}`)).text);
  assert.deepEqual(csv.map((r) => r.action), ["tenant.created", "tenant.updated"]);
});

Deno.test("GET /v1/admin/audit/export: unknown parameters, a bad format and from after to are 400", async () => {
  await using h = await setup({ seedPlans: false });
  const get = (q: string) => h.call("GET", `/v1/admin/audit/export?${q}`, { token: h.root });
  assertInvalid(await get("limit=10"), "query");
  assertInvalid(await get("format=xlsx"), "query.format");
  assertInvalid(await get("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"), "query.from");
});

Deno.test("GET /v1/admin/audit/export: cells a spreadsheet would run as formulas are defused", async () => {
  await using h = await setup({ seedPlans: false });
  const agents = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)"];
  for (const [i, agent] of agents.entries()) {
    const res = await send(h, "POST", "/v1/tenants", {
      token: h.root,
      body: { name: `T${i}`, slug: `formula-${i}` },
      headers: { "User-Agent": agent },
    });
    assert.equal(res.status, 201);
  }
  const csv = await h.call(
    "GET",
    "/v1/admin/audit/export?format=csv&action=tenant.created",
    { token: h.root },
  );
  const cells = csvRecords(csv.text).map((r) => r.user_agent);
  assert.deepEqual(cells, agents.map((a) => `'${a}`));
  for (const line of csv.text.split("\r\n")) {
    for (const cell of parseCsv(line)[0] ?? []) {
      assert.ok(!/^[=+\-@]/.test(cell), `a cell starts a formula: ${cell}`);
    }
  }
  // NDJSON is data, not a spreadsheet: the value is exact there.
  const json = await h.call("GET", "/v1/admin/audit/export?action=tenant.created", {
    token: h.root,
  });
  assert.deepEqual(ndjson(json.text).map((e) => e.user_agent), agents);
});

Deno.test("GET /v1/admin/audit/export: a long trail (300 events) is exported in full", async () => {
  await using h = await setup({ seedPlans: false });
  const tenant = await createTenant(h, "busy");
  for (let i = 1; i < 300; i++) {
    const res = await h.call("PATCH", `/v1/tenants/${tenant.id}`, {
      token: h.root,
      body: { metadata: { n: String(i) } },
    });
    assert.equal(res.status, 200);
    if (i % 50 === 0) h.advance(1_000);
  }
  const byResource = ndjson(
    (await h.call("GET", `/v1/admin/audit/export?resource_id=${tenant.id}`, { token: h.root }))
      .text,
  );
  assert.equal(byResource.length, 300);
  assert.equal(new Set(byResource.map((e) => e.id)).size, 300);
  assert.equal(byResource[0].action, "tenant.created");
  byResource.slice(1).forEach((e, i) => {
    assert.equal(e.action, "tenant.updated");
    assert.deepEqual((e.changes?.metadata as { after: unknown }).after, { n: String(i + 1) });
  });
  const total = (await audit(h)).body.pagination.total;
  const everything = ndjson(
    (await h.call("GET", "/v1/admin/audit/export", { token: h.root })).text,
  );
  assert.equal(everything.length, total);
  const csv = csvRecords(
    (await h.call("GET", `/v1/admin/audit/export?format=csv&tenant_id=${tenant.id}`, {
      token: h.root,
    })).text,
  );
  assert.equal(csv.length, 300);
});

// ── Masking for support staff ───────────────────────────────────────────────────

/** A trail holding an IP, a user's email (user.created) and an email inside metadata. */
async function trailWithPii(h: Harness) {
  const customer = await h.user(null, "jane.doe@example.com");
  const res = await send(h, "POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme", slug: "acme", metadata: { contact: "billing: ops.lead@acme.io" } },
  });
  assert.equal(res.status, 201);
  return { customer, tenant: res.body.data as { id: string } };
}

Deno.test("audit masking: support sees IPs and emails masked in the list", async () => {
  await using h = await setup({ seedPlans: false });
  const { customer, tenant } = await trailWithPii(h);
  const support = await h.user("support");
  const [created] = events(await audit(h, `resource_id=${tenant.id}`, support.token));
  assert.equal(created.ip_address, MASKED_IP);
  assert.equal(
    (created.changes?.metadata as { after: Record<string, string> }).after.contact,
    "billing: o***@a***.io",
  );
  const [userCreated] = events(await audit(h, `resource_id=${customer.id}`, support.token));
  assert.equal((userCreated.changes?.email as { after: string }).after, "j***@e***.com");
  const [login] = events(await audit(h, `actor=${customer.id}`, support.token));
  assert.equal(login.ip_address, MASKED_IP);

  const whole = await h.call("GET", "/v1/admin/audit?limit=100", { token: support.token });
  for (const secret of [IP, "jane.doe@example.com", "ops.lead@acme.io"]) {
    assert.ok(!whole.text.includes(secret), `support's list shows ${secret}`);
  }
});

Deno.test("audit masking: support sees IPs and emails masked in the tenant trail", async () => {
  await using h = await setup({ seedPlans: false });
  const { tenant } = await trailWithPii(h);
  const support = await h.user("support");
  const res = await h.call("GET", `/v1/tenants/${tenant.id}/audit`, { token: support.token });
  assert.equal(res.status, 200);
  assert.equal(events(res)[0].ip_address, MASKED_IP);
  assert.ok(!res.text.includes(IP));
  assert.ok(!res.text.includes("ops.lead@acme.io"));
});

Deno.test("audit masking: support's NDJSON and CSV exports are masked too", async () => {
  await using h = await setup({ seedPlans: false });
  await trailWithPii(h);
  const support = await h.user("support");
  for (const format of ["ndjson", "csv"]) {
    const res = await h.call("GET", `/v1/admin/audit/export?format=${format}`, {
      token: support.token,
    });
    assert.equal(res.status, 200);
    for (const secret of [IP, "jane.doe@example.com", "ops.lead@acme.io"]) {
      assert.ok(!res.text.includes(secret), `${format} export shows ${secret}`);
    }
    assert.ok(res.text.includes(MASKED_IP), format);
    assert.ok(res.text.includes("j***@e***.com"), format);
  }
});

Deno.test("audit masking: admins see IPs and emails unmasked", async () => {
  await using h = await setup({ seedPlans: false });
  const { customer, tenant } = await trailWithPii(h);
  const admin = await h.user("admin");
  const [created] = events(await audit(h, `resource_id=${tenant.id}`, admin.token));
  assert.equal(created.ip_address, IP);
  assert.equal(
    (created.changes?.metadata as { after: Record<string, string> }).after.contact,
    "billing: ops.lead@acme.io",
  );
  const [userCreated] = events(await audit(h, `resource_id=${customer.id}`, admin.token));
  assert.equal((userCreated.changes?.email as { after: string }).after, "jane.doe@example.com");
  const exported = await h.call("GET", "/v1/admin/audit/export?format=csv", { token: admin.token });
  assert.ok(exported.text.includes(IP));
  assert.ok(exported.text.includes("jane.doe@example.com"));
});

// ── Secrets ─────────────────────────────────────────────────────────────────────

/** Every audit event and domain event in the store, as text. */
async function auditAndEvents(h: Harness): Promise<string> {
  const out: string[] = [];
  for (const prefix of [["audit"], ["events"]]) {
    for await (const e of h.kv.list({ prefix })) out.push(JSON.stringify(e.value));
  }
  return out.join("\n");
}

Deno.test("audit: a service token's secret (or its hash) never appears in audit or domain events", async () => {
  await using h = await setup({ seedPlans: false });
  const acme = await h.tenant("acme");
  const created = await send(h, "POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "ci", permissions: ["tenants:read", "audit:read"], tenant_id: acme.id },
    headers: { "Idempotency-Key": "token-for-ci" },
  });
  assert.equal(created.status, 201, created.text);
  const secret = created.body.data.token as string;
  assert.ok(secret.startsWith("stw_"));
  const hash = await sha256Hex(secret);
  // Use it once and revoke it, so every token event is in the trail.
  assert.equal((await h.call("GET", "/v1/tenants/acme", { token: secret })).status, 200);
  await send(h, "DELETE", `/v1/admin/tokens/${created.body.data.id}`, { token: h.root });

  const stored = await auditAndEvents(h);
  assert.ok(stored.includes(created.body.data.id), "the token's events are there");
  assert.ok(!stored.includes(secret), "the secret is in an audit or domain event");
  assert.ok(!stored.includes(hash), "the secret's hash is in an audit or domain event");
  const exported = await h.call("GET", "/v1/admin/audit/export", { token: h.root });
  assert.ok(!exported.text.includes(secret));
  assert.ok(!(await h.dump()).includes(secret), "the secret is stored in the clear somewhere");
});

Deno.test("audit: a session token never appears in audit or domain events", async () => {
  await using h = await setup({ seedPlans: false });
  const user = await h.user(null);
  const login = await send(h, "POST", "/v1/auth/login", {
    body: { email: user.email, password: TEST_PASSWORD },
  });
  assert.equal(login.status, 200, login.text);
  const token = login.body.data.token as string;
  const stored = await auditAndEvents(h);
  assert.ok(stored.includes(login.body.data.session_id));
  assert.ok(!stored.includes(token));
  assert.ok(!stored.includes(await sha256Hex(token)));
  assert.ok(!stored.includes(TEST_PASSWORD));
});
