/**
 * Signing keys, the JWKS and POST /v1/tokens: rotation with grace, retirement by time and by
 * the cron, private keys sealed (never in clear in KV; a ciphertext moved to another record
 * does not open), and JWTs that an independent JOSE library verifies against the JWKS — until
 * the key that signed them is retired.
 */
import assert from "node:assert/strict";
import { createLocalJWKSet, jwtVerify } from "jose";
import { relocateSigningKeys } from "../../domain/keys/signing_keys.ts";
import { MAINTENANCE_TASKS } from "../../domain/platform/maintenance.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

async function projectWithKey(h: Harness) {
  const t = await h.tenant("acme");
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    token: h.root,
    body: { name: "App" },
  });
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live", project_id: project.body.data.id, scopes: ["read"] },
  });
  return { tenant: t, projectId: project.body.data.id as string, key: key.body.data.key as string };
}

const keysPath = (projectId: string) => `/v1/tenants/acme/projects/${projectId}/signing-keys`;
const token = (h: Harness, key: string, ttl_seconds?: number) =>
  h.call("POST", "/v1/tokens", { token: h.root, body: { key, ttl_seconds } });
const jwks = async (h: Harness, projectId: string) =>
  (await h.call("GET", `/v1/projects/${projectId}/jwks.json`)).body;

/** jose checks `exp` against the real clock: give it the harness's. */
const at = (h: Harness) => ({ currentDate: new Date(h.clock.now) });

Deno.test("tokens: a JWT from /v1/tokens verifies with jose against /jwks.json; claims as documented", async () => {
  await using h = await setup();
  const { tenant, projectId, key } = await projectWithKey(h);
  const res = await token(h, key, 600);
  assert.equal(res.status, 200, res.text);
  const set = await jwks(h, projectId);
  assert.equal(set.keys.length, 1);
  assert.equal(set.keys[0].kid, res.body.data.kid);
  const { payload, protectedHeader } = await jwtVerify(
    res.body.data.token,
    createLocalJWKSet(set),
    at(h),
  );
  assert.equal(protectedHeader.alg, "ES256");
  assert.equal(protectedHeader.kid, res.body.data.kid);
  assert.equal(payload.tid, tenant.id);
  assert.equal(payload.pid, projectId);
  assert.deepEqual(payload.scopes, ["read"]);
  assert.equal(payload.plan, "free");
  assert.match(String(payload.sub), /^key_/);
  assert.equal(payload.exp! - payload.iat!, 600);
  assert.equal(res.body.data.expires_at, new Date((payload.exp as number) * 1000).toISOString());
  const jwksRes = await h.call("GET", `/v1/projects/${projectId}/jwks.json`);
  assert.equal(jwksRes.headers.get("Cache-Control"), "public, max-age=300");
  assert.equal(jwksRes.body.success, undefined, "the raw JWKS, not the envelope");
});

Deno.test("signing keys: rotation keeps the old key published for the grace, then retires it", async () => {
  await using h = await setup();
  const { projectId, key } = await projectWithKey(h);
  const before = await token(h, key);
  const rotated = await h.call("POST", `${keysPath(projectId)}/rotate`, {
    token: h.root,
    body: { grace_seconds: 3600 },
  });
  assert.equal(rotated.status, 201, rotated.text);
  assert.notEqual(rotated.body.data.kid, before.body.data.kid);
  const listed = await h.call("GET", keysPath(projectId), { token: h.root });
  assert.deepEqual(listed.body.data.map((k: { status: string }) => k.status), [
    "active",
    "retiring",
  ]);
  assert.ok(!JSON.stringify(listed.body).includes("private"));
  // Both published: the old token still verifies, a new one is signed by the new key.
  await jwtVerify(before.body.data.token, createLocalJWKSet(await jwks(h, projectId)), at(h));
  const after = await token(h, key);
  assert.equal(after.body.data.kid, rotated.body.data.kid);
  assert.equal((await jwks(h, projectId)).keys.length, 2);
  // Grace over: the old key reads retired and leaves the JWKS; its tokens fail.
  h.advance(3600_000);
  assert.deepEqual((await jwks(h, projectId)).keys.map((k: { kid: string }) => k.kid), [
    rotated.body.data.kid,
  ]);
  await assert.rejects(
    jwtVerify(before.body.data.token, createLocalJWKSet(await jwks(h, projectId)), at(h)),
  );
  const fresh = await token(h, key);
  await jwtVerify(fresh.body.data.token, createLocalJWKSet(await jwks(h, projectId)), at(h));
  const task = MAINTENANCE_TASKS.find((t) => t.name === "retire-signing-keys")!;
  assert.deepEqual(await task.run(h.svc), { signing_keys_retired: 1 });
  assert.deepEqual(await task.run(h.svc), { signing_keys_retired: 0 });
  const stored = await h.call("GET", keysPath(projectId), { token: h.root });
  assert.equal(stored.body.data[1].status, "retired");
  assert.equal((await h.auditFor(projectId))[0].action, "signing_key.rotated");
});

