/**
 * Backups of the whole store (domain/vault/backups.ts, backup_archive.ts): written by the API and
 * the daily cron, encrypted and compressed, kept to the newest N, listed, and restored by
 * `deno task admin restore` into an empty store with every key and value as it was. A damaged
 * or altered file, a wrong master key and a store that is not empty are refused before anything
 * is written.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { serialize } from "node:v8";
import { admin } from "../_admin.ts";
import { loadConfig } from "../../config.ts";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { sha256Hex } from "../../domain/shared/secrets.ts";
import { type Services, SYSTEM_ACTOR } from "../../domain/shared/services.ts";
import { readArchive, writeArchive } from "../../domain/vault/backup_archive.ts";
import {
  type Backup,
  BACKUP_KEY_PURPOSE,
  BACKUP_LEASE,
  restoreBackup,
  restoreStore,
  writeBackup,
} from "../../domain/vault/backups.ts";
import { Vault } from "../../domain/vault/vault.ts";
import { acquireLease } from "../../kv/lease.ts";
import { keys } from "../../kv/keys.ts";
import { assertError } from "../_assert.ts";
import { type Harness, setup } from "../_harness.ts";
import { createHook, tenantHooks } from "../_webhooks.ts";

const BACKUPS = "/v1/admin/vault/backups";
const STATUS = "/v1/admin/vault/backup-status";

/** A harness whose backups go to a fresh temporary directory, removed on dispose. */
async function withBackups(keep = 7) {
  const h = await setup();
  const dir = await Deno.makeTempDir({ prefix: "steward-backups-" });
  h.svc.backups = { dir, keep, store: ":memory:" };
  return {
    h,
    dir,
    async [Symbol.asyncDispose]() {
      await h[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Every entry of `kv`, comparable with deepEqual (a KvU64 as its number, tagged). */
async function entriesOf(kv: Deno.Kv) {
  const out: [Deno.KvKey, unknown][] = [];
  for await (const { key, value } of kv.list({ prefix: [] })) {
    out.push([key, value instanceof Deno.KvU64 ? { u64: value.value } : value]);
  }
  return out;
}

async function backUp(h: Harness): Promise<Backup> {
  const res = await h.call("POST", BACKUPS, { token: h.root });
  assert.equal(res.status, 201, res.text);
  return res.body.data;
}

const backupKey = (svc: Services) => svc.vault.derivedKey(BACKUP_KEY_PURPOSE);

/** Values of every kind KV stores, under keys of every kind it takes. */
async function oddEntries(kv: Deno.Kv) {
  await kv.atomic()
    .set(["odd", "bytes", new Uint8Array([0, 1, 255])], new Uint8Array([9, 8, 7]))
    .set(["odd", 42, 7n, true], { at: new Date(Date.UTC(2026, 2, 1)), big: 2n ** 70n })
    .set(["odd", "map"], new Map<unknown, unknown>([["a", 1], [2, new Set(["b"])]]))
    .set(["odd", "ünïcødé ✓"], ["nested", { deep: [null, undefined, -0, NaN, 1.5] }])
    .set(["odd", "regexp"], /ab+c/gi)
    .set(["odd", "counter"], new Deno.KvU64(12_345_678_901n))
    .commit();
}

/** Restores `file` into a new in-memory store with the harness's master key. */
async function restoredFrom(h: Harness, file: string) {
  const kv = await Deno.openKv(":memory:");
  const report = await restoreStore(kv, file, await backupKey(h.svc));
  return { kv, report };
}

Deno.test("backup: restoring into an empty store gives every key and value back, as they were", async () => {
  await using b = await withBackups();
  const { h } = b;
  await h.tenant("acme");
  await createHook(h, tenantHooks("acme"));
  await h.serviceToken(["tenants:read"]);
  await oddEntries(h.kv);
  const before = await entriesOf(h.kv);

  const backup = await backUp(h);
  assert.equal(backup.status, "succeeded");
  assert.equal(backup.consistency, "per_page");
  assert.equal(backup.entries, before.length);
  assert.match(backup.file, /^steward-20260301T120000Z-bkp_[0-9A-Z]{26}\.backup$/);
  const file = join(b.dir, backup.file);
  assert.equal((await Deno.stat(file)).size, backup.bytes);
  assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  assert.equal(backup.sha256, sha256Hex(await Deno.readFile(file)));

  const { kv, report } = await restoredFrom(h, file);
  try {
    assert.equal(report.entries, before.length);
    assert.equal(report.backup_id, backup.id);
    assert.equal(report.sha256, backup.sha256);
    assert.deepEqual(await entriesOf(kv), before);
    assert.ok((await kv.get(["odd", "counter"])).value instanceof Deno.KvU64);
  } finally {
    kv.close();
  }
});

Deno.test("backup: the file holds nothing in clear, neither names nor secrets", async () => {
  await using b = await withBackups();
  const { h } = b;
  const tenant = await h.tenant("canary-tenant-slug");
  const hook = await createHook(h, tenantHooks(tenant.slug));
  const token = await h.call("POST", "/v1/admin/tokens", {
    token: h.root,
    body: { name: "canary-token-name", permissions: ["tenants:read"] },
  });
  assert.equal(token.status, 201, token.text);
  const file = join(b.dir, (await backUp(h)).file);

  const raw = new TextDecoder("latin1").decode(await Deno.readFile(file));
  for (const known of ["canary-tenant-slug", "canary-token-name", hook.secret, "tenants:read"]) {
    assert.ok(!raw.includes(known), `${known} is in clear in the backup`);
  }
  // And yet they are in it: opened with the key, the token's name is there.
  let found = false;
  for await (const e of readArchive(file, await backupKey(h.svc))) {
    found ||= new TextDecoder("latin1").decode(serialize(e.value)).includes("canary-token-name");
  }
  assert.ok(found);
});

Deno.test("backup: a store in a local file is copied at one instant while writes go on", async () => {
  await using b = await withBackups();
  const { h } = b;
  const store = join(b.dir, "..", `${crypto.randomUUID()}.kv`);
  const kv = await Deno.openKv(store);
  const svc: Services = { ...h.svc, kv, backups: { dir: b.dir, keep: 7, store } };
  try {
    // Two entries every commit changes together, far apart: thousands of entries between them.
    await kv.atomic().set(["pair", "a"], 0).set(["pair", "z"], 0).commit();
    for (let i = 0; i < 3_000; i += 500) {
      const op = kv.atomic();
      for (let j = i; j < i + 500; j++) op.set(["pair", "m", j], "x".repeat(100));
      await op.commit();
    }
    let stop = false;
    let commits = 0;
    const writer = (async () => {
      while (!stop) {
        commits++;
        await kv.atomic().set(["pair", "a"], commits).set(["pair", "z"], commits).commit();
      }
    })();
    let backup: Backup;
    try {
      backup = await writeBackup(svc, SYSTEM_ACTOR);
    } finally {
      stop = true;
      await writer;
    }
    assert.equal(backup.consistency, "point_in_time");
    const { kv: restored } = await restoredFrom(h, join(b.dir, backup.file));
    try {
      const [a, z] = await restored.getMany([["pair", "a"], ["pair", "z"]]);
      assert.equal(a.value, z.value, "a commit is in the backup whole");
    } finally {
      restored.close();
    }
    // Only the backup file is left in the directory: the copy of the store is gone.
    const names = [...Deno.readDirSync(b.dir)].map((e) => e.name);
    assert.deepEqual(names, [backup.file]);
  } finally {
    kv.close();
    for (const f of [store, `${store}-wal`, `${store}-shm`]) await Deno.remove(f).catch(() => {});
  }
});

/**
 * `count` entries of `size` random bytes (compression cannot hide a writer that holds them all);
 * before every 20th, tells `ahead` how many bytes were read and are not yet in the file `path`.
 */
async function* randomEntries(
  count: number,
  size: number,
  path: string,
  ahead: (bytes: number) => void,
): AsyncGenerator<Deno.KvEntry<unknown>> {
  for (let i = 0; i < count; i++) {
    if (i % 20 === 0) ahead(i * size - await Deno.stat(path).then((s) => s.size, () => 0));
    yield {
      key: ["blob", i],
      value: crypto.getRandomValues(new Uint8Array(size)),
      versionstamp: "0",
    };
  }
}

Deno.test("backup: the writer streams: what it has read is on disk within a few chunks", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "stream.backup");
    const [count, size] = [600, 60_000];
    let maxAhead = 0;
    const entries = randomEntries(count, size, path, (n) => maxAhead = Math.max(maxAhead, n));
    const key = await new Vault(crypto.getRandomValues(new Uint8Array(32))).derivedKey("test");
    const written = await writeArchive(entries, key, {
      id: "bkp_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      created_at: "2026-03-01T12:00:00.000Z",
      master_key_id: null,
      consistency: "per_page",
    }, path);
    assert.equal(written.entries, count);
    assert.ok(written.bytes > count * size, "random data does not compress");
    // 36 MB went through; never more than 4 MB of it was waiting in memory.
    assert.ok(maxAhead < 4_000_000, `${maxAhead} bytes read and not yet written`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A copy of `file` with `change` made to its bytes. */
async function altered(
  file: string,
  change: (bytes: Uint8Array) => Uint8Array,
) {
  const copy = `${file}.${crypto.randomUUID()}`;
  await Deno.writeFile(copy, change(await Deno.readFile(file)));
  return copy;
}

/** Recomputes the checksum a file ends with, as someone altering it on purpose would. */
function resealed(bytes: Uint8Array) {
  const body = bytes.subarray(0, bytes.length - 32);
  bytes.set(createHash("sha256").update(body).digest(), bytes.length - 32);
  return bytes;
}

Deno.test("backup: a damaged, altered or cut file is refused with nothing written", async () => {
  await using b = await withBackups();
  const { h } = b;
  await h.tenant("acme");
  const file = join(b.dir, (await backUp(h)).file);
  const size = (await Deno.stat(file)).size;
  const flip = (at: number) => (bytes: Uint8Array) => {
    bytes[at] ^= 0x01;
    return bytes;
  };
  const cases: [string, string, RegExp][] = [
    ["a flipped byte", await altered(file, flip(Math.floor(size / 2))), /is damaged/],
    ["a flipped header byte", await altered(file, flip(30)), /is damaged/],
    ["a cut file", await altered(file, (bytes) => bytes.slice(0, size - 100)), /is damaged/],
    [
      "a flipped byte, checksum recomputed",
      await altered(file, (bytes) => resealed(flip(size - 60)(bytes))),
      /chunk 0 of the backup does not open/,
    ],
    [
      "an edited header, checksum recomputed",
      await altered(
        file,
        (bytes) => resealed(flip(new TextDecoder().decode(bytes).indexOf("2026"))(bytes)),
      ),
      /does not open/,
    ],
    [
      "not a backup",
      await altered(file, () => new TextEncoder().encode("x".repeat(100))),
      /damaged|not a Steward backup/,
    ],
  ];
  for (const [what, path, refusal] of cases) {
    const kv = await Deno.openKv(":memory:");
    try {
      await assert.rejects(restoreStore(kv, path, await backupKey(h.svc)), refusal, what);
      assert.deepEqual(await entriesOf(kv), [], `${what}: nothing is written`);
    } finally {
      kv.close();
    }
  }
});

Deno.test("backup: another master key is refused, by the backup's key id and by its tags", async () => {
  await using b = await withBackups();
  const { h } = b;
  await h.tenant("acme");
  const file = join(b.dir, (await backUp(h)).file);
  const kv = await Deno.openKv(":memory:");
  try {
    const other = new Vault(crypto.getRandomValues(new Uint8Array(32)));
    await assert.rejects(
      restoreBackup({ ...h.svc, kv, vault: other }, SYSTEM_ACTOR, file),
      /was written under master key .* set STEWARD_MASTER_KEY/,
    );
    await assert.rejects(
      restoreStore(kv, file, await other.derivedKey(BACKUP_KEY_PURPOSE)),
      /does not open: it was written under another master key/,
    );
    assert.deepEqual(await entriesOf(kv), []);
  } finally {
    kv.close();
  }
});

Deno.test("admin restore: refuses a store that is not empty; --force empties it first; audited", async () => {
  await using b = await withBackups();
  const { h } = b;
  await h.tenant("acme");
  const before = await entriesOf(h.kv);
  const backup = await backUp(h);
  const file = join(b.dir, backup.file);
  const kv = await Deno.openKv(":memory:");
  const target: Services = { ...h.svc, kv };
  try {
    await kv.set(["stray"], "left by someone");
    await assert.rejects(admin(target, "restore", "--from", file), /the store is not empty/);
    assert.deepEqual(await entriesOf(kv), [[["stray"], "left by someone"]]);
    await assert.rejects(admin(target, "restore"), /--from is required/);

    const out = await admin(target, "restore", "--from", file, "--force");
    assert.match(out, new RegExp(`restored ${before.length} entries from backup ${backup.id}`));
    assert.match(out, /after deleting the 1 entries the store held/);
    assert.equal((await kv.get(["stray"])).versionstamp, null);
    const tenants = await Array.fromAsync(kv.list({ prefix: keys.tenants() }));
    assert.equal(tenants.length, 1);
    const audit =
      (await Array.fromAsync(kv.list<{ action: string; actor_id: string; resource_id: string }>({
        prefix: keys.audits(),
      }))).map((e) => e.value).filter((e) => e.action === "vault.restored");
    assert.equal(audit.length, 1);
    assert.equal(audit[0].actor_id, "system");
    assert.equal(audit[0].resource_id, backup.id);
  } finally {
    kv.close();
  }
});

Deno.test("backup: the newest N are kept; older files and records are deleted", async () => {
  await using b = await withBackups(2);
  const { h } = b;
  const made: Backup[] = [];
  for (let i = 0; i < 4; i++) {
    made.push(await backUp(h));
    h.advance(60_000);
  }
  const list = await h.call("GET", BACKUPS, { token: h.root });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.data.map((x: Backup) => x.id), [made[3].id, made[2].id]);
  assert.equal(list.body.pagination.total, 2);
  const files = [...Deno.readDirSync(b.dir)].map((e) => e.name).sort();
  assert.deepEqual(files, [made[2].file, made[3].file]);
  // The newest backup holds the records of the two before it (its own is left out).
  const { kv } = await restoredFrom(h, join(b.dir, made[3].file));
  try {
    const records = await Array.fromAsync(kv.list<Backup>({ prefix: keys.backups() }));
    assert.deepEqual(records.map((r) => r.value.id), [made[1].id, made[2].id]);
  } finally {
    kv.close();
  }
});

Deno.test("backup: a failure is recorded, audited and reported; an interrupted one is closed", async () => {
  await using b = await withBackups();
  const { h } = b;
  // A directory that cannot be made: its parent is a file.
  const blocker = join(b.dir, "not-a-directory");
  await Deno.writeTextFile(blocker, "");
  h.svc.backups = { ...h.svc.backups, dir: join(blocker, "backups") };
  const failed = await h.call("POST", BACKUPS, { token: h.root });
  assertError(failed, 503, "UNAVAILABLE");
  assert.match(failed.body.error.message, /the backup failed: .* \(recorded as bkp_/);

  const status = await h.call("GET", STATUS, { token: h.root });
  assert.equal(status.status, 200, status.text);
  assert.equal(status.body.data.last_success, null);
  assert.equal(status.body.data.last_success_age_seconds, null);
  assert.match(status.body.data.last_failure.id, /^bkp_/);
  assert.equal(status.body.data.last_failure.failed_at, "2026-03-01T12:00:00.000Z");
  const [event] = await h.auditFor(status.body.data.last_failure.id);
  assert.equal(event.action, "vault.backup_failed");

  // A backup left `running` by a process that stopped is failed by the next one, its file gone.
  h.svc.backups = { ...h.svc.backups, dir: b.dir };
  const stale: Backup = {
    id: "bkp_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
    file: "steward-20241201T000000Z-bkp_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A.backup",
    status: "running",
    consistency: "per_page",
    started_at: "2024-12-01T00:00:00.000Z",
    finished_at: null,
    entries: null,
    bytes: null,
    sha256: null,
    error: null,
  };
  await h.kv.set(keys.backup(stale.id), stale);
  await Deno.writeTextFile(join(b.dir, `${stale.file}.partial`), "half");
  await backUp(h);
  const closed = (await h.kv.get<Backup>(keys.backup(stale.id))).value!;
  assert.equal(closed.status, "failed");
  assert.match(closed.error!, /interrupted/);
  assert.ok(!(await Deno.stat(join(b.dir, `${stale.file}.partial`)).then(() => true, () => false)));
});

Deno.test("backup routes: list newest first with pagination, status, and who may call them", async () => {
  await using b = await withBackups();
  const { h } = b;
  const first = await backUp(h);
  h.advance(3_600_000);
  const second = await backUp(h);
  h.advance(90_000);

  const page = await h.call("GET", `${BACKUPS}?limit=1`, { token: h.root });
  assert.equal(page.status, 200, page.text);
  assert.deepEqual(page.body.data.map((x: Backup) => x.id), [second.id]);
  assert.equal(page.body.pagination.total, 2);
  assert.equal(page.body.pagination.has_more, true);
  const rest = await h.call(
    "GET",
    `${BACKUPS}?limit=1&cursor=${encodeURIComponent(page.body.pagination.next_cursor)}`,
    { token: h.root },
  );
  assert.deepEqual(rest.body.data.map((x: Backup) => x.id), [first.id]);
  assert.deepEqual(Object.keys(rest.body.data[0]).sort(), Object.keys(first).sort());

  const status = await h.call("GET", STATUS, { token: h.root });
  assert.equal(status.status, 200, status.text);
  assert.deepEqual(status.body.data, {
    enabled: true,
    directory: b.dir,
    keep: 7,
    schedule: "23 2 * * *",
    next_run_at: "2026-03-02T02:23:00.000Z",
    last_success: second,
    last_success_age_seconds: 90,
    last_failure: null,
  });

  const invalid = await h.call("GET", `${BACKUPS}?limit=0`, { token: h.root });
  assertError(invalid, 400, "BAD_REQUEST");
  for (const [method, path] of [["POST", BACKUPS], ["GET", BACKUPS], ["GET", STATUS]]) {
    assertError(await h.call(method, path), 401, "UNAUTHORIZED");
    for (const role of ["support", "ops", "finance", "qa"] as const) {
      const { token } = await h.user(role);
      assertError(await h.call(method, path, { token }), 403, "FORBIDDEN");
    }
    const scoped = await h.serviceToken(["system:read", "secrets:read"]);
    assertError(await h.call(method, path, { token: scoped.token }), 403, "FORBIDDEN");
  }
  const admin = await h.user("admin");
  assert.equal((await h.call("GET", STATUS, { token: admin.token })).status, 200);
  assert.equal((await h.call("POST", BACKUPS, { token: admin.token })).status, 201);
  const vaultAdmin = await h.serviceToken(["vault:admin"]);
  assert.equal((await h.call("GET", BACKUPS, { token: vaultAdmin.token })).status, 200);
});

Deno.test("backup POST: replays an Idempotency-Key, and is 409 while another runs or when off", async () => {
  await using b = await withBackups();
  const { h } = b;
  const headers = { "Idempotency-Key": "nightly-2026-03-01" };
  const first = await h.call("POST", BACKUPS, { token: h.root, headers });
  const again = await h.call("POST", BACKUPS, { token: h.root, headers });
  assert.equal(first.status, 201, first.text);
  assert.equal(again.status, 201);
  assert.equal(again.body.data.id, first.body.data.id);
  assert.equal((await h.call("GET", BACKUPS, { token: h.root })).body.pagination.total, 1);

  // Another writer holds the backup lease.
  assert.ok(await acquireLease(h.kv, BACKUP_LEASE, "another process", 60_000, h.clock.now));
  const busy = await h.call("POST", BACKUPS, { token: h.root });
  assertError(busy, 409, "CONFLICT");
  assert.match(busy.body.error.message, /a backup is being written/);

  h.svc.backups = { ...h.svc.backups, dir: null };
  const off = await h.call("POST", BACKUPS, { token: h.root });
  assertError(off, 409, "CONFLICT");
  assert.match(off.body.error.message, /backups are off: set STEWARD_BACKUP_DIR/);
  const status = await h.call("GET", STATUS, { token: h.root });
  assert.equal(status.body.data.enabled, false);
  assert.equal(status.body.data.next_run_at, null);
});

Deno.test("backup cron: writes a backup daily, audited as the system; does nothing when off", async () => {
  await using b = await withBackups();
  const { h } = b;
  const task = MAINTENANCE_TASKS.find((t) => t.name === "backup-store")!;
  // Hourly ticks; only the one in the backup's hour (02 UTC by default) writes.
  assert.equal(task.schedule, "23 * * * *");
  assert.deepEqual((await runMaintenance(h.svc, task, "worker"))?.result, { backups_written: 0 });
  h.advance(60_000);
  h.svc.backups.hour = 12;
  const run = await runMaintenance(h.svc, task, "worker");
  assert.equal(run?.error, null);
  assert.equal(run?.result?.backups_written, 1);
  const list = await h.call("GET", BACKUPS, { token: h.root });
  const [backup] = list.body.data as Backup[];
  assert.equal(run?.result?.entries, backup.entries);
  const [event] = await h.auditFor(backup.id);
  assert.equal(event.action, "vault.backup_created");
  assert.equal(event.actor_id, "system");

  h.advance(60_000);
  h.svc.backups = { ...h.svc.backups, dir: null };
  assert.deepEqual((await runMaintenance(h.svc, task, "worker"))?.result, { backups_written: 0 });
});

Deno.test("config: STEWARD_BACKUP_DIR defaults beside a local store, to none otherwise", () => {
  const dirOf = (env: Record<string, string>) => loadConfig(env).STEWARD_BACKUP_DIR;
  assert.equal(
    dirOf({ STEWARD_KV_PATH: "/var/lib/steward/steward.kv" }),
    "/var/lib/steward/backups",
  );
  assert.equal(dirOf({}), "data/backups");
  assert.equal(dirOf({ STEWARD_KV_PATH: ":memory:" }), null);
  assert.equal(dirOf({ STEWARD_KV_PATH: "https://api.deno.com/databases/x/connect" }), null);
  assert.equal(dirOf({ STEWARD_KV_PATH: ":memory:", STEWARD_BACKUP_DIR: "/b" }), "/b");
  assert.equal(dirOf({ STEWARD_BACKUP_DIR: "off" }), null);
  assert.equal(loadConfig({}).STEWARD_BACKUP_KEEP, 7);
  assert.throws(() => loadConfig({ STEWARD_BACKUP_KEEP: "0" }), /STEWARD_BACKUP_KEEP/);
});
