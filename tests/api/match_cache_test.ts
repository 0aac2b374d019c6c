import assert from "node:assert/strict";
import { TrieRouter } from "hono/router/trie-router";
import { MatchCache } from "../../routes/match_cache.ts";
import { setup } from "../_harness.ts";

const ROUTES: [string, string][] = [
  ["ALL", "*"],
  ["GET", "/v1/tenants/:tenant"],
  ["POST", "/v1/tenants/test"],
  ["POST", "/v1/tenants/:tenant/api-keys"],
  ["GET", "/v1/tenants/:tenant/api-keys/:id"],
];

function routers() {
  const bare = new TrieRouter<string>();
  const cached = new MatchCache(new TrieRouter<string>());
  for (const [method, path] of ROUTES) {
    bare.add(method, path, `${method} ${path}`);
    cached.add(method, path, `${method} ${path}`);
  }
  return { bare, cached };
}

Deno.test("match cache: answers what the router answers, the first time and from memory", () => {
  const { bare, cached } = routers();
  const asked: [string, string][] = [
    ["GET", "/v1/tenants/ten_a"],
    ["GET", "/v1/tenants/ten_b"],
    ["POST", "/v1/tenants/test"],
    ["POST", "/v1/tenants/ten_a/api-keys"],
    ["GET", "/v1/tenants/ten_a/api-keys/key_1"],
    ["GET", "/v1/tenants/ten_b/api-keys/key_2"],
    ["DELETE", "/v1/tenants/ten_a"],
    ["GET", "/nowhere"],
    ["GET", `/v1/tenants/${"x".repeat(300)}`],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [method, path] of asked) {
      assert.deepEqual(cached.match(method, path), bare.match(method, path), `${method} ${path}`);
    }
  }
  // The over-long path is matched each time, not kept.
  assert.equal(cached.size, asked.length - 1);
});

Deno.test("match cache: two ids on one route keep their own parameters", async () => {
  await using h = await setup();
  const a = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "A", slug: "a-co" },
  });
  const b = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: "B", slug: "b-co" },
  });
  for (let round = 0; round < 2; round++) {
    for (const created of [a, b]) {
      const res = await h.call("GET", `/v1/tenants/${created.body.data.id}`, {
        token: h.root,
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.data.id, created.body.data.id);
    }
  }
});
