/** Users: people who log in. Their passwords live apart from the record, hashed. */
import { keys } from "../kv/keys.ts";
import { commit } from "../kv/commit.ts";
import { getRecord, type Table, type Versioned } from "../kv/table.ts";
import { recordChange } from "./audit.ts";
import { badRequest, conflict, notFound } from "./errors.ts";
import { newId } from "./ids.ts";
import { hashPassword, passwordProblem } from "./passwords.ts";
import type { PlatformRole } from "./permissions.ts";
import { createRecord } from "./records.ts";
import { revokeUserSessions } from "./sessions.ts";
import { type Actor, iso, type Services } from "./services.ts";

export type UserStatus = "active" | "blocked" | "suspended" | "deleted";

export interface User {
  id: string;
  email: string;
  name: string;
  status: UserStatus;
  platform_role: PlatformRole | null;
  metadata: Record<string, string>;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export const userTable: Table<User> = {
  key: keys.user,
  unique: (u) => u.status === "deleted" ? [] : [keys.userEmail(u.email)],
  indexes: (u) =>
    u.platform_role === "super_admin" && u.status === "active" ? [keys.superAdmin(u.id)] : [],
};

export interface NewUser {
  email: string;
  name: string;
  password?: string;
  platform_role?: PlatformRole | null;
  metadata?: Record<string, string>;
}

/**
 * A new user's record and password hash, checked against the password policy but not stored:
 * for callers that commit the user with other changes (accepting an invitation).
 */
export async function prepareUser(
  svc: Services,
  input: NewUser,
): Promise<{ user: User; hash: string | null }> {
  const email = normalizeEmail(input.email);
  const problem = input.password ? passwordProblem(input.password, email) : null;
  if (problem) throw badRequest(problem, [{ path: ["password"], message: problem }]);
  const hash = input.password ? await hashPassword(input.password, svc.passwords) : null;
  const now = svc.now();
  const user: User = {
    id: newId("usr", now),
    email,
    name: input.name,
    status: "active",
    platform_role: input.platform_role ?? null,
    metadata: input.metadata ?? {},
    created_at: iso(now),
    updated_at: iso(now),
    last_login_at: null,
  };
  return { user, hash };
}

export async function createUser(
  svc: Services,
  actor: Actor,
  input: NewUser,
): Promise<Versioned<User>> {
  const { user, hash } = await prepareUser(svc, input);
  return await createRecord(svc, actor, userTable, user, {
    action: "user.created",
    resource_type: "user",
    tenant_id: () => null,
    clash: (u) => `a user with email ${u.email} already exists`,
    extra: (op) => {
      if (hash) op.set(keys.password(user.id), hash);
    },
  });
}

export async function getUser(svc: Services, id: string): Promise<User | null> {
  return (await getRecord(svc.kv, userTable, id))?.value ?? null;
}

export async function findUserByEmail(svc: Services, email: string): Promise<User | null> {
  const id = (await svc.kv.get<string>(keys.userEmail(normalizeEmail(email)))).value;
  return id ? (await svc.kv.get<User>(keys.user(id))).value : null;
}

/** Sets a new password (policy-checked, hashed) and ends every session of the user. */
export async function setPassword(
  svc: Services,
  actor: Actor,
  userId: string,
  password: string,
): Promise<void> {
  const user = await getRecord(svc.kv, userTable, userId);
  if (!user || user.value.status === "deleted") throw notFound("user");
  const problem = passwordProblem(password, user.value.email);
  if (problem) throw badRequest(problem, [{ path: ["password"], message: problem }]);
  const hash = await hashPassword(password, svc.passwords);
  const op = svc.kv.atomic()
    .check({ key: keys.user(userId), versionstamp: user.versionstamp })
    .set(keys.password(userId), hash);
  recordChange(op, svc.now(), actor, {
    action: "user.password_changed",
    resource_type: "user",
    resource_id: userId,
    tenant_id: null,
  });
  if (!(await commit(op))) {
    throw conflict("the user changed while the password was being set; try again");
  }
  await revokeUserSessions(svc, actor, userId);
}
