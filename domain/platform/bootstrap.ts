/**
 * First start: when no credential in the store holds every permission, register the
 * configured bootstrap token or generate one. The bootstrap marker's versionstamp is checked
 * in the same commit, so two workers starting together register only one.
 */
import { keys } from "../../kv/keys.ts";
import { ALL_PERMISSIONS } from "../access/permissions.ts";
import { SYSTEM_PRINCIPAL } from "../access/principal.ts";
import { type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import { createToken, type ServiceToken, tokenExpired } from "../keys/tokens.ts";
import type { User } from "../identity/users.ts";
import { iso } from "../shared/time.ts";

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
  let created;
  try {
    created = await createToken(
      svc,
      SYSTEM_ACTOR,
      SYSTEM_PRINCIPAL,
      { name: "bootstrap", permissions: [ALL_PERMISSIONS] },
      {
        secret: configured,
        extra: (op) => op.check(marker).set(keys.bootstrap(), { at: iso(svc.now()) }),
      },
    );
  } catch {
    // Another worker bootstrapped between our read and our commit.
    if (await hasSuperAdmin(svc)) return { status: "present" };
    throw new Error("bootstrap failed: could not register a super-admin token");
  }
  const token_id = created.token.value.id;
  return configured
    ? { status: "registered", token_id }
    : { status: "generated", token_id, secret: created.secret };
}
