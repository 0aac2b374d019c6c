/**
 * Tenant secrets: named, typed values a tenant keeps in Steward (`generic`: a string; `smtp`: the
 * settings of the tenant's own mail server), versioned. The secret's record holds metadata only;
 * each version is a record of its own holding the value sealed by the vault under the tenant's
 * data key, bound by its AAD to the secret and the version. The last KEPT_VERSIONS versions are
 * kept. Reads show values masked; the clear value leaves only through `revealSecret`, which
 * commits its audit event (reason, caller, version) before it answers, and through `tenantSmtp`,
 * for the mail the tenant's own server sends.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import {
  getByPointer,
  getRecord,
  readCounter,
  remove,
  replace,
  type Table,
  type Versioned,
} from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { createRecord } from "../audit/records.ts";
import { badRequest, conflict, notFound, staleVersion } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import type { Actor, KeyOwner, Sealed, SealedRecord, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import type { Tenant } from "../tenancy/tenants.ts";

export const SECRET_TYPES = ["generic", "smtp"] as const;
export type SecretType = typeof SECRET_TYPES[number];

/** A name that is safe in a path: lower-case letters, digits, `_`, `.` and `-`, 1–64 long. */
export const SECRET_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** The tenant's own SMTP settings: the one name reserved, for a secret of type smtp. */
export const SMTP_SECRET = "smtp";
/** Versions kept: the current one and the ones before it; older ones are deleted. */
export const KEPT_VERSIONS = 5;
/** Characters of a generic value: sealed and encoded, the largest still fits a KV value. */
export const MAX_VALUE_LENGTH = 8_192;
/** What stands for a value that is not shown. */
export const MASK = "••••";
/** A generic value shows its first 2 characters from this length on (a small share of it). */
const PREVIEW_FROM = 12;

export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (usually port 465); false: STARTTLS when the server offers it. */
  secure: boolean;
  username: string;
  password: string;
  /** The sender: `addr@example.com` or `Name <addr@example.com>`. */
  from: string;
}

/** A generic secret's value is a string; an smtp secret's, its settings. */
export type SecretValue = string | SmtpSettings;

export interface Secret {
  id: string;
  tenant_id: string;
  name: string;
  type: SecretType;
  /** The current version; versions are numbered 1, 2, … without gaps. */
  version: number;
  created_at: string;
  created_by: string;
  /** When and by whom the current version was written. */
  updated_at: string;
  updated_by: string;
  last_revealed_at: string | null;
}

/** One version of a secret, its value sealed (`sealed` is what a key rotation rewrites). */
export interface SecretVersion {
  secret_id: string;
  tenant_id: string;
  version: number;
  created_at: string;
  created_by: string;
  sealed: Sealed;
}

export const secretTable = (tenantId: string): Table<Secret> => ({
  key: (id) => keys.secret(tenantId, id),
  unique: (s) => [keys.secretName(tenantId, s.name)],
  indexes: (s) => [keys.secretIndex(tenantId, s.id)],
  counters: () => [keys.tenantSecretCount(tenantId), keys.secretCount()],
});

const aadOf = (v: Pick<SecretVersion, "tenant_id" | "secret_id" | "version">) =>
  `secret:${v.tenant_id}:${v.secret_id}:${v.version}`;

/** The versions kept, newest first. */
export const keptVersions = (s: Pick<Secret, "version">): number[] =>
  Array.from({ length: Math.min(s.version, KEPT_VERSIONS) }, (_, i) => s.version - i);

/** What the API, the audit trail and the events show of a secret: never its value. */
export function secretView(s: Secret) {
  return {
    id: s.id,
    tenant_id: s.tenant_id,
    name: s.name,
    type: s.type,
    version: s.version,
    versions: keptVersions(s),
    created_at: s.created_at,
    created_by: s.created_by,
    updated_at: s.updated_at,
    updated_by: s.updated_by,
    last_revealed_at: s.last_revealed_at,
  };
}

/** A value as reads show it: a generic one's first 2 characters at most, an smtp password never. */
export interface MaskedValue {
  value_preview: string | null;
  smtp: Omit<SmtpSettings, "password"> & { password: typeof MASK } | null;
}

