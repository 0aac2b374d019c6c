/**
 * HTTP conventions (ARCHITECTURE.md) and hostile input: every refusal is a 4xx error envelope and
 * writes nothing; request ids, security headers, CORS, Idempotency-Key, ETag/If-Match and
 * pagination behave as documented.
 */
import assert from "node:assert/strict";
import { idTime, newId } from "../../domain/shared/ids.ts";
import { type Harness, type Reply, setup } from "../_harness.ts";

const REQUEST_ID = /^req_[0-9A-HJKMNP-TV-Z]{26}$/;
const JSON_HEADERS = { "Content-Type": "application/json" };

function assertError(res: Reply, status: number, code: string, context = "") {
  const where = `${context} → ${res.status} ${res.text.slice(0, 400)}`;
  assert.equal(res.status, status, where);
  assert.equal(res.body?.success, false, where);
  assert.equal(res.body.error.code, code, where);
  assert.equal(typeof res.body.error.message, "string", where);
  assert.ok(res.body.error.message.length > 0, where);
  assert.equal(res.body.error.request_id, res.headers.get("X-Request-Id"), where);
  assert.deepEqual(
    Object.keys(res.body).sort(),
    ["error", "success"],
    `${where}: extra top-level fields`,
  );
}

/** A harness whose root token has been used once (its first use records last_used_at). */
async function ready(opts: Parameters<typeof setup>[0] = {}) {
  const h = await setup(opts);
  const me = await h.call("GET", "/v1/auth/me", { token: h.root });
  assert.equal(me.status, 200);
  return h;
}

/** Runs `send` and proves the store is byte-for-byte what it was. */
async function writesNothing(h: Harness, send: () => Promise<Reply>): Promise<Reply> {
  const before = await h.dump();
  const res = await send();
  assert.equal(await h.dump(), before, `the store changed: ${res.status} ${res.text}`);
  return res;
}

async function tenantCount(h: Harness): Promise<number> {
  const res = await h.call("GET", "/v1/tenants?limit=100", { token: h.root });
  assert.equal(res.status, 200);
  return res.body.data.length;
}

const post = (h: Harness, raw: BodyInit, headers: Record<string, string> = JSON_HEADERS) =>
  h.call("POST", "/v1/tenants", { token: h.root, raw, headers });

// ---------------------------------------------------------------------------------------------
// Bodies

Deno.test("conventions: malformed JSON is 400 and writes nothing", async () => {
  await using h = await ready();
  for (
    const raw of [
      '{"name": "Acme", "slug": "acme"',
      "{name: 'Acme', slug: 'acme'}",
      '{"name": "Acme", "slug": "acme",}',
      '{"name": "Acme", "slug": "acme"} trailing',
      "not json at all",
      '{"name": "Acme", "slug": "acme"}{}',
    ]
  ) {
    const res = await writesNothing(h, () => post(h, raw));
    assertError(res, 400, "BAD_REQUEST", raw);
  }
  assert.equal(await tenantCount(h), 0);
});

Deno.test("conventions: credentials are checked before the body is read", async () => {
  await using h = await ready();
  const anonymous: Record<string, string>[] = [{}, { Authorization: "Bearer stw_not_a_real" }];
  for (const headers of anonymous) {
    for (const [body, type] of [["{broken", "application/json"], ["x=1", "text/plain"]]) {
      const res = await h.app.request("/v1/tenants", {
        method: "POST",
        headers: { ...headers, "Content-Type": type },
        body,
      });
      assert.equal(res.status, 401, `${JSON.stringify(headers)} ${type}`);
      assert.equal((await res.json()).error.code, "UNAUTHORIZED");
    }
  }
  // A public route has no credentials to check: its body is judged at once.
  const login = await h.app.request("/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{broken",
  });
  assert.equal(login.status, 400);
  assert.equal(await tenantCount(h), 0);
});

Deno.test("conventions: a missing or malformed body names the fields the route needs, in one wording", async () => {
  await using h = await ready();
  const send = (body: string) =>
    h.app.request("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
  const empty = await send("");
  const broken = await send("{broken");
  for (const res of [empty, broken]) {
    assert.equal(res.status, 400);
    const { error } = await res.json();
    assert.equal(error.code, "BAD_REQUEST");
    // "An email or a username" is no required field: `{}` below names both in its issues.
    assert.equal(error.message, "invalid request: password");
  }
  const missing = await send("{}");
  const body = await missing.json();
  assert.match(body.error.message, /json\.email/);
  assert.match(body.error.message, /json\.password/);
});

Deno.test("conventions: a body that is not JSON by its content type is 415", async () => {
  await using h = await ready();
  const json = JSON.stringify({ name: "Acme", slug: "acme" });
  for (
    const type of [
      "text/plain",
      "text/plain; charset=utf-8",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/jsonp",
      "application/xml",
    ]
  ) {
    const res = await writesNothing(h, () => post(h, json, { "Content-Type": type }));
    assertError(res, 415, "UNSUPPORTED_MEDIA_TYPE", type);
  }
  // No Content-Type at all is no better.
  const bare = await writesNothing(h, () => post(h, json, {}));
  assertError(bare, 415, "UNSUPPORTED_MEDIA_TYPE", "no content type");
  // The same bytes as JSON (with a charset parameter) are accepted.
  const ok = await post(h, json, { "Content-Type": "application/json; charset=utf-8" });
  assert.equal(ok.status, 201, ok.text);
});

Deno.test("conventions: a body over the limit is 413, declared or streamed", async () => {
  await using h = await ready({ bodyLimitBytes: 2048 });
  const big = JSON.stringify({ name: "Acme", slug: "acme", metadata: { pad: "x".repeat(4096) } });
  assert.ok(big.length > 4096);
  const declared = await writesNothing(
    h,
    () => post(h, big, { ...JSON_HEADERS, "Content-Length": String(big.length) }),
  );
  assertError(declared, 413, "PAYLOAD_TOO_LARGE", "declared length");
  const undeclared = await writesNothing(h, () => post(h, big));
  assertError(undeclared, 413, "PAYLOAD_TOO_LARGE", "string body");
  // Chunked: a stream with no Content-Length, cut off as it crosses the limit.
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = pulled === 0
        ? '{"name":"Acme","slug":"acme","metadata":{"pad":"'
        : "x".repeat(512);
      controller.enqueue(new TextEncoder().encode(chunk));
      if (++pulled > 64) controller.close();
    },
  });
  const streamed = await writesNothing(h, () => post(h, stream));
  assertError(streamed, 413, "PAYLOAD_TOO_LARGE", "streamed body");
  assert.ok(pulled < 64, `the whole stream was read (${pulled} chunks) before refusing it`);
  // Just under the limit is fine.
  const fits = JSON.stringify({ name: "Acme", slug: "acme", metadata: { pad: "x".repeat(400) } });
  const ok = await post(h, fits);
  assert.equal(ok.status, 201, ok.text);
});

