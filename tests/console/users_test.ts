/**
 * The console's Users section in-process: the list (search, filters, pages), a user's page with
 * sessions and memberships, each action done through the API and audited, the erase
 * confirmation, support's masked view, and refusals (no permission, no CSRF token).
 */
import assert from "node:assert/strict";
import { type Harness, setup, TEST_PASSWORD } from "../_harness.ts";
import { signedIn, textOf } from "./_console.ts";

let nonces = 0;
const nonce = () => `nonce-${++nonces}`;

const statusOf = async (h: Harness, id: string) =>
  (await h.call("GET", `/v1/users/${id}`, { token: h.root })).body.data.status as string;

Deno.test("console users: the list searches, filters and pages; unknown filters answer the API's 400", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  for (let i = 0; i < 26; i++) await h.user(null, `crowd${i}@example.com`);
  await h.user("support", "grace.hopper@example.com");

  const all = await client.get("/console/users");
  assert.equal(all.status, 200, all.text);
  assert.match(all.text, /<a href="\/console\/users"[^>]*aria-current="page">Users<\/a>/);
  assert.match(all.text, /<caption>Users<\/caption>/);
  assert.match(textOf(all.text), /1–25 of 28/);
  assert.match(all.text, /href="\/console\/users\?offset=25">Next</);
  const next = await client.get("/console/users?offset=25");
  assert.match(textOf(next.text), /26–28 of 28/);
  assert.match(next.text, /grace\.hopper@example\.com/);

  const found = await client.get("/console/users?search=grace");
  assert.match(found.text, /grace\.hopper@example\.com/);
  assert.doesNotMatch(found.text, /crowd1@example\.com/);
  assert.match(textOf(found.text), /1–1 of 1/);
  const byRole = await client.get("/console/users?platform_role=support");
  assert.match(byRole.text, /grace\.hopper@example\.com/);
  assert.doesNotMatch(byRole.text, /crowd/);
  assert.match(byRole.text, /<option value="support" selected>support<\/option>/);
  const blocked = await client.get("/console/users?status=blocked");
  assert.match(textOf(blocked.text), /No user matches\./);

  const tenant = await h.tenant("acme");
  const member = await h.user(null, "member@acme.example");
  await h.member(tenant.id, member.id, "admin");
  const members = await client.get("/console/users?tenant=acme");
  assert.match(members.text, /member@acme\.example/);
  assert.doesNotMatch(members.text, /crowd/);
  const unknown = await client.get("/console/users?tenant=nope");
  assert.equal(unknown.status, 400);
  assert.match(textOf(unknown.text), /no such tenant/);
});

Deno.test("console users: a user's page shows the account, live sessions and memberships", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  const tenant = await h.tenant("acme");
  const user = await h.user(null, "ada@example.com");
  await h.member(tenant.id, user.id, "owner");
  const page = await client.get(`/console/users/${user.id}`);
  assert.equal(page.status, 200, page.text);
  const text = textOf(page.text);
  assert.match(page.text, /<h1>User ada@example\.com<\/h1>/);
  assert.match(text, /Status active/);
  assert.match(page.text, /<caption>Live sessions, oldest first<\/caption>/);
  assert.match(text, /203\.0\.113\.7 harness/, "the harness's login is a live session");
  assert.match(page.text, /<a href="\/console\/tenants\/acme">Tenant acme<\/a>/);
  assert.match(text, /acme owner/);
  assert.match(page.text, /href="\/console\/audit\?resource_id=usr_/);
  for (const label of ["Block", "Suspend", "Revoke all sessions", "Send a password reset"]) {
    assert.match(page.text, new RegExp(`<button type="submit"[^>]*>${label}</button>`));
  }
  const missing = await client.get("/console/users/usr_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A");
  assert.equal(missing.status, 404);
  assert.match(textOf(missing.text), /user not found/);
});

