/**
 * GDPR erasure of a user. The first commit makes the account a tombstone (email and name
 * replaced, status `deleted`, password gone, email free again) and records what is left to
 * scrub in `keys.erasure`; the rest follows: sessions, memberships, invitations to the email,
 * login counters, and the PII in the audit trail and the event outbox (events keep the user
 * id, lose the email, name, IP and user agent). A crash in between is resumed by the next
 * DELETE or by the maintenance cron, from that record, which goes last.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord, replace, type Versioned } from "../../kv/table.ts";
import { type AuditEvent, auditTable, auditUsers, recordChange } from "../audit/audit.ts";
import { conflict, notFound, staleVersion } from "../shared/errors.ts";
import type { DomainEvent } from "../audit/events.ts";
import { type Invitation, invitationTable } from "./invitations.ts";
import { removeUserMemberships } from "./memberships.ts";
import type { Principal } from "../access/principal.ts";
import { revokeUserSessions } from "./sessions.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { requireAuthorityOver, throttleName, type User, userAsOf, userTable } from "./users.ts";
import { iso } from "../shared/time.ts";
import { forgetRecipient } from "../email/outbox.ts";

/** What an erasure still has to find and scrub. */
interface Erasure {
  user_id: string;
  /** Null for a user made by username only. */
  email: string | null;
  username?: string | null;
  name: string;
  started_at: string;
}

export const ERASED = "[erased]";
const tombstoneEmail = (userId: string) => `${userId.toLowerCase()}@erased.invalid`;
/** Writes per scrub commit: far inside KV's limits, small enough to stay fast. */
const SCRUB_BATCH = 100;

/** Erases a user; an erasure that was cut short is finished instead. Returns the tombstone. */
export async function eraseUser(
  svc: Services,
  actor: Actor,
  caller: Principal,
  userId: string,
  ifMatch?: string,
): Promise<Versioned<User>> {
  const user = await getRecord(svc.kv, userTable, userId);
  if (!user) throw notFound("user");
  const pending = (await svc.kv.get<Erasure>(keys.erasure(userId))).value;
  if (user.value.status === "deleted") {
    if (!pending) throw notFound("user");
    await finishErasure(svc, actor, pending);
    return user;
  }
  if (ifMatch && ifMatch !== user.versionstamp) throw staleVersion();
  const now = svc.now();
  requireAuthorityOver(caller, userAsOf(user.value, now));
  const erasure: Erasure = {
    user_id: userId,
    email: user.value.email,
    username: user.value.username ?? null,
    name: user.value.name,
    started_at: iso(now),
  };
  const tombstone: User = {
    ...user.value,
    email: tombstoneEmail(userId),
    // Its unique index goes with the status (users.ts), so the name is free again.
    username: null,
    roles: [],
    name: ERASED,
    status: "deleted",
    platform_role: null,
    metadata: {},
    blocked_reason: null,
    suspended_until: null,
    suspended_reason: null,
    last_login_at: null,
    updated_at: iso(now),
    deleted_at: iso(now),
  };
  const op = replace(svc.kv.atomic(), userTable, user, tombstone)
    .set(keys.erasure(userId), erasure)
    .delete(keys.password(userId))
    .delete(keys.userPasswordReset(userId));
  recordChange(op, now, actor, {
    action: "user.erased",
    resource_type: "user",
    resource_id: userId,
    tenant_id: null,
    before: { id: userId, status: user.value.status },
    after: { id: userId, status: "deleted" },
  });
  const res = await commit(op);
  if (!res) {
    if (ifMatch) throw staleVersion();
    throw conflict("the user changed during the erasure; try again");
  }
  await finishErasure(svc, actor, erasure);
  return { value: tombstone, versionstamp: res.versionstamp };
}

/** Finishes every erasure cut short (maintenance cron). Returns how many. */
export async function resumeErasures(svc: Services): Promise<number> {
  let resumed = 0;
  for await (const entry of svc.kv.list<Erasure>({ prefix: keys.erasures() })) {
    await finishErasure(svc, SYSTEM_ACTOR, entry.value);
    resumed++;
  }
  return resumed;
}

async function finishErasure(svc: Services, actor: Actor, erasure: Erasure): Promise<void> {
  await revokeUserSessions(svc, actor, erasure.user_id);
  await removeUserMemberships(svc, actor, erasure.user_id);
  const invitationIds = await scrubInvitations(svc, erasure);
  await svc.kv.delete(keys.loginThrottle(throttleName(erasure)));
  await deletePrefix(svc.kv, keys.userKnownIps(erasure.user_id));
  for (
    const prefix of [keys.userAudits(erasure.user_id), ...invitationIds.map(keys.resourceAudits)]
  ) {
    await scrubAudit(svc, prefix, erasure);
  }
  await scrubOutbox(svc, erasure);
  if (erasure.email) await forgetRecipient(svc, erasure.email);
  await svc.kv.delete(keys.erasure(erasure.user_id));
}

