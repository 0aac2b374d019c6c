/**
 * What domain functions run on: built once at start-up (main.ts, or the test harness). This
 * module is the contract every context shares, so it names only the kv and pg layers: the parts
 * a context implements (the aggregator, the Postgres copy, the vault, the webhook network) are
 * described here by what the others use of them, and main.ts passes the concrete ones.
 */
import type { KvCache } from "../../kv/cache.ts";
import type { SumBuffer } from "../../kv/sum_buffer.ts";
import type { PgAnalytics, RequestLog } from "../../pg/analytics.ts";
import type Stripe from "stripe";

export interface Services {
  kv: Deno.Kv;
  /** Milliseconds since the epoch; injected so tests move time without sleeping. */
  now: () => number;
  passwords: PasswordPolicy;
  sessions: { idleMs: number; maxMs: number };
  /** Hot-path reads (verify), forgotten by the mutations that change what they read. */
  cache: KvCache;
  /** Write-behind counters (usage, last-used times, request counts): no KV write per request. */
  counters: SumBuffer;
  /** Request logs and traffic, written behind; owns `counters` and their flushes. */
  aggregator: TrafficRecorder;
  /** The Postgres analytics store and what is waiting to be copied there (DATABASE_URL), or null. */
  pg: AnalyticsCopy | null;
  /** Envelope encryption under STEWARD_MASTER_KEY (closed without one). */
  vault: Sealer;
  /** How webhooks reach their endpoints (HTTP sender, DNS, the private-address switch). */
  webhooks: WebhookNetwork;
  /** Where email goes: an SMTP server, or the development outbox (email/smtp.ts). */
  mailer: Mailer;
  /** How mail names the platform and where its links point (email/templates.ts). */
  brand: { platform: string; publicUrl: string };
  /** Where backups of the store go and how many are kept (vault/backups.ts). */
  backups: BackupSettings;
  /** Stripe (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET), or null: billing routes answer 409. */
  stripe: StripeAccess | null;
  /** STEWARD_ALERT_RULES: thresholds and durations overriding the alert rules' defaults. */
  alertRules?: AlertRuleOverrides;
  /** Webhook retry bounds (webhooks/schedule.ts); absent: the full schedule. */
  webhookRetry?: WebhookRetryBounds;
  /** Plugins' synchronous hooks, asked before a creation commits (plugins/hooks.ts); absent: none. */
  hooks?: CreationHooks;
}

/** The creations a plugin may veto, each asked before its commit. */
export const CREATION_HOOKS = ["tenant.creating", "api_key.creating", "user.creating"] as const;
export type CreationHook = typeof CREATION_HOOKS[number];

/**
 * Plugins' synchronous hooks (plugins/hooks.ts), as the creating contexts call them: held in
 * memory, so a creation no plugin hooks costs no KV read.
 */
export interface CreationHooks {
  /**
   * Asks every enabled plugin hooked on `hook` about `subject` (what is about to be created).
   * Resolves when all allow; rejects with an UNPROCESSABLE AppError naming the plugin and its
   * reason on a veto, or UNAVAILABLE when a fail-closed plugin did not answer.
   */
  ask(hook: CreationHook, subject: Record<string, unknown>, actor: Actor): Promise<void>;
  /** Forgets the hooked plugins held in memory (a plugin changed in this process). */
  reload(): void;
}

/** How far webhook retries go: attempts in all, and the longest wait before one. */
export interface WebhookRetryBounds {
  maxAttempts?: number;
  maxDelayMs?: number;
}

/** Per alert rule (platform/alert_rules.ts), its threshold and/or duration as configured. */
export type AlertRuleOverrides = Record<
  string,
  { threshold?: number; duration_seconds?: number }
>;

/** The Stripe API client (the official SDK) and the secret Stripe signs webhooks with. */
export interface StripeAccess {
  client: Stripe;
  webhookSecret: string;
}

/** STEWARD_BACKUP_DIR and STEWARD_BACKUP_KEEP, and the store a backup reads (STEWARD_KV_PATH). */
export interface BackupSettings {
  /** The backup directory; null: no backups (none set for a store in memory or remote). */
  dir: string | null;
  /** How many succeeded backups are kept. */
  keep: number;
  /** The hour (UTC) of the daily backup; absent: 2. */
  hour?: number;
  /** STEWARD_KV_PATH: a store in a local file is backed up from a copy made at one instant. */
  store: string;
}

/** Who did something, and from where: what the audit trail records (no HTTP types). */
export interface Actor {
  type: "user" | "service_token" | "system";
  id: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
}

