/**
 * Seven days before an API key expires, the owners of its tenant are told by mail, once per key
 * and expiry (a marker records it). An hourly cron walks the expiry index over the coming week.
 */
import { getBatched } from "../../kv/batch.ts";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord } from "../../kv/table.ts";
import { composeEmail, queueEmail } from "../email/outbox.ts";
import { ownerEmails } from "../identity/memberships.ts";
import { apiKeyTable, live } from "../keys/api_keys.ts";
import { tenantTable } from "../tenancy/tenants.ts";
import type { Services } from "../shared/services.ts";
import { DAY_MS, iso } from "../shared/time.ts";

export const NOTICE_AHEAD_MS = 7 * DAY_MS;

/** Mails the owners of every key expiring within a week and not yet announced; returns how many. */
export async function noticeExpiringKeys(svc: Services): Promise<number> {
  const now = svc.now();
  let noticed = 0;
  const due = svc.kv.list<string>({
    start: [...keys.apiKeyExpiries(), iso(now)],
    end: [...keys.apiKeyExpiries(), iso(now + NOTICE_AHEAD_MS), "\uffff"],
  });
  for await (const entry of due) {
    const [expiresAt, tenantId] = entry.key.slice(-3, -1) as string[];
    const marker = keys.apiKeyExpiryNotice(entry.value, expiresAt);
    if ((await getBatched(svc.kv, marker)).versionstamp !== null) continue;
    const key = await getRecord(svc.kv, apiKeyTable(tenantId), entry.value);
    const tenant = await getRecord(svc.kv, tenantTable, tenantId);
    if (!key || !live(key.value) || key.value.expires_at !== expiresAt || !tenant) continue;
    const mails = await Promise.all(
      (await ownerEmails(svc, tenantId)).map((to) =>
        composeEmail(svc, {
          to,
          template: "api_key_expiring",
          tenant_id: tenantId,
          vars: {
            tenant: tenant.value.name,
            key_name: key.value.name,
            key_start: key.value.start,
            expires_at: expiresAt,
          },
        })
      ),
    );
    // The marker commits with the mail: each owner hears once, even across processes.
    const op = svc.kv.atomic().check({ key: marker, versionstamp: null })
      .set(marker, { at: iso(now) }, { expireIn: NOTICE_AHEAD_MS + DAY_MS });
    for (const mail of mails) queueEmail(op, now, mail);
    if (await commit(op)) noticed++;
  }
  return noticed;
}
