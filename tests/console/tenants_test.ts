import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { type ConsoleClient, signedIn, textOf } from "./_console.ts";

type Harness = Awaited<ReturnType<typeof setup>>;

/** The secret shown once on an answer page. */
const secretOf = (html: string) => /class="secret">([^<]+)</.exec(html)?.[1];

/** The keys of a tenant, as the API lists them. */
async function keysOf(h: Harness, tenant: string) {
  const res = await h.call("GET", `/v1/tenants/${tenant}/api-keys`, { token: h.root });
  return res.body.data as { id: string; name: string; status: string }[];
}

async function createKey(client: ConsoleClient, tenant: string, name: string) {
  const page = await client.post(`/console/tenants/${tenant}/keys`, {
    name,
    environment: "live",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(page.status, 200, page.text);
  return page;
}

Deno.test("console tenants: the list searches by name or slug prefix and pages by offset", async () => {
  await using h = await setup();
  for (let i = 1; i <= 26; i++) await h.tenant(`alpha-${String(i).padStart(2, "0")}`);
  const beta = await h.tenant("beta-shop", { name: "Beta Shop" });
  const { client } = await signedIn(h, "admin");

  const first = await client.get("/console/tenants");
  assert.equal(first.status, 200);
  assert.match(textOf(first.text), /1–25 of 27/);
  assert.match(first.text, /href="\/console\/tenants\?offset=25"/);
  // Newest first: the last one created leads, linked to its page.
  assert.match(first.text, new RegExp(`href="/console/tenants/${beta.id}">Beta Shop</a>`));

  const second = await client.get("/console/tenants?offset=25");
  assert.match(textOf(second.text), /26–27 of 27/);
  assert.match(textOf(second.text), /alpha-01/);
  assert.doesNotMatch(textOf(second.text), /alpha-26/);

  const found = await client.get("/console/tenants?search=Beta");
  assert.match(textOf(found.text), /1–1 of 1/);
  assert.match(textOf(found.text), /beta-shop/);
  const bySlug = await client.get("/console/tenants?search=alpha-0");
  assert.match(textOf(bySlug.text), /1–9 of 9/);

  // The API's own validation answers: a search too long.
  const long = await client.get(`/console/tenants?search=${"x".repeat(101)}`);
  assert.equal(long.status, 200);
  assert.match(long.text, /role="alert"/);
});

Deno.test("console tenants: create a tenant through the form; the API's refusals are shown", async () => {
  await using h = await setup();
  const { client, user } = await signedIn(h, "admin");
  const list = await client.get("/console/tenants");
  assert.match(list.text, /Create a tenant/);

  const bad = await client.post("/console/tenants", {
    name: "Bad",
    slug: "No Spaces",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(bad.status, 400);
  assert.match(textOf(bad.text), /slug: 3–63 lower-case letters/);

  const made = await client.post("/console/tenants", {
    name: "Gamma Inc.",
    slug: "gamma",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(made.status, 303, made.text);
  const tenant = (await h.call("GET", "/v1/tenants/gamma", { token: h.root })).body.data;
  assert.equal(
    made.headers.get("Location"),
    `/console/tenants/${tenant.id}?notice=created`,
  );
  assert.equal(tenant.created_by, user.id, "created by the signed-in user, through the API");
  const page = await client.get(made.headers.get("Location")!);
  assert.match(textOf(page.text), /Tenant created\./);
  assert.equal((await h.auditFor(tenant.id))[0].action, "tenant.created");
  // A notice is a known key: a crafted link cannot make the page say anything.
  const crafted = await client.get(`/console/tenants/${tenant.id}?notice=Call%20us%20now`);
  assert.doesNotMatch(crafted.text, /Call us now|role="status"/);
});

Deno.test("console tenants: an admin sees every section of a tenant and every action", async () => {
  await using h = await setup();
  const t = await h.tenant("delta");
  await h.call("POST", `/v1/tenants/${t.id}/projects`, { token: h.root, body: { name: "Web" } });
  await h.call("PATCH", `/v1/tenants/${t.id}/feature-flags`, {
    token: h.root,
    body: { new_dashboard: true },
  });
  const { client } = await signedIn(h, "admin");
  const page = await client.get(`/console/tenants/${t.id}`);
  assert.equal(page.status, 200);
  const text = textOf(page.text);
  for (
    const heading of [
      "Plan and subscription",
      "Usage against quota",
      "API keys",
      "Members and invitations",
      "Projects",
      "Webhook endpoints",
      "Feature flags",
      "Audit trail",
    ]
  ) assert.match(page.text, new RegExp(`<h2 id="[a-z-]+">${heading}</h2>`), heading);
  assert.match(text, /none \(no Stripe subscription\)/);
  assert.match(page.text, /id="chart-usage"/);
  assert.match(text, /new_dashboard on/);
  assert.match(text, /tenant\.created/, "the audit trail's latest entries");
  assert.match(page.text, new RegExp(`href="/console/audit\\?tenant=${t.id}"`));
  for (
    const button of [
      "Suspend tenant",
      "Create key",
      "Invite",
      "Create project",
      "Turn new_dashboard off",
      "Set flag",
    ]
  ) assert.match(page.text, new RegExp(`<button type="submit"[^>]*>${button}</button>`), button);

  // By slug too; an unknown tenant is the API's 404.
  assert.equal((await client.get("/console/tenants/delta")).status, 200);
  const missing = await client.get("/console/tenants/no-such-tenant");
  assert.equal(missing.status, 404);
  assert.match(missing.text, /role="alert"/);
});

Deno.test("console tenants: a new key's secret is shown once; revoking it goes through the API", async () => {
  await using h = await setup();
  const t = await h.tenant("epsilon");
  const { client } = await signedIn(h, "admin");
  const answer = await createKey(client, t.id, "Checkout");
  const secret = secretOf(answer.text);
  assert.ok(secret?.startsWith("sk_live_"), answer.text);
  assert.equal(answer.headers.get("Cache-Control"), "no-store");
  const valid = await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: secret } });
  assert.equal(valid.body.data.valid, true);

  // Never again: not on the page, not in a redirect.
  const reload = await client.get(`/console/tenants/${t.id}`);
  assert.ok(!reload.text.includes(secret!));
  assert.ok(!reload.text.includes('class="secret"'));
  assert.match(textOf(reload.text), /Checkout/);
  const again = await client.get(`/console/tenants/${t.id}/keys`);
  assert.equal(again.status, 303);
  assert.equal(again.headers.get("Location"), `/console/tenants/${t.id}`);

  const [key] = await keysOf(h, t.id);
  const revoked = await client.post(`/console/tenants/${t.id}/keys/${key.id}/revoke`, {
    _nonce: crypto.randomUUID(),
  });
  assert.equal(revoked.status, 303);
  assert.match(revoked.headers.get("Location")!, /notice=key-revoked$/);
  assert.equal((await keysOf(h, t.id))[0].status, "revoked");
  assert.equal((await h.auditFor(key.id))[0].action, "api_key.revoked");
  const verdict = await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: secret } });
  assert.equal(verdict.body.data.code, "REVOKED");
  const after = await client.get(`/console/tenants/${t.id}`);
  assert.doesNotMatch(after.text, />Revoke<\/button>/, "a revoked key has no actions");
});

