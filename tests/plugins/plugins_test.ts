/**
 * Plugins: registration (secret shown once, SSRF rules, config against its schema), events
 * delivered signed through the plugin's webhook endpoint, hooks that veto creations (422) or
 * fail open / closed within their timeout, enable / disable / delete with the endpoint, health,
 * and each route's 400 / 401 / 403 / 404 / 409 / 412.
 */
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { EVENT_CATALOG } from "../../domain/audit/event_catalog.ts";
import type { DomainEvent } from "../../domain/audit/events.ts";
import { keys } from "../../kv/keys.ts";
import { PluginHooks } from "../../domain/plugins/hooks.ts";
import { AppError } from "../../domain/shared/errors.ts";
import { SYSTEM_ACTOR } from "../../domain/shared/services.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";
import { ADMIN, drain, HOOK_URL, type Received, receiver } from "../_webhooks.ts";

const BASE = "/v1/admin/plugins";

async function register(h: Harness, body: Record<string, unknown> = {}) {
  const res = await h.call("POST", BASE, {
    token: h.root,
    body: { name: "screen", version: "1.0.0", url: HOOK_URL, events: [], ...body },
  });
  assert.equal(res.status, 201, res.text);
  return res;
}

/** Whether `req` carries a Standard Webhooks signature by `secret` (computed by the package). */
function signedBy(req: Received, secret: string): boolean {
  const id = req.headers["webhook-id"];
  const ts = Number(req.headers["webhook-timestamp"]);
  const expected = new Webhook(secret).sign(id, new Date(ts * 1000), req.body);
  return req.headers["webhook-signature"].split(" ").includes(expected);
}

/** A plugin that answers each hook call with `answer` (events get 204). */
function pluginAnswering(h: Harness, answer: (type: string) => unknown) {
  return receiver(h, (req) => {
    const { type } = JSON.parse(req.body);
    return type.endsWith(".creating")
      ? Response.json(answer(type))
      : new Response(null, { status: 204 });
  });
}

/** A network that never answers: only the caller's abort signal ends a request. */
function silentNetwork(h: Harness) {
  const asked: string[] = [];
  h.network.fetch = (url, init) => {
    asked.push(url);
    return new Promise((_, reject) => {
      init.signal?.addEventListener("abort", () => reject(init.signal!.reason));
    });
  };
  return asked;
}

const tenantBody = (slug: string) => ({ name: `Tenant ${slug}`, slug });

Deno.test("POST plugins: registers it with its own platform endpoint; the secret is shown once", async () => {
  await using h = await setup();
  const res = await register(h, { events: ["tenant.created", "tenant.updated"] });
  const p = res.body.data;
  assert.match(p.id, /^plg_/);
  assert.match(p.secret, /^whsec_/);
  assert.equal(res.headers.get("Location"), `${BASE}/${p.id}`);
  assert.deepEqual(p.events, ["tenant.created", "tenant.updated"]);
  assert.equal(p.enabled, true);

  const got = await h.call("GET", `${BASE}/${p.id}`, { token: h.root });
  assert.equal(got.status, 200);
  assert.equal(got.body.data.secret, undefined);
  assert.equal(got.headers.get("ETag"), res.headers.get("ETag"));
  // Sealed, never stored in clear.
  assert.ok(!(await h.dump()).includes(p.secret.slice(6)));

  // The endpoint delivers its events, and belongs to it: changed only through the plugin.
  const endpoint = await h.call("GET", `${ADMIN}/${p.endpoint_id}`, { token: h.root });
  assert.equal(endpoint.status, 200);
  assert.equal(endpoint.body.data.url, HOOK_URL);
  assert.deepEqual(endpoint.body.data.event_types, ["tenant.created", "tenant.updated"]);
  for (const [method, body] of [["PATCH", { enabled: false }], ["DELETE", undefined]] as const) {
    const refused = await h.call(method, `${ADMIN}/${p.endpoint_id}`, { token: h.root, body });
    assertError(refused, 409, "CONFLICT");
    assert.match(refused.body.error.message, new RegExp(p.id));
  }

  // One commit: the plugin's and its endpoint's audit events, with the catalogue's fields.
  assert.deepEqual((await h.auditFor(p.id)).map((a) => a.action), ["plugin.created"]);
  assert.deepEqual((await h.auditFor(p.endpoint_id)).map((a) => a.action), ["webhook.created"]);
  const example = EVENT_CATALOG.find((e) => e.type === "plugin.created")!.example;
  for await (const { value: e } of h.kv.list<DomainEvent>({ prefix: keys.events() })) {
    if (e.type === "plugin.created") {
      assert.deepEqual(Object.keys(e.data).sort(), Object.keys(example).sort());
    }
  }

  const list = await h.call("GET", `${BASE}?limit=10&offset=0`, { token: h.root });
  assert.equal(list.status, 200);
  assert.equal(list.body.pagination.total, 1);
  assert.equal(list.body.data[0].id, p.id);
  assert.equal(list.body.data[0].secret, undefined);
});

