/** Committing atomic operations: retries on SQLite lock contention and on stale reads. */

const LOCK_RETRIES = 8;

/** True for the transient error SQLite raises while another writer holds the lock. */
function isLocked(err: unknown): boolean {
  return err instanceof Error && /database is locked|SQLITE_BUSY/i.test(err.message);
}

/**
 * Commits `op`, retrying while the database is locked (with jittered backoff).
 * Returns null when one of the op's checks failed: the caller decides whether that is a
 * conflict to re-read and retry, a uniqueness clash, or a stale `If-Match`.
 */
export async function commit(op: Deno.AtomicOperation): Promise<Deno.KvCommitResult | null> {
  for (let attempt = 0;; attempt++) {
    try {
      const res = await op.commit();
      return res.ok ? res : null;
    } catch (err) {
      if (!isLocked(err) || attempt >= LOCK_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 5));
    }
  }
}

/** Returned by a `retrying` attempt whose checks failed because the data moved under it. */
export const CONFLICT = Symbol("conflict");

export class ContentionError extends Error {
  constructor() {
    super("the record kept changing while it was being updated; try again");
  }
}

/**
 * Runs `attempt` — read, decide, commit — until it returns something other than CONFLICT.
 * Each attempt must re-read what it checks, so a retry never acts on stale data.
 */
export async function retrying<T>(
  attempt: () => Promise<T | typeof CONFLICT>,
  tries = 10,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const result = await attempt();
    if (result !== CONFLICT) return result;
  }
  throw new ContentionError();
}
