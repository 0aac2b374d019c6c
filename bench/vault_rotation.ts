/**
 * Rotating every data key (`POST /v1/admin/vault/rotate-all`) over 1,000 tenants with 10 secrets
 * each: the rotation job's steps (domain/platform/vault_rotation.ts), timed and with their KV
 * commits counted, against a naive rotation of the same store in the same run (a new key per
 * owner, then each value opened, sealed again and committed on its own). In process, on a
 * `:memory:` store; the job's settle waits are skipped by moving the clock, not slept.
 *
 *   deno task bench:vault                       # 1,000 tenants × 10 secrets, 3 rounds
 *   BENCH_TENANTS=200 BENCH_ROUNDS=1 deno task bench:vault
 */
import { SYSTEM_ACTOR } from "../domain/shared/services.ts";
import { createSecret, sealedSecretVersions } from "../domain/vault/secrets.ts";
import { SETTLE_MS, startRotation } from "../domain/platform/vault_rotation.ts";
import { getJob } from "../domain/jobs/jobs.ts";
import type { Tenant } from "../domain/tenancy/tenants.ts";
import { setup } from "../tests/_harness.ts";

const TENANTS = Number(Deno.env.get("BENCH_TENANTS") ?? 1_000);
const SECRETS = Number(Deno.env.get("BENCH_SECRETS") ?? 10);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);

await using h = await setup();
let commits = 0;
const atomic = h.kv.atomic.bind(h.kv);
h.kv.atomic = () => {
  const op = atomic();
  const commit = op.commit.bind(op);
  op.commit = () => {
    commits++;
    return commit();
  };
  return op;
};

const made = performance.now();
const tenants: Tenant[] = [];
for (let t = 0; t < TENANTS; t++) {
  const res = await h.call("POST", "/v1/tenants", {
    token: h.root,
    body: { name: `Tenant ${t}`, slug: `tenant-${t}` },
  });
  tenants.push(res.body.data);
  for (let s = 0; s < SECRETS; s++) {
    await createSecret(h.svc, SYSTEM_ACTOR, res.body.data, {
      name: `secret-${s}`,
      type: "generic",
      value: `value ${t}/${s} ${crypto.randomUUID()}`,
    });
  }
}
// The events those writes queued (webhook fan-out) are not the rotation's work.
while (await h.runJobs() > 0);
console.log(
  `${TENANTS} tenants × ${SECRETS} secrets made in ${
    ((performance.now() - made) / 1000).toFixed(1)
  } s`,
);

/** The job, step by step, as the worker runs it (the clock jumps over the settle waits). */
async function rotateAll() {
  const job = await startRotation(h.svc, SYSTEM_ACTOR, null);
  for (;;) {
    await h.runJobs();
    const now = (await getJob(h.svc, job.id))!.value;
    if (now.status === "succeeded") return;
    if (now.status === "dead") throw new Error(`rotation died: ${now.last_error}`);
    h.advance(SETTLE_MS);
  }
}

/** The baseline: a new key per owner, then each secret version re-sealed in a commit of its own. */
async function naive() {
  for (const tenant of tenants) {
    const { replaced } = await h.svc.vault.rotate(h.kv, tenant.id);
    for await (
      const { entry, fields: [field], with: put } of sealedSecretVersions(h.kv, tenant.id)
    ) {
      const plain = await h.svc.vault.open(h.kv, tenant.id, field.sealed, field.aad);
      const sealed = await h.svc.vault.seal(h.kv, tenant.id, plain, field.aad);
      await h.kv.atomic().check(entry).set(entry.key, put([sealed])).commit();
    }
    await h.svc.vault.dropKeys(h.kv, tenant.id, replaced);
  }
}

async function measure(run: () => Promise<void>) {
  commits = 0;
  const t = performance.now();
  await run();
  return { seconds: (performance.now() - t) / 1000, commits };
}

const values = TENANTS * SECRETS;
const rows: string[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const base = await measure(naive);
  const job = await measure(rotateAll);
  const ring = await h.svc.vault.ring(h.kv, tenants[0].id);
  if (Object.keys(ring!.keys).length !== 1) throw new Error("an old key was left");
  rows.push(
    `round ${round}: job ${job.seconds.toFixed(2)} s, ${job.commits} commits ` +
      `(${(values / job.seconds).toFixed(0)} values/s) | naive ${base.seconds.toFixed(2)} s, ` +
      `${base.commits} commits | time ÷ naive ${(job.seconds / base.seconds).toFixed(2)}, ` +
      `commits ÷ naive ${(job.commits / base.commits).toFixed(3)}`,
  );
  console.log(rows.at(-1));
}
