/**
 * Webhook endpoints: /v1/admin/webhooks (the platform's) and /v1/tenants/{tenant}/webhooks (a
 * tenant's) — create with a secret shown once and sealed at rest, validation and the address
 * rules (SSRF), list, get, update, delete, rotate, roles and tenants, If-Match, Idempotency-Key,
 * the audit trail; and GET /v1/webhooks/event-types.
 */
import assert from "node:assert/strict";
import { Vault } from "../../domain/vault/vault.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, PUBLIC_IPV4, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";
import { ADMIN, createHook, HOOK_URL, tenantHooks } from "../_webhooks.ts";

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const BASES = [["platform", ADMIN], ["tenant", tenantHooks("acme")]] as const;

/** A fresh harness with the tenant "acme" (and "globex"), for each scope. */
async function each(fn: (h: Harness, base: string, scope: string) => Promise<void>) {
  for (const [scope, base] of BASES) {
    await using h = await setup();
    await h.tenant("acme");
    await h.tenant("globex");
    await fn(h, base, scope);
  }
}

Deno.test("POST webhooks: 201 with the secret once; sealed at rest; audited without it", async () => {
  await each(async (h, base, scope) => {
    const acme = (await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data;
    const res = await h.call("POST", base, {
      token: h.root,
      body: {
        url: HOOK_URL,
        description: "Provisioning",
        event_types: ["tenant.updated", "api_key.created", "tenant.updated"],
        metadata: { team: "billing" },
      },
    });
    assert.equal(res.status, 201, res.text);
    const e = res.body.data;
    assert.match(e.id, /^whk_/);
    assert.equal(e.tenant_id, scope === "platform" ? null : acme.id);
    assert.equal(e.url, HOOK_URL);
    assert.equal(e.description, "Provisioning");
    assert.deepEqual(e.event_types, ["api_key.created", "tenant.updated"], "sorted, deduplicated");
    assert.equal(e.enabled, true);
    assert.equal(e.disabled_reason, null);
    assert.deepEqual(e.metadata, { team: "billing" });
    assert.match(e.secret, SECRET);
    assert.equal(atob(e.secret.slice("whsec_".length)).length, 32);
    assert.equal(
      res.headers.get("Location"),
      `${scope === "platform" ? ADMIN : tenantHooks(acme.id)}/${e.id}`,
    );
    assert.ok(res.headers.get("ETag"));

    const got = await h.call("GET", `${base}/${e.id}`, { token: h.root });
    assert.equal(got.status, 200);
    assert.equal(got.body.data.secret, undefined, "never shown again");
    assert.equal(got.headers.get("ETag"), res.headers.get("ETag"));
    const dump = await h.dump();
    assert.ok(!dump.includes(e.secret.slice(6)), "the secret is not stored in clear");
    const dataKey = scope === "platform" ? keys.platformDataKey() : keys.tenantDataKey(acme.id);
    assert.ok((await h.kv.get(dataKey)).value, "sealed under the owner's data key");

    const [event] = await h.auditFor(e.id);
    assert.equal(event.action, "webhook.created");
    assert.ok(!JSON.stringify(event).includes(e.secret.slice(6)));
  });
});

Deno.test("POST webhooks: bad input is 400 naming the field, and creates nothing", async () => {
  await each(async (h, base) => {
    const post = (body: unknown) => h.call("POST", base, { token: h.root, body });
    for (
      const url of [
        "not a url",
        "ftp://hooks.example.com/x",
        `https://hooks.example.com/${"x".repeat(2000)}`,
      ]
    ) {
      assertInvalid(await post({ url }), "json.url");
    }
    for (
      const [url, why] of [
        ["http://hooks.example.com/x", "must be an https URL"],
        ["https://user:pass@hooks.example.com/x", "must not carry credentials"],
        ["https://hooks.example.com/x#frag", "must not have a fragment"],
        ["https://nowhere.example.com/x", "nowhere.example.com does not resolve to any address"],
      ]
    ) {
      const res = await post({ url });
      assertError(res, 400, "BAD_REQUEST");
      assert.equal(res.body.error.message, `url ${why}`);
      assert.deepEqual(res.body.error.details[0].path, ["url"]);
    }
    assertInvalid(await post({ url: HOOK_URL, event_types: ["tenant.exploded"] }));
    assertInvalid(await post({ url: HOOK_URL, event_types: "tenant.created" }), "json.event_types");
    assertInvalid(
      await post({ url: HOOK_URL, event_types: Array(101).fill("tenant.created") }),
      "json.event_types",
    );
    assertInvalid(await post({ url: HOOK_URL, description: "x".repeat(501) }), "json.description");
    assertInvalid(await post({ url: HOOK_URL, enabled: "yes" }), "json.enabled");
    assertInvalid(await post({ url: HOOK_URL, metadata: { k: 1 } }), "json.metadata.k");
    assertInvalid(await post({ url: HOOK_URL, secret: "whsec_mine" }));
    assertInvalid(await post({}), "json.url");
    const list = await h.call("GET", base, { token: h.root });
    assert.deepEqual(list.body.data, []);
  });
});

Deno.test("SSRF: private, loopback, link-local and metadata addresses are refused at creation", async () => {
  await using h = await setup();
  await h.tenant("acme");
  h.dns.set("internal.example.com", ["10.1.2.3"]);
  h.dns.set("sneaky.example.com", [PUBLIC_IPV4, "fd00::1"]);
  for (const base of [ADMIN, tenantHooks("acme")]) {
    for (
      const [url, why] of [
        ["http://127.0.0.1/hook", "must be an https URL"],
        ["http://10.0.0.1/hook", "must be an https URL"],
        ["https://127.0.0.1/hook", "must not point at a loopback address"],
        ["https://10.0.0.1/hook", "must not point at a private address"],
        ["https://169.254.169.254/latest/meta-data", "must not point at a link-local address"],
        ["https://[::1]/hook", "must not point at a loopback address"],
        ["https://[::ffff:127.0.0.1]/hook", "must not point at a IPv4-mapped address"],
        ["https://[::ffff:0:7f00:1]/", "must not point at a IPv4-translated address"],
        ["https://[::ffff:0:a9fe:a9fe]/", "must not point at a IPv4-translated address"],
        [
          "https://[2606:4700::5efe:a9fe:a9fe]/",
          "must not point at a ISATAP form of a link-local IPv4 address",
        ],
        ["https://0x7f.1/hook", "must not point at a loopback address"],
        ["https://localhost/hook", "must not name this machine"],
        ["https://api.localhost/hook", "must not name this machine"],
        [
          "https://internal.example.com/hook",
          "internal.example.com resolves to 10.1.2.3, a private address",
        ],
        [
          "https://sneaky.example.com/hook",
          "sneaky.example.com resolves to fd00::1, a unique local (private) address",
        ],
      ]
    ) {
      const res = await h.call("POST", base, { token: h.root, body: { url } });
      assertError(res, 400, "BAD_REQUEST");
      assert.equal(res.body.error.message, `url ${why}`, url);
    }
    // An update is checked the same way.
    const hook = await createHook(h, base);
    assertError(
      await h.call("PATCH", `${base}/${hook.id}`, {
        token: h.root,
        body: { url: "https://10.0.0.1/x" },
      }),
      400,
      "BAD_REQUEST",
    );
  }
});

Deno.test("SSRF: WEBHOOK_ALLOW_PRIVATE_URLS admits private addresses and http", async () => {
  await using h = await setup({ allowPrivateUrls: true });
  for (const url of ["http://127.0.0.1:9999/hook", "https://localhost/x", "http://[::1]:8080/"]) {
    const res = await h.call("POST", ADMIN, { token: h.root, body: { url } });
    assert.equal(res.status, 201, res.text);
  }
  assertInvalid(
    await h.call("POST", ADMIN, { token: h.root, body: { url: "ftp://127.0.0.1/" } }),
  );
});

Deno.test("GET webhooks: newest first, enabled filter, paginated; scopes never mix", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await h.tenant("globex");
  const a = await createHook(h, tenantHooks("acme"));
  const b = await createHook(h, tenantHooks("acme"), { enabled: false });
  const c = await createHook(h, tenantHooks("acme"));
  const p = await createHook(h, ADMIN);
  const g = await createHook(h, tenantHooks("globex"));
  const ids = async (path: string) =>
    (await h.call("GET", path, { token: h.root })).body.data.map((e: { id: string }) => e.id);
  assert.deepEqual(await ids(tenantHooks("acme")), [c.id, b.id, a.id]);
  assert.deepEqual(await ids(`${tenantHooks("acme")}?enabled=false`), [b.id]);
  assert.deepEqual(await ids(`${tenantHooks("acme")}?enabled=true`), [c.id, a.id]);
  assert.deepEqual(await ids(ADMIN), [p.id]);
  assert.deepEqual(await ids(tenantHooks("globex")), [g.id]);
  const page = await h.call("GET", `${tenantHooks("acme")}?limit=2`, { token: h.root });
  assert.equal(page.body.pagination.has_more, true);
  const next = await h.call(
    "GET",
    `${tenantHooks("acme")}?limit=2&cursor=${page.body.pagination.next_cursor}`,
    { token: h.root },
  );
  assert.deepEqual(next.body.data.map((e: { id: string }) => e.id), [a.id]);
  for (const bad of ["?enabled=maybe", "?limit=101", "?status=active", "?cursor=x"]) {
    assertError(await h.call("GET", `${ADMIN}${bad}`, { token: h.root }), 400, "BAD_REQUEST");
  }
  // An endpoint is found only under its own scope.
  for (
    const path of [
      `${ADMIN}/${a.id}`,
      `${tenantHooks("globex")}/${a.id}`,
      `${tenantHooks("acme")}/${p.id}`,
      `${tenantHooks("acme")}/whk_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A`,
    ]
  ) {
    assertError(await h.call("GET", path, { token: h.root }), 404, "NOT_FOUND");
  }
  assertInvalid(await h.call("GET", `${ADMIN}/nope`, { token: h.root }), "param.id");
});

