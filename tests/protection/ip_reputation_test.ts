import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";
import { IpGuard, MAX_TALLIED_ADDRESSES } from "../../domain/protection/ip_guard.ts";
import { blockByOperator } from "../../domain/protection/ip_reputation.ts";
import { DEFAULT_REPUTATION } from "../../domain/protection/ip_reputation.ts";
import { openKv } from "../../kv/open.ts";
import { SYSTEM_ACTOR } from "../../domain/shared/services.ts";

const ATTACKER = "198.51.100.23";
const MINUTE = 60_000;

type Harness = Awaited<ReturnType<typeof setup>>;

/** `n` failed logins from `ip`, each on another account (as credential stuffing does). */
async function failLogins(h: Harness, ip: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await h.call("POST", "/v1/auth/login", {
      body: { email: `victim${i}@example.com`, password: "wrong password here" },
      ip,
    });
    assert.equal(res.status, 401);
  }
}

const health = (h: Harness, ip: string) => h.call("GET", "/health", { ip });

Deno.test("ip reputation: failed logins over many accounts block the address, for a period that grows", async () => {
  await using h = await setup();
  // 19 failures score 95: below the threshold of 100.
  await failLogins(h, ATTACKER, 19);
  await h.ipGuard.flush();
  assert.equal((await health(h, ATTACKER)).status, 200);
  await failLogins(h, ATTACKER, 1);
  await h.ipGuard.flush();

  // Blocked before authentication, on every path: public, authenticated, verify's fast path.
  const refused = await health(h, ATTACKER);
  assertError(refused, 403, "FORBIDDEN");
  assert.match(refused.body.error.message, /blocked until 2026-03-01T12:15:00.000Z/);
  assert.equal(refused.headers.get("Retry-After"), String(15 * 60));
  assertError(
    await h.call("GET", "/v1/tenants", { token: h.root, ip: ATTACKER }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: "x" }, ip: ATTACKER }),
    403,
    "FORBIDDEN",
  );
  // Other addresses are untouched.
  assert.equal((await health(h, "198.51.100.24")).status, 200);

  const rep = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, { token: h.root });
  assert.equal(rep.status, 200);
  assert.equal(rep.body.data.score, 100);
  assert.equal(rep.body.data.window.login_failures, 20);
  assert.equal(rep.body.data.blocked, true);
  assert.equal(rep.body.data.blocked_until, "2026-03-01T12:15:00.000Z");
  assert.equal(rep.body.data.blocks.length, 1);
  assert.equal(rep.body.data.blocks[0].source, "auto");
  await h.ipGuard.flush();
  const counted = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, {
    token: h.root,
  });
  assert.equal(counted.body.data.totals.blocked_requests, 3, "refused requests are counted");
  assert.equal(counted.body.data.score, 100, "and add nothing to the score");

  // The block ends with its period; the window has slid past the failures too.
  h.advance(15 * MINUTE);
  assert.equal((await health(h, ATTACKER)).status, 200);

  // Again within the day: twice as long.
  await failLogins(h, ATTACKER, 20);
  await h.ipGuard.flush();
  const again = await health(h, ATTACKER);
  assertError(again, 403, "FORBIDDEN");
  assert.equal(again.headers.get("Retry-After"), String(30 * 60));
  h.advance(30 * MINUTE);
  assert.equal((await health(h, ATTACKER)).status, 200);

  // The audit trail holds both automatic blocks, by the system.
  const audit = await h.call("GET", "/v1/admin/audit?action=ip_block.created", { token: h.root });
  assert.equal(audit.status, 200);
  assert.equal(audit.body.data.length, 2);
  assert.equal(audit.body.data[0].actor_id, "system");
});

