/**
 * Entry point: config → open KV → bootstrap → crons (module top level) → job runner → serve.
 * SIGTERM/SIGINT: stop accepting, drain in-flight requests, close KV, exit 0.
 */
import denoJson from "./deno.json" with { type: "json" };
import { type Config, ConfigError, loadConfig, pinnedSettings } from "./config.ts";
import { IpGuard } from "./domain/protection/ip_guard.ts";
import { QuotaLeases } from "./domain/keys/quota_leases.ts";
import { DEFAULT_REPUTATION } from "./domain/protection/ip_reputation.ts";
import { Aggregator } from "./domain/usage/aggregator.ts";
import { ensureSuperAdmin } from "./domain/platform/bootstrap.ts";
import { JOB_HANDLERS } from "./domain/platform/job_handlers.ts";
import { JobWorker } from "./domain/jobs/worker.ts";
import { MAINTENANCE_TASKS, runMaintenance } from "./domain/platform/maintenance.ts";
import { DEFAULT_PASSWORD_POLICY } from "./domain/identity/passwords.ts";
import { PgSync } from "./domain/usage/pg_sync.ts";
import { seedPlans } from "./domain/tenancy/plans.ts";
import { prepareLogins } from "./domain/identity/sessions.ts";
import { relocateSigningKeys } from "./domain/keys/signing_keys.ts";
import { backfillListCounts } from "./domain/platform/list_counts.ts";
import type { Services } from "./domain/shared/services.ts";
import { verifyItem } from "./domain/usage/stream.ts";
import { Vault } from "./domain/vault/vault.ts";
import {
  fromBase64,
  type MasterKey,
  MasterKeyError,
  resolveMasterKey,
} from "./domain/vault/master_key.ts";
import { rewrapAll } from "./domain/platform/vault_rotation.ts";
import { realNetwork } from "./domain/webhooks/targets.ts";
import { mailerFor } from "./domain/email/smtp.ts";
import { stripeAccess } from "./domain/billing/stripe_client.ts";
import { KvCache } from "./kv/cache.ts";
import { meterKv } from "./kv/metered.ts";
import { hasQueues, openKv } from "./kv/open.ts";
import { SumBuffer } from "./kv/sum_buffer.ts";
import { PgAnalytics } from "./pg/analytics.ts";
import { connectPostgres } from "./pg/client.ts";
import { migrate } from "./pg/migrations.ts";
import { createApp } from "./routes/app.ts";
import { RuntimeConfig } from "./domain/platform/runtime_config.ts";
import { PluginHooks } from "./domain/plugins/hooks.ts";

let config: Config;
try {
  config = loadConfig(Deno.env.toObject());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`steward: ${err.message}`);
  Deno.exit(1);
}

let masterKey: MasterKey;
try {
  masterKey = await resolveMasterKey(config.STEWARD_MASTER_KEY, config.STEWARD_KV_PATH);
} catch (err) {
  if (!(err instanceof MasterKeyError)) throw err;
  console.error(`steward: ${err.message}`);
  Deno.exit(1);
}
if (masterKey.generated && masterKey.path) {
  console.log(
    `Steward: STEWARD_MASTER_KEY is not set, so a master key was generated into ` +
      `${masterKey.path} (mode 0600); later starts use it. In production, set ` +
      `STEWARD_MASTER_KEY from a secret store instead, and keep the file out of backups of the store.`,
  );
}

const kv = await openKv(config.STEWARD_KV_PATH);
// Counts KV read and write units for the cost model (off the warm verify path, which reads none).
const meter = meterKv(kv);
const pg = config.DATABASE_URL ? connectPostgres(config.DATABASE_URL) : null;
const pgSync = pg
  ? new PgSync(kv, new PgAnalytics(pg), { maxBuffered: config.PG_BUFFER_MAX_ROWS })
  : null;