export function maskValue(type: SecretType, value: SecretValue): MaskedValue {
  if (type === "smtp") {
    const { host, port, secure, username, from } = value as SmtpSettings;
    return { value_preview: null, smtp: { host, port, secure, username, password: MASK, from } };
  }
  const chars = [...value as string];
  const preview = chars.length >= PREVIEW_FROM ? `${chars.slice(0, 2).join("")}••` : MASK;
  return { value_preview: preview, smtp: null };
}

/** Refuses a value of the wrong kind for `type`, or a name the type may not take. */
function checkValue(name: string, type: SecretType, value: SecretValue) {
  if (name === SMTP_SECRET && type !== "smtp") {
    throw badRequest(`the name "${SMTP_SECRET}" is reserved for a secret of type smtp`, [
      { path: ["type"], message: `must be smtp for the name "${SMTP_SECRET}"` },
    ]);
  }
  const fits = type === "smtp"
    ? typeof value === "object" && value !== null
    : typeof value === "string" && value.length > 0;
  if (!fits) {
    const want = type === "smtp" ? "the SMTP settings" : "a non-empty string";
    throw badRequest(`a ${type} secret's value must be ${want}`, [
      { path: ["value"], message: `must be ${want}` },
    ]);
  }
}

const liveTenant = (tenant: Tenant) => {
  if (tenant.status === "deleted") throw conflict("the tenant is deleted");
};

async function sealVersion(
  svc: Services,
  actor: Actor,
  secret: Pick<Secret, "id" | "tenant_id">,
  version: number,
  value: SecretValue,
  now: number,
): Promise<SecretVersion> {
  const stored = { secret_id: secret.id, tenant_id: secret.tenant_id, version };
  const plain = new TextEncoder().encode(JSON.stringify(value));
  const sealed = await svc.vault.seal(svc.kv, secret.tenant_id, plain, aadOf(stored));
  return { ...stored, created_at: iso(now), created_by: actor.id, sealed };
}

async function openVersion(svc: Services, v: SecretVersion): Promise<SecretValue> {
  const plain = await svc.vault.open(svc.kv, v.tenant_id, v.sealed, aadOf(v));
  return JSON.parse(new TextDecoder().decode(plain));
}

const findSecret = (svc: Services, tenantId: string, name: string) =>
  getByPointer(svc.kv, secretTable(tenantId), keys.secretName(tenantId, name));

async function requireSecret(svc: Services, tenantId: string, name: string) {
  const found = await findSecret(svc, tenantId, name);
  if (!found) throw notFound(`secret "${name}"`);
  return found;
}

/** A kept version of `secret` (the current one by default), or 404. */
async function requireVersion(
  svc: Services,
  secret: Secret,
  version = secret.version,
): Promise<SecretVersion> {
  const kept = keptVersions(secret);
  const stored = kept.includes(version)
    ? await svc.kv.get<SecretVersion>(keys.secretVersion(secret.tenant_id, secret.id, version))
    : null;
  if (!stored?.value) {
    throw notFound(`version ${version} of secret "${secret.name}" (kept: ${kept.join(", ")})`);
  }
  return stored.value;
}

const describe = {
  resource_type: "secret",
  tenant_id: (s: Secret) => s.tenant_id,
  view: secretView,
};

export interface NewSecret {
  name: string;
  type: SecretType;
  value: SecretValue;
}

/** Creates version 1 of a secret; 409 when the tenant has one of that name. */
export async function createSecret(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  input: NewSecret,
): Promise<Versioned<Secret>> {
  liveTenant(tenant);
  if (!SECRET_NAME.test(input.name)) throw badRequest(`"${input.name}" is not a secret name`);
  checkValue(input.name, input.type, input.value);
  const now = svc.now();
  const id = newId("sec", now);
  const first = await sealVersion(svc, actor, { id, tenant_id: tenant.id }, 1, input.value, now);
  const secret: Secret = {
    id,
    tenant_id: tenant.id,
    name: input.name,
    type: input.type,
    version: 1,
    created_at: iso(now),
    created_by: actor.id,
    updated_at: iso(now),
    updated_by: actor.id,
    last_revealed_at: null,
  };
  return await createRecord(svc, actor, secretTable(tenant.id), secret, {
    ...describe,
    action: "secret.created",
    clash: (s) => `the tenant has a secret named "${s.name}"; PUT makes a new version of it`,
    extra: (op) => op.set(keys.secretVersion(tenant.id, id, 1), first),
  });
}

