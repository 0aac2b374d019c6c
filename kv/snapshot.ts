/**
 * A point-in-time copy of a store kept in a local file. Deno KV keeps such a store in SQLite
 * (WAL mode); SQLite's online backup, run in one step, copies the database within one read
 * transaction, so the copy holds every commit made before that instant and none after, while
 * writers carry on. The copy is opened as a store of its own and read through the KV API.
 * `:memory:` and KV Connect stores have no file to copy: `canSnapshot` says so.
 */

/** Whether `path` (STEWARD_KV_PATH) names a store in a local file. */
export const canSnapshot = (path: string) => path !== ":memory:" && !/^https?:\/\//.test(path);

export interface Snapshot extends AsyncDisposable {
  /** The copy, opened: read it, never write it. */
  kv: Deno.Kv;
}

/** Copies the store at `store` to `into` (a new file) and opens it; disposing deletes it. */
export async function openSnapshot(store: string, into: string): Promise<Snapshot> {
  const remove = async () => {
    for (const file of [into, `${into}-wal`, `${into}-shm`]) {
      await Deno.remove(file).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  };
  try {
    await copyInWorker(store, into);
    const kv = await Deno.openKv(into);
    return {
      kv,
      async [Symbol.asyncDispose]() {
        kv.close();
        await remove();
      },
    };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** Runs the copy in a worker: it blocks its thread for as long as it takes (the whole file). */
async function copyInWorker(from: string, to: string): Promise<void> {
  const worker = new Worker(new URL("./snapshot_worker.ts", import.meta.url).href, {
    type: "module",
  });
  try {
    const answer = await new Promise<{ error: string | null }>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`the store could not be copied: ${e.message}`));
      };
      worker.postMessage({ from, to });
    });
    if (answer.error) throw new Error(`the store could not be copied: ${answer.error}`);
  } finally {
    worker.terminate();
  }
}