Deno.test("events: a plugin receives the events it subscribed to, signed with its secret", async () => {
  await using h = await setup();
  const { body } = await register(h, { events: ["tenant.created"] });
  const received = receiver(h);
  await h.tenant("acme");
  await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name: "Acme 2" } });
  await drain(h);
  const types = received.map((r) => JSON.parse(r.body).type);
  assert.deepEqual(types, ["tenant.created"]);
  assert.equal(received[0].url, HOOK_URL);
  assert.ok(signedBy(received[0], body.data.secret), "signed with the plugin's secret");
  assert.ok(!signedBy(received[0], "whsec_" + btoa("another secret of 32 bytes long!!")));

  // Its delivery history: through the webhook routes, and in its health.
  const deliveries = await h.call("GET", `${ADMIN}/${body.data.endpoint_id}/deliveries`, {
    token: h.root,
  });
  assert.equal(deliveries.body.data[0].status, "succeeded");
  const health = await h.call("GET", `${BASE}/${body.data.id}/health`, { token: h.root });
  assert.equal(health.status, 200, health.text);
  assert.equal(health.body.data.deliveries.succeeded, 1);
  assert.equal(health.body.data.deliveries.recent[0].event_type, "tenant.created");
  assert.equal(health.body.data.deliveries.recent[0].response_status_code, 204);
  assert.equal(health.body.data.endpoint.enabled, true);
});

Deno.test("hooks: a veto blocks a tenant's creation with the plugin's reason (422)", async () => {
  await using h = await setup();
  const { body } = await register(h, {
    name: "Fraud Screen",
    hooks: [{ name: "tenant.creating", timeout_ms: 2000, on_failure: "open" }],
  });
  const received = pluginAnswering(h, () => ({ allow: false, reason: "the slug names a rival" }));
  const res = await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("rival") });
  assertError(res, 422, "UNPROCESSABLE");
  assert.match(res.body.error.message, /Fraud Screen/);
  assert.match(res.body.error.message, /the slug names a rival/);
  assert.deepEqual(res.body.error.details, {
    code: "VETOED_BY_PLUGIN",
    plugin_id: body.data.id,
    plugin: "Fraud Screen",
    hook: "tenant.creating",
    reason: "the slug names a rival",
  });
  const missing = await h.call("GET", "/v1/tenants/rival", { token: h.root });
  assertError(missing, 404, "NOT_FOUND");

  // The call: signed like a delivery, with what is about to be created and who asks.
  assert.equal(received.length, 1);
  assert.ok(signedBy(received[0], body.data.secret));
  const call = JSON.parse(received[0].body);
  assert.equal(call.type, "tenant.creating");
  assert.equal(call.data.slug, "rival");
  assert.equal(call.data.actor.type, "service_token");

  // An allowing answer lets it through.
  pluginAnswering(h, () => ({ allow: true }));
  const ok = await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("friend") });
  assert.equal(ok.status, 201, ok.text);

  const health = await h.call("GET", `${BASE}/${body.data.id}/health`, { token: h.root });
  const hooks = health.body.data.hooks;
  assert.equal(hooks.shown, 2);
  assert.equal(hooks.vetoed, 1);
  assert.equal(hooks.allowed, 1);
  assert.deepEqual(hooks.recent.map((c: { outcome: string }) => c.outcome), [
    "allowed",
    "vetoed",
  ]);
  assert.equal(hooks.recent[1].reason, "the slug names a rival");
});

