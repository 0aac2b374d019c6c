/**
 * `Idempotency-Key` on POST (Stripe's rules): the first response is stored for 24 h per caller
 * and key; the same key with the same body replays it, with a different body is 422, and while
 * the first request still runs, 409. Responses that changed nothing (validation, auth, 5xx) are
 * not stored, so the client can fix the request and retry with the same key.
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
const MAX_STORED_BODY = 60 * 1024;

type Stored =
  | { state: "running"; fingerprint: string; started_at: number }
  | {
    state: "done";
    fingerprint: string;
    status: number;
    headers: [string, string][];
    body: string;
  };

export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = c.req.header("Idempotency-Key");
  if (key === undefined) return await next();
  if (!KEY_FORMAT.test(key)) {
    throw new AppError("BAD_REQUEST", "Idempotency-Key must be 1–255 visible ASCII characters");
  }
  const { kv, now } = c.var.svc;
  const slot = keys.idempotency(c.var.principal?.id ?? "public", key);
  const body = new Uint8Array(await c.req.arrayBuffer());
  const fingerprint = await sha256Hex(
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
    const replay = new Headers(existing.value.headers);
    replay.set("Idempotent-Replayed", "true");
    return c.body(existing.value.body, existing.value.status as 200, Object.fromEntries(replay));
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
  if (status >= 500 || NOT_STORED.has(status) || text.length > MAX_STORED_BODY) {
    await kv.delete(slot);
    return;
  }
  const headers = REPLAYED_HEADERS.flatMap((h) => {
    const v = c.res.headers.get(h);
    return v === null ? [] : [[h, v] as [string, string]];
  });
  const done: Stored = { state: "done", fingerprint, status, headers, body: text };
  await kv.set(slot, done, { expireIn: TTL_MS });
};
