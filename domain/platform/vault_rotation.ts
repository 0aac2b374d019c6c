/**
 * Data key rotation as a job in steps (issue 16), over one tenant or every owner (the platform,
 * then each tenant in key order), in three passes: `switch` gives each owner a new current data
 * key; `reseal` re-seals under it every value the old keys sealed (signing keys, webhook
 * secrets, tenant secrets, mail bodies); then, once every process has re-read the rings
 * (SETTLE_MS after the last switch), `final` re-seals what a process sealed with an old key in
 * the meantime and destroys the old keys. A step does as much as its budget allows and commits
 * where it got to, so a crash costs one step; a value reads throughout, under whichever key
 * sealed it. One rotation runs at a time, so every key but the current one is the rotation's to
 * destroy.
 *
 * Master key rotation is `rewrapAll`: the data keys are re-wrapped, nothing is re-sealed.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { recordChange } from "../audit/audit.ts";
import { sealedMailBodies } from "../email/outbox.ts";
import { enqueueJob, type Job, type JobResult, soleJobLock } from "../jobs/jobs.ts";
import { VAULT_QUEUE, VAULT_ROTATE_JOB } from "../jobs/names.ts";
import { sealedSigningKeys } from "../keys/signing_keys.ts";
import { conflict } from "../shared/errors.ts";
import type { Actor, KeyOwner, SealedRecords, Services } from "../shared/services.ts";
import { SYSTEM_ACTOR } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import { iso } from "../shared/time.ts";
import { reseal } from "../vault/reseal.ts";
import { sealedSecretVersions } from "../vault/secrets.ts";
import { RING_FRESH_MS } from "../vault/vault.ts";
import { sealedEndpointSecrets } from "../webhooks/endpoints.ts";

/** Values re-sealed (or keys switched) per step: a step stays well inside the job lease. */
export const STEP_BUDGET = 1_000;
/** How long after the switch the last pass runs: every process has re-read the ring by then. */
export const SETTLE_MS = 3 * RING_FRESH_MS;

/** Where values are sealed, by context. */
const FAMILIES = (svc: Services): SealedRecords[] => [
  sealedSigningKeys,
  sealedEndpointSecrets,
  sealedSecretVersions,
  (kv, owner) => sealedMailBodies(kv, owner, svc.now()),
];

const PASSES = ["switch", "reseal", "final"] as const;

/** The job's payload: where it is. Owners are tenant ids, or "platform". */
export interface RotationPayload {
  scope: "tenant" | "all";
  /** The rotated tenant (scope "tenant"). */
  tenant_id: string | null;
  pass: typeof PASSES[number];
  /** The last owner the pass finished; null at the pass's start. */
  after: string | null;
  /** When the last switch committed: the final pass waits SETTLE_MS after it. */
  switched_at: number;
  /** Owner passes done, of three per owner. */
  done: number;
  total: number;
}

const ownerOf = (name: string): KeyOwner => name === "platform" ? null : name;

/** Starts a rotation of `tenantId`'s data key, or of every key (null); 409 while one runs. */
export async function startRotation(
  svc: Services,
  actor: Actor,
  tenantId: string | null,
): Promise<Job> {
  await svc.vault.current(svc.kv, null); // 503 when the vault is closed
  const lock = await soleJobLock(svc, keys.vaultRotation(), "a vault rotation");
  const owners = tenantId ? 1 : 1 + await countTenants(svc);
  const payload: RotationPayload = {
    scope: tenantId ? "tenant" : "all",
    tenant_id: tenantId,
    pass: "switch",
    after: null,
    switched_at: 0,
    done: 0,
    total: PASSES.length * owners,
  };
  const now = svc.now();
  const op = svc.kv.atomic().check(lock);
  const job = enqueueJob(op, now, {
    queue: VAULT_QUEUE,
    type: VAULT_ROTATE_JOB,
    payload: { ...payload },
    maxAttempts: 10,
  });
  op.set(keys.vaultRotation(), job.id);
  recordChange(op, now, actor, {
    action: "vault.rotation_started",
    resource_type: "vault",
    resource_id: job.id,
    tenant_id: tenantId,
    after: { scope: payload.scope, tenant_id: tenantId, job_id: job.id, owners },
  });
  if (!await commit(op)) throw conflict("a vault rotation was started meanwhile");
  return { ...job, progress: { done: 0, total: payload.total } };
}

