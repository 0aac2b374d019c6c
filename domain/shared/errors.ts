/** Business errors, by the API's error codes. routes/errors.ts maps code → status. */

export const ERROR_CODES = [
  "BAD_REQUEST",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "CONFLICT",
  "PRECONDITION_FAILED",
  "PRECONDITION_REQUIRED",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "UNPROCESSABLE",
  "RATE_LIMITED",
  "INTERNAL",
  "UNAVAILABLE",
] as const;

export type ErrorCode = typeof ERROR_CODES[number];

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Seconds a client should wait before retrying (RATE_LIMITED, UNAVAILABLE). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new AppError("NOT_FOUND", `${what} not found`);
export const conflict = (message: string) => new AppError("CONFLICT", message);
export const forbidden = (message = "you do not have permission to do this") =>
  new AppError("FORBIDDEN", message);
export const badRequest = (message: string, details?: unknown) =>
  new AppError("BAD_REQUEST", message, details);
export const staleVersion = () =>
  new AppError("PRECONDITION_FAILED", "the resource changed since you read it (If-Match is stale)");
