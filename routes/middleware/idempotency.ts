/**
 * `Idempotency-Key` on POST (Stripe's rules): the first response is stored for 24 h per caller
 * and key; the same key with the same body replays it, with a different body is 422, and while
 * the first request still runs, 409. Responses that changed nothing (validation, auth, 5xx) are
 * not stored, so the client can fix the request and retry with the same key.
 *
 * Some first responses hold a secret shown once (a session or service token). So the store
 * never sees the key or the response in clear: the slot is named by the key's SHA-256, and the
 * response is sealed with AES-256-GCM under a key derived from the Idempotency-Key itself.
 */
import type { MiddlewareHandler } from "hono";
import { AppError } from "../../domain/errors.ts";
import { sha256Hex } from "../../domain/secrets.ts";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import type { AppEnv } from "../context.ts";

const TTL_MS = 24 * 60 * 60 * 1000;
/** A crashed first attempt stops blocking its key after this long. */
const IN_FLIGHT_MS = 60_000;
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;
const NOT_STORED = new Set([400, 401, 403, 413, 415, 429]);
const REPLAYED_HEADERS = ["Content-Type", "ETag", "Location"];
/** KV values hold at most 64 KiB; a larger response is not stored (the key is released). */
const MAX_STORED_BYTES = 60 * 1024;

type Stored =
  | { state: "running"; fingerprint: string; started_at: number }
  | { state: "done"; fingerprint: string; sealed: Uint8Array };

interface Replay {
  status: number;
  headers: [string, string][];
  body: string;
}

function sealingKey(scope: string, idempotencyKey: string): Promise<CryptoKey> {
  const material = new TextEncoder().encode(`steward idempotency\n${scope}\n${idempotencyKey}`);
  return crypto.subtle.digest("SHA-256", material)
    .then((raw) => crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
}

async function seal(key: CryptoKey, replay: Replay): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(JSON.stringify(replay));
  const cipher = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
  const sealed = new Uint8Array(iv.length + cipher.length);
  sealed.set(iv);
  sealed.set(cipher, iv.length);
  return sealed;
}

async function unseal(key: CryptoKey, sealed: Uint8Array): Promise<Replay> {
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: sealed.slice(0, 12) },
    key,
    sealed.slice(12),
  );
  return JSON.parse(new TextDecoder().decode(plain));
}

export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const idempotencyKey = c.req.header("Idempotency-Key");
  if (idempotencyKey === undefined) return await next();
  if (!KEY_FORMAT.test(idempotencyKey)) {
    throw new AppError("BAD_REQUEST", "Idempotency-Key must be 1–255 visible ASCII characters");
  }
  const { kv, now } = c.var.svc;
  const scope = c.var.principal?.id ?? "public";
  const slot = keys.idempotency(scope, sha256Hex(idempotencyKey));
  const sealer = await sealingKey(scope, idempotencyKey);
  const body = new Uint8Array(await c.req.arrayBuffer());
  const fingerprint = sha256Hex(
    `${c.req.method} ${c.req.path}\n${new TextDecoder().decode(body)}`,
  );

  const existing = await kv.get<Stored>(slot);
  const stale = existing.value?.state === "running" &&
    now() - existing.value.started_at > IN_FLIGHT_MS;
  if (existing.value && !stale) {
    if (existing.value.fingerprint !== fingerprint) {
      throw new AppError("UNPROCESSABLE", "this Idempotency-Key was used with a different request");
    }
    if (existing.value.state === "running") {
      throw new AppError("CONFLICT", "a request with this Idempotency-Key is still in progress");
    }
    const replay = await unseal(sealer, existing.value.sealed);
    const headers = new Headers(replay.headers);
    headers.set("Idempotent-Replayed", "true");
    return c.body(replay.body, replay.status as 200, Object.fromEntries(headers));
  }
  const claim = kv.atomic().check(existing)
    .set(slot, { state: "running", fingerprint, started_at: now() } satisfies Stored, {
      expireIn: TTL_MS,
    });
  if (!(await commit(claim))) {
    throw new AppError("CONFLICT", "a request with this Idempotency-Key is in progress");
  }

  await next();
  const status = c.res.status;
  const text = await c.res.clone().text();
  if (status >= 500 || NOT_STORED.has(status) || text.length > MAX_STORED_BYTES) {
    await kv.delete(slot);
    return;
  }
  const headers = REPLAYED_HEADERS.flatMap((h) => {
    const v = c.res.headers.get(h);
    return v === null ? [] : [[h, v] as [string, string]];
  });
  const sealed = await seal(sealer, { status, headers, body: text });
  await kv.set(slot, { state: "done", fingerprint, sealed } satisfies Stored, { expireIn: TTL_MS });
};