Deno.test("hooks: API key and user creations are asked too", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await register(h, {
    hooks: [
      { name: "api_key.creating", timeout_ms: 2000, on_failure: "open" },
      { name: "user.creating", timeout_ms: 2000, on_failure: "open" },
    ],
  });
  const received = pluginAnswering(h, (type) => ({ allow: false, reason: `no ${type}` }));
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "checkout", environment: "live" },
  });
  assertError(key, 422, "UNPROCESSABLE");
  assert.match(key.body.error.message, /no api_key\.creating/);
  const user = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: "ada@example.com", name: "Ada" },
  });
  assertError(user, 422, "UNPROCESSABLE");
  assert.match(user.body.error.message, /no user\.creating/);
  assert.deepEqual(received.map((r) => JSON.parse(r.body).type), [
    "api_key.creating",
    "user.creating",
  ]);
  const keyCall = JSON.parse(received[0].body).data;
  assert.equal(keyCall.name, "checkout");
  assert.equal(keyCall.key_hash, undefined, "no hash of the key leaves");
  const keys = await h.call("GET", "/v1/tenants/acme/api-keys", { token: h.root });
  assert.equal(keys.body.data.length, 0);
});

Deno.test("hooks: no answer within the timeout follows on_failure (open allows, closed 503)", async () => {
  await using h = await setup();
  const open = await register(h, {
    name: "lenient",
    hooks: [{ name: "tenant.creating", timeout_ms: 20, on_failure: "open" }],
  });
  const asked = silentNetwork(h);
  const allowed = await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("one") });
  assert.equal(allowed.status, 201, allowed.text);
  assert.equal(asked.length, 1);
  const health = await h.call("GET", `${BASE}/${open.body.data.id}/health`, { token: h.root });
  assert.equal(health.body.data.hooks.failed, 1);
  assert.equal(health.body.data.hooks.recent[0].applied, "allowed");
  assert.match(health.body.data.hooks.recent[0].error, /no answer within 20 ms/);

  const strict = await register(h, {
    name: "strict",
    hooks: [{ name: "tenant.creating", timeout_ms: 20, on_failure: "closed" }],
  });
  const refused = await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("two") });
  assertError(refused, 503, "UNAVAILABLE");
  assert.equal(refused.body.error.details.code, "PLUGIN_UNAVAILABLE");
  assert.equal(refused.body.error.details.plugin, "strict");
  assert.match(refused.body.error.message, /strict/);
  assertError(await h.call("GET", "/v1/tenants/two", { token: h.root }), 404, "NOT_FOUND");

  // An unusable answer (not 2xx, or no boolean "allow") is a failure too (now given time to come).
  const patient = await h.call("PATCH", `${BASE}/${strict.body.data.id}`, {
    token: h.root,
    body: { hooks: [{ name: "tenant.creating", timeout_ms: 10_000, on_failure: "closed" }] },
  });
  assert.equal(patient.status, 200, patient.text);
  await h.call("POST", `${BASE}/${open.body.data.id}/disable`, { token: h.root });
  receiver(h, () => new Response("oops", { status: 500 }));
  const broken = await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("three") });
  assertError(broken, 503, "UNAVAILABLE");
  receiver(h, () => Response.json({ ok: true }));
  const odd = await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("four") });
  assertError(odd, 503, "UNAVAILABLE");
  assert.match(odd.body.error.message, /allow/);
});

