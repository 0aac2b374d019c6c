/**
 * Leases: a named lock with a deadline, so one worker among many runs a cron tick or a job.
 * The deadline is stored and checked on read because `expireIn` is not prompt.
 */
import { keys } from "./keys.ts";
import { commit } from "./commit.ts";

interface Lease {
  owner: string;
  expires_at: number;
}

/** Takes the lease `name` for `owner` until `now + ttlMs`; false when someone else holds it. */
export async function acquireLease(
  kv: Deno.Kv,
  name: string,
  owner: string,
  ttlMs: number,
  now = Date.now(),
): Promise<boolean> {
  const key = keys.lease(name);
  const current = await kv.get<Lease>(key);
  if (current.value && current.value.owner !== owner && current.value.expires_at > now) {
    return false;
  }
  const op = kv.atomic()
    .check(current)
    .set(key, { owner, expires_at: now + ttlMs } satisfies Lease, { expireIn: ttlMs });
  return (await commit(op)) !== null;
}

/** Gives the lease back early, if `owner` still holds it. */
export async function releaseLease(kv: Deno.Kv, name: string, owner: string): Promise<void> {
  const key = keys.lease(name);
  const current = await kv.get<Lease>(key);
  if (current.value?.owner === owner) await commit(kv.atomic().check(current).delete(key));
}
