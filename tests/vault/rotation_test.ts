/**
 * Data key rotation (domain/platform/vault_rotation.ts): a tenant's key or every key, as a job in
 * steps; every sealed value (signing keys, webhook secrets, tenant secrets, mail bodies) reads
 * before, during and after, also across a crash mid-job; the old keys are destroyed at the end.
 * Master key rotation: re-wrap with the previous key given, then start without it.
 */
import assert from "node:assert/strict";
import { createLocalJWKSet, jwtVerify } from "jose";
import { JOB_HANDLERS } from "../../domain/platform/job_handlers.ts";
import { VAULT_ROTATE_JOB } from "../../domain/jobs/names.ts";
import { rewrapAll, rotateJob, SETTLE_MS } from "../../domain/platform/vault_rotation.ts";
import { openSecrets, type WebhookEndpoint } from "../../domain/webhooks/endpoints.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { keys } from "../../kv/keys.ts";
import { assertError } from "../_assert.ts";
import { type Harness, setup } from "../_harness.ts";
import { createHook, HOOK_URL } from "../_webhooks.ts";

interface World {
  tenantId: string;
  projectId: string;
  apiKey: string;
  hooks: { id: string; tenant: string | null; secret: string }[];
  emailId: string;
}

/** A tenant with a signing key, webhook endpoints (its own and the platform's) and a mail body. */
async function world(h: Harness): Promise<World> {
  const t = await h.tenant("acme");
  const as = { token: h.root };
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    ...as,
    body: { name: "App" },
  });
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    ...as,
    body: { name: "k", environment: "live", project_id: project.body.data.id },
  });
  const hooks = [];
  for (
    const [base, tenant] of [["/v1/tenants/acme/webhooks", t.id], ["/v1/admin/webhooks", null]]
  ) {
    const hook = await createHook(h, base as string, { url: HOOK_URL });
    hooks.push({ id: hook.id, tenant: tenant as string | null, secret: hook.secret });
  }
  const secret = await h.call("POST", "/v1/tenants/acme/secrets", {
    ...as,
    body: { name: "stripe", type: "generic", value: "sk_test_rotation_secret_value" },
  });
  assert.equal(secret.status, 201, secret.text);
  await h.call("PUT", "/v1/tenants/acme/secrets/stripe", {
    ...as,
    body: { value: "sk_test_rotation_secret_value_2" },
  });
  await h.call("POST", "/v1/tenants/acme/invitations", {
    ...as,
    body: { email: "grace@example.com", role: "member" },
  });
  const emails = await h.call("GET", "/v1/admin/emails", as);
  return {
    tenantId: t.id,
    projectId: project.body.data.id,
    apiKey: key.body.data.key,
    hooks,
    emailId: emails.body.data[0].id,
  };
}

/** Every sealed value of the world opens and works. */
async function readsEverything(h: Harness, w: World) {
  const issued = await h.call("POST", "/v1/tokens", { token: h.root, body: { key: w.apiKey } });
  assert.equal(issued.status, 200, issued.text);
  const set = (await h.call("GET", `/v1/projects/${w.projectId}/jwks.json`)).body;
  await jwtVerify(issued.body.data.token, createLocalJWKSet(set), {
    currentDate: new Date(h.clock.now),
  });
  for (const hook of w.hooks) {
    const endpoint = await h.kv.get<WebhookEndpoint>(keys.webhookEndpoint(hook.tenant, hook.id));
    assert.deepEqual(await openSecrets(h.svc, endpoint.value!, h.clock.now), [hook.secret]);
  }
  for (
    const [version, value] of [[1, "sk_test_rotation_secret_value"], [
      2,
      "sk_test_rotation_secret_value_2",
    ]]
  ) {
    const revealed = await h.call("POST", "/v1/tenants/acme/secrets/stripe/reveal", {
      token: h.root,
      body: { reason: "rotation test", version },
    });
    assert.equal(revealed.body.data?.value, value, revealed.text);
  }
  const mail = await h.call("GET", `/v1/admin/emails/${w.emailId}`, { token: h.root });
  assert.equal(mail.status, 200, mail.text);
  assert.match(mail.body.data.text, /grace@example\.com|invited/i);
}

/** Every Sealed value in the store, with the kid that sealed it. */
async function sealedKids(h: Harness): Promise<string[]> {
  const kids: string[] = [];
  const walk = (v: unknown) => {
    if (!v || typeof v !== "object") return;
    const o = v as Record<string, unknown>;
    if (typeof o.iv === "string" && typeof o.data === "string" && !("current" in o)) {
      kids.push(String(o.kid ?? "first"));
    }
    for (const x of Object.values(o)) walk(x);
  };
  for await (const e of h.kv.list({ prefix: [] })) {
    const k = e.key.join("/");
    if (k.endsWith("data_key")) continue; // the rings: wrapped data keys, under the master key
    walk(e.value);
  }
  return kids;
}

async function runRotation(h: Harness, jobId: string, handlers = JOB_HANDLERS) {
  for (let i = 0; i < 100; i++) {
    await h.runJobs(handlers);
    const job = await h.call("GET", `/v1/admin/system/jobs/${jobId}`, { token: h.root });
    if (job.body.data.status === "succeeded") return job.body.data;
    assert.notEqual(job.body.data.status, "dead", job.text);
    h.advance(SETTLE_MS);
  }
  assert.fail("the rotation did not finish");
}

