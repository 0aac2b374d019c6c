/**
 * Logins and sessions. A session token is shown once; only its SHA-256 is stored. Sessions end
 * after an idle period and at an absolute deadline, both stored and checked on every read.
 * Ten failed logins for an email lock it for 15 minutes, whether or not the email exists, so
 * the answers never tell an attacker which emails have accounts. Attempts are counted before
 * the password is checked, so a burst of parallel guesses gets no more checks than a sequence.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { resolveImmutablePointer } from "../../kv/pointers.ts";
import {
  getByPointer,
  getRecord,
  insert,
  remove,
  replace,
  type Table,
  type Versioned,
} from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { composeEmail, queueEmail } from "../email/outbox.ts";
import { AppError } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { hashPassword, verifyPassword } from "./passwords.ts";
import {
  admitAccount,
  admitAddress,
  hasKnownAddresses,
  isKnownAddress,
  loginSucceeded,
  noteAddressFailure,
} from "./login_throttle.ts";
import { type Principal, userPrincipal } from "../access/principal.ts";
import { newSecret, sha256Hex } from "../shared/secrets.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { findUserPointer, throttleName, type User, userAsOf, userTable } from "./users.ts";
import { customGrant } from "../access/custom_roles.ts";
import { iso } from "../shared/time.ts";

export const SESSION_TOKEN_PREFIX = "sts";

export interface Session {
  id: string;
  user_id: string;
  token_hash: string;
  ip: string | null;
  user_agent: string | null;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
}

export const sessionTable: Table<Session> = {
  key: keys.session,
  indexes: (s) => [keys.sessionHash(s.token_hash), keys.userSession(s.user_id, s.id)],
};

/** last_seen_at is written at most this often: not a KV write per request. */
const TOUCH_EVERY_MS = 60_000;

const invalidLogin = () => new AppError("UNAUTHORIZED", "invalid email, username or password");

let dummyHash: Promise<string> | null = null;

/** Compares against a throwaway hash when there is no account, so both answers take as long. */
function hashToCompare(svc: Services, stored: string | null): Promise<string> {
  return stored ? Promise.resolve(stored) : prepareLogins(svc);
}

/** Makes the throwaway hash at start-up, so the first login for an unknown email is not slower. */
export function prepareLogins(svc: Services): Promise<string> {
  dummyHash ??= hashPassword("not a real password", svc.passwords);
  return dummyHash;
}

export interface LoginResult {
  token: string;
  session: Session;
  user: User;
}

/**
 * Logs in by email or username. Failures are counted per account (both names of one account
 * share the count), or per name given when no account has it, so the answers say nothing of
 * who exists.
 */
export async function login(
  svc: Services,
  input: { email?: string; username?: string; password: string },
  from: Omit<Actor, "type" | "id">,
): Promise<LoginResult> {
  const pointer = findUserPointer(input.email ?? input.username ?? "");
  await admitAddress(svc, from.ip);
  const user = await getByPointer(svc.kv, userTable, pointer);
  const account = user ? throttleName(user.value) : pointer.at(-1) as string;
  const known = user ? await isKnownAddress(svc, user.value.id, from.ip) : false;
  await admitAccount(svc, account, known);
  const stored = user ? (await svc.kv.get<string>(keys.password(user.value.id))).value : null;
  const matches = await verifyPassword(input.password, await hashToCompare(svc, stored));
  const now = svc.now();
  // A blocked or suspended account answers like a wrong password: the answer confirms nothing.
  if (!user || !stored || !matches || userAsOf(user.value, now).status !== "active") {
    await noteAddressFailure(svc, from.ip);
    throw invalidLogin();
  }

  const token = newSecret(SESSION_TOKEN_PREFIX);
  const session: Session = {
    id: newId("ses", now),
    user_id: user.value.id,
    token_hash: sha256Hex(token),
    ip: from.ip,
    user_agent: from.user_agent,
    created_at: iso(now),
    last_seen_at: iso(now),
    expires_at: iso(now + svc.sessions.maxMs),
  };
  const actor: Actor = { ...from, type: "user", id: user.value.id };
  const loggedIn: User = { ...user.value, last_login_at: iso(now) };
  // From an address the account was never used from: its owner hears of it.
  const to = user.value.email;
  const notice = to && !known && from.ip && await hasKnownAddresses(svc, user.value.id)
    ? await composeEmail(svc, {
      to,
      template: "new_sign_in",
      vars: { name: user.value.name, ip: from.ip, user_agent: from.user_agent, at: iso(now) },
    })
    : null;
  const op = insert(svc.kv.atomic(), sessionTable, session);
  if (notice) queueEmail(op, now, notice);
  replace(op, userTable, user, loggedIn);
  loginSucceeded(op, now, account, user.value.id, from.ip);
  recordChange(op, now, actor, {
    action: "session.created",
    resource_type: "session",
    resource_id: session.id,
    tenant_id: null,
    after: {
      id: session.id,
      user_id: session.user_id,
      ip: session.ip,
      expires_at: session.expires_at,
    },
  });
  // A concurrent write to the user (say, a block) wins: the caller simply logs in again.
  if (!(await commit(op))) {
    throw new AppError("CONFLICT", "the account changed during login; try again");
  }
  return { token, session, user: loggedIn };
}

