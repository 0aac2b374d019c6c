/**
 * Prefixed ULIDs (`ten_01J…`): sortable by creation time, so KV ranges over ids are time ranges.
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export type IdPrefix =
  | "ten"
  | "mrr"
  | "dky"
  | "eml"
  | "usr"
  | "prj"
  | "key"
  | "pln"
  | "inv"
  | "ses"
  | "tok"
  | "whk"
  | "msg"
  | "att"
  | "job"
  | "evt"
  | "aud"
  | "sec"
  | "sig"
  | "req"
  | "log"
  | "usg"
  | "bkp"
  | "alr"
  | "plg"
  | "ipb"
  | "rol";

/**
 * The last random part issued for each recent millisecond. Kept per millisecond (not just for
 * the latest one) so ids for one instant stay monotonic even when calls for other instants
 * interleave: concurrent requests, or wall-clock request ids between ids on an injected clock.
 */
const lastRandom = new Map<number, Uint8Array>();
export const REMEMBERED_MS = 1024;

/** Instants whose last random part is held (for the bound's test). */
export const rememberedInstants = (): number => lastRandom.size;

/** The last instant encoded, and its encoding: ids come many to a millisecond. */
let lastTime = { ms: -1, text: "" };

function encodeTime(ms: number): string {
  if (ms === lastTime.ms) return lastTime.text;
  const text = encodeTimeOnce(ms);
  lastTime = { ms, text };
  return text;
}

function encodeTimeOnce(ms: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

/** The 10-character time part of a ULID for `ms`: the lower bound of ids made at that instant. */
export const timePrefix = (ms: number) => encodeTime(Math.max(0, Math.floor(ms)));

/** 80 random bits as 16 base32 characters, most significant first (no BigInt: hot path). */
function encodeRandom(bytes: Uint8Array): string {
  let out = "";
  for (let bit = 0; bit < 80; bit += 5) {
    const i = bit >> 3;
    const pair = (bytes[i] << 8) | (bytes[i + 1] ?? 0);
    out += ALPHABET[(pair >> (11 - (bit & 7))) & 31];
  }
  return out;
}

/** A ULID; ids made in the same millisecond increase monotonically. */
export function ulid(ms = Date.now()): string {
  let bytes = lastRandom.get(ms);
  if (bytes) {
    // Add one, carrying into the byte before while a byte wraps to 0.
    for (let i = 9; i >= 0; i--) {
      bytes[i] = (bytes[i] + 1) & 0xff;
      if (bytes[i] !== 0) break;
    }
  } else {
    bytes = crypto.getRandomValues(new Uint8Array(10));
    bytes[0] &= 0x7f; // room to increment without overflowing 80 bits
    lastRandom.set(ms, bytes);
    if (lastRandom.size > REMEMBERED_MS) lastRandom.delete(lastRandom.keys().next().value!);
  }
  return encodeTime(ms) + encodeRandom(bytes);
}

export const newId = (prefix: IdPrefix, ms?: number) => `${prefix}_${ulid(ms)}`;

/** The creation time encoded in an id, or null when it is not one of ours. */
export function idTime(id: string): number | null {
  const m = /^[a-z]{3}_([0-9A-HJKMNP-TV-Z]{26})$/.exec(id);
  if (!m) return null;
  let ms = 0;
  for (const ch of m[1].slice(0, 10)) ms = ms * 32 + ALPHABET.indexOf(ch);
  return ms;
}
