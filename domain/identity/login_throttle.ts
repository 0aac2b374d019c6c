/**
 * Who may have a password checked now. Both throttles act before any password is checked, and
 * answer 429 with the seconds to wait:
 *
 * - Per source address: at most IP_MAX_FAILURES failed logins in a 15-minute window, whatever
 *   the accounts (one address spraying guesses over many accounts).
 * - Per account (the email, known or not, so the answers say nothing of who exists): the first
 *   FREE_FAILURES attempts in a row are free; after that each attempt must wait a delay that
 *   doubles from one second up to 15 minutes. Attempts are counted before the check and the
 *   count is cleared by a success, so parallel guesses each take a turn.
 *
 * A hard lock would let anyone lock anyone out, super admins included, for as long as they keep
 * guessing. The delay slows guessing just as well; and an address the user has logged in from in
 * the last 90 days has its password checked whatever the delay, so the owner still gets in while
 * an attacker elsewhere keeps the account's delay at its longest.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { AppError } from "../shared/errors.ts";
import { sha256Hex } from "../shared/secrets.ts";
import type { Services } from "../shared/services.ts";

export const FREE_FAILURES = 5;
export const MAX_DELAY_MS = 15 * 60_000;
export const IP_WINDOW_MS = 15 * 60_000;
export const IP_MAX_FAILURES = 30;
export const KNOWN_IP_MS = 90 * 86_400_000;
/** How long an account's count outlives its last attempt. */
const THROTTLE_TTL_MS = 24 * 3_600_000;

interface AccountThrottle {
  /** Attempts since the last success. */
  attempts: number;
  /** Epoch ms before which the next attempt is refused (0: none). */
  next_at: number;
}

const throttled = (waitMs: number) =>
  new AppError(
    "RATE_LIMITED",
    "too many failed logins; try again later",
    undefined,
    Math.max(1, Math.ceil(waitMs / 1000)),
  );

/** The wait after the `attempts`-th attempt in a row: 0 while free, then 1 s, 2 s, 4 s … 15 min. */
export const delayAfter = (attempts: number) =>
  attempts <= FREE_FAILURES
    ? 0
    : Math.min(1000 * 2 ** (attempts - FREE_FAILURES - 1), MAX_DELAY_MS);

const ipWindow = (ip: string, now: number) =>
  keys.loginIpFailures(ip, Math.floor(now / IP_WINDOW_MS));

/** Failed logins from an address in one window. */
interface AddressFailures {
  count: number;
}

/** Refuses an address that has failed too often in this window. */
export async function admitAddress(svc: Services, ip: string | null): Promise<void> {
  if (!ip) return;
  const now = svc.now();
  const failed = (await svc.kv.get<AddressFailures>(ipWindow(ip, now))).value?.count ?? 0;
  if (failed >= IP_MAX_FAILURES) throw throttled(IP_WINDOW_MS - (now % IP_WINDOW_MS));
}

/**
 * Counts a failed login against its source address. A checked set rather than a KvU64 sum:
 * Deno KV ignores expireIn on sums, and these records must go once their window has passed.
 */
export async function noteAddressFailure(svc: Services, ip: string | null): Promise<void> {
  if (!ip) return;
  const key = ipWindow(ip, svc.now());
  await retrying(async () => {
    const entry = await svc.kv.get<AddressFailures>(key);
    const next = { count: (entry.value?.count ?? 0) + 1 };
    const op = svc.kv.atomic().check(entry).set(key, next, { expireIn: 2 * IP_WINDOW_MS });
    return (await commit(op)) ? true : CONFLICT;
  });
}

/**
 * Counts an attempt on `email`, or refuses it while the account's delay runs (unless `known`:
 * the caller's address is one the user logged in from).
 */
export async function admitAccount(svc: Services, email: string, known: boolean): Promise<void> {
  const key = keys.loginThrottle(email);
  await retrying(async () => {
    const entry = await svc.kv.get<AccountThrottle>(key);
    const now = svc.now();
    const current = entry.value ?? { attempts: 0, next_at: 0 };
    if (!known && current.next_at > now) throw throttled(current.next_at - now);
    const attempts = current.attempts + 1;
    const delay = delayAfter(attempts);
    const next: AccountThrottle = { attempts, next_at: delay ? now + delay : 0 };
    const op = svc.kv.atomic().check(entry).set(key, next, { expireIn: THROTTLE_TTL_MS });
    return (await commit(op)) ? true : CONFLICT;
  });
}

/** Adds to `op` what a successful login clears (the count) and records (the address). */
export function loginSucceeded(
  op: Deno.AtomicOperation,
  now: number,
  email: string,
  userId: string,
  ip: string | null,
): void {
  op.delete(keys.loginThrottle(email));
  if (ip) op.set(knownIpKey(userId, ip), now + KNOWN_IP_MS, { expireIn: KNOWN_IP_MS });
}

/** The address as a user's known-address key: hashed, so the store keeps no list of them. */
const knownIpKey = (userId: string, ip: string) =>
  keys.userKnownIp(userId, sha256Hex(`${userId}:${ip}`));

/** Whether `userId` logged in from anywhere in the last 90 days (a first login is not "new"). */
export async function hasKnownAddresses(svc: Services, userId: string): Promise<boolean> {
  const now = svc.now();
  for await (const e of svc.kv.list<number>({ prefix: keys.userKnownIps(userId) })) {
    if (e.value > now) return true;
  }
  return false;
}

/** Whether `userId` logged in from `ip` in the last 90 days. */
export async function isKnownAddress(
  svc: Services,
  userId: string,
  ip: string | null,
): Promise<boolean> {
  if (!ip) return false;
  // The deadline is stored too: expireIn is not prompt.
  const until = (await svc.kv.get<number>(knownIpKey(userId, ip))).value;
  return until !== null && until > svc.now();
}
