/**
 * Setting up the Postgres analytics store: the schema (db-init) and the copy of what KV already
 * holds (request logs, the audit trail, daily usage and traffic counters). The copy walks each
 * family from a cursor kept in Postgres and moves it after each batch, so an interrupted run
 * resumes where it stopped and a second run copies nothing twice; counters are copied as
 * absolute values, which Postgres only ever raises.
 */
import { keys } from "../kv/keys.ts";
import type { PgAnalytics } from "../pg/analytics.ts";
import { migrate } from "../pg/migrations.ts";
import { conflict } from "./errors.ts";
import { copyAudit, dailyRowOf, type PgSync } from "./pg_sync.ts";
import type { RequestLog } from "./request_logs.ts";
import type { Services } from "./services.ts";
import type { Tenant } from "./tenants.ts";

const BATCH = 500;

function postgresOf(svc: Services): PgSync {
  if (!svc.pg) throw conflict("Postgres is not configured: set DATABASE_URL");
  return svc.pg;
}

/** Applies the schema migrations not yet applied. */
export function initPostgres(svc: Services) {
  return postgresOf(svc).read((pg) => migrate(pg.store));
}

export interface MigrationReport {
  schema_version: number;
  /** Rows written by this run, per table. */
  copied: {
    request_logs: number;
    audit_events: number;
    usage_daily: number;
    traffic_daily: number;
  };
}

export function migrateKvToPostgres(svc: Services): Promise<MigrationReport> {
  return postgresOf(svc).read(async (pg) => ({
    schema_version: (await migrate(pg.store)).version,
    copied: {
      request_logs: await copyLogs(svc.kv, pg),
      audit_events: await copyTrail(svc.kv, pg),
      usage_daily: await copyCounters(svc.kv, pg, await tenantUsagePrefixes(svc.kv)),
      traffic_daily: await copyCounters(svc.kv, pg, [["traffic"]]),
    },
  }));
}

const LOGS_CURSOR = "migrate:request_logs";
const AUDIT_CURSOR = "migrate:audit";

async function copyLogs(kv: Deno.Kv, pg: PgAnalytics): Promise<number> {
  const after = await pg.cursor(LOGS_CURSOR);
  const base = keys.requestLogs();
  // Just after the cursor's id: "\0" sorts first among what can follow it.
  const selector = { start: [...base, after ? `${after}\0` : "log_"], end: [...base, "log_~"] };
  let batch: RequestLog[] = [];
  let copied = 0;
  const send = async () => {
    copied += await pg.insertLogs(batch);
    await pg.setCursor(LOGS_CURSOR, batch.at(-1)!.id);
    batch = [];
  };
  for await (const e of kv.list<RequestLog>(selector, { batchSize: BATCH })) {
    batch.push(e.value);
    if (batch.length === BATCH) await send();
  }
  if (batch.length) await send();
  return copied;
}

async function copyTrail(kv: Deno.Kv, pg: PgAnalytics): Promise<number> {
  const after = await pg.cursor(AUDIT_CURSOR);
  const copied = await copyAudit(
    kv,
    pg,
    after ? `${after}\0` : "aud_",
    () => true,
    (ids) => pg.setCursor(AUDIT_CURSOR, ids.at(-1)!),
  );
  return copied.count;
}

async function tenantUsagePrefixes(kv: Deno.Kv): Promise<Deno.KvKey[]> {
  const prefixes: Deno.KvKey[] = [];
  for await (const e of kv.list<Tenant>({ prefix: keys.tenants() })) {
    prefixes.push(["t", e.value.id, "usage_daily"]);
  }
  return prefixes;
}

/** Copies every daily counter under `prefixes`; returns the rows Postgres did not have yet. */
async function copyCounters(kv: Deno.Kv, pg: PgAnalytics, prefixes: Deno.KvKey[]) {
  let copied = 0;
  for (const prefix of prefixes) {
    let rows = [];
    for await (const e of kv.list<Deno.KvU64>({ prefix }, { batchSize: BATCH })) {
      const row = dailyRowOf(e.key, Number(e.value.value));
      if (row) rows.push(row);
      if (rows.length === BATCH) {
        copied += await pg.upsertDaily(rows);
        rows = [];
      }
    }
    copied += await pg.upsertDaily(rows);
  }
  return copied;
}
