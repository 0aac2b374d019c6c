/**
 * The Hono gateway middleware (clients/hono) against a real Steward process: every verify code's
 * answer, a valid key's context, both key headers, the negative memory, and fail-closed /
 * fail-open once Steward is stopped. The gateway is a Hono app in this process (app.request).
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  NegativeCache,
  steward,
  type StewardEnv,
  type StewardFailOpenEnv,
  type StewardOptions,
} from "../../clients/hono/mod.ts";
import { randomAlnum, ServerProcess, tempDir, within } from "../_server.ts";

const QUOTA = 1_000;

/** A gateway in this process: `/hello` answers what the middleware put on the context. */
function gatewayOf(opts: StewardOptions) {
  const app = new Hono<StewardEnv>();
  app.use("*", steward({ ...opts, failOpen: false }));
  app.get("/hello", (c) => c.json({ steward: c.get("steward") }));
  return app;
}

async function get(app: Hono<StewardEnv> | Hono<StewardFailOpenEnv>, headers = {}) {
  const res = await app.request("/hello", { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) };
}

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** A fetch that counts the calls it makes. */
function countingFetch() {
  const counter = {
    calls: 0,
    fetch: ((input, init) => {
      counter.calls++;
      return fetch(input, init);
    }) as typeof fetch,
  };
  return counter;
}

