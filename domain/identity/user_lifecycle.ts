/**
 * What platform staff change on a user: profile, platform role, and access (block, suspend).
 * Taking access away ends every session right after the change commits; the session check
 * also reads the status, so a request racing the revocation is refused too.
 */
import type { Versioned } from "../../kv/table.ts";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord, replace } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { badRequest, forbidden, notFound } from "../shared/errors.ts";
import { requireHoldsAll, roleTable } from "../access/custom_roles.ts";
import type { PlatformRole } from "../access/permissions.ts";
import { isSuperAdmin, type Principal } from "../access/principal.ts";
import { mergeMap, updateRecord } from "../audit/records.ts";
import { revokeUserSessions } from "./sessions.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import {
  checkUsername,
  requireAuthorityOver,
  type User,
  userAsOf,
  userAuditView,
  userClash,
  userTable,
} from "./users.ts";
import { iso } from "../shared/time.ts";
import { sendEmail } from "../email/outbox.ts";

/** The longest suspension: beyond a year, block the account instead. */
const MAX_SUSPENSION_MS = 366 * 86_400_000;

export interface UserPatch {
  name?: string;
  /** Merged; a null value removes the key. */
  metadata?: Record<string, string | null>;
  platform_role?: PlatformRole | null;
  /** Null removes it. */
  username?: string | null;
  /** Custom role ids: the whole new list. */
  roles?: string[];
  /** `active` lifts a block or a suspension; `blocked` blocks (suspend has its own route). */
  status?: "active" | "blocked";
}

const unchanged = (a: User, b: User) =>
  JSON.stringify(userAuditView(a)) === JSON.stringify(userAuditView(b));

/** `user` with access given back, or taken away as `status`. */
function withAccess(
  user: User,
  status: User["status"],
  fields: Partial<Pick<User, "blocked_reason" | "suspended_until" | "suspended_reason">> = {},
): User {
  return {
    ...user,
    status,
    blocked_reason: null,
    suspended_until: null,
    suspended_reason: null,
    ...fields,
  };
}

/** The audit action for a change from `current` to `next`. */
function actionFor(current: User, next: User): string {
  if (next.status === current.status) return "user.updated";
  if (next.status === "blocked") return "user.blocked";
  if (next.status === "suspended") return "user.suspended";
  return current.status === "blocked" ? "user.unblocked" : "user.unsuspended";
}

/**
 * One change to a user, as of now (an expired suspension reads as lifted), committed with its
 * audit event; sessions end afterwards when the user lost access.
 */
async function changeUser(
  svc: Services,
  actor: Actor,
  caller: Principal,
  id: string,
  ifMatch: string | undefined,
  next: (current: User) => User,
  extra?: (op: Deno.AtomicOperation) => void,
): Promise<Versioned<User>> {
  const now = svc.now();
  const seen: { before?: User } = {};
  const updated = await updateRecord(svc, actor, userTable, {
    id,
    noun: "user",
    ifMatch,
    resource_type: "user",
    tenant_id: () => null,
    view: userAuditView,
    clash: userClash,
    extra,
    // Compared with the stored record, so a suspension lifted by time is audited as such.
    action: (stored, after) => actionFor(userAsOf(stored, now), after),
    apply: (stored) => {
      if (stored.status === "deleted") throw notFound("user");
      const current = seen.before = userAsOf(stored, now);
      const after = next(current);
      if (unchanged(current, after)) return stored;
      const sensitive = after.status !== current.status ||
        after.platform_role !== current.platform_role ||
        JSON.stringify(after.roles ?? []) !== JSON.stringify(current.roles ?? []);
      requireAuthorityOver(caller, current, sensitive);
      return { ...after, updated_at: iso(now) };
    },
  });
  const after = updated.value;
  if (after.status !== "active") await revokeUserSessions(svc, actor, id);
  if (
    seen.before && seen.before.status !== after.status && after.email &&
    (after.status === "blocked" || after.status === "suspended")
  ) {
    // After the commit, not in it: a crash in between loses this notice, never the change.
    await sendEmail(svc, {
      to: after.email,
      template: "account_status",
      vars: {
        name: after.name,
        status: after.status,
        until: after.suspended_until,
        reason: after.status === "blocked" ? after.blocked_reason : after.suspended_reason,
      },
    });
  }
  return updated;
}

export async function updateUser(
  svc: Services,
  actor: Actor,
  caller: Principal,
  id: string,
  patch: UserPatch,
  ifMatch?: string,
): Promise<Versioned<User>> {
  if (patch.platform_role !== undefined && !isSuperAdmin(caller)) {
    throw forbidden("only a super admin grants or changes a platform role");
  }
  const username = patch.username ? checkUsername(patch.username) : patch.username;
  const roles = patch.roles && await rolesToGrant(svc, caller, id, patch.roles);
  return await changeUser(svc, actor, caller, id, ifMatch, (u) => {
    if (username === null && !u.email) {
      throw badRequest("a user without an email keeps its username", [
        { path: ["username"], message: "the user has no email" },
      ]);
    }
    const next: User = {
      ...u,
      ...(username !== undefined ? { username } : {}),
      ...(roles ? { roles: roles.ids } : {}),
      name: patch.name ?? u.name,
      metadata: patch.metadata ? mergeMap(u.metadata, patch.metadata) : u.metadata,
      platform_role: patch.platform_role !== undefined ? patch.platform_role : u.platform_role,
    };
    return patch.status && patch.status !== u.status ? withAccess(next, patch.status) : next;
  }, roles?.check);
}