Deno.test("conventions: unknown fields are refused (no mass assignment)", async () => {
  await using h = await ready();
  for (
    const extra of [
      { plan: "enterprise" },
      { status: "active" },
      { is_test: true },
      { id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" },
      { created_by: "usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" },
      { feature_flags: { beta: true } },
    ]
  ) {
    const body = JSON.stringify({ name: "Acme", slug: "acme", ...extra });
    const res = await writesNothing(h, () => post(h, body));
    assertError(res, 400, "BAD_REQUEST", body);
    assert.ok(Array.isArray(res.body.error.details), "details lists the issues");
  }
  const raw = '{"name":"Acme","slug":"acme","__proto__":{"is_test":true}}';
  assertError(await writesNothing(h, () => post(h, raw)), 400, "BAD_REQUEST", raw);
  // PATCH is as strict.
  const t = await h.tenant("acme");
  for (
    const body of [{ plan: "enterprise" }, { status: "deleted" }, { name: "X", is_test: true }]
  ) {
    const res = await writesNothing(
      h,
      () => h.call("PATCH", `/v1/tenants/${t.id}`, { token: h.root, body }),
    );
    assertError(res, 400, "BAD_REQUEST", JSON.stringify(body));
  }
});

Deno.test("conventions: overlong strings and oversized maps are 400", async () => {
  await using h = await ready();
  const tooManyKeys = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"]));
  for (
    const body of [
      { name: "n".repeat(201), slug: "acme" },
      { name: "Acme", slug: "a".repeat(64) },
      { name: "Acme", slug: "acme", metadata: { crm: "v".repeat(501) } },
      { name: "Acme", slug: "acme", metadata: { ["k".repeat(41)]: "v" } },
      { name: "Acme", slug: "acme", metadata: tooManyKeys },
      { name: "", slug: "acme" },
      { name: "   ", slug: "acme" },
    ]
  ) {
    const res = await writesNothing(
      h,
      () => h.call("POST", "/v1/tenants", { token: h.root, body }),
    );
    assertError(res, 400, "BAD_REQUEST", JSON.stringify(body).slice(0, 80));
  }
  const t = await h.tenant("acme");
  for (
    const body of [
      { name: "n".repeat(201) },
      { metadata: { crm: "v".repeat(501) } },
      { metadata: tooManyKeys },
    ]
  ) {
    const res = await writesNothing(
      h,
      () => h.call("PATCH", `/v1/tenants/${t.id}`, { token: h.root, body }),
    );
    assertError(res, 400, "BAD_REQUEST", JSON.stringify(body).slice(0, 80));
  }
});

Deno.test("conventions: bytes that are not UTF-8 are 400", async () => {
  await using h = await ready();
  const enc = new TextEncoder();
  for (
    const bad of [
      [0xff, 0xfe],
      [0xc3, 0x28],
      [0xed, 0xa0, 0x80], // a surrogate encoded as UTF-8 (CESU), invalid in UTF-8
      [0xf8, 0x88, 0x80, 0x80, 0x80],
    ]
  ) {
    const bytes = new Uint8Array([
      ...enc.encode('{"name":"Ac'),
      ...bad,
      ...enc.encode('me","slug":"acme"}'),
    ]);
    const res = await writesNothing(h, () => post(h, bytes));
    assertError(res, 400, "BAD_REQUEST", bad.map((b) => b.toString(16)).join(" "));
  }
});

Deno.test("conventions: control characters in strings are 400, on create and on patch", async () => {
  await using h = await ready();
  const controls = ["\u0000", "\u0007", "\u001b", "\n", "\r", "\t", "\u007f", "\u009b"];
  for (const ch of controls) {
    for (
      const body of [
        { name: `Ac${ch}me`, slug: "acme" },
        { name: "Acme", slug: "acme", metadata: { crm: `A${ch}1` } },
        { name: "Acme", slug: "acme", metadata: { [`k${ch}y`]: "v" } },
      ]
    ) {
      const res = await writesNothing(
        h,
        () => h.call("POST", "/v1/tenants", { token: h.root, body }),
      );
      assertError(res, 400, "BAD_REQUEST", JSON.stringify(body));
    }
  }
  const t = await h.tenant("acme");
  for (const ch of controls) {
    for (const body of [{ name: `Ac${ch}me` }, { metadata: { crm: `A${ch}1` } }]) {
      const res = await writesNothing(
        h,
        () => h.call("PATCH", `/v1/tenants/${t.id}`, { token: h.root, body }),
      );
      assertError(res, 400, "BAD_REQUEST", `PATCH ${JSON.stringify(body)}`);
    }
  }
});

Deno.test("conventions: a lone surrogate (escaped in the JSON text) is 400", async () => {
  await using h = await ready();
  for (
    const raw of [
      '{"name":"Ac\\ud800me","slug":"acme"}',
      '{"name":"Acme\\udfff","slug":"acme"}',
      '{"name":"Acme","slug":"acme","metadata":{"crm":"x\\ud800"}}',
      '{"name":"Acme","slug":"acme","metadata":{"\\udc00":"x"}}',
    ]
  ) {
    const res = await writesNothing(h, () => post(h, raw));
    assertError(res, 400, "BAD_REQUEST", raw);
  }
  const t = await h.tenant("acme");
  for (const raw of ['{"name":"\\ud800"}', '{"metadata":{"crm":"\\ud800"}}']) {
    const res = await writesNothing(
      h,
      () => h.call("PATCH", `/v1/tenants/${t.id}`, { token: h.root, raw, headers: JSON_HEADERS }),
    );
    assertError(res, 400, "BAD_REQUEST", `PATCH ${raw}`);
  }
  // A well-formed pair is fine.
  const ok = await post(h, '{"name":"Acme \\ud83d\\ude80","slug":"rocket"}');
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.body.data.name, "Acme \u{1f680}");
});