Deno.test("ip reputation: bad tokens, 429s and 4xx answers count with their weights", async () => {
  await using h = await setup();
  for (let i = 0; i < 4; i++) {
    await h.call("GET", "/v1/tenants", { token: "stw_not_a_token", ip: ATTACKER });
  }
  for (let i = 0; i < 3; i++) {
    await h.call("GET", "/v1/tenants/nope", { token: h.root, ip: ATTACKER });
  }
  // Successful answers and verify's business outcomes count for nothing.
  await h.call("GET", "/v1/tenants", { token: h.root, ip: ATTACKER });
  await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: "x" }, ip: ATTACKER });
  await h.ipGuard.flush();
  const rep = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, { token: h.root });
  assert.deepEqual(rep.body.data.window, {
    login_failures: 0,
    auth_failures: 4,
    rate_limited: 0,
    client_errors: 3,
    blocked_requests: 0,
  });
  assert.equal(rep.body.data.score, 4 * 5 + 3 * 0.5);
  // 16 minutes later the window is empty; the totals stay.
  h.advance(16 * MINUTE);
  const later = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, {
    token: h.root,
  });
  assert.equal(later.body.data.score, 0);
  assert.equal(later.body.data.totals.auth_failures, 4);
});

Deno.test("ip reputation: the allowlist wins over automatic and manual blocks", async () => {
  await using h = await setup();
  const put = await h.call("PUT", "/v1/admin/system/ip-allowlist", {
    token: h.root,
    body: { entries: [{ cidr: "198.51.100.7/24", note: "office" }] },
  });
  assert.equal(put.status, 200);
  assert.deepEqual(put.body.data.entries, [{ cidr: "198.51.100.0/24", note: "office" }]);
  await failLogins(h, ATTACKER, 30);
  await h.ipGuard.flush();
  assert.equal((await health(h, ATTACKER)).status, 200, "never blocked automatically");
  const block = await h.call("POST", "/v1/admin/system/ip-blocks", {
    token: h.root,
    body: { cidr: "198.51.0.0/16", reason: "a noisy network" },
  });
  assert.equal(block.status, 201);
  assert.equal((await health(h, ATTACKER)).status, 200, "allowlisted inside a blocked range");
  assertError(await health(h, "198.51.7.7"), 403, "FORBIDDEN");
  const rep = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, { token: h.root });
  assert.equal(rep.body.data.blocked, false);
  assert.ok(rep.body.data.score >= 100);
});

Deno.test("ip reputation: loopback addresses are never blocked automatically", async () => {
  await using h = await setup();
  await failLogins(h, "127.0.0.1", 25);
  await h.ipGuard.flush();
  assert.equal((await health(h, "127.0.0.1")).status, 200);
});

