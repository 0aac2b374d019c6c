/**
 * The idempotency store: the first outcome of a request, per caller and Idempotency-Key, kept
 * 24 h (Stripe's rules; the HTTP side is routes/middleware/idempotency.ts).
 *
 * Some first responses hold a secret shown once (a session or service token). So the store
 * never sees the key or the response in clear: the slot is named by the key's SHA-256, and the
 * response is sealed with AES-256-GCM under a key derived from the Idempotency-Key itself.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { AppError } from "../shared/errors.ts";
import { sha256Hex } from "../shared/secrets.ts";
import type { Services } from "../shared/services.ts";

const TTL_MS = 24 * 60 * 60 * 1000;
/** A crashed first attempt stops blocking its key after this long. */
const IN_FLIGHT_MS = 60_000;

/** What a replay answers with. */
export interface StoredResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

type Slot =
  | { state: "running"; fingerprint: string; started_at: number }
  | { state: "done"; fingerprint: string; sealed: Uint8Array };

async function sealingKey(scope: string, idempotencyKey: string): Promise<CryptoKey> {
  const raw = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`steward idempotency\n${scope}\n${idempotencyKey}`),
  );
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

async function seal(key: CryptoKey, response: StoredResponse): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(JSON.stringify(response));
  const cipher = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
  const sealed = new Uint8Array(iv.length + cipher.length);
  sealed.set(iv);
  sealed.set(cipher, iv.length);
  return sealed;
}

async function unseal(key: CryptoKey, sealed: Uint8Array): Promise<StoredResponse> {
  const iv = sealed.slice(0, 12);
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed.slice(12));
  return JSON.parse(new TextDecoder().decode(plain));
}

export interface Claim {
  /** Stores the outcome for replay. */
  complete(response: StoredResponse): Promise<void>;
  /** Frees the key: the request changed nothing and may be retried with it. */
  release(): Promise<void>;
}

/**
 * Claims `idempotencyKey` for a request identified by `fingerprint` (method, path, body).
 * Returns the stored response to replay, or a claim to complete; throws 422 for the same key
 * with a different request and 409 while the first request still runs.
 */
export async function claimIdempotencyKey(
  svc: Services,
  scope: string,
  idempotencyKey: string,
  fingerprint: string,
): Promise<{ replay: StoredResponse } | { claim: Claim }> {
  const slot = keys.idempotency(scope, sha256Hex(idempotencyKey));
  const sealer = await sealingKey(scope, idempotencyKey);
  const existing = await svc.kv.get<Slot>(slot);
  const stale = existing.value?.state === "running" &&
    svc.now() - existing.value.started_at > IN_FLIGHT_MS;
  if (existing.value && !stale) {
    if (existing.value.fingerprint !== fingerprint) {
      throw new AppError("UNPROCESSABLE", "this Idempotency-Key was used with a different request");
    }
    if (existing.value.state === "running") {
      throw new AppError("CONFLICT", "a request with this Idempotency-Key is still in progress");
    }
    return { replay: await unseal(sealer, existing.value.sealed) };
  }
  const running: Slot = { state: "running", fingerprint, started_at: svc.now() };
  if (!(await commit(svc.kv.atomic().check(existing).set(slot, running, { expireIn: TTL_MS })))) {
    throw new AppError("CONFLICT", "a request with this Idempotency-Key is in progress");
  }
  return {
    claim: {
      complete: async (response) => {
        const done: Slot = { state: "done", fingerprint, sealed: await seal(sealer, response) };
        await svc.kv.set(slot, done, { expireIn: TTL_MS });
      },
      release: () => svc.kv.delete(slot),
    },
  };
}
