/**
 * Tenant secrets (/v1/tenants/{tenant}/secrets, /v1/admin/secrets): typed values sealed at rest,
 * versions (the last 5 kept), masked reads, the audited reveal and who may call it, support's
 * metadata-only view, deletion with every version (by hand, and with the tenant), the SMTP test
 * send against a real SMTP server, a sealed vault, and a scan of the store for clear values.
 */
import assert from "node:assert/strict";
import { EVENT_CATALOG } from "../../domain/audit/event_catalog.ts";
import type { DomainEvent } from "../../domain/audit/events.ts";
import { sealedSecretVersions, tenantSmtp } from "../../domain/vault/secrets.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";
import { startSmtpServer } from "../_smtp.ts";

const BASE = "/v1/tenants/acme/secrets";
const LONG = "rk_live_51Hx0aExampleOnlyValue9f3c";
const SMTP = {
  host: "smtp.example.com",
  port: 587,
  secure: false,
  username: "mailer@acme.example.com",
  password: "pw-5b1f0e2a-not-shown",
  from: "Acme <no-reply@acme.example.com>",
};

async function world(opts: Parameters<typeof setup>[0] = {}) {
  const h = await setup(opts);
  const acme = await h.tenant("acme");
  const globex = await h.tenant("globex");
  return { h, acme, globex };
}

const create = (h: Harness, body: unknown, token = h.root, base = BASE) =>
  h.call("POST", base, { token, body });
const put = (h: Harness, name: string, value: unknown, headers: Record<string, string> = {}) =>
  h.call("PUT", `${BASE}/${name}`, { token: h.root, body: { value }, headers });
const reveal = (h: Harness, name: string, body: unknown, token = h.root, base = BASE) =>
  h.call("POST", `${base}/${name}/reveal`, { token, body });

/** The number of version records a secret has in the store. */
async function storedVersions(h: Harness, tenantId: string, secretId: string) {
  let n = 0;
  for await (const _ of h.kv.list({ prefix: keys.secretVersions(tenantId, secretId) })) n++;
  return n;
}

Deno.test("POST secrets: 201, version 1, value masked, sealed at rest, audited without the value", async () => {
  const { h, acme } = await world();
  await using _ = h;
  const res = await create(h, { name: "stripe-key", type: "generic", value: LONG });
  assert.equal(res.status, 201, res.text);
  const s = res.body.data;
  assert.match(s.id, /^sec_/);
  assert.equal(s.tenant_id, acme.id);
  assert.equal(s.name, "stripe-key");
  assert.equal(s.type, "generic");
  assert.equal(s.version, 1);
  assert.deepEqual(s.versions, [1]);
  assert.equal(s.value_version, 1);
  assert.equal(s.value_preview, "rk••");
  assert.equal(s.smtp, null);
  assert.equal(s.value, undefined);
  assert.equal(s.last_revealed_at, null);
  assert.equal(s.created_at, "2026-03-01T12:00:00.000Z");
  assert.equal(res.headers.get("Location"), `/v1/tenants/${acme.id}/secrets/stripe-key`);
  assert.ok(!res.text.includes(LONG));

  const got = await h.call("GET", `${BASE}/stripe-key`, { token: h.root });
  assert.equal(got.status, 200, got.text);
  assert.deepEqual(got.body.data, s);
  assert.equal(got.headers.get("ETag"), res.headers.get("ETag"));
  assert.ok((await h.kv.get(keys.tenantDataKey(acme.id))).value, "the tenant's data key seals it");
  assert.equal(await storedVersions(h, acme.id, s.id), 1);

  const [event] = await h.auditFor(s.id);
  assert.equal(event.action, "secret.created");
  assert.ok(!JSON.stringify(event).includes(LONG));
  assert.ok(!(await h.dump()).includes(LONG));
});

