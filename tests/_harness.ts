/**
 * The whole app in-process on a `:memory:` KV, with a movable clock and a super-admin token.
 *
 *   await using h = await setup();
 *   const res = await h.call("POST", "/v1/tenants", { token: h.root, body: { name: "Acme", slug: "acme" } });
 */
import { loadConfig, pinnedSettings } from "../config.ts";
import { RuntimeConfig } from "../domain/platform/runtime_config.ts";
import { IpGuard } from "../domain/protection/ip_guard.ts";
import { QuotaLeases } from "../domain/keys/quota_leases.ts";
import { backfillListCounts } from "../domain/platform/list_counts.ts";
import { DEFAULT_REPUTATION } from "../domain/protection/ip_reputation.ts";
import { createApp } from "../routes/app.ts";
import { Aggregator } from "../domain/usage/aggregator.ts";
import { ensureSuperAdmin } from "../domain/platform/bootstrap.ts";
import { seedPlans } from "../domain/tenancy/plans.ts";
import { Vault } from "../domain/vault/vault.ts";
import type { Mailer, StripeAccess, WebhookNetwork } from "../domain/shared/services.ts";
import type { Probe } from "../domain/platform/health.ts";
import type { PlatformRole, TenantRole } from "../domain/access/permissions.ts";
import { login } from "../domain/identity/sessions.ts";
import { type Services, SYSTEM_ACTOR } from "../domain/shared/services.ts";
import { createUser } from "../domain/identity/users.ts";
import { JOB_HANDLERS } from "../domain/platform/job_handlers.ts";
import { type JobHandlers, runDueJobs } from "../domain/jobs/jobs.ts";
import { WEBHOOK_QUEUE } from "../domain/jobs/names.ts";
import { addMember } from "../domain/identity/memberships.ts";
import { SYSTEM_PRINCIPAL } from "../domain/access/principal.ts";
import { capturingMailer } from "../domain/email/smtp.ts";
import { tenantTable } from "../domain/tenancy/tenants.ts";
import { PgSync } from "../domain/usage/pg_sync.ts";
import { verifyItem } from "../domain/usage/stream.ts";
import { KvCache } from "../kv/cache.ts";
import { meterKv } from "../kv/metered.ts";
import { PgAnalytics } from "../pg/analytics.ts";
import type { PgStore } from "../pg/client.ts";
import { SumBuffer } from "../kv/sum_buffer.ts";
import { getRecord } from "../kv/table.ts";
import { PluginHooks } from "../domain/plugins/hooks.ts";

export interface CallOptions {
  token?: string;
  /** JSON-encoded with Content-Type: application/json. */
  body?: unknown;
  /** Sent as is (for malformed bodies); set Content-Type yourself. */
  raw?: BodyInit;
  headers?: Record<string, string>;
  /** The peer address the server sees, as Deno.serve would pass it. */
  ip?: string;
}

