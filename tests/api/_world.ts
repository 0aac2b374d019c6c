/**
 * A tenant with every kind of record it can own: a project with rotated signing keys, API keys
 * live, rotated and revoked, a member, an invitation, a webhook endpoint with a delivery, secrets,
 * usage and a bound service token. The whole-API tests call every operation against it.
 */
import assert from "node:assert/strict";
import type { Harness } from "../_harness.ts";
import { createHook, HOOK_URL } from "../_webhooks.ts";

export interface Tenant {
  id: string;
  slug: string;
  project: string;
  hook: string;
  message: string;
  user: string;
}

const SMTP = {
  host: "smtp.example.com",
  port: 587,
  secure: false,
  username: "mailer",
  password: "second password",
  from: "Acme <no-reply@acme.example.com>",
};

export async function populate(h: Harness, slug: string): Promise<Tenant> {
  const t = await h.tenant(slug);
  const base = `/v1/tenants/${slug}`;
  const as = { token: h.root };
  const project = (await h.call("POST", `${base}/projects`, { ...as, body: { name: "App" } }))
    .body.data.id;
  await h.call("POST", `${base}/projects/${project}/signing-keys/rotate`, as);
  await h.call("POST", `${base}/projects/${project}/signing-keys/rotate`, as);
  const hook = await createHook(h, `${base}/webhooks`, { url: HOOK_URL });
  // Secrets: a generic one, and the tenant's SMTP settings at their second version.
  const secret = (name: string, type: string, value: unknown) =>
    h.call("POST", `${base}/secrets`, { ...as, body: { name, type, value } });
  await secret("stripe-key", "generic", `rk_example_${slug}_0123456789`);
  await secret("smtp", "smtp", { ...SMTP, password: "first password" });
  const smtp = await h.call("PUT", `${base}/secrets/smtp`, { ...as, body: { value: SMTP } });
  assert.equal(smtp.status, 200, `${slug}: the SMTP secret: ${smtp.text}`);
  const keys = [];
  for (const name of ["live", "rotated", "revoked"]) {
    const res = await h.call("POST", `${base}/api-keys`, {
      ...as,
      body: { name, environment: "live", project_id: project },
    });
    keys.push(res.body.data);
  }
  await h.call("POST", `${base}/api-keys/${keys[1].id}/rotate`, { ...as, body: {} });
  await h.call("DELETE", `${base}/api-keys/${keys[2].id}`, as);
  await h.call("POST", "/v1/keys/verify", { ...as, body: { key: keys[0].key } });
  const user = await h.user(null);
  await h.member(t.id, user.id, "member");
  await h.call("POST", `${base}/invitations`, {
    ...as,
    body: { email: `invitee@${slug}.example.com`, role: "viewer" },
  });
  await h.serviceToken(["tenants:read"], t.id);
  // A custom role the member holds (so deleting it is refused while held).
  const role = await h.call("POST", "/v1/admin/roles", {
    ...as,
    body: { name: `auditor-${slug}`, permissions: ["audit:read"] },
  });
  assert.equal(role.status, 201, `${slug}: the role: ${role.text}`);
  await h.call("PATCH", `/v1/users/${user.id}`, { ...as, body: { roles: [role.body.data.id] } });
  // A plugin (platform-wide; no hooks, so the calls that follow create freely).
  const plugin = await h.call("POST", "/v1/admin/plugins", {
    ...as,
    body: { name: `plugin-${slug}`, version: "1.0.0", url: HOOK_URL, events: ["tenant.updated"] },
  });
  assert.equal(plugin.status, 201, `${slug}: the plugin: ${plugin.text}`);
  await h.runJobs();
  const messages = await h.call("GET", `${base}/webhooks/${hook.id}/deliveries`, as);
  assert.ok(messages.body.data.length > 0, `${slug}: a delivery to list`);
  return {
    id: t.id,
    slug,
    project,
    hook: hook.id,
    message: messages.body.data[0].id,
    user: user.id,
  };
}
