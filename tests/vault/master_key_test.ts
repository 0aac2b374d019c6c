/**
 * The vault's master key on first start (domain/vault/master_key.ts): STEWARD_MASTER_KEY wins;
 * a local store gets a key file beside it, made once (mode 0600) and reused; a remote store
 * without the variable refuses to start. /health reports the vault.
 */
import assert from "node:assert/strict";
import {
  MasterKeyError,
  masterKeyId,
  masterKeyPath,
  resolveMasterKey,
} from "../../domain/vault/master_key.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { setup } from "../_harness.ts";

Deno.test("master key: a local store's first start makes a key file (0600) that later starts reuse", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A first start: not even the store's folder exists yet.
    const store = `${dir}/data/steward.kv`;
    const first = await resolveMasterKey(undefined, store);
    assert.equal(first.generated, true);
    assert.equal(first.source, "file");
    assert.equal(first.path, masterKeyPath(store));
    assert.equal(first.bytes.length, 32);
    assert.equal((await Deno.stat(first.path!)).mode! & 0o777, 0o600);
    const again = await resolveMasterKey(undefined, store);
    assert.equal(again.generated, false);
    assert.deepEqual(again.bytes, first.bytes);
    // Two processes starting at once on a new store end up with one key.
    const other = `${dir}/other.kv`;
    const [a, b] = await Promise.all([
      resolveMasterKey(undefined, other),
      resolveMasterKey(undefined, other),
    ]);
    assert.deepEqual(a.bytes, b.bytes);
    assert.equal([a, b].filter((k) => k.generated).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("master key: STEWARD_MASTER_KEY wins; a remote store refuses to start without it", async () => {
  const env = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const fromEnv = await resolveMasterKey(env, "https://kv.example.com/db");
  assert.equal(fromEnv.source, "env");
  assert.equal(fromEnv.path, null);
  await assert.rejects(
    () => resolveMasterKey(undefined, "https://kv.example.com/db"),
    (err: Error) =>
      err instanceof MasterKeyError && /STEWARD_MASTER_KEY is required/.test(err.message),
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(masterKeyPath(`${dir}/s.kv`), "not a key");
    await assert.rejects(() => resolveMasterKey(undefined, `${dir}/s.kv`), MasterKeyError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("health: reports the vault unsealed with its key id, and degraded when sealed", async () => {
  await using h = await setup();
  const open = await h.call("GET", "/health");
  assert.equal(open.body.data.status, "ok");
  assert.equal(open.body.data.vault.state, "unsealed");
  assert.match(open.body.data.vault.key_id, /^[0-9a-f]{12}$/);
  const key = crypto.getRandomValues(new Uint8Array(32));
  assert.equal(new Vault(key).state.key_id, masterKeyId(key));
  h.svc.vault = new Vault(null);
  const sealed = await h.call("GET", "/health");
  assert.equal(sealed.body.data.status, "degraded");
  assert.equal(sealed.body.data.vault.state, "sealed");
  assert.equal(sealed.body.data.checks.vault.status, "failing");
  const ready = await h.call("GET", "/health/ready");
  assert.equal(ready.status, 503);
});
