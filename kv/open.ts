/** Opens the store named by STEWARD_KV_PATH: a file (its folder is created), `:memory:`, or a KV Connect URL. */
import { dirname } from "node:path";

/** Stores opened over KV Connect, whose servers allow 10 checks per commit instead of 100. */
const remote = new WeakSet<Deno.Kv>();

export async function openKv(path: string): Promise<Deno.Kv> {
  const isRemote = /^https?:\/\//.test(path);
  if (path !== ":memory:" && !isRemote) await Deno.mkdir(dirname(path), { recursive: true });
  const kv = await Deno.openKv(path);
  if (isRemote) remote.add(kv);
  return kv;
}

/** How many `check`s one atomic commit on `kv` may carry (DESIGN §5). */
export function checksPerCommit(kv: Deno.Kv): number {
  return remote.has(kv) ? 10 : 100;
}
