/** One user as staff look it up: the account, its live sessions and its tenants. */
import { getRecord } from "../../kv/table.ts";
import type { TenantRole } from "../access/permissions.ts";
import { listMemberships } from "../access/principal.ts";
import { listUserSessions, type Session } from "./sessions.ts";
import type { Services } from "../shared/services.ts";
import { tenantTable } from "../tenancy/tenants.ts";
import { getUserRecord, type User } from "./users.ts";
import type { Versioned } from "../../kv/table.ts";

export interface UserDetail extends User {
  sessions: Omit<Session, "token_hash" | "user_id">[];
  memberships: { tenant_id: string; tenant_slug: string; tenant_name: string; role: TenantRole }[];
}

export async function getUserDetail(svc: Services, id: string): Promise<Versioned<UserDetail>> {
  const user = await getUserRecord(svc, id);
  const [sessions, memberships] = await Promise.all([
    listUserSessions(svc, id),
    listMemberships(svc, id),
  ]);
  const tenants = await Promise.all(
    memberships.map((m) => getRecord(svc.kv, tenantTable, m.tenant_id)),
  );
  return {
    value: {
      ...user.value,
      sessions: sessions.map(({ token_hash: _, user_id: __, ...s }) => s),
      memberships: memberships.flatMap((m, i) => {
        const t = tenants[i]?.value;
        return t
          ? [{ tenant_id: t.id, tenant_slug: t.slug, tenant_name: t.name, role: m.role }]
          : [];
      }),
    },
    versionstamp: user.versionstamp,
  };
}
