/**
 * Invitations: an email asked to join a tenant with a role. The token is shown once to whoever
 * invites, stored as SHA-256, and mailed to the invitee (email/outbox.ts keeps it sealed until
 * sent); no event or log carries it.
 * Accepting creates the user when the email is new, adds the membership and marks the
 * invitation accepted in one commit; the invitation's version is checked in that commit, so of
 * two concurrent accepts exactly one succeeds.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import {
  getByPointer,
  getRecord,
  insert,
  replace,
  type Table,
  type Versioned,
} from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { composeEmail, queueEmail } from "../email/outbox.ts";
import { AppError, badRequest, conflict, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { canManageOwners, membershipCreated } from "./memberships.ts";
import { getMembership, insertMembership, type Membership } from "../access/membership_records.ts";
import type { TenantRole } from "../access/permissions.ts";
import type { Principal } from "../access/principal.ts";
import { updateRecord } from "../audit/records.ts";
import { newSecret, sha256Hex } from "../shared/secrets.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { type Tenant, tenantTable } from "../tenancy/tenants.ts";
import { normalizeEmail, prepareUser, type User, userTable } from "./users.ts";
import { iso } from "../shared/time.ts";

export const INVITATION_TOKEN_PREFIX = "sti";

export type InvitationStatus = "pending" | "accepted" | "revoked" | "expired";

export interface Invitation {
  id: string;
  tenant_id: string;
  email: string;
  role: TenantRole;
  /** As stored: `expired` once the expiring cron ran; reads also compute it from `expires_at`. */
  status: InvitationStatus;
  expires_at: string;
  created_by: string;
  created_at: string;
  updated_at: string;
  accepted_at: string | null;
  accepted_by: string | null;
  revoked_at: string | null;
  token_hash: string;
}

/** What the invitation hash points to. */
interface InvitationPointer {
  tenant_id: string;
  id: string;
}

export const invitationTable = (tenantId: string): Table<Invitation> => ({
  key: (id) => keys.invitation(tenantId, id),
  indexes: (i) => [
    keys.emailInvitation(i.email, i.tenant_id, i.id),
    ...(i.status === "pending" ? [keys.invitationExpiry(i.expires_at, i.tenant_id, i.id)] : []),
  ],
});

export function invitationStatus(inv: Invitation, now: number): InvitationStatus {
  return inv.status === "pending" && Date.parse(inv.expires_at) <= now ? "expired" : inv.status;
}

/** The invitation as the API shows it: its status computed at `now`, never the hash. */
export const invitationView = (now: number) => ({ token_hash: _, ...rest }: Invitation) => ({
  ...rest,
  status: invitationStatus(rest as Invitation, now),
});

const auditView = ({ token_hash: _, ...rest }: Invitation) => rest;

type TenantRef = Pick<Tenant, "id" | "is_test" | "status" | "name">;

export interface NewInvitation {
  email: string;
  role: TenantRole;
  expires_in_days?: number;
}

/** How an invitation names who sent it: a user's name, or none for a token or the system. */
async function nameOf(svc: Services, actor: Actor): Promise<string | null> {
  if (actor.type !== "user") return null;
  return (await getRecord(svc.kv, userTable, actor.id))?.value.name ?? null;
}

