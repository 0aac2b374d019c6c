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

/** What a secret looks like in listings: its prefix and first characters, never enough to use. */
export const displayStart = (secret: string) => secret.slice(0, secret.indexOf("_") + 5);