Deno.test("console tenants: rotate, invite, projects, flags, suspend and resume act through the API", async () => {
  await using h = await setup();
  const t = await h.tenant("zeta");
  const { client } = await signedIn(h, "admin");
  const first = secretOf((await createKey(client, t.id, "Old")).text)!;
  const [key] = await keysOf(h, t.id);
  const rotated = await client.post(`/console/tenants/${t.id}/keys/${key.id}/rotate`, {
    _nonce: crypto.randomUUID(),
  });
  assert.equal(rotated.status, 200);
  const second = secretOf(rotated.text);
  assert.ok(second && second !== first);
  assert.match(textOf(rotated.text), /Rotated API key Old/);

  const nonce = crypto.randomUUID();
  const invited = await client.post(`/console/tenants/${t.id}/invitations`, {
    email: "grace@example.com",
    role: "viewer",
    _nonce: nonce,
  });
  assert.equal(invited.status, 200);
  assert.match(secretOf(invited.text)!, /^sti_/);
  const invitations = await h.call("GET", `/v1/tenants/${t.id}/invitations`, { token: h.root });
  assert.equal(invitations.body.data.length, 1);
  // The same form sent twice (its nonce) invites once.
  await client.post(`/console/tenants/${t.id}/invitations`, {
    email: "grace@example.com",
    role: "viewer",
    _nonce: nonce,
  });
  const twice = await h.call("GET", `/v1/tenants/${t.id}/invitations`, { token: h.root });
  assert.equal(twice.body.data.length, 1);
  const inv = invitations.body.data[0].id;
  const dropped = await client.post(`/console/tenants/${t.id}/invitations/${inv}/revoke`, {
    _nonce: crypto.randomUUID(),
  });
  assert.equal(dropped.status, 303);

  const project = await client.post(`/console/tenants/${t.id}/projects`, {
    name: "Storefront",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(project.status, 303);
  assert.match(textOf((await client.get(`/console/tenants/${t.id}`)).text), /Storefront/);

  const flag = await client.post(`/console/tenants/${t.id}/flags`, {
    flag: "beta_ui",
    on: "true",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(flag.status, 303);
  const flags = await h.call("GET", `/v1/tenants/${t.id}/feature-flags`, { token: h.root });
  assert.deepEqual(flags.body.data.flags, { beta_ui: true });
  const badFlag = await client.post(`/console/tenants/${t.id}/flags`, {
    flag: "Not A Flag",
    on: "true",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(badFlag.status, 400);

  const suspended = await client.post(`/console/tenants/${t.id}/suspend`, {
    reason: "Invoice overdue",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(suspended.status, 303);
  const page = await client.get(`/console/tenants/${t.id}`);
  assert.match(textOf(page.text), /suspended \(Invoice overdue\)/);
  assert.match(page.text, />Resume tenant</);
  const resumed = await client.post(`/console/tenants/${t.id}/resume`, {
    _nonce: crypto.randomUUID(),
  });
  assert.equal(resumed.status, 303);
  const tenant = await h.call("GET", `/v1/tenants/${t.id}`, { token: h.root });
  assert.equal(tenant.body.data.status, "active");
  const actions = (await h.auditFor(t.id)).map((e) => e.action);
  assert.ok(
    actions.includes("tenant.suspended") && actions.includes("tenant.resumed"),
    `${actions}`,
  );
});

Deno.test("console tenants: a viewer member sees no write button, and a forged revoke is 403", async () => {
  await using h = await setup();
  const t = await h.tenant("eta");
  await h.tenant("theta");
  const admin = await signedIn(h, "admin");
  await createKey(admin.client, t.id, "Kept");
  const [key] = await keysOf(h, t.id);

  const { client, user } = await signedIn(h, null);
  await h.member(t.id, user.id, "viewer");
  const list = await client.get("/console/tenants");
  assert.match(textOf(list.text), /eta/);
  assert.doesNotMatch(textOf(list.text), /theta/, "a member lists only their tenants");
  assert.doesNotMatch(list.text, /Create a tenant|Create sandbox tenant/);

  const page = await client.get(`/console/tenants/${t.id}`);
  assert.equal(page.status, 200);
  assert.match(textOf(page.text), /Kept/);
  assert.doesNotMatch(page.text, /<button type="submit"[^>]*>(?!Sign out)/);
  assert.doesNotMatch(page.text, /action="\/console\/tenants\//, "no action form at all");
  // What a viewer may not read is left out (webhooks, audit, billing).
  assert.doesNotMatch(page.text, /Webhook endpoints|Audit trail|Plan and subscription/);

  const forged = await client.post(`/console/tenants/${t.id}/keys/${key.id}/revoke`, {
    _nonce: crypto.randomUUID(),
  });
  assert.equal(forged.status, 403);
  assert.match(forged.text, /role="alert"/);
  assert.equal((await keysOf(h, t.id))[0].status, "active");
  // Another tenant is not even visible.
  const other = await client.get("/console/tenants/theta");
  assert.equal(other.status, 404);
});

Deno.test("console tenants: without the CSRF token nothing is done", async () => {
  await using h = await setup();
  const t = await h.tenant("iota");
  const { client } = await signedIn(h, "admin");
  await createKey(client, t.id, "Stays");
  const [key] = await keysOf(h, t.id);
  const forged = await client.post(
    `/console/tenants/${t.id}/keys/${key.id}/revoke`,
    { _nonce: crypto.randomUUID() },
    { csrf: false },
  );
  assert.equal(forged.status, 403);
  assert.equal((await keysOf(h, t.id))[0].status, "active");
  const noTenant = await client.post("/console/tenants", { name: "X", slug: "xyz" }, {
    csrf: false,
  });
  assert.equal(noTenant.status, 403);
  assert.equal((await h.call("GET", "/v1/tenants/xyz", { token: h.root })).status, 404);
});

Deno.test("console tenants: qa sees only test tenants and may create only sandboxes", async () => {
  await using h = await setup();
  const real = await h.tenant("kappa");
  const sandbox = await h.tenant("test-lambda", {}, "/v1/tenants/test");
  const { client } = await signedIn(h, "qa");
  const list = await client.get("/console/tenants");
  assert.match(textOf(list.text), /test-lambda/);
  assert.doesNotMatch(textOf(list.text), /kappa/);
  assert.doesNotMatch(list.text, /Create a tenant/);
  assert.match(list.text, /Create sandbox tenant/);
  assert.equal((await client.get(`/console/tenants/${real.id}`)).status, 404);
  const page = await client.get(`/console/tenants/${sandbox.id}`);
  assert.equal(page.status, 200);
  assert.match(page.text, />Create key</, "qa acts as an admin inside test tenants");

  const made = await client.post("/console/tenants/test", {
    name: "QA run",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(made.status, 303);
  const id = made.headers.get("Location")!.split("?")[0].split("/").pop()!;
  const tenant = await h.call("GET", `/v1/tenants/${id}`, { token: h.root });
  assert.equal(tenant.body.data.is_test, true);
  // A forged real-tenant creation is the API's 403.
  const forged = await client.post("/console/tenants", {
    name: "Real",
    slug: "real-one",
    _nonce: crypto.randomUUID(),
  });
  assert.equal(forged.status, 403);
});

Deno.test("console tenants: support reads members' emails and audit addresses masked", async () => {
  await using h = await setup();
  const t = await h.tenant("mu-shop");
  const member = await h.user(null, "grace.hopper@example.com");
  await h.member(t.id, member.id, "admin");
  // An audited change from the console, from the console user's address.
  const admin = await signedIn(h, "admin");
  await createKey(admin.client, t.id, "Audited");
  const seen = await admin.client.get(`/console/tenants/${t.id}`);
  assert.match(textOf(seen.text), /api_key\.created .* 192\.0\.2\.10/);
  const { client } = await signedIn(h, "support");
  const page = await client.get(`/console/tenants/${t.id}`);
  assert.equal(page.status, 200);
  assert.ok(!page.text.includes("grace.hopper@example.com"));
  assert.match(page.text, /g\*\*\*@e\*\*\*\.com/);
  assert.ok(!page.text.includes("192.0.2.10"), "the audit trail's addresses are masked");
  assert.doesNotMatch(page.text, /<button type="submit"[^>]*>(?!Sign out)/, "support only reads");
});