Deno.test("hono middleware: every verify code, the context, the negative memory, fail-closed and fail-open against a real Steward", async (t) => {
  await using dir = await tempDir();
  const admin = `stw_${randomAlnum(40)}`;
  await using server = await ServerProcess.start({
    env: {
      STEWARD_KV_PATH: dir.kvPath,
      STEWARD_BOOTSTRAP_TOKEN: admin,
      STEWARD_MASTER_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    },
  });
  const call = async (method: string, path: string, body?: unknown, status = 201) => {
    const res = await server.call(method, path, { token: admin, body });
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
    return res.body.data;
  };
  const apiKey = (tenant: string, body: Record<string, unknown> = {}) =>
    call("POST", `/v1/tenants/${tenant}/api-keys`, { name: "k", environment: "live", ...body });

  await call("POST", "/v1/plans", {
    code: "metered",
    name: "Metered",
    price: { amount: 0, currency: "usd", interval: "month" },
    rate_limit: { requests_per_second: 1_000, burst: 1_000 },
    quota: { units: QUOTA, period: "month" },
    sla: 99.9,
  });
  const acme = await call("POST", "/v1/tenants", { name: "Acme", slug: "acme" });
  await call("PATCH", "/v1/tenants/acme/billing", {
    plan_code: "metered",
    override: true,
    reason: "test",
  }, 200);
  await call("POST", "/v1/tenants", { name: "Globex", slug: "globex" });
  const { token } = await call("POST", "/v1/admin/tokens", {
    name: "gateway",
    permissions: ["keys:verify"],
  });
  const opts = { url: server.url, token };

  const good = await apiKey("acme", { scopes: ["orders:read"], meta: { customer: "cus_1" } });
  const revoked = await apiKey("acme");
  await call("DELETE", `/v1/tenants/acme/api-keys/${revoked.id}`, undefined, 200);
  const limited = await apiKey("acme", { rate_limit: { requests_per_second: 1, burst: 1 } });
  const suspended = await apiKey("globex");
  await call("POST", "/v1/tenants/globex/suspend", { reason: "test" }, 200);
  const expiring = await apiKey("acme", { expires_at: new Date(Date.now() + 1_500).toISOString() });

  const app = gatewayOf(opts);

  await t.step("a valid key passes with its context (Bearer and x-api-key)", async () => {
    for (const headers of [bearer(good.key), { "x-api-key": good.key }]) {
      const res = await get(app, headers);
      assert.equal(res.status, 200, res.text);
      const v = res.body.steward;
      assert.equal(v.degraded, false);
      assert.equal(v.key_id, good.id);
      assert.equal(v.tenant_id, acme.id);
      assert.equal(v.environment, "live");
      assert.deepEqual(v.scopes, ["orders:read"]);
      assert.deepEqual(v.meta, { customer: "cus_1" });
      assert.deepEqual(v.plan, { code: "metered" });
      assert.equal(v.quota.limit, QUOTA);
      assert.equal(v.ratelimit.limit, 1_000);
    }
    // Required scopes the key holds pass too.
    const scoped = gatewayOf({ ...opts, scopes: ["orders:read"] });
    assert.equal((await get(scoped, bearer(good.key))).status, 200);
    // A configured header is the only one read.
    const custom = gatewayOf({ ...opts, header: "x-gateway-key" });
    assert.equal((await get(custom, { "x-gateway-key": good.key })).status, 200);
    assert.equal((await get(custom, bearer(good.key))).body.error.code, "MISSING_KEY");
  });

  /** Asserts a refusal's status and code, and that the key is nowhere in the answer. */
  const refused = async (
    gw: Hono<StewardEnv>,
    headers: Record<string, string>,
    status: number,
    code: string,
  ) => {
    const res = await get(gw, headers);
    assert.equal(res.status, status, res.text);
    assert.equal(res.body.error.code, code);
    assert.equal(typeof res.body.error.message, "string");
    for (const value of Object.values(headers)) {
      assert.ok(!res.text.includes(value.replace("Bearer ", "")), "the key is not echoed");
      for (const [, h] of res.headers) assert.ok(!h.includes(value.replace("Bearer ", "")));
    }
    return res;
  };

  await t.step("401: missing key, NOT_FOUND, REVOKED, EXPIRED", async () => {
    const noMemory = gatewayOf({ ...opts, negativeCacheMs: 0 });
    const missing = await refused(noMemory, {}, 401, "MISSING_KEY");
    assert.equal(missing.headers.get("www-authenticate"), "Bearer");
    await refused(noMemory, { Authorization: "Basic abc" }, 401, "MISSING_KEY");
    await refused(noMemory, bearer(`sk_live_${randomAlnum(30)}`), 401, "NOT_FOUND");
    await refused(noMemory, { "x-api-key": "x".repeat(300) }, 401, "NOT_FOUND");
    await refused(noMemory, bearer(revoked.key), 401, "REVOKED");
    // The key expires 1.5 s after its creation: poll Steward itself (bounded) until it says so.
    await within(
      15,
      "the key to expire",
      (async () => {
        for (;;) {
          const v = await server.call("POST", "/v1/keys/verify", {
            token,
            body: { key: expiring.key },
          });
          if (v.body.data.code === "EXPIRED") return;
          await new Promise((r) => setTimeout(r, 100));
        }
      })(),
    );
    await refused(noMemory, bearer(expiring.key), 401, "EXPIRED");
  });

  await t.step("403: TENANT_SUSPENDED, INSUFFICIENT_SCOPES", async () => {
    await refused(app, bearer(suspended.key), 403, "TENANT_SUSPENDED");
    const writer = gatewayOf({ ...opts, scopes: ["orders:write"] });
    await refused(writer, bearer(good.key), 403, "INSUFFICIENT_SCOPES");
  });

  await t.step("429: RATE_LIMITED with Retry-After and RateLimit headers", async () => {
    // Burst 1 per second: the second call in the same second is refused (bounded tries).
    let res;
    for (let i = 0; i < 20; i++) {
      res = await get(app, bearer(limited.key));
      if (res.status !== 200) break;
    }
    assert.equal(res!.status, 429, res!.text);
    assert.equal(res!.body.error.code, "RATE_LIMITED");
    const retryAfter = Number(res!.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
    assert.match(res!.headers.get("ratelimit-policy")!, /^"rate";q=\d+$/);
    assert.match(res!.headers.get("ratelimit")!, /^"rate";r=0;t=\d+$/);
  });

  await t.step("429: USAGE_EXCEEDED with Retry-After and the quota's RateLimit", async () => {
    const costly = gatewayOf({ ...opts, cost: QUOTA + 1 });
    const res = await refused(costly, bearer(good.key), 429, "USAGE_EXCEEDED");
    const retryAfter = Number(res.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
    assert.match(
      res.headers.get("ratelimit-policy")!,
      new RegExp(`^"rate";q=1000, "quota";q=${QUOTA}$`),
    );
    assert.match(res.headers.get("ratelimit")!, /^"rate";r=\d+;t=\d+, "quota";r=\d+;t=\d+$/);
    // The refused call spent nothing: the key still passes with cost 1.
    assert.equal((await get(app, bearer(good.key))).status, 200);
  });

  await t.step("the negative memory keeps repeated bad keys from reaching Steward", async () => {
    const counted = countingFetch();
    const remembering = gatewayOf({ ...opts, fetch: counted.fetch, negativeCacheMs: 60_000 });
    const unknown = `sk_live_${randomAlnum(30)}`;
    for (let i = 0; i < 5; i++) {
      await refused(remembering, bearer(unknown), 401, "NOT_FOUND");
      await refused(remembering, bearer(revoked.key), 401, "REVOKED");
    }
    assert.equal(counted.calls, 2, "one call per bad key");
    // Good keys still reach Steward each time: only refusals are remembered.
    for (let i = 0; i < 3; i++) {
      assert.equal((await get(remembering, bearer(good.key))).status, 200);
    }
    assert.equal(counted.calls, 5);
    // Off: every request asks.
    const asking = countingFetch();
    const forgetful = gatewayOf({ ...opts, fetch: asking.fetch, negativeCacheMs: 0 });
    for (let i = 0; i < 3; i++) await refused(forgetful, bearer(unknown), 401, "NOT_FOUND");
    assert.equal(asking.calls, 3);
  });

  await t.step(
    "a token without keys:verify is a misconfiguration: 503, even fail-open",
    async () => {
      const { token: reader } = await call("POST", "/v1/admin/tokens", {
        name: "reader",
        permissions: ["tenants:read"],
      });
      const errors: unknown[] = [];
      const open = new Hono<StewardFailOpenEnv>();
      open.use(
        "*",
        steward({
          ...opts,
          token: reader,
          failOpen: true,
          onStewardError: (e) => errors.push(e),
        }),
      );
      open.get("/hello", (c) => c.json({ steward: c.get("steward") }));
      const res = await get(open, bearer(good.key));
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error.code, "STEWARD_UNAVAILABLE");
      assert.deepEqual(errors, [{ kind: "refused", status: 403, code: "FORBIDDEN" }]);
    },
  );

  await t.step("a Steward that never answers times out: 503", async () => {
    // Accepts connections and never answers.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    try {
      const errors: unknown[] = [];
      const silent = gatewayOf({
        url: `http://127.0.0.1:${listener.addr.port}`,
        token,
        timeoutMs: 200,
        onStewardError: (e) => errors.push(e),
      });
      const res = await get(silent, bearer(good.key));
      assert.equal(res.status, 503, res.text);
      assert.deepEqual(errors, [{ kind: "unavailable", reason: "timeout" }]);
    } finally {
      listener.close();
      for (const conn of held) conn.close();
      await accepting;
    }
  });

  await t.step(
    "Steward stopped: fail-closed answers 503, fail-open passes, marked degraded",
    async () => {
      const closed = gatewayOf(opts);
      const open = new Hono<StewardFailOpenEnv>();
      open.use("*", steward({ ...opts, failOpen: true }));
      open.get("/hello", (c) => {
        const v = c.get("steward");
        return c.json(v.degraded ? { degraded: v.reason } : { tenant: v.tenant_id });
      });
      assert.deepEqual((await get(open, bearer(good.key))).body, { tenant: acme.id });

      const status = await server.stop();
      assert.equal(status.code, 0, server.stderr);

      const refusedClosed = await get(closed, bearer(good.key));
      assert.equal(refusedClosed.status, 503, refusedClosed.text);
      assert.equal(refusedClosed.body.error.code, "STEWARD_UNAVAILABLE");
      assert.equal(refusedClosed.headers.get("retry-after"), "1");
      const passed = await get(open, bearer(good.key));
      assert.equal(passed.status, 200, passed.text);
      assert.deepEqual(passed.body, { degraded: "unreachable" });
      // A missing key is refused even when Steward is away.
      assert.equal((await get(open, {})).status, 401);
    },
  );
});

Deno.test("hono middleware: the negative memory is bounded, oldest out, and forgets after its time", () => {
  let now = 0;
  const memory = new NegativeCache(1_000, 3, () => now);
  for (const d of ["a", "b", "c", "d"]) memory.remember(d, "NOT_FOUND");
  assert.equal(memory.size, 3);
  assert.equal(memory.get("a"), null);
  assert.equal(memory.get("d"), "NOT_FOUND");
  // Remembering again moves an entry to the newest end.
  memory.remember("b", "REVOKED");
  memory.remember("e", "EXPIRED");
  assert.equal(memory.get("c"), null);
  assert.equal(memory.get("b"), "REVOKED");
  now = 1_000;
  assert.equal(memory.get("b"), null);
  assert.equal(memory.size, 2);
});
