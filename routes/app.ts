/**
 * createApp: the middleware chain, the error handlers, the OpenAPI document and every router.
 * Built once per process (and once per test), from the dependencies main.ts wires.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";
import { CostReports, type CostSettings } from "../domain/usage/cost.ts";
import { AppError } from "../domain/shared/errors.ts";
import { ApiRateLimiter } from "../domain/access/api_rate_limit.ts";
import { ThresholdGate } from "../domain/keys/threshold_gate.ts";
import { Verifier } from "../domain/keys/verify.ts";
import { activityRoutes } from "./usage/activity.ts";
import { adminQueueRoutes } from "./platform/queues.ts";
import { alertRoutes } from "./platform/alerts.ts";
import { configRoutes } from "./platform/config.ts";
import { ipReputationRoutes } from "./platform/ip_reputation.ts";
import { infraHealthRoutes } from "./platform/infra_health.ts";
import { adminUsageRoutes } from "./usage/admin_usage.ts";
import { apiKeyRoutes } from "./keys/api_keys.ts";
import { auditRoutes } from "./audit/audit.ts";
import { authRoutes } from "./identity/auth.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { docsRoutes } from "./docs.ts";
import { consoleRoutes } from "./console/console.tsx";
import { withExamples } from "./examples.ts";
import { errorJson, notFoundHandler, onError } from "./errors.ts";
import { healthRoutes } from "./platform/health.ts";
import { invitationRoutes } from "./identity/invitations.ts";
import { logRoutes } from "./usage/logs.ts";
import { postgresRoutes } from "./usage/postgres.ts";
import { memberRoutes } from "./identity/members.ts";
import { requestContext } from "./middleware/request.ts";
import { emailRoutes } from "./email/emails.ts";
import { ROUTE_ACCESS, routeKey } from "./permissions.ts";
import { planRoutes } from "./tenancy/plans.ts";
import { projectRoutes } from "./tenancy/projects.ts";
import { validationHook } from "./route.ts";
import { MatchCache } from "./match_cache.ts";
import { signingKeyRoutes } from "./keys/signing_keys.ts";
import { tenantRoutes } from "./tenancy/tenants.ts";
import { tokenRoutes } from "./keys/tokens.ts";
import { usageRoutes } from "./usage/usage.ts";
import { usageOpsRoutes } from "./usage/usage_ops.ts";
import { userRoutes } from "./identity/users.ts";
import { roleRoutes } from "./identity/roles.ts";
import { isVerify, verifyFastPath, verifyRoutes } from "./keys/verify.ts";
import { webhookRoutes } from "./webhooks/webhooks.ts";
import { pluginRoutes } from "./plugins/plugins.ts";
import { vaultRotationRoutes } from "./vault/rotation.ts";
import { vaultHealthRoutes } from "./vault/health.ts";
import { secretRoutes } from "./vault/secrets.ts";
import { backupRoutes } from "./vault/backups.ts";
import { financeRoutes } from "./billing/finance.ts";
import { stripeRoutes } from "./billing/stripe.ts";

/** The document's tags, in the order a reader meets them. */
export const TAGS = [
  { name: "Health", description: "Liveness, readiness and a report of each dependency." },
  { name: "Auth", description: "Logging in and out, the current principal, password resets." },
  { name: "Users", description: "The platform's users: create, find, block, suspend, erase." },
  {
    name: "Roles",
    description: "Built-in and custom roles, and the permission table they draw from.",
  },
  { name: "Activity", description: "What a principal did, day by day." },
  {
    name: "Service tokens",
    description: "Credentials for systems (`stw_…`), scoped and bindable.",
  },
  { name: "Tenants", description: "The platform's customers: create, suspend, delete, flags." },
  { name: "Members", description: "Who belongs to a tenant, with which role." },
  { name: "Invitations", description: "Asking an email to join a tenant; accepting." },
  { name: "Plans", description: "Plans, their limits and quotas, and a tenant's plan." },
  { name: "Projects", description: "A tenant's applications." },
  { name: "Signing keys", description: "Per-project ES256 keys, the JWKS, and short-lived JWTs." },
  { name: "API keys", description: "A tenant's customer keys: shown once, rotated, revoked." },
  { name: "Verify", description: "The gateway's hot path: is this key good, within its limits?" },
  { name: "Usage", description: "Metered usage: events in, quotas, daily series, the stream." },
  { name: "Logs", description: "Request logs: search, export, retention." },
  { name: "Jobs", description: "Background work: queues and jobs, pause, resume, retry." },
  { name: "Alerts", description: "Rules over the platform's health: alerts fired and resolved." },
  {
    name: "Configuration",
    description: "Settings that change while Steward runs: read, change, history, rollback.",
  },
  {
    name: "IP reputation",
    description: "Each source address's score, blocks of addresses and ranges, the allowlist.",
  },
  { name: "Maintenance", description: "One-off operations on the stores." },
  { name: "Webhooks", description: "A tenant's signed outbound webhooks and their deliveries." },
  { name: "Platform webhooks", description: "The platform's own webhook endpoints." },
  {
    name: "Plugins",
    description: "External services that get events and may veto creations through hooks.",
  },
  { name: "Email", description: "Mail sent, failing, or kept in the development outbox." },
  { name: "Audit", description: "Who did what, to which resource, from where and when." },
  {
    name: "Vault",
    description: "Sealed tenant secrets, data key rotation, backups and the vault's health.",
  },
  {
    name: "Billing",
    description: "Stripe: checkout, the billing portal, subscriptions, the webhook receiver, " +
      "forced syncs and reconciliation.",
  },
  {
    name: "Finance",
    description: "Revenue reports over the billing records: subscriptions, MRR, churn, earnings.",
  },
];