Deno.test("smtp secrets: the password masked, every other field in clear; `smtp` is reserved for type smtp", async () => {
  const { h } = await world();
  await using _ = h;
  const wrong = await create(h, { name: "smtp", type: "generic", value: "smtp://x" });
  assertInvalid(wrong, "type");
  const res = await create(h, { name: "smtp", type: "smtp", value: SMTP });
  assert.equal(res.status, 201, res.text);
  const { password: _pw, ...clear } = SMTP;
  assert.deepEqual(res.body.data.smtp, { ...clear, password: "••••" });
  assert.equal(res.body.data.value_preview, null);
  const got = await h.call("GET", `${BASE}/smtp`, { token: h.root });
  assert.deepEqual(got.body.data.smtp, { ...clear, password: "••••" });
  assert.ok(!got.text.includes(SMTP.password));
  // Other names may hold SMTP settings too.
  assert.equal((await create(h, { name: "smtp-backup", type: "smtp", value: SMTP })).status, 201);
  // tenantSmtp: the clear settings for the email context, or null.
  const acme = (await h.call("GET", "/v1/tenants/acme", { token: h.root })).body.data;
  assert.deepEqual(await tenantSmtp(h.svc, acme.id), SMTP);
  const globex = (await h.call("GET", "/v1/tenants/globex", { token: h.root })).body.data;
  assert.equal(await tenantSmtp(h.svc, globex.id), null);
});

Deno.test("generic previews: at most 4 characters, the first 2 only from 12 characters on", async () => {
  const { h } = await world();
  await using _ = h;
  const cases: [string, string][] = [
    ["x", "••••"],
    ["abcdefghijk", "••••"],
    ["abcdefghijkl", "ab••"],
    ["😀😀" + "z".repeat(20), "😀😀••"],
    ["line one\nline two\n-----END", "li••"],
  ];
  for (const [i, [value, preview]] of cases.entries()) {
    const res = await create(h, { name: `v${i}`, type: "generic", value });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.data.value_preview, preview, JSON.stringify(value));
    assert.ok([...res.body.data.value_preview].length <= 4);
  }
});

Deno.test("POST secrets: a taken name is 409, also in a race; Idempotency-Key replays the first answer", async () => {
  const { h } = await world();
  await using _ = h;
  const body = { name: "api", type: "generic", value: LONG };
  const headers = { "Idempotency-Key": "secret-1" };
  const first = await h.call("POST", BASE, { token: h.root, body, headers });
  assert.equal(first.status, 201, first.text);
  const again = await h.call("POST", BASE, { token: h.root, body, headers });
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("Idempotent-Replayed"), "true");
  assert.equal(again.body.data.id, first.body.data.id);
  const other = await h.call("POST", BASE, {
    token: h.root,
    body: { ...body, value: "another value entirely" },
    headers,
  });
  assertError(other, 422, "UNPROCESSABLE");
  const clash = await create(h, body);
  assertError(clash, 409, "CONFLICT");
  assert.match(clash.body.error.message, /PUT/);
  // Two creations of one name at once: one wins, the other is told.
  const racing = await Promise.all(
    ["first racer", "second racer"].map((value) =>
      create(h, { name: "race", type: "generic", value })
    ),
  );
  assert.deepEqual(racing.map((r) => r.status).sort(), [201, 409]);
  const list = await h.call("GET", BASE, { token: h.root });
  assert.equal(list.body.pagination.total, 2);
});