export async function createInvitation(
  svc: Services,
  actor: Actor,
  caller: Principal,
  tenant: TenantRef,
  input: NewInvitation,
): Promise<{ secret: string; invitation: Versioned<Invitation> }> {
  if (tenant.status === "deleted") throw conflict("the tenant is deleted");
  if (input.role === "owner" && !(await canManageOwners(svc, caller, tenant))) {
    throw new AppError("FORBIDDEN", "only the tenant's owners invite owners");
  }
  const email = normalizeEmail(input.email);
  const existing = await getByPointer(svc.kv, userTable, keys.userEmail(email));
  if (existing && await getMembership(svc, tenant.id, existing.value.id)) {
    throw conflict(`${email} is already a member of this tenant`);
  }
  const secret = newSecret(INVITATION_TOKEN_PREFIX);
  const now = svc.now();
  const days = input.expires_in_days ?? 7;
  const invitation: Invitation = {
    id: newId("inv", now),
    tenant_id: tenant.id,
    email,
    role: input.role,
    status: "pending",
    expires_at: iso(now + days * 86_400_000),
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
    accepted_at: null,
    accepted_by: null,
    revoked_at: null,
    token_hash: sha256Hex(secret),
  };
  const pointer: InvitationPointer = { tenant_id: tenant.id, id: invitation.id };
  const hashKey = keys.invitationHash(invitation.token_hash);
  // The token reaches the invitee by mail (sealed until sent), never through an event.
  const mail = await composeEmail(svc, {
    to: email,
    template: "invitation",
    tenant_id: tenant.id,
    vars: {
      tenant: tenant.name,
      role: input.role,
      inviter: await nameOf(svc, actor),
      token: secret,
      expires_at: invitation.expires_at,
    },
  });
  const op = insert(svc.kv.atomic(), invitationTable(tenant.id), invitation)
    .check({ key: hashKey, versionstamp: null })
    .set(hashKey, pointer);
  queueEmail(op, now, mail);
  recordChange(op, now, actor, {
    action: "invitation.created",
    resource_type: "invitation",
    resource_id: invitation.id,
    tenant_id: tenant.id,
    after: auditView(invitation),
  });
  const res = await commit(op);
  if (!res) throw conflict("the invitation could not be stored; try again");
  return { secret, invitation: { value: invitation, versionstamp: res.versionstamp } };
}

/** The tenant's invitations, newest first, optionally by (computed) status. */
export function listInvitations(
  svc: Services,
  tenantId: string,
  filter: { status?: InvitationStatus },
  page: PageRequest,
): Promise<Page<Invitation> & Counted> {
  const now = svc.now();
  return listCounted<Invitation>(svc.kv, {
    selector: { prefix: keys.invitations(tenantId) },
    filter: (inv) => !filter.status || invitationStatus(inv, now) === filter.status,
  }, { ...page, reverse: true });
}

/** Revokes a pending (or expired) invitation; revoking twice changes nothing; accepted is 409. */
export function revokeInvitation(
  svc: Services,
  actor: Actor,
  tenantId: string,
  id: string,
  ifMatch?: string,
): Promise<Versioned<Invitation>> {
  return updateRecord(svc, actor, invitationTable(tenantId), {
    id,
    noun: "invitation",
    ifMatch,
    action: "invitation.revoked",
    resource_type: "invitation",
    tenant_id: (i) => i.tenant_id,
    view: auditView,
    apply: (inv) => {
      if (inv.status === "revoked") return inv;
      if (inv.status === "accepted") {
        throw conflict("the invitation was already accepted; remove the member instead");
      }
      const now = iso(svc.now());
      return { ...inv, status: "revoked", revoked_at: now, updated_at: now };
    },
  });
}

export interface Acceptance {
  token: string;
  name?: string;
  password?: string;
}

export interface Accepted {
  invitation: Versioned<Invitation>;
  membership: Membership;
  user: User;
  user_created: boolean;
}

const missingForNewUser = (fields: string[]) =>
  badRequest(
    `this email has no account yet: ${fields.join(" and ")} ${
      fields.length > 1 ? "are" : "is"
    } required to create it`,
    fields.map((f) => ({ path: ["json", f], message: "required for a new account" })),
  );

/**
 * Accepts an invitation by its token: unknown is 404; accepted, revoked or expired is 409, each
 * with its own message. A new email becomes a user (name and password required); an existing
 * account only gains the membership (its name and password are left as they are).
 */