export const SYSTEM_ACTOR: Actor = {
  type: "system",
  id: "system",
  ip: null,
  user_agent: null,
  request_id: null,
};

/** Password hashing cost (identity/passwords.ts). */
export interface PasswordPolicy {
  /** log2 of scrypt's N. Tests lower it; production keeps 17. */
  log2N: number;
  /** The lowest zxcvbn score (0–4) a new password may have; absent: 3. */
  minScore?: number;
}

/**
 * A value sealed under a data key: base64 of the 96-bit IV, and of the ciphertext and its tag;
 * `kid` names the data key (absent: the owner's first key, from before keys were rotated).
 */
export interface Sealed {
  iv: string;
  data: string;
  kid?: string;
}

/** Whose data key seals a value: a tenant's id, or null for the platform's own. */
export type KeyOwner = string | null;

/** Whether the vault can open what it holds, and under which master key (health reports it). */
export interface VaultState {
  sealed: boolean;
  /** A short public name of the master key (vault/master_key.ts), null when sealed. */
  key_id: string | null;
  source: "env" | "file" | "memory" | null;
  /** STEWARD_MASTER_KEY_PREVIOUS's id, while a master rotation still needs it. */
  previous_key_id: string | null;
}

/** Envelope encryption (vault/vault.ts); `aad` binds a value to the record it belongs to. */
export interface Sealer {
  readonly state: VaultState;
  seal(kv: Deno.Kv, owner: KeyOwner, plain: Uint8Array<ArrayBuffer>, aad: string): Promise<Sealed>;
  open(kv: Deno.Kv, owner: KeyOwner, sealed: Sealed, aad: string): Promise<Uint8Array<ArrayBuffer>>;
  /** A key for one purpose (backups), derived from the master key. */
  derivedKey(purpose: string): Promise<CryptoKey>;
  /** The kid of the owner's current data key, read from the store (and sealed with next). */
  current(kv: Deno.Kv, owner: KeyOwner): Promise<string>;
  /** A new current data key; the replaced ones still open what they sealed. */
  rotate(kv: Deno.Kv, owner: KeyOwner): Promise<{ current: string; replaced: string[] }>;
  /** Destroys data keys (never the current one). */
  dropKeys(kv: Deno.Kv, owner: KeyOwner, kids: string[]): Promise<void>;
  /** Re-wraps the owner's data keys under the master key; how many it re-wrapped. */
  rewrap(kv: Deno.Kv, owner: KeyOwner): Promise<number>;
  /** The owner's data keys as stored, without opening them; null before the first use. */
  ring(kv: Deno.Kv, owner: KeyOwner): Promise<DataKeyRing | null>;
}

/**
 * A record holding sealed values, as a data key rotation re-seals it (vault/reseal.ts): each
 * context that seals lists its records this way.
 */
export interface SealedRecord<T = unknown> {
  entry: Deno.KvEntry<T>;
  /** Each sealed value the record holds, with the AAD that binds it. */
  fields: { sealed: Sealed; aad: string }[];
  /** The record with its sealed values replaced (in the order of `fields`). */
  with: (sealed: Sealed[]) => T;
  /** A record that expires keeps its deadline (ms from now). */
  expireIn?: number;
}

/** Lists the sealed records of an owner: one per context that seals (platform/vault_rotation.ts). */
export type SealedRecords = (kv: Deno.Kv, owner: KeyOwner) => AsyncIterable<SealedRecord>;

export interface DataKeyRing {
  /** The kid that seals. */
  current: string;
  keys: Record<string, WrappedDataKey>;
  /** When `current` began to seal. */
  since: string;
}

export interface WrappedDataKey {
  wrapped: Sealed;
  /** The master key that wrapped it (its id); "" for a first key of unknown master. */
  master_key_id: string;
  created_at: string;
}

/** The outside world as webhook delivery sees it: injected so tests need no network or DNS. */
export interface WebhookNetwork {
  /** WEBHOOK_ALLOW_PRIVATE_URLS: private addresses and http:// are allowed. */
  allowPrivateUrls: boolean;
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** Addresses of `host` for one record type; rejects (or answers []) when there are none. */
  resolveDns: (host: string, type: "A" | "AAAA") => Promise<string[]>;
}

/** One email ready to send. */
export interface OutgoingEmail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Message-ID, so a retried send is recognisable as the same message. */
  messageId: string;
}