Deno.test("signing keys: private keys are sealed — never in clear in KV, and bound to their record", async () => {
  await using h = await setup();
  const { tenant, projectId, key } = await projectWithKey(h);
  await token(h, key);
  await h.call("POST", `${keysPath(projectId)}/rotate`, { token: h.root });
  const stored = [];
  for await (
    const e of h.kv.list<{ private_sealed: { iv: string; data: string }; kid: string }>({
      prefix: keys.signingKeys(tenant.id, projectId),
    })
  ) stored.push(e.value);
  assert.equal(stored.length, 2);
  const dump = await h.dump();
  assert.doesNotMatch(dump, /"d":"/, "no private JWK member in clear");
  // A sealed key opens under its own record's AAD only.
  const [first, second] = stored;
  const open = (sealed: typeof first.private_sealed, kid: string) =>
    h.svc.vault.open(h.kv, tenant.id, sealed, `signing_key:${kid}`);
  assert.ok((await open(first.private_sealed, first.kid)).length > 0);
  await assert.rejects(open(first.private_sealed, second.kid), /did not open/);
  // Another master key opens nothing.
  const other = new Vault(crypto.getRandomValues(new Uint8Array(32)));
  await assert.rejects(
    other.open(h.kv, tenant.id, first.private_sealed, `signing_key:${first.kid}`),
  );
});

Deno.test("tokens: a key that is not VALID or has no project is 422; bad input 400; 401; 403", async () => {
  await using h = await setup();
  const { key } = await projectWithKey(h);
  const plain = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "no project", environment: "live" },
  });
  const noProject = await token(h, plain.body.data.key);
  assertError(noProject, 422, "UNPROCESSABLE");
  assert.match(noProject.body.error.message, /no project/);
  const unknown = await token(h, "sk_live_" + "A".repeat(30));
  assertError(unknown, 422, "UNPROCESSABLE");
  assert.equal(unknown.body.error.details.code, "NOT_FOUND");
  assertInvalid(await token(h, key, 3601), "json.ttl_seconds");
  assertInvalid(await h.call("POST", "/v1/tokens", { token: h.root, body: {} }), "json.key");
  assertError(await h.call("POST", "/v1/tokens", { body: { key } }), 401, "UNAUTHORIZED");
  const reader = await h.serviceToken(["keys:read"]);
  assertError(await token({ ...h, root: reader.token } as Harness, key), 403, "FORBIDDEN");
});

Deno.test("signing keys: roles, tenants and validation; the JWKS of an unknown project is 404", async () => {
  await using h = await setup();
  const { tenant, projectId } = await projectWithKey(h);
  const g = await h.tenant("globex");
  const viewer = await memberOf(h, tenant.id, "viewer");
  const member = await memberOf(h, tenant.id, "member");
  const stranger = await memberOf(h, g.id, "owner");
  assert.equal((await h.call("GET", keysPath(projectId), { token: viewer.token })).status, 200);
  assertError(
    await h.call("POST", `${keysPath(projectId)}/rotate`, { token: viewer.token }),
    403,
    "FORBIDDEN",
  );
  assert.equal(
    (await h.call("POST", `${keysPath(projectId)}/rotate`, { token: member.token })).status,
    201,
  );
  assertError(
    await h.call("GET", keysPath(projectId), { token: stranger.token }),
    404,
    "NOT_FOUND",
  );
  assertError(
    await h.call("GET", `/v1/tenants/globex/projects/${projectId}/signing-keys`, {
      token: stranger.token,
    }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(
    await h.call("POST", `${keysPath(projectId)}/rotate`, {
      token: h.root,
      body: { grace_seconds: 8 * 86_400 },
    }),
    "json.grace_seconds",
  );
  assertError(await h.call("GET", keysPath(projectId)), 401, "UNAUTHORIZED");
  assertError(
    await h.call("GET", "/v1/projects/prj_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A/jwks.json"),
    404,
    "NOT_FOUND",
  );
  const headers = { "Idempotency-Key": "rotate-sig-1" };
  const r1 = await h.call("POST", `${keysPath(projectId)}/rotate`, { token: h.root, headers });
  const r2 = await h.call("POST", `${keysPath(projectId)}/rotate`, { token: h.root, headers });
  assert.equal(r2.headers.get("Idempotent-Replayed"), "true");
  assert.equal(r2.body.data.kid, r1.body.data.kid);
});

Deno.test("vault: closed without a master key — signing answers 503 and says why", async () => {
  await using h = await setup();
  const { key } = await projectWithKey(h);
  h.svc.vault = new Vault(null);
  const res = await token(h, key);
  assertError(res, 503, "UNAVAILABLE");
  assert.match(res.body.error.message, /STEWARD_MASTER_KEY/);
});

Deno.test("signing keys: the project list holds projects only, after rotations (leak regression)", async () => {
  await using h = await setup();
  const { projectId } = await projectWithKey(h);
  await h.call("POST", `${keysPath(projectId)}/rotate`, { token: h.root });
  await h.call("POST", `${keysPath(projectId)}/rotate`, { token: h.root });
  const { token: reader } = await h.serviceToken(["projects:read"]);
  const list = await h.call("GET", "/v1/tenants/acme/projects", { token: reader });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.data.map((p: { id: string }) => p.id), [projectId]);
  assert.equal(list.body.pagination.total, 1);
  assert.doesNotMatch(list.text, /private_sealed|"kid"/);
});

Deno.test("signing keys: keys left under the project by the old layout move to their family once", async () => {
  await using h = await setup();
  const { tenant, projectId, key } = await projectWithKey(h);
  const issued = await token(h, key);
  // Put the store back as the old layout left it.
  for await (const e of h.kv.list({ prefix: keys.signingKeys(tenant.id, projectId) })) {
    const kid = e.key.at(-1) as string;
    await h.kv.atomic().delete(e.key).set(
      [...keys.legacySigningKeys(tenant.id, projectId), kid],
      e.value,
    )
      .commit();
  }
  assert.equal(await relocateSigningKeys(h.svc), 1);
  assert.equal(await relocateSigningKeys(h.svc), 0, "runs once");
  const set = await jwks(h, projectId);
  assert.equal(set.keys[0].kid, issued.body.data.kid);
  await jwtVerify(issued.body.data.token, createLocalJWKSet(set), at(h));
  const list = await h.call("GET", "/v1/tenants/acme/projects", { token: h.root });
  assert.equal(list.body.data.length, 1);
});
