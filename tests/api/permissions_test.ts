/**
 * The access table walked for every principal: each entry of routes/permissions.ts is called
 * with no credentials, as every platform role, as every tenant role, as a stranger to the
 * tenant and as service tokens, and the answer must match what domain/access/permissions.ts grants.
 * A route missing from the table, a stale entry, or a guard that does not match its entry
 * fails here.
 */
import assert from "node:assert/strict";
import { type IdPrefix, newId } from "../../domain/shared/ids.ts";
import {
  type Permission,
  PERMISSIONS,
  PLATFORM_ROLE_GRANTS,
  PLATFORM_ROLES,
  type PlatformRole,
  TENANT_PERMISSIONS,
  TENANT_ROLE_PERMISSIONS,
  TENANT_ROLES,
  type TenantRole,
} from "../../domain/access/permissions.ts";
import { type Access, ROUTE_ACCESS } from "../../routes/permissions.ts";
import { type Harness, type Reply, setup, TEST_PASSWORD } from "../_harness.ts";
import { apiRouteKeys } from "../../routes/app.ts";

interface Entry {
  key: string;
  method: string;
  path: string;
  access: Access;
  tenantScoped: boolean;
}

const ENTRIES: Entry[] = Object.entries(ROUTE_ACCESS).map(([key, access]) => {
  const [method, path] = key.split(" ");
  return { key, method, path, access, tenantScoped: path.includes("{tenant}") };
});

/** Everything one case needs, made fresh so no case can spoil another (logout, delete, …). */
interface Fixture {
  tenantId: string;
  tokenId: string;
  email: string;
  slug: string;
}

let counter = 0;
const unique = () => `walk-${++counter}-${crypto.randomUUID().slice(0, 8)}`;

/** Minimal, mostly valid bodies; any other POST or PATCH gets `{}` (a 400 is fine when allowed). */
function bodyFor(e: Entry, fx: Fixture): unknown {
  switch (e.key) {
    case "POST /v1/auth/login":
      return { email: fx.email, password: TEST_PASSWORD };
    case "POST /v1/admin/tokens":
      return { name: "walk", permissions: ["tenants:read"] };
    case "POST /v1/tenants":
      return { name: "Walk", slug: fx.slug };
    case "POST /v1/tenants/test":
      return { name: "Walk test" };
    case "PATCH /v1/tenants/{tenant}":
      return { name: "Renamed" };
    case "POST /v1/tenants/{tenant}/suspend":
      return { reason: "walk" };
    case "PATCH /v1/tenants/{tenant}/feature-flags":
      return { beta: true };
  }
  return ["POST", "PATCH", "PUT"].includes(e.method) ? {} : undefined;
}

// deno-lint-ignore no-explicit-any
type OpenApiDoc = { paths: Record<string, Record<string, any>> };

/**
 * A path parameter the test has no fixture for: a well-formed id of the prefix its documented
 * pattern names (`^tok_…`), which exists nowhere (allowed callers then get 404, not 401/403).
 */
function documentedId(e: Entry, name: string, doc: OpenApiDoc): string {
  const op = doc.paths[e.path]?.[e.method.toLowerCase()];
  // deno-lint-ignore no-explicit-any
  const param = op?.parameters?.find((p: any) => p.in === "path" && p.name === name);
  const prefix = /^\^([a-z]+)_/.exec(param?.schema?.pattern ?? "")?.[1];
  if (!prefix) {
    throw new Error(`permissions_test: no value for {${name}} in ${e.key}; add one to fill()`);
  }
  return newId(prefix as IdPrefix);
}

function fill(e: Entry, fx: Fixture, doc: OpenApiDoc): string {
  return e.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (name === "tenant") return fx.tenantId;
    if (name === "asset") return "init.js";
    if (name === "name") return "walk-queue";
    if (name === "ip") return "198.51.100.23";
    if (name === "id" && e.path.startsWith("/v1/admin/tokens/")) return fx.tokenId;
    if (name === "id" && e.path.startsWith("/v1/plans/")) return "free";
    return documentedId(e, name, doc);
  });
}

async function fixture(h: Harness, isTest: boolean): Promise<Fixture> {
  const tenant = await h.tenant(unique(), {}, isTest ? "/v1/tenants/test" : "/v1/tenants");
  assert.equal(tenant.is_test, isTest);
  const victim = await h.serviceToken(["tenants:read"]);
  // Someone to log in as: a wrong password would be a legitimate 401 on the public login route.
  const login = await h.user(null);
  return { tenantId: tenant.id, tokenId: victim.id, email: login.email, slug: unique() };
}