export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: validationHook,
    router: new MatchCache(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] })),
  });
  const gate = new ThresholdGate(deps.svc, { intervalMs: 5_000 });
  const verifier = new Verifier(deps.svc, deps.svc.counters, { gate, quotas: deps.quotas });
  const costs = new CostReports(deps.svc, costSettings(deps.config));
  const origins = deps.config.STEWARD_CORS_ORIGINS;

  const limiter = rateLimiter(deps.config);
  // The limits and the IP guard follow the runtime configuration (GET/PATCH /v1/admin/config).
  deps.runtime.attach(limiter, deps.ipGuard);
  // The request context first: it runs the IP guard and the request log around all the rest.
  app.use("*", requestContext(deps, limiter));
  // No origins configured means no cross-origin access: then CORS costs nothing per request.
  if (origins.length) {
    app.use(
      "*",
      cors({
        origin: origins.includes("*") ? "*" : origins,
        allowHeaders: [
          "Authorization",
          "X-Api-Key",
          "Content-Type",
          "Idempotency-Key",
          "If-Match",
          "X-Request-Id",
        ],
        allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        exposeHeaders: [
          "ETag",
          "Location",
          "Retry-After",
          "X-Request-Id",
          "Idempotent-Replayed",
          "RateLimit",
          "RateLimit-Policy",
        ],
        maxAge: 600,
      }),
    );
  }
  // Only methods that carry a body: a GET skips the layer.
  app.on(
    ["POST", "PUT", "PATCH", "DELETE"],
    "*",
    bodyLimit({
      maxSize: deps.config.STEWARD_BODY_LIMIT_BYTES,
      onError: (c) =>
        errorJson(
          c,
          new AppError(
            "PAYLOAD_TOO_LARGE",
            `the body is over ${deps.config.STEWARD_BODY_LIMIT_BYTES} bytes`,
          ),
        ),
    }),
  );

  for (
    const routes of [
      healthRoutes(),
      authRoutes(),
      tokenRoutes(),
      userRoutes(),
      roleRoutes(),
      activityRoutes(),
      planRoutes(),
      projectRoutes(),
      apiKeyRoutes(),
      verifyRoutes(verifier),
      signingKeyRoutes(verifier),
      usageRoutes(),
      adminUsageRoutes(gate),
      usageOpsRoutes(gate, costs, deps.config.USAGE_STREAM_POLL_MS),
      logRoutes(),
      postgresRoutes(),
      adminQueueRoutes(),
      alertRoutes(),
      configRoutes(),
      ipReputationRoutes(),
      infraHealthRoutes(),
      tenantRoutes(),
      memberRoutes(),
      invitationRoutes(),
      auditRoutes(),
      emailRoutes(),
      webhookRoutes(),
      pluginRoutes(),
      vaultRotationRoutes(),
      vaultHealthRoutes(),
      secretRoutes(),
      backupRoutes(),
      stripeRoutes(),
      financeRoutes(),
      docsRoutes(),
      // The console acts through this app (its fetch, verify's fast path included).
      consoleRoutes((req, env) => app.fetch(req, env)),
    ]
  ) {
    app.route("/", routes);
  }

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description:
      "A session token (`sts_…`, from POST /v1/auth/login) or a service token (`stw_…`).",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "apiKey",
    in: "header",
    name: "x-api-key",
    description: "A service token (`stw_…`) in the header, as key-validation APIs are called; " +
      "`Authorization` wins when both are sent.",
  });
  // Built on first request, then served as is: the document is the same for the process's life.
  let document: unknown;
  app.get("/openapi.json", (c) =>
    c.json(
      document ??= withExamples(app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "Steward",
          version: deps.version,
          description:
            "The control plane for API businesses: tenants, users, keys, plans, usage, audit and webhooks.",
        },
        servers: [{ url: "/", description: "This Steward server" }],
        tags: TAGS,
      })),
    ));

  app.notFound(notFoundHandler);
  app.onError(onError);
  assertEveryRouteHasAccess(app);

  // The gateway's hot path skips the middleware chain when it can (see routes/keys/verify.ts).
  const fast = verifyFastPath(
    deps.svc,
    verifier,
    deps.config.STEWARD_BODY_LIMIT_BYTES,
    deps.config.STEWARD_TRUSTED_PROXIES,
    deps.ipGuard,
    limiter,
  );
  const full = app.fetch;
  app.fetch = (req, env, ctx) =>
    isVerify(req)
      ? fast(req, env).then((answer) =>
        answer instanceof Response ? answer : full(answer, env, ctx)
      )
      : full(req, env, ctx);
  return app;
}

