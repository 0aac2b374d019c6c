/**
 * Backups of the whole store: written by `POST /v1/admin/vault/backups` and the daily
 * `backup-store` cron into the backup directory, listed, and restored by `deno task admin
 * restore`. The file format is backup_archive.ts; its chunks are sealed under a key derived from
 * the master key, so a backup opens only where that master key is.
 *
 * Consistency while writes go on: a store in a local file is first copied at one instant
 * (kv/snapshot.ts) and the backup is read from the copy, so it is the store as of that instant,
 * every commit wholly in or wholly out. A `:memory:` or KV Connect store has no file to copy: it
 * is read page by page, each page of 500 entries one strong read. Each entry is then as it was
 * when its page was read; a commit made during the backup that touched entries on two pages may
 * be in it half applied, and an entry added behind the read's position is not in it.
 */
import { basename, join } from "node:path";
import { serialize } from "node:v8";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { acquireLease, releaseLease } from "../../kv/lease.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { canSnapshot, openSnapshot } from "../../kv/snapshot.ts";
import { recordChange } from "../audit/audit.ts";
import { AppError, conflict } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import {
  type ArchiveEntry,
  type Consistency,
  readArchive,
  readArchiveHeader,
  verifyChecksum,
  writeArchive,
} from "./backup_archive.ts";

/** What the backup key is derived for: a new format would take a new purpose. */
export const BACKUP_KEY_PURPOSE = "backup v1";

/**
 * The daily backup at 02:23 UTC by default: off the hour, before the 03:xx prunes. The hour may
 * change at run time (`svc.backups.hour`), so the cron ticks every hour at :23 and the task
 * writes a backup only in the hour set (`backupDue`).
 */
const DAILY = { hour: 2, minute: 23 };
export const DEFAULT_BACKUP_HOUR = DAILY.hour;
export const BACKUP_SCHEDULE = `${DAILY.minute} * * * *`;
const dailySchedule = (hour: number) => `${DAILY.minute} ${hour} * * *`;

/** Whether the hourly tick at `now` is the daily backup's. */
export const backupDue = (svc: Services, now = svc.now()) =>
  new Date(now).getUTCHours() === (svc.backups.hour ?? DAILY.hour);

/** One backup at a time, whoever starts it; renewed while it runs. */
export const BACKUP_LEASE = "vault-backup";
const LEASE_MS = 30 * 60_000;

/** Deno KV takes 1,000 mutations and 800 KiB per commit; sizes here are V8's, up to 1.5× off. */
const MAX_MUTATIONS = 1_000;
const MAX_COMMIT_BYTES = 500_000;

export interface Backup {
  id: string;
  /** The file's name in the backup directory. */
  file: string;
  status: "running" | "succeeded" | "failed";
  consistency: Consistency;
  started_at: string;
  finished_at: string | null;
  entries: number | null;
  bytes: number | null;
  /** SHA-256 of the file, as `sha256sum` prints it. */
  sha256: string | null;
  error: string | null;
}

export interface BackupStatus {
  /** Whether there is a backup directory: without one there are no backups, daily or by hand. */
  enabled: boolean;
  directory: string | null;
  keep: number;
  schedule: string | null;
  next_run_at: string | null;
  last_success: Backup | null;
  last_success_age_seconds: number | null;
  last_failure: { id: string; failed_at: string; error: string } | null;
}

export interface RestoreReport {
  backup_id: string;
  created_at: string;
  consistency: Consistency;
  entries: number;
  /** SHA-256 of the file, to compare with the backup's listing. */
  sha256: string;
  /** Entries deleted first (`force`). */
  cleared: number;
}

/** `20260301T022300Z`: file names sort by time. */
const stamp = (ms: number) => iso(ms).replace(/[-:]|\.\d+/g, "");

/** What a backup leaves while it is written: the partial file, and the store's copy. */
const workFiles = (dir: string, b: Backup) => {
  const copy = join(dir, `.${b.id}.snapshot.kv`);
  return { partial: join(dir, `${b.file}.partial`), copy };
};