Deno.test("secrets: bad input is 400 naming the field, and writes nothing", async () => {
  const { h } = await world();
  await using _ = h;
  assert.equal((await create(h, { name: "smtp", type: "smtp", value: SMTP })).status, 201);
  assert.equal((await create(h, { name: "api", type: "generic", value: LONG })).status, 201);
  const before = await h.dump();
  for (const name of ["", "Upper", "-dash", "a/b", "a b", "x".repeat(65), "ü"]) {
    assertInvalid(await create(h, { name, type: "generic", value: LONG }), "json.name");
  }
  assertInvalid(await create(h, { name: "x", value: LONG }), "json.type");
  assertInvalid(await create(h, { name: "x", type: "ssh", value: LONG }), "json.type");
  assertInvalid(await create(h, { name: "x", type: "generic", value: "" }), "json.value");
  assertInvalid(await create(h, { name: "x", type: "generic", value: 42 }), "json.value");
  assertInvalid(
    await create(h, { name: "x", type: "generic", value: "y".repeat(8193) }),
    "json.value",
  );
  assertInvalid(await create(h, { name: "x", type: "generic", value: LONG, extra: 1 }));
  const smtp = (value: unknown) => create(h, { name: "mail", type: "smtp", value });
  const { password: _password, ...noPassword } = SMTP;
  assertInvalid(await smtp(noPassword), "json.value.password");
  assertInvalid(await smtp({ ...SMTP, port: 0 }), "json.value.port");
  assertInvalid(await smtp({ ...SMTP, port: 65536 }), "json.value.port");
  assertInvalid(await smtp({ ...SMTP, host: "bad host!" }), "json.value.host");
  assertInvalid(await smtp({ ...SMTP, from: "not an address" }), "json.value.from");
  assertInvalid(await smtp({ ...SMTP, username: "a\nb" }), "json.value.username");
  assertInvalid(await smtp({ ...SMTP, secure: "yes" }), "json.value.secure");
  assertInvalid(await smtp(LONG), "json.value");
  // A new version keeps the secret's type.
  assertInvalid(await put(h, "smtp", "a string"), "value");
  assertInvalid(await put(h, "api", SMTP), "value");
  assertInvalid(await h.call("PUT", `${BASE}/smtp`, { token: h.root, body: {} }), "json.value");
  // A reveal says why, in 3 to 500 characters.
  for (const body of [{}, { reason: "" }, { reason: "  ok  " }, { reason: "x".repeat(501) }]) {
    assertInvalid(await reveal(h, "api", body), "json.reason");
  }
  assertInvalid(await reveal(h, "api", { reason: "audit", version: 0 }), "json.version");
  assertInvalid(await h.call("GET", `${BASE}/api?version=x`, { token: h.root }), "query.version");
  assertInvalid(await h.call("GET", `${BASE}?type=ssh`, { token: h.root }), "query.type");
  assertInvalid(await h.call("GET", "/v1/admin/secrets?tenant_id=acme", { token: h.root }));
  assert.equal(await h.dump(), before);
});

Deno.test("PUT secrets: a new version each time, the last 5 kept; ?version= reads an older one", async () => {
  const { h, acme } = await world();
  await using _ = h;
  const first = await create(h, { name: "api", type: "generic", value: "value number 1 ..." });
  const id = first.body.data.id;
  let etag = first.headers.get("ETag")!;
  for (let n = 2; n <= 7; n++) {
    h.advance(1_000);
    const res = await put(h, "api", `value number ${n} ...`, { "If-Match": etag });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.version, n);
    assert.equal(res.body.data.value_version, n);
    assert.notEqual(res.headers.get("ETag"), etag);
    etag = res.headers.get("ETag")!;
  }
  const got = await h.call("GET", `${BASE}/api`, { token: h.root });
  assert.equal(got.body.data.version, 7);
  assert.deepEqual(got.body.data.versions, [7, 6, 5, 4, 3]);
  assert.equal(got.body.data.created_at, "2026-03-01T12:00:00.000Z");
  assert.equal(got.body.data.updated_at, "2026-03-01T12:00:06.000Z");
  assert.equal(await storedVersions(h, acme.id, id), 5);

  const old = await h.call("GET", `${BASE}/api?version=3`, { token: h.root });
  assert.equal(old.status, 200, old.text);
  assert.equal(old.body.data.version, 7);
  assert.equal(old.body.data.value_version, 3);
  assert.equal(old.body.data.value_created_at, "2026-03-01T12:00:02.000Z");
  for (const gone of [1, 2, 8]) {
    assertError(
      await h.call("GET", `${BASE}/api?version=${gone}`, { token: h.root }),
      404,
      "NOT_FOUND",
    );
    assertError(await reveal(h, "api", { reason: "audit", version: gone }), 404, "NOT_FOUND");
  }
  const three = await reveal(h, "api", { reason: "compare versions", version: 3 });
  assert.equal(three.body.data.value, "value number 3 ...");

  // A stale If-Match is 412 and writes nothing; a missing secret is 404.
  const stale = await put(h, "api", "late", { "If-Match": first.headers.get("ETag")! });
  assertError(stale, 412, "PRECONDITION_FAILED");
  assertError(await put(h, "nope", "x"), 404, "NOT_FOUND");
  const [event] = (await h.auditFor(id)).filter((e) => e.action === "secret.updated");
  assert.deepEqual(event.changes?.version, { before: 6, after: 7 });
});