/** Invitations to the email keep their tenant, role and status; the email becomes the tombstone's. */
async function scrubInvitations(svc: Services, erasure: Erasure): Promise<string[]> {
  const ids: string[] = [];
  if (!erasure.email) return ids;
  for await (const entry of svc.kv.list<string>({ prefix: keys.emailInvitations(erasure.email) })) {
    const table = invitationTable(entry.key.at(-2) as string);
    ids.push(entry.value);
    await retrying(async () => {
      const inv = await getRecord<Invitation>(svc.kv, table, entry.value);
      if (!inv || inv.value.email !== erasure.email) {
        await svc.kv.delete(entry.key); // a stale pointer
        return undefined;
      }
      const scrubbed = { ...inv.value, email: tombstoneEmail(erasure.user_id) };
      return (await commit(replace(svc.kv.atomic(), table, inv, scrubbed))) ? undefined : CONFLICT;
    });
  }
  return ids;
}

async function deletePrefix(kv: Deno.Kv, prefix: Deno.KvKey) {
  for await (const e of kv.list({ prefix })) await kv.delete(e.key);
}

/** Fields that hold where someone connected from: the user's, in the records scrubbed. */
const ORIGIN_FIELD = /^(ip|ip_address|user_agent)$/;
/** Free-form fields of the user's own record, which may say anything about the person. */
const PROFILE_FIELD = /^(metadata|blocked_reason|suspended_reason)$/;

/**
 * `value` (a record about the user) with the email (anywhere in a string), the name and the
 * username (as whole strings) and every IP address and user agent erased; with `profile` (a
 * change to the user's own record), its free-form fields too.
 */
export function scrubValue(
  value: unknown,
  pii: { email: string | null; name: string; username?: string | null },
  profile = false,
): unknown {
  if (typeof value === "string") {
    if (value === pii.name || (pii.username && value === pii.username)) return ERASED;
    if (!pii.email) return value;
    const at = value.toLowerCase().indexOf(pii.email);
    if (at < 0) return value;
    return scrubValue(value.slice(0, at) + ERASED + value.slice(at + pii.email.length), pii);
  }
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, pii, profile));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => {
        const erased = v !== null && (ORIGIN_FIELD.test(k) || (profile && PROFILE_FIELD.test(k)));
        return [k, erased ? ERASED : scrubValue(v, pii, profile)];
      }),
    );
  }
  return value;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Writes `updates` in commits of SCRUB_BATCH; audit events and outbox events are written once, so no checks. */
async function writeAll(kv: Deno.Kv, updates: [Deno.KvKey, unknown][]) {
  for (let i = 0; i < updates.length; i += SCRUB_BATCH) {
    const op = kv.atomic();
    for (const [key, value] of updates.slice(i, i + SCRUB_BATCH)) op.set(key, value);
    if (!(await commit(op))) throw conflict("the audit trail could not be scrubbed; try again");
  }
}

/** Scrubs the events an index points to; where the user acted, its IP and user agent go too. */
async function scrubAudit(svc: Services, prefix: Deno.KvKey, erasure: Erasure) {
  const updates: [Deno.KvKey, unknown][] = [];
  for await (const pointer of svc.kv.list<string>({ prefix })) {
    const event = (await getRecord(svc.kv, auditTable, pointer.value))?.value;
    if (!event) continue;
    const profile = event.resource_type === "user" && event.resource_id === erasure.user_id;
    const scrubbed = scrubValue(event, erasure, profile) as AuditEvent;
    // Where someone else acted on the user, where they acted from is theirs, not the user's.
    if (event.actor_id !== erasure.user_id) {
      scrubbed.ip_address = event.ip_address;
      scrubbed.user_agent = event.user_agent;
    } else {
      scrubbed.ip_address = null;
      scrubbed.user_agent = null;
    }
    if (!sameJson(event, scrubbed)) updates.push([keys.audit(event.id), scrubbed]);
  }
  await writeAll(svc.kv, updates);
  // The Postgres copy is scrubbed the same way (a failure leaves the erasure to resume).
  await svc.pg?.analytics.upsertAudit(updates.map(([, value]) => {
    const event = value as AuditEvent;
    return { event, userIds: auditUsers(event) };
  }));
}

/** Scrubs domain events still in the outbox that name the user or carry the email. */
async function scrubOutbox(svc: Services, erasure: Erasure) {
  const updates: [Deno.KvKey, unknown][] = [];
  for await (const entry of svc.kv.list({ prefix: keys.events() }, { batchSize: 500 })) {
    const text = JSON.stringify(entry.value);
    const mentioned = text.includes(erasure.user_id) ||
      (erasure.email !== null && text.toLowerCase().includes(erasure.email));
    if (!mentioned) continue;
    const event = entry.value as DomainEvent;
    const profile = event.type.startsWith("user.") && event.data.id === erasure.user_id;
    const scrubbed = scrubValue(event, erasure, profile);
    if (!sameJson(entry.value, scrubbed)) updates.push([entry.key, scrubbed]);
  }
  await writeAll(svc.kv, updates);
}
