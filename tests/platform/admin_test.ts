import assert from "node:assert/strict";
import { admin } from "../_admin.ts";
import { setup } from "../_harness.ts";
import { Vault } from "../../domain/vault/vault.ts";

Deno.test("admin create-token: prints a working token once, audited as system", async () => {
  await using h = await setup();
  const out = await admin(
    h.svc,
    "create-token",
    "--name",
    "ci",
    "--permissions",
    "tenants:read,audit:read",
  );
  const secret = out.match(/stw_[A-Za-z0-9]+/)?.[0];
  assert.ok(secret, out);
  const me = await h.call("GET", "/v1/auth/me", { token: secret });
  assert.equal(me.status, 200);
  assert.deepEqual(me.body.data.permissions, ["audit:read", "tenants:read"]);
  assert.ok(!(await h.dump()).includes(secret));
  const audit = await h.call("GET", `/v1/admin/audit?actor=system&action=token.created`, {
    token: h.root,
  });
  assert.ok(
    audit.body.data.some((e: { resource_id: string }) => e.resource_id === me.body.data.id),
  );
});

Deno.test("admin create-token: unknown permissions are refused", async () => {
  await using h = await setup();
  await assert.rejects(
    admin(h.svc, "create-token", "--name", "x", "--permissions", "bogus"),
    /unknown permissions: bogus/,
  );
});

Deno.test("admin create-token --tenant: takes the slug or the id, as the API does", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  for (const tenant of ["acme", acme.id]) {
    const out = await admin(
      h.svc,
      "create-token",
      "--name",
      "acme-ci",
      "--permissions",
      "tenants:read",
      "--tenant",
      tenant,
    );
    const secret = out.match(/stw_[A-Za-z0-9]+/)?.[0];
    assert.ok(secret, out);
    const me = await h.call("GET", "/v1/auth/me", { token: secret });
    assert.equal(me.body.data.tenant_id, acme.id, tenant);
    assert.equal((await h.call("GET", "/v1/tenants/acme", { token: secret })).status, 200);
  }
  await assert.rejects(
    admin(
      h.svc,
      "create-token",
      "--name",
      "x",
      "--permissions",
      "tenants:read",
      "--tenant",
      "nope",
    ),
    /no tenant with id or slug "nope"/,
  );
});

Deno.test("admin create-user and reset-password: generated passwords log in; reset ends sessions", async () => {
  await using h = await setup();
  const out = await admin(
    h.svc,
    "create-user",
    "--email",
    "Ops@Example.com",
    "--name",
    "Ops",
    "--role",
    "super_admin",
  );
  const password = out.match(/password \(shown once\): (\S+)/)?.[1];
  assert.ok(password, out);
  const login = await h.call("POST", "/v1/auth/login", {
    body: { email: "ops@example.com", password },
  });
  assert.equal(login.status, 200);
  assert.equal(login.body.data.user.platform_role, "super_admin");

  const reset = await admin(h.svc, "reset-password", "--email", "ops@example.com");
  const next = reset.match(/password \(shown once\): (\S+)/)?.[1];
  assert.ok(next && next !== password);
  assert.equal((await h.call("GET", "/v1/auth/me", { token: login.body.data.token })).status, 401);
  const again = await h.call("POST", "/v1/auth/login", {
    body: { email: "ops@example.com", password: next },
  });
  assert.equal(again.status, 200);
});

Deno.test("admin create-user: a bad role or a missing flag is refused", async () => {
  await using h = await setup();
  await assert.rejects(
    admin(h.svc, "create-user", "--email", "a@b.co", "--name", "A", "--role", "god"),
    /--role/,
  );
  await assert.rejects(admin(h.svc, "create-user", "--email", "a@b.co"), /--name is required/);
});

Deno.test("admin rotate-master-key: re-wraps every data key; then the previous key is not needed", async () => {
  await using h = await setup();
  const [a, b] = [0, 1].map(() => crypto.getRandomValues(new Uint8Array(32)));
  h.svc.vault = new Vault(a);
  const t = await h.tenant("acme");
  const sealed = await h.svc.vault.seal(h.kv, t.id, new TextEncoder().encode("s3cret"), "test:1");
  h.svc.vault = new Vault(b);
  await assert.rejects(
    () => admin(h.svc, "rotate-master-key"),
    /STEWARD_MASTER_KEY_PREVIOUS/,
  );
  h.svc.vault = new Vault(b, "env", { previous: a });
  assert.match(await admin(h.svc, "rotate-master-key"), /re-wrapped 1 data keys/);
  h.svc.vault = new Vault(b);
  const opened = await h.svc.vault.open(h.kv, t.id, sealed, "test:1");
  assert.equal(new TextDecoder().decode(opened), "s3cret");
});
