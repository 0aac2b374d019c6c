/** High-entropy tokens shown once, and their SHA-256 fingerprints stored instead. */
import { createHash } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `length` base62 characters from the CSPRNG (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < 248 && out.length < length) out += BASE62[b % 62];
    }
  }
  return out;
}

/** A secret like `stw_…` carrying 256 bits of randomness. */
export const newSecret = (prefix: string) => `${prefix}_${randomBase62(43)}`;

/** SHA-256 as hex. node:crypto hashes synchronously: WebCrypto's async digest costs a thread hop. */
export function sha256Hex(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * SHA-256 of secrets seen recently, for hot paths that hash the same credential on every call
 * (gateways send the same token and keys again and again). Bounded by clearing when full: a
 * flood of new secrets costs re-hashing, never memory. The secrets sit in process memory only,
 * which every request passes them through anyway.
 */
export class HashMemo {
  readonly #hashes = new Map<string, string>();
  constructor(readonly maxEntries = 100_000) {}

  /** The hash of `secret`; null, without hashing, when it is new and `accept` refuses it. */
  get(secret: string): string;
  get(secret: string, accept: (secret: string) => boolean): string | null;
  get(secret: string, accept?: (secret: string) => boolean): string | null {
    let hash = this.#hashes.get(secret);
    if (hash === undefined) {
      if (accept && !accept(secret)) return null;
      hash = sha256Hex(secret);
      if (this.#hashes.size >= this.maxEntries) this.#hashes.clear();
      this.#hashes.set(secret, hash);
    }
    return hash;
  }
}

/** What a secret looks like in listings: its prefix and first characters, never enough to use. */
export const displayStart = (secret: string) => secret.slice(0, secret.indexOf("_") + 5);