Deno.test("conventions: a JSON value that is not an object is 400", async () => {
  await using h = await ready();
  const t = await h.tenant("acme");
  for (const raw of ["[]", '[{"name":"Acme","slug":"acme2"}]', "42", '"acme"', "null", "true"]) {
    const created = await writesNothing(h, () => post(h, raw));
    assertError(created, 400, "BAD_REQUEST", `POST ${raw}`);
    const patched = await writesNothing(
      h,
      () => h.call("PATCH", `/v1/tenants/${t.id}`, { token: h.root, raw, headers: JSON_HEADERS }),
    );
    assertError(patched, 400, "BAD_REQUEST", `PATCH ${raw}`);
    const flags = await writesNothing(
      h,
      () =>
        h.call("PATCH", `/v1/tenants/${t.id}/feature-flags`, {
          token: h.root,
          raw,
          headers: JSON_HEADERS,
        }),
    );
    assertError(flags, 400, "BAD_REQUEST", `PATCH flags ${raw}`);
  }
});

Deno.test("conventions: validation errors list each issue with its path", async () => {
  await using h = await ready();
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "", slug: "Not A Slug" },
  });
  assertError(res, 400, "BAD_REQUEST");
  const paths = res.body.error.details.map((d: { path: string[] }) => d.path.join("."));
  assert.ok(paths.includes("json.name"), JSON.stringify(paths));
  assert.ok(paths.includes("json.slug"), JSON.stringify(paths));
  const query = await h.call("GET", "/v1/tenants?bogus=1", { token: h.root });
  assertError(query, 400, "BAD_REQUEST", "unknown query parameter");
});

// ---------------------------------------------------------------------------------------------
// Request ids, headers, errors

Deno.test("conventions: every response carries a request id", async () => {
  await using h = await ready({ bodyLimitBytes: 2048, corsOrigins: ["https://app.example.com"] });
  const t = await h.tenant("acme");
  const responses: [string, Reply][] = [
    ["live", await h.call("GET", "/health/live")],
    [
      "created",
      await h.call("POST", "/v1/tenants", {
        token: h.root,
        body: { name: "B", slug: "bravo" },
      }),
    ],
    ["read", await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root })],
    ["list", await h.call("GET", "/v1/tenants", { token: h.root })],
    ["400", await h.call("POST", "/v1/tenants", { token: h.root, body: {} })],
    ["401", await h.call("GET", "/v1/tenants")],
    ["403", await h.call("POST", "/v1/tenants", { token: (await h.user(null)).token, body: {} })],
    ["404", await h.call("GET", "/v1/nope")],
    ["413", await post(h, "x".repeat(4096))],
    ["415", await post(h, "{}", { "Content-Type": "text/plain" })],
    ["openapi", await h.call("GET", "/openapi.json")],
    ["docs", await h.call("GET", "/docs")],
    ["asset", await h.call("GET", "/docs/assets/init.js")],
    ["export", await h.call("GET", "/v1/admin/audit/export", { token: h.root })],
    [
      "preflight",
      await h.call("OPTIONS", "/v1/tenants", {
        headers: { Origin: "https://app.example.com", "Access-Control-Request-Method": "POST" },
      }),
    ],
  ];
  const seen = new Set<string>();
  for (const [what, res] of responses) {
    const id = res.headers.get("X-Request-Id");
    assert.ok(id && REQUEST_ID.test(id), `${what}: X-Request-Id ${id}`);
    assert.ok(!seen.has(id), `${what}: request id reused`);
    seen.add(id);
    if (res.body?.meta) assert.equal(res.body.meta.request_id, id, what);
    if (res.body?.error) assert.equal(res.body.error.request_id, id, what);
  }
});

