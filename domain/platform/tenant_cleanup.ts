/**
 * After a tenant is deleted, nothing may still grant access to it: its pending invitations are
 * revoked (an invitee can no longer join), the service tokens bound to it are revoked (a
 * gateway or CI token of the tenant stops working) and its secrets are deleted, every version.
 * A job enqueued in the deletion's own commit does it, one audited change at a time; each is a
 * no-op when repeated, so a job cut short by a crash is simply run again.
 */
import { keys } from "../../kv/keys.ts";
import { type Invitation, revokeInvitation } from "../identity/invitations.ts";
import type { JobHandler } from "../jobs/jobs.ts";
import { revokeTokenAsSystem, type ServiceToken } from "../keys/tokens.ts";
import { SYSTEM_ACTOR } from "../shared/services.ts";
import { deleteTenantSecrets } from "../vault/secrets.ts";

export const cleanUpDeletedTenant: JobHandler = async (svc, job) => {
  const tenantId = (job.payload as { tenant_id: string }).tenant_id;
  let invitations = 0, tokens = 0;
  for await (const e of svc.kv.list<Invitation>({ prefix: keys.invitations(tenantId) })) {
    if (e.value.status !== "pending") continue;
    await revokeInvitation(svc, SYSTEM_ACTOR, tenantId, e.value.id);
    invitations++;
  }
  // Tokens are few and have no per-tenant index: the whole family is read.
  for await (const e of svc.kv.list<ServiceToken>({ prefix: keys.tokens() })) {
    if (e.value.tenant_id !== tenantId || e.value.revoked_at) continue;
    await revokeTokenAsSystem(svc, SYSTEM_ACTOR, e.value.id);
    tokens++;
  }
  const secrets = await deleteTenantSecrets(svc, SYSTEM_ACTOR, tenantId);
  console.log(
    JSON.stringify({
      level: "info",
      msg: "tenant cleanup",
      tenantId,
      invitations,
      tokens,
      secrets,
    }),
  );
  return { ok: true };
};