export async function acceptInvitation(
  svc: Services,
  input: Acceptance,
  from: Omit<Actor, "type" | "id">,
): Promise<Accepted> {
  const pointer = (await svc.kv.get<InvitationPointer>(keys.invitationHash(sha256Hex(input.token))))
    .value;
  let prepared: { user: User; hash: string | null } | null = null;
  return await retrying(async () => {
    const now = svc.now();
    const inv = pointer
      ? await getRecord(svc.kv, invitationTable(pointer.tenant_id), pointer.id)
      : null;
    if (!inv || inv.value.token_hash !== sha256Hex(input.token)) {
      throw notFound("invitation");
    }
    const status = invitationStatus(inv.value, now);
    if (status === "accepted") throw conflict("this invitation was already accepted");
    if (status === "revoked") throw conflict("this invitation was revoked");
    if (status === "expired") throw conflict("this invitation has expired; ask for a new one");
    const tenant = await getRecord(svc.kv, tenantTable, inv.value.tenant_id);
    if (!tenant || tenant.value.status === "deleted") throw conflict("the tenant is deleted");

    const existing = await getByPointer(svc.kv, userTable, keys.userEmail(inv.value.email));
    let user: User;
    const invKey = keys.invitation(inv.value.tenant_id, inv.value.id);
    const op = svc.kv.atomic().check({ key: invKey, versionstamp: inv.versionstamp });
    if (existing) {
      user = existing.value;
      op.check({ key: keys.user(user.id), versionstamp: existing.versionstamp });
    } else {
      const missing = (["name", "password"] as const).filter((f) => !input[f]);
      if (missing.length) throw missingForNewUser(missing);
      prepared ??= await prepareUser(svc, {
        email: inv.value.email,
        name: input.name!,
        password: input.password!,
      });
      user = prepared.user;
      insert(op, userTable, user).set(keys.password(user.id), prepared.hash!);
    }
    const actor: Actor = { ...from, type: "user", id: user.id };
    if (await getMembership(svc, tenant.value.id, user.id)) {
      throw conflict("you are already a member of this tenant");
    }
    const membership: Membership = {
      tenant_id: tenant.value.id,
      user_id: user.id,
      role: inv.value.role,
      created_by: inv.value.created_by,
      created_at: iso(now),
      updated_at: iso(now),
    };
    const accepted: Invitation = {
      ...inv.value,
      status: "accepted",
      accepted_at: iso(now),
      accepted_by: user.id,
      updated_at: iso(now),
    };
    insertMembership(op.set(invKey, accepted), membership);
    if (!existing) {
      recordChange(op, now, actor, {
        action: "user.created",
        resource_type: "user",
        resource_id: user.id,
        tenant_id: null,
        after: { ...user },
      });
    }
    membershipCreated(op, now, actor, membership);
    recordChange(op, now, actor, {
      action: "invitation.accepted",
      resource_type: "invitation",
      resource_id: accepted.id,
      tenant_id: accepted.tenant_id,
      before: auditView(inv.value),
      after: auditView(accepted),
    });
    const res = await commit(op);
    if (!res) return CONFLICT;
    return {
      invitation: { value: accepted, versionstamp: res.versionstamp },
      membership,
      user,
      user_created: !existing,
    };
  });
}

/**
 * Records the expiry of every pending invitation past its deadline (the cron): status
 * `expired`, audited as the system with `invitation.expired`. Reads already said so; this writes
 * it down and ends the pending list. Returns how many it marked.
 */
export async function expireInvitations(svc: Services): Promise<number> {
  const now = svc.now();
  let expired = 0;
  const due = svc.kv.list<string>({
    start: keys.invitationExpiries(),
    end: [...keys.invitationExpiries(), iso(now), "\uffff"],
  });
  for await (const entry of due) {
    const table = invitationTable(entry.key.at(-2) as string);
    const inv = await getRecord(svc.kv, table, entry.value);
    if (!inv || inv.value.status !== "pending" || Date.parse(inv.value.expires_at) > now) {
      await svc.kv.delete(entry.key); // a stale pointer
      continue;
    }
    const next: Invitation = { ...inv.value, status: "expired", updated_at: iso(now) };
    const op = replace(svc.kv.atomic(), table, inv, next);
    recordChange(op, now, SYSTEM_ACTOR, {
      action: "invitation.expired",
      resource_type: "invitation",
      resource_id: next.id,
      tenant_id: next.tenant_id,
      before: auditView(inv.value),
      after: auditView(next),
    });
    // A concurrent accept or revoke wins; the next run sees its outcome.
    if (await commit(op)) expired++;
  }
  return expired;
}
