/**
 * DELETE /v1/users/{id}: a GDPR erasure leaves no trace of the email or the name anywhere in
 * the store (scanned whole), keeps the user id in the audit trail, frees the email, and
 * finishes after a crash.
 */
import assert from "node:assert/strict";
import { resumeErasures } from "../../domain/identity/erasure.ts";
import { MAINTENANCE_TASKS } from "../../domain/platform/maintenance.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup, TEST_PASSWORD } from "../_harness.ts";
import { assertError } from "../_assert.ts";

const EMAIL = "zebulon.quixote@example.com";
const NAME = "Zebulon Quixote";

/** A user with a trail: created, logged in, a member, invited elsewhere, a failed login, a reset. */
async function userWithHistory(h: Harness) {
  const created = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: EMAIL, name: NAME, password: TEST_PASSWORD, metadata: { phone: "555-0199" } },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.body.data.id as string;
  const session = await h.call("POST", "/v1/auth/login", {
    body: { email: EMAIL, password: TEST_PASSWORD },
    headers: { "User-Agent": "Zebulon's phone" },
    ip: "198.51.100.23",
  });
  assert.equal(session.status, 200, session.text);
  await h.call("POST", "/v1/auth/login", { body: { email: EMAIL, password: "wrong password!" } });
  const acme = await h.tenant("acme");
  const globex = await h.tenant("globex");
  await h.member(acme.id, id, "owner");
  const invited = await h.call("POST", "/v1/tenants/globex/invitations", {
    token: h.root,
    body: { email: EMAIL.toUpperCase(), role: "viewer" },
  });
  assert.equal(invited.status, 201, invited.text);
  await h.call("POST", `/v1/users/${id}/reset-password`, { token: h.root });
  return { id, token: session.body.data.token as string, acme, globex };
}

function assertNoPii(dump: string) {
  assert.ok(!dump.toLowerCase().includes(EMAIL), "the email is still in the store");
  assert.ok(!dump.includes(NAME), "the name is still in the store");
  assert.ok(!dump.includes("Zebulon"), "part of the name is still in the store");
  assert.ok(!dump.includes("198.51.100.23"), "the IP is still in the store");
  assert.ok(!dump.includes("555-0199"), "the metadata is still in the store");
}