async function removeFile(path: string): Promise<void> {
  await Deno.remove(path).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

const sameKey = (a: Deno.KvKey, b: Deno.KvKey) =>
  a.length === b.length && a.every((part, i) => part === b[i]);

const storeEntries = (kv: Deno.Kv) =>
  kv.list({ prefix: [] }, { batchSize: 500, consistency: "strong" });

/** The backup's final state, with its audit event, in one commit. */
async function settle(svc: Services, actor: Actor, backup: Backup): Promise<void> {
  const op = svc.kv.atomic().set(keys.backup(backup.id), backup);
  recordChange(op, svc.now(), actor, {
    action: backup.status === "succeeded" ? "vault.backup_created" : "vault.backup_failed",
    resource_type: "backup",
    resource_id: backup.id,
    tenant_id: null,
    after: { ...backup },
  });
  await commit(op);
}

/**
 * Writes a backup of the whole store into the backup directory (`svc.backups`), then deletes
 * the backups past the newest `keep`. A failure is recorded (and audited) before it is thrown.
 */
export async function writeBackup(svc: Services, actor: Actor): Promise<Backup> {
  const { dir } = svc.backups;
  if (!dir) {
    throw conflict(
      "backups are off: set STEWARD_BACKUP_DIR (a store in memory or over KV Connect has no default)",
    );
  }
  const owner = crypto.randomUUID();
  if (!(await acquireLease(svc.kv, BACKUP_LEASE, owner, LEASE_MS, svc.now()))) {
    throw conflict("a backup is being written; try again when it has finished");
  }
  try {
    await failInterrupted(svc, dir);
    const backup = await backUp(svc, actor, dir, owner);
    await pruneBackups(svc, dir, svc.backups.keep);
    return backup;
  } finally {
    await releaseLease(svc.kv, BACKUP_LEASE, owner);
  }
}

async function backUp(svc: Services, actor: Actor, dir: string, owner: string): Promise<Backup> {
  const started = svc.now();
  const id = newId("bkp", started);
  const running: Backup = {
    id,
    file: `steward-${stamp(started)}-${id}.backup`,
    status: "running",
    consistency: canSnapshot(svc.backups.store) ? "point_in_time" : "per_page",
    started_at: iso(started),
    finished_at: null,
    entries: null,
    bytes: null,
    sha256: null,
    error: null,
  };
  await svc.kv.set(keys.backup(id), running);
  const { partial } = workFiles(dir, running);
  try {
    const key = await svc.vault.derivedKey(BACKUP_KEY_PURPOSE);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const header = {
      id,
      created_at: running.started_at,
      master_key_id: svc.vault.state.key_id,
      consistency: running.consistency,
    };
    const written = await readStore(svc, dir, running, (entries) =>
      // Neither this backup's own record nor its lease: a restored store has no backup running.
      writeArchive(
        renewing(svc, owner, skipping(entries, [keys.backup(id), keys.lease(BACKUP_LEASE)])),
        key,
        header,
        partial,
      ));
    await Deno.rename(partial, join(dir, running.file));
    const done: Backup = {
      ...running,
      status: "succeeded",
      finished_at: iso(svc.now()),
      ...written,
    };
    await settle(svc, actor, done);
    return done;
  } catch (err) {
    // Best effort: what made the backup fail is what to report.
    await removeFile(partial).catch(() => undefined);
    const error = err instanceof Error ? err.message : String(err);
    await settle(svc, actor, { ...running, status: "failed", finished_at: iso(svc.now()), error });
    throw new AppError("UNAVAILABLE", `the backup failed: ${error} (recorded as ${id})`);
  }
}

/** Runs `write` over the store's entries: from a copy made at one instant where there is a file. */
async function readStore<T>(
  svc: Services,
  dir: string,
  backup: Backup,
  write: (entries: AsyncIterable<Deno.KvEntry<unknown>>) => Promise<T>,
): Promise<T> {
  if (backup.consistency === "per_page") return await write(storeEntries(svc.kv));
  await using copy = await openSnapshot(svc.backups.store, workFiles(dir, backup).copy);
  return await write(storeEntries(copy.kv));
}

async function* skipping<T extends { key: Deno.KvKey }>(
  entries: AsyncIterable<T>,
  skip: Deno.KvKey[],
): AsyncGenerator<T> {
  for await (const e of entries) if (!skip.some((k) => sameKey(k, e.key))) yield e;
}

/** Passes `entries` through, renewing the backup's lease so a long backup keeps it. */
async function* renewing<T>(
  svc: Services,
  owner: string,
  entries: AsyncIterable<T>,
): AsyncGenerator<T> {
  let renewed = svc.now();
  for await (const e of entries) {
    if (svc.now() - renewed > LEASE_MS / 3) {
      if (!(await acquireLease(svc.kv, BACKUP_LEASE, owner, LEASE_MS, svc.now()))) {
        throw new Error("the backup lost its lease to another writer");
      }
      renewed = svc.now();
    }
    yield e;
  }
}

/** A backup still `running` while this one holds the lease was left by a process that stopped. */
async function failInterrupted(svc: Services, dir: string): Promise<void> {
  for await (const { value } of svc.kv.list<Backup>({ prefix: keys.backups() })) {
    if (value.status !== "running") continue;
    const { partial, copy } = workFiles(dir, value);
    for (const file of [partial, copy, `${copy}-wal`, `${copy}-shm`]) await removeFile(file);
    await settle(svc, SYSTEM_ACTOR, {
      ...value,
      status: "failed",
      finished_at: iso(svc.now()),
      error: "interrupted: the process writing it stopped before it finished",
    });
  }
}

/**
 * Keeps the newest `keep` succeeded backups and the newest `keep` failed records; deletes the
 * others, file first. Returns how many went.
 */
async function pruneBackups(svc: Services, dir: string, keep: number): Promise<number> {
  const kept = { succeeded: 0, failed: 0 };
  let pruned = 0;
  for await (const e of svc.kv.list<Backup>({ prefix: keys.backups() }, { reverse: true })) {
    const { status, file } = e.value;
    if (status === "running" || ++kept[status] <= keep) continue;
    await removeFile(join(dir, file));
    await svc.kv.delete(e.key);
    pruned++;
  }
  return pruned;
}

/** Backups, newest first. */
export async function listBackups(
  svc: Services,
  page: PageRequest,
): Promise<Page<Backup> & Counted> {
  return await listCounted<Backup>(svc.kv, { selector: { prefix: keys.backups() } }, {
    ...page,
    reverse: true,
  });
}

/** The next daily run after `now`. */
function nextRun(now: number, hour: number): number {
  const at = new Date(now);
  at.setUTCHours(hour, DAILY.minute, 0, 0);
  if (at.getTime() <= now) at.setUTCDate(at.getUTCDate() + 1);
  return at.getTime();
}

/** The last success and failure, and when the next daily backup runs. */
export async function backupStatus(svc: Services): Promise<BackupStatus> {
  let success: Backup | null = null;
  let failure: Backup | null = null;
  for await (
    const { value } of svc.kv.list<Backup>({ prefix: keys.backups() }, { reverse: true })
  ) {
    if (!success && value.status === "succeeded") success = value;
    if (!failure && value.status === "failed") failure = value;
    if (success && failure) break;
  }
  const now = svc.now();
  const { dir, keep, hour = DAILY.hour } = svc.backups;
  return {
    enabled: dir !== null,
    directory: dir,
    keep,
    schedule: dir ? dailySchedule(hour) : null,
    next_run_at: dir ? iso(nextRun(now, hour)) : null,
    last_success: success,
    last_success_age_seconds: success?.finished_at
      ? Math.max(0, Math.floor((now - Date.parse(success.finished_at)) / 1000))
      : null,
    last_failure: failure
      ? { id: failure.id, failed_at: failure.finished_at!, error: failure.error! }
      : null,
  };
}

/** Mutations gathered into commits within Deno KV's limits. */
class Batches {
  readonly #kv: Deno.Kv;
  #op: Deno.AtomicOperation;
  #count = 0;
  #bytes = 0;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
    this.#op = kv.atomic();
  }

  async add(size: number, mutate: (op: Deno.AtomicOperation) => void): Promise<void> {
    if (this.#count === MAX_MUTATIONS || this.#bytes + size > MAX_COMMIT_BYTES) await this.flush();
    mutate(this.#op);
    this.#count++;
    this.#bytes += size;
  }

  async flush(): Promise<void> {
    if (this.#count) await commit(this.#op);
    this.#op = this.#kv.atomic();
    this.#count = 0;
    this.#bytes = 0;
  }
}

async function isEmpty(kv: Deno.Kv): Promise<boolean> {
  for await (const _ of kv.list({ prefix: [] }, { limit: 1 })) return false;
  return true;
}

/** Deletes every entry; returns how many. */
async function clearStore(kv: Deno.Kv): Promise<number> {
  const batches = new Batches(kv);
  let n = 0;
  for await (const { key } of kv.list({ prefix: [] }, { batchSize: 500 })) {
    await batches.add(serialize(key).length, (op) => op.delete(key));
    n++;
  }
  await batches.flush();
  return n;
}

async function writeEntries(kv: Deno.Kv, entries: AsyncIterable<ArchiveEntry>): Promise<number> {
  const batches = new Batches(kv);
  let n = 0;
  for await (const { key, value, size } of entries) {
    await batches.add(size, (op) => op.set(key, value));
    n++;
  }
  await batches.flush();
  return n;
}

/**
 * Restores the backup at `path` into `kv`: refuses a store that is not empty unless `force`;
 * checks the file's checksum, opens every chunk and counts the entries before anything is
 * written; then clears the store (`force`) and writes the entries in batched commits.
 */
export async function restoreStore(
  kv: Deno.Kv,
  path: string,
  key: CryptoKey,
  opts: { force?: boolean } = {},
): Promise<RestoreReport> {
  if (!opts.force && !(await isEmpty(kv))) {
    throw conflict(
      "the store is not empty: restore into a new one (STEWARD_KV_PATH), or pass --force to " +
        "delete everything in it first",
    );
  }
  const sha256 = await verifyChecksum(path);
  const header = await readArchiveHeader(path);
  for await (const _ of readArchive(path, key));
  const cleared = opts.force ? await clearStore(kv) : 0;
  const entries = await writeEntries(kv, readArchive(path, key));
  return {
    backup_id: header.id,
    created_at: header.created_at,
    consistency: header.consistency,
    entries,
    sha256,
    cleared,
  };
}

/**
 * `deno task admin restore`: restoreStore under the backup key of this process's master key
 * (refused at once when the backup names another), then the audit event of the restore.
 */
export async function restoreBackup(
  svc: Services,
  actor: Actor,
  path: string,
  opts: { force?: boolean } = {},
): Promise<RestoreReport> {
  const written = (await readArchiveHeader(path)).master_key_id;
  const held = svc.vault.state.key_id;
  if (written && held && written !== held) {
    throw new AppError(
      "UNPROCESSABLE",
      `${path} was written under master key ${written}, and this process holds ${held}: set ` +
        "STEWARD_MASTER_KEY to the master key of the store the backup was taken from",
    );
  }
  const report = await restoreStore(
    svc.kv,
    path,
    await svc.vault.derivedKey(BACKUP_KEY_PURPOSE),
    opts,
  );
  const { backup_id: id, ...restored } = report;
  const op = svc.kv.atomic();
  recordChange(op, svc.now(), actor, {
    action: "vault.restored",
    resource_type: "backup",
    resource_id: id,
    tenant_id: null,
    after: { id, file: basename(path), ...restored },
  });
  await commit(op);
  return report;
}
