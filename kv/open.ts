/** Opens the store named by STEWARD_KV_PATH: a file (its folder is created), `:memory:`, or a KV Connect URL. */
import { dirname } from "node:path";

/** Stores opened over KV Connect, whose servers allow 10 checks per commit instead of 100. */
const remote = new WeakSet<Deno.Kv>();

export async function openKv(path: string): Promise<Deno.Kv> {
  const isRemote = /^https?:\/\//.test(path);
  if (path !== ":memory:" && !isRemote) await Deno.mkdir(dirname(path), { recursive: true });
  const kv = await Deno.openKv(path);
  if (isRemote) {
    remote.add(kv);
    dropQueueMessages(kv);
  }
  return kv;
}

/**
 * KV Connect has no queues: a commit carrying `enqueue` would fail. On such a store queue
 * messages are left out of every commit; they are only jobs' wake-ups, and the job sweep runs
 * what they would have woken.
 */
function dropQueueMessages(kv: Deno.Kv) {
  const atomic = kv.atomic.bind(kv);
  kv.atomic = () => {
    const op = atomic();
    op.enqueue = () => op;
    return op;
  };
}

/** Whether `kv` delivers queue messages (listenQueue): not over KV Connect. */
export function hasQueues(kv: Deno.Kv): boolean {
  return !remote.has(kv);
}

/** How many `check`s one atomic commit on `kv` may carry. */
export function checksPerCommit(kv: Deno.Kv): number {
  return remote.has(kv) ? 10 : 100;
}

/**
 * Bytes the store at `path` takes on disk (the SQLite file with its WAL and shared memory), or
 * null when that cannot be measured here (`:memory:`, a KV Connect server).
 */
export async function storeSize(path: string): Promise<number | null> {
  if (path === ":memory:" || /^https?:\/\//.test(path)) return null;
  const size = async (file: string) => {
    try {
      return (await Deno.stat(file)).size;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  };
  const main = await size(path);
  if (main === null) return null;
  return main + ((await size(`${path}-wal`)) ?? 0) + ((await size(`${path}-shm`)) ?? 0);
}
