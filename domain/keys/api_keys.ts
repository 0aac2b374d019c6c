/**
 * A tenant's API keys: the credentials its customers send to the tenant's API, checked by
 * POST /v1/keys/verify. A key is `{prefix}_{24 random base62}{6 check characters}`: 142 bits
 * of randomness, and a checksum so verify turns away a mistyped or made-up key without
 * touching storage. Shown once; stored as SHA-256 with a pointer from the hash, kept after
 * revocation so verify can say REVOKED rather than NOT_FOUND.
 */
import { createHash } from "node:crypto";
import { commit } from "../../kv/commit.ts";
import { getBatched } from "../../kv/batch.ts";
import { keys } from "../../kv/keys.ts";
import {
  type Counted,
  countsReady,
  listCounted,
  type Page,
  type PageRequest,
} from "../../kv/list.ts";
import {
  getRecord,
  insert,
  readCounter,
  replace,
  type Table,
  type Versioned,
} from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { badRequest, conflict, notFound } from "../shared/errors.ts";
import { requireProject } from "../tenancy/projects.ts";
import { updateRecord } from "../audit/records.ts";
import { newId } from "../shared/ids.ts";
import type { RateLimit } from "../tenancy/plans.ts";
import { randomBase62, sha256Hex } from "../shared/secrets.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { createTenant, type NewTenant, type Tenant } from "../tenancy/tenants.ts";
import { iso } from "../shared/time.ts";

export type Environment = "live" | "test";
export type KeyStatus = "active" | "revoked" | "expired";
export type KeyMeta = Record<string, string | number | boolean | null>;

