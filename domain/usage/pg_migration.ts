/**
 * Setting up the Postgres analytics store: the schema (db-init) and the copy of what KV already
 * holds (request logs, the audit trail, the usage stream's items, daily usage and traffic
 * counters). Each time-ordered family is walked from a cursor kept in Postgres, moved after each
 * batch, so an interrupted run resumes where it stopped and a second run copies nothing twice;
 * counters are copied as absolute values, which Postgres only ever raises.
 */
import { keys } from "../../kv/keys.ts";
import { type PgAnalytics } from "../../pg/analytics.ts";
import { entriesOf, type LogPage } from "./log_pages.ts";
import { migrate } from "../../pg/migrations.ts";
import { conflict } from "../shared/errors.ts";
import {
  AUDIT_COPY,
  type CopiedFamily,
  copyFamily,
  dailyRowOf,
  USAGE_ITEM_COPY,
} from "./pg_sync.ts";
import type { AnalyticsCopy, Services } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";

const BATCH = 500;

/** Request logs written to KV (before Postgres was configured), each page copied as its entries. */
const LOG_COPY: CopiedFamily<LogPage> = {
  name: "request_logs",
  base: keys.requestLogs(),
  idPrefix: "log",
  write: (pg, pages) => pg.insertLogs(pages.flatMap(entriesOf)),
};

function postgresOf(svc: Services): AnalyticsCopy {
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
    usage_events: number;
    usage_daily: number;
    traffic_daily: number;
  };
}

export function migrateKvToPostgres(svc: Services): Promise<MigrationReport> {
  return postgresOf(svc).read(async (pg) => ({
    schema_version: (await migrate(pg.store)).version,
    copied: {
      request_logs: await copyHistory(svc.kv, pg, LOG_COPY),
      audit_events: await copyHistory(svc.kv, pg, AUDIT_COPY),
      usage_events: await copyHistory(svc.kv, pg, USAGE_ITEM_COPY),
      usage_daily: await copyCounters(svc.kv, pg, await tenantUsagePrefixes(svc.kv)),
      traffic_daily: await copyCounters(svc.kv, pg, [["traffic"]]),
    },
  }));
}

/** Copies a family from where the last run stopped; returns how many records. */
async function copyHistory<T extends { id: string }>(
  kv: Deno.Kv,
  pg: PgAnalytics,
  family: CopiedFamily<T>,
): Promise<number> {
  const cursorName = `migrate:${family.name}`;
  const after = await pg.cursor(cursorName);
  const copied = await copyFamily(
    kv,
    pg,
    family,
    // Just after the cursor's id: "\0" sorts first among what can follow it.
    after ? `${after}\0` : `${family.idPrefix}_`,
    () => true,
    (ids) => pg.setCursor(cursorName, ids.at(-1)!),
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
