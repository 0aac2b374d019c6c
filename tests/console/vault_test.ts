/**
 * The console's Vault pages (routes/console/pages/vault.tsx) in-process: secrets' names and
 * metadata, a reveal that needs a reason, is audited by the API and shows the value only in its
 * own answer; backups and rotation for vault:admin; each button only for roles the API lets act,
 * a forged post by another answering 403, and a post without its CSRF token refused.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { signedIn, textOf } from "./_console.ts";

const VALUE = "sk_live_console-test-value-0001";

async function secret(h: Harness, tenant: string, name: string, value = VALUE) {
  const res = await h.call("POST", `/v1/tenants/${tenant}/secrets`, {
    token: h.root,
    body: { name, type: "generic", value },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.data as { id: string; tenant_id: string };
}

async function reveals(h: Harness) {
  const res = await h.call("GET", "/v1/admin/audit?action=secret.revealed", { token: h.root });
  assert.equal(res.status, 200, res.text);
  return res.body.data as { actor_id: string; resource_id: string; changes: unknown }[];
}

Deno.test("console vault: super_admin lists secrets without values, reveals one with a reason (audited), shown once", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const s = await secret(h, "acme", "stripe-key");
  await h.call("PUT", `/v1/tenants/acme/secrets/stripe-key`, {
    token: h.root,
    body: { value: "sk_live_second-version-0002" },
  });
  const { client, user } = await signedIn(h, "super_admin");

  const list = await client.get("/console/vault");
  assert.equal(list.status, 200, list.text);
  assert.match(list.text, /<a href="\/console\/vault" aria-current="page">Vault<\/a>/);
  const text = textOf(list.text);
  assert.match(text, /stripe-key acme generic 2 /);
  assert.match(list.text, /<a href="\/console\/tenants\/acme">acme<\/a>/);
  assert.doesNotMatch(list.text, /sk_live_/);
  const detailPath = `/console/vault/secrets/${acme.id}/stripe-key`;
  assert.match(list.text, new RegExp(`href="${detailPath}" aria-label="Reveal stripe-key"`));
  // Each section of the vault this role may open.
  assert.match(list.text, /href="\/console\/vault\/backups"/);
  assert.match(list.text, /href="\/console\/vault\/keys"/);

  const detail = await client.get(detailPath);
  assert.equal(detail.status, 200, detail.text);
  assert.match(textOf(detail.text), /Value \(masked\) sk••/);
  assert.doesNotMatch(detail.text, /sk_live_/);
  assert.match(detail.text, /name="reason"/);
  assert.match(detail.text, /<option value="1" >1<\/option>/);

  // Without a reason (or too short a one): the API's 400, nothing revealed, nothing audited.
  for (const reason of ["", "  x "]) {
    const refused = await client.post(`${detailPath}/reveal`, {
      reason,
      version: "",
      _nonce: "n0",
    });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.text, /class="notice error" role="alert"/);
    assert.doesNotMatch(refused.text, /sk_live_/);
  }
  assert.deepEqual(await reveals(h), []);

  // With one: the current value, in the answer only, not cached; the reveal is in the trail.
  const shown = await client.post(`${detailPath}/reveal`, {
    reason: "rotating the payment provider key",
    version: "",
    _nonce: "n1",
  });
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.headers.get("Cache-Control"), "no-store");
  assert.match(
    shown.text,
    /<pre class="secret body" tabindex="0">sk_live_second-version-0002<\/pre>/,
  );
  assert.match(textOf(shown.text), /Value of version 2/);
  assert.match(
    shown.text,
    new RegExp(`href="/console/audit\\?action=secret.revealed&amp;resource_id=${s.id}"`),
  );
  const trail = await reveals(h);
  assert.equal(trail.length, 1);
  assert.equal(trail[0].actor_id, user.id);
  assert.equal(trail[0].resource_id, s.id);
  assert.match(JSON.stringify(trail[0].changes), /rotating the payment provider key/);

  // An older kept version; a reload of the answer's address asks again instead of showing it.
  const older = await client.post(`${detailPath}/reveal`, {
    reason: "comparing with the old key",
    version: "1",
    _nonce: "n2",
  });
  assert.match(older.text, new RegExp(`<pre class="secret body" tabindex="0">${VALUE}</pre>`));
  assert.equal((await reveals(h)).length, 2);
  const reload = await client.get(`${detailPath}/reveal`);
  assert.equal(reload.status, 303);
  assert.equal(reload.headers.get("Location"), detailPath);
  assert.doesNotMatch((await client.get(detailPath)).text, /sk_live_/);

  // A reveal without the form's CSRF token is refused before the API is asked.
  const forged = await client.post(`${detailPath}/reveal`, { reason: "no token here" }, {
    csrf: false,
  });
  assert.equal(forged.status, 403);
  assert.doesNotMatch(forged.text, /sk_live_/);
  assert.equal((await reveals(h)).length, 2);
});

Deno.test("console vault: admin (no vault:reveal) sees no Reveal, and a forged reveal answers 403 unaudited; support sees metadata only", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await secret(h, "acme", "stripe-key");
  const path = `/console/vault/secrets/${acme.id}/stripe-key`;

  const { client: admin } = await signedIn(h, "admin");
  const list = await admin.get("/console/vault");
  assert.equal(list.status, 200);
  assert.match(textOf(list.text), /stripe-key/);
  assert.doesNotMatch(list.text, /aria-label="Reveal/);
  const detail = await admin.get(path);
  assert.equal(detail.status, 200);
  assert.doesNotMatch(detail.text, /name="reason"/);
  assert.match(detail.text, /Delete with every version/, "admin holds secrets:write");
  const forged = await admin.post(`${path}/reveal`, {
    reason: "I should not see this",
    _nonce: "f",
  });
  assert.equal(forged.status, 403);
  assert.doesNotMatch(forged.text, /sk_live_/);
  assert.deepEqual(await reveals(h), []);

  const { client: support } = await signedIn(h, "support");
  const home = await support.get("/console");
  assert.match(home.text, /href="\/console\/vault"/);
  const seen = await support.get(path);
  assert.equal(seen.status, 200);
  assert.doesNotMatch(seen.text, /Value \(masked\)/, "support: names and metadata only");
  assert.doesNotMatch(seen.text, /name="reason"|name="confirm"/);
  // No vault:admin: no Backups or Keys tabs, and those pages are 403.
  assert.doesNotMatch(seen.text, /href="\/console\/vault\/backups"|href="\/console\/vault\/keys"/);
  assert.equal((await support.get("/console/vault/backups")).status, 403);
  assert.equal((await support.get("/console/vault/keys")).status, 403);
  const rotate = await support.post("/console/vault/rotate-all", { _nonce: "r" });
  assert.equal(rotate.status, 403);
});

Deno.test("console vault: roles without secrets:read have no Vault in the nav and the page is 403", async () => {
  await using h = await setup();
  for (const role of ["finance", "ops", "qa"] as const) {
    const { client } = await signedIn(h, role);
    assert.doesNotMatch((await client.get("/console")).text, /href="\/console\/vault"/, role);
    const page = await client.get("/console/vault");
    assert.equal(page.status, 403, role);
    assert.match(textOf(page.text), /Your role may not read tenant secrets\./);
  }
});

Deno.test("console vault: a tenant's SMTP settings are shown masked and revealed whole", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  const settings = {
    host: "smtp.example.com",
    port: 587,
    secure: false,
    username: "apikey",
    password: "EXAMPLE-ONLY-smtp-password",
    from: "Acme <no-reply@acme.example.com>",
  };
  const res = await h.call("POST", "/v1/tenants/acme/secrets", {
    token: h.root,
    body: { name: "smtp", type: "smtp", value: settings },
  });
  assert.equal(res.status, 201, res.text);
  const { client } = await signedIn(h, "super_admin");
  const path = `/console/vault/secrets/${acme.id}/smtp`;
  const masked = textOf((await client.get(path)).text);
  assert.match(masked, /SMTP host smtp\.example\.com SMTP port 587/);
  assert.match(masked, /SMTP password ••••/);
  assert.doesNotMatch(masked, /EXAMPLE-ONLY-smtp-password/);
  const shown = await client.post(`${path}/reveal`, { reason: "moving the relay", _nonce: "s" });
  assert.equal(shown.status, 200, shown.text);
  const pre = /<pre class="secret body" tabindex="0">([^<]+)<\/pre>/.exec(shown.text)![1];
  assert.deepEqual(
    JSON.parse(pre.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">")),
    settings,
  );
});

Deno.test("console vault: deleting a secret needs its name typed", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  await secret(h, "acme", "old-key");
  const { client } = await signedIn(h, "super_admin");
  const path = `/console/vault/secrets/${acme.id}/old-key`;
  await client.get(path);
  const wrong = await client.post(`${path}/delete`, { confirm: "old", _nonce: "d1" });
  assert.equal(wrong.status, 400);
  assert.match(textOf(wrong.text), /Type the name of the secret exactly to delete it\./);
  assert.equal(
    (await h.call("GET", "/v1/tenants/acme/secrets/old-key", { token: h.root })).status,
    200,
  );
  const done = await client.post(`${path}/delete`, { confirm: "old-key", _nonce: "d2" });
  assert.equal(done.status, 303);
  assert.equal(done.headers.get("Location"), "/console/vault?notice=deleted");
  assert.equal(
    (await h.call("GET", "/v1/tenants/acme/secrets/old-key", { token: h.root })).status,
    404,
  );
  assert.match(
    textOf((await client.get(done.headers.get("Location")!)).text),
    /The secret is deleted, with every version\./,
  );
});

Deno.test("console vault: backups written now and listed; rotation of every key started once", async () => {
  await using h = await setup();
  await h.tenant("acme");
  const { client } = await signedIn(h, "admin");

  // Without a backup directory: backups are off, no button.
  const off = await client.get("/console/vault/backups");
  assert.equal(off.status, 200, off.text);
  assert.match(textOf(off.text), /Backups off \(no backup directory\)/);
  assert.doesNotMatch(off.text, /Back up now/);

  const dir = await Deno.makeTempDir({ prefix: "steward-console-backups-" });
  try {
    h.svc.backups = { dir, keep: 7, store: ":memory:" };
    const on = await client.get("/console/vault/backups");
    assert.match(on.text, /Back up now/);
    const made = await client.post("/console/vault/backups", { _nonce: "b1" });
    assert.equal(made.status, 303, made.text);
    const shown = await client.get(made.headers.get("Location")!);
    const text = textOf(shown.text);
    assert.match(text, /The backup is written\./);
    assert.match(text, /succeeded steward-/);
    assert.match(text, /1–1 of 1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  const keys = await client.get("/console/vault/keys");
  assert.equal(keys.status, 200, keys.text);
  assert.match(textOf(keys.text), /Sealed no/);
  const started = await client.post("/console/vault/rotate-all", { _nonce: "k1" });
  assert.equal(started.status, 303, started.text);
  assert.equal(started.headers.get("Location"), "/console/vault/keys?notice=rotation");
  assert.match(
    textOf((await client.get("/console/vault/keys?notice=rotation")).text),
    /The rotation is started/,
  );
  // A crafted link cannot make the page say anything else.
  assert.doesNotMatch((await client.get("/console/vault/keys?notice=Call+us")).text, /Call us/);
  // A second one while the first runs: the API's 409, on the page.
  await client.get("/console/vault/keys");
  const again = await client.post("/console/vault/rotate-all", { _nonce: "k2" });
  assert.equal(again.status, 409);
  assert.match(again.text, /class="notice error" role="alert"/);
  const audit = await h.call("GET", "/v1/admin/audit?action=vault.rotation_started", {
    token: h.root,
  });
  assert.equal(audit.status, 200);
  assert.equal(audit.body.data.length, 1, "one rotation started, by the console's user");
  const backups = await h.call("GET", "/v1/admin/audit?action=vault.backup_created", {
    token: h.root,
  });
  assert.equal(backups.body.data.length, 1);
});
