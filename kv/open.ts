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

/** How many `check`s one atomic commit on `kv` may carry (DESIGN §5). */
export function checksPerCommit(kv: Deno.Kv): number {
  return remote.has(kv) ? 10 : 100;
}