Deno.test("PUT secrets: concurrent writes each get their own version", async () => {
  const { h } = await world();
  await using _ = h;
  await create(h, { name: "api", type: "generic", value: "v1 value here" });
  const answers = await Promise.all([2, 3, 4].map((n) => put(h, "api", `v${n} value here`)));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
  assert.deepEqual(answers.map((a) => a.body.data.version).sort(), [2, 3, 4]);
  const got = await h.call("GET", `${BASE}/api`, { token: h.root });
  assert.deepEqual(got.body.data.versions, [4, 3, 2, 1]);
});

Deno.test("reveal: the clear value, audited with reason, caller and version; last_revealed_at set", async () => {
  const { h } = await world();
  await using _ = h;
  const created = await create(h, { name: "smtp", type: "smtp", value: SMTP });
  await put(h, "smtp", { ...SMTP, password: "the second password" });
  const boss = await h.user("super_admin");
  h.advance(60_000);
  const res = await reveal(h, "smtp", { reason: "  moving to a new relay  " }, boss.token);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.data.value, { ...SMTP, password: "the second password" });
  assert.equal(res.body.data.value_version, 2);
  assert.equal(res.body.data.last_revealed_at, "2026-03-01T12:01:00.000Z");
  const old = await reveal(h, "smtp", { reason: "what was it before?", version: 1 }, boss.token);
  assert.equal(old.body.data.value.password, SMTP.password);

  const reveals = (await h.auditFor(created.body.data.id)).filter((e) =>
    e.action === "secret.revealed"
  );
  assert.equal(reveals.length, 2);
  const [second, first] = reveals;
  assert.equal(first.actor_id, boss.id);
  assert.deepEqual(first.changes?.reason, { before: null, after: "moving to a new relay" });
  assert.deepEqual(first.changes?.version, { before: null, after: 2 });
  assert.deepEqual(second.changes?.version, { before: null, after: 1 });
  assert.ok(!JSON.stringify(reveals).includes("the second password"));
  const got = await h.call("GET", `${BASE}/smtp`, { token: h.root });
  assert.equal(got.body.data.last_revealed_at, "2026-03-01T12:01:00.000Z");
  assertError(await reveal(h, "nope", { reason: "audit" }), 404, "NOT_FOUND");

  // A reveal's answer is never kept for replay: the same Idempotency-Key reveals (and audits) again.
  const again = (key: string) =>
    h.call("POST", `${BASE}/smtp/reveal`, {
      token: boss.token,
      body: { reason: "retried reveal" },
      headers: { "Idempotency-Key": key },
    });
  const [one, two] = [await again("reveal-1"), await again("reveal-1")];
  assert.equal(two.status, 200, two.text);
  assert.equal(two.headers.get("Idempotent-Replayed"), null);
  assert.notEqual(one.headers.get("X-Request-Id"), two.headers.get("X-Request-Id"));
  const audited = (await h.auditFor(created.body.data.id)).filter((e) =>
    e.action === "secret.revealed"
  );
  assert.equal(audited.length, 4);
});

Deno.test("reveal: needs vault:reveal (super admins; a token granted it, in its own tenant)", async () => {
  const { h, acme, globex } = await world();
  await using _ = h;
  await create(h, { name: "api", type: "generic", value: LONG });
  await create(
    h,
    { name: "api", type: "generic", value: LONG },
    h.root,
    "/v1/tenants/globex/secrets",
  );
  const body = { reason: "rotating the key" };
  for (const role of ["admin", "support", "ops", "finance"] as const) {
    const staff = await h.user(role);
    assertError(await reveal(h, "api", body, staff.token), 403, "FORBIDDEN");
  }
  for (const role of ["owner", "admin"] as const) {
    const member = await memberOf(h, acme.id, role);
    assertError(await reveal(h, "api", body, member.token), 403, "FORBIDDEN");
    // The same member reads metadata and masked values.
    assert.equal((await h.call("GET", `${BASE}/api`, { token: member.token })).status, 200);
  }
  const stranger = await h.user(null);
  assertError(await reveal(h, "api", body, stranger.token), 404, "NOT_FOUND");
  const boss = await h.user("super_admin");
  assert.equal((await reveal(h, "api", body, boss.token)).status, 200);

  const bound = await h.serviceToken(["secrets:read", "vault:reveal"], acme.id);
  const mine = await reveal(h, "api", body, bound.token);
  assert.equal(mine.status, 200, mine.text);
  assert.equal(mine.body.data.value, LONG);
  const theirs = await reveal(h, "api", body, bound.token, "/v1/tenants/globex/secrets");
  assertError(theirs, 404, "NOT_FOUND");
  const readOnly = await h.serviceToken(["secrets:read"], acme.id);
  assertError(await reveal(h, "api", body, readOnly.token), 403, "FORBIDDEN");
  assert.ok(globex.id);
});

