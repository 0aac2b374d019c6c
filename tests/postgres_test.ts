/**
 * Postgres as a health dependency. The live tests run when DATABASE_URL is set (.ci/run sets
 * it when PostgreSQL is installed) and say so when skipped.
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../pg/client.ts";
import { setup } from "./_harness.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) {
  console.log("postgres_test: DATABASE_URL is not set; the live Postgres tests are skipped");
}

Deno.test({
  name: "postgres: /health and /health/ready report a reachable Postgres with its latency",
  ignore: !url,
  fn: async () => {
    const pg = connectPostgres(url!);
    try {
      await using h = await setup({ probes: [{ name: "postgres", check: pg.ping }] });
      const ready = await h.call("GET", "/health/ready");
      assert.equal(ready.status, 200);
      assert.equal(ready.body.data.checks.postgres.status, "ok");
      assert.equal(typeof ready.body.data.checks.postgres.latency_ms, "number");
      const health = await h.call("GET", "/health");
      assert.equal(health.body.data.status, "ok");
      assert.equal(health.body.data.checks.postgres.status, "ok");
    } finally {
      await pg.close();
    }
  },
});

Deno.test("postgres: an unreachable Postgres makes /health/ready 503 and /health degraded", async () => {
  // Nothing listens on port 1: the connection is refused at once.
  const pg = connectPostgres("postgres://steward@127.0.0.1:1/none");
  try {
    await using h = await setup({ probes: [{ name: "postgres", check: pg.ping }] });
    const ready = await h.call("GET", "/health/ready");
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error.code, "UNAVAILABLE");
    assert.equal(ready.body.error.details.postgres.status, "failing");
    assert.equal(ready.body.error.details.kv.status, "ok");
    assert.equal(ready.headers.get("Retry-After"), "5");
    const health = await h.call("GET", "/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.data.status, "degraded");
  } finally {
    await pg.close();
  }
});
