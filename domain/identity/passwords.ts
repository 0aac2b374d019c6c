/**
 * Password hashing with scrypt (N=2^17, r=8, p=1 by default). The parameters are
 * stored with each hash, so raising the cost later still verifies old hashes.
 * node:crypto's async scrypt runs off the event loop.
 */
import { scrypt, timingSafeEqual } from "node:crypto";
import type { ZxcvbnFactory } from "@zxcvbn-ts/core";
import type { PasswordPolicy } from "../shared/services.ts";

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { log2N: 17 };

const KEY_LENGTH = 32;

function derive(
  password: string,
  salt: Uint8Array,
  N: number,
  r: number,
  p: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize("NFKC"),
      salt,
      KEY_LENGTH,
      { N, r, p, maxmem: 256 * N * r + 1024 * 1024 },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    )
  );
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** `scrypt$N$r$p$salt$hash`. */
export async function hashPassword(password: string, policy: PasswordPolicy): Promise<string> {
  const [N, r, p] = [2 ** policy.log2N, 8, 1];
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `scrypt$${N}$${r}$${p}$${b64(salt)}$${b64(await derive(password, salt, N, r, p))}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, N, r, p, salt, hash] = stored.split("$");
  if (scheme !== "scrypt") return false;
  const expected = unb64(hash);
  const actual = await derive(password, unb64(salt), Number(N), Number(r), Number(p));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The lowest zxcvbn score (0–4) a new password may have: 3 is "safely unguessable". */
export const MIN_PASSWORD_SCORE = 3;

/**
 * zxcvbn with its common-password, name and English word lists: about 28 MB of heap, so loaded
 * on the first password check rather than at start-up (a process that only verifies keys never
 * carries it, and a smaller heap is cheaper to collect on the hot path).
 */
let estimator: Promise<ZxcvbnFactory> | null = null;
const strength = () =>
  estimator ??= Promise.all([
    import("@zxcvbn-ts/core"),
    import("@zxcvbn-ts/language-common"),
    import("@zxcvbn-ts/language-en"),
  ]).then(([{ ZxcvbnFactory }, common, english]) =>
    new ZxcvbnFactory({
      dictionary: { ...common.dictionary, ...english.dictionary },
      graphs: common.adjacencyGraphs,
      translations: english.translations,
    })
  );

/**
 * Rules a new password must meet; returns what is wrong, or null. Beyond its length, it must be
 * hard to guess: zxcvbn scores it against common passwords, words, names, keyboard patterns,
 * repeats and dates, and against the account's own email and name.
 */
export async function passwordProblem(
  password: string,
  account: { email?: string; name?: string } = {},
  minScore = MIN_PASSWORD_SCORE,
): Promise<string | null> {
  if (password.length < 12) return "password must be at least 12 characters";
  if (password.length > 256) return "password must be at most 256 characters";
  const email = account.email?.toLowerCase();
  if (email && password.toLowerCase().includes(email)) {
    return "password must not contain the account's email";
  }
  const inputs = [email, email?.split("@")[0], account.name, ...(account.name?.split(/\s+/) ?? [])]
    .filter((v): v is string => Boolean(v));
  const result = (await strength()).check(password, inputs);
  if (result.score >= minScore) return null;
  const why = [result.feedback.warning, ...result.feedback.suggestions].filter(Boolean).join(" ");
  return `password is too easy to guess${why ? `: ${why}` : ""}`;
}
