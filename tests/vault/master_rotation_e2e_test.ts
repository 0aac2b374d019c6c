/**
 * Master key rotation across real restarts: a store sealed under key A; a start with
 * STEWARD_MASTER_KEY=B and STEWARD_MASTER_KEY_PREVIOUS=A re-wraps every data key and says so;
 * a later start with B alone opens everything (a JWT is signed with a sealed private key).
 */
import assert from "node:assert/strict";
import { randomAlnum, ServerProcess, tempDir } from "../_server.ts";

const keyText = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

Deno.test("e2e: rotate the master key with STEWARD_MASTER_KEY_PREVIOUS, then start without it", async () => {
  await using dir = await tempDir();
  const [a, b] = [keyText(), keyText()];
  const token = `stw_${randomAlnum(40)}`;
  const env = (extra: Record<string, string>) => ({
    STEWARD_KV_PATH: dir.kvPath,
    STEWARD_BOOTSTRAP_TOKEN: token,
    ...extra,
  });
  let apiKey: string;
  {
    await using server = await ServerProcess.start({ env: env({ STEWARD_MASTER_KEY: a }) });
    const as = { token };
    await server.call("POST", "/v1/tenants", { ...as, body: { name: "Acme", slug: "acme" } });
    const project = await server.call("POST", "/v1/tenants/acme/projects", {
      ...as,
      body: { name: "App" },
    });
    const key = await server.call("POST", "/v1/tenants/acme/api-keys", {
      ...as,
      body: { name: "k", environment: "live", project_id: project.body.data.id },
    });
    apiKey = key.body.data.key;
    const jwt = await server.call("POST", "/v1/tokens", { ...as, body: { key: apiKey } });
    assert.equal(jwt.status, 200, jwt.text);
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
  {
    await using server = await ServerProcess.start({
      env: env({ STEWARD_MASTER_KEY: b, STEWARD_MASTER_KEY_PREVIOUS: a }),
    });
    assert.match(server.stdout, /re-wrapped [1-9]\d* data keys/, server.stdout);
    // Answering shows the start-up done (signal handlers included) before it is stopped.
    assert.equal((await server.call("GET", "/health/live")).status, 200);
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
  {
    await using server = await ServerProcess.start({ env: env({ STEWARD_MASTER_KEY: b }) });
    const jwt = await server.call("POST", "/v1/tokens", { token, body: { key: apiKey } });
    assert.equal(jwt.status, 200, jwt.text);
    const health = await server.call("GET", "/v1/admin/vault/health", { token });
    assert.equal(health.body.data.previous_key, null);
    assert.equal(health.body.data.data_keys.wrapped_by_other_master, 0);
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
});
