/** Users: people who log in. Their passwords live apart from the record, hashed. */
import { keys } from "../kv/keys.ts";
import type { Table, Versioned } from "../kv/table.ts";
import { badRequest } from "./errors.ts";
import { newId } from "./ids.ts";
import { hashPassword, passwordProblem } from "./passwords.ts";
import type { PlatformRole } from "./permissions.ts";
import { createRecord } from "./records.ts";
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

export async function createUser(
  svc: Services,
  actor: Actor,
  input: NewUser,
): Promise<Versioned<User>> {
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
  return await createRecord(
    svc,
    actor,
    userTable,
    user,
    { action: "user.created", resource_type: "user", tenant_id: () => null },
    (u) => `a user with email ${u.email} already exists`,
    (op) => {
      if (hash) op.set(keys.password(user.id), hash);
    },
  );
}

export async function findUserByEmail(svc: Services, email: string): Promise<User | null> {
  const id = (await svc.kv.get<string>(keys.userEmail(normalizeEmail(email)))).value;
  return id ? (await svc.kv.get<User>(keys.user(id))).value : null;
}