Deno.test("PATCH webhooks: fields, merged metadata, re-checked URL, audited; If-Match 412", async () => {
  await each(async (h, base) => {
    const hook = await createHook(h, base, { metadata: { a: "1", b: "2" }, description: "x" });
    const res = await h.call("PATCH", `${base}/${hook.id}`, {
      token: h.root,
      headers: { "If-Match": hook.etag },
      body: {
        url: "https://hooks.example.com/v2",
        description: null,
        event_types: ["user.created"],
        enabled: false,
        metadata: { a: null, c: "3" },
      },
    });
    assert.equal(res.status, 200, res.text);
    const e = res.body.data;
    assert.equal(e.url, "https://hooks.example.com/v2");
    assert.equal(e.description, null);
    assert.deepEqual(e.event_types, ["user.created"]);
    assert.equal(e.enabled, false);
    assert.equal(e.disabled_at, new Date(h.clock.now).toISOString());
    assert.equal(e.disabled_reason, null, "disabled by hand");
    assert.deepEqual(e.metadata, { b: "2", c: "3" });
    const [event] = await h.auditFor(hook.id);
    assert.equal(event.action, "webhook.updated");
    assert.deepEqual(event.changes?.url, {
      before: HOOK_URL,
      after: "https://hooks.example.com/v2",
    });
    assertError(
      await h.call("PATCH", `${base}/${hook.id}`, {
        token: h.root,
        headers: { "If-Match": hook.etag },
        body: { description: "stale" },
      }),
      412,
      "PRECONDITION_FAILED",
    );
    const same = await h.call("PATCH", `${base}/${hook.id}`, { token: h.root, body: {} });
    assert.equal(same.status, 200);
    assert.equal((await h.auditFor(hook.id)).length, 2, "nothing changed, nothing audited");
    for (
      const [body, path] of [
        [{ url: "nope" }, "json.url"],
        [{ enabled: 1 }, "json.enabled"],
        [{ secret: "x" }, "json"],
        [{ event_types: [1] }, "json.event_types.0"],
      ] as const
    ) {
      assertInvalid(
        await h.call("PATCH", `${base}/${hook.id}`, { token: h.root, body }),
        path,
      );
    }
    assertInvalid(
      await h.call("PATCH", `${base}/${hook.id}`, {
        token: h.root,
        body: { event_types: ["no.such"] },
      }),
    );
    assertError(
      await h.call("PATCH", `${base}/whk_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A`, {
        token: h.root,
        body: { description: "x" },
      }),
      404,
      "NOT_FOUND",
    );
  });
});