Deno.test("conventions: a safe incoming X-Request-Id is echoed, anything else replaced", async () => {
  await using h = await ready();
  for (const incoming of ["trace-123", "abc.DEF_456:789", "0123456789abcdef0123456789abcdef"]) {
    const ok = await h.call("GET", "/v1/auth/me", {
      token: h.root,
      headers: { "X-Request-Id": incoming },
    });
    assert.equal(ok.headers.get("X-Request-Id"), incoming);
    assert.equal(ok.body.meta.request_id, incoming);
    const err = await h.call("GET", "/v1/tenants/nope", {
      token: h.root,
      headers: { "X-Request-Id": incoming },
    });
    assertError(err, 404, "NOT_FOUND");
    assert.equal(err.body.error.request_id, incoming);
  }
  for (
    const hostile of [
      "a".repeat(300),
      "x".repeat(129),
      "<script>alert(1)</script>",
      "id with spaces",
      "id;drop",
      '"quoted"',
      "../../etc/passwd",
      "\u00e9t\u00e9",
    ]
  ) {
    const res = await h.call("GET", "/v1/auth/me", {
      token: h.root,
      headers: { "X-Request-Id": hostile },
    });
    assert.equal(res.status, 200);
    const id = res.headers.get("X-Request-Id") ?? "";
    assert.match(id, REQUEST_ID, `${hostile.slice(0, 20)} was not replaced`);
    assert.equal(res.body.meta.request_id, id);
    assert.ok(!res.text.includes(hostile), "the hostile id is reflected in the body");
  }
});

Deno.test("conventions: security headers on every kind of response", async () => {
  await using h = await ready({ bodyLimitBytes: 2048 });
  const t = await h.tenant("acme");
  const api: [string, Reply][] = [
    ["200", await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root })],
    [
      "201",
      await h.call("POST", "/v1/tenants", {
        token: h.root,
        body: { name: "B", slug: "bravo" },
      }),
    ],
    ["400", await h.call("POST", "/v1/tenants", { token: h.root, body: {} })],
    ["401", await h.call("GET", "/v1/tenants")],
    ["404", await h.call("GET", "/v1/nope")],
    ["413", await post(h, "x".repeat(4096))],
    ["health", await h.call("GET", "/health")],
    ["openapi", await h.call("GET", "/openapi.json")],
  ];
  for (const [what, res] of api) {
    assert.equal(res.headers.get("X-Content-Type-Options"), "nosniff", what);
    assert.ok(res.headers.get("Content-Security-Policy"), `${what}: no CSP`);
    assert.match(res.headers.get("Content-Security-Policy")!, /default-src 'none'/, what);
    assert.match(res.headers.get("Content-Security-Policy")!, /frame-ancestors 'none'/, what);
    assert.equal(res.headers.get("Cache-Control"), "no-store", what);
    assert.match(res.headers.get("Content-Type") ?? "", /^application\/json/, what);
  }
  const exported = await h.call("GET", "/v1/admin/audit/export", { token: h.root });
  assert.equal(exported.headers.get("X-Content-Type-Options"), "nosniff");
  assert.equal(exported.headers.get("Cache-Control"), "no-store");
  const docs = await h.call("GET", "/docs");
  assert.equal(docs.headers.get("X-Frame-Options"), "DENY");
  assert.equal(docs.headers.get("Referrer-Policy"), "no-referrer");
  assert.match(docs.headers.get("Content-Security-Policy") ?? "", /frame-ancestors 'none'/);
  // A route's own policy wins over the API's.
  assert.match(docs.headers.get("Content-Security-Policy") ?? "", /script-src/);
  assert.equal(docs.headers.get("Cache-Control"), "no-cache");
});

Deno.test("conventions: an unknown route is a 404 envelope", async () => {
  await using h = await ready();
  for (
    const [method, path] of [
      ["GET", "/v1/nope"],
      ["POST", "/v1/nope"],
      ["GET", "/"],
      ["GET", "/v2/tenants"],
      ["GET", "/v1/tenants/acme/unknown"],
    ]
  ) {
    const res = await writesNothing(h, () => h.call(method, path, { token: h.root }));
    assertError(res, 404, "NOT_FOUND", `${method} ${path}`);
  }
});

Deno.test("conventions: an unexpected failure is 500 INTERNAL without a stack trace", async () => {
  const h = await setup();
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    h.kv.close(); // every store access now throws
    for (
      const [method, path, body] of [
        ["GET", "/v1/auth/me", undefined],
        ["POST", "/v1/tenants", { name: "Acme", slug: "acme" }],
      ] as const
    ) {
      const res = await h.call(method, path, { token: h.root, body });
      assertError(res, 500, "INTERNAL", `${method} ${path}`);
      assert.ok(!/\bat\s+\S+\s*\(|\.ts:\d+|file:\/\/|Error:/.test(res.text), res.text);
      assert.ok(!/resource|kv|sqlite/i.test(res.body.error.message), res.body.error.message);
      assert.equal(res.body.error.details, undefined);
      assert.equal(res.headers.get("Cache-Control"), "no-store");
      // The operator gets the full error, tagged with the request id.
      const id = res.body.error.request_id;
      assert.ok(
        logged.some((args) => String(args[0]).includes(id)),
        "the error is not logged with its request id",
      );
    }
  } finally {
    console.error = original;
  }
});