/** The API's rate limits from the STEWARD_RATE_LIMIT* variables, or null when they are off. */
function rateLimiter(config: AppDeps["config"]): ApiRateLimiter | null {
  if (config.STEWARD_RATE_LIMITS === "off") return null;
  return new ApiRateLimiter({
    defaults: {
      read: config.STEWARD_RATE_LIMIT_READ,
      write: config.STEWARD_RATE_LIMIT_WRITE,
      expensive: config.STEWARD_RATE_LIMIT_EXPENSIVE,
      ingest: config.STEWARD_RATE_LIMIT_INGEST,
      anonymous: config.STEWARD_RATE_LIMIT_ANONYMOUS,
    },
    roles: config.STEWARD_RATE_LIMIT_ROLES,
  });
}

/** The cost model's settings, from the COST_* variables. */
function costSettings(config: AppDeps["config"]): CostSettings {
  return {
    currency: config.COST_CURRENCY,
    prices: {
      requests: config.COST_PER_MILLION_REQUESTS,
      kv_reads: config.COST_PER_MILLION_KV_READS,
      kv_writes: config.COST_PER_MILLION_KV_WRITES,
      storage_gib_month: config.COST_PER_GIB_MONTH,
    },
    storePath: config.STEWARD_KV_PATH,
    live: config.COST_LIVE_URL
      ? {
        url: config.COST_LIVE_URL,
        token: config.COST_LIVE_TOKEN ?? null,
        timeoutMs: config.COST_LIVE_TIMEOUT_MS,
      }
      : null,
  };
}

/**
 * Every API route registered, as `METHOD /path` keys of the access table. The console's pages
 * are left out: they act through the API, whose routes check access (routes/console/api.ts).
 */
export function apiRouteKeys(app: OpenAPIHono<AppEnv>): Set<string> {
  const found = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL" || r.path.endsWith("*") || r.path.startsWith("/console")) continue;
    found.add(routeKey(r.method, r.path.replace(/:(\w+)/g, "{$1}")));
  }
  return found;
}

/** Deny by default: a registered route without an entry in the access table stops start-up. */
function assertEveryRouteHasAccess(app: OpenAPIHono<AppEnv>) {
  for (const key of apiRouteKeys(app)) {
    if (!ROUTE_ACCESS[key]) throw new Error(`${key} has no entry in routes/permissions.ts`);
  }
}