async function countTenants(svc: Services): Promise<number> {
  let n = 0;
  for await (const _ of svc.kv.list({ prefix: keys.tenants() })) n++;
  return n;
}

/** The owner after `after` ("platform", then tenants in key order), or null at the end. */
async function nextOwner(svc: Services, p: RotationPayload): Promise<string | null> {
  if (p.scope === "tenant") return p.after ? null : p.tenant_id;
  if (p.after === null) return "platform";
  // Just after `after`'s own key: a key with one more part sorts after it, before the next id.
  const selector: Deno.KvListSelector = p.after === "platform"
    ? { prefix: keys.tenants() }
    : { prefix: keys.tenants(), start: [...keys.tenant(p.after), ""] };
  for await (const e of svc.kv.list<Tenant>(selector, { limit: 1 })) return e.value.id;
  return null;
}

/** Re-seals what `owner`'s old keys sealed, across every family, up to `budget` values. */
async function resealOwner(svc: Services, owner: KeyOwner, budget: number) {
  const current = await svc.vault.current(svc.kv, owner);
  let used = 0;
  for (const family of FAMILIES(svc)) {
    const out = await reseal(svc, owner, current, family(svc.kv, owner), budget - used);
    used += out.resealed + out.raced;
    if (!out.complete) return { complete: false, used };
  }
  return { complete: true, used };
}

/** One step of a rotation job: owners, pass by pass, until the step's budget is spent. */
export async function rotateJob(svc: Services, job: Job): Promise<JobResult> {
  const p = job.payload as unknown as RotationPayload;
  const step = (runAt?: number): JobResult => ({
    ok: true,
    next: { payload: { ...p }, progress: { done: p.done, total: p.total }, runAt },
  });
  if (p.pass === "final" && p.after === null && svc.now() < p.switched_at + SETTLE_MS) {
    return step(p.switched_at + SETTLE_MS);
  }
  let budget = STEP_BUDGET;
  while (budget > 0) {
    const name = await nextOwner(svc, p);
    if (name === null) {
      const pass = PASSES.indexOf(p.pass) + 1;
      if (pass === PASSES.length) return await finish(svc, job, p);
      Object.assign(p, { pass: PASSES[pass], after: null });
      if (p.pass === "final") return step(p.switched_at + SETTLE_MS);
      continue;
    }
    const owner = ownerOf(name);
    if (p.pass === "switch") {
      await svc.vault.rotate(svc.kv, owner);
      p.switched_at = svc.now();
      budget -= 1;
    } else {
      const out = await resealOwner(svc, owner, budget);
      budget -= Math.max(1, out.used);
      if (!out.complete) break;
      if (p.pass === "final") {
        const ring = await svc.vault.ring(svc.kv, owner);
        const old = Object.keys(ring?.keys ?? {}).filter((kid) => kid !== ring?.current);
        if (old.length) await svc.vault.dropKeys(svc.kv, owner, old);
      }
    }
    p.after = name;
    p.done++;
  }
  return step();
}

async function finish(svc: Services, job: Job, p: RotationPayload): Promise<JobResult> {
  const now = svc.now();
  const op = svc.kv.atomic()
    .delete(keys.vaultRotation())
    .set(keys.vaultLastRotation(), { at: iso(now), job_id: job.id, scope: p.scope });
  recordChange(op, now, SYSTEM_ACTOR, {
    action: "vault.rotation_completed",
    resource_type: "vault",
    resource_id: job.id,
    tenant_id: p.tenant_id,
    after: { scope: p.scope, job_id: job.id, owners: p.total / PASSES.length },
  });
  await commit(op);
  return { ok: true, progress: { done: p.done, total: p.total } };
}

/**
 * After a master key rotation (STEWARD_MASTER_KEY new, STEWARD_MASTER_KEY_PREVIOUS old): every
 * data key re-wrapped under the new master key. Idempotent; returns owners seen and keys re-wrapped.
 */
export async function rewrapAll(svc: Services): Promise<{ owners: number; rewrapped: number }> {
  let owners = 1;
  let rewrapped = await svc.vault.rewrap(svc.kv, null);
  for await (const e of svc.kv.list<Tenant>({ prefix: keys.tenants() })) {
    owners++;
    rewrapped += await svc.vault.rewrap(svc.kv, e.value.id);
  }
  return { owners, rewrapped };
}