Deno.test("DELETE webhooks: soft, secrets dropped, 404 afterwards; audited; If-Match 412", async () => {
  await each(async (h, base) => {
    const hook = await createHook(h, base);
    assertError(
      await h.call("DELETE", `${base}/${hook.id}`, {
        token: h.root,
        headers: { "If-Match": '"00000000000000000000"' },
      }),
      412,
      "PRECONDITION_FAILED",
    );
    const res = await h.call("DELETE", `${base}/${hook.id}`, {
      token: h.root,
      headers: { "If-Match": hook.etag },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.deleted_at, new Date(h.clock.now).toISOString());
    assert.equal(res.body.data.enabled, false);
    assertError(await h.call("GET", `${base}/${hook.id}`, { token: h.root }), 404, "NOT_FOUND");
    assertError(await h.call("DELETE", `${base}/${hook.id}`, { token: h.root }), 404, "NOT_FOUND");
    assert.deepEqual((await h.call("GET", base, { token: h.root })).body.data, []);
    const stored = (await h.kv.get<{ secrets: unknown[] }>(
      keys.webhookEndpoint(res.body.data.tenant_id, hook.id),
    )).value;
    assert.deepEqual(stored?.secrets, [], "no secret is kept for a deleted endpoint");
    assert.deepEqual((await h.auditFor(hook.id)).map((e) => e.action), [
      "webhook.deleted",
      "webhook.created",
    ]);
  });
});

Deno.test("rotate-secret: a new secret once; the previous one signs for the grace; audited", async () => {
  await each(async (h, base) => {
    const hook = await createHook(h, base);
    const rotate = (body?: unknown) =>
      h.call("POST", `${base}/${hook.id}/rotate-secret`, { token: h.root, body });
    const res = await rotate();
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.data.secret, SECRET);
    assert.notEqual(res.body.data.secret, hook.secret);
    assert.equal(
      res.body.data.previous_secret_expires_at,
      new Date(h.clock.now + 86_400_000).toISOString(),
      "24 h by default",
    );
    const none = await rotate({ grace_seconds: 0 });
    assert.equal(none.body.data.previous_secret_expires_at, null, "the old ones stop now");
    const stored = (await h.kv.get<{ secrets: unknown[] }>(
      keys.webhookEndpoint(res.body.data.tenant_id, hook.id),
    )).value;
    assert.equal(stored?.secrets.length, 1);
    assertInvalid(await rotate({ grace_seconds: -1 }), "json.grace_seconds");
    assertInvalid(await rotate({ grace_seconds: 8 * 86_400 }), "json.grace_seconds");
    assertInvalid(await rotate({ grace: 1 }));
    assertError(
      await h.call("POST", `${base}/whk_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/rotate-secret`, {
        token: h.root,
      }),
      404,
      "NOT_FOUND",
    );
    const trail = await h.auditFor(hook.id);
    assert.deepEqual(trail.map((e) => e.action).slice(0, 2), [
      "webhook.secret_rotated",
      "webhook.secret_rotated",
    ]);
    assert.ok(!JSON.stringify(trail).includes(res.body.data.secret.slice(6)));
  });
});

