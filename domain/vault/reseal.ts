/**
 * Re-sealing: what a data key rotation does to every value an owner's old keys sealed. Each
 * context that seals values lists its records as `SealedRecord`s (signing keys, webhook endpoint
 * secrets, tenant secrets, mail bodies); `reseal` opens what is not under the current key and
 * seals it again, in batched commits checked against the records read, so a write racing the
 * rotation is never lost (its record is simply picked up by the next pass).
 */
import { commit } from "../../kv/commit.ts";
import type { KeyOwner, SealedRecord, Services } from "../shared/services.ts";

/** Records per commit: each is a check and a set, well inside KV's limits for small records. */
const BATCH = 50;

export interface ResealOutcome {
  /** Records re-sealed (committed). */
  resealed: number;
  /** Records seen that something else changed meanwhile, left for the next pass. */
  raced: number;
  commits: number;
  /** False when `budget` ran out before the records did. */
  complete: boolean;
}

/** Re-seals under the owner's current key every value of `records` under another, up to `budget`. */
export async function reseal(
  svc: Services,
  owner: KeyOwner,
  current: string,
  records: AsyncIterable<SealedRecord>,
  budget = Infinity,
): Promise<ResealOutcome> {
  const out: ResealOutcome = { resealed: 0, raced: 0, commits: 0, complete: true };
  let batch: { record: SealedRecord; value: unknown }[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const op = svc.kv.atomic();
    for (const { record, value } of batch) {
      op.check(record.entry).set(
        record.entry.key,
        value,
        record.expireIn ? { expireIn: record.expireIn } : undefined,
      );
    }
    out.commits++;
    if (await commit(op)) {
      out.resealed += batch.length;
    } else {
      // One record changed under us: commit the others one by one.
      for (const { record, value } of batch) {
        out.commits++;
        const one = svc.kv.atomic().check(record.entry).set(
          record.entry.key,
          value,
          record.expireIn ? { expireIn: record.expireIn } : undefined,
        );
        if (await commit(one)) out.resealed++;
        else out.raced++;
      }
    }
    batch = [];
  };
  for await (const record of records) {
    if (record.fields.every((f) => (f.sealed.kid ?? "") === current)) continue;
    if (out.resealed + out.raced + batch.length >= budget) {
      out.complete = false;
      break;
    }
    const sealed = await Promise.all(record.fields.map(async (f) => {
      if (f.sealed.kid === current) return f.sealed;
      const plain = await svc.vault.open(svc.kv, owner, f.sealed, f.aad);
      const again = await svc.vault.seal(svc.kv, owner, plain, f.aad);
      // Another process rotated again since `current` was read: this pass is moot.
      if (again.kid !== current) throw new Error(`the current data key is no longer ${current}`);
      return again;
    }));
    batch.push({ record, value: record.with(sealed) });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return out;
}
