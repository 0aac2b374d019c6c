/**
 * A project's ES256 signing keys, for the JWTs POST /v1/tokens issues. One key is active;
 * rotating makes a new active key and leaves the previous one `retiring` — still published in
 * the JWKS, so tokens it signed keep verifying — until its grace ends, when it reads `retired`
 * (and the cron writes that down). Private keys are sealed by the vault; only public JWKs are
 * ever served.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { recordChange } from "../audit/audit.ts";
import { conflict, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { getProject } from "../tenancy/projects.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import type { KeyOwner, Sealed, SealedRecord } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

export type SigningKeyStatus = "active" | "retiring" | "retired";

export interface SigningKey {
  kid: string;
  tenant_id: string;
  project_id: string;
  alg: "ES256";
  status: SigningKeyStatus;
  public_jwk: { kty: string; crv: string; x: string; y: string };
  private_sealed: Sealed;
  created_at: string;
  retires_at: string | null;
  retired_at: string | null;
}

export const DEFAULT_GRACE_SECONDS = 86_400;
export const MAX_GRACE_SECONDS = 7 * 86_400;
const ES256 = { name: "ECDSA", namedCurve: "P-256" } as const;

const aadOf = (k: Pick<SigningKey, "kid">) => `signing_key:${k.kid}`;

/** The status as of `now`: a retiring key past its grace reads as retired. */
export function signingKeyStatus(k: SigningKey, now: number): SigningKeyStatus {
  return k.status === "retiring" && k.retires_at && Date.parse(k.retires_at) <= now
    ? "retired"
    : k.status;
}

/** What the API shows: status as of now, never the sealed private key. */
export const signingKeyView = (now: number) => (k: SigningKey) => ({
  kid: k.kid,
  project_id: k.project_id,
  alg: k.alg,
  status: signingKeyStatus(k, now),
  public_jwk: k.public_jwk,
  created_at: k.created_at,
  retires_at: k.retires_at,
  retired_at: k.retired_at ?? (signingKeyStatus(k, now) === "retired" ? k.retires_at : null),
});

/** The project's keys, newest first. */
export async function listSigningKeys(
  svc: Services,
  tenantId: string,
  projectId: string,
): Promise<Deno.KvEntry<SigningKey>[]> {
  const found: Deno.KvEntry<SigningKey>[] = [];
  const selector = { prefix: keys.signingKeys(tenantId, projectId) };
  for await (const e of svc.kv.list<SigningKey>(selector, { reverse: true })) found.push(e);
  return found;
}

/**
 * Signing keys used to live under their project's key, inside the prefix the project list
 * scans (it returned them as projects). Moves any still there to their own family; runs once
 * per store, recorded under `keys.migration`. Returns how many moved.
 */
export async function relocateSigningKeys(svc: Services): Promise<number> {
  const marker = keys.migration("signing_keys_family");
  if ((await svc.kv.get(marker)).versionstamp !== null) return 0;
  let moved = 0;
  for await (const tenant of svc.kv.list<{ id: string }>({ prefix: keys.tenants() })) {
    for await (
      const project of svc.kv.list<{ id: string }>({ prefix: keys.projects(tenant.value.id) })
    ) {
      if (project.key.length !== 4) continue;
      const legacy = keys.legacySigningKeys(tenant.value.id, project.value.id);
      for await (const e of svc.kv.list<SigningKey>({ prefix: legacy })) {
        const kid = e.key.at(-1) as string;
        const op = svc.kv.atomic().check(e).delete(e.key)
          .set(keys.signingKey(tenant.value.id, project.value.id, kid), e.value);
        if (await commit(op)) moved++;
      }
    }
  }
  await svc.kv.set(marker, { at: iso(svc.now()), moved });
  return moved;
}

async function generate(svc: Services, tenantId: string, projectId: string, now: number) {
  const pair = await crypto.subtle.generateKey(ES256, true, ["sign", "verify"]);
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const privateJwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const kid = newId("sig", now);
  const key: SigningKey = {
    kid,
    tenant_id: tenantId,
    project_id: projectId,
    alg: "ES256",
    status: "active",
    public_jwk: { kty: kty!, crv: crv!, x: x!, y: y! },
    private_sealed: await svc.vault.seal(
      svc.kv,
      tenantId,
      new TextEncoder().encode(JSON.stringify(privateJwk)),
      aadOf({ kid }),
    ),
    created_at: iso(now),
    retires_at: null,
    retired_at: null,
  };
  return key;
}

/**
 * Makes a new active key; the active one (if any) turns `retiring` for `graceSeconds`. One
 * commit, checked against the keys read: of two concurrent rotations one wins, the other is 409.
 */