Deno.test("ip blocks: an operator blocks an address or a range, lists and lifts blocks", async () => {
  await using h = await setup();
  const created = await h.call("POST", "/v1/admin/system/ip-blocks", {
    token: h.root,
    body: { ip: ATTACKER, reason: "credential stuffing", expires_at: "2026-03-02T12:00:00Z" },
  });
  assert.equal(created.status, 201);
  const block = created.body.data;
  assert.match(block.id, /^ipb_/);
  assert.equal(block.cidr, `${ATTACKER}/32`);
  assert.equal(block.ip, ATTACKER);
  assert.equal(block.source, "manual");
  assert.equal(block.expires_at, "2026-03-02T12:00:00.000Z");
  assert.ok(created.headers.get("ETag"));
  assertError(await health(h, ATTACKER), 403, "FORBIDDEN");
  // An IPv4-mapped IPv6 address is the same client.
  assertError(await health(h, `::ffff:${ATTACKER}`), 403, "FORBIDDEN");

  const range = await h.call("POST", "/v1/admin/system/ip-blocks", {
    token: h.root,
    body: { cidr: "2001:DB8:0:0:1::/80", reason: "a hosting range" },
  });
  assert.equal(range.status, 201);
  assert.equal(range.body.data.cidr, "2001:db8:0:0:1::/80");
  assert.equal(range.body.data.ip, null);
  assert.equal(range.body.data.expires_at, null);
  assertError(await health(h, "2001:db8::1:0:0:5"), 403, "FORBIDDEN");

  const list = await h.call("GET", "/v1/admin/system/ip-blocks", { token: h.root });
  assert.equal(list.status, 200);
  assert.equal(list.body.pagination.total, 2);
  assert.deepEqual(list.body.data.map((b: { id: string }) => b.id), [block.id, range.body.data.id]);
  const auto = await h.call("GET", "/v1/admin/system/ip-blocks?source=auto", { token: h.root });
  assert.equal(auto.body.pagination.total, 0);

  // A stale If-Match is refused; the right one lifts the block.
  assertError(
    await h.call("DELETE", `/v1/admin/system/ip-blocks/${block.id}`, {
      token: h.root,
      headers: { "If-Match": '"00000000000000000000"' },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  const lifted = await h.call("DELETE", `/v1/admin/system/ip-blocks/${block.id}`, {
    token: h.root,
    headers: { "If-Match": created.headers.get("ETag")! },
  });
  assert.equal(lifted.status, 200);
  assert.equal(lifted.body.data.id, block.id);
  assert.equal((await health(h, ATTACKER)).status, 200);
  assertError(
    await h.call("DELETE", `/v1/admin/system/ip-blocks/${block.id}`, { token: h.root }),
    404,
    "NOT_FOUND",
  );
  const rep = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, { token: h.root });
  assert.equal(rep.body.data.blocks.length, 1);
  assert.equal(rep.body.data.blocks[0].lifted_at, "2026-03-01T12:00:00.000Z");

  // A block with an end stops by itself.
  h.advance(24 * 3_600_000);
  const after = await h.call("GET", "/v1/admin/system/ip-blocks", { token: h.root });
  assert.equal(after.body.pagination.total, 1, "the range has no end");

  const audit = await h.call("GET", "/v1/admin/audit?action=ip_block.lifted", { token: h.root });
  assert.equal(audit.body.data.length, 1);
});

Deno.test("ip blocks: bad input is 400 and changes nothing; a block of one's own address is 422", async () => {
  await using h = await setup();
  const post = (body: unknown, ip?: string) =>
    h.call("POST", "/v1/admin/system/ip-blocks", { token: h.root, body, ip });
  assertError(await post({ reason: "neither" }), 400, "BAD_REQUEST");
  assertError(await post({ ip: ATTACKER, cidr: "10.0.0.0/8", reason: "both" }), 400, "BAD_REQUEST");
  assertError(await post({ ip: "300.1.1.1", reason: "x" }), 400, "BAD_REQUEST");
  assertError(await post({ cidr: "10.0.0.0/33", reason: "x" }), 400, "BAD_REQUEST");
  assertInvalid(await post({ ip: ATTACKER }), "json.reason");
  assertInvalid(await post({ ip: ATTACKER, reason: "x", extra: 1 }));
  assertError(
    await post({ ip: ATTACKER, reason: "x", expires_at: "2026-03-01T11:00:00Z" }),
    400,
    "BAD_REQUEST",
  );
  assertError(await post({ cidr: "198.51.100.0/24", reason: "x" }, ATTACKER), 422, "UNPROCESSABLE");
  const list = await h.call("GET", "/v1/admin/system/ip-blocks", { token: h.root });
  assert.equal(list.body.pagination.total, 0);
  assertInvalid(
    await h.call("PUT", "/v1/admin/system/ip-allowlist", {
      token: h.root,
      body: { entries: [{ cidr: "not a range" }] },
    }),
    "json.entries.0.cidr",
  );
  assertInvalid(
    await h.call("GET", "/v1/admin/system/ip-reputation?min_score=-1", { token: h.root }),
    "query.min_score",
  );
  assertError(
    await h.call("GET", "/v1/admin/system/ip-reputation/not-an-ip", { token: h.root }),
    400,
    "BAD_REQUEST",
  );
});

Deno.test("ip reputation: 401 without credentials; 403 without the system permissions; support sees masked addresses", async () => {
  await using h = await setup();
  await h.call("POST", "/v1/admin/system/ip-blocks", {
    token: h.root,
    body: { ip: ATTACKER, reason: "x" },
  });
  for (
    const [method, path] of [
      ["GET", "/v1/admin/system/ip-reputation"],
      ["GET", `/v1/admin/system/ip-reputation/${ATTACKER}`],
      ["GET", "/v1/admin/system/ip-blocks"],
      ["GET", "/v1/admin/system/ip-allowlist"],
    ]
  ) {
    assertError(await h.call(method, path), 401, "UNAUTHORIZED");
  }
  const support = await h.user("support");
  const list = await h.call("GET", "/v1/admin/system/ip-blocks", { token: support.token });
  assert.equal(list.status, 200);
  assert.equal(list.body.data[0].ip, "198.51.x.x");
  const rep = await h.call("GET", "/v1/admin/system/ip-reputation", { token: support.token });
  assert.equal(rep.body.data[0].ip, "198.51.x.x");
  assertError(
    await h.call("POST", "/v1/admin/system/ip-blocks", {
      token: support.token,
      body: { ip: "198.51.100.99", reason: "x" },
    }),
    403,
    "FORBIDDEN",
  );
  assertError(
    await h.call("PUT", "/v1/admin/system/ip-allowlist", {
      token: support.token,
      body: { entries: [] },
    }),
    403,
    "FORBIDDEN",
  );
  const finance = await h.user("finance");
  assertError(
    await h.call("GET", "/v1/admin/system/ip-reputation", { token: finance.token }),
    403,
    "FORBIDDEN",
  );
  // A tenant's member holds no platform permission.
  const tenantToken = await h.serviceToken(["keys:read"], (await h.tenant("acme")).id);
  assertError(
    await h.call("GET", "/v1/admin/system/ip-blocks", { token: tenantToken.token }),
    403,
    "FORBIDDEN",
  );
});

Deno.test("ip allowlist: If-Match guards a replacement; the same entries once each", async () => {
  await using h = await setup();
  const first = await h.call("GET", "/v1/admin/system/ip-allowlist", { token: h.root });
  assert.deepEqual(first.body.data.entries, []);
  assert.equal(first.headers.get("ETag"), '"0"');
  const put = await h.call("PUT", "/v1/admin/system/ip-allowlist", {
    token: h.root,
    headers: { "If-Match": first.headers.get("ETag")! },
    body: { entries: [{ cidr: "10.0.0.0/8" }, { cidr: "10.1.2.3/8", note: "again" }] },
  });
  assert.equal(put.status, 200);
  assert.deepEqual(put.body.data.entries, [{ cidr: "10.0.0.0/8", note: "again" }]);
  assertError(
    await h.call("PUT", "/v1/admin/system/ip-allowlist", {
      token: h.root,
      headers: { "If-Match": first.headers.get("ETag")! },
      body: { entries: [] },
    }),
    412,
    "PRECONDITION_FAILED",
  );
  const audit = await h.call("GET", "/v1/admin/audit?action=ip_allowlist.updated", {
    token: h.root,
  });
  assert.equal(audit.body.data.length, 1);
});

Deno.test("ip reputation: the list is worst first, filtered, with its total", async () => {
  await using h = await setup();
  await failLogins(h, "198.51.100.1", 2);
  await failLogins(h, "198.51.100.2", 6);
  await failLogins(h, "198.51.100.3", 4);
  await h.ipGuard.flush();
  await h.call("POST", "/v1/admin/system/ip-blocks", {
    token: h.root,
    body: { ip: "198.51.100.1", reason: "x" },
  });
  const all = await h.call("GET", "/v1/admin/system/ip-reputation?limit=2", { token: h.root });
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.data.map((r: { ip: string }) => r.ip), [
    "198.51.100.2",
    "198.51.100.3",
  ]);
  assert.equal(all.body.pagination.total, 3);
  assert.equal(all.body.pagination.has_more, true);
  const page2 = await h.call("GET", "/v1/admin/system/ip-reputation?limit=2&page=2", {
    token: h.root,
  });
  assert.deepEqual(page2.body.data.map((r: { ip: string }) => r.ip), ["198.51.100.1"]);
  const blocked = await h.call("GET", "/v1/admin/system/ip-reputation?blocked=true", {
    token: h.root,
  });
  assert.deepEqual(blocked.body.data.map((r: { ip: string }) => r.ip), ["198.51.100.1"]);
  const worst = await h.call("GET", "/v1/admin/system/ip-reputation?min_score=20", {
    token: h.root,
  });
  assert.deepEqual(worst.body.data.map((r: { ip: string }) => r.ip), [
    "198.51.100.2",
    "198.51.100.3",
  ]);
});

Deno.test("ip reputation: the tally holds at most its bound of addresses", async () => {
  await using h = await setup();
  const guard = new IpGuard(h.svc, { ...DEFAULT_REPUTATION, blockScore: 0 });
  for (let i = 0; i < MAX_TALLIED_ADDRESSES + 50; i++) {
    guard.note(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, "client_errors");
    assert.ok(guard.tallied <= MAX_TALLIED_ADDRESSES);
  }
  await guard.flush();
  assert.equal(guard.tallied, 0);
});

Deno.test("ip blocks: a block made by one process is enforced by another on the same store", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/store.sqlite3`;
  await using h = await setup();
  const kvA = await openKv(path);
  const kvB = await openKv(path);
  const a = new IpGuard({ ...h.svc, kv: kvA }, DEFAULT_REPUTATION);
  const b = new IpGuard({ ...h.svc, kv: kvB }, DEFAULT_REPUTATION);
  try {
    await a.start(60_000);
    await b.start(60_000);
    assert.equal(b.rules.blocking, false);
    await blockByOperator({ ...h.svc, kv: kvA }, SYSTEM_ACTOR, { ip: ATTACKER, reason: "x" });
    // B learns of it through its watch: wait for it (bounded), without timing anything.
    for (let i = 0; i < 200 && !b.rules.blocking; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(b.refuse(ATTACKER), "process B refuses the address");
    assert.equal(b.refuse("198.51.100.24"), null);
  } finally {
    await a.stop();
    await b.stop();
    kvA.close();
    kvB.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ip reputation: the threshold changes at run time through the configuration API", async () => {
  await using h = await setup();
  const config = await h.call("GET", "/v1/admin/config", { token: h.root });
  assert.equal(config.body.data.settings.ip_block_score.value, 100);
  const patched = await h.call("PATCH", "/v1/admin/config", {
    token: h.root,
    headers: { "If-Match": config.headers.get("ETag")! },
    body: { ip_block_score: 10, ip_block_minutes: 5 },
  });
  assert.equal(patched.status, 200, patched.text);
  await failLogins(h, ATTACKER, 2);
  await h.ipGuard.flush();
  const refused = await health(h, ATTACKER);
  assertError(refused, 403, "FORBIDDEN");
  assert.equal(refused.headers.get("Retry-After"), String(5 * 60));
});

Deno.test("ip blocks: a refused request is logged with its code and not counted as another error", async () => {
  await using h = await setup();
  const created = await h.call("POST", "/v1/admin/system/ip-blocks", {
    token: h.root,
    body: { ip: ATTACKER, reason: "scraping" },
  });
  assert.equal(created.status, 201);
  for (let i = 0; i < 3; i++) assertError(await health(h, ATTACKER), 403, "FORBIDDEN");
  await h.ipGuard.flush();
  const rep = await h.call("GET", `/v1/admin/system/ip-reputation/${ATTACKER}`, { token: h.root });
  assert.equal(rep.body.data.window.blocked_requests, 3);
  assert.equal(rep.body.data.window.client_errors, 0, "a refusal is not also a 4xx of its own");

  await h.svc.aggregator.flush();
  const logs = await h.call("GET", "/v1/admin/logs?status=403", { token: h.root });
  assert.equal(logs.status, 200);
  const refused = logs.body.data.filter((e: { ip: string }) => e.ip === ATTACKER);
  assert.equal(refused.length, 3);
  for (const e of refused) {
    assert.equal(e.error_code, "FORBIDDEN");
    assert.equal(e.route, null, "refused before routing");
    assert.match(e.request_id, /^req_/);
  }
});