Deno.test("console users: block, unblock, suspend, lift, revoke sessions and reset password, each audited", async () => {
  await using h = await setup();
  const { client, user: admin } = await signedIn(h, "admin");
  const target = await h.user(null, "target@example.com");
  const path = `/console/users/${target.id}`;
  // The actions audited since the last look (newest first), and who did the newest.
  let seen = (await h.auditFor(target.id)).length;
  const audited = async () => {
    const events = await h.auditFor(target.id);
    const fresh = events.slice(0, events.length - seen);
    seen = events.length;
    return { actions: fresh.map((e) => e.action), actor: fresh[0]?.actor_id };
  };

  const block = await client.post(`${path}/block`, {
    blocked: "true",
    reason: "Chargebacks",
    _nonce: "block-1",
  });
  assert.equal(block.status, 303, block.text);
  assert.equal(block.headers.get("Location"), `${path}?notice=blocked`);
  assert.equal(await statusOf(h, target.id), "blocked");
  assert.deepEqual(await audited(), {
    actions: ["user.sessions_revoked", "user.blocked"],
    actor: admin.id,
  });
  // A double submit of the same form replays the first answer: nothing new is done.
  const again = await client.post(`${path}/block`, {
    blocked: "true",
    reason: "Chargebacks",
    _nonce: "block-1",
  });
  assert.equal(again.status, 303);
  assert.deepEqual((await audited()).actions, []);
  const shown = await client.get(`${path}?notice=blocked`);
  assert.match(textOf(shown.text), /The user is blocked and signed out everywhere\./);
  assert.match(textOf(shown.text), /Blocked because Chargebacks/);
  assert.match(shown.text, />Unblock<\/button>/);

  await client.post(`${path}/block`, { blocked: "false", _nonce: nonce() });
  assert.equal(await statusOf(h, target.id), "active");
  assert.deepEqual((await audited()).actions, ["user.unblocked"]);

  const until = "2026-03-08T09:30";
  const suspend = await client.post(`${path}/suspend`, {
    until,
    reason: "Unpaid invoice",
    _nonce: nonce(),
  });
  assert.equal(suspend.headers.get("Location"), `${path}?notice=suspended`);
  assert.ok((await audited()).actions.includes("user.suspended"));
  const suspended = await client.get(path);
  assert.match(textOf(suspended.text), /suspended until 2026-03-08 09:30:00 UTC/);
  assert.match(suspended.text, />Lift the suspension<\/button>/);
  const nonsense = await client.post(`${path}/suspend`, { until: "soon", _nonce: nonce() });
  assert.equal(nonsense.status, 400);
  assert.match(nonsense.text, /role="alert"/);
  // Too far ahead: the API's own refusal, shown on the page.
  const far = await client.post(`${path}/suspend`, { until: "2028-01-01T00:00", _nonce: nonce() });
  assert.equal(far.status, 400);
  assert.match(far.text, /role="alert"/);
  await client.post(`${path}/suspend`, { until: "", _nonce: nonce() });
  assert.equal(await statusOf(h, target.id), "active");
  assert.deepEqual((await audited()).actions, ["user.unsuspended"]);

  const login = await h.call("POST", "/v1/auth/login", {
    body: { email: target.email, password: TEST_PASSWORD },
  });
  assert.equal(login.status, 200, login.text);
  const revoke = await client.post(`${path}/revoke-sessions`, { _nonce: nonce() });
  assert.equal(revoke.headers.get("Location"), `${path}?notice=revoked`);
  assert.deepEqual((await audited()).actions, ["user.sessions_revoked"]);
  assert.match(textOf((await client.get(path)).text), /No live session\./);

  const reset = await client.post(`${path}/reset-password`, { _nonce: nonce() });
  assert.equal(reset.headers.get("Location"), `${path}?notice=reset`);
  assert.deepEqual((await audited()).actions, ["user.password_reset_requested"]);
});

Deno.test("console users: erasing needs the email typed back; then only a tombstone is left", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  const target = await h.user(null, "Leaving@Example.com");
  const path = `/console/users/${target.id}`;
  assert.match((await client.get(path)).text, />Erase this user<\/button>/);

  const wrong = await client.post(`${path}/erase`, {
    confirm: "someone@example.com",
    _nonce: nonce(),
  });
  assert.equal(wrong.status, 422);
  assert.match(textOf(wrong.text), /does not match the user\S*s email: nothing was erased/);
  assert.equal(await statusOf(h, target.id), "active");
  const empty = await client.post(`${path}/erase`, { _nonce: nonce() });
  assert.equal(empty.status, 422);

  const erased = await client.post(`${path}/erase`, {
    confirm: " leaving@example.com ",
    _nonce: nonce(),
  });
  assert.equal(erased.status, 303, erased.text);
  assert.equal(erased.headers.get("Location"), `${path}?notice=erased`);
  assert.equal(await statusOf(h, target.id), "deleted");
  const actions = (await h.auditFor(target.id)).map((e) => e.action);
  assert.ok(actions.includes("user.erased"), actions.join());
  const tombstone = await client.get(`${path}?notice=erased`);
  assert.match(textOf(tombstone.text), /only a tombstone is left/);
  assert.doesNotMatch(tombstone.text, /leaving@example\.com/i);
  assert.doesNotMatch(tombstone.text, /<h2 id="actions">/, "nothing left to do to it");
});

Deno.test("console users: support reads emails and addresses masked, has no buttons, and a forged post is 403", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "support");
  const target = await h.user(null, "grace.hopper@example.com");
  const path = `/console/users/${target.id}`;

  const list = await client.get("/console/users?search=grace");
  assert.equal(list.status, 200, list.text);
  assert.match(list.text, /g\*\*\*@e\*\*\*\.com/);
  assert.doesNotMatch(list.text, /grace\.hopper/);
  const page = await client.get(path);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /<h1>User g\*\*\*@e\*\*\*\.com<\/h1>/);
  assert.doesNotMatch(page.text, /grace\.hopper|203\.0\.113\.7/, "no email, no address in clear");
  assert.doesNotMatch(page.text, /action="\/console\/users\//, "no action form");
  assert.doesNotMatch(page.text, /_nonce/);

  const forged = await client.post(`${path}/block`, { blocked: "true", _nonce: nonce() });
  assert.equal(forged.status, 403);
  assert.match(forged.text, /role="alert"/);
  const erase = await client.post(`${path}/erase`, { confirm: target.email, _nonce: nonce() });
  assert.equal(erase.status, 403);
  for (const action of ["suspend", "revoke-sessions", "reset-password"]) {
    const res = await client.post(`${path}/${action}`, { until: "", _nonce: nonce() });
    assert.equal(res.status, 403, action);
  }
  assert.equal(await statusOf(h, target.id), "active");
  assert.deepEqual(
    (await h.auditFor(target.id)).map((e) => e.action),
    ["user.created"],
    "nothing was done",
  );
});

Deno.test("console users: a form without its CSRF token is 403; a role without users:read has no Users section", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  const target = await h.user(null);
  const res = await client.post(
    `/console/users/${target.id}/block`,
    { blocked: "true", _nonce: nonce() },
    { csrf: false },
  );
  assert.equal(res.status, 403);
  assert.equal(await statusOf(h, target.id), "active");

  const finance = await signedIn(h, "finance");
  const home = await finance.client.get("/console");
  assert.doesNotMatch(home.text, /href="\/console\/users"/);
  const refused = await finance.client.get("/console/users");
  assert.equal(refused.status, 403);
  assert.equal((await finance.client.get(`/console/users/${target.id}`)).status, 403);
});