export interface Reply {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

export const TEST_PASSWORD = "correct horse battery staple";

export interface HarnessOptions {
  bodyLimitBytes?: number;
  corsOrigins?: string[];
  /** Extra readiness probes (Postgres). */
  probes?: Probe[];
  /** Seed the standard plans, as a first start does (default true; false keeps the trail empty). */
  seedPlans?: boolean;
  /** A migrated Postgres store: logs, audit copies and daily reads go through it. */
  pg?: PgStore;
  /** Environment variables for the app's configuration (COST_*, USAGE_STREAM_POLL_MS, …). */
  env?: Record<string, string>;
  /** Where mail goes; default the development outbox (captured, not sent). */
  mailer?: Mailer;
  /** WEBHOOK_ALLOW_PRIVATE_URLS (default false). */
  allowPrivateUrls?: boolean;
  /** Stripe's client and webhook secret (tests/_stripe.ts's fake); default null: billing is off. */
  stripe?: StripeAccess | null;
}

/** Public addresses the harness's DNS answers with (documentation ranges would be refused). */
export const PUBLIC_IPV4 = "93.184.216.34";
export const PUBLIC_IPV6 = "2606:2800:220:1:248:1893:25c8:1946";

export async function setup(opts: HarnessOptions = {}) {
  const kv = await Deno.openKv(":memory:");
  const meter = meterKv(kv);
  const clock = { now: Date.parse("2026-03-01T12:00:00.000Z") };
  /** The harness's DNS: host → addresses. Anything else does not resolve. */
  const dns = new Map<string, string[]>([["hooks.example.com", [PUBLIC_IPV4, PUBLIC_IPV6]]]);
  /** No network by default: every webhook is answered 204 unless a test sets `fetch`. */
  const network: WebhookNetwork = {
    allowPrivateUrls: opts.allowPrivateUrls ?? false,
    fetch: () => Promise.resolve(new Response(null, { status: 204 })),
    resolveDns: (host, type) => {
      const found = (dns.get(host) ?? []).filter((ip) => ip.includes(":") === (type === "AAAA"));
      return found.length
        ? Promise.resolve(found)
        : Promise.reject(new Deno.errors.NotFound(`no ${type} records for ${host}`));
    },
  };
  const cache = new KvCache(kv, { freshMs: 5_000, maxEntries: 10_000, now: () => clock.now });
  const pg = opts.pg
    ? new PgSync(kv, new PgAnalytics(opts.pg), { maxBuffered: 10_000, now: () => clock.now })
    : null;
  // Not started: tests flush when they want counters and logs persisted.
  const counters = new SumBuffer(kv, {
    flushIntervalMs: 1_000,
    maxEntries: 1_000,
    onCommitted: (key, amount) => {
      cache.adjust(key, amount);
      pg?.touched(key);
    },
    companion: verifyItem,
    now: () => clock.now,
  });
  const svc: Services = {
    kv,
    now: () => clock.now,
    // Cheap scrypt for tests; production uses N = 2^17.
    passwords: { log2N: 10 },
    sessions: { idleMs: 60 * 60_000, maxMs: 12 * 3_600_000 },
    cache,
    counters,
    // Every request logged (sampling has its own test).
    aggregator: new Aggregator(counters, kv, {
      enabled: true,
      flushIntervalMs: 1_000,
      flushMaxEntries: 1_000,
      sampleRate: 1,
      retentionDays: 30,
      pg,
      now: () => clock.now,
      meter,
    }),
    pg,
    vault: new Vault(crypto.getRandomValues(new Uint8Array(32)), "memory", {
      now: () => clock.now,
    }),
    webhooks: network,
    mailer: opts.mailer ?? capturingMailer("Steward <steward@localhost>"),
    brand: { platform: "Steward", publicUrl: "https://steward.example.com" },
    // Backups off, as for any store in memory; tests of backups give a directory.
    backups: { dir: null, keep: 7, store: ":memory:" },
    stripe: opts.stripe ?? null,
  };
  svc.hooks = new PluginHooks(svc);
  const boot = await ensureSuperAdmin(svc);
  if (opts.seedPlans ?? true) await seedPlans(svc);
  // A new store: its lists count from the start (main.ts runs the same at start-up).
  await backfillListCounts(svc);
  // The start-up's events have no webhook endpoint to go to: their fan-out jobs are dropped, so
  // every test starts with an empty job table.
  for (
    const prefix of [["jobs"], ["jobs_due"], ["jobs_by_status"], ["jobs_by_queue"], ["job_counts"]]
  ) {
    for await (const e of kv.list({ prefix })) await kv.delete(e.key);
  }
  if (boot.status !== "generated") throw new Error("harness: bootstrap did not generate a token");
  // A short poll, so a live tail answers within a test's patience.
  // Rate limits off unless a test turns them on (tests/platform/rate_limit_test.ts).
  const env: Record<string, string> = {
    STEWARD_KV_PATH: ":memory:",
    USAGE_STREAM_POLL_MS: "10",
    STEWARD_RATE_LIMITS: "off",
    // Every request logged (sampling has its own test): pinned, as the variable pins it.
    REQUEST_LOG_SAMPLE_RATE: "1",
    ...opts.env,
  };
  const config = loadConfig(env);
  // The runtime settings, applied once (not watched: this process applies its own changes).
  const runtime = new RuntimeConfig(svc, pinnedSettings(config, env));
  await runtime.refresh();
  // Not started: tests flush its tally, and the routes that change blocks reload them.
  const ipGuard = new IpGuard(svc, { ...DEFAULT_REPUTATION });
  // Not started: tests tick it or stop it when they want leases returned.
  const quotas = new QuotaLeases(svc);
  const app = createApp({
    svc,
    config: {
      ...config,
      STEWARD_BODY_LIMIT_BYTES: opts.bodyLimitBytes ?? 64 * 1024,
      STEWARD_CORS_ORIGINS: opts.corsOrigins ?? [],
    },
    version: "test",
    startedAt: clock.now,
    probes: opts.probes,
    ipGuard,
    quotas,
    runtime,
  });

  async function call(method: string, path: string, o: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers["Authorization"] = `Bearer ${o.token}`;
    if (o.body !== undefined && !headers["Content-Type"]) {
      headers["Content-Type"] = "application/json";
    }
    const json = o.body === undefined ? undefined : JSON.stringify(o.body);
    // As an HTTP client sends it (the verify fast path needs it).
    if (json !== undefined && !o.raw) {
      headers["Content-Length"] ??= String(new TextEncoder().encode(json).length);
    }
    const res = await app.request(path, {
      method,
      headers,
      body: o.raw ?? json,
    }, o.ip ? { remoteAddr: { hostname: o.ip } } : undefined);
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text };
  }

