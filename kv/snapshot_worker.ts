/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The worker of kv/snapshot.ts: copies a store's SQLite file with SQLite's online backup in one
 * step, that is within one read transaction, so the copy is the store as of one instant. Done
 * here, off the main thread, because the copy runs synchronously for as long as it takes.
 */
import { backup, DatabaseSync } from "node:sqlite";

self.onmessage = async (message: MessageEvent<{ from: string; to: string }>) => {
  const { from, to } = message.data;
  try {
    const source = new DatabaseSync(from, { readOnly: true });
    try {
      // rate -1: every page in a single step (a stepped copy restarts when a writer intervenes).
      await backup(source, to, { rate: -1 });
    } finally {
      source.close();
    }
    self.postMessage({ error: null });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
