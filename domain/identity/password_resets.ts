/**
 * Password resets: staff ask for one, the user spends it. The token is valid for an hour and
 * once; only its SHA-256 is stored, and it leaves Steward only in the mail to the user
 * (email/outbox.ts keeps it sealed until sent; no event or log carries it). A new request
 * replaces the user's outstanding token; spending one sets the password and ends every session
 * in one commit with marking it used, so two concurrent uses cannot both succeed.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { getRecord } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { composeEmail, queueEmail } from "../email/outbox.ts";
import { AppError, conflict, notFound } from "../shared/errors.ts";
import type { Principal } from "../access/principal.ts";
import { newSecret, sha256Hex } from "../shared/secrets.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { requireAuthorityOver, requireEmail, setPassword, userAsOf, userTable } from "./users.ts";
import { iso } from "../shared/time.ts";

export const RESET_TOKEN_PREFIX = "str";
const VALID_MS = 60 * 60_000;
/** How long a spent or replaced token is remembered, to say why it no longer works. */
const REMEMBER_MS = 24 * 3_600_000;

interface PasswordReset {
  user_id: string;
  status: "pending" | "used" | "replaced";
  expires_at: string;
  created_at: string;
}

/** Creates a reset token for `userId` and mails it to the user; returns its deadline. */
export async function requestPasswordReset(
  svc: Services,
  actor: Actor,
  caller: Principal,
  userId: string,
): Promise<{ expires_at: string }> {
  const user = await getRecord(svc.kv, userTable, userId);
  if (!user || user.value.status === "deleted") throw notFound("user");
  requireAuthorityOver(caller, userAsOf(user.value, svc.now()));
  const to = requireEmail(user.value, "receive a password reset");
  const now = svc.now();
  const token = newSecret(RESET_TOKEN_PREFIX);
  const hash = sha256Hex(token);
  const reset: PasswordReset = {
    user_id: userId,
    status: "pending",
    expires_at: iso(now + VALID_MS),
    created_at: iso(now),
  };
  const mail = await composeEmail(svc, {
    to,
    template: "password_reset",
    vars: { name: user.value.name, token, expires_at: reset.expires_at },
  });
  const outstanding = await svc.kv.get<string>(keys.userPasswordReset(userId));
  const op = svc.kv.atomic()
    .check({ key: keys.user(userId), versionstamp: user.versionstamp })
    .check(outstanding)
    .set(keys.passwordReset(hash), reset, { expireIn: REMEMBER_MS })
    .set(keys.userPasswordReset(userId), hash, { expireIn: VALID_MS });
  if (outstanding.value) {
    const previous = await svc.kv.get<PasswordReset>(keys.passwordReset(outstanding.value));
    if (previous.value?.status === "pending") {
      op.check(previous).set(keys.passwordReset(outstanding.value), {
        ...previous.value,
        status: "replaced",
      }, { expireIn: REMEMBER_MS });
    }
  }
  // The token reaches the user by mail only (sealed until sent).
  queueEmail(op, now, mail);
  recordChange(op, now, actor, {
    action: "user.password_reset_requested",
    resource_type: "user",
    resource_id: userId,
    tenant_id: null,
    after: { id: userId, email: user.value.email, expires_at: reset.expires_at },
  });
  if (!(await commit(op))) throw conflict("the user changed meanwhile; try again");
  return { expires_at: reset.expires_at };
}

const invalidToken = () => notFound("reset token");

/** Why a stored reset cannot be spent now, or null when it can. */
function spentReason(reset: PasswordReset, now: number): AppError | null {
  if (reset.status === "used") return conflict("this reset token was already used");
  if (reset.status === "replaced") {
    return conflict("a newer reset was requested for this account; use that token");
  }
  if (Date.parse(reset.expires_at) <= now) {
    return conflict("this reset token has expired; ask for a new one");
  }
  return null;
}

/** Spends a reset token: sets the password and ends every session. Returns how many ended. */
export async function completePasswordReset(
  svc: Services,
  input: { token: string; new_password: string },
  from: Omit<Actor, "type" | "id">,
): Promise<{ user_id: string; sessions_revoked: number }> {
  const hash = sha256Hex(input.token);
  const entry = await svc.kv.get<PasswordReset>(keys.passwordReset(hash));
  if (!entry.value) throw invalidToken();
  const reset = entry.value;
  const refused = spentReason(reset, svc.now());
  if (refused) throw refused;
  const actor: Actor = { ...from, type: "user", id: reset.user_id };
  try {
    const sessions_revoked = await setPassword(svc, actor, reset.user_id, input.new_password, {
      action: "user.password_reset",
      field: "new_password",
      extra: (op) =>
        op.check(entry)
          .set(keys.passwordReset(hash), { ...reset, status: "used" }, { expireIn: REMEMBER_MS })
          .delete(keys.userPasswordReset(reset.user_id)),
    });
    return { user_id: reset.user_id, sessions_revoked };
  } catch (err) {
    if (err instanceof AppError && err.code === "NOT_FOUND") throw invalidToken();
    if (!(err instanceof AppError && err.code === "CONFLICT")) throw err;
    // Lost a race: say why, from the token's state now.
    const now = await svc.kv.get<PasswordReset>(keys.passwordReset(hash));
    throw (now.value && spentReason(now.value, svc.now())) ?? err;
  }
}
