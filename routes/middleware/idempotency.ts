/**
 * `Idempotency-Key` on POST (Stripe's rules): the same key with the same request replays the
 * first response (with `Idempotent-Replayed: true`, and the first request's X-Request-Id, which
 * its body names too), with a different request is 422, and while the first request still runs,
 * 409. Responses that changed nothing (validation, auth, 5xx) are not stored, so the client can
 * fix the request and retry with the same key; nor is an answer holding a secret in clear (a
 * reveal): its retry reveals again, and is audited again. The store, which never holds a key or a
 * response in clear, is domain/platform/idempotency.ts.
 */
import type { MiddlewareHandler } from "hono";
import { AppError } from "../../domain/shared/errors.ts";
import { claimIdempotencyKey } from "../../domain/platform/idempotency.ts";
import { sha256Hex } from "../../domain/shared/secrets.ts";
import type { AppEnv } from "../context.ts";
import { byteLength } from "../respond.ts";

const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;
const NOT_STORED = new Set([400, 401, 403, 413, 415, 429]);
const REPLAYED_HEADERS = ["Content-Type", "ETag", "Location"];
/** KV values hold at most 64 KiB; a larger response is not stored (the key is released). */
const MAX_STORED_BYTES = 60 * 1024;

export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const idempotencyKey = c.req.header("Idempotency-Key");
  if (idempotencyKey === undefined) return await next();
  if (!KEY_FORMAT.test(idempotencyKey)) {
    throw new AppError("BAD_REQUEST", "Idempotency-Key must be 1–255 visible ASCII characters");
  }
  const body = new TextDecoder().decode(await c.req.arrayBuffer());
  const fingerprint = sha256Hex(`${c.req.method} ${c.req.path}\n${body}`);
  const scope = c.get("principal")?.id ?? "public";
  const outcome = await claimIdempotencyKey(c.get("svc"), scope, idempotencyKey, fingerprint);
  if ("replay" in outcome) {
    const { status, headers, body } = outcome.replay;
    c.set("bytesOut", byteLength(body));
    return c.body(body, status as 200, {
      ...Object.fromEntries(headers),
      "Idempotent-Replayed": "true",
    });
  }

  await next();
  const status = c.res.status;
  const text = await c.res.clone().text();
  if (
    status >= 500 || NOT_STORED.has(status) || text.length > MAX_STORED_BYTES ||
    c.get("unreplayable")
  ) {
    return await outcome.claim.release();
  }
  const headers = REPLAYED_HEADERS.flatMap((h) => {
    const v = c.res.headers.get(h);
    return v === null ? [] : [[h, v] as [string, string]];
  });
  // The first answer's id, as its body says (the header is set on the way out: requestContext).
  headers.push(["X-Request-Id", c.get("requestId")]);
  await outcome.claim.complete({ status, headers, body: text });
};
