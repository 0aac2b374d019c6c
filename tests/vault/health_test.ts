/**
 * The vault's health (GET /v1/admin/vault/health) and its audit trail (GET /v1/admin/vault/audit):
 * keys by age, previous master key needed or not, last rotation, and the warnings an operator
 * acts on; the trail holds the vault's actions only.
 */
import assert from "node:assert/strict";
import { rewrapAll, SETTLE_MS } from "../../domain/platform/vault_rotation.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { assertError } from "../_assert.ts";
import { type Harness, setup } from "../_harness.ts";
import { createHook, HOOK_URL } from "../_webhooks.ts";

const DAY = 86_400_000;
const health = async (h: Harness, token = h.root) =>
  await h.call("GET", "/v1/admin/vault/health", { token });

async function rotateAll(h: Harness) {
  const res = await h.call("POST", "/v1/admin/vault/rotate-all", { token: h.root });
  assert.equal(res.status, 202, res.text);
  for (let i = 0; i < 50; i++) {
    await h.runJobs();
    h.advance(SETTLE_MS);
  }
  return res.body.data.job_id as string;
}

Deno.test("vault health: keys, rotation and warnings as an operator reads them", async () => {
  await using h = await setup();
  await h.tenant("acme");
  await createHook(h, "/v1/tenants/acme/webhooks", { url: HOOK_URL });
  await createHook(h, "/v1/admin/webhooks", { url: HOOK_URL });
  const fresh = (await health(h)).body.data;
  assert.equal(fresh.sealed, false);
  assert.equal(fresh.master_key.id, h.svc.vault.state.key_id);
  assert.equal(fresh.previous_key, null);
  assert.equal(fresh.data_keys.owners, 2);
  assert.equal(fresh.data_keys.keys, 2);
  assert.equal(fresh.data_keys.by_age.under_30_days, 2);
  assert.equal(fresh.last_rotation, null);
  assert.ok(fresh.warnings.some((w: string) => /no backup/.test(w)), fresh.warnings);
  assert.ok(!fresh.warnings.some((w: string) => /older than/.test(w)));

  // 91 days on, the keys in use are old: a warning, until every key is rotated.
  h.advance(91 * DAY);
  const old = (await health(h)).body.data;
  assert.equal(old.data_keys.by_age.over_90_days, 2);
  assert.ok(old.warnings.some((w: string) => /older than 90 days/.test(w)), old.warnings);
  const job = await rotateAll(h);
  const rotated = (await health(h)).body.data;
  assert.equal(rotated.last_rotation.job_id, job);
  assert.equal(rotated.last_rotation.scope, "all");
  assert.equal(rotated.data_keys.keys, 2, "the old keys are gone");
  assert.ok(!rotated.warnings.some((w: string) => /older than/.test(w)), rotated.warnings);
});

Deno.test("vault health: a previous master key is needed until the data keys are re-wrapped", async () => {
  await using h = await setup();
  const [a, b] = [0, 1].map(() => crypto.getRandomValues(new Uint8Array(32)));
  h.svc.vault = new Vault(a, "env", { now: () => h.clock.now });
  await h.tenant("acme");
  await createHook(h, "/v1/tenants/acme/webhooks", { url: HOOK_URL });
  h.svc.vault = new Vault(b, "env", { now: () => h.clock.now });
  const lost = (await health(h)).body.data;
  assert.equal(lost.data_keys.wrapped_by_other_master, 1);
  assert.ok(lost.warnings.some((w: string) => /STEWARD_MASTER_KEY_PREVIOUS/.test(w)));
  h.svc.vault = new Vault(b, "env", { previous: a, now: () => h.clock.now });
  assert.equal((await health(h)).body.data.previous_key.needed, true);
  await rewrapAll(h.svc);
  const done = (await health(h)).body.data;
  assert.deepEqual(done.previous_key, { id: h.svc.vault.state.previous_key_id, needed: false });
  assert.equal(done.data_keys.wrapped_by_other_master, 0);
});

Deno.test("vault health: a master key from a file is a warning in production; sealed says so", async () => {
  await using h = await setup({
    env: { STEWARD_ENV: "production", STEWARD_EMAIL_DISABLED: "true" },
  });
  h.svc.vault = new Vault(crypto.getRandomValues(new Uint8Array(32)), "file");
  const report = (await health(h)).body.data;
  assert.equal(report.master_key.source, "file");
  assert.ok(report.warnings.some((w: string) => /from a file/.test(w)), report.warnings);
  h.svc.vault = new Vault(null);
  const sealed = (await health(h)).body.data;
  assert.equal(sealed.sealed, true);
  assert.ok(sealed.warnings.some((w: string) => /sealed/.test(w)));
});

Deno.test("vault health and audit: vault:admin only", async () => {
  await using h = await setup();
  assertError(await h.call("GET", "/v1/admin/vault/health"), 401, "UNAUTHORIZED");
  assertError(await h.call("GET", "/v1/admin/vault/audit"), 401, "UNAUTHORIZED");
  for (const role of ["support", "ops", "finance", "qa"] as const) {
    const u = await h.user(role);
    assertError(await health(h, u.token), 403, "FORBIDDEN");
    assertError(await h.call("GET", "/v1/admin/vault/audit", { token: u.token }), 403, "FORBIDDEN");
  }
  const admin = await h.user("admin");
  assert.equal((await health(h, admin.token)).status, 200);
});

Deno.test("vault audit: the vault's actions only, filtered by action, tenant and date", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  await h.tenant("other");
  const res = await h.call("POST", "/v1/tenants/acme/vault/rotate", { token: h.root });
  assert.equal(res.status, 202, res.text);
  const trail = await h.call("GET", "/v1/admin/vault/audit", { token: h.root });
  assert.equal(trail.status, 200, trail.text);
  assert.deepEqual(trail.body.data.map((e: { action: string }) => e.action), [
    "vault.rotation_started",
  ]);
  assert.equal(trail.body.pagination.total, 1);
  const mine = await h.call("GET", `/v1/admin/vault/audit?tenant_id=${t.id}`, { token: h.root });
  assert.equal(mine.body.data.length, 1);
  const none = await h.call("GET", "/v1/admin/vault/audit?action=tenant.created", {
    token: h.root,
  });
  assert.deepEqual([none.body.data, none.body.pagination.total], [[], 0]);
  const later = await h.call(
    "GET",
    `/v1/admin/vault/audit?from=${encodeURIComponent(new Date(h.clock.now + DAY).toISOString())}`,
    { token: h.root },
  );
  assert.equal(later.body.data.length, 0);
});