Deno.test("conventions: CORS admits configured origins only", async () => {
  await using h = await ready({ corsOrigins: ["https://app.example.com"] });
  const preflight = (origin: string) =>
    h.app.request("/v1/tenants/acme", {
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, if-match",
      },
    });
  const ok = await preflight("https://app.example.com");
  assert.ok(ok.status === 204 || ok.status === 200, String(ok.status));
  assert.equal(ok.headers.get("Access-Control-Allow-Origin"), "https://app.example.com");
  const allowed = (ok.headers.get("Access-Control-Allow-Headers") ?? "").toLowerCase()
    .split(",").map((s) => s.trim());
  for (const header of ["authorization", "content-type", "idempotency-key", "if-match"]) {
    assert.ok(allowed.includes(header), `${header} not allowed: ${allowed}`);
  }
  const methods = ok.headers.get("Access-Control-Allow-Methods") ?? "";
  for (const m of ["GET", "POST", "PATCH", "DELETE"]) assert.ok(methods.includes(m), methods);
  assert.match(ok.headers.get("Vary") ?? "", /Origin/);
  await ok.body?.cancel();

  const evil = await preflight("https://evil.example.com");
  assert.equal(evil.headers.get("Access-Control-Allow-Origin"), null);
  await evil.body?.cancel();

  // Simple requests: the allowed origin sees the exposed headers, another origin nothing.
  const read = await h.call("GET", "/v1/auth/me", {
    token: h.root,
    headers: { Origin: "https://app.example.com" },
  });
  assert.equal(read.headers.get("Access-Control-Allow-Origin"), "https://app.example.com");
  const exposed = (read.headers.get("Access-Control-Expose-Headers") ?? "").toLowerCase();
  for (const header of ["etag", "x-request-id", "idempotent-replayed", "location"]) {
    assert.ok(exposed.includes(header), `${header} not exposed: ${exposed}`);
  }
  assert.equal(read.headers.get("Access-Control-Allow-Credentials"), null);
  const other = await h.call("GET", "/v1/auth/me", {
    token: h.root,
    headers: { Origin: "https://evil.example.com" },
  });
  assert.equal(other.headers.get("Access-Control-Allow-Origin"), null);

  // With no origins configured, nobody is admitted.
  await using closed = await ready();
  const none = await closed.call("GET", "/health/live", {
    headers: { Origin: "https://app.example.com" },
  });
  assert.equal(none.headers.get("Access-Control-Allow-Origin"), null);
});

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

const create = (h: Harness, key: string, body: unknown, token = h.root) =>
  h.call("POST", "/v1/tenants", { token, body, headers: { "Idempotency-Key": key } });

Deno.test("idempotency: the same key and body replay the first response", async () => {
  await using h = await ready();
  const body = { name: "Acme", slug: "acme" };
  const first = await create(h, "key-1", body);
  assert.equal(first.status, 201, first.text);
  assert.equal(first.headers.get("Idempotent-Replayed"), null);
  const replay = await writesNothing(h, () => create(h, "key-1", body));
  assert.equal(replay.status, 201);
  assert.equal(replay.text, first.text);
  assert.equal(replay.headers.get("Idempotent-Replayed"), "true");
  // The answer is the first request's: its request id, in the header as in the body.
  assert.equal(replay.headers.get("X-Request-Id"), first.headers.get("X-Request-Id"));
  assert.equal(replay.headers.get("Location"), first.headers.get("Location"));
  assert.equal(replay.headers.get("ETag"), first.headers.get("ETag"));
  assert.match(replay.headers.get("Content-Type") ?? "", /^application\/json/);
  assert.equal(await tenantCount(h), 1);
  // Only tenant.created once in the trail.
  const audit = await h.auditFor(first.body.data.id);
  assert.deepEqual(audit.map((e) => e.action), ["tenant.created"]);
});

Deno.test("idempotency: the same key with another request is 422", async () => {
  await using h = await ready();
  assert.equal((await create(h, "key-1", { name: "Acme", slug: "acme" })).status, 201);
  const other = await writesNothing(h, () => create(h, "key-1", { name: "Acme", slug: "acme-2" }));
  assertError(other, 422, "UNPROCESSABLE", "different body");
  const otherPath = await writesNothing(h, () =>
    h.call("POST", "/v1/tenants/test", {
      token: h.root,
      body: { name: "Acme", slug: "acme" },
      headers: { "Idempotency-Key": "key-1" },
    }));
  assertError(otherPath, 422, "UNPROCESSABLE", "different path");
  assert.equal(await tenantCount(h), 1);
});

Deno.test("idempotency: a refused request is not stored; the fixed retry succeeds", async () => {
  await using h = await ready();
  const bad = await writesNothing(h, () => create(h, "key-1", { name: "Acme", slug: "NOT OK" }));
  assertError(bad, 400, "BAD_REQUEST");
  const fixed = await create(h, "key-1", { name: "Acme", slug: "acme" });
  assert.equal(fixed.status, 201, fixed.text);
  assert.equal(fixed.headers.get("Idempotent-Replayed"), null);
  // 403 is not stored either.
  const weak = await h.serviceToken(["tenants:read"]);
  await h.call("GET", "/v1/auth/me", { token: weak.token }); // its first use is recorded
  const denied = await writesNothing(
    h,
    () => create(h, "key-2", { name: "B", slug: "bravo" }, weak.token),
  );
  assertError(denied, 403, "FORBIDDEN");
  // 415 neither.
  const typed = await writesNothing(h, () =>
    h.call("POST", "/v1/tenants", {
      token: h.root,
      raw: '{"name":"C","slug":"charlie"}',
      headers: { "Content-Type": "text/plain", "Idempotency-Key": "key-3" },
    }));
  assertError(typed, 415, "UNSUPPORTED_MEDIA_TYPE");
  const retried = await create(h, "key-3", { name: "C", slug: "charlie" });
  assert.equal(retried.status, 201, retried.text);
});

Deno.test("idempotency: keys belong to the caller", async () => {
  await using h = await ready();
  const other = await h.serviceToken(["tenants:create", "tenants:read"]);
  const a = await create(h, "shared-key", { name: "Acme", slug: "acme" });
  const b = await create(h, "shared-key", { name: "Bravo", slug: "bravo" }, other.token);
  assert.equal(a.status, 201, a.text);
  assert.equal(b.status, 201, b.text);
  assert.equal(b.headers.get("Idempotent-Replayed"), null);
  assert.notEqual(a.body.data.id, b.body.data.id);
  // Even the same body under the same key is a new request for another caller.
  const c = await create(h, "shared-key-2", { name: "Charlie", slug: "charlie" });
  const d = await create(h, "shared-key-2", { name: "Charlie", slug: "charlie" }, other.token);
  assert.equal(c.status, 201);
  assert.equal(d.headers.get("Idempotent-Replayed"), null);
  assertError(d, 409, "CONFLICT", "the slug is taken, not replayed");
  assert.equal(await tenantCount(h), 3);
});

