/**
 * Support staff read personal data masked wherever it appears: the email- and IP-shaped values
 * callers put in tenant, user, project and API key metadata included.
 */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";

const SECRET_SHAPES = [
  "ceo@acme.example.com",
  "10.20.30.40",
  "2001:db8::42",
  "ops@acme.example.com",
];
const metadata = {
  contact: "ceo@acme.example.com",
  office_ip: "10.20.30.40",
  v6: "2001:db8::42",
  note: "escalate to ops@acme.example.com from 10.20.30.40",
};

Deno.test("masking: support reads metadata with emails and IPs masked; admins read it whole", async () => {
  await using h = await setup();
  const as = { token: h.root };
  await h.tenant("acme", { metadata });
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    ...as,
    body: { name: "App", metadata },
  });
  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    ...as,
    body: { name: "k", environment: "live", meta: metadata },
  });
  assert.equal(key.status, 201, key.text);
  const user = await h.call("POST", "/v1/users", {
    ...as,
    body: { email: "dana@example.com", name: "Dana", metadata },
  });
  assert.equal(user.status, 201, user.text);
  const reads = [
    "/v1/tenants/acme",
    "/v1/tenants?limit=10",
    `/v1/tenants/acme/projects/${project.body.data.id}`,
    "/v1/tenants/acme/projects",
    `/v1/tenants/acme/api-keys/${key.body.data.id}`,
    "/v1/tenants/acme/api-keys",
    `/v1/users/${user.body.data.id}`,
    "/v1/users?limit=10",
  ];
  const support = await h.user("support");
  const admin = await h.user("admin");
  for (const path of reads) {
    const masked = await h.call("GET", path, { token: support.token });
    assert.equal(masked.status, 200, `${path}: ${masked.text}`);
    for (const shape of SECRET_SHAPES) {
      assert.ok(!masked.text.includes(shape), `${path} shows ${shape} to support: ${masked.text}`);
    }
    const whole = await h.call("GET", path, { token: admin.token });
    assert.ok(whole.text.includes(metadata.contact), `${path}: admins see it whole`);
  }
  const shown =
    (await h.call("GET", "/v1/tenants/acme", { token: support.token })).body.data.metadata;
  assert.equal(shown.contact, "c***@a***.com");
  assert.equal(shown.office_ip, "10.20.x.x");
  assert.equal(shown.v6, "2001:db8:****");
  assert.equal(shown.note, "escalate to o***@a***.com from 10.20.x.x");
});