Deno.test("DELETE /v1/users/{id}: no trace of the email or name anywhere in KV; the id stays", async () => {
  await using h = await setup();
  const { id, token, acme } = await userWithHistory(h);
  assert.ok((await h.dump()).includes(EMAIL), "the fixture stores the email");

  const res = await h.call("DELETE", `/v1/users/${id}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.id, id);
  assert.equal(res.body.data.status, "deleted");
  assert.equal(res.body.data.name, "[erased]");
  assert.match(res.body.data.email, /@erased\.invalid$/);
  assert.ok(res.body.data.deleted_at);

  assertNoPii(await h.dump());
  // The password, the sessions, the memberships and the pending reset are gone.
  assert.equal((await h.kv.get(keys.password(id))).versionstamp, null);
  assertError(await h.call("GET", "/v1/auth/me", { token }), 401, "UNAUTHORIZED");
  const members = await h.call("GET", `/v1/tenants/${acme.id}/members`, { token: h.root });
  assert.deepEqual(members.body.data, []);
  assert.equal((await h.kv.get(keys.erasure(id))).versionstamp, null);
  // The audit trail keeps the user id, and says what happened.
  const trail = await h.call("GET", `/v1/users/${id}/audit-trail`, { token: h.root });
  const actions = trail.body.data.map((e: { action: string }) => e.action);
  assert.ok(actions.includes("user.created"));
  assert.ok(actions.includes("user.erased"));
  assert.ok(actions.includes("membership.deleted"));
  const created = trail.body.data.find((e: { action: string }) => e.action === "user.created");
  assert.equal(created.changes.email.after, "[erased]");
  assert.equal(created.changes.name.after, "[erased]");
  const login = trail.body.data.find((e: { action: string }) => e.action === "session.created");
  assert.equal(login.actor_id, id);
  assert.equal(login.ip_address, null);
  assert.equal(login.user_agent, null);
});

Deno.test("DELETE /v1/users/{id}: the email is free again, and a new account with it is someone else", async () => {
  await using h = await setup();
  const { id } = await userWithHistory(h);
  await h.call("DELETE", `/v1/users/${id}`, { token: h.root });
  const again = await h.call("POST", "/v1/users", {
    token: h.root,
    body: { email: EMAIL, name: "New Zebulon", password: TEST_PASSWORD },
  });
  assert.equal(again.status, 201, again.text);
  assert.notEqual(again.body.data.id, id);
  const login = await h.call("POST", "/v1/auth/login", {
    body: { email: EMAIL, password: TEST_PASSWORD },
  });
  assert.equal(login.status, 200);
  assert.equal(login.body.data.user.id, again.body.data.id);
  // The old invitation to the address no longer names it.
  const invitations = await h.call("GET", "/v1/tenants/globex/invitations", { token: h.root });
  assert.ok(!invitations.text.includes(EMAIL));
});

Deno.test("DELETE /v1/users/{id}: 404 twice; 412 stale If-Match; 403 self, staff by admin, support; 401", async () => {
  await using h = await setup();
  const admin = await h.user("admin");
  const support = await h.user("support");
  const user = await h.user(null);
  const read = await h.call("GET", `/v1/users/${user.id}`, { token: h.root });
  await h.call("PATCH", `/v1/users/${user.id}`, { token: h.root, body: { name: "Changed" } });
  assertError(
    await h.call("DELETE", `/v1/users/${user.id}`, {
      token: h.root,
      headers: { "If-Match": read.headers.get("ETag")! },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  assertError(await h.call("DELETE", `/v1/users/${user.id}`), 401, "UNAUTHORIZED");
  assertError(
    await h.call("DELETE", `/v1/users/${user.id}`, { token: support.token }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("DELETE", `/v1/users/${admin.id}`, { token: admin.token }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("DELETE", `/v1/users/${support.id}`, { token: admin.token }),
    403,
    "FORBIDDEN",
  );
  assert.equal(
    (await h.call("DELETE", `/v1/users/${user.id}`, { token: admin.token })).status,
    200,
  );
  assertError(
    await h.call("DELETE", `/v1/users/${user.id}`, { token: admin.token }),
    404,
    "NOT_FOUND",
  );
  // An erased user cannot be changed back.
  assertError(
    await h.call("PATCH", `/v1/users/${user.id}`, { token: h.root, body: { status: "active" } }),
    404,
    "NOT_FOUND",
  );
});

Deno.test("DELETE /v1/users/{id}: the last owner of a tenant may be erased (the tenant keeps no owner)", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const user = await h.user(null);
  await h.member(t.id, user.id, "owner");
  const res = await h.call("DELETE", `/v1/users/${user.id}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  const owners = await h.kv.get<Deno.KvU64>(keys.ownerCount(t.id));
  assert.equal(owners.value?.value ?? 0n, 0n);
});

Deno.test("erasure: a crash after the tombstone is finished by the cron (and by the next DELETE)", async () => {
  await using h = await setup();
  const { id } = await userWithHistory(h);
  // What the first commit leaves behind when the process dies right after it.
  const user = (await h.kv.get<Record<string, unknown>>(keys.user(id))).value!;
  await h.kv.atomic()
    .set(keys.user(id), {
      ...user,
      email: `${id.toLowerCase()}@erased.invalid`,
      name: "[erased]",
      metadata: {},
      status: "deleted",
    })
    .delete(keys.userEmail(EMAIL))
    .set(keys.erasure(id), { user_id: id, email: EMAIL, name: NAME, started_at: "" })
    .commit();
  assert.ok((await h.dump()).includes("198.51.100.23"));

  const task = MAINTENANCE_TASKS.find((t) => t.name === "resume-erasures")!;
  assert.deepEqual(await task.run(h.svc), { erasures_finished: 1 });
  assertNoPii(await h.dump());
  assert.equal(await resumeErasures(h.svc), 0);

  // Left unfinished again, the next DELETE finishes it instead of answering 404.
  await h.kv.set(keys.erasure(id), { user_id: id, email: EMAIL, name: NAME, started_at: "" });
  const res = await h.call("DELETE", `/v1/users/${id}`, { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.equal((await h.kv.get(keys.erasure(id))).versionstamp, null);
});

Deno.test("DELETE /v1/users/{id}: two concurrent erasures make one", async () => {
  await using h = await setup();
  const user = await h.user(null);
  const answers = await Promise.all([
    h.call("DELETE", `/v1/users/${user.id}`, { token: h.root }),
    h.call("DELETE", `/v1/users/${user.id}`, { token: h.root }),
  ]);
  assert.ok(answers.some((r) => r.status === 200), answers.map((r) => r.text).join("\n"));
  const erased = (await h.auditFor(user.id)).filter((e) => e.action === "user.erased");
  assert.equal(erased.length, 1);
});