Deno.test("idempotency: a malformed key is 400 and writes nothing", async () => {
  await using h = await ready();
  for (const key of ["k".repeat(256), "", "has space", "tab\there", "caf\u00e9"]) {
    const res = await writesNothing(h, () => create(h, key, { name: "Acme", slug: "acme" }));
    assertError(res, 400, "BAD_REQUEST", JSON.stringify(key).slice(0, 40));
  }
  const longest = await create(h, "k".repeat(255), { name: "Acme", slug: "acme" });
  assert.equal(longest.status, 201, longest.text);
});

Deno.test("idempotency: concurrent requests with one key create one tenant", async () => {
  await using h = await ready();
  const body = { name: "Acme", slug: "acme" };
  const replies = await Promise.all([1, 2, 3].map(() => create(h, "race", body)));
  const created = replies.filter((r) => r.status === 201 && !r.headers.get("Idempotent-Replayed"));
  assert.equal(created.length, 1, replies.map((r) => `${r.status} ${r.text}`).join("\n"));
  for (const r of replies) {
    if (r === created[0]) continue;
    if (r.status === 201) assert.equal(r.text, created[0].text);
    else assertError(r, 409, "CONFLICT", "in flight");
  }
  assert.equal(await tenantCount(h), 1);
});

// ---------------------------------------------------------------------------------------------
// ETag / If-Match

Deno.test("etag: reads carry the version; If-Match guards PATCH and DELETE", async () => {
  await using h = await ready();
  const t = await h.tenant("acme");
  const read = await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root });
  const etag = read.headers.get("ETag");
  assert.ok(etag && /^"[^"]+"$/.test(etag), `ETag ${etag}`);
  const again = await h.call("GET", `/v1/tenants/acme`, { token: h.root });
  assert.equal(again.headers.get("ETag"), etag, "the ETag changed without a write");

  const patched = await h.call("PATCH", `/v1/tenants/${t.id}`, {
    token: h.root,
    body: { name: "Acme Corp" },
    headers: { "If-Match": etag },
  });
  assert.equal(patched.status, 200, patched.text);
  const next = patched.headers.get("ETag");
  assert.ok(next && next !== etag, "PATCH did not return a new ETag");
  const reread = await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root });
  assert.equal(reread.headers.get("ETag"), next);

  for (
    const [method, path, body] of [
      ["PATCH", `/v1/tenants/${t.id}`, { name: "Lost update" }],
      ["PATCH", `/v1/tenants/${t.id}/feature-flags`, { beta: true }],
      ["DELETE", `/v1/tenants/${t.id}`, undefined],
    ] as const
  ) {
    for (const stale of [etag, '"nonsense"', "W/" + etag]) {
      const res = await writesNothing(
        h,
        () => h.call(method, path, { token: h.root, body, headers: { "If-Match": stale } }),
      );
      assertError(res, 412, "PRECONDITION_FAILED", `${method} ${path} If-Match ${stale}`);
    }
  }
  const unchanged = await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root });
  assert.equal(unchanged.body.data.name, "Acme Corp");
  assert.equal(unchanged.body.data.status, "active");
  assert.deepEqual(unchanged.body.data.feature_flags, {});

  const flags = await h.call("PATCH", `/v1/tenants/${t.id}/feature-flags`, {
    token: h.root,
    body: { beta: true },
    headers: { "If-Match": next },
  });
  assert.equal(flags.status, 200, flags.text);
  const deleted = await h.call("DELETE", `/v1/tenants/${t.id}`, {
    token: h.root,
    headers: { "If-Match": flags.headers.get("ETag")! },
  });
  assert.equal(deleted.status, 200, deleted.text);
  assert.equal(deleted.body.data.status, "deleted");
});

Deno.test("etag: two PATCHes with the same If-Match: one wins, one is 412", async () => {
  await using h = await ready();
  for (let round = 0; round < 5; round++) {
    const t = await h.tenant(`race-${round}`);
    const etag = (await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root })).headers.get(
      "ETag",
    )!;
    const [a, b] = await Promise.all(
      ["Alpha", "Bravo"].map((name) =>
        h.call("PATCH", `/v1/tenants/${t.id}`, {
          token: h.root,
          body: { name },
          headers: { "If-Match": etag },
        })
      ),
    );
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [200, 412], `${a.text}\n${b.text}`);
    const winner = a.status === 200 ? a : b;
    const loser = a.status === 200 ? b : a;
    assertError(loser, 412, "PRECONDITION_FAILED");
    const now = await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root });
    assert.equal(now.body.data.name, winner.body.data.name);
    const updates = (await h.auditFor(t.id)).filter((e) => e.action === "tenant.updated");
    assert.equal(updates.length, 1, "the losing PATCH left an audit event");
  }
});

// ---------------------------------------------------------------------------------------------
// Pagination