/** Writes a new version of the secret `name`; the oldest one beyond KEPT_VERSIONS goes. */
export async function updateSecret(
  svc: Services,
  actor: Actor,
  tenant: Tenant,
  name: string,
  value: SecretValue,
  ifMatch?: string,
): Promise<Versioned<Secret>> {
  liveTenant(tenant);
  const table = secretTable(tenant.id);
  return await retrying(async () => {
    const current = await requireSecret(svc, tenant.id, name);
    if (ifMatch && ifMatch !== current.versionstamp) throw staleVersion();
    const s = current.value;
    checkValue(s.name, s.type, value);
    const now = svc.now();
    const version = s.version + 1;
    const stored = await sealVersion(svc, actor, s, version, value, now);
    const next: Secret = { ...s, version, updated_at: iso(now), updated_by: actor.id };
    const op = replace(svc.kv.atomic(), table, current, next)
      .set(keys.secretVersion(s.tenant_id, s.id, version), stored);
    const dropped = version - KEPT_VERSIONS;
    if (dropped >= 1) op.delete(keys.secretVersion(s.tenant_id, s.id, dropped));
    recordChange(op, now, actor, {
      action: "secret.updated",
      resource_type: describe.resource_type,
      resource_id: s.id,
      tenant_id: s.tenant_id,
      before: secretView(s),
      after: secretView(next),
    });
    const res = await commit(op);
    if (res) return { value: next, versionstamp: res.versionstamp };
    if (ifMatch) throw staleVersion();
    return CONFLICT;
  });
}

/** Deletes a secret with every version it has, in one audited commit; null when it is gone. */
async function removeSecret(
  svc: Services,
  actor: Actor,
  tenantId: string,
  find: () => Promise<Versioned<Secret> | null>,
  ifMatch?: string,
): Promise<Versioned<Secret> | null> {
  return await retrying(async () => {
    const current = await find();
    if (!current) return null;
    if (ifMatch && ifMatch !== current.versionstamp) throw staleVersion();
    const s = current.value;
    // Listed outside the commit, but the record's check covers them: a version is only ever
    // written or deleted in a commit that changes the record too.
    const op = remove(svc.kv.atomic(), secretTable(tenantId), current);
    for await (const v of svc.kv.list({ prefix: keys.secretVersions(tenantId, s.id) })) {
      op.delete(v.key);
    }
    recordChange(op, svc.now(), actor, {
      action: "secret.deleted",
      resource_type: describe.resource_type,
      resource_id: s.id,
      tenant_id: tenantId,
      before: secretView(s),
    });
    if (await commit(op)) return current;
    if (ifMatch) throw staleVersion();
    return CONFLICT;
  });
}

export async function deleteSecret(
  svc: Services,
  actor: Actor,
  tenantId: string,
  name: string,
  ifMatch?: string,
): Promise<Versioned<Secret>> {
  const find = () => findSecret(svc, tenantId, name);
  const deleted = await removeSecret(svc, actor, tenantId, find, ifMatch);
  if (!deleted) throw notFound(`secret "${name}"`);
  return deleted;
}

/** Deletes every secret of a deleted tenant (tenant.cleanup); returns how many went. */
export async function deleteTenantSecrets(
  svc: Services,
  actor: Actor,
  tenantId: string,
): Promise<number> {
  let deleted = 0;
  for await (const e of svc.kv.list<Secret>({ prefix: keys.secrets(tenantId) })) {
    const find = () => getRecord(svc.kv, secretTable(tenantId), e.value.id);
    if (await removeSecret(svc, actor, tenantId, find)) deleted++;
  }
  return deleted;
}

/** A version's metadata, without its sealed value. */
const versionMeta = ({ sealed: _, ...meta }: SecretVersion) => meta;

export interface ShownSecret {
  secret: Versioned<Secret>;
  /** The version whose value the read shows. */
  version: Omit<SecretVersion, "sealed">;
  /** Null when the caller asked for metadata only. */
  masked: MaskedValue | null;
}

/** A secret with one kept version (the current one by default), its value masked or left out. */
export async function readSecret(
  svc: Services,
  tenantId: string,
  name: string,
  opts: { version?: number; withValue: boolean },
): Promise<ShownSecret> {
  const secret = await requireSecret(svc, tenantId, name);
  const stored = await requireVersion(svc, secret.value, opts.version);
  const masked = opts.withValue
    ? maskValue(secret.value.type, await openVersion(svc, stored))
    : null;
  return { secret, version: versionMeta(stored), masked };
}

