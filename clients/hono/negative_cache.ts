/**
 * A short, bounded memory of keys Steward refused for good (NOT_FOUND, REVOKED, EXPIRED), so a
 * flood of bad keys is answered by the gateway instead of reaching Steward. Entries are named by
 * the key's SHA-256, never the key itself; the oldest entry makes room for a new one.
 */
import type { VerifyCode } from "./types.ts";

/** The codes worth remembering: none of them turns into VALID within seconds in practice. */
export type RememberedCode = "NOT_FOUND" | "REVOKED" | "EXPIRED";

export const remembers = (code: VerifyCode): code is RememberedCode =>
  code === "NOT_FOUND" || code === "REVOKED" || code === "EXPIRED";

export async function keyDigest(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  let hex = "";
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

export class NegativeCache {
  /** Digest → [code, expiry (epoch ms)], in insertion order: the first entry is the oldest. */
  readonly #entries = new Map<string, [RememberedCode, number]>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(ttlMs: number, maxEntries = 10_000, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The remembered code for `digest`, or null (an expired entry is dropped). */
  get(digest: string): RememberedCode | null {
    const entry = this.#entries.get(digest);
    if (!entry) return null;
    if (entry[1] > this.#now()) return entry[0];
    this.#entries.delete(digest);
    return null;
  }

  remember(digest: string, code: RememberedCode): void {
    this.#entries.delete(digest);
    while (this.#entries.size >= this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(digest, [code, this.#now() + this.#ttlMs]);
  }
}