Deno.test("rotation: rotate-all re-seals every value under new keys, keeps them readable, drops the old keys", async () => {
  await using h = await setup();
  const w = await world(h);
  await readsEverything(h, w);
  const before = await h.svc.vault.ring(h.kv, w.tenantId);
  const started = await h.call("POST", "/v1/admin/vault/rotate-all", { token: h.root });
  assert.equal(started.status, 202, started.text);
  assert.equal(started.body.data.scope, "all");
  assert.equal(started.body.data.progress.total, 6, "three passes over the platform and a tenant");
  // One at a time.
  assertError(
    await h.call("POST", "/v1/admin/vault/rotate-all", { token: h.root }),
    409,
    "CONFLICT",
  );

  // Step by step, every value reads throughout.
  let finished = false;
  for (let i = 0; i < 100 && !finished; i++) {
    await h.runJobs(JOB_HANDLERS, { limit: 1 });
    await readsEverything(h, w);
    const job = (await h.call("GET", `/v1/admin/system/jobs/${started.body.data.job_id}`, {
      token: h.root,
    })).body.data;
    finished = job.status === "succeeded";
    if (finished) assert.deepEqual(job.progress, { done: 6, total: 6 });
    h.advance(SETTLE_MS);
  }
  assert.ok(finished, "the rotation finished");
  const after = await h.svc.vault.ring(h.kv, w.tenantId);
  const platform = await h.svc.vault.ring(h.kv, null);
  assert.notEqual(after!.current, before!.current);
  assert.deepEqual(Object.keys(after!.keys), [after!.current], "the old key is destroyed");
  assert.deepEqual(Object.keys(platform!.keys), [platform!.current]);
  const kids = await sealedKids(h);
  assert.ok(kids.length >= 6, `${kids.length} sealed values`);
  for (const kid of kids) assert.ok([after!.current, platform!.current].includes(kid), kid);
  await readsEverything(h, w);
  const audit = await h.call("GET", "/v1/admin/audit?action=vault.rotation_completed", {
    token: h.root,
  });
  assert.equal(audit.body.data.length, 1);
  // A new rotation may start now.
  const again = await h.call("POST", "/v1/tenants/acme/vault/rotate", { token: h.root });
  assert.equal(again.status, 202, again.text);
});

Deno.test("rotation: a crash after each step's work, before its record, loses nothing", async () => {
  await using h = await setup();
  const w = await world(h);
  const started = await h.call("POST", "/v1/tenants/acme/vault/rotate", { token: h.root });
  assert.equal(started.status, 202, started.text);
  assert.equal(started.body.data.progress.total, 3);
  // Each step does its work, then the worker "dies" before the job records it: the step reruns.
  let crashes = 0;
  const crashing = {
    ...JOB_HANDLERS,
    [VAULT_ROTATE_JOB]: async (...args: Parameters<typeof rotateJob>) => {
      await rotateJob(...args);
      crashes++;
      throw new Error("killed after the step's work");
    },
  };
  for (let i = 0; i < 4; i++) {
    await h.runJobs(crashing);
    await readsEverything(h, w);
    h.advance(60 * 60_000); // past the retry's backoff
  }
  assert.equal(crashes, 4);
  await runRotation(h, started.body.data.job_id);
  const ring = await h.svc.vault.ring(h.kv, w.tenantId);
  assert.deepEqual(Object.keys(ring!.keys), [ring!.current]);
  await readsEverything(h, w);
});

Deno.test("rotation: vault:admin only; tenant roles never rotate; a closed vault is 503", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const owner = await h.user(null);
  await h.member(t.id, owner.id, "owner");
  for (const role of ["support", "ops", "finance"] as const) {
    const u = await h.user(role);
    assertError(
      await h.call("POST", "/v1/admin/vault/rotate-all", { token: u.token }),
      403,
      "FORBIDDEN",
    );
  }
  assertError(
    await h.call("POST", "/v1/tenants/acme/vault/rotate", { token: owner.token }),
    403,
    "FORBIDDEN",
  );
  assertError(await h.call("POST", "/v1/tenants/acme/vault/rotate"), 401, "UNAUTHORIZED");
  const admin = await h.user("admin");
  const res = await h.call("POST", "/v1/tenants/acme/vault/rotate", { token: admin.token });
  assert.equal(res.status, 202, res.text);
  await runRotation(h, res.body.data.job_id);
  h.svc.vault = new Vault(null);
  assertError(
    await h.call("POST", "/v1/admin/vault/rotate-all", { token: h.root }),
    503,
    "UNAVAILABLE",
  );
});

Deno.test("master key rotation: re-wrap with the previous key, then start without it", async () => {
  await using h = await setup();
  const oldBytes = crypto.getRandomValues(new Uint8Array(32));
  h.svc.vault = new Vault(oldBytes, "env", { now: () => h.clock.now });
  const old = h.svc.vault.state.key_id;
  const w = await world(h);
  const next = crypto.getRandomValues(new Uint8Array(32));
  // The new key alone opens nothing yet, and says which key it needs.
  h.svc.vault = new Vault(next, "env", { now: () => h.clock.now });
  const refused = await h.call("POST", "/v1/tokens", { token: h.root, body: { key: w.apiKey } });
  assert.equal(refused.status, 500);
  // The operator keeps the old one in STEWARD_MASTER_KEY_PREVIOUS for one start.
  h.svc.vault = new Vault(next, "env", { previous: oldBytes, now: () => h.clock.now });
  const done = await rewrapAll(h.svc);
  assert.equal(done.owners, 2);
  assert.ok(done.rewrapped >= 2, `${done.rewrapped} data keys re-wrapped`);
  assert.deepEqual(await rewrapAll(h.svc), { owners: 2, rewrapped: 0 }, "idempotent");
  // Later starts: the new key only.
  h.svc.vault = new Vault(next, "env", { now: () => h.clock.now });
  await readsEverything(h, w);
  const ring = await h.svc.vault.ring(h.kv, w.tenantId);
  for (const key of Object.values(ring!.keys)) assert.notEqual(key.master_key_id, old);
});
