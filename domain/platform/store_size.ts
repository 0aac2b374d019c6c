/** The size of the store on disk: infrastructure health reports it, an alert rule watches it. */

export interface StoreSize {
  file_bytes: number;
  wal_bytes: number;
  total_bytes: number;
}

/** The size of the store's file and its write-ahead log; null for a store in memory or remote. */
export async function storeSize(path: string): Promise<StoreSize | null> {
  if (path === ":memory:" || /^https?:\/\//.test(path)) return null;
  const size = (p: string) => Deno.stat(p).then((s) => s.size, () => 0);
  const [file, wal] = await Promise.all([size(path), size(`${path}-wal`)]);
  return { file_bytes: file, wal_bytes: wal, total_bytes: file + wal };
}
