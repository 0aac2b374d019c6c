/**
 * Short-lived JWTs for a verified API key (POST /v1/tokens): ES256, signed by the key's
 * project's active signing key, verifiable by any JOSE library against the project's JWKS.
 * Exchanging a key for a token counts as one verification.
 */
import { AppError } from "../shared/errors.ts";
import type { Services } from "../shared/services.ts";
import { activeSigningKey } from "./signing_keys.ts";
import type { Verifier } from "./verify.ts";

export const MAX_TTL_SECONDS = 3_600;

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
const encodeJson = (value: unknown) => b64url(new TextEncoder().encode(JSON.stringify(value)));

export interface IssuedToken {
  token: string;
  kid: string;
  expires_at: string;
}

export async function issueToken(
  svc: Services,
  verifier: Verifier,
  input: { key: string; ttl_seconds?: number },
  boundTenant: string | null,
): Promise<IssuedToken> {
  const verdict = await verifier.verify({ key: input.key }, boundTenant);
  if (!verdict.valid) {
    throw new AppError("UNPROCESSABLE", `the key is not valid (${verdict.code})`, {
      code: verdict.code,
    });
  }
  if (!verdict.project_id || !verdict.tenant_id) {
    throw new AppError(
      "UNPROCESSABLE",
      "the key belongs to no project: tokens are signed with a project's key",
    );
  }
  const { kid, privateKey } = await activeSigningKey(svc, verdict.tenant_id, verdict.project_id);
  const iat = Math.floor(svc.now() / 1000);
  const exp = iat + (input.ttl_seconds ?? MAX_TTL_SECONDS);
  const header = encodeJson({ alg: "ES256", typ: "JWT", kid });
  const payload = encodeJson({
    iss: "steward",
    sub: verdict.key_id,
    tid: verdict.tenant_id,
    pid: verdict.project_id,
    scopes: verdict.scopes,
    plan: verdict.plan?.code ?? null,
    iat,
    exp,
  });
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    privateKey,
    new TextEncoder().encode(`${header}.${payload}`),
  );
  return {
    token: `${header}.${payload}.${b64url(new Uint8Array(signature))}`,
    kid,
    expires_at: new Date(exp * 1000).toISOString(),
  };
}
