/**
 * The console's sign-in: the API's own session token (`POST /v1/auth/login`), kept in an
 * HttpOnly, SameSite=Strict cookie scoped to /console (Secure when the request came over HTTPS),
 * so the session's idle and absolute limits are the API's. Forms carry a CSRF token derived from
 * the session token (a page script could not read it from the cookie, and another origin cannot
 * read the page); the sign-in form, before any session, uses a random double-submit cookie.
 */
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Principal } from "../../domain/access/principal.ts";
import { authenticateSession } from "../../domain/identity/sessions.ts";
import { randomBase62, sha256Hex } from "../../domain/shared/secrets.ts";
import type { AppEnv } from "../context.ts";

export const SESSION_COOKIE = "steward_console";
const LOGIN_CSRF_COOKIE = "steward_console_login";
export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

export interface ConsoleSession {
  token: string;
  principal: Principal;
  csrf: string;
}

export type ConsoleEnv = {
  Variables: AppEnv["Variables"] & { session: ConsoleSession };
};
export type ConsoleContext = Context<ConsoleEnv>;

/** Whether the browser reached Steward over HTTPS (directly, or as a trusted proxy says). */
function overHttps<E extends AppEnv>(c: Context<E>): boolean {
  if (new URL(c.req.url).protocol === "https:") return true;
  return c.get("deps").config.STEWARD_TRUSTED_PROXIES.length > 0 &&
    c.req.header("X-Forwarded-Proto") === "https";
}

const cookieOptions = <E extends AppEnv>(c: Context<E>, maxAge?: number) => ({
  path: "/console",
  httpOnly: true,
  sameSite: "Strict" as const,
  secure: overHttps(c),
  ...(maxAge !== undefined ? { maxAge } : {}),
});

/** The form token of a session: bound to it, useless without it. */
export const csrfOf = (token: string) => sha256Hex(`console-csrf:${token}`).slice(0, 40);

export function startSession<E extends AppEnv>(
  c: Context<E>,
  token: string,
  expiresAt: string,
): void {
  const maxAge = Math.max(0, Math.floor((Date.parse(expiresAt) - c.get("svc").now()) / 1000));
  setCookie(c, SESSION_COOKIE, token, cookieOptions(c, maxAge));
  deleteCookie(c, LOGIN_CSRF_COOKIE, { path: "/console" });
}

export function endSession<E extends AppEnv>(c: Context<E>): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/console", secure: overHttps(c) });
}

/** The sign-in form's token: a random value in a cookie and in the form, which must match. */
export function loginCsrf(c: Context<AppEnv>): string {
  const existing = getCookie(c, LOGIN_CSRF_COOKIE);
  if (existing && /^[A-Za-z0-9]{32}$/.test(existing)) return existing;
  const fresh = randomBase62(32);
  setCookie(c, LOGIN_CSRF_COOKIE, fresh, cookieOptions(c, 3_600));
  return fresh;
}

export const loginCsrfMatches = (c: Context<AppEnv>, sent: unknown) =>
  typeof sent === "string" && sent.length > 0 && sent === getCookie(c, LOGIN_CSRF_COOKIE);

/** The signed-in user, or a redirect to the sign-in page (htmx follows HX-Redirect). */
export const requireSession: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  const token = getCookie(c, SESSION_COOKIE);
  const principal = token ? await authenticateSession(c.get("svc"), token) : null;
  if (!token || !principal) {
    if (token) endSession(c);
    const to = `/console/login?next=${encodeURIComponent(new URL(c.req.url).pathname)}`;
    if (c.req.header("HX-Request")) {
      c.header("HX-Redirect", to);
      return c.body(null, 401);
    }
    if (c.req.method !== "GET") return c.text("sign in again", 401);
    return c.redirect(to, 303);
  }
  c.set("session", { token, principal, csrf: csrfOf(token) });
  await next();
};

/**
 * Every state change carries the session's token, in the form (`_csrf`) or, from htmx, in the
 * X-CSRF-Token header; without it the answer is 403 and nothing is done.
 */
export const requireCsrf: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD") return await next();
  let sent = c.req.header(CSRF_HEADER);
  if (!sent) {
    const type = c.req.header("Content-Type") ?? "";
    if (type.startsWith("application/x-www-form-urlencoded") || type.startsWith("multipart/")) {
      const form = await c.req.parseBody();
      sent = typeof form[CSRF_FIELD] === "string" ? form[CSRF_FIELD] as string : undefined;
    }
  }
  if (sent !== c.get("session").csrf) {
    return c.text("the form's CSRF token is missing or wrong", 403);
  }
  await next();
};