export interface Revealed {
  secret: Versioned<Secret>;
  version: Omit<SecretVersion, "sealed">;
  value: SecretValue;
}

/**
 * The clear value of a kept version (the current one by default). The audit event, with the
 * reason and the version, commits before the value is returned: no reveal goes unrecorded.
 */
export async function revealSecret(
  svc: Services,
  actor: Actor,
  tenantId: string,
  name: string,
  input: { reason: string; version?: number },
): Promise<Revealed> {
  const reason = input.reason.trim();
  if (reason.length < 3) {
    throw badRequest("say why the value is needed (a reason of 3 characters or more)");
  }
  const table = secretTable(tenantId);
  return await retrying(async () => {
    const current = await requireSecret(svc, tenantId, name);
    const s = current.value;
    const stored = await requireVersion(svc, s, input.version);
    const value = await openVersion(svc, stored);
    const now = svc.now();
    const next = { ...s, last_revealed_at: iso(now) };
    const op = replace(svc.kv.atomic(), table, current, next);
    recordChange(op, now, actor, {
      action: "secret.revealed",
      resource_type: describe.resource_type,
      resource_id: s.id,
      tenant_id: tenantId,
      after: {
        id: s.id,
        tenant_id: tenantId,
        name: s.name,
        type: s.type,
        version: stored.version,
        reason,
      },
    });
    const res = await commit(op);
    return res
      ? {
        secret: { value: next, versionstamp: res.versionstamp },
        version: versionMeta(stored),
        value,
      }
      : CONFLICT;
  });
}

/**
 * The tenant's own SMTP settings in clear (its secret `smtp`, current version), or null when it
 * has none: for the mail sent through the tenant's server. Not a reveal to a person, so not
 * audited; callers must not show or store what it returns.
 */
export async function tenantSmtp(svc: Services, tenantId: string): Promise<SmtpSettings | null> {
  const found = await findSecret(svc, tenantId, SMTP_SECRET);
  if (!found || found.value.type !== "smtp") return null;
  return await openVersion(svc, await requireVersion(svc, found.value)) as SmtpSettings;
}

/** A tenant's secrets, newest first; `total` from the tenant's count when no filter applies. */
export function listSecrets(
  svc: Services,
  tenantId: string,
  filter: { type?: SecretType },
  page: PageRequest,
): Promise<Page<Secret> & Counted> {
  return listCounted<Secret>(
    svc.kv,
    {
      selector: { prefix: keys.secrets(tenantId) },
      filter: (s) => !filter.type || s.type === filter.type,
    },
    { ...page, reverse: true },
    filter.type ? null : () => readCounter(svc.kv, keys.tenantSecretCount(tenantId)),
  );
}

/** Every tenant's secrets (by tenant, newest first), for the platform's list. */
export function listAllSecrets(
  svc: Services,
  filter: { tenant_id?: string; type?: SecretType },
  page: PageRequest,
): Promise<Page<Secret> & Counted> {
  return listCounted<Secret>(
    svc.kv,
    {
      selector: {
        prefix: filter.tenant_id
          ? keys.tenantSecretIndexes(filter.tenant_id)
          : keys.secretIndexes(),
      },
      resolve: (e) => getRecord(svc.kv, secretTable(e.key[1] as string), e.value as string),
      filter: (s) => !filter.type || s.type === filter.type,
    },
    { ...page, reverse: true },
    filter.tenant_id || filter.type ? null : () => readCounter(svc.kv, keys.secretCount()),
  );
}

/** Every sealed version of a tenant's secrets, as a data key rotation re-seals them. */
export async function* sealedSecretVersions(
  kv: Deno.Kv,
  owner: KeyOwner,
): AsyncGenerator<SealedRecord<SecretVersion>> {
  if (owner === null) return;
  for await (const entry of kv.list<SecretVersion>({ prefix: keys.tenantSecretVersions(owner) })) {
    yield {
      entry,
      fields: [{ sealed: entry.value.sealed, aad: aadOf(entry.value) }],
      with: ([sealed]) => ({ ...entry.value, sealed }),
    };
  }
}