Deno.test("POST webhooks: Idempotency-Key replays the first answer (and its secret) once", async () => {
  await using h = await setup();
  const send = (url: string) =>
    h.call("POST", ADMIN, {
      token: h.root,
      headers: { "Idempotency-Key": "hook-1" },
      body: { url },
    });
  const first = await send(HOOK_URL);
  const again = await send(HOOK_URL);
  assert.equal(first.status, 201);
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.equal(again.body.data.id, first.body.data.id);
  assert.equal(again.body.data.secret, first.body.data.secret);
  assertError(await send("https://hooks.example.com/other"), 422, "UNPROCESSABLE");
  assert.equal((await h.call("GET", ADMIN, { token: h.root })).body.data.length, 1);
});

/** Every webhook route under `base` for the endpoint `id` and a message of it. */
function routes(base: string, id: string, messageId: string): [string, string, unknown][] {
  return [
    ["GET", base, undefined],
    ["POST", base, { url: HOOK_URL }],
    ["GET", `${base}/${id}`, undefined],
    ["PATCH", `${base}/${id}`, { description: "x" }],
    ["POST", `${base}/${id}/rotate-secret`, undefined],
    ["GET", `${base}/${id}/deliveries`, undefined],
    ["GET", `${base}/${id}/deliveries/${messageId}/attempts`, undefined],
    ["POST", `${base}/${id}/deliveries/${messageId}/retry`, undefined],
    ["POST", `${base}/${id}/recover`, { since: "2026-01-01T00:00:00Z" }],
    ["POST", `${base}/${id}/test`, undefined],
    ["DELETE", `${base}/${id}`, undefined],
  ];
}

async function firstMessage(h: Harness, base: string, id: string): Promise<string> {
  await h.runJobs();
  const res = await h.call("GET", `${base}/${id}/deliveries`, { token: h.root });
  return res.body.data[0]?.id ?? "msg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
}