export async function rotateSigningKey(
  svc: Services,
  actor: Actor,
  tenantId: string,
  projectId: string,
  graceSeconds = DEFAULT_GRACE_SECONDS,
): Promise<SigningKey> {
  await getProject(svc, tenantId, projectId);
  const current = (await listSigningKeys(svc, tenantId, projectId))
    .filter((e) => e.value.status === "active");
  const now = svc.now();
  const fresh = await generate(svc, tenantId, projectId, now);
  const op = svc.kv.atomic()
    .check({ key: keys.signingKey(tenantId, projectId, fresh.kid), versionstamp: null })
    .set(keys.signingKey(tenantId, projectId, fresh.kid), fresh);
  const retiring: string[] = [];
  for (const e of current) {
    const retires_at = iso(now + graceSeconds * 1000);
    op.check(e).set(e.key, { ...e.value, status: "retiring", retires_at });
    op.set(keys.retiringSigningKey(retires_at, e.value.kid), {
      tenant_id: tenantId,
      project_id: projectId,
      kid: e.value.kid,
    });
    retiring.push(e.value.kid);
  }
  recordChange(op, now, actor, {
    action: "signing_key.rotated",
    resource_type: "project",
    resource_id: projectId,
    tenant_id: tenantId,
    after: {
      project_id: projectId,
      active_kid: fresh.kid,
      retiring_kids: retiring,
      grace_seconds: graceSeconds,
    },
  });
  if (!(await commit(op))) {
    throw conflict("the project's keys were rotated meanwhile; read them again");
  }
  return fresh;
}

/** The key to sign with: the project's active key (its first one is made on first use). */
export async function activeSigningKey(
  svc: Services,
  tenantId: string,
  projectId: string,
): Promise<{ kid: string; privateKey: CryptoKey }> {
  const listed = await listSigningKeys(svc, tenantId, projectId);
  let active = listed.find((e) => e.value.status === "active")?.value;
  if (!active) {
    try {
      active = await rotateSigningKey(svc, SYSTEM_ACTOR, tenantId, projectId);
    } catch (err) {
      // Another request made the first key meanwhile: use that one.
      const again = await listSigningKeys(svc, tenantId, projectId);
      active = again.find((e) => e.value.status === "active")?.value;
      if (!active) throw err;
    }
  }
  const jwk = JSON.parse(
    new TextDecoder().decode(
      await svc.vault.open(svc.kv, tenantId, active.private_sealed, aadOf(active)),
    ),
  );
  const privateKey = await crypto.subtle.importKey("jwk", jwk, ES256, false, ["sign"]);
  return { kid: active.kid, privateKey };
}

/** The public keys a verifier of the project's tokens needs: active and retiring, not retired. */
export async function publicJwks(svc: Services, projectId: string) {
  const tenantId = (await svc.kv.get<string>(keys.projectTenant(projectId))).value;
  if (!tenantId) throw notFound("project");
  await getProject(svc, tenantId, projectId);
  const now = svc.now();
  const listed = await listSigningKeys(svc, tenantId, projectId);
  return {
    keys: listed
      .filter((e) => signingKeyStatus(e.value, now) !== "retired")
      .map(({ value: k }) => ({ ...k.public_jwk, kid: k.kid, alg: k.alg, use: "sig" })),
  };
}

/** Writes down the retirement of keys whose grace has ended (maintenance cron). Returns how many. */
export async function retireSigningKeys(svc: Services): Promise<number> {
  const now = svc.now();
  let retired = 0;
  const due = svc.kv.list<{ tenant_id: string; project_id: string; kid: string }>({
    start: keys.retiringSigningKeys(),
    end: [...keys.retiringSigningKeys(), iso(now), "\uffff"],
  });
  for await (const pointer of due) {
    const { tenant_id, project_id, kid } = pointer.value;
    const entry = await svc.kv.get<SigningKey>(keys.signingKey(tenant_id, project_id, kid));
    const op = svc.kv.atomic().delete(pointer.key);
    if (entry.value?.status === "retiring") {
      op.check(entry).set(entry.key, {
        ...entry.value,
        status: "retired",
        retired_at: entry.value.retires_at,
      });
    }
    if (await commit(op)) retired += entry.value?.status === "retiring" ? 1 : 0;
  }
  return retired;
}

/** The tenant's signing keys, as a data key rotation re-seals them (vault/reseal.ts). */
export async function* sealedSigningKeys(
  kv: Deno.Kv,
  owner: KeyOwner,
): AsyncGenerator<SealedRecord<SigningKey>> {
  if (owner === null) return;
  for await (const entry of kv.list<SigningKey>({ prefix: keys.tenantSigningKeys(owner) })) {
    yield {
      entry,
      fields: [{ sealed: entry.value.private_sealed, aad: aadOf(entry.value) }],
      with: ([sealed]) => ({ ...entry.value, private_sealed: sealed }),
    };
  }
}