Deno.test("hooks: a disabled or deleted plugin is not asked; enabling brings it back", async () => {
  await using h = await setup();
  const { body } = await register(h, {
    events: ["tenant.created"],
    hooks: [{ name: "tenant.creating", timeout_ms: 2000, on_failure: "closed" }],
  });
  const id = body.data.id;
  const received = pluginAnswering(h, () => ({ allow: false, reason: "closed for today" }));

  const disabled = await h.call("POST", `${BASE}/${id}/disable`, { token: h.root });
  assert.equal(disabled.status, 200, disabled.text);
  assert.equal(disabled.body.data.enabled, false);
  const endpoint = await h.call("GET", `${ADMIN}/${body.data.endpoint_id}`, { token: h.root });
  assert.equal(endpoint.body.data.enabled, false);
  assert.equal(
    (await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("alpha") })).status,
    201,
  );
  await drain(h);
  assert.equal(received.length, 0, "neither asked nor sent events");

  const enabled = await h.call("POST", `${BASE}/${id}/enable`, { token: h.root });
  assert.equal(enabled.body.data.enabled, true);
  const again = await h.call("GET", `${ADMIN}/${body.data.endpoint_id}`, { token: h.root });
  assert.equal(again.body.data.enabled, true);
  assertError(
    await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("bravo") }),
    422,
    "UNPROCESSABLE",
  );

  const deleted = await h.call("DELETE", `${BASE}/${id}`, { token: h.root });
  assert.equal(deleted.status, 200);
  assert.ok(deleted.body.data.deleted_at);
  assertError(await h.call("GET", `${BASE}/${id}`, { token: h.root }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", `${ADMIN}/${body.data.endpoint_id}`, { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assert.equal(
    (await h.call("POST", "/v1/tenants", { token: h.root, body: tenantBody("charlie") })).status,
    201,
  );
  assert.deepEqual((await h.auditFor(id)).map((a) => a.action), [
    "plugin.deleted",
    "plugin.enabled",
    "plugin.disabled",
    "plugin.created",
  ]);
  // Its name is free again.
  await register(h);
});

Deno.test("config: validated against the plugin's config_schema (400 with each issue)", async () => {
  await using h = await setup();
  const schema = {
    type: "object",
    properties: {
      threshold: { type: "number", maximum: 1 },
      notify: { type: "string", format: "email" },
    },
    required: ["threshold"],
  };
  const bad = await h.call("POST", BASE, {
    token: h.root,
    body: {
      name: "screen",
      version: "1",
      url: HOOK_URL,
      events: [],
      config_schema: schema,
      config: { threshold: 2, notify: "nobody" },
    },
  });
  assertInvalid(bad, "config.threshold", "config.notify");
  const missing = await h.call("POST", BASE, {
    token: h.root,
    body: { name: "screen", version: "1", url: HOOK_URL, events: [], config_schema: schema },
  });
  assertInvalid(missing, "config");
  const notASchema = await h.call("POST", BASE, {
    token: h.root,
    body: { name: "screen", version: "1", url: HOOK_URL, events: [], config_schema: { type: 7 } },
  });
  assertInvalid(notASchema, "config_schema.type");

  const { body } = await register(h, { config_schema: schema, config: { threshold: 0.5 } });
  const id = body.data.id;
  const patched = await h.call("PATCH", `${BASE}/${id}`, {
    token: h.root,
    body: { config: { threshold: 5 } },
  });
  assertInvalid(patched, "config.threshold");
  // A new schema is checked against the config the plugin keeps.
  const stricter = await h.call("PATCH", `${BASE}/${id}`, {
    token: h.root,
    body: { config_schema: { ...schema, properties: { threshold: { type: "integer" } } } },
  });
  assertInvalid(stricter, "config.threshold");
  const fine = await h.call("PATCH", `${BASE}/${id}`, {
    token: h.root,
    body: { config: { threshold: 0.9 }, version: "1.1.0" },
  });
  assert.equal(fine.status, 200, fine.text);
  assert.deepEqual(fine.body.data.config, { threshold: 0.9 });
  assert.equal(fine.body.data.version, "1.1.0");
});