const cache = new KvCache(kv, {
  freshMs: config.STEWARD_VERIFY_CACHE_MS,
  maxEntries: config.STEWARD_VERIFY_CACHE_ENTRIES,
});
const counters = new SumBuffer(kv, {
  flushIntervalMs: config.USAGE_FLUSH_INTERVAL_MS,
  maxEntries: config.USAGE_FLUSH_MAX_ENTRIES,
  onCommitted: (key, amount) => {
    cache.adjust(key, amount);
    pgSync?.touched(key);
  },
  // A key's flushed verifications enter the usage stream in the commit of their sum.
  companion: verifyItem,
});
const aggregator = new Aggregator(counters, kv, {
  enabled: config.USAGE_AGGREGATOR_ENABLED,
  flushIntervalMs: config.USAGE_FLUSH_INTERVAL_MS,
  flushMaxEntries: config.USAGE_FLUSH_MAX_ENTRIES,
  sampleRate: config.REQUEST_LOG_SAMPLE_RATE,
  retentionDays: config.LOG_RETENTION_DAYS,
  pg: pgSync,
  meter,
});
const svc: Services = {
  kv,
  now: Date.now,
  // A copy: the runtime configuration changes its minimum score.
  passwords: { ...DEFAULT_PASSWORD_POLICY },
  sessions: {
    idleMs: config.STEWARD_SESSION_IDLE_MINUTES * 60_000,
    maxMs: config.STEWARD_SESSION_MAX_HOURS * 3_600_000,
  },
  cache,
  counters,
  aggregator,
  pg: pgSync,
  vault: new Vault(masterKey.bytes, masterKey.source, {
    previous: config.STEWARD_MASTER_KEY_PREVIOUS
      ? fromBase64(config.STEWARD_MASTER_KEY_PREVIOUS)
      : null,
  }),
  webhooks: realNetwork(config.WEBHOOK_ALLOW_PRIVATE_URLS),
  mailer: mailerFor(config.STEWARD_SMTP_URL, config.STEWARD_MAIL_FROM),
  brand: { platform: config.STEWARD_PLATFORM_NAME, publicUrl: config.STEWARD_PUBLIC_URL },
  backups: {
    dir: config.STEWARD_BACKUP_DIR,
    keep: config.STEWARD_BACKUP_KEEP,
    store: config.STEWARD_KV_PATH,
  },
  stripe: config.STRIPE_SECRET_KEY && config.STRIPE_WEBHOOK_SECRET
    ? stripeAccess(config.STRIPE_SECRET_KEY, config.STRIPE_WEBHOOK_SECRET, config.STRIPE_API_URL)
    : null,
  alertRules: config.STEWARD_ALERT_RULES,
};
// Plugins' hooks run on the Services they are part of; other processes' changes are followed.
const pluginHooks = new PluginHooks(svc);
svc.hooks = pluginHooks;
pluginHooks.start((err) =>
  console.error(JSON.stringify({
    level: "error",
    msg: "plugin hooks",
    error: err instanceof Error ? err.message : String(err),
  }))
);
if (!svc.mailer.sends) {
  console.log(
    "Steward: no SMTP server (STEWARD_SMTP_URL): mail is captured, not sent; " +
      "read it at GET /v1/admin/emails for 24 hours",
  );
}
if (pg) {
  // db-init at start (idempotent); an unreachable Postgres only degrades the analytics.
  await migrate(pg).then(
    (m) => m.applied.length && console.log(`Steward: Postgres schema now at ${m.version}`),
    (err) => console.error(`Steward: Postgres schema not checked: ${err.message}`),
  );
}
aggregator.start();
const instanceId = crypto.randomUUID();

for (const task of MAINTENANCE_TASKS) {
  Deno.cron(`steward ${task.name}`, task.schedule, async () => {
    const run = await runMaintenance(svc, task, instanceId);
    if (run) {
      console.log(
        JSON.stringify({ level: run.error ? "error" : "info", msg: "maintenance", ...run }),
      );
    }
  });
}

const bootstrap = await ensureSuperAdmin(svc, config.STEWARD_BOOTSTRAP_TOKEN);
if (bootstrap.status === "generated") {
  console.log(
    `\nSteward: no super-admin credential in the store, so one was created.\n` +
      `Bootstrap super-admin token (shown once — store it now):\n\n  ${bootstrap.secret}\n`,
  );
} else if (bootstrap.status === "registered") {
  console.log(
    `Steward: registered STEWARD_BOOTSTRAP_TOKEN as super-admin token ${bootstrap.token_id}`,
  );
}

if (config.STEWARD_MASTER_KEY_PREVIOUS) {
  // A master rotation: every data key re-wrapped with the new key, once (idempotent).
  const { owners, rewrapped } = await rewrapAll(svc);
  console.log(
    `Steward: re-wrapped ${rewrapped} data keys of ${owners} owners with master key ` +
      `${svc.vault.state.key_id}; STEWARD_MASTER_KEY_PREVIOUS is no longer needed`,
  );
}

const seeded = await seedPlans(svc);
if (seeded) console.log(`Steward: seeded ${seeded} standard plans`);