async function walkPages(h: Harness, path: string, limit: number, start: string | null = null) {
  const ids: string[] = [];
  let cursor = start;
  let pages = 0;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const url = `${path}${sep}limit=${limit}${after}`;
    const res = await h.call("GET", url, { token: h.root });
    assert.equal(res.status, 200, `${url}: ${res.text}`);
    const p = res.body.pagination;
    assert.equal(p.limit, limit);
    assert.ok(res.body.data.length <= limit);
    assert.equal(p.has_more, p.next_cursor !== null, JSON.stringify(p));
    ids.push(...res.body.data.map((d: { id: string }) => d.id));
    cursor = p.next_cursor;
    assert.ok(++pages < 100, "the walk does not end");
  } while (cursor);
  return { ids, pages };
}

Deno.test("pagination: limits, cursors and offsets on lists", async () => {
  await using h = await ready();
  const made: string[] = [];
  for (let i = 0; i < 7; i++) {
    made.push((await h.tenant(`page-${i}`)).id);
    h.advance(1000);
  }

  const all = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(all.status, 200);
  assert.equal(all.body.pagination.limit, 50, "default limit");
  assert.equal(all.body.pagination.has_more, false);
  assert.equal(all.body.pagination.next_cursor, null);
  assert.equal(all.body.pagination.total, 7);
  const order = all.body.data.map((t: { id: string }) => t.id);
  assert.deepEqual(order, [...made].reverse(), "newest first");

  for (const bad of ["0", "101", "-1", "abc", "1.5", ""]) {
    const res = await writesNothing(
      h,
      () => h.call("GET", `/v1/tenants?limit=${bad}`, { token: h.root }),
    );
    assertError(res, 400, "BAD_REQUEST", `limit=${bad}`);
  }
  for (const bad of ["garbage", "AAAA", "%00%01", "x".repeat(1025), "eyJrZXkiOiJ4In0"]) {
    const res = await h.call("GET", `/v1/tenants?cursor=${bad}`, { token: h.root });
    assertError(res, 400, "BAD_REQUEST", `cursor=${bad.slice(0, 20)}`);
  }
  for (const bad of ["-1", "x", "10001"]) {
    const res = await h.call("GET", `/v1/tenants?offset=${bad}`, { token: h.root });
    assertError(res, 400, "BAD_REQUEST", `offset=${bad}`);
  }

  for (const limit of [1, 2, 3, 7, 100]) {
    const { ids, pages } = await walkPages(h, "/v1/tenants", limit);
    assert.deepEqual(ids, order, `limit ${limit}: every item exactly once, in order`);
    assert.equal(pages, Math.ceil(7 / limit), `limit ${limit}: pages`);
  }
  // A tenant created mid-walk does not shift the pages still to come.
  const first = await h.call("GET", "/v1/tenants?limit=3", { token: h.root });
  await h.tenant("page-late");
  const rest = await walkPages(h, "/v1/tenants", 3, first.body.pagination.next_cursor);
  const seen = [...first.body.data.map((t: { id: string }) => t.id), ...rest.ids];
  assert.deepEqual(seen, order, "the walk skipped or repeated an item");

  const skipped = await h.call("GET", "/v1/tenants?offset=2&limit=3", { token: h.root });
  assert.equal(skipped.status, 200);
  const now = (await h.call("GET", "/v1/tenants", { token: h.root })).body.data.map((
    t: { id: string },
  ) => t.id);
  assert.deepEqual(skipped.body.data.map((t: { id: string }) => t.id), now.slice(2, 5));
  const beyond = await h.call("GET", "/v1/tenants?offset=50", { token: h.root });
  assert.deepEqual(beyond.body.data, []);
  assert.equal(beyond.body.pagination.has_more, false);
});

Deno.test("pagination: a cursor from another list is refused or harmless", async () => {
  await using h = await ready();
  for (let i = 0; i < 3; i++) {
    await h.tenant(`t-${i}`);
    await h.serviceToken(["tenants:read"]);
  }
  const tokens = await h.call("GET", "/v1/admin/tokens?limit=1", { token: h.root });
  const cursor = tokens.body.pagination.next_cursor;
  assert.ok(cursor);
  const res = await h.call("GET", `/v1/tenants?cursor=${encodeURIComponent(cursor)}`, {
    token: h.root,
  });
  assert.ok(res.status === 400 || res.status === 200, `${res.status} ${res.text}`);
  if (res.status === 400) assertError(res, 400, "BAD_REQUEST");
  else for (const t of res.body.data) assert.match(t.id, /^ten_/);
});

Deno.test("pagination: deleted tenants are left out of the walk", async () => {
  await using h = await ready();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await h.tenant(`d-${i}`)).id);
  const del = await h.call("DELETE", `/v1/tenants/${ids[2]}`, { token: h.root });
  assert.equal(del.status, 200);
  const { ids: walked } = await walkPages(h, "/v1/tenants", 2);
  assert.deepEqual(walked.sort(), ids.filter((_, i) => i !== 2).sort());
  const listed = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(listed.body.pagination.total, 4, "total counts a deleted tenant");
});

Deno.test("pagination: the token and audit lists walk every item exactly once", async () => {
  await using h = await ready();
  for (let i = 0; i < 5; i++) {
    await h.serviceToken(["tenants:read"]);
    await h.tenant(`walk-${i}`);
    h.advance(1000);
  }
  for (const path of ["/v1/admin/tokens", "/v1/admin/audit", "/v1/tenants/walk-0/audit"]) {
    const full = await h.call("GET", `${path}?limit=100`, { token: h.root });
    assert.equal(full.status, 200, full.text);
    const order = full.body.data.map((d: { id: string }) => d.id);
    assert.ok(order.length >= 1, path);
    for (const limit of [1, 2, 4]) {
      const { ids } = await walkPages(h, path, limit);
      assert.deepEqual(ids, order, `${path} limit ${limit}`);
    }
    const garbage = await h.call("GET", `${path}?cursor=garbage`, { token: h.root });
    assertError(garbage, 400, "BAD_REQUEST", `${path} garbage cursor`);
    const zero = await h.call("GET", `${path}?limit=0`, { token: h.root });
    assertError(zero, 400, "BAD_REQUEST", `${path} limit=0`);
  }
});

