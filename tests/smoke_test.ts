import assert from "node:assert/strict";
import { setup } from "./_harness.ts";

Deno.test("smoke: create and read a tenant", async () => {
  await using h = await setup();
  const created = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "Acme", slug: "acme" },
  });
  assert.equal(created.status, 201);
  const read = await h.call("GET", "/v1/tenants/acme", { token: h.root });
  assert.equal(read.status, 200);
  assert.equal(read.body.data.id, created.body.data.id);
  const admin = await h.user("admin");
  const me = await h.call("GET", "/v1/auth/me", { token: admin.token });
  assert.equal(me.body.data.platform_role, "admin");
});
