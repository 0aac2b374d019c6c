/**
 * `defineRoute`: every route is an OpenAPI route whose guard, idempotency and documented error
 * responses come from one place, so a new route gets the conventions by construction.
 */
import { createRoute, OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AppError } from "../domain/shared/errors.ts";
import type { AppEnv } from "./context.ts";
import { errorJson } from "./errors.ts";
import { limitedGuard } from "./middleware/rate_limit.ts";
import { budgetOf } from "./rate_limits.ts";
import { idempotency } from "./middleware/idempotency.ts";
import { jsonBodyGuard } from "./middleware/request.ts";
import { type Access, ROUTE_ACCESS, routeKey } from "./permissions.ts";
import { ErrorSchema } from "./schemas.ts";
import { operationId } from "./operation_ids.ts";

/** Validation failures answer 400 with every issue and its path. */
// deno-lint-ignore no-explicit-any
export const validationHook: Hook<any, AppEnv, any, any> = (result, c) => {
  if (result.success) return;
  const details = result.error.issues.map((i) => ({
    path: [result.target, ...i.path.map(String)],
    message: i.message,
    code: i.code,
  }));
  const where = details.map((d) => d.path.join(".")).join(", ");
  return errorJson(
    c as Context<AppEnv>,
    new AppError("BAD_REQUEST", `invalid request: ${where}`, details),
  );
};

/** A router that shares the app's validation hook. */
export const router = () => new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

/** A documented error answer: the error envelope, with what the status means here. */
export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorSchema } },
});

function errorResponses(route: RouteConfig, access: Access) {
  // Every POST takes input: at least the Idempotency-Key header, which can be malformed.
  const hasInput = route.method === "post" ||
    Boolean(route.request?.body || route.request?.query || route.request?.params);
  const writes = route.method === "patch" || route.method === "put" || route.method === "delete";
  return {
    ...(hasInput
      ? { 400: errorResponse("Invalid input: `details` lists each issue with its path.") }
      : {}),
    ...(access === "public"
      ? { 403: errorResponse("The caller's address is blocked (IP reputation).") }
      : {
        401: errorResponse("Missing, invalid, expired or revoked credentials."),
        403: errorResponse(`The caller lacks \`${access}\`, or its address is blocked.`),
      }),
    ...(route.request?.params || route.path.includes("{")
      ? { 404: errorResponse("Not found, or not visible to the caller.") }
      : {}),
    ...(writes || route.method === "post"
      ? { 409: errorResponse("Conflicts with the current state.") }
      : {}),
    ...(writes ? { 412: errorResponse("`If-Match` names a stale version.") } : {}),
    ...(route.request?.body
      ? {
        413: errorResponse("The body is over the configured limit."),
        415: errorResponse("The body is not JSON."),
      }
      : {}),
    ...(route.method === "post"
      ? { 422: errorResponse("`Idempotency-Key` reused with a different request.") }
      : {}),
    429: errorResponse("Too many requests; see `Retry-After`."),
    500: errorResponse("Unexpected failure; quote the request id."),
  };
}

/** The top-level fields a route's JSON body must have (those that refuse `undefined`). */
function requiredFields(route: RouteConfig): string[] {
  const media = route.request?.body?.content?.["application/json"];
  const schema = media && "schema" in media ? media.schema : null;
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>)
    .filter(([, field]) => !field.safeParse(undefined).success)
    .map(([name]) => name);
}

export function defineRoute<const R extends RouteConfig>(route: R): R {
  const key = routeKey(route.method, route.path);
  const access = ROUTE_ACCESS[key];
  if (!access) throw new Error(`${key} has no entry in routes/permissions.ts`);
  // Credentials first: a caller without them learns nothing from how its body is judged. Each
  // layer costs every request an await, so a GET has no body guard and a public route without
  // a budget no guard at all.
  const budget = budgetOf(route.method, route.path);
  const guards = access === "public" && !budget
    ? []
    : [limitedGuard(access, route.path.includes("{tenant}"), budget)];
  if (route.method !== "get") guards.push(jsonBodyGuard(requiredFields(route)));
  if (route.method === "post") guards.push(idempotency);
  const postHeaders = route.method === "post"
    ? [{
      name: "Idempotency-Key",
      in: "header" as const,
      required: false,
      schema: {
        type: "string" as const,
        minLength: 1,
        maxLength: 255,
        // Visible ASCII, as the idempotency middleware enforces.
        pattern: "^[\\x21-\\x7E]+$",
      },
      description: "Replays the first answer to the same key and body for 24 hours; another " +
        "body with the same key is 422.",
    }]
    : [];
  return createRoute({
    operationId: operationId(route.method, route.path),
    ...route,
    middleware: [...guards, ...[route.middleware ?? []].flat()],
    security: access === "public" ? [] : [{ bearer: [] }, { apiKey: [] }],
    description: [route.description, `**Access:** \`${access}\``].filter(Boolean).join("\n\n"),
    "x-permission": access,
    parameters: [...(route.parameters ?? []), ...postHeaders],
    responses: { ...errorResponses(route, access), ...route.responses },
  }) as R;
}
