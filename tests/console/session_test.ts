import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { ConsoleClient, signedIn, textOf } from "./_console.ts";

Deno.test("console: without a session every page sends to sign-in, keeping where it was going", async () => {
  await using h = await setup();
  const client = new ConsoleClient(h);
  const page = await client.get("/console/tenants?offset=50");
  assert.equal(page.status, 303);
  assert.equal(page.headers.get("Location"), "/console/login?next=%2Fconsole%2Ftenants");
  const login = await client.get("/console/login");
  assert.equal(login.status, 200);
  assert.match(login.text, /<!doctype html>/i);
  assert.match(login.text, /<label class="field"><span>Email or username<\/span>/);
  // Pages, assets and errors all carry the console's policy: no inline code, own origin only.
  assert.match(
    login.headers.get("Content-Security-Policy")!,
    /script-src 'self'; style-src 'self'/,
  );
  assert.doesNotMatch(login.text, /<script>|style="|onclick=/);
  const asset = await client.get("/console/assets/htmx.min.js");
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get("Content-Type")!, /javascript/);
  assert.equal((await client.get("/console/assets/nope.js")).status, 404);
});

Deno.test("console: signing in sets an HttpOnly, SameSite=Strict session cookie; Secure over HTTPS", async () => {
  await using h = await setup({ env: { STEWARD_TRUSTED_PROXIES: "192.0.2.0/24" } });
  const user = await h.user("admin");
  const client = new ConsoleClient(h);
  await client.get("/console/login");
  const res = await h.app.request("/console/login", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Cookie: client.cookieHeader,
      "X-Forwarded-Proto": "https",
    },
    body: new URLSearchParams({
      _csrf: client.csrf,
      login: user.email,
      password: "correct horse battery staple",
      next: "/console/users",
    }).toString(),
  }, { remoteAddr: { hostname: "192.0.2.1" } });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("Location"), "/console/users");
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("steward_console="))!;
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.match(cookie, /Secure/);
  assert.match(cookie, /Path=\/console/);
  assert.match(cookie, /Max-Age=43200/, "the session's absolute limit (12 h)");
  // Over plain HTTP it is not Secure (it would never be sent back).
  const plain = new ConsoleClient(h);
  const ok = await plain.signIn(user.email);
  assert.equal(ok.status, 303);
});

Deno.test("console: a wrong password is refused with the API's message; the sign-in form needs its token", async () => {
  await using h = await setup();
  const user = await h.user("admin");
  const client = new ConsoleClient(h);
  const wrong = await client.signIn(user.email, "not the password at all");
  assert.equal(wrong.status, 422);
  assert.match(textOf(wrong.text), /invalid email, username or password/);
  assert.equal(client.hasCookie("steward_console"), false);
  await client.get("/console/login");
  const forged = await client.post("/console/login", {
    login: user.email,
    password: "correct horse battery staple",
    _csrf: "forged",
  });
  assert.equal(forged.status, 403);
  assert.equal(client.hasCookie("steward_console"), false);
  // Another origin's redirect target is refused: back to the console.
  await client.get("/console/login");
  const open = await client.post("/console/login", {
    login: user.email,
    password: "correct horse battery staple",
    next: "https://evil.example.com/",
  });
  assert.equal(open.headers.get("Location"), "/console");
});

Deno.test("console: every state change needs the session's CSRF token", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  const forged = await client.post("/console/logout", {}, { csrf: false });
  assert.equal(forged.status, 403);
  assert.equal((await client.get("/console")).status, 200, "still signed in");
  const other = await client.post("/console/logout", { _csrf: "0".repeat(40) });
  assert.equal(other.status, 403);
});

Deno.test("console: sign-out ends the API session itself", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  const session = /steward_console=([^;]+)/.exec(client.cookieHeader)![1];
  assert.equal((await h.call("GET", "/v1/auth/me", { token: session })).status, 200);
  const out = await client.post("/console/logout", {});
  assert.equal(out.status, 303);
  assert.equal(out.headers.get("Location"), "/console/login");
  assert.equal(client.hasCookie("steward_console"), false);
  assert.equal((await h.call("GET", "/v1/auth/me", { token: session })).status, 401);
});

Deno.test("console: the session's idle limit is the API's", async () => {
  await using h = await setup();
  const { client } = await signedIn(h, "admin");
  h.advance(61 * 60_000);
  const page = await client.get("/console");
  assert.equal(page.status, 303);
  assert.match(page.headers.get("Location")!, /^\/console\/login/);
  assert.equal(client.hasCookie("steward_console"), false, "the dead cookie is cleared");
});

Deno.test("console: the navigation shows the sections a role may open", async () => {
  await using h = await setup();
  const nav = (html: string) =>
    [...html.matchAll(/<li><a href="\/console[^"]*"[^>]*>([^<]+)</g)].map((m) => m[1]);
  const admin = await signedIn(h, "super_admin");
  assert.deepEqual(nav((await admin.client.get("/console")).text), [
    "Overview",
    "Tenants",
    "Users",
    "Webhooks",
    "Operations",
    "Finance",
    "Vault",
    "Audit",
  ]);
  const finance = await signedIn(h, "finance");
  const seen = nav((await finance.client.get("/console")).text);
  assert.ok(seen.includes("Finance"));
  assert.ok(!seen.includes("Operations"));
  assert.ok(!seen.includes("Vault"));
  // A tenant member with no platform role: the tenants it belongs to, no platform figures.
  const member = await signedIn(h, null);
  const page = await member.client.get("/console");
  assert.deepEqual(nav(page.text), ["Overview", "Tenants"]);
  assert.match(textOf(page.text), /Your role reads no platform figures/);
});