Deno.test("tenant webhooks: owners and admins manage; members and viewers 403; strangers 404; 401", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const other = await h.tenant("globex");
  const base = tenantHooks("acme");
  const owner = await memberOf(h, t.id, "owner");
  const admin = await memberOf(h, t.id, "admin");
  const member = await memberOf(h, t.id, "member");
  const viewer = await memberOf(h, t.id, "viewer");
  const stranger = await memberOf(h, other.id, "owner");
  const bound = await h.serviceToken(["webhooks:read", "webhooks:write"], t.id);
  const boundElsewhere = await h.serviceToken(["webhooks:read", "webhooks:write"], other.id);
  const readOnly = await h.serviceToken(["webhooks:read"], t.id);
  for (const who of [owner, admin, bound]) {
    const hook = await createHook(h, base);
    const msg = await firstMessage(h, base, hook.id);
    for (const [method, path, body] of routes(base, hook.id, msg)) {
      const res = await h.call(method, path, { token: who.token, body });
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
    }
  }
  const hook = await createHook(h, base);
  const msg = await firstMessage(h, base, hook.id);
  for (const [method, path, body] of routes(base, hook.id, msg)) {
    assertError(await h.call(method, path, { body }), 401, "UNAUTHORIZED");
    assertError(
      await h.call(method, path, { body, headers: { Authorization: "Bearer stw_nope" } }),
      401,
      "UNAUTHORIZED",
    );
    for (const who of [member, viewer]) {
      assertError(await h.call(method, path, { token: who.token, body }), 403, "FORBIDDEN");
    }
    for (const who of [stranger, boundElsewhere]) {
      assertError(await h.call(method, path, { token: who.token, body }), 404, "NOT_FOUND");
    }
    const read = await h.call(method, path, { token: readOnly.token, body });
    if (method === "GET") assert.equal(read.status, 200, `${path}: ${read.text}`);
    else assertError(read, 403, "FORBIDDEN");
  }
});

Deno.test("platform webhooks: admin and ops manage, support reads, others 403; tenant grants never reach", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const hook = await createHook(h, ADMIN);
  const msg = await firstMessage(h, ADMIN, hook.id);
  const admin = await h.user("admin");
  const ops = await h.user("ops");
  const support = await h.user("support");
  const finance = await h.user("finance");
  const qa = await h.user("qa");
  const owner = await memberOf(h, t.id, "owner");
  const bound = await h.serviceToken(["webhooks:read", "webhooks:write"], t.id);
  const unbound = await h.serviceToken(["webhooks:read"]);
  for (const who of [admin, ops]) {
    const mine = await createHook(h, ADMIN);
    const m = await firstMessage(h, ADMIN, mine.id);
    for (const [method, path, body] of routes(ADMIN, mine.id, m)) {
      const res = await h.call(method, path, { token: who.token, body });
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
    }
  }
  for (const [method, path, body] of routes(ADMIN, hook.id, msg)) {
    for (const who of [finance, qa, owner, bound]) {
      assertError(await h.call(method, path, { token: who.token, body }), 403, "FORBIDDEN");
    }
    for (const who of [support, unbound]) {
      const res = await h.call(method, path, { token: who.token, body });
      if (method === "GET") assert.equal(res.status, 200, `${path}: ${res.text}`);
      else assertError(res, 403, "FORBIDDEN");
    }
  }
});

Deno.test("GET /v1/webhooks/event-types: every type with a description and an example body", async () => {
  await using h = await setup();
  const member = await h.user(null);
  const res = await h.call("GET", "/v1/webhooks/event-types", { token: member.token });
  assert.equal(res.status, 200, res.text);
  const types = res.body.data as {
    type: string;
    description: string;
    example: { type: string; timestamp: string; data: Record<string, unknown> };
  }[];
  assert.ok(types.length > 40);
  for (const t of types) {
    assert.match(t.type, /^[a-z_]+\.[a-z_]+$/);
    assert.ok(t.description.length > 10, t.type);
    assert.equal(t.example.type, t.type);
    assert.ok(!Number.isNaN(Date.parse(t.example.timestamp)));
    assert.equal(typeof t.example.data, "object");
  }
  assert.ok(types.some((t) => t.type === "webhook.test"));
  assert.ok(types.some((t) => t.type === "webhook.endpoint_disabled"));
  assertError(await h.call("GET", "/v1/webhooks/event-types"), 401, "UNAUTHORIZED");
});

Deno.test("POST webhooks: without STEWARD_MASTER_KEY the secret cannot be sealed: 503, nothing made", async () => {
  await using h = await setup();
  h.svc.vault = new Vault(null);
  const res = await h.call("POST", ADMIN, { token: h.root, body: { url: HOOK_URL } });
  assertError(res, 503, "UNAVAILABLE");
  assert.match(res.body.error.message, /STEWARD_MASTER_KEY/);
  assert.deepEqual((await h.call("GET", ADMIN, { token: h.root })).body.data, []);
});