function assertEnvelope(res: Reply, code: string, context: string) {
  assert.equal(res.body?.success, false, `${context}: not an error envelope: ${res.text}`);
  assert.equal(res.body.error.code, code, `${context}: ${res.text}`);
  assert.equal(typeof res.body.error.message, "string", context);
  assert.equal(res.body.error.request_id, res.headers.get("X-Request-Id"), context);
}

type Expected = "allow" | 403 | 404;

/** What the caller's grants say about one route. */
function expected(
  e: Entry,
  platform: ReadonlySet<Permission>,
  inTenant: ReadonlySet<Permission> | null,
): Expected {
  if (e.access === "public") return "allow";
  if (e.tenantScoped) {
    if (!inTenant) return 404;
    return e.access === "authenticated" || inTenant.has(e.access) ? "allow" : 403;
  }
  return e.access === "authenticated" || platform.has(e.access) ? "allow" : 403;
}

function check(e: Entry, res: Reply, want: Expected, who: string) {
  const context = `${who} ${e.key} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.ok(res.status < 500, `${context}: server error`);
  if (want === "allow") {
    assert.ok(res.status !== 401 && res.status !== 403, `${context}: should be allowed`);
  } else if (want === 403) {
    assert.equal(res.status, 403, `${context}: should be forbidden`);
    assertEnvelope(res, "FORBIDDEN", context);
  } else {
    assert.equal(res.status, 404, `${context}: should not see the tenant`);
    assertEnvelope(res, "NOT_FOUND", context);
  }
}

/**
 * Walks every entry for one kind of caller. `caller` makes a fresh principal for the case's
 * fixture and says what it holds on platform routes and inside the fixture's tenant.
 */
async function walk(
  who: string,
  opts: { testTenant: boolean },
  caller: (h: Harness, fx: Fixture) => Promise<{
    token: string;
    platform: ReadonlySet<Permission>;
    inTenant: ReadonlySet<Permission> | null;
  }>,
) {
  await using h = await setup();
  const doc = (await h.call("GET", "/openapi.json")).body as OpenApiDoc;
  let allowed = 0, denied = 0;
  for (const e of ENTRIES) {
    const fx = await fixture(h, opts.testTenant);
    const c = await caller(h, fx);
    const res = await h.call(e.method, fill(e, fx, doc), { token: c.token, body: bodyFor(e, fx) });
    const want = expected(e, c.platform, c.inTenant);
    check(e, res, want, who);
    if (want === "allow") allowed++;
    else denied++;
  }
  assert.equal(allowed + denied, ENTRIES.length);
  return { allowed, denied };
}

const NONE: ReadonlySet<Permission> = new Set();

Deno.test("permissions: every route without credentials: public answers, the rest is 401", async () => {
  await using h = await setup();
  const doc = (await h.call("GET", "/openapi.json")).body as OpenApiDoc;
  for (const e of ENTRIES) {
    const fx = await fixture(h, false);
    const path = fill(e, fx, doc);
    const res = await h.call(e.method, path, { body: bodyFor(e, fx) });
    const context = `${e.key} → ${res.status} ${res.text.slice(0, 300)}`;
    assert.ok(res.status < 500, context);
    if (e.access === "public") {
      assert.notEqual(res.status, 401, context);
      continue;
    }
    assert.equal(res.status, 401, context);
    assertEnvelope(res, "UNAUTHORIZED", context);
    assert.match(res.headers.get("WWW-Authenticate") ?? "", /^Bearer/, context);
    // Credentials that are not a valid bearer token are refused the same way.
    for (
      const authorization of [
        "Bearer stw_notarealtoken",
        "Bearer sts_notarealsession",
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        `Bearer ${h.root} extra`,
      ]
    ) {
      const bad = await h.call(e.method, path, {
        headers: { Authorization: authorization },
        body: bodyFor(e, fx),
      });
      assert.equal(bad.status, 401, `${e.key} with ${authorization}: ${bad.text}`);
      assertEnvelope(bad, "UNAUTHORIZED", `${e.key} with ${authorization}`);
    }
  }
});

for (const role of PLATFORM_ROLES) {
  const grant = PLATFORM_ROLE_GRANTS[role];
  // qa acts in test tenants; everyone else is walked on a production tenant.
  const testTenant = grant.sees === "test";
  Deno.test(`permissions: platform role ${role}`, async () => {
    const { allowed } = await walk(role, { testTenant }, async (h) => {
      const u = await h.user(role as PlatformRole);
      const visible = grant.sees === "all" || testTenant;
      return {
        token: u.token,
        platform: grant.platform,
        inTenant: visible ? grant.inTenants : null,
      };
    });
    assert.ok(allowed > 0, `${role} is allowed nothing`);
  });
}

Deno.test("permissions: qa cannot see production tenants (404 on every {tenant} route)", async () => {
  const grant = PLATFORM_ROLE_GRANTS.qa;
  await walk("qa on production", { testTenant: false }, async (h) => {
    const u = await h.user("qa");
    return { token: u.token, platform: grant.platform, inTenant: null };
  });
});

for (const role of TENANT_ROLES) {
  Deno.test(`permissions: tenant role ${role} (member, no platform role)`, async () => {
    await walk(`tenant ${role}`, { testTenant: false }, async (h, fx) => {
      const u = await h.user(null);
      await h.member(fx.tenantId, u.id, role as TenantRole);
      return {
        token: u.token,
        platform: NONE,
        inTenant: TENANT_ROLE_PERMISSIONS[role as TenantRole],
      };
    });
  });
}

Deno.test("permissions: an owner of another tenant gets 404 on this one", async () => {
  await walk("stranger", { testTenant: false }, async (h) => {
    const u = await h.user(null);
    const other = await h.tenant(unique());
    await h.member(other.id, u.id, "owner");
    return { token: u.token, platform: NONE, inTenant: null };
  });
});

Deno.test("permissions: a user with no role and no membership", async () => {
  await walk("nobody", { testTenant: false }, async (h) => {
    const u = await h.user(null);
    return { token: u.token, platform: NONE, inTenant: null };
  });
});

Deno.test("permissions: an unbound service token holds exactly its permissions", async () => {
  const held: Permission[] = ["tenants:read", "tenants:write", "audit:read", "tokens:read"];
  const set = new Set(held);
  await walk("service token", { testTenant: false }, async (h) => {
    const t = await h.serviceToken(held);
    return { token: t.token, platform: set, inTenant: set };
  });
});

/**
 * Custom roles (tests/access/roles_test.ts has the rest): a role's holder gets through the
 * guard exactly where the role holds the route's permission. One role per walk's store.
 */
const ROLE_HELD = PERMISSIONS.filter((_, i) => i % 2 === 0);
function customRole(tenantScoped: boolean, held: readonly Permission[]) {
  const made = new WeakMap<Harness, Promise<string>>();
  return (h: Harness) => {
    if (!made.has(h)) {
      made.set(
        h,
        h.call("POST", "/v1/admin/roles", {
          token: h.root,
          body: { name: "walk", permissions: held, tenant_scoped: tenantScoped },
        }).then((res) => {
          assert.equal(res.status, 201, res.text);
          return res.body.data.id as string;
        }),
      );
    }
    return made.get(h)!;
  };
}

async function userWithRole(h: Harness, roleId: string) {
  const u = await h.user(null);
  const res = await h.call("PATCH", `/v1/users/${u.id}`, {
    token: h.root,
    body: { roles: [roleId] },
  });
  assert.equal(res.status, 200, res.text);
  return u;
}

Deno.test("permissions: a custom platform-wide role grants exactly its permissions", async () => {
  const role = customRole(false, ROLE_HELD);
  const set = new Set(ROLE_HELD);
  const inTenant = new Set(ROLE_HELD.filter((p) => TENANT_PERMISSIONS.has(p)));
  await walk("custom role", { testTenant: false }, async (h) => {
    const u = await userWithRole(h, await role(h));
    return { token: u.token, platform: set, inTenant };
  });
});

Deno.test("permissions: a tenant-scoped custom role adds its permissions in the member's tenant", async () => {
  const held: Permission[] = ["members:write", "webhooks:read", "secrets:read"];
  const role = customRole(true, held);
  const inTenant = new Set([...TENANT_ROLE_PERMISSIONS.viewer, ...held]);
  await walk("tenant-scoped custom role", { testTenant: false }, async (h, fx) => {
    const u = await userWithRole(h, await role(h));
    await h.member(fx.tenantId, u.id, "viewer");
    return { token: u.token, platform: NONE, inTenant };
  });
});

Deno.test("permissions: a service token made from a custom role holds exactly its permissions", async () => {
  const role = customRole(false, ROLE_HELD);
  const set = new Set(ROLE_HELD);
  await walk("token from a role", { testTenant: false }, async (h) => {
    const res = await h.call("POST", "/v1/admin/tokens", {
      token: h.root,
      body: { name: "walk", role: await role(h) },
    });
    assert.equal(res.status, 201, res.text);
    return { token: res.body.data.token as string, platform: set, inTenant: set };
  });
});

Deno.test("permissions: a tenant-bound service token acts only in its tenant", async () => {
  const held = [...TENANT_PERMISSIONS].filter((p) => p !== "tenants:manage");
  const set = new Set(held);
  await using h = await setup();
  const doc = (await h.call("GET", "/openapi.json")).body as OpenApiDoc;
  for (const e of ENTRIES.filter((e) => e.tenantScoped)) {
    const own = await fixture(h, false);
    const other = await fixture(h, false);
    const t = await h.serviceToken(held, own.tenantId);
    const mine = await h.call(e.method, fill(e, own, doc), {
      token: t.token,
      body: bodyFor(e, own),
    });
    check(e, mine, expected(e, set, set), "bound token, own tenant");
    const theirs = await h.call(e.method, fill(e, other, doc), {
      token: t.token,
      body: bodyFor(e, other),
    });
    check(e, theirs, 404, "bound token, other tenant");
  }
});

Deno.test("permissions: ROUTE_ACCESS and the registered routes match exactly", async () => {
  await using h = await setup();
  const registered = apiRouteKeys(h.app);
  const table = new Set(Object.keys(ROUTE_ACCESS));
  const missing = [...registered].filter((k) => !table.has(k));
  const stale = [...table].filter((k) => !registered.has(k));
  assert.deepEqual(missing, [], "routes without an entry in routes/permissions.ts");
  assert.deepEqual(stale, [], "entries in routes/permissions.ts with no route");
  for (const [key, access] of Object.entries(ROUTE_ACCESS)) {
    assert.match(key, /^(GET|POST|PUT|PATCH|DELETE) \/\S*$/, `malformed key ${key}`);
    assert.ok(
      access === "public" || access === "authenticated" ||
        Object.values(PLATFORM_ROLE_GRANTS).some((g) => g.platform.has(access)),
      `${key}: ${access} is granted to no platform role`,
    );
  }
});

Deno.test("permissions: a tenant-bound token reads only its own tenant on the platform audit routes", async () => {
  await using h = await setup();
  const own = await h.tenant("bound-own");
  const other = await h.tenant("bound-other");
  const t = await h.serviceToken(["audit:read", "tenants:read"], own.id);
  const page = await h.call("GET", "/v1/admin/audit?limit=100", { token: t.token });
  assert.equal(page.status, 200, page.text);
  assert.ok(page.body.data.length > 0);
  for (const e of page.body.data) assert.equal(e.tenant_id, own.id, JSON.stringify(e));
  const exported = await h.call("GET", "/v1/admin/audit/export?format=ndjson", { token: t.token });
  assert.equal(exported.status, 200, exported.text);
  const lines = exported.text.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.length > 0);
  for (const e of lines) assert.equal(e.tenant_id, own.id, JSON.stringify(e));
  assert.ok(!exported.text.includes(other.id), "the export leaks another tenant");
  const asked = await h.call("GET", `/v1/admin/audit?tenant_id=${other.id}`, { token: t.token });
  assert.equal(asked.status, 404, asked.text);
  assertEnvelope(asked, "NOT_FOUND", "bound token asking for another tenant's trail");
  // An unbound token with the same permission still reads the whole trail.
  const platform = await h.serviceToken(["audit:read"]);
  const all = await h.call("GET", "/v1/admin/audit?limit=100", { token: platform.token });
  assert.ok(all.body.data.some((e: { tenant_id: string }) => e.tenant_id === other.id));
});

/** Routes anyone may call: growing this list is a security decision, made here on purpose. */
const PUBLIC_ROUTES = [
  "GET /openapi.json",
  "GET /docs",
  "GET /docs/assets/{asset}",
  "GET /health",
  "GET /health/live",
  "GET /health/ready",
  "POST /v1/auth/login",
  "POST /v1/auth/password-reset",
  "GET /v1/projects/{id}/jwks.json",
  "POST /v1/invitations/accept",
  // Stripe signs each delivery; the receiver checks the signature instead of credentials.
  "POST /v1/stripe/webhook",
];

Deno.test("permissions: only the known routes are public", () => {
  const publicRoutes = ENTRIES.filter((e) => e.access === "public").map((e) => e.key).sort();
  assert.deepEqual(
    publicRoutes,
    [...PUBLIC_ROUTES].sort(),
    "a route became public (or stopped being): if intended, update PUBLIC_ROUTES here",
  );
});