Deno.test("ids: ULIDs carry their time, and ids of one millisecond count up by one", () => {
  const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const random = (id: string) =>
    [...id.slice(-16)].reduce((n, ch) => n * 32n + BigInt(ALPHABET.indexOf(ch)), 0n);
  const ms = Date.UTC(2026, 10, 23, 12);
  const ids = Array.from({ length: 1_000 }, () => newId("req", ms));
  for (const [i, id] of ids.entries()) {
    assert.match(id, /^req_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(idTime(id), ms);
    if (i > 0) assert.equal(random(id), random(ids[i - 1]) + 1n, `${ids[i - 1]} → ${id}`);
  }
  assert.ok(newId("req", ms + 1) > ids.at(-1)!, "a later millisecond sorts after");
});

Deno.test("conventions: an unsupported method is 405 with Allow, in the envelope", async () => {
  await using h = await setup();
  for (
    const [method, path, allow] of [
      ["PUT", "/v1/tenants", "GET, POST"],
      ["OPTIONS", "/v1/tenants/acme", "GET, PATCH, DELETE"],
      ["POST", "/health", "GET"],
      ["PATCH", "/v1/projects/prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/jwks.json", "GET"],
    ]
  ) {
    const res = await h.app.request(path, { method });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("Allow"), allow);
    const body = await res.json();
    assert.equal(body.error.code, "METHOD_NOT_ALLOWED");
    assert.match(body.error.request_id, /^req_/);
  }
  const unknown = await h.app.request("/v1/nowhere", { method: "PUT" });
  assert.equal(unknown.status, 404);
});

Deno.test("pagination: page (1-based, with limit) is an offset by another name", async () => {
  await using h = await ready();
  for (const slug of ["p-a", "p-b", "p-c", "p-d", "p-e"]) await h.tenant(slug);
  for (const list of ["/v1/tenants", "/v1/admin/audit", "/v1/plans", "/v1/users"]) {
    const byOffset = await h.call("GET", `${list}?limit=2&offset=2`, { token: h.root });
    const byPage = await h.call("GET", `${list}?limit=2&page=2`, { token: h.root });
    assert.equal(byPage.status, 200, `${list}: ${byPage.text}`);
    assert.deepEqual(byPage.body.data, byOffset.body.data, list);
    assert.equal(byPage.body.pagination.total, byOffset.body.pagination.total, list);
  }
  const tooFar = await h.call("GET", "/v1/tenants?page=0", { token: h.root });
  assert.equal(tooFar.status, 400);
});

Deno.test("audit: start_date, end_date and since are aliases of from and to", async () => {
  await using h = await ready();
  await h.tenant("alias-a");
  h.advance(3_600_000);
  const mid = new Date(h.clock.now).toISOString();
  h.advance(3_600_000);
  await h.tenant("alias-b");
  const get = async (q: string) =>
    (await h.call("GET", `/v1/admin/audit?limit=100&${q}`, { token: h.root })).body.data
      .map((e: { id: string }) => e.id);
  assert.deepEqual(await get(`start_date=${mid}`), await get(`from=${mid}`));
  assert.deepEqual(await get(`since=${mid}`), await get(`from=${mid}`));
  assert.deepEqual(await get(`end_date=${mid}`), await get(`to=${mid}`));
  assert.ok((await get(`since=${mid}`)).length > 0);
  assert.ok((await get(`end_date=${mid}`)).length > 0);
  assert.notDeepEqual(await get(`since=${mid}`), await get(`end_date=${mid}`));
});

Deno.test("conventions: JSON answers are logged with their size in bytes, errors too", async () => {
  await using h = await setup();
  const t = await h.tenant("acme", { name: "Ünïcode Café" });
  const auth = { Authorization: `Bearer ${h.root}` };
  const create = {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json", "Idempotency-Key": "size-1" },
    body: JSON.stringify({ name: "Zürich AG", slug: "zurich" }),
  };
  // Each sent with its own request id, which the log keeps.
  const calls: [string, string, RequestInit][] = [
    ["req-tenant", `/v1/tenants/${t.id}`, { headers: auth }],
    ["req-missing", "/v1/tenants/nope", { headers: auth }],
    ["req-live", "/health/live", {}],
    // A creation, then its replay (routes/middleware/idempotency.ts answers it).
    ["req-create", "/v1/tenants", create],
    ["req-replay", "/v1/tenants", create],
  ];
  const sizes = new Map<string, number>();
  for (const [id, path, init] of calls) {
    const res = await h.app.request(path, {
      ...init,
      headers: { ...init.headers as Record<string, string>, "X-Request-Id": id },
    });
    assert.match(res.headers.get("Content-Type")!, /^application\/json/);
    if (id === "req-replay") assert.equal(res.headers.get("Idempotent-Replayed"), "true");
    const text = await res.text();
    const bytes = new TextEncoder().encode(text).length;
    // The tenant's name is not ASCII: a size in characters would be short.
    if (id === "req-tenant") assert.ok(bytes > text.length);
    sizes.set(id, bytes);
  }
  await h.svc.aggregator.flush();
  const logs = await h.call("GET", "/v1/admin/logs?limit=100", { token: h.root });
  const logged = new Map<string, number>(
    logs.body.data.map((e: { request_id: string; bytes_out: number }) => [
      e.request_id,
      e.bytes_out,
    ]),
  );
  for (const [id, bytes] of sizes) assert.equal(logged.get(id), bytes, id);
});