/** Why a send failed; `permanent` when the server refused it for good (a 5xx reply). */
export interface SendFailure extends Error {
  permanent: boolean;
}

/** The platform's outgoing mail (STEWARD_SMTP_URL), or none: mail is then kept, not sent. */
export interface Mailer {
  /** False when no SMTP server is configured: messages stay in the development outbox. */
  readonly sends: boolean;
  /** The platform's sender (STEWARD_MAIL_FROM). */
  readonly from: string;
  /**
   * Hands the message to the SMTP server; resolves with its answer (`250 2.0.0 OK …`), rejects
   * with a SendFailure whose message holds the server's answer or the connection failure.
   */
  send(email: OutgoingEmail): Promise<string>;
  /** Closes pooled connections (shutdown). */
  close(): Promise<void>;
}

/** What the request middleware reports of one answered request. */
export type RequestRecord = Omit<RequestLog, "id" | "at" | "level"> & {
  /** A call of POST /v1/keys/verify (counted as a verification). */
  verification?: boolean;
};

/** The write-behind aggregator of request logs and daily traffic (usage/aggregator.ts). */
export interface TrafficRecorder {
  readonly options: { readonly retentionDays: number };
  /** False when analytics are shed: callers skip measuring the request and call drop(). */
  readonly collecting: boolean;
  /** Counts a request not collected because the aggregator is disabled. */
  drop(): void;
  /** Counts the request; true when its log entry is sampled (the caller then calls log()). */
  count(r: Pick<RequestRecord, "status" | "bytes_in" | "bytes_out" | "verification">): boolean;
  /** count(), and log() when sampled: for callers that hold the whole entry anyway. */
  record(r: RequestRecord): void;
  /** Counts bytes sent after the answer was recorded (a streamed body). */
  addBytesOut(bytes: number): void;
  /** Queues a log entry, whatever the sampling; returns its id. */
  log(entry: Omit<RequestLog, "id" | "at" | "level">): string;
  /** A traffic metric's count for `day` (YYYY-MM-DD) not written yet. */
  pendingTraffic(metric: string, day: string): number;
  /** Writes everything pending now. */
  flush(): Promise<void>;
  notePrune(deleted: number): void;
  status(): TrafficRecorderStatus;
  /** Changes settings while running (runtime configuration): the timers follow a new interval. */
  tune(change: { sampleRate?: number; retentionDays?: number; flushIntervalMs?: number }): void;
  /** Whether this process's writes keep up (the usage flush alert rules). */
  flushHealth(): FlushHealth;
}

/** How this process's counter and log writes keep up. */
export interface FlushHealth {
  /** Time since the last flush that succeeded, while writes wait for one; 0 when none wait. */
  lag_ms: number;
  /** Failed flushes in a row (of counters, or of logs to KV, whichever streak is longer). */
  errors_in_row: number;
}

/** GET /v1/admin/usage/aggregator-status: the aggregator's state, from memory. */
export interface TrafficRecorderStatus {
  enabled: boolean;
  flush_interval_ms: number;
  flush_max_entries: number;
  request_log_sample_rate: number;
  enqueued_deltas: number;
  dropped_when_disabled: number;
  sampled_logs: number;
  skipped_logs: number;
  dropped_logs: number;
  flushes: number;
  flush_errors: number;
  last_flush_at: string | null;
  last_flush_duration_ms: number | null;
  last_flush_bucket_count: number;
  last_flush_log_count: number;
  last_error: string | null;
  pending_buckets: number;
  pending_logs: number;
  prunes: number;
  last_prune_at: string | null;
  last_prune_rows_deleted: number;
}

/** The copy of logs, daily counters and audit events to Postgres (usage/pg_sync.ts). */
export interface AnalyticsCopy {
  readonly analytics: PgAnalytics;
  /** Runs a read on Postgres; an unreachable server is a 503, not a 500. */
  read<T>(query: (pg: PgAnalytics) => Promise<T>): Promise<T>;
  /** Notes a committed counter; the daily ones are copied at the next write. */
  touched(key: Deno.KvKey): void;
  status(): AnalyticsCopyStatus;
}

export interface AnalyticsCopyStatus {
  enabled: true;
  writes: number;
  write_errors: number;
  last_write_at: string | null;
  last_write_duration_ms: number | null;
  last_error: string | null;
  dropped_rows: number;
  logs_written: number;
  daily_rows_written: number;
  audit_events_copied: number;
  usage_items_copied: number;
  buffered: { logs: number; daily_counters: number };
  max_buffered: number;
}
