/**
 * First start: when no credential in the store holds every permission, register the
 * configured bootstrap token or generate one. The bootstrap marker's versionstamp is checked
 * in the same commit, so two workers starting together register only one.
 */
import { keys } from "../kv/keys.ts";
import { ALL_PERMISSIONS } from "./permissions.ts";
import { createRecord } from "./records.ts";
import { displayStart, newSecret, sha256Hex } from "./secrets.ts";
import { iso, type Services, SYSTEM_ACTOR } from "./services.ts";
import { newId } from "./ids.ts";
import {
  SERVICE_TOKEN_PREFIX,
  type ServiceToken,
  tokenExpired,
  tokenTable,
  tokenView,
} from "./tokens.ts";
import type { User } from "./users.ts";

export type BootstrapResult =
  | { status: "present" }
  | { status: "registered"; token_id: string }
  | { status: "generated"; token_id: string; secret: string };

async function hasSuperAdmin(svc: Services): Promise<boolean> {
  for await (const entry of svc.kv.list<string>({ prefix: keys.superAdmins() })) {
    const id = entry.value;
    if (id.startsWith("tok_")) {
      const token = (await svc.kv.get<ServiceToken>(keys.token(id))).value;
      if (token && !token.revoked_at && !tokenExpired(token, svc.now())) return true;
    } else {
      const [user, password] = await svc.kv.getMany<[User, string]>([
        keys.user(id),
        keys.password(id),
      ]);
      if (user.value?.status === "active" && password.value) return true;
    }
  }
  return false;
}

export async function ensureSuperAdmin(
  svc: Services,
  configured?: string,
): Promise<BootstrapResult> {
  const marker = await svc.kv.get(keys.bootstrap());
  if (await hasSuperAdmin(svc)) return { status: "present" };
  const secret = configured ?? newSecret(SERVICE_TOKEN_PREFIX);
  const now = svc.now();
  const record: ServiceToken = {
    id: newId("tok", now),
    name: "bootstrap",
    start: displayStart(secret),
    permissions: [ALL_PERMISSIONS],
    tenant_id: null,
    test_tenants_only: false,
    expires_at: null,
    created_by: SYSTEM_ACTOR.id,
    created_at: iso(now),
    last_used_at: null,
    revoked_at: null,
    token_hash: sha256Hex(secret),
  };
  try {
    await createRecord(
      svc,
      SYSTEM_ACTOR,
      tokenTable,
      record,
      {
        action: "token.created",
        resource_type: "service_token",
        tenant_id: () => null,
        view: tokenView,
      },
      undefined,
      (op) =>
        op.check(marker).set(keys.bootstrap(), { token_id: record.id, at: record.created_at }),
    );
  } catch {
    // Another worker bootstrapped between our read and our commit.
    if (await hasSuperAdmin(svc)) return { status: "present" };
    throw new Error("bootstrap failed: could not register a super-admin token");
  }
  return configured
    ? { status: "registered", token_id: record.id }
    : { status: "generated", token_id: record.id, secret };
}