export interface ApiKey {
  id: string;
  tenant_id: string;
  project_id: string | null;
  name: string;
  environment: Environment;
  /** `sk_live_AbCd`: enough to recognise the key, not to use it. */
  start: string;
  key_hash: string;
  scopes: string[];
  expires_at: string | null;
  /** Overrides the plan's rate limit for this key. */
  rate_limit: RateLimit | null;
  meta: KeyMeta;
  external_id: string | null;
  /** When the key stops working: now for a revocation, later for a rotation's grace. */
  revoked_at: string | null;
  /**
   * When the expiring cron recorded that `expires_at` passed (reads already say `expired` from
   * `expires_at`); the key then leaves the tenant's count of live keys. Absent on older records.
   */
  expired_at?: string | null;
  rotated_from: string | null;
  rotated_to: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** What the hash of a key points to. */
export interface KeyPointer {
  tenant_id: string;
  id: string;
}

const RANDOM_CHARS = 24;
const CHECK_CHARS = 6;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_SHAPE = /^([a-z][a-z0-9]{0,15}_(?:live|test))_([0-9A-Za-z]{30})$/;
export const DEFAULT_KEY_PREFIX = "sk";
/** A rotation's old key may keep working for up to a week. */
export const MAX_GRACE_SECONDS = 7 * 86_400;

/** Six base62 characters of SHA-256 over the rest of the key (35 bits: a typo slips by 1 in 34 billion). */
function checksum(body: string): string {
  const digest = createHash("sha256").update(body).digest();
  let n = digest.readUIntBE(0, 5);
  let out = "";
  for (let i = 0; i < CHECK_CHARS; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** A new key for `prefix` (`sk_live`): random part, then its checksum. */
export function mintKey(prefix: string): string {
  const body = `${prefix}_${randomBase62(RANDOM_CHARS)}`;
  return body + checksum(body);
}

/** Whether `key` has a key's shape and a matching checksum: no storage involved. */
export function wellFormedKey(key: string): boolean {
  const m = KEY_SHAPE.exec(key);
  if (!m) return false;
  const body = key.slice(0, key.length - CHECK_CHARS);
  return checksum(body) === key.slice(-CHECK_CHARS);
}

export const keyPrefix = (tenant: Pick<Tenant, "key_prefix">, env: Environment) =>
  `${tenant.key_prefix ?? DEFAULT_KEY_PREFIX}_${env}`;

export function keyStatus(key: ApiKey, now: number): KeyStatus {
  if (key.revoked_at && Date.parse(key.revoked_at) <= now) return "revoked";
  if (key.expired_at || (key.expires_at && Date.parse(key.expires_at) <= now)) return "expired";
  return "active";
}

/** Neither revoked (nor in a rotation's grace) nor recorded as expired. */
export const live = (k: ApiKey) => k.revoked_at === null && !k.expired_at;

/**
 * The status as the record stores it, whatever the clock: what the maintained counts count.
 * It differs from keyStatus for a key in a rotation's grace and for one past its expiry that
 * the cron has not marked yet (keysInStatus corrects for both).
 */
const storedState = (k: ApiKey): KeyStatus =>
  k.revoked_at !== null ? "revoked" : k.expired_at ? "expired" : "active";

export const apiKeyTable = (tenantId: string): Table<ApiKey> => ({
  key: (id) => keys.apiKey(tenantId, id),
  indexes: (k) => [
    keys.apiKeyByEnv(k.tenant_id, k.environment, k.id),
    ...stateIndexes(k),
    ...ownerIndexes(k),
    ...(live(k) && k.expires_at ? [keys.apiKeyExpiry(k.expires_at, k.tenant_id, k.id)] : []),
  ],
  counters: (k) => [
    keys.tenantKeyTotal(k.tenant_id),
    keys.tenantKeyEnvCount(k.tenant_id, k.environment),
    ...stateCounters(k),
    ...ownerCounters(k),
  ],
  stamp: () => keys.tenantStamp(tenantId),
});

/** The key's entry in its stored state's index, and in the revocations by time once revoked. */
export const stateIndexes = (k: ApiKey): Deno.KvKey[] => [
  keys.apiKeyByState(k.tenant_id, storedState(k), k.id),
  ...(k.revoked_at !== null ? [keys.apiKeyRevocation(k.tenant_id, k.revoked_at, k.id)] : []),
];

/** The count of the key's stored state: live keys are `key_count`, kept since keys began. */
export const stateCounters = (k: ApiKey): Deno.KvKey[] => {
  const state = storedState(k);
  return [
    state === "active"
      ? keys.tenantKeyCount(k.tenant_id)
      : keys.tenantKeyStateCount(k.tenant_id, state),
  ];
};

/** The key's entries by project and by external id, when it has them. */
export const ownerIndexes = (k: ApiKey): Deno.KvKey[] => [
  ...(k.project_id ? [keys.apiKeyByProject(k.tenant_id, k.project_id, k.id)] : []),
  ...(k.external_id ? [keys.apiKeyByExternalId(k.tenant_id, k.external_id, k.id)] : []),
];

/** The counts by project and by external id, for the keys that have them. */
export const ownerCounters = (k: ApiKey): Deno.KvKey[] => [
  ...(k.project_id ? [keys.tenantKeyProjectCount(k.tenant_id, k.project_id)] : []),
  ...(k.external_id ? [keys.tenantKeyExternalIdCount(k.tenant_id, k.external_id)] : []),
];

/**
 * The key as the API shows it: status computed now, last use from `lastUsed`, never the hash.
 */
export const apiKeyView =
  (now: number, lastUsed: Map<string, string | null>) => ({ key_hash: _, ...rest }: ApiKey) => ({
    ...rest,
    expired_at: rest.expired_at ?? null,
    status: keyStatus(rest as ApiKey, now),
    last_used_at: lastUsed.get(rest.id) ?? null,
  });

const auditView = ({ key_hash: _, ...rest }: ApiKey) => rest;

export interface NewApiKey {
  name: string;
  project_id?: string | null;
  environment: Environment;
  scopes?: string[];
  expires_at?: string | null;
  rate_limit?: RateLimit | null;
  meta?: KeyMeta;
  external_id?: string | null;
}

function futureOrNull(at: string | null | undefined, now: number, field: string): string | null {
  if (!at) return null;
  if (Date.parse(at) <= now) {
    throw badRequest(`${field} must be in the future`, [{ path: [field], message: "in the past" }]);
  }
  return iso(Date.parse(at));
}

function liveTenant(tenant: Pick<Tenant, "status">) {
  if (tenant.status === "deleted") throw conflict("the tenant is deleted");
}

/** Adds a new key record and its hash pointer to `op`. */
function insertKey(op: Deno.AtomicOperation, key: ApiKey) {
  const pointer = keys.apiKeyHash(key.key_hash);
  insert(op, apiKeyTable(key.tenant_id), key)
    .check({ key: pointer, versionstamp: null })
    .set(pointer, { tenant_id: key.tenant_id, id: key.id } satisfies KeyPointer)
    .set(keys.apiKeyTenant(key.id), key.tenant_id);
}

function buildKey(
  tenant: Pick<Tenant, "id" | "key_prefix">,
  input: NewApiKey,
  actor: Actor,
  now: number,
): { secret: string; key: ApiKey } {
  const prefix = keyPrefix(tenant, input.environment);
  const secret = mintKey(prefix);
  const key: ApiKey = {
    id: newId("key", now),
    tenant_id: tenant.id,
    project_id: input.project_id ?? null,
    name: input.name,
    environment: input.environment,
    start: secret.slice(0, prefix.length + 5),
    key_hash: sha256Hex(secret),
    scopes: [...new Set(input.scopes ?? [])].sort(),
    expires_at: futureOrNull(input.expires_at, now, "expires_at"),
    rate_limit: input.rate_limit ?? null,
    meta: input.meta ?? {},
    external_id: input.external_id ?? null,
    revoked_at: null,
    expired_at: null,
    rotated_from: null,
    rotated_to: null,
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
  };
  return { secret, key };
}

/**
 * Creates a key; the secret is returned here once and never again. A named project must be
 * live when the key commits (its version is checked).
 */
export async function createApiKey(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  input: NewApiKey,
): Promise<{ secret: string; key: Versioned<ApiKey> }> {
  liveTenant(tenant);
  const project = input.project_id ? await requireProject(svc, tenant.id, input.project_id) : null;
  const now = svc.now();
  const { secret, key } = buildKey(tenant, input, actor, now);
  // Plugins hooked on the creation may veto it (422), before anything is written.
  await svc.hooks?.ask("api_key.creating", auditView(key), actor);
  const op = svc.kv.atomic();
  if (project) {
    op.check({
      key: keys.project(tenant.id, project.value.id),
      versionstamp: project.versionstamp,
    });
  }
  insertKey(op, key);
  recordChange(op, now, actor, {
    action: "api_key.created",
    resource_type: "api_key",
    resource_id: key.id,
    tenant_id: tenant.id,
    after: auditView(key),
  });
  const res = await commit(op);
  if (!res) throw conflict("the project changed while the key was being created; try again");
  return { secret, key: { value: key, versionstamp: res.versionstamp } };
}

/**
 * A new tenant with its first API key, in one commit: the way a key service provisions a
 * customer. The key's secret is returned this once.
 */
export async function createTenantWithKey(
  svc: Services,
  actor: Actor,
  input: NewTenant,
  opts: { is_test: boolean },
  first: Pick<NewApiKey, "name" | "environment" | "scopes">,
): Promise<{ tenant: Versioned<Tenant>; secret: string; key: ApiKey }> {
  // Set by the commit's last attempt (createRecord retries a conflict).
  const minted: { secret?: string; key?: ApiKey } = {};
  const tenant = await createTenant(svc, actor, input, {
    ...opts,
    extra: (op, t) => {
      const now = svc.now();
      Object.assign(minted, buildKey(t, first, actor, now));
      insertKey(op, minted.key!);
      recordChange(op, now, actor, {
        action: "api_key.created",
        resource_type: "api_key",
        resource_id: minted.key!.id,
        tenant_id: t.id,
        after: auditView(minted.key!),
      });
    },
  });
  return { tenant, secret: minted.secret!, key: minted.key! };
}

export async function getApiKey(
  svc: Services,
  tenantId: string,
  id: string,
): Promise<Versioned<ApiKey>> {
  const key = await getRecord(svc.kv, apiKeyTable(tenantId), id);
  if (!key) throw notFound("API key");
  return key;
}

/**
 * When each key was last verified: the persisted maximum, or a later one still waiting in
 * the write-behind counters.
 */
export async function lastUsedAt(
  svc: Services,
  tenantId: string,
  ids: string[],
): Promise<Map<string, string | null>> {
  const counters = ids.map((id) => keys.keyLastUsed(tenantId, id));
  // Batched reads: getMany calls of 10 keys (its limit), all in flight at once.
  const entries = await Promise.all(counters.map((key) => getBatched<Deno.KvU64>(svc.kv, key)));
  return new Map(ids.map((id, i) => {
    const ms = Math.max(
      Number(entries[i].value?.value ?? 0n),
      svc.counters.pendingMax(counters[i]),
    );
    return [id, ms ? iso(ms) : null];
  }));
}

export interface KeyFilter {
  status?: KeyStatus;
  project_id?: string;
  environment?: Environment;
  external_id?: string;
}

/**
 * The tenant's keys, newest first. The whole list and each filter alone are counted by
 * maintained counts (a key never changes environment, project or external id; a status the
 * clock moved is carried across, keysInStatus). A page walks the narrowest index its filters
 * name: external id, project, environment, then `revoked`; a combination of filters counts by
 * walking that index.
 */
export async function listApiKeys(
  svc: Services,
  tenantId: string,
  filter: KeyFilter,
  page: PageRequest,
): Promise<Page<ApiKey> & Counted> {
  const now = svc.now();
  const { environment, status, project_id, external_id } = filter;
  let selector: Deno.KvListSelector = { prefix: keys.apiKeys(tenantId) };
  let resolve: ((entry: Deno.KvEntry<unknown>) => Promise<Versioned<ApiKey> | null>) | undefined;
  let counter: (() => Promise<number>) | null = null;
  if (await countsReady(svc.kv)) {
    // The narrowest index the filters name, and the count of its keys.
    const [index, count]: [Deno.KvKey | null, Deno.KvKey] = external_id
      ? [
        keys.apiKeysByExternalId(tenantId, external_id),
        keys.tenantKeyExternalIdCount(tenantId, external_id),
      ]
      : project_id
      ? [
        keys.apiKeysByProject(tenantId, project_id),
        keys.tenantKeyProjectCount(tenantId, project_id),
      ]
      : environment
      ? [keys.apiKeysByEnv(tenantId, environment), keys.tenantKeyEnvCount(tenantId, environment)]
      // Every revoked key is in that index (with those still in a grace, which the filter
      // leaves out); an active or expired one may have its stored state behind the clock.
      : [
        status === "revoked" ? keys.apiKeysByState(tenantId, "revoked") : null,
        keys.tenantKeyTotal(tenantId),
      ];
    if (index) {
      selector = { prefix: index };
      resolve = (entry) => getRecord(svc.kv, apiKeyTable(tenantId), entry.value as string);
    }
    // One filter, or none, is a maintained count; a combination counts by walking its index.
    if ([environment, status, project_id, external_id].filter(Boolean).length <= 1) {
      counter = status
        ? () => keysInStatus(svc, tenantId, status, now)
        : () => readCounter(svc.kv, count);
    }
  }
  return await listCounted<ApiKey>(
    svc.kv,
    {
      selector,
      resolve,
      filter: (k) =>
        (!filter.status || keyStatus(k, now) === filter.status) &&
        (!filter.project_id || k.project_id === filter.project_id) &&
        (!filter.environment || k.environment === filter.environment) &&
        (!filter.external_id || k.external_id === filter.external_id),
    },
    { ...page, reverse: true },
    counter,
  );
}

/**
 * How many of the tenant's keys read as `status` now: the stored count, with the keys whose
 * status the clock moved since their last write carried across. Those are the keys in a
 * rotation's grace (stored revoked, read active or expired) and the live keys past their expiry
 * that the cron has not marked yet (stored active, read expired): both few, found by their
 * indexes' time order.
 */
async function keysInStatus(
  svc: Services,
  tenantId: string,
  status: KeyStatus,
  now: number,
): Promise<number> {
  const stored = readCounter(
    svc.kv,
    status === "active"
      ? keys.tenantKeyCount(tenantId)
      : keys.tenantKeyStateCount(tenantId, status),
  );
  const ahead = iso(now + 1);
  const moved: string[] = [];
  const graces = {
    prefix: keys.apiKeyRevocations(tenantId),
    start: [...keys.apiKeyRevocations(tenantId), ahead],
  };
  for await (const e of svc.kv.list<string>(graces)) moved.push(e.value);
  const due = { start: keys.apiKeyExpiries(), end: [...keys.apiKeyExpiries(), ahead] };
  for await (const e of svc.kv.list<string>(due)) if (e.key[2] === tenantId) moved.push(e.value);
  let total = await stored;
  const table = apiKeyTable(tenantId);
  for (const key of await Promise.all(moved.map((id) => getRecord(svc.kv, table, id)))) {
    if (!key) continue;
    const [from, to] = [storedState(key.value), keyStatus(key.value, now)];
    if (from !== to) total += (to === status ? 1 : 0) - (from === status ? 1 : 0);
  }
  return total;
}

/**
 * One change to a key in one commit with its audit event (re-read on a concurrent write, 412
 * on a stale If-Match); this process's verify cache forgets the record at once.
 */
function changeKey(
  svc: Services,
  actor: Actor,
  tenantId: string,
  id: string,
  ifMatch: string | undefined,
  action: string,
  next: (current: ApiKey, now: number) => ApiKey,
  extra?: (op: Deno.AtomicOperation) => void,
): Promise<Versioned<ApiKey>> {
  return updateRecord(svc, actor, apiKeyTable(tenantId), {
    id,
    noun: "API key",
    ifMatch,
    action,
    resource_type: "api_key",
    tenant_id: () => tenantId,
    view: auditView,
    apply: (k) => {
      const now = svc.now();
      const after = next(k, now);
      return after === k ? k : { ...after, updated_at: iso(now) };
    },
    extra,
  });
}

export interface ApiKeyPatch {
  name?: string;
  scopes?: string[];
  expires_at?: string | null;
  rate_limit?: RateLimit | null;
  meta?: KeyMeta;
}

export function updateApiKey(
  svc: Services,
  actor: Actor,
  tenantId: string,
  id: string,
  patch: ApiKeyPatch,
  ifMatch?: string,
): Promise<Versioned<ApiKey>> {
  return changeKey(svc, actor, tenantId, id, ifMatch, "api_key.updated", (k, now) => {
    if (keyStatus(k, now) === "revoked") throw conflict("the key is revoked");
    const expiresAt = patch.expires_at !== undefined
      ? futureOrNull(patch.expires_at, now, "expires_at")
      : k.expires_at;
    const next: ApiKey = {
      ...k,
      name: patch.name ?? k.name,
      scopes: patch.scopes ? [...new Set(patch.scopes)].sort() : k.scopes,
      expires_at: expiresAt,
      // A new deadline revives a key the cron marked expired, as it always did by the time.
      ...(k.expired_at && expiresAt !== k.expires_at ? { expired_at: null } : {}),
      rate_limit: patch.rate_limit !== undefined ? patch.rate_limit : k.rate_limit,
      meta: patch.meta ?? k.meta,
    };
    return JSON.stringify(next) === JSON.stringify(k) ? k : next;
  });
}

/** Revokes a key now (also one still in a rotation's grace). Revoking twice changes nothing. */
export function revokeApiKey(
  svc: Services,
  actor: Actor,
  tenantId: string,
  id: string,
  ifMatch?: string,
): Promise<Versioned<ApiKey>> {
  return changeKey(svc, actor, tenantId, id, ifMatch, "api_key.revoked", (k, now) => {
    if (keyStatus(k, now) === "revoked") return k;
    return { ...k, revoked_at: iso(now) };
  });
}

/**
 * A new secret with the same settings, returned once; the old key stops working now, or
 * after `graceSeconds` (both keys work meanwhile). Both records change in one commit.
 */
export async function rotateApiKey(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  id: string,
  graceSeconds: number,
  ifMatch?: string,
): Promise<{ secret: string; key: Versioned<ApiKey>; previous: ApiKey }> {
  liveTenant(tenant);
  let minted: { secret: string; key: ApiKey } | null = null;
  const previous = await changeKey(
    svc,
    actor,
    tenant.id,
    id,
    ifMatch,
    "api_key.rotated",
    (k, now) => {
      if (keyStatus(k, now) !== "active" || k.rotated_to) {
        throw conflict("only an active key that was not rotated yet can be rotated");
      }
      const fresh = buildKey(tenant, k, actor, now);
      minted = { secret: fresh.secret, key: { ...fresh.key, rotated_from: k.id } };
      return { ...k, revoked_at: iso(now + graceSeconds * 1000), rotated_to: minted.key.id };
    },
    (op) => {
      const key = minted!.key;
      insertKey(op, key);
      recordChange(op, svc.now(), actor, {
        action: "api_key.created",
        resource_type: "api_key",
        resource_id: key.id,
        tenant_id: key.tenant_id,
        after: auditView(key),
      });
    },
  );
  const { secret, key } = minted!;
  // Both records were written by one commit: they share its versionstamp.
  return {
    secret,
    key: { value: key, versionstamp: previous.versionstamp },
    previous: previous.value,
  };
}

/**
 * Records the expiry of every live key whose `expires_at` has passed (the cron): the record says
 * `expired_at`, the tenant's count of live keys drops by one, `api_key.expired` is audited as the
 * system with its domain event, and this process's verify cache forgets the key. Returns how
 * many keys it marked. A concurrent change to a key wins; the next run sees its outcome.
 */
export async function expireApiKeys(svc: Services): Promise<number> {
  const now = svc.now();
  let expired = 0;
  const due = svc.kv.list<string>({
    start: keys.apiKeyExpiries(),
    end: [...keys.apiKeyExpiries(), iso(now), "\uffff"],
  });
  for await (const entry of due) {
    const tenantId = entry.key.at(-2) as string;
    const table = apiKeyTable(tenantId);
    const key = await getRecord(svc.kv, table, entry.value);
    if (!key || !live(key.value) || key.value.expires_at !== entry.key.at(-3)) {
      await svc.kv.delete(entry.key); // a stale pointer
      continue;
    }
    const next: ApiKey = { ...key.value, expired_at: iso(now), updated_at: iso(now) };
    const op = replace(svc.kv.atomic(), table, key, next);
    recordChange(op, now, SYSTEM_ACTOR, {
      action: "api_key.expired",
      resource_type: "api_key",
      resource_id: next.id,
      tenant_id: tenantId,
      before: auditView(key.value),
      after: auditView(next),
    });
    if (await commit(op)) {
      svc.cache.forget(table.key(next.id));
      expired++;
    }
  }
  return expired;
}
