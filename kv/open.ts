/** Opens the store named by STEWARD_KV_PATH: a file (its folder is created), `:memory:`, or a KV Connect URL. */
import { dirname } from "node:path";

export async function openKv(path: string): Promise<Deno.Kv> {
  if (path !== ":memory:" && !/^https?:\/\//.test(path)) {
    await Deno.mkdir(dirname(path), { recursive: true });
  }
  return await Deno.openKv(path);
}
