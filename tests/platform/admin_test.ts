import assert from "node:assert/strict";
import { runAdminCommand } from "../../admin.ts";
import { setup } from "../_harness.ts";

/** Runs an admin command and returns what it printed. */
async function admin(
  svc: Parameters<typeof runAdminCommand>[0],
  ...args: string[]
): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  try {
    await runAdminCommand(svc, args[0], args.slice(1));
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}

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
