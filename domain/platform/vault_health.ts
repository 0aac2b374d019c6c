/**
 * The vault's health, for operators (`GET /v1/admin/vault/health`): whether it is open and under
 * which master key, whether a previous master key is still needed, the data keys by age, the
 * secrets it holds, the last rotation and backup, and what needs doing (`warnings`).
 */
import { keys } from "../../kv/keys.ts";
import { readCounter } from "../../kv/table.ts";
import type { DataKeyRing, Services } from "../shared/services.ts";
import { DAY_MS, iso } from "../shared/time.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { backupStatus } from "../vault/backups.ts";

/** A backup older than this is a warning. */
export const BACKUP_WARN_HOURS = 48;

export interface VaultHealthSettings {
  /** STEWARD_DATA_KEY_MAX_AGE_DAYS: a data key older than this is a warning. */
  maxDataKeyAgeDays: number;
  /** STEWARD_ENV=production: a master key from a file is a warning there. */
  production: boolean;
}

export interface VaultHealth {
  sealed: boolean;
  master_key: { id: string | null; source: Services["vault"]["state"]["source"] };
  previous_key: { id: string; needed: boolean } | null;
  data_keys: {
    owners: number;
    keys: number;
    /** Keys by age: under 30 days, 30 to 90, over 90. */
    by_age: { under_30_days: number; days_30_to_90: number; over_90_days: number };
    oldest_created_at: string | null;
    /** Data keys still wrapped by another master key than the current one. */
    wrapped_by_other_master: number;
  };
  secrets: number;
  last_rotation: { at: string; job_id: string; scope: "tenant" | "all" } | null;
  last_backup: { at: string; age_seconds: number } | null;
  warnings: string[];
}

/** Every owner's ring: the platform's, then each tenant's (read in batches). */
async function* rings(svc: Services): AsyncGenerator<DataKeyRing> {
  const platform = await svc.vault.ring(svc.kv, null);
  if (platform) yield platform;
  let batch: string[] = [];
  const flush = async function* () {
    const rings = await Promise.all(batch.map((id) => svc.vault.ring(svc.kv, id)));
    batch = [];
    for (const ring of rings) if (ring) yield ring;
  };
  for await (const e of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    batch.push(e.value.id);
    if (batch.length === 50) yield* flush();
  }
  yield* flush();
}

export async function vaultHealth(
  svc: Services,
  settings: VaultHealthSettings,
): Promise<VaultHealth> {
  const { state } = svc.vault;
  const now = svc.now();
  const dataKeys: VaultHealth["data_keys"] = {
    owners: 0,
    keys: 0,
    by_age: { under_30_days: 0, days_30_to_90: 0, over_90_days: 0 },
    oldest_created_at: null,
    wrapped_by_other_master: 0,
  };
  let oldest = Infinity;
  let oldestCurrent = Infinity;
  for await (const ring of rings(svc)) {
    dataKeys.owners++;
    for (const [kid, key] of Object.entries(ring.keys)) {
      dataKeys.keys++;
      const created = Date.parse(key.created_at);
      const days = (now - created) / DAY_MS;
      if (days < 30) dataKeys.by_age.under_30_days++;
      else if (days <= 90) dataKeys.by_age.days_30_to_90++;
      else dataKeys.by_age.over_90_days++;
      oldest = Math.min(oldest, created);
      if (kid === ring.current) oldestCurrent = Math.min(oldestCurrent, created);
      if (key.master_key_id !== state.key_id) dataKeys.wrapped_by_other_master++;
    }
  }
  if (oldest !== Infinity) dataKeys.oldest_created_at = iso(oldest);

  const [secrets, rotation, backups] = await Promise.all([
    readCounter(svc.kv, keys.secretCount()),
    svc.kv.get<VaultHealth["last_rotation"]>(keys.vaultLastRotation()),
    backupStatus(svc),
  ]);
  const lastBackup = backups.last_success?.finished_at ?? null;
  const backupAge = lastBackup === null ? null : Math.round((now - Date.parse(lastBackup)) / 1000);

  const warnings: string[] = [];
  if (state.sealed) warnings.push("the vault is sealed: set STEWARD_MASTER_KEY");
  if (backupAge === null || backupAge > BACKUP_WARN_HOURS * 3600) {
    warnings.push(`no backup in the last ${BACKUP_WARN_HOURS} hours`);
  }
  if ((now - oldestCurrent) / DAY_MS > settings.maxDataKeyAgeDays) {
    warnings.push(
      `a data key in use is older than ${settings.maxDataKeyAgeDays} days: ` +
        "POST /v1/admin/vault/rotate-all",
    );
  }
  if (settings.production && state.source === "file") {
    warnings.push(
      "the master key is read from a file beside the store: in production set " +
        "STEWARD_MASTER_KEY from a secret store",
    );
  }
  if (dataKeys.wrapped_by_other_master && !state.previous_key_id) {
    warnings.push(
      `${dataKeys.wrapped_by_other_master} data keys are wrapped by another master key: ` +
        "set STEWARD_MASTER_KEY_PREVIOUS to it and restart",
    );
  }

  return {
    sealed: state.sealed,
    master_key: { id: state.key_id, source: state.source },
    previous_key: state.previous_key_id
      ? { id: state.previous_key_id, needed: dataKeys.wrapped_by_other_master > 0 }
      : null,
    data_keys: dataKeys,
    secrets,
    last_rotation: rotation.value,
    last_backup: lastBackup === null ? null : { at: lastBackup, age_seconds: backupAge! },
    warnings,
  };
}
