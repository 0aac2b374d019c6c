/** The error envelope, and the mapping of every failure to it: no stack trace ever leaves. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AppError, type ErrorCode } from "../domain/shared/errors.ts";
import { ContentionError } from "../kv/commit.ts";
import { InvalidCursorError } from "../kv/list.ts";
import type { AppEnv } from "./context.ts";
import { ROUTE_ACCESS } from "./permissions.ts";

export const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PRECONDITION_FAILED: 412,
  PRECONDITION_REQUIRED: 428,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

const CODE_BY_STATUS = Object.fromEntries(
  Object.entries(STATUS).map(([code, status]) => [status, code]),
) as Record<
  number,
  ErrorCode
>;

export function errorJson(c: Context<AppEnv>, err: AppError) {
  c.set("errorCode", err.code);
  if (err.retryAfter !== undefined) c.header("Retry-After", String(err.retryAfter));
  if (err.code === "UNAUTHORIZED") c.header("WWW-Authenticate", 'Bearer realm="steward"');
  return c.json({
    success: false as const,
    error: {
      code: err.code,
      message: err.message,
      ...(err.details === undefined ? {} : { details: err.details }),
      request_id: c.get("requestId"),
    },
  }, STATUS[err.code]);
}

/** Translates anything thrown while handling a request into the error envelope. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof InvalidCursorError) return new AppError("BAD_REQUEST", err.message);
  if (err instanceof ContentionError) return new AppError("CONFLICT", err.message);
  if (err instanceof HTTPException) {
    const code = CODE_BY_STATUS[err.status] ?? "BAD_REQUEST";
    return new AppError(
      code,
      err.status === 400 ? `malformed request: ${err.message}` : err.message,
    );
  }
  return new AppError("INTERNAL", "something went wrong on our side; the request id identifies it");
}

export function onError(err: Error, c: Context<AppEnv>) {
  const appError = toAppError(err);
  if (appError.code === "INTERNAL") {
    console.error(`[${c.get("requestId")}] ${c.req.method} ${c.req.path}:`, err);
  }
  return errorJson(c, appError);
}

/** Each route path of the access table as a pattern, with the methods it answers. */
const ROUTES = Object.entries(
  Object.keys(ROUTE_ACCESS).reduce<Record<string, string[]>>((byPath, route) => {
    const [method, path] = route.split(" ");
    (byPath[path] ??= []).push(method);
    return byPath;
  }, {}),
).map(([path, methods]) => ({
  pattern: new RegExp(`^${path.replace(/[.]/g, "\\.").replace(/\{[^}]+\}/g, "[^/]+")}$`),
  methods,
}));

/** No route matched: 405 with `Allow` when the path exists under other methods, else 404. */
export function notFoundHandler(c: Context<AppEnv>) {
  const known = ROUTES.find((r) => r.pattern.test(c.req.path));
  // A route that answers this method said "not found" itself (an unknown docs asset).
  if (!known || known.methods.includes(c.req.method)) {
    return errorJson(c, new AppError("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`));
  }
  const allow = known.methods.join(", ");
  c.header("Allow", allow);
  return errorJson(
    c,
    new AppError(
      "METHOD_NOT_ALLOWED",
      `${c.req.method} is not allowed on ${c.req.path}; use ${allow}`,
    ),
  );
}