Deno.test("SSRF: a plugin's URL follows the webhook rules", async () => {
  await using h = await setup();
  h.dns.set("internal.example.com", ["10.1.2.3"]);
  for (
    const [url, message] of [
      ["http://hooks.example.com/x", "must be an https URL"],
      ["https://10.0.0.1/x", "must not point at a private address"],
      ["https://169.254.169.254/latest/meta-data", "must not point at a link-local address"],
      ["https://internal.example.com/x", "internal.example.com resolves to 10.1.2.3"],
      ["https://nowhere.example.com/x", "does not resolve"],
    ]
  ) {
    const res = await h.call("POST", BASE, {
      token: h.root,
      body: { name: "x", version: "1", url, events: [] },
    });
    assertInvalid(res, "url");
    assert.match(res.body.error.message, new RegExp(message), url);
  }
  const { body } = await register(h);
  const moved = await h.call("PATCH", `${BASE}/${body.data.id}`, {
    token: h.root,
    body: { url: "https://10.0.0.1/x" },
  });
  assertInvalid(moved, "url");
  assert.equal((await h.call("GET", "/v1/admin/webhooks", { token: h.root })).body.data.length, 1);
});

Deno.test("plugins: 400, 401, 403, 404, 409 and 412 on every route", async () => {
  await using h = await setup();
  const { body } = await register(h);
  const id = body.data.id;
  const routes: [string, string, unknown?][] = [
    ["GET", BASE],
    ["POST", BASE, { name: "other", version: "1", url: HOOK_URL, events: [] }],
    ["GET", `${BASE}/${id}`],
    ["PATCH", `${BASE}/${id}`, { version: "2" }],
    ["POST", `${BASE}/${id}/disable`],
    ["POST", `${BASE}/${id}/enable`],
    ["GET", `${BASE}/${id}/health`],
    ["DELETE", `${BASE}/${id}`],
  ];
  // An admin holds neither config:read nor config:write; a token may hold them.
  const admin = await h.user("admin");
  const reader = await h.serviceToken(["config:read"]);
  for (const [method, path, payload] of routes) {
    assertError(await h.call(method, path, { body: payload }), 401, "UNAUTHORIZED");
    assertError(
      await h.call(method, path, { token: admin.token, body: payload }),
      403,
      "FORBIDDEN",
    );
    const asReader = await h.call(method, path, { token: reader.token, body: payload });
    if (method === "GET") assert.equal(asReader.status, 200, `${method} ${path}`);
    else assertError(asReader, 403, "FORBIDDEN");
  }
  const unknown = `${BASE}/plg_01JQ3V5W7X9Y1Z3A5B7C9D1E3Y`;
  for (
    const [method, suffix] of [["GET", ""], ["PATCH", ""], ["DELETE", ""], ["POST", "/enable"], [
      "GET",
      "/health",
    ]]
  ) {
    const res = await h.call(method, `${unknown}${suffix}`, {
      token: h.root,
      body: method === "PATCH" ? { version: "2" } : undefined,
    });
    assertError(res, 404, "NOT_FOUND");
  }
  assertError(await h.call("GET", `${BASE}/whk_nope`, { token: h.root }), 400, "BAD_REQUEST");
  assertInvalid(
    await h.call("POST", BASE, { token: h.root, body: { name: "x", version: "1", url: HOOK_URL } }),
    "json.events",
  );
  assertInvalid(
    await h.call("POST", BASE, {
      token: h.root,
      body: { name: "x", version: "1", url: HOOK_URL, events: [], secret: "mine" },
    }),
  );
  assertInvalid(
    await h.call("POST", BASE, {
      token: h.root,
      body: { name: "x", version: "1", url: HOOK_URL, events: ["no.such_event"] },
    }),
    "events.0",
  );
  assertInvalid(
    await h.call("POST", BASE, {
      token: h.root,
      body: {
        name: "x",
        version: "1",
        url: HOOK_URL,
        events: [],
        hooks: [{ name: "tenant.deleting", timeout_ms: 100, on_failure: "open" }],
      },
    }),
    "json.hooks.0.name",
  );
  assertInvalid(
    await h.call("POST", BASE, {
      token: h.root,
      body: {
        name: "x",
        version: "1",
        url: HOOK_URL,
        events: [],
        hooks: [
          { name: "user.creating", timeout_ms: 100, on_failure: "open" },
          { name: "user.creating", timeout_ms: 200, on_failure: "closed" },
        ],
      },
    }),
    "hooks.1.name",
  );
  assertInvalid(
    await h.call("PATCH", `${BASE}/${id}`, { token: h.root, body: { enabled: false } }),
  );
  assertInvalid(
    await h.call("GET", `${BASE}?enabled=maybe`, { token: h.root }),
    "query.enabled",
  );
  // Names are unique regardless of case.
  assertError(
    await h.call("POST", BASE, {
      token: h.root,
      body: { name: "SCREEN", version: "1", url: HOOK_URL, events: [] },
    }),
    409,
    "CONFLICT",
  );
  // A stale If-Match is 412.
  const stale = await h.call("PATCH", `${BASE}/${id}`, {
    token: h.root,
    headers: { "If-Match": '"00000000000000000000"' },
    body: { version: "9" },
  });
  assertError(stale, 412, "PRECONDITION_FAILED");
});

