/**
 * Per-request plumbing: the request id, dependencies on the context, security headers, and the
 * JSON body guard (content type, UTF-8, well-formed JSON) that runs before any validator.
 */
import type { MiddlewareHandler } from "hono";
import { AppError } from "../../domain/shared/errors.ts";
import { newId } from "../../domain/shared/ids.ts";
import type { AppDeps, AppEnv } from "../context.ts";

export const INCOMING_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * OWASP's headers for a JSON API, set before the handler runs so Hono folds them into the
 * response it builds. Each header costs throughput in Deno's HTTP path (measured in
 * bench/RESULTS.md), so only those that protect a JSON response are here: the CSP's
 * frame-ancestors supersedes X-Frame-Options, and HSTS belongs to the TLS terminator (browsers
 * ignore it over plain HTTP). A route may override CSP and caching (the docs page does).
 */
export const RESPONSE_HEADERS: [string, string][] = [
  ["Cache-Control", "no-store"],
  ["X-Content-Type-Options", "nosniff"],
  ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
];

export function requestContext(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = c.req.header("X-Request-Id");
    const id = incoming && INCOMING_ID.test(incoming) ? incoming : newId("req");
    c.set("requestId", id);
    c.set("deps", deps);
    c.set("svc", deps.svc);
    c.header("X-Request-Id", id);
    for (const [name, value] of RESPONSE_HEADERS) c.header(name, value);
    await next();
  };
}

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Bodies must be JSON in UTF-8. Reading the bytes here caches them on the request, so the
 * validator parses the same bytes afterwards.
 */
export const jsonBodyGuard: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.method === "OPTIONS") {
    return await next();
  }
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length === 0) return await next();
  if (!JSON_TYPE.test(c.req.header("Content-Type") ?? "")) {
    throw new AppError(
      "UNSUPPORTED_MEDIA_TYPE",
      "send the body as JSON with Content-Type: application/json",
    );
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new AppError("BAD_REQUEST", "the body is not valid UTF-8");
  }
  try {
    JSON.parse(text);
  } catch (err) {
    throw new AppError("BAD_REQUEST", `the body is not valid JSON: ${(err as Error).message}`);
  }
  await next();
};
