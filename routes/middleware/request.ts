/**
 * Per-request plumbing: the request context (the request id, dependencies on the context, the IP
 * guard, the request log, security headers), and the JSON body guard (content type, UTF-8,
 * well-formed JSON) that runs before any validator.
 */
import type { Context, MiddlewareHandler } from "hono";
import { AppError } from "../../domain/shared/errors.ts";
import { newId } from "../../domain/shared/ids.ts";
import type { ApiRateLimiter } from "../../domain/access/api_rate_limit.ts";
import type { AppDeps, AppEnv } from "../context.ts";
import { errorJson } from "../errors.ts";
import { byteLength } from "../respond.ts";
import { noteAnswer, refusal } from "./ip_guard.ts";
import { logRequest } from "./request_log.ts";

const INCOMING_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's X-Request-Id when it is a safe one, else a new id. */
export const requestIdFrom = (incoming: string | null | undefined) =>
  incoming && INCOMING_ID.test(incoming) ? incoming : newId("req");

/**
 * OWASP's headers for a JSON API. Each header costs throughput in Deno's HTTP path (measured in
 * bench/RESULTS.md), so only those that protect a JSON response are here: the CSP's
 * frame-ancestors supersedes X-Frame-Options, and HSTS belongs to the TLS terminator (browsers
 * ignore it over plain HTTP). A route may set its own CSP and caching (the docs page does).
 */
const RESPONSE_HEADERS: [string, string][] = [
  ["Cache-Control", "no-store"],
  ["X-Content-Type-Options", "nosniff"],
  ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
];

/**
 * Adds the request id and the headers above to a built answer's `headers`, each unless the
 * route set its own (the docs' CSP, an idempotent replay's first request id). On the answer,
 * not through c.header before the handler: then Hono built every answer from a Headers object
 * that Deno copies as a sorted list, the largest cost of a cheap route.
 */
export function addAnswerHeaders(headers: Headers, requestId: string) {
  if (!headers.has("X-Request-Id")) headers.set("X-Request-Id", requestId);
  for (const [name, value] of RESPONSE_HEADERS) if (!headers.has(name)) headers.set(name, value);
}

/**
 * The first layer of every request, around all others: the context's variables, then the IP
 * guard (a blocked address is refused before any other work, and logged), the rest of the
 * chain, the guard's note of an error answer (a refusal is not noted), the request log, and the
 * answer's headers. One layer rather than three: each layer of Hono's chain costs every request
 * an async call, more than the guard's and the log's own work (bench/RESULTS.md).
 */
export function requestContext(
  deps: AppDeps,
  rateLimiter: ApiRateLimiter | null = null,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const id = requestIdFrom(c.req.header("X-Request-Id"));
    c.set("requestId", id);
    c.set("deps", deps);
    c.set("svc", deps.svc);
    c.set("rateLimiter", rateLimiter);
    c.json = measuredJson(c);
    const refused = refusal(c, deps);
    if (refused) c.res = errorJson(c, refused);
    else {
      await next();
      noteAnswer(c, deps.ipGuard);
    }
    const logging = logRequest(c, started);
    if (logging) await logging;
    addAnswerHeaders(c.res.headers, id);
  };
}

/**
 * `c.json` that also notes the answer's size for the request log, which would otherwise have to
 * copy the body and read the copy (a copied answer is also sent as a stream, which costs more
 * than the handler's work on a cheap route). A note, not a Content-Length header: Deno writes
 * that header itself for a text body, and each header set in JS costs throughput. The content
 * type goes with the body, not through c.header, for the reason requestContext gives.
 */
function measuredJson(c: Context<AppEnv>): Context<AppEnv>["json"] {
  const body = c.body as (text: string, ...rest: unknown[]) => Response;
  const json = (object: unknown, ...rest: unknown[]) => {
    const text = JSON.stringify(object);
    c.set("bytesOut", byteLength(text));
    return body(text, rest[0], { "Content-Type": "application/json", ...(rest[1] as object) });
  };
  return json as unknown as Context<AppEnv>["json"];
}

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A body that is missing or not JSON, told the same way: by the fields the route needs (`invalid
 * request: email, password`), with what was wrong in `details`.
 */
function unusableBody(required: readonly string[], why: { path: string[]; message: string }[]) {
  const wanted = required.length ? required.join(", ") : "the body must be a JSON object";
  return new AppError("BAD_REQUEST", `invalid request: ${wanted}`, why);
}

/**
 * Bodies must be JSON in UTF-8. Reading the bytes here caches them on the request, so the
 * validator parses the same bytes afterwards. `required`: the body's required fields, named when
 * the body is missing or malformed.
 */
export const jsonBodyGuard =
  (required: readonly string[]): MiddlewareHandler<AppEnv> => async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD" || c.req.method === "OPTIONS") {
      return await next();
    }
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length === 0) {
      if (!required.length) return await next();
      throw unusableBody(
        required,
        required.map((f) => ({ path: ["json", f], message: "required" })),
      );
    }
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
      throw unusableBody(required, [{
        path: ["json"],
        message: `the body is not valid JSON: ${(err as Error).message}`,
      }]);
    }
    await next();
  };