Deno.test("secrets: 401 without credentials; roles and tenants (403, 404)", async () => {
  const { h, acme, globex } = await world();
  await using _ = h;
  await create(h, { name: "api", type: "generic", value: LONG });
  const calls: [string, string, unknown?][] = [
    ["GET", BASE],
    ["POST", BASE, { name: "x", type: "generic", value: "y" }],
    ["GET", `${BASE}/api`],
    ["PUT", `${BASE}/api`, { value: "y" }],
    ["DELETE", `${BASE}/api`],
    ["POST", `${BASE}/api/reveal`, { reason: "why not" }],
    ["POST", `${BASE}/smtp/test`, {}],
    ["GET", "/v1/admin/secrets"],
  ];
  for (const [method, path, body] of calls) {
    assertError(await h.call(method, path, { body }), 401, "UNAUTHORIZED");
  }
  const viewer = await memberOf(h, acme.id, "viewer");
  const owner = await memberOf(h, acme.id, "owner");
  const other = await memberOf(h, globex.id, "owner");
  const globexToken = await h.serviceToken(["secrets:read", "secrets:write"], globex.id);
  for (const [method, path, body] of calls.slice(0, 5)) {
    assertError(await h.call(method, path, { token: viewer.token, body }), 403, "FORBIDDEN");
    assertError(await h.call(method, path, { token: other.token, body }), 404, "NOT_FOUND");
    assertError(await h.call(method, path, { token: globexToken.token, body }), 404, "NOT_FOUND");
  }
  // Owners keep their tenant's secrets, but not the platform's list.
  assert.equal(
    (await create(h, { name: "own", type: "generic", value: "v" }, owner.token)).status,
    201,
  );
  assert.equal((await h.call("GET", BASE, { token: owner.token })).body.pagination.total, 2);
  assertError(await h.call("GET", "/v1/admin/secrets", { token: owner.token }), 403, "FORBIDDEN");
  assertError(
    await h.call("GET", "/v1/admin/secrets", { token: globexToken.token }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("support staff see names and metadata only", async () => {
  const { h } = await world();
  await using _ = h;
  await create(h, { name: "smtp", type: "smtp", value: SMTP });
  await create(h, { name: "api", type: "generic", value: LONG });
  const support = await h.user("support");
  for (const name of ["smtp", "api"]) {
    const got = await h.call("GET", `${BASE}/${name}`, { token: support.token });
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.data.name, name);
    assert.equal(got.body.data.value_preview, null);
    assert.equal(got.body.data.smtp, null);
    assert.ok(!got.text.includes(SMTP.host) && !got.text.includes("rk••"));
  }
  const list = await h.call("GET", BASE, { token: support.token });
  assert.deepEqual(list.body.data.map((s: { name: string }) => s.name), ["api", "smtp"]);
  const all = await h.call("GET", "/v1/admin/secrets", { token: support.token });
  assert.equal(all.body.pagination.total, 2);
  assertError(
    await create(h, { name: "x", type: "generic", value: "y" }, support.token),
    403,
    "FORBIDDEN",
  );
});

Deno.test("DELETE secrets: every version goes, audited; If-Match; the name is free again", async () => {
  const { h, acme } = await world();
  await using _ = h;
  const created = await create(h, { name: "api", type: "generic", value: LONG });
  const id = created.body.data.id;
  for (let n = 2; n <= 3; n++) await put(h, "api", `${LONG}-${n}`);
  const stale = await h.call("DELETE", `${BASE}/api`, {
    token: h.root,
    headers: { "If-Match": created.headers.get("ETag")! },
  });
  assertError(stale, 412, "PRECONDITION_FAILED");
  const current = await h.call("GET", `${BASE}/api`, { token: h.root });
  const res = await h.call("DELETE", `${BASE}/api`, {
    token: h.root,
    headers: { "If-Match": current.headers.get("ETag")! },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.version, 3);
  assert.equal(await storedVersions(h, acme.id, id), 0);
  assert.equal((await h.kv.get(keys.secret(acme.id, id))).value, null);
  assertError(await h.call("GET", `${BASE}/api`, { token: h.root }), 404, "NOT_FOUND");
  assertError(await h.call("DELETE", `${BASE}/api`, { token: h.root }), 404, "NOT_FOUND");
  const [event] = await h.auditFor(id);
  assert.equal(event.action, "secret.deleted");
  const list = await h.call("GET", BASE, { token: h.root });
  assert.equal(list.body.pagination.total, 0);
  const again = await create(h, { name: "api", type: "generic", value: LONG });
  assert.equal(again.status, 201);
  assert.notEqual(again.body.data.id, id);
  assert.equal(again.body.data.version, 1);
});

Deno.test("deleting a tenant deletes its secrets, every version", async () => {
  const { h, acme, globex } = await world();
  await using _ = h;
  await create(h, { name: "smtp", type: "smtp", value: SMTP });
  await create(h, { name: "api", type: "generic", value: LONG });
  await put(h, "api", `${LONG}-2`);
  await create(
    h,
    { name: "api", type: "generic", value: LONG },
    h.root,
    "/v1/tenants/globex/secrets",
  );
  assert.equal((await h.call("DELETE", "/v1/tenants/acme", { token: h.root })).status, 200);
  await h.runJobs();
  for (
    const prefix of [
      keys.secrets(acme.id),
      keys.tenantSecretVersions(acme.id),
      keys.tenantSecretIndexes(acme.id),
      ["t", acme.id, "secret_names"],
    ]
  ) {
    assert.equal((await Array.fromAsync(h.kv.list({ prefix }))).length, 0, JSON.stringify(prefix));
  }
  const all = await h.call("GET", "/v1/admin/secrets", { token: h.root });
  assert.equal(all.body.pagination.total, 1);
  assert.equal(all.body.data[0].tenant_id, globex.id);
  const deleted = await h.call(
    "GET",
    `/v1/admin/audit?tenant_id=${acme.id}&action=secret.deleted`,
    {
      token: h.root,
    },
  );
  assert.equal(deleted.status, 200, deleted.text);
  assert.equal(deleted.body.data.length, 2);
  assert.ok(deleted.body.data.every((e: { actor_id: string }) => e.actor_id === "system"));
});

Deno.test("GET /v1/admin/secrets: every tenant's metadata, filtered by tenant and type, paged with a total", async () => {
  const { h, acme, globex } = await world();
  await using _ = h;
  await create(h, { name: "smtp", type: "smtp", value: SMTP });
  await create(h, { name: "api", type: "generic", value: LONG });
  await create(
    h,
    { name: "api", type: "generic", value: LONG },
    h.root,
    "/v1/tenants/globex/secrets",
  );
  await reveal(h, "api", { reason: "checking it" });
  const list = (query = "") => h.call("GET", `/v1/admin/secrets${query}`, { token: h.root });
  const all = await list();
  assert.equal(all.status, 200, all.text);
  assert.equal(all.body.pagination.total, 3);
  const item = all.body.data.find((s: { tenant_id: string; name: string }) =>
    s.tenant_id === acme.id && s.name === "api"
  );
  assert.equal(item.type, "generic");
  assert.equal(item.version, 1);
  assert.equal(item.last_revealed_at, "2026-03-01T12:00:00.000Z");
  assert.equal(item.value_preview, undefined);
  assert.ok(!all.text.includes(SMTP.host));

  const ofAcme = await list(`?tenant_id=${acme.id}`);
  assert.deepEqual(ofAcme.body.data.map((s: { name: string }) => s.name), ["api", "smtp"]);
  assert.equal(ofAcme.body.pagination.total, 2);
  const generic = await list("?type=generic");
  assert.equal(generic.body.pagination.total, 2);
  assert.ok(generic.body.data.every((s: { type: string }) => s.type === "generic"));
  const both = await list(`?type=smtp&tenant_id=${globex.id}`);
  assert.equal(both.body.pagination.total, 0);

  const page1 = await list("?limit=2");
  assert.equal(page1.body.data.length, 2);
  assert.equal(page1.body.pagination.has_more, true);
  const page2 = await list(
    `?limit=2&cursor=${encodeURIComponent(page1.body.pagination.next_cursor)}`,
  );
  assert.equal(page2.body.data.length, 1);
  const byOffset = await list("?limit=2&offset=2");
  assert.deepEqual(byOffset.body.data, page2.body.data);
  assert.equal(byOffset.body.pagination.total, 3);
});

Deno.test("POST …/secrets/smtp/test: a message through the tenant's SMTP server, or its error", async () => {
  await using server = await startSmtpServer({ user: "acme-mailer", pass: "s3cret-smtp" });
  const { h, acme } = await world({ allowPrivateUrls: true });
  await using _ = h;
  const test = (body?: unknown, token = h.root) =>
    h.call("POST", `${BASE}/smtp/test`, { token, body });
  assertError(await test({ to: "ops@acme.example.com" }), 409, "CONFLICT");
  const settings = {
    host: "127.0.0.1",
    port: server.port,
    secure: false,
    username: "acme-mailer",
    password: "s3cret-smtp",
    from: "Acme <no-reply@acme.example.com>",
  };
  await create(h, { name: "smtp", type: "smtp", value: settings });
  const sent = await test({ to: "ops@acme.example.com" });
  assert.equal(sent.status, 200, sent.text);
  assert.equal(sent.body.data.sent, true, sent.text);
  assert.match(sent.body.data.response, /^250\b/);
  assert.equal(sent.body.data.error, null);
  const [mail] = await server.waitFor(1);
  assert.deepEqual(mail.to, ["ops@acme.example.com"]);
  assert.equal(mail.envelope.from, "no-reply@acme.example.com");
  assert.equal(mail.user, "acme-mailer");
  assert.match(mail.subject, /test message/);

  // Without a body it goes to the sender's own address.
  assert.equal((await test()).body.data.to, "no-reply@acme.example.com");
  await server.waitFor(2);

  // The server's refusal is the answer, not an error of the API.
  await put(h, "smtp", { ...settings, password: "wrong" });
  const refused = await test({ to: "ops@acme.example.com" });
  assert.equal(refused.status, 200);
  assert.equal(refused.body.data.sent, false);
  assert.match(refused.body.data.error, /535/);
  assert.ok(!refused.text.includes('wrong"'));

  const viewer = await memberOf(h, acme.id, "viewer");
  assertError(await test({}, viewer.token), 403, "FORBIDDEN");
  assertInvalid(await test({ to: "not an email" }), "json.to");
});

Deno.test("POST …/secrets/smtp/test: a host on a private address is refused, not connected to", async () => {
  const { h } = await world();
  await using _ = h;
  await create(h, { name: "smtp", type: "smtp", value: { ...SMTP, host: "127.0.0.1", port: 25 } });
  const res = await h.call("POST", `${BASE}/smtp/test`, { token: h.root, body: {} });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.sent, false);
  assert.match(res.body.data.error, /^host must not point at a .* address$/);
  await put(h, "smtp", SMTP);
  const unresolved = await h.call("POST", `${BASE}/smtp/test`, { token: h.root, body: {} });
  assert.match(unresolved.body.data.error, /does not resolve/);
});

Deno.test("a sealed vault: what needs a value is 503; metadata still reads", async () => {
  const { h } = await world();
  await using _ = h;
  await create(h, { name: "api", type: "generic", value: LONG });
  h.svc.vault = new Vault(null);
  assertError(await create(h, { name: "x", type: "generic", value: "y" }), 503, "UNAVAILABLE");
  assertError(await put(h, "api", "y"), 503, "UNAVAILABLE");
  assertError(await h.call("GET", `${BASE}/api`, { token: h.root }), 503, "UNAVAILABLE");
  assertError(await reveal(h, "api", { reason: "needed" }), 503, "UNAVAILABLE");
  const support = await h.user("support");
  assert.equal((await h.call("GET", `${BASE}/api`, { token: support.token })).status, 200);
  assert.equal((await h.call("GET", BASE, { token: h.root })).status, 200);
  assert.equal((await h.call("DELETE", `${BASE}/api`, { token: h.root })).status, 200);
});

Deno.test("store scan: no secret value in clear anywhere after create, update and reveal", async () => {
  const { h } = await world();
  await using _ = h;
  // A tenant webhook endpoint, so the secrets' events become delivered payloads and jobs too.
  const hook = await h.call("POST", "/v1/tenants/acme/webhooks", {
    token: h.root,
    body: { url: "https://hooks.example.com/steward" },
  });
  assert.equal(hook.status, 201, hook.text);
  const values = [LONG, `${LONG}-second`, SMTP.password, "pw-rotated-9c1d", SMTP.username];
  await create(h, { name: "api", type: "generic", value: LONG }, h.root);
  await put(h, "api", `${LONG}-second`);
  await create(h, { name: "smtp", type: "smtp", value: SMTP });
  await put(h, "smtp", { ...SMTP, password: "pw-rotated-9c1d" });
  for (const [name, version] of [["api", 1], ["api", 2], ["smtp", 1], ["smtp", 2]] as const) {
    const res = await h.call("POST", `${BASE}/${name}/reveal`, {
      token: h.root,
      body: { reason: "store scan", version },
      headers: { "Idempotency-Key": `scan-${name}-${version}` },
    });
    assert.equal(res.status, 200, res.text);
  }
  await h.runJobs();
  await h.svc.aggregator.flush();
  const dump = await h.dump();
  for (const value of values) assert.ok(!dump.includes(value), `${value} is in the store`);
  assert.match(dump, /"secret_versions"/);
});

Deno.test("sealedSecretVersions: every kept version of a tenant, with the AAD that opens it", async () => {
  const { h, acme } = await world();
  await using _ = h;
  await create(h, { name: "api", type: "generic", value: "first value" });
  await put(h, "api", "second value");
  await create(h, { name: "smtp", type: "smtp", value: SMTP });
  await create(
    h,
    { name: "api", type: "generic", value: "globex" },
    h.root,
    "/v1/tenants/globex/secrets",
  );
  const opened: unknown[] = [];
  for await (const { entry, fields: [field] } of sealedSecretVersions(h.kv, acme.id)) {
    assert.deepEqual(field.sealed, entry.value.sealed);
    assert.ok(entry.versionstamp);
    const plain = await h.svc.vault.open(h.kv, acme.id, field.sealed, field.aad);
    opened.push(JSON.parse(new TextDecoder().decode(plain)));
    // Bound to its record: another version's AAD does not open it.
    await assert.rejects(
      h.svc.vault.open(h.kv, acme.id, field.sealed, field.aad.replace(/\d+$/, "99")),
    );
  }
  assert.equal(opened.length, 3);
  assert.ok(opened.includes("first value") && opened.includes("second value"));
  assert.ok(opened.some((o) => JSON.stringify(o) === JSON.stringify(SMTP)));
});

Deno.test("catalog: the secret events have the fields the catalog's examples show", async () => {
  const { h } = await world();
  await using _ = h;
  await create(h, { name: "api", type: "generic", value: LONG });
  await put(h, "api", `${LONG}-2`);
  await reveal(h, "api", { reason: "catalog check" });
  await h.call("DELETE", `${BASE}/api`, { token: h.root });
  const examples = new Map(EVENT_CATALOG.map((e) => [e.type, e.example]));
  const seen = new Set<string>();
  for await (const { value: event } of h.kv.list<DomainEvent>({ prefix: keys.events() })) {
    if (!event.type.startsWith("secret.")) continue;
    assert.deepEqual(
      Object.keys(event.data).sort(),
      Object.keys(examples.get(event.type) ?? {}).sort(),
      event.type,
    );
    seen.add(event.type);
  }
  assert.deepEqual(
    [...seen].sort(),
    ["secret.created", "secret.deleted", "secret.revealed", "secret.updated"],
  );
});
