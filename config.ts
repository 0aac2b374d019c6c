/**
 * Every environment variable Steward reads, parsed once at start-up.
 * A bad value stops start-up with a message naming the variable (see README's table).
 */
import { dirname, join } from "node:path";
import { z } from "@hono/zod-openapi";
import { type Cidr, parseCidr } from "./domain/shared/ip_address.ts";
import { parseSmtpUrl } from "./domain/email/smtp.ts";
import {
  SETTING_KEYS,
  type SettingKey,
  SETTINGS,
  settingVariables,
} from "./domain/platform/runtime_settings.ts";

const intFrom = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const price = (fallback: number) => z.coerce.number().min(0).max(1_000_000).default(fallback);

/** A master key as the environment gives it: 32 bytes in base64. */
const MasterKeyText = z.string().refine(
  (v) => {
    try {
      return atob(v).length === 32;
    } catch {
      return false;
    }
  },
  "must be 32 bytes encoded as base64 (openssl rand -base64 32)",
);

const ConfigSchema = z.object({
  PORT: intFrom(0, 65_535, 8000),
  HOST: z.string().min(1).default("0.0.0.0"),
  /** A file path, `:memory:`, or a KV Connect URL (`https://…`). */
  STEWARD_KV_PATH: z.string().min(1).default("./data/steward.kv"),
  /** Registered as the first super-admin service token on an empty store. */
  STEWARD_BOOTSTRAP_TOKEN: z.string().regex(
    /^stw_[A-Za-z0-9]{32,128}$/,
    "must be stw_ followed by 32–128 letters and digits",
  ).optional(),
  /** 32 bytes, base64: wraps the per-tenant data keys of the vault. */
  STEWARD_MASTER_KEY: MasterKeyText.optional(),
  /**
   * The master key before STEWARD_MASTER_KEY replaced it: start-up (or `deno task admin
   * rotate-master-key`) re-wraps every data key with the new one; then it is not needed.
   */
  STEWARD_MASTER_KEY_PREVIOUS: MasterKeyText.optional(),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  /**
   * Where backups of the store are written (vault/backups.ts); `off` for none. Unset: `backups/`
   * beside a store in a local file, none for a store in memory or over KV Connect.
   */
  STEWARD_BACKUP_DIR: z.string().min(1).optional(),
  /**
   * Entries the verify cache holds: a warm API key takes 2 (3 with a project), a tenant 2, a
   * plan 2. Past it the oldest are read again (bench:memory: about 5 KB of RSS per warm key).
   */
  STEWARD_VERIFY_CACHE_ENTRIES: intFrom(1_000, 10_000_000, 300_000),
  /**
   * The settings that may also change at run time (STEWARD_BACKUP_KEEP, STEWARD_ALERT_RULES,
   * STEWARD_RATE_LIMIT_*, STEWARD_SESSION_*, STEWARD_VERIFY_CACHE_MS, USAGE_FLUSH_INTERVAL_MS,
   * REQUEST_LOG_SAMPLE_RATE, LOG_RETENTION_DAYS, …): each read with the schema of its entry in
   * domain/platform/runtime_settings.ts. Set, a variable pins its setting (README, Runtime
   * configuration).
   */
  ...settingVariables(),
  /** `production` refuses to start without what production needs (an SMTP server). */
  STEWARD_ENV: z.enum(["development", "production"]).default("development"),
  /** A data key in use for longer is a warning in GET /v1/admin/vault/health. */
  STEWARD_DATA_KEY_MAX_AGE_DAYS: intFrom(1, 3_650, 90),
  /** The platform's SMTP server, `smtp(s)://user:pass@host:port`; unset, mail is only kept. */
  STEWARD_SMTP_URL: z.string().refine((v) => {
    try {
      parseSmtpUrl(v);
      return true;
    } catch {
      return false;
    }
  }, "must be smtp://user:pass@host:port or smtps://…").optional(),
  /** The sender of the platform's mail. */
  STEWARD_MAIL_FROM: z.string().min(3).max(320).default("Steward <steward@localhost>"),
  /** true: production may run without SMTP (mail is then kept in the outbox, never sent). */
  STEWARD_EMAIL_DISABLED: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  /** How mail names the platform. */
  STEWARD_PLATFORM_NAME: z.string().min(1).max(100).default("Steward"),
  /** Where links in mail point (the console's URL); default http://localhost:PORT. */
  STEWARD_PUBLIC_URL: z.string().regex(/^https?:\/\/[^\s]+$/, "must be an http(s) URL").optional(),
  STEWARD_BODY_LIMIT_BYTES: intFrom(1024, 64 * 1024 * 1024, 1024 * 1024),
  /** Comma-separated origins allowed by CORS; empty means no cross-origin access. */
  STEWARD_CORS_ORIGINS: z.string().default("").transform((v, ctx) => {
    const origins = v.split(",").map((s) => s.trim()).filter(Boolean);
    for (const origin of origins) {
      if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
        ctx.addIssue({
          code: "custom",
          message: `"${origin}" is not an origin like https://app.example.com`,
        });
      }
    }
    return origins;
  }),
  /**
   * Comma-separated CIDR blocks of the proxies in front of Steward: a request whose peer is one
   * of them is attributed to the address its X-Forwarded-For names (the nearest one that is not a
   * trusted proxy). Empty: the peer address counts and X-Forwarded-For is ignored.
   */
  STEWARD_TRUSTED_PROXIES: z.string().default("").transform((v, ctx) => {
    const blocks: Cidr[] = [];
    for (const text of v.split(",").map((s) => s.trim()).filter(Boolean)) {
      const block = parseCidr(text);
      if (block) blocks.push(block);
      else ctx.addIssue({ code: "custom", message: `"${text}" is not an address or CIDR block` });
    }
    return blocks;
  }),
  /**
   * Rate limits on the whole API (README, Rate limits): `off` disables them. Each budget is
   * `requests_per_second/burst`, per principal (or per client IP when unauthenticated), per
   * process.
   */
  STEWARD_RATE_LIMITS: z.enum(["on", "off"]).default("on"),
  /** Distinct counters (or request-log entries) waiting that trigger a write before the interval. */
  USAGE_FLUSH_MAX_ENTRIES: intFrom(10, 100_000, 1_000),
  /** Log entries and usage events held in memory while Postgres is unreachable, at most. */
  PG_BUFFER_MAX_ROWS: intFrom(1_000, 10_000_000, 100_000),
  /**
   * false stops collecting request logs and traffic statistics (to shed load); quota and usage
   * counters are never dropped.
   */
  /**
   * How often each process runs the jobs that are due (what a KV queue wake-up did not run):
   * the longest a job waits where queues are missing (KV Connect).
   */
  JOB_SWEEP_INTERVAL_MS: intFrom(100, 60_000, 1_000),
  USAGE_AGGREGATOR_ENABLED: z.enum(["true", "false"]).default("true").transform((v) =>
    v === "true"
  ),
  /** How often a live tail of the usage stream (SSE) looks for new items. */
  USAGE_STREAM_POLL_MS: intFrom(10, 10_000, 1_000),
  /** A billing source answering the month's cost as JSON; unset, the cost is modeled. */
  COST_LIVE_URL: z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL").optional(),
  /** Sent to COST_LIVE_URL as a bearer token. */
  COST_LIVE_TOKEN: z.string().optional(),
  COST_LIVE_TIMEOUT_MS: intFrom(100, 60_000, 3_000),
  /** Unit prices of the modeled cost (ISO 4217 currency). */
  COST_CURRENCY: z.string().regex(/^[A-Z]{3}$/, "must be an ISO 4217 code like USD").default(
    "USD",
  ),
  COST_PER_MILLION_REQUESTS: price(2),
  COST_PER_MILLION_KV_READS: price(1),
  COST_PER_MILLION_KV_WRITES: price(2.5),
  COST_PER_GIB_MONTH: price(0.75),
  /**
   * true lets webhooks go to private, loopback and other reserved addresses, and over plain
   * http: for local development and tests only (it opens the door to SSRF).
   */
  WEBHOOK_ALLOW_PRIVATE_URLS: z.enum(["true", "false"]).default("false").transform((v) =>
    v === "true"
  ),
  /** Stripe's secret API key (`sk_…` or a restricted `rk_…`); unset, billing routes answer 409. */
  STRIPE_SECRET_KEY: z.string().regex(/^(sk|rk)_[A-Za-z0-9_]{8,}$/, "must be a Stripe secret key")
    .optional(),
  /** The signing secret of the Stripe webhook endpoint (`whsec_…`). */
  STRIPE_WEBHOOK_SECRET: z.string().regex(/^whsec_\S{8,}$/, "must be whsec_ and the secret")
    .optional(),
  /** Where the Stripe API is: Stripe's own, or a local fake or stripe-mock in tests. */
  STRIPE_API_URL: z.string().regex(/^https?:\/\/[^/\s]+\/?$/, "must be an http(s) origin").default(
    "https://api.stripe.com",
  ),
}).superRefine((c, ctx) => {
  if (c.STEWARD_ENV === "production" && !c.STEWARD_SMTP_URL && !c.STEWARD_EMAIL_DISABLED) {
    ctx.addIssue({
      code: "custom",
      path: ["STEWARD_SMTP_URL"],
      message: "required in production (or set STEWARD_EMAIL_DISABLED=true to run without mail)",
    });
  }
  // Billing needs both: the key to act on Stripe, the secret to trust what Stripe sends.
  if (Boolean(c.STRIPE_SECRET_KEY) !== Boolean(c.STRIPE_WEBHOOK_SECRET)) {
    ctx.addIssue({
      code: "custom",
      path: [c.STRIPE_SECRET_KEY ? "STRIPE_WEBHOOK_SECRET" : "STRIPE_SECRET_KEY"],
      message: "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are set together, or neither",
    });
  }
}).transform((c) => ({
  ...c,
  STEWARD_PUBLIC_URL: c.STEWARD_PUBLIC_URL ?? `http://localhost:${c.PORT}`,
  STEWARD_BACKUP_DIR: backupDir(c.STEWARD_BACKUP_DIR, c.STEWARD_KV_PATH),
}));

/** STEWARD_BACKUP_DIR as set (`off`: null), else `backups/` beside a store in a local file. */
function backupDir(set: string | undefined, kvPath: string): string | null {
  if (set) return set === "off" ? null : set;
  const local = kvPath !== ":memory:" && !/^https?:\/\//.test(kvPath);
  return local ? join(dirname(kvPath), "backups") : null;
}

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {}

/**
 * The runtime settings (domain/platform/runtime_settings.ts) whose variable `env` sets, with
 * their values: the environment pins them (GET /v1/admin/config says `env`, PATCH answers 409).
 */
export function pinnedSettings(
  config: Config,
  env: Record<string, string | undefined>,
): Partial<Record<SettingKey, unknown>> {
  return Object.fromEntries(
    SETTING_KEYS.filter((key) => env[SETTINGS[key].env])
      .map((key) => [key, config[SETTINGS[key].env as keyof Config]]),
  );
}

/** Parses `env` (empty strings count as unset); throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = ConfigSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}