await prepareLogins(svc);
// Before serving: lists of older stores get their maintained counts (once, on any process).
const indexed = await backfillListCounts(svc);
if (indexed) console.log(`Steward: gave ${indexed} records their list indexes and counts`);
const relocated = await relocateSigningKeys(svc);
if (relocated) console.log(`Steward: moved ${relocated} signing keys to their own key family`);

// Jobs: KV queue wake-ups (where the store has queues) and a short sweep for the rest.
const jobs = new JobWorker(svc, JOB_HANDLERS, {
  sweepIntervalMs: config.JOB_SWEEP_INTERVAL_MS,
  onError: (err) =>
    console.error(JSON.stringify({
      level: "error",
      msg: "job runner",
      error: err instanceof Error ? err.message : String(err),
    })),
});
if (hasQueues(kv)) kv.listenQueue((message) => jobs.wake(message));
jobs.start();

// Blocks made by any process reach this one through a watch; its tally is written every second.
const ipGuard = new IpGuard(svc, { ...DEFAULT_REPUTATION }, (err) =>
  console.error(JSON.stringify({
    level: "error",
    msg: "ip reputation",
    error: err instanceof Error ? err.message : String(err),
  })));
await ipGuard.start(1_000);

// Settings changed through the API (GET/PATCH /v1/admin/config): applied now, then followed.
const runtime = new RuntimeConfig(svc, pinnedSettings(config, Deno.env.toObject()));
await runtime.refresh();
runtime.start((err) =>
  console.error(JSON.stringify({
    level: "error",
    msg: "runtime config",
    error: err instanceof Error ? err.message : String(err),
  }))
);

// Quotas hold across processes: each spends from blocks it leased (keys/quota_leases.ts).
const quotas = new QuotaLeases(svc);
quotas.start();

export const app = createApp({
  svc,
  config,
  runtime,
  quotas,
  version: denoJson.version,
  startedAt: Date.now(),
  probes: pg ? [{ name: "postgres", check: pg.ping }] : [],
  ipGuard,
});

// `deno serve` (serve.ts) owns the listener when STEWARD_SERVE=deno; `deno run` listens here.
const servedByDeno = Deno.env.get("STEWARD_SERVE") === "deno";
const server = servedByDeno ? null : Deno.serve({
  port: config.PORT,
  hostname: config.HOST,
  onListen: ({ hostname, port }) =>
    console.log(`Steward listening on http://${hostname}:${port} (docs: /docs)`),
}, app.fetch);

/**
 * Under `deno serve --parallel` every isolate gets the signal and drains its own buffers, but
 * `Deno.exit` ends them all: so each says when it is done, and each exits only once every peer
 * it has heard from is done too (or at the forced deadline).
 */
const peers = servedByDeno ? new BroadcastChannel("steward-workers") : null;
const peersRunning = new Set<string>();
/** Tells the peers this isolate is done; waits (for the last peer's message) while any runs. */
let peersDone: (() => Promise<never> | undefined) | undefined;
let drained = false;
if (peers) {
  const me = crypto.randomUUID();
  peers.onmessage = ({ data }: MessageEvent<{ hello?: string; done?: string }>) => {
    if (data.hello && !peersRunning.has(data.hello)) {
      peersRunning.add(data.hello);
      peers.postMessage({ hello: me }); // so an earlier peer learns of this one
    }
    if (data.done) peersRunning.delete(data.done);
    if (data.done && drained && peersRunning.size === 0) Deno.exit(0);
  };
  peers.postMessage({ hello: me });
  peersDone = () => {
    drained = true;
    peers.postMessage({ done: me });
    if (peersRunning.size > 0) return new Promise<never>(() => {});
  };
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`Steward: ${signal} received, draining`);
  const forced = setTimeout(() => Deno.exit(1), 10_000);
  await server?.shutdown();
  // Runs in flight finish (or are retried after their lease) before KV closes.
  await jobs.stop();
  await pluginHooks.stop();
  // Unspent quota goes back for the other processes (answers are all out by now).
  await quotas.stop().catch((err) =>
    console.error(`Steward: could not return leased quota: ${err.message}`)
  );
  await ipGuard.stop().catch((err) =>
    console.error(`Steward: could not write the last IP reputation counts: ${err.message}`)
  );
  // Everything counted before the last answer went out is written before KV closes.
  await aggregator.stop().catch((err) =>
    console.error(`Steward: could not write the last counters or logs: ${err.message}`)
  );
  await pg?.close();
  await svc.mailer.close();
  await runtime.stop();
  kv.close();
  await peersDone?.();
  clearTimeout(forced);
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
// deno serve says once that it listens; each isolate says when it can answer (and drain).
if (servedByDeno) console.log("Steward: ready");