/**
 * The roles a user will hold, read from the store: every role must exist (400) and the caller
 * must hold every permission of each role it adds or takes away (403). `check` makes the
 * commit fail if any of them changed or was deleted since.
 */
async function rolesToGrant(
  svc: Services,
  caller: Principal,
  userId: string,
  ids: string[],
): Promise<{ ids: string[]; check: (op: Deno.AtomicOperation) => void }> {
  const wanted = [...new Set(ids)].sort();
  const current = (await getRecord(svc.kv, userTable, userId))?.value.roles ?? [];
  const moved = [
    ...wanted.filter((r) => !current.includes(r)),
    ...current.filter((r) => !wanted.includes(r)),
  ];
  const records = await Promise.all(moved.map((r) => getRecord(svc.kv, roleTable, r)));
  const missing = moved.filter((r, i) => !records[i] && wanted.includes(r));
  if (missing.length) {
    throw badRequest(`no such roles: ${missing.join(", ")}`, [
      { path: ["roles"], message: `not found: ${missing.join(", ")}` },
    ]);
  }
  for (const role of records) {
    if (role) requireHoldsAll(caller, role.value.permissions, `role ${role.value.name}`);
  }
  return {
    ids: wanted,
    check: (op) => {
      records.forEach((r, i) => {
        if (wanted.includes(moved[i])) {
          op.check({ key: roleTable.key(moved[i]), versionstamp: r!.versionstamp });
        }
      });
    },
  };
}

/** Blocks (every session ends, logins stop) or unblocks a user. */
export function setBlocked(
  svc: Services,
  actor: Actor,
  caller: Principal,
  id: string,
  input: { blocked: boolean; reason?: string | null },
  ifMatch?: string,
): Promise<Versioned<User>> {
  return changeUser(svc, actor, caller, id, ifMatch, (u) => {
    if (input.blocked) {
      if (u.status === "blocked" && u.blocked_reason === (input.reason ?? null)) return u;
      return withAccess(u, "blocked", { blocked_reason: input.reason ?? null });
    }
    return u.status === "blocked" ? withAccess(u, "active") : u;
  });
}

/**
 * Suspends a user until `until` (every session ends, logins stop; lifted by itself then), or
 * lifts a suspension now when `until` is null.
 */
export function suspendUser(
  svc: Services,
  actor: Actor,
  caller: Principal,
  id: string,
  input: { until: string | null; reason?: string | null },
  ifMatch?: string,
): Promise<Versioned<User>> {
  const now = svc.now();
  if (input.until !== null) {
    const until = Date.parse(input.until);
    if (until <= now || until - now > MAX_SUSPENSION_MS) {
      throw badRequest("until must be in the future and at most 366 days away", [
        { path: ["until"], message: "must be in the future, within 366 days" },
      ]);
    }
  }
  return changeUser(svc, actor, caller, id, ifMatch, (u) => {
    if (input.until === null) return u.status === "suspended" ? withAccess(u, "active") : u;
    if (u.status === "blocked") {
      throw badRequest("the user is blocked; unblock it first", [
        { path: ["until"], message: "user is blocked" },
      ]);
    }
    return withAccess(u, "suspended", {
      suspended_until: iso(Date.parse(input.until)),
      suspended_reason: input.reason ?? null,
    });
  });
}

/**
 * Writes the end of every suspension whose `until` has passed (maintenance cron), audited as
 * the system. Reads already treat them as lifted; this makes the stored status agree and
 * frees the index. Returns how many it lifted.
 */
export async function liftSuspensions(svc: Services): Promise<number> {
  const now = svc.now();
  let lifted = 0;
  const due = svc.kv.list<string>({
    start: keys.userSuspensions(),
    end: [...keys.userSuspensions(), iso(now), "\uffff"],
  });
  for await (const entry of due) {
    const user = await getRecord(svc.kv, userTable, entry.value);
    if (!user || user.value.status !== "suspended") {
      await svc.kv.delete(entry.key); // a stale pointer
      continue;
    }
    const next = { ...withAccess(user.value, "active"), updated_at: iso(now) };
    const op = replace(svc.kv.atomic(), userTable, user, next);
    recordChange(op, now, SYSTEM_ACTOR, {
      action: "user.suspension_lifted",
      resource_type: "user",
      resource_id: next.id,
      tenant_id: null,
      before: userAuditView(user.value),
      after: userAuditView(next),
    });
    // A concurrent change to the user wins; the next run sees its outcome.
    if (await commit(op)) lifted++;
  }
  return lifted;
}
