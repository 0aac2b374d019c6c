/**
 * One-off start-up step for stores written before the list counts existed (kv/keys.ts: tenants by
 * status and plan, users by status, API keys by environment, by state, by project, by external id
 * and in all, audit events by type, action and tenant). Every record written since carries its
 * index entries and counts from its own commit; this gives the older ones theirs, then sets
 * `list_counts_ready`, and until then the lists count by walking. Each record's entries are
 * written with a check that its status index entry is still absent, so two processes running it
 * together, or a record written meanwhile, never count twice.
 */
import { keys } from "../../kv/keys.ts";
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { countsReady } from "../../kv/list.ts";
import type { Versioned } from "../../kv/table.ts";
import { type AuditEvent, auditTable } from "../audit/audit.ts";
import { type User, userTable } from "../identity/users.ts";
import {
  type ApiKey,
  apiKeyTable,
  live,
  ownerCounters,
  ownerIndexes,
  stateCounters,
  stateIndexes,
} from "../keys/api_keys.ts";
import type { Services } from "../shared/services.ts";
import { type Tenant, tenantTable } from "../tenancy/tenants.ts";

/** What one family gives an older record: the entry that says it has them, and the rest. */
interface Family<T> {
  /** The index entry written with the others: present means the record is done. */
  mark(record: T): Deno.KvKey;
  indexes(record: T): Deno.KvKey[];
  /** Only the counts new with the indexes: older counts were kept all along. */
  counters(record: T): Deno.KvKey[];
  key(record: T): Deno.KvKey;
}

const tenants: Family<Tenant> = {
  mark: (t) => keys.tenantByStatus(t.status, t.id),
  indexes: (t) => tenantTable.indexes!(t),
  counters: (t) => [keys.tenantStatusCount(t.status)],
  key: (t) => keys.tenant(t.id),
};

const users: Family<User> = {
  mark: (u) => keys.userByStatus(u.status, u.id),
  indexes: (u) => [keys.userByStatus(u.status, u.id)],
  counters: (u) => [keys.userStatusCount(u.status)],
  key: (u) => userTable.key(u.id),
};

const apiKeys: Family<ApiKey> = {
  mark: (k) => keys.apiKeyByEnv(k.tenant_id, k.environment, k.id),
  indexes: (k) => [keys.apiKeyByEnv(k.tenant_id, k.environment, k.id)],
  counters: (
    k,
  ) => [keys.tenantKeyTotal(k.tenant_id), keys.tenantKeyEnvCount(k.tenant_id, k.environment)],
  key: (k) => apiKeyTable(k.tenant_id).key(k.id),
};

/** Revoked and marked-expired keys' counts: live keys were counted all along (key_count). */
const apiKeyStates: Family<ApiKey> = {
  mark: (k) => stateIndexes(k)[0],
  indexes: stateIndexes,
  counters: (k) => live(k) ? [] : stateCounters(k),
  key: (k) => apiKeyTable(k.tenant_id).key(k.id),
};

/** Keys by project and by external id: only the keys that have one get entries. */
const apiKeyOwners: Family<ApiKey> = {
  mark: (k) => ownerIndexes(k)[0],
  indexes: ownerIndexes,
  counters: ownerCounters,
  key: (k) => apiKeyTable(k.tenant_id).key(k.id),
};

const audits: Family<AuditEvent> = {
  mark: (e) => keys.auditByType(e.resource_type, e.id),
  indexes: (e) => [keys.auditByType(e.resource_type, e.id), keys.auditByAction(e.action, e.id)],
  counters: (e) =>
    auditTable.counters!(e).filter((k) => JSON.stringify(k) !== JSON.stringify(keys.auditCount())),
  key: (e) => keys.audit(e.id),
};

/** Adds one record's entries to `op`, checked: it is unchanged and not yet done. */
function give<T>(op: Deno.AtomicOperation, family: Family<T>, entry: Versioned<T>) {
  const record = entry.value;
  op.check({ key: family.key(record), versionstamp: entry.versionstamp })
    .check({ key: family.mark(record), versionstamp: null });
  const id = (record as { id: string }).id;
  for (const key of family.indexes(record)) op.set(key, id);
  for (const key of family.counters(record)) op.sum(key, 1n);
}

/** A record alone, re-read until its commit holds (or it is done, or gone). */
function giveOne<T>(svc: Services, family: Family<T>, key: Deno.KvKey) {
  return retrying(async () => {
    const entry = await svc.kv.get<T>(key);
    if (entry.versionstamp === null) return 0;
    if ((await svc.kv.get(family.mark(entry.value))).versionstamp !== null) return 0;
    const op = svc.kv.atomic();
    give(op, family, entry as Versioned<T>);
    return (await commit(op)) ? 1 : CONFLICT;
  });
}

/** Records per commit: two checks each, well inside KV's limits on one atomic operation. */
const BATCH = 40;

async function backfill<T>(
  svc: Services,
  family: Family<T>,
  selector: Deno.KvListSelector,
): Promise<number> {
  let given = 0;
  let batch: Versioned<T>[] = [];
  const flush = async () => {
    const marks: Deno.KvEntryMaybe<unknown>[] = [];
    // getMany reads at most 10 keys.
    for (let i = 0; i < batch.length; i += 10) {
      marks.push(...await svc.kv.getMany(batch.slice(i, i + 10).map((e) => family.mark(e.value))));
    }
    const todo = batch.filter((_, i) => marks[i].versionstamp === null);
    batch = [];
    if (todo.length === 0) return;
    const op = svc.kv.atomic();
    for (const entry of todo) give(op, family, entry);
    if (await commit(op)) given += todo.length;
    // Something moved under the batch: one record at a time, each re-read.
    else for (const entry of todo) given += await giveOne(svc, family, family.key(entry.value));
  };
  for await (const entry of svc.kv.list<T>(selector, { batchSize: 500 })) {
    // A record the family gives nothing to (a key with no project) has nothing to mark.
    if (family.indexes(entry.value).length === 0) continue;
    batch.push(entry);
    if (batch.length === BATCH) await flush();
  }
  await flush();
  return given;
}

/**
 * Gives every older tenant, user, API key and audit event its list index entries and counts,
 * once: returns how many records it gave them to (0 when the store is already ready). Run at
 * start-up before serving, on every process (the second finds them done).
 */
export async function backfillListCounts(svc: Services): Promise<number> {
  if (await countsReady(svc.kv)) return 0;
  let given = await backfill(svc, tenants, { prefix: keys.tenants() });
  given += await backfill(svc, users, { prefix: keys.users() });
  for await (const t of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    given += await backfill(svc, apiKeys, { prefix: keys.apiKeys(t.value.id) });
    given += await backfill(svc, apiKeyStates, { prefix: keys.apiKeys(t.value.id) });
    given += await backfill(svc, apiKeyOwners, { prefix: keys.apiKeys(t.value.id) });
  }
  given += await backfill(svc, audits, { prefix: keys.audits() });
  await svc.kv.set(keys.listCountsReady(), { at: new Date(svc.now()).toISOString() });
  return given;
}
