/**
 * The console's Audit section in-process: filters (actor by id or email, action, tenant by id or
 * slug, resource, days), pages, each change read as a diff, support's masked view, and a role
 * without audit:read.
 */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { changedLeaves } from "../../routes/console/pages/audit.tsx";
import { signedIn, textOf } from "./_console.ts";

/** The rows of the events table (each row's text). */
const rows = (html: string) =>
  [...html.matchAll(/<tbody>([\s\S]*?)<\/tbody>/g)].flatMap((m) =>
    [...m[1].matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((r) => textOf(r[1]))
  );

Deno.test("console audit: filters by actor, action, tenant, resource and days, and pages", async () => {
  await using h = await setup();
  const { client, user: admin } = await signedIn(h, "admin");
  const adminToken = (await h.call("POST", "/v1/auth/login", {
    body: { email: admin.email, password: "correct horse battery staple" },
  })).body.data.token;
  const target = await h.user(null, "target@example.com");
  const block = await h.call("POST", `/v1/users/${target.id}/block`, {
    token: adminToken,
    body: { blocked: true },
  });
  assert.equal(block.status, 200, block.text);
  const acme = await h.tenant("acme");
  await h.tenant("globex");
  for (let i = 0; i < 26; i++) {
    const res = await h.call("PATCH", `/v1/tenants/${acme.id}`, {
      token: h.root,
      body: { metadata: { step: String(i) } },
    });
    assert.equal(res.status, 200, res.text);
  }

  const all = await client.get("/console/audit");
  assert.equal(all.status, 200, all.text);
  assert.match(all.text, /<a href="\/console\/audit"[^>]*aria-current="page">Audit<\/a>/);
  assert.match(all.text, /<caption>Audit events, newest first<\/caption>/);
  assert.match(all.text, /<option value="user\.blocked"/, "the actions to pick from");
  assert.equal(rows(all.text).length, 25);
  const total = Number(/1–25 of (\d+)/.exec(textOf(all.text))?.[1]);
  assert.ok(total > 26, `${total}`);
  assert.match(all.text, /href="\/console\/audit\?offset=25">Next</);
  const second = await client.get("/console/audit?offset=25");
  assert.match(textOf(second.text), new RegExp(`26–${Math.min(50, total)} of ${total}`));

  const blocked = await client.get("/console/audit?action=user.blocked");
  assert.deepEqual(rows(blocked.text).length, 1);
  assert.match(rows(blocked.text)[0], /user\.blocked/);
  assert.match(blocked.text, new RegExp(`<a href="/console/users/${target.id}">`));
  const both = await client.get("/console/audit?action=user.blocked,user.sessions_revoked");
  assert.equal(rows(both.text).length, 2);

  const byActor = await client.get(`/console/audit?actor=${admin.id}`);
  assert.ok(rows(byActor.text).every((r) => r.includes(admin.id)));
  assert.ok(rows(byActor.text).some((r) => r.includes("user.blocked")));
  const byEmail = await client.get(`/console/audit?actor=${encodeURIComponent(admin.email)}`);
  assert.deepEqual(rows(byEmail.text), rows(byActor.text), "an email names the same actor");
  const nobody = await client.get("/console/audit?actor=nobody%40example.com");
  assert.equal(nobody.status, 400);
  assert.match(textOf(nobody.text), /No user found by that email/);

  const bySlug = await client.get("/console/audit?tenant=globex&action=tenant.created");
  assert.equal(rows(bySlug.text).length, 1);
  assert.match(bySlug.text, /<a href="\/console\/tenants\/globex">globex<\/a>/);
  const byId = await client.get(`/console/audit?tenant=${acme.id}&action=tenant.updated`);
  assert.equal(rows(byId.text).length, 25);
  assert.match(textOf(byId.text), /1–25 of 26/);
  const unknown = await client.get("/console/audit?tenant=nope");
  assert.equal(unknown.status, 400);
  assert.match(textOf(unknown.text), /No such tenant/);

  const byResource = await client.get(`/console/audit?resource_id=${target.id}`);
  assert.ok(rows(byResource.text).every((r) => r.includes(target.id)));

  const today = new Date(h.clock.now).toISOString().slice(0, 10);
  const sameDay = await client.get(`/console/audit?from=${today}&to=${today}&action=user.blocked`);
  assert.equal(rows(sameDay.text).length, 1);
  assert.match(sameDay.text, new RegExp(`name="from" type="date" value="${today}"`));
  const later = await client.get("/console/audit?from=2099-01-01");
  assert.match(textOf(later.text), /No event matches\./);
  const backwards = await client.get("/console/audit?from=2026-03-02&to=2026-03-01");
  assert.equal(backwards.status, 400);
  assert.match(textOf(backwards.text), /from must not be after to/);
});

Deno.test("console audit: each change reads as before and after, nested keys one by one", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  const user = await h.user(null, "ada@example.com");
  for (
    const body of [{ metadata: { crm_id: "A-1" } }, {
      name: "Ada King",
      metadata: { crm_id: "A-2" },
    }]
  ) {
    const res = await h.call("PATCH", `/v1/users/${user.id}`, { token: h.root, body });
    assert.equal(res.status, 200, res.text);
  }
  const page = await client.get(`/console/audit?resource_id=${user.id}&action=user.updated`);
  const [newest] = rows(page.text);
  assert.match(newest, /metadata\.crm_id : from A-1 → to A-2/);
  assert.match(newest, /name : from User \d+ → to Ada King/);
  assert.match(page.text, /<del>A-1<\/del>/);
  assert.match(page.text, /<ins>A-2<\/ins>/);

  assert.deepEqual(
    changedLeaves({
      metadata: { before: { a: "1", b: "2" }, after: { a: "1", b: "3", c: "4" } },
      roles: { before: ["x"], after: ["x", "y"] },
      status: { before: "active", after: null },
    }),
    [
      { path: "metadata.b", before: "2", after: "3" },
      { path: "metadata.c", before: undefined, after: "4" },
      { path: "roles", before: ["x"], after: ["x", "y"] },
      { path: "status", before: "active", after: null },
    ],
  );
});

Deno.test("console audit: support reads the trail masked; a role without audit:read has no Audit section", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "support");
  const user = await h.user(null, "grace.hopper@example.com");
  const page = await client.get(`/console/audit?resource_id=${user.id}`);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /user\.created/);
  assert.match(page.text, /g\*\*\*@e\*\*\*\.com/);
  assert.doesNotMatch(page.text, /grace\.hopper/);
  // An actor given by email is looked up as support may search users: the events are shown.
  const byEmail = await client.get("/console/audit?actor=grace.hopper%40example.com");
  assert.equal(byEmail.status, 200, byEmail.text);

  const finance = await signedIn(h, "finance");
  const home = await finance.client.get("/console");
  assert.doesNotMatch(home.text, /href="\/console\/audit"/);
  assert.equal((await finance.client.get("/console/audit")).status, 403);
});