Deno.test("POST plugins: Idempotency-Key replays the first answer", async () => {
  await using h = await setup();
  const send = () =>
    h.call("POST", BASE, {
      token: h.root,
      headers: { "Idempotency-Key": "plugin-1" },
      body: { name: "screen", version: "1", url: HOOK_URL, events: [] },
    });
  const first = await send();
  const second = await send();
  assert.equal(first.status, 201);
  assert.equal(second.status, 201);
  assert.equal(second.body.data.id, first.body.data.id);
  const list = await h.call("GET", BASE, { token: h.root });
  assert.equal(list.body.pagination.total, 1);
});

Deno.test("hooks: another process's change reaches this one through its watch", async () => {
  await using h = await setup();
  // A second process's hooks on the same store: this process's changes do not reload it.
  const other = new PluginHooks(h.svc);
  other.start((err) => assert.fail(String(err)));
  try {
    await other.ask("tenant.creating", { slug: "before" }, SYSTEM_ACTOR);
    await register(h, {
      hooks: [{ name: "tenant.creating", timeout_ms: 5000, on_failure: "open" }],
    });
    pluginAnswering(h, () => ({ allow: false, reason: "seen everywhere" }));
    let refused: unknown = null;
    for (let i = 0; i < 500 && !refused; i++) {
      await other.ask("tenant.creating", { slug: "after" }, SYSTEM_ACTOR).catch((err) => {
        refused = err;
      });
      if (!refused) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(refused instanceof AppError, "the veto reached the other process");
    assert.equal(refused.code, "UNPROCESSABLE");
    assert.match(refused.message, /seen everywhere/);
  } finally {
    await other.stop();
  }
});

Deno.test("PATCH plugins: its endpoint follows the URL and events (none: not delivering)", async () => {
  await using h = await setup();
  h.dns.set("other.example.com", ["93.184.216.35"]);
  const created = await register(h, { events: ["tenant.created"] });
  const body = created.body;
  const moved = await h.call("PATCH", `${BASE}/${body.data.id}`, {
    token: h.root,
    headers: { "If-Match": created.headers.get("ETag")! },
    body: { url: "https://other.example.com/hook", events: ["tenant.updated", "tenant.created"] },
  });
  assert.equal(moved.status, 200, moved.text);
  const endpoint = () => h.call("GET", `${ADMIN}/${body.data.endpoint_id}`, { token: h.root });
  let e = (await endpoint()).body.data;
  assert.equal(e.url, "https://other.example.com/hook");
  assert.deepEqual(e.event_types, ["tenant.created", "tenant.updated"]);
  assert.equal(e.enabled, true);
  assert.deepEqual((await h.auditFor(body.data.endpoint_id)).map((a) => a.action), [
    "webhook.updated",
    "webhook.created",
  ]);
  await h.call("PATCH", `${BASE}/${body.data.id}`, { token: h.root, body: { events: [] } });
  e = (await endpoint()).body.data;
  assert.equal(e.enabled, false, "an endpoint with no types would get every event");
  const received = receiver(h);
  await h.tenant("acme");
  await drain(h);
  assert.equal(received.length, 0);
});