/** Why a session no longer counts, or null while it is live. */
function sessionEnded(svc: Services, session: Session): string | null {
  const now = svc.now();
  if (Date.parse(session.expires_at) <= now) return "expired";
  if (Date.parse(session.last_seen_at) + svc.sessions.idleMs <= now) return "idle";
  return null;
}

/** The principal behind a session token, or null when it is unknown, ended or its user cannot log in. */
export async function authenticateSession(svc: Services, token: string): Promise<Principal | null> {
  const id = await resolveImmutablePointer(svc.kv, keys.sessionHash(sha256Hex(token)));
  const session = id ? await getRecord(svc.kv, sessionTable, id) : null;
  if (!session || sessionEnded(svc, session.value)) return null;
  const now = svc.now();
  const stored = (await getRecord(svc.kv, userTable, session.value.user_id))?.value;
  const user = stored && userAsOf(stored, now);
  if (!user || user.status !== "active") return null;
  if (now - Date.parse(session.value.last_seen_at) >= TOUCH_EVERY_MS) {
    // Best effort: a lost race means another request just touched it.
    await commit(
      replace(svc.kv.atomic(), sessionTable, session, { ...session.value, last_seen_at: iso(now) }),
    );
  }
  // Custom roles come from this process's role table: no read in the warm case.
  return userPrincipal(
    user.id,
    user.platform_role,
    session.value.id,
    await customGrant(svc, user.roles),
  );
}

/** A user's live sessions, oldest first. */
export async function listUserSessions(svc: Services, userId: string): Promise<Session[]> {
  const ids: Deno.KvKey[] = [];
  for await (const e of svc.kv.list<string>({ prefix: keys.userSessions(userId) })) {
    ids.push(keys.session(e.value));
  }
  const sessions: Session[] = [];
  // getMany reads at most 10 keys at a time.
  for (let i = 0; i < ids.length; i += 10) {
    for (const e of await svc.kv.getMany<Session[]>(ids.slice(i, i + 10))) {
      if (e.value && !sessionEnded(svc, e.value)) sessions.push(e.value);
    }
  }
  return sessions;
}

/** Ends one session (logout). */
export async function endSession(svc: Services, actor: Actor, sessionId: string): Promise<void> {
  await retrying(async () => {
    const entry = await svc.kv.get<Session>(keys.session(sessionId));
    if (entry.versionstamp === null) return undefined;
    const session = entry as Versioned<Session>;
    const op = remove(svc.kv.atomic(), sessionTable, session);
    recordChange(op, svc.now(), actor, {
      action: "session.revoked",
      resource_type: "session",
      resource_id: sessionId,
      tenant_id: null,
      before: { id: sessionId, user_id: session.value.user_id },
    });
    return (await commit(op)) ? undefined : CONFLICT;
  });
}

/** Deletes sessions past their deadlines (maintenance cron). Returns how many. */
export async function pruneSessions(svc: Services): Promise<number> {
  let pruned = 0;
  for await (const entry of svc.kv.list<Session>({ prefix: keys.sessions() })) {
    if (
      sessionEnded(svc, entry.value) && await commit(remove(svc.kv.atomic(), sessionTable, entry))
    ) pruned++;
  }
  return pruned;
}

/** Sessions removed per commit: well inside KV's mutation limits (each session has 3 keys). */
const REVOKE_CHUNK = 100;

/** Ends every session of a user (password change, block, "sign out everywhere"). Returns how many. */
export async function revokeUserSessions(
  svc: Services,
  actor: Actor,
  userId: string,
): Promise<number> {
  let revoked = 0;
  for (;;) {
    const ids: string[] = [];
    for await (
      const e of svc.kv.list<string>({ prefix: keys.userSessions(userId) }, { limit: REVOKE_CHUNK })
    ) {
      ids.push(e.value);
    }
    if (ids.length === 0) return revoked;
    const sessions = await Promise.all(ids.map((id) => svc.kv.get<Session>(keys.session(id))));
    const op = svc.kv.atomic();
    ids.forEach((id, i) => {
      const s = sessions[i];
      if (s.versionstamp) remove(op, sessionTable, s as Versioned<Session>);
      else op.delete(keys.userSession(userId, id)); // dangling pointer
    });
    recordChange(op, svc.now(), actor, {
      action: "user.sessions_revoked",
      resource_type: "user",
      resource_id: userId,
      tenant_id: null,
      after: { id: userId, sessions_revoked: ids.length },
    });
    if (await commit(op)) revoked += ids.length;
  }
}
