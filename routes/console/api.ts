/**
 * The console acts through the API itself: each page reads and each form writes with an
 * in-process request carrying the signed-in user's session token, so the permission table,
 * validation, masking (support), test-tenant limits (qa), rate limits, idempotency and the audit
 * trail are the API's, with nothing written twice. Buttons a role may not use are left out by
 * asking the same table (`can`).
 */
import type { Permission } from "../../domain/access/permissions.ts";
import { permissionsInTenant } from "../../domain/access/principal.ts";
import { resolveTenant } from "../../domain/tenancy/tenants.ts";
import { ROUTE_ACCESS, routeKey } from "../permissions.ts";
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import { byteLength } from "../respond.ts";
import type { ConsoleContext } from "./session.ts";

/** The app's own fetch (routes/app.ts hands it over once the app is built). */
export type ApiFetch = (req: Request, env: unknown) => Response | Promise<Response>;

/** An answer of the API: its status and its JSON body (the envelope). */
export interface ApiAnswer<T = unknown> {
  status: number;
  ok: boolean;
  data: T;
  /** The list envelope's pagination, when there is one. */
  pagination?: { total?: number; has_more: boolean; next_cursor: string | null; limit: number };
  error?: { code: string; message: string; details?: { path: string[]; message: string }[] };
  headers: Headers;
  /** An answer that is not JSON (an export): its body, unread, for the page to stream on. */
  body?: ReadableStream<Uint8Array> | null;
}

export interface ApiCall {
  body?: unknown;
  /** A form's nonce: a double submit replays the first answer instead of acting twice. */
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

export function apiClient(fetch: ApiFetch) {
  /** One API call as the browser's request would make it; `token` null: no credentials. */
  async function send<T>(
    c: Context<AppEnv>,
    token: string | null,
    method: string,
    path: string,
    call: ApiCall,
  ): Promise<ApiAnswer<T>> {
    const headers = new Headers({ "X-Request-Id": c.get("requestId"), ...call.headers });
    if (token) headers.set("Authorization", `Bearer ${token}`);
    // The client's own address, as the outer request had it: audit, throttles and blocks see it.
    const forwarded = c.req.header("X-Forwarded-For");
    if (forwarded) headers.set("X-Forwarded-For", forwarded);
    const userAgent = c.req.header("User-Agent");
    if (userAgent) headers.set("User-Agent", userAgent);
    if (call.idempotencyKey) headers.set("Idempotency-Key", call.idempotencyKey);
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers.set("Content-Type", "application/json");
      headers.set("Content-Length", String(byteLength(body)));
    }
    const res = await fetch(
      new Request(new URL(path, "http://steward.internal"), { method, headers, body }),
      c.env,
    );
    const json = res.headers.get("Content-Type")?.startsWith("application/json")
      ? await res.json()
      : null;
    return {
      status: res.status,
      ok: res.ok,
      data: json?.data as T,
      pagination: json?.pagination,
      error: json?.error,
      headers: res.headers,
      body: json === null ? res.body : null,
    };
  }

  /** A call as the signed-in user. */
  const api = <T = unknown>(c: ConsoleContext, method: string, path: string, call: ApiCall = {}) =>
    send<T>(c as unknown as Context<AppEnv>, c.get("session").token, method, path, call);
  /** A call without credentials (signing in). */
  api.anonymous = <T = unknown>(
    c: Context<AppEnv>,
    method: string,
    path: string,
    call: ApiCall = {},
  ) => send<T>(c, null, method, path, call);
  return api;
}

export type Api = ReturnType<typeof apiClient>;

/** Whether the signed-in user may call `METHOD /path` (OpenAPI path syntax) platform-wide. */
export function can(c: ConsoleContext, method: string, path: string): boolean {
  const access = ROUTE_ACCESS[routeKey(method, path)];
  if (!access) throw new Error(`console: ${method} ${path} is no API route`);
  if (access === "public" || access === "authenticated") return true;
  return c.get("session").principal.platform.has(access);
}

/**
 * What the signed-in user may do inside one tenant (its grants there), for `{tenant}` routes;
 * null when the tenant is not visible to them.
 */
export async function tenantGrants(
  c: ConsoleContext,
  tenant: string,
): Promise<ReadonlySet<Permission> | null> {
  const found = await resolveTenant(c.get("svc"), tenant);
  if (!found) return null;
  return await permissionsInTenant(c.get("svc"), c.get("session").principal, found.value);
}

/** Whether `grants` (from tenantGrants) allow `METHOD /v1/tenants/{tenant}/…`. */
export function canInTenant(
  grants: ReadonlySet<Permission> | null,
  method: string,
  path: string,
): boolean {
  const access = ROUTE_ACCESS[routeKey(method, path)];
  if (!access) throw new Error(`console: ${method} ${path} is no API route`);
  if (access === "public" || access === "authenticated") return true;
  return grants?.has(access) ?? false;
}
