/**
 * The settings an operator may change while Steward runs (GET/PATCH /v1/admin/config): for
 * each, the schema of its value, its default, the environment variable that pins it, what it
 * means, and how a process applies it to its live components. config.ts builds those variables
 * from the same schemas (`settingVariable`), so a value means the same at start-up and through
 * the API. Adding a setting is one entry in SETTINGS (its variable comes with it).
 */
import { z } from "@hono/zod-openapi";
import type { ApiRateLimiter, Budget, Limit } from "../access/api_rate_limit.ts";
import { PLATFORM_ROLES } from "../access/permissions.ts";
import { ALERT_RULE_NAMES } from "./alert_rules.ts";
import type { Services } from "../shared/services.ts";
import type { IpGuard } from "../protection/ip_guard.ts";
import { DEFAULT_REPUTATION, type ReputationSettings } from "../protection/ip_reputation.ts";

/**
 * What a value is applied to: this process's services, its API rate limiter (when on) and its IP
 * guard (both built with the app).
 */
export interface LiveTargets {
  svc: Services;
  limiter: ApiRateLimiter | null;
  ipGuard: IpGuard | null;
}

export interface Setting<T = unknown, E extends string = string> {
  /** The variable that sets it at start-up; when set, it pins the value (PATCH answers 409). */
  env: E;
  /** The value as JSON carries it (a PATCH, the stored document); the output is what applies. */
  schema: z.ZodType<T>;
  default: T;
  /** How GET names its type. */
  type: "integer" | "number" | "rate" | "object";
  description: string;
  apply(value: T, live: LiveTargets): void;
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const LimitObject = z.strictObject({
  requests_per_second: z.number().positive().max(1_000_000).openapi({ example: 100 }),
  burst: z.number().int().min(1).max(1_000_000).openapi({ example: 200 }),
});
const RATE_TEXT = /^(\d+(?:\.\d+)?)\/(\d+)$/;
/** A rate limit: `{ requests_per_second, burst }`, or as text, `"100/200"`. */
export const RateLimitValue: z.ZodType<Limit> = z.union([
  z.string().regex(RATE_TEXT, 'must be "<requests per second>/<burst>", e.g. "100/200"')
    .transform((v) => {
      const [, rate, burst] = RATE_TEXT.exec(v)!;
      return { requests_per_second: Number(rate), burst: Number(burst) };
    })
    .pipe(LimitObject),
  LimitObject,
], { error: 'must be "<requests per second>/<burst>" (e.g. "100/200") or that as an object' });

/** Per platform role, some budgets overridden: `{"support":{"read":"20/40"}}`. */
const RoleLimits = z.partialRecord(
  z.enum(PLATFORM_ROLES),
  z.strictObject({
    read: RateLimitValue.optional(),
    write: RateLimitValue.optional(),
    expensive: RateLimitValue.optional(),
    ingest: RateLimitValue.optional(),
  }),
);

/** Per alert rule, its threshold and/or duration: `{"dead_jobs":{"threshold":5}}`. */
const AlertRuleValues = z.partialRecord(
  z.enum(ALERT_RULE_NAMES),
  z.strictObject({
    threshold: z.number().min(0).optional(),
    duration_seconds: int(0, 86_400).optional(),
  }),
);

const rate = <const B extends Budget>(
  budget: B,
  fallback: Limit,
  who: string,
): Setting<Limit, `STEWARD_RATE_LIMIT_${Uppercase<B>}`> => ({
  env: `STEWARD_RATE_LIMIT_${budget.toUpperCase() as Uppercase<B>}`,
  schema: RateLimitValue,
  default: fallback,
  type: "rate",
  description: `The API's ${budget} budget ${who}, per process (README, Rate limits).`,
  apply: (value, { limiter }) => limiter?.configure({ defaults: { [budget]: value } }),
});

const limit = (requests_per_second: number, burst: number): Limit => ({
  requests_per_second,
  burst,
});

/** Keeps an entry's value type and its variable's name (config.ts types its fields by them). */
const entry = <T, const E extends string>(s: Setting<T, E>) => s;

/** One of IP reputation's settings, read by the guard at each flush. */
const reputation = <const E extends string>(
  env: E,
  field: keyof ReputationSettings,
  schema: z.ZodType<number>,
  description: string,
): Setting<number, E> => ({
  env,
  schema,
  default: DEFAULT_REPUTATION[field],
  type: "integer",
  description,
  apply: (value, { ipGuard }) => void (ipGuard && (ipGuard.settings[field] = value)),
});

/** Every runtime setting by its key (snake_case, as the API names it). */
export const SETTINGS = {
  rate_limit_read: entry(rate("read", limit(100, 200), "per principal (GET routes)")),
  rate_limit_write: entry(rate("write", limit(20, 40), "per principal (writes)")),
  rate_limit_expensive: entry(
    rate("expensive", limit(1, 5), "per principal (exports, backups, rotations)"),
  ),
  rate_limit_ingest: entry(rate("ingest", limit(1_000, 2_000), "per principal (usage events)")),
  rate_limit_anonymous: entry(
    rate("anonymous", limit(10, 20), "per client IP without credentials"),
  ),
  rate_limit_roles: entry({
    env: "STEWARD_RATE_LIMIT_ROLES",
    schema: RoleLimits,
    default: {},
    type: "object",
    description: "Per platform role, budgets that replace the defaults " +
      '(`{"support":{"read":"20/40"}}`); a token\'s own override still wins.',
    apply: (value, { limiter }) => limiter?.configure({ roles: value }),
  }),
  request_log_sample_rate: entry({
    env: "REQUEST_LOG_SAMPLE_RATE",
    schema: z.number().min(0).max(1),
    default: 0.1,
    type: "number",
    description: "Share of successful requests whose log entry is kept (0–1); warnings and " +
      "errors always are.",
    apply: (value, { svc }) => svc.aggregator.tune({ sampleRate: value }),
  }),
  log_retention_days: entry({
    env: "LOG_RETENTION_DAYS",
    schema: int(1, 3_650),
    default: 30,
    type: "integer",
    description: "Days request logs are kept; the daily prune deletes what is older.",
    apply: (value, { svc }) => svc.aggregator.tune({ retentionDays: value }),
  }),
  usage_flush_interval_ms: entry({
    env: "USAGE_FLUSH_INTERVAL_MS",
    schema: int(100, 60_000),
    default: 1_000,
    type: "integer",
    description: "How often write-behind counters and logs are written (a hard kill loses at " +
      "most this much).",
    apply: (value, { svc }) => svc.aggregator.tune({ flushIntervalMs: value }),
  }),
  verify_cache_ms: entry({
    env: "STEWARD_VERIFY_CACHE_MS",
    schema: int(100, 300_000),
    default: 5_000,
    type: "integer",
    description: "How long verify may answer from memory: another process's change (a " +
      "revocation, a plan change) is seen within this window.",
    apply: (value, { svc }) => svc.cache.setFreshMs(value),
  }),
  alert_rules: entry({
    env: "STEWARD_ALERT_RULES",
    schema: AlertRuleValues,
    default: {},
    type: "object",
    description: "Per alert rule, its threshold and/or duration over the rule's defaults " +
      '(`{"dead_jobs":{"threshold":5,"duration_seconds":300}}`).',
    apply: (value, { svc }) => void (svc.alertRules = value),
  }),
  session_idle_minutes: entry({
    env: "STEWARD_SESSION_IDLE_MINUTES",
    schema: int(1, 7 * 24 * 60),
    default: 60,
    type: "integer",
    description: "A session unused for this long ends.",
    apply: (value, { svc }) => void (svc.sessions.idleMs = value * 60_000),
  }),
  session_max_hours: entry({
    env: "STEWARD_SESSION_MAX_HOURS",
    schema: int(1, 90 * 24),
    default: 12,
    type: "integer",
    description: "A session ends this long after its login, used or not (new sessions).",
    apply: (value, { svc }) => void (svc.sessions.maxMs = value * 3_600_000),
  }),
  password_min_score: entry({
    env: "STEWARD_PASSWORD_MIN_SCORE",
    schema: int(0, 4),
    default: 3,
    type: "integer",
    description: 'The lowest zxcvbn score (0–4) a new password may have; 3 is "safely ' +
      'unguessable".',
    apply: (value, { svc }) => void (svc.passwords.minScore = value),
  }),
  webhook_max_attempts: entry({
    env: "WEBHOOK_MAX_ATTEMPTS",
    schema: int(1, 8),
    default: 8,
    type: "integer",
    description: "Attempts of a webhook message in all (the first and its retries, 5 s, " +
      "5 min, 30 min, 2 h, 5 h, 10 h, 10 h apart) before it fails.",
    apply: (value, { svc }) =>
      void (svc.webhookRetry = { ...svc.webhookRetry, maxAttempts: value }),
  }),
  webhook_max_retry_delay_seconds: entry({
    env: "WEBHOOK_MAX_RETRY_DELAY_SECONDS",
    schema: int(1, 36_000),
    default: 36_000,
    type: "integer",
    description: "The longest wait before a webhook retry: longer steps of the schedule are " +
      "cut to it (a receiver's Retry-After may still ask for up to 10 h).",
    apply: (value, { svc }) =>
      void (svc.webhookRetry = { ...svc.webhookRetry, maxDelayMs: value * 1_000 }),
  }),
  backup_hour_utc: entry({
    env: "STEWARD_BACKUP_HOUR",
    schema: int(0, 23),
    default: 2,
    type: "integer",
    description: "The hour (UTC) of the daily backup of the store, at minute 23.",
    apply: (value, { svc }) => void (svc.backups.hour = value),
  }),
  backup_keep: entry({
    env: "STEWARD_BACKUP_KEEP",
    schema: int(1, 1_000),
    default: 7,
    type: "integer",
    description: "How many succeeded backups are kept; older ones are deleted.",
    apply: (value, { svc }) => void (svc.backups.keep = value),
  }),
  ip_block_score: entry(reputation(
    "STEWARD_IP_BLOCK_SCORE",
    "blockScore",
    int(0, 1_000_000),
    "The IP reputation score at which a source address is blocked automatically; 0: never " +
      "(README, IP reputation).",
  )),
  ip_block_minutes: entry(reputation(
    "STEWARD_IP_BLOCK_MINUTES",
    "blockMinutes",
    int(1, 24 * 60),
    "The first automatic block's length; each next one within a day doubles it.",
  )),
  ip_block_max_hours: entry(reputation(
    "STEWARD_IP_BLOCK_MAX_HOURS",
    "maxBlockHours",
    int(1, 24 * 365),
    "The longest automatic block.",
  )),
} satisfies Record<string, Setting<unknown>>;

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];
export type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K]["default"];

/** The registry as one type, for code that walks every entry. */
export const settingOf = (key: SettingKey) => SETTINGS[key] as Setting<unknown>;

/** Each setting's environment variable, named as it is, with the type of its value. */
export type SettingVariables = {
  [K in SettingKey as (typeof SETTINGS)[K]["env"]]: z.ZodType<SettingValue<K>, string | undefined>;
};

/**
 * Every setting's environment variable as config.ts reads it: the text as JSON when it is JSON
 * (numbers, objects), else as is (`100/200`), then the setting's own schema.
 */
export function settingVariables(): SettingVariables {
  return Object.fromEntries(SETTING_KEYS.map((key) => {
    const s = settingOf(key);
    const variable = z.string().transform((text): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }).pipe(s.schema).default(s.default);
    return [s.env, variable];
  })) as unknown as SettingVariables;
}
