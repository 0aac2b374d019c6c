/**
 * Users: people who log in. Their passwords live apart from the record, hashed. A suspension
 * ends by itself: the stored status stays `suspended` until the lifting cron writes it, but
 * every read goes through `userAsOf`, so the answer is right at `until` to the millisecond.
 */
import { keys } from "../../kv/keys.ts";
import { commit } from "../../kv/commit.ts";
import {
  type Counted,
  countsReady,
  listCounted,
  type ListSource,
  type Page,
  type PageRequest,
} from "../../kv/list.ts";
import { getRecord, readCounter, type Table, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { AppError, badRequest, conflict, forbidden, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { hashPassword, passwordProblem } from "./passwords.ts";
import { composeEmail, queueEmail } from "../email/outbox.ts";
import type { PlatformRole } from "../access/permissions.ts";
import { isSuperAdmin, type Principal } from "../access/principal.ts";
import { createRecord } from "../audit/records.ts";
import { revokeUserSessions } from "./sessions.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

export const USER_STATUSES = ["active", "blocked", "suspended", "deleted"] as const;
export type UserStatus = typeof USER_STATUSES[number];

export interface User {
  id: string;
  /** Null for a user made by username only: such a user receives no mail. */
  email: string | null;
  /** Logs in like an email; unique regardless of case (stored as given). */
  username?: string | null;
  name: string;
  status: UserStatus;
  platform_role: PlatformRole | null;
  /** Custom role ids (access/custom_roles.ts), besides the platform role. */
  roles?: string[];
  metadata: Record<string, string>;
  blocked_reason: string | null;
  suspended_until: string | null;
  suspended_reason: string | null;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
  deleted_at: string | null;
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase();
export const normalizeUsername = (username: string) => username.trim().toLowerCase();

/** 3–64 letters, digits, `.`, `_` and `-`: never an `@`, so never mistaken for an email. */
export const USERNAME_PATTERN = /^[A-Za-z0-9._-]{3,64}$/;

/** `username` trimmed, or 400 when it breaks USERNAME_PATTERN. */
export function checkUsername(username: string): string {
  const trimmed = username.trim();
  if (USERNAME_PATTERN.test(trimmed)) return trimmed;
  throw badRequest("a username is 3–64 letters, digits, '.', '_' or '-'", [
    { path: ["username"], message: "3–64 letters, digits, '.', '_' or '-'" },
  ]);
}

/**
 * The name a user's failed logins are counted under (identity/login_throttle.ts): the email,
 * else the username. Both sign-in names of one account share it.
 */
export const throttleName = (u: Pick<User, "email" | "username">) =>
  u.email ?? normalizeUsername(u.username ?? "");

/** 409 for an action that mails the user when the user has no email. */
export function requireEmail(u: Pick<User, "email">, action: string): string {
  if (u.email) return u.email;
  throw new AppError("CONFLICT", `the user has no email, so cannot ${action}`, {
    reason: "no_email",
  });
}

export const userTable: Table<User> = {
  key: keys.user,
  unique: (u) =>
    u.status === "deleted" ? [] : [
      ...(u.email ? [keys.userEmail(u.email)] : []),
      ...(u.username ? [keys.userUsername(normalizeUsername(u.username))] : []),
    ],
  counters: (u) => [
    keys.userStatusCount(u.status),
    ...(u.status === "deleted"
      ? []
      : [keys.userCount(), ...(u.roles ?? []).map((r) => keys.roleUsers(r))]),
  ],
  indexes: (u) => [
    keys.userByStatus(u.status, u.id),
    ...(u.platform_role === "super_admin" && u.status === "active" ? [keys.superAdmin(u.id)] : []),
    ...(u.status === "suspended" && u.suspended_until
      ? [keys.userSuspension(u.suspended_until, u.id)]
      : []),
  ],
};

/** The user as of `now`: a suspension past its `until` reads as lifted. */
export function userAsOf(user: User, now: number): User {
  if (user.status !== "suspended" || !user.suspended_until) return user;
  if (Date.parse(user.suspended_until) > now) return user;
  return { ...user, status: "active", suspended_until: null, suspended_reason: null };
}

/**
 * Whether `caller` may change `target`: only a super admin changes platform staff, so an admin
 * cannot lock out, or take over through a reset, an account that holds more power than its
 * own; and nobody blocks, suspends, erases, resets or re-roles themselves (`sensitive`).
 */
export function requireAuthorityOver(caller: Principal, target: User, sensitive = true) {
  if (caller.type === "user" && caller.id === target.id) {
    if (sensitive) throw forbidden("you cannot do this to your own account");
    return;
  }
  if (target.platform_role && !isSuperAdmin(caller)) {
    throw forbidden("only a super admin manages users who hold a platform role");
  }
}

export interface NewUser {
  /** An email, a username, or both. */
  email?: string | null;
  username?: string | null;
  name: string;
  password?: string;
  platform_role?: PlatformRole | null;
  metadata?: Record<string, string>;
}

/** Throws 400 when `password` breaks the policy for the account with `email` and `name`. */
export async function checkPassword(
  password: string,
  account: { email?: string | null; name?: string; minScore?: number },
  field = "password",
) {
  const problem = await passwordProblem(password, {
    email: account.email ?? undefined,
    name: account.name,
  }, account.minScore);
  if (problem) throw badRequest(problem, [{ path: [field], message: problem }]);
}

/**
 * A new user's record and password hash, checked against the password policy but not stored:
 * for callers that commit the user with other changes (accepting an invitation).
 */
export async function prepareUser(
  svc: Services,
  input: NewUser,
): Promise<{ user: User; hash: string | null }> {
  const email = input.email ? normalizeEmail(input.email) : null;
  const username = input.username ? checkUsername(input.username) : null;
  if (!email && !username) {
    throw badRequest("a user needs an email or a username", [
      { path: ["email"], message: "give an email, a username, or both" },
    ]);
  }
  if (input.password) {
    await checkPassword(input.password, {
      email,
      name: input.name,
      minScore: svc.passwords.minScore,
    });
  }
  const hash = input.password ? await hashPassword(input.password, svc.passwords) : null;
  const now = svc.now();
  const user: User = {
    id: newId("usr", now),
    email,
    ...(username ? { username } : {}),
    name: input.name,
    status: "active",
    platform_role: input.platform_role ?? null,
    metadata: input.metadata ?? {},
    blocked_reason: null,
    suspended_until: null,
    suspended_reason: null,
    created_at: iso(now),
    updated_at: iso(now),
    last_login_at: null,
    deleted_at: null,
  };
  return { user, hash };
}

/** What the audit trail and the events show of a user. */
export const userAuditView = (u: User) => ({
  id: u.id,
  email: u.email,
  username: u.username ?? null,
  name: u.name,
  status: u.status,
  platform_role: u.platform_role,
  roles: u.roles ?? [],
  metadata: u.metadata,
  blocked_reason: u.blocked_reason,
  suspended_until: u.suspended_until,
  suspended_reason: u.suspended_reason,
});

/**
 * Creates a user. `caller` (default: the store's own authority, for the CLI and tests) must be
 * a super admin to grant a platform role.
 */
export async function createUser(
  svc: Services,
  actor: Actor,
  input: NewUser,
  caller?: Principal,
): Promise<Versioned<User>> {
  if (input.platform_role && caller && !isSuperAdmin(caller)) {
    throw forbidden("only a super admin grants a platform role");
  }
  const { user, hash } = await prepareUser(svc, input);
  // Plugins hooked on the creation may veto it (422), before anything is written.
  await svc.hooks?.ask("user.creating", userAuditView(user), actor);
  return await createRecord(svc, actor, userTable, user, {
    action: "user.created",
    resource_type: "user",
    tenant_id: () => null,
    view: userAuditView,
    clash: userClash,
    extra: (op) => {
      if (hash) op.set(keys.password(user.id), hash);
    },
  });
}

/** The 409 message when a new or changed user's email or username is taken. */
export const userClash = (u: User) =>
  u.username && u.email
    ? `a user with email ${u.email} or username ${u.username} already exists`
    : u.username
    ? `a user with username ${u.username} already exists`
    : `a user with email ${u.email} already exists`;

export async function getUser(svc: Services, id: string): Promise<User | null> {
  const user = (await getRecord(svc.kv, userTable, id))?.value;
  return user ? userAsOf(user, svc.now()) : null;
}

/** The user record with its version, as of now; 404 when it does not exist. */
export async function getUserRecord(svc: Services, id: string): Promise<Versioned<User>> {
  const user = await getRecord(svc.kv, userTable, id);
  if (!user) throw notFound("user");
  return { value: userAsOf(user.value, svc.now()), versionstamp: user.versionstamp };
}

/** The key of the user an email or a username names (an `@` means an email). */
export function findUserPointer(login: string): Deno.KvKey {
  return login.includes("@")
    ? keys.userEmail(normalizeEmail(login))
    : keys.userUsername(normalizeUsername(login));
}

export async function findUserByEmail(svc: Services, email: string): Promise<User | null> {
  const id = (await svc.kv.get<string>(keys.userEmail(normalizeEmail(email)))).value;
  return id ? getUser(svc, id) : null;
}

export interface UserFilter {
  /** Case-insensitive prefix of the email, the username or the name (or of any word in it). */
  search?: string;
  status?: UserStatus;
  platform_role?: PlatformRole;
  /** Members of this tenant (id). */
  tenant_id?: string;
}

function matchesSearch(u: User, search: string): boolean {
  const q = search.toLowerCase();
  const name = u.name.toLowerCase();
  return (u.email?.startsWith(q) ?? false) || name.startsWith(q) ||
    (u.username?.toLowerCase().startsWith(q) ?? false) ||
    name.split(/\s+/).some((w) => w.startsWith(q));
}

/**
 * Users, oldest first. A search containing "@" walks the email index from that prefix; other
 * searches and filters scan (each page scans a bounded number of records and hands back a cursor).
 * `total` is given for the unfiltered list, from the user counter.
 */
export async function listUsers(
  svc: Services,
  filter: UserFilter,
  page: PageRequest,
): Promise<Page<User> & Counted> {
  const now = svc.now();
  const resolve = async (entry: Deno.KvEntry<unknown>) => {
    const id = typeof entry.value === "string"
      ? entry.value
      : (entry.value as { user_id: string }).user_id;
    const user = await getRecord(svc.kv, userTable, id);
    return user && { value: userAsOf(user.value, now), versionstamp: user.versionstamp };
  };
  const search = filter.search?.toLowerCase();
  const emailPrefix = search?.includes("@") && !filter.tenant_id ? search : null;
  const source = filter.tenant_id
    ? { selector: { prefix: keys.members(filter.tenant_id) }, resolve }
    : emailPrefix
    ? {
      selector: { start: keys.userEmail(emailPrefix), end: keys.userEmail(`${emailPrefix}\uffff`) },
      resolve,
    }
    : {
      selector: { prefix: keys.users() },
      resolve: (e: Deno.KvEntry<unknown>) =>
        Promise.resolve({ value: userAsOf(e.value as User, now), versionstamp: e.versionstamp }),
    };
  const unfiltered = Object.values(filter).every((v) => v === undefined);
  let counter = unfiltered ? () => readCounter(svc.kv, keys.userCount()) : null;
  const byStatusAlone = filter.status &&
    Object.entries(filter).every(([k, v]) => k === "status" || v === undefined);
  let listed: ListSource<User> = source;
  if (byStatusAlone && await countsReady(svc.kv)) {
    counter = () => usersInStatus(svc, filter.status!, now);
    // Active users are most of them: the record walk finds them, suspensions past their end
    // included. The rarer statuses walk their index.
    if (filter.status !== "active") {
      listed = { selector: { prefix: keys.usersByStatus(filter.status!) }, resolve };
    }
  }
  return await listCounted<User>(
    svc.kv,
    {
      ...listed,
      filter: (u) =>
        (!search || matchesSearch(u, search)) &&
        // Erased users are listed only when asked for: the count leaves them out too.
        (filter.status ? u.status === filter.status : u.status !== "deleted") &&
        (!filter.platform_role || u.platform_role === filter.platform_role),
    },
    page,
    counter,
  );
}

/**
 * How many users read as `status` now: the stored count, with the suspensions whose end has
 * passed but the lifting cron has not yet written (they read as active) moved across.
 */
async function usersInStatus(svc: Services, status: UserStatus, now: number): Promise<number> {
  const stored = readCounter(svc.kv, keys.userStatusCount(status));
  if (status !== "active" && status !== "suspended") return await stored;
  let ended = 0;
  const selector = {
    start: keys.userSuspensions(),
    end: [...keys.userSuspensions(), iso(now + 1)],
  };
  for await (const _ of svc.kv.list(selector)) ended++;
  return status === "active" ? await stored + ended : await stored - ended;
}

/**
 * Sets a new password (policy-checked, hashed) and ends every session of the user.
 * `extra` adds mutations that must commit with it (spending a reset token).
 */
export async function setPassword(
  svc: Services,
  actor: Actor,
  userId: string,
  password: string,
  opts: {
    action?: string;
    /** The request field the password came in, for the 400's path. */
    field?: string;
    extra?: (op: Deno.AtomicOperation) => void;
  } = {},
): Promise<number> {
  const user = await getRecord(svc.kv, userTable, userId);
  if (!user || user.value.status === "deleted") throw notFound("user");
  await checkPassword(password, {
    email: user.value.email,
    name: user.value.name,
    minScore: svc.passwords.minScore,
  }, opts.field);
  const hash = await hashPassword(password, svc.passwords);
  const now = svc.now();
  // The owner hears of it (when it has an email): a change they did not make is their cue to act.
  const notice = user.value.email
    ? await composeEmail(svc, {
      to: user.value.email,
      template: "password_changed",
      vars: { name: user.value.name, at: iso(now) },
    })
    : null;
  const op = svc.kv.atomic()
    .check({ key: keys.user(userId), versionstamp: user.versionstamp })
    .set(keys.password(userId), hash);
  if (notice) queueEmail(op, now, notice);
  opts.extra?.(op);
  recordChange(op, now, actor, {
    action: opts.action ?? "user.password_changed",
    resource_type: "user",
    resource_id: userId,
    tenant_id: null,
  });
  if (!(await commit(op))) {
    throw conflict("the user changed while the password was being set; try again");
  }
  return await revokeUserSessions(svc, actor, userId);
}