  let users = 0;
  const h = {
    app,
    svc,
    runtime,
    /** Blocked addresses and the reputation tally: `await h.ipGuard.flush()` writes the tally. */
    ipGuard,
    /** Leases of quotas: `await h.quotas.stop()` returns what is unspent. */
    quotas,
    kv,
    meter,
    clock,
    /** What webhook delivery sees of the world: set `fetch` to receive, add hosts to `dns`. */
    network,
    dns,
    /** Super-admin service token (holds "*"). */
    root: boot.secret,
    call,
    advance(ms: number) {
      clock.now += ms;
    },
    /**
     * Runs the jobs due at the harness clock (as the sweep would); returns how many ran. Given a
     * test's own handlers (a test of the job system), the webhook jobs every event brings are
     * run first with the real handlers, uncounted, so such a test counts only its own jobs.
     */
    async runJobs(
      handlers: JobHandlers = JOB_HANDLERS,
      opts: { queue?: string; limit?: number } = {},
    ) {
      if (handlers !== JOB_HANDLERS && opts.queue !== WEBHOOK_QUEUE) {
        while (await runDueJobs(svc, JOB_HANDLERS, { queue: WEBHOOK_QUEUE }) > 0);
      }
      return await runDueJobs(svc, handlers, opts);
    },

    /** A user with `role` (or none), logged in: returns its id and session token. */
    async user(role: PlatformRole | null, email = `user${++users}@example.com`) {
      const user = await createUser(svc, SYSTEM_ACTOR, {
        email,
        name: `User ${users}`,
        password: TEST_PASSWORD,
        platform_role: role,
      });
      const session = await login(svc, { email, password: TEST_PASSWORD }, {
        ip: "203.0.113.7",
        user_agent: "harness",
        request_id: null,
      });
      return { id: user.value.id, email, token: session.token };
    },

    /** Creates a tenant through the API as root; returns its record. */
    async tenant(slug: string, extra: Record<string, unknown> = {}, path = "/v1/tenants") {
      const res = await call("POST", path, {
        token: boot.secret,
        body: { name: `Tenant ${slug}`, slug, ...extra },
      });
      if (res.status !== 201) throw new Error(`harness: tenant ${slug}: ${res.status} ${res.text}`);
      return res.body.data as { id: string; slug: string; is_test: boolean };
    },

    /** A service token created by root with `permissions`, optionally bound to a tenant. */
    async serviceToken(permissions: string[], tenant_id?: string) {
      const res = await call("POST", "/v1/admin/tokens", {
        token: boot.secret,
        body: { name: "test token", permissions, tenant_id },
      });
      if (res.status !== 201) throw new Error(`harness: token: ${res.status} ${res.text}`);
      return { id: res.body.data.id as string, token: res.body.data.token as string };
    },

    /** Makes `userId` a member of `tenantId` with `role` (as the system, audited). */
    async member(tenantId: string, userId: string, role: TenantRole) {
      const tenant = await getRecord(kv, tenantTable, tenantId);
      if (!tenant) throw new Error(`harness: no tenant ${tenantId}`);
      await addMember(svc, SYSTEM_ACTOR, SYSTEM_PRINCIPAL, tenant.value, { user_id: userId, role });
    },

    /** Every key and value in the store as text, to prove what is (not) stored. */
    async dump(): Promise<string> {
      const lines: string[] = [];
      for await (const e of kv.list({ prefix: [] })) {
        lines.push(
          JSON.stringify(e.key) + " " +
            JSON.stringify(e.value, (_k, v) => typeof v === "bigint" ? String(v) : v),
        );
      }
      return lines.join("\n");
    },

    /** Audit events for a resource, newest first. */
    async auditFor(resourceId: string) {
      const res = await call("GET", `/v1/admin/audit?resource_id=${resourceId}`, {
        token: boot.secret,
      });
      return res.body.data as {
        action: string;
        actor_id: string;
        changes: Record<string, unknown> | null;
      }[];
    },

    [Symbol.asyncDispose](): Promise<void> {
      kv.close();
      return Promise.resolve();
    },
  };
  return h;
}

export type Harness = Awaited<ReturnType<typeof setup>>;
