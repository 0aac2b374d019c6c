/** What domain functions run on: built once at start-up (main.ts, or the test harness). */
import type { KvCache } from "../../kv/cache.ts";
import type { Aggregator } from "../usage/aggregator.ts";
import type { SumBuffer } from "../../kv/sum_buffer.ts";
import type { PasswordPolicy } from "../identity/passwords.ts";
import type { PgSync } from "../usage/pg_sync.ts";
import type { Vault } from "../vault/vault.ts";
import type { WebhookNetwork } from "../webhooks/targets.ts";

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
  aggregator: Aggregator;
  /** The Postgres analytics store and what is waiting to be copied there (DATABASE_URL), or null. */
  pg: PgSync | null;
  /** Envelope encryption under STEWARD_MASTER_KEY (closed without one). */
  vault: Vault;
  /** How webhooks reach their endpoints (HTTP sender, DNS, the private-address switch). */
  webhooks: WebhookNetwork;
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

export const iso = (ms: number) => new Date(ms).toISOString();
