/**
 * After every flow that makes or moves a secret, the whole store (records, indexes, request logs,
 * audit trail, event outbox, webhook messages, job payloads, the mail outbox) holds none of them
 * in clear: API keys, webhook secrets, service and session tokens, invitation and reset tokens,
 * and the private half of signing keys.
 */
import assert from "node:assert/strict";
import { setup, TEST_PASSWORD } from "../_harness.ts";
import { createHook, HOOK_URL } from "../_webhooks.ts";

/** What a secret looks like, by prefix: the prefix and a long random tail. */
const SHAPES = [
  /sk_(live|test)_[0-9A-Za-z]{20,}/,
  /whsec_[0-9A-Za-z+/=]{20,}/,
  /(stw|sts|str|sti)_[0-9A-Za-z]{20,}/,
];

Deno.test("store scan: no secret in clear anywhere in KV after the flows that make them", async () => {
  await using h = await setup();
  const as = { token: h.root };
  const secrets: string[] = [h.root];
  await h.tenant("acme");
  const project = await h.call("POST", "/v1/tenants/acme/projects", {
    ...as,
    body: { name: "App" },
  });
  await h.call("POST", `/v1/tenants/acme/projects/${project.body.data.id}/signing-keys/rotate`, as);
  const hook = await createHook(h, "/v1/tenants/acme/webhooks", { url: HOOK_URL });
  const platformHook = await createHook(h, "/v1/admin/webhooks", { url: HOOK_URL });
  secrets.push(hook.secret, platformHook.secret);
  const rotatedHook = await h.call("POST", `/v1/tenants/acme/webhooks/${hook.id}/rotate-secret`, {
    ...as,
    body: {},
  });
  if (rotatedHook.body.data?.secret) secrets.push(rotatedHook.body.data.secret);

  const key = await h.call("POST", "/v1/tenants/acme/api-keys", {
    ...as,
    body: { name: "k", environment: "live", project_id: project.body.data.id },
  });
  secrets.push(key.body.data.key);
  const rotated = await h.call("POST", `/v1/tenants/acme/api-keys/${key.body.data.id}/rotate`, {
    ...as,
    body: {},
  });
  secrets.push(rotated.body.data.key);
  const verifier = await h.serviceToken(["keys:verify"]);
  secrets.push(verifier.token);
  await h.call("POST", "/v1/keys/verify", {
    token: verifier.token,
    body: { key: rotated.body.data.key },
  });
  await h.call("POST", "/v1/keys/verify", {
    token: verifier.token,
    body: { key: "sk_live_" + "x".repeat(30) },
  });
  const jwt = await h.call("POST", "/v1/tokens", {
    token: verifier.token,
    body: { key: rotated.body.data.key },
  });
  assert.equal(jwt.status, 200, jwt.text);

  const user = await h.user("admin");
  secrets.push(user.token);
  const session = await h.call("POST", "/v1/auth/login", {
    body: { email: user.email, password: TEST_PASSWORD },
    ip: "198.51.100.4",
  });
  secrets.push(session.body.data.token);
  const invited = await h.call("POST", "/v1/tenants/acme/invitations", {
    ...as,
    body: { email: "new@example.com", role: "member" },
  });
  secrets.push(invited.body.data.token);
  await h.call("POST", `/v1/users/${user.id}/reset-password`, as);
  const mails = await h.call("GET", "/v1/admin/emails?limit=100", as);
  for (const m of mails.body.data) {
    const text = (await h.call("GET", `/v1/admin/emails/${m.id}`, as)).body.data.text as string;
    for (const found of text.matchAll(/token=((?:str|sti)_[0-9A-Za-z]+)/g)) secrets.push(found[1]);
  }
  assert.ok(secrets.some((s) => s.startsWith("str_")), "the reset token was mailed");

  // Deliveries, fan-outs and every other job run; the counters and logs are written.
  await h.runJobs();
  await h.svc.aggregator.flush();

  const dump = await h.dump();
  for (const secret of secrets) {
    assert.ok(!dump.includes(secret), `${secret.slice(0, 8)}… is in the store in clear`);
  }
  for (const shape of SHAPES) {
    const found = dump.match(shape);
    assert.equal(found, null, `something shaped like a secret: ${found?.[0]}`);
  }
  // The private half of a signing key is a JWK member `d`: only its sealed form is stored.
  assert.doesNotMatch(dump, /"d":"[A-Za-z0-9_-]{40,}"/);
  assert.match(dump, /private_sealed/);
});
