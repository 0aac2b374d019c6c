/**
 * `/console`: the platform's back office in a browser. Pages are rendered on the server with
 * Hono's JSX and act through the API in-process (routes/console/api.ts); sign-in is the API's
 * session in a cookie (routes/console/session.ts). Every page answers with a strict
 * Content-Security-Policy: scripts, styles and data only from this origin, no inline code.
 */
import { Hono, type MiddlewareHandler } from "hono";
import htmx from "htmx.org/dist/htmx.min.js" with { type: "text" };
import uplot from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import script from "./assets/console.js" with { type: "text" };
import styles from "./assets/console.css" with { type: "text" };
import type { AppEnv } from "../context.ts";
import { apiClient, type ApiFetch } from "./api.ts";
import { ApiError, BarePage, Field } from "./layout.tsx";
import {
  type ConsoleEnv,
  CSRF_FIELD,
  endSession,
  loginCsrf,
  loginCsrfMatches,
  requireCsrf,
  requireSession,
  startSession,
} from "./session.ts";
import { overviewPages } from "./pages/overview.tsx";
import { usersPages } from "./pages/users.tsx";
import { auditPages } from "./pages/audit.tsx";
import { financePages } from "./pages/finance.tsx";
import { vaultPages } from "./pages/vault.tsx";
import { tenantsPages } from "./pages/tenants.tsx";
import { webhooksPages } from "./pages/webhooks.tsx";
import { operationsPages } from "./pages/operations.tsx";

const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
  "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; " +
  "frame-ancestors 'none'";

const ASSETS: Record<string, { body: string; type: string }> = {
  "htmx.min.js": { body: htmx, type: "text/javascript; charset=utf-8" },
  "uPlot.iife.min.js": { body: uplot, type: "text/javascript; charset=utf-8" },
  "uPlot.min.css": { body: uplotCss, type: "text/css; charset=utf-8" },
  "console.js": { body: script, type: "text/javascript; charset=utf-8" },
  "console.css": { body: styles, type: "text/css; charset=utf-8" },
};

/** Where to go after signing in: a console path only (never another origin). */
const safeNext = (next: string | undefined) =>
  next && /^\/console(\/[A-Za-z0-9/_.~%?=&-]*)?$/.test(next) && !next.startsWith("//")
    ? next
    : "/console";

const LoginForm = (p: { csrf: string; next: string; login?: string }) => (
  <form method="post" action="/console/login" class="card">
    <input type="hidden" name={CSRF_FIELD} value={p.csrf} />
    <input type="hidden" name="next" value={p.next} />
    <Field
      label="Email or username"
      name="login"
      value={p.login}
      required
      autocomplete="username"
    />
    <Field
      label="Password"
      name="password"
      type="password"
      required
      autocomplete="current-password"
    />
    <button type="submit">Sign in</button>
  </form>
);

export function consoleRoutes(fetch: ApiFetch) {
  const api = apiClient(fetch);
  const app = new Hono<AppEnv>();

  const pageHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
    await next();
    c.header("Content-Security-Policy", CONSOLE_CSP);
    c.header("X-Frame-Options", "DENY");
    c.header("Referrer-Policy", "same-origin");
  };
  app.use("/console", pageHeaders);
  app.use("/console/*", pageHeaders);

  app.get("/console/assets/:asset", (c) => {
    const asset = ASSETS[c.req.param("asset")];
    if (!asset) return c.notFound();
    c.header("Content-Type", asset.type);
    c.header("Cache-Control", "public, max-age=3600");
    return c.body(asset.body);
  });

  app.get("/console/login", (c) =>
    c.html(
      <BarePage title="Sign in to Steward">
        <LoginForm csrf={loginCsrf(c)} next={safeNext(c.req.query("next"))} />
      </BarePage>,
    ));

  app.post("/console/login", async (c) => {
    const form = await c.req.parseBody();
    if (!loginCsrfMatches(c, form[CSRF_FIELD])) {
      return c.text("the form's CSRF token is missing or wrong", 403);
    }
    const login = String(form.login ?? "").trim();
    const body = {
      ...(login.includes("@") ? { email: login } : { username: login }),
      password: String(form.password ?? ""),
    };
    const res = await api.anonymous<{ token: string; expires_at: string }>(
      c,
      "POST",
      "/v1/auth/login",
      { body },
    );
    if (!res.ok) {
      c.status(res.status === 429 ? 429 : 422);
      const retry = res.headers.get("Retry-After");
      if (retry) c.header("Retry-After", retry);
      return c.html(
        <BarePage title="Sign in to Steward">
          <ApiError
            error={res.status === 400
              ? { code: "UNAUTHORIZED", message: "invalid email, username or password" }
              : res.error}
          />
          <LoginForm csrf={loginCsrf(c)} next={safeNext(String(form.next ?? ""))} login={login} />
        </BarePage>,
      );
    }
    startSession(c, res.data.token, res.data.expires_at);
    return c.redirect(safeNext(String(form.next ?? "")), 303);
  });

  // Everything else needs a session (the assets and the sign-in page above answer first).
  const signedIn = new Hono<ConsoleEnv>();
  signedIn.use("/console", requireSession, requireCsrf);
  signedIn.use("/console/*", requireSession, requireCsrf);

  signedIn.post("/console/logout", async (c) => {
    await api(c, "POST", "/v1/auth/logout");
    endSession(c);
    return c.redirect("/console/login", 303);
  });

  for (
    const pages of [
      overviewPages,
      usersPages,
      auditPages,
      financePages,
      vaultPages,
      tenantsPages,
      webhooksPages,
      operationsPages,
    ]
  ) {
    pages(signedIn, api);
  }

  app.route("/", signedIn as unknown as Hono<AppEnv>);
  return app;
}
