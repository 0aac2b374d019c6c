/**
 * The analytics schema, as numbered migrations. `migrate` applies those not yet recorded in
 * `schema_migrations`, in one transaction, under an advisory lock so two instances
 * starting together cannot apply one twice. Running it again changes nothing.
 */
import type { PgStore } from "./client.ts";

interface Migration {
  version: number;
  name: string;
  statements: string[];
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "request logs, audit copy, usage events, daily counters",
    statements: [
      `create table request_logs (
        id text primary key,
        at timestamptz not null,
        method text not null,
        route text,
        path text not null,
        status integer not null,
        duration_ms double precision not null,
        bytes_in bigint not null,
        bytes_out bigint,
        tenant_id text,
        principal_id text,
        ip text,
        user_agent text,
        request_id text not null,
        level text not null,
        error_code text,
        test boolean not null default false
      )`,
      `create index request_logs_tenant on request_logs (tenant_id, id)`,
      `create table audit_events (
        id text primary key,
        tenant_id text,
        actor_id text not null,
        action text not null,
        resource_type text not null,
        resource_id text not null,
        user_ids text[] not null,
        -- json, not jsonb: the event comes back exactly as KV holds it, keys in order.
        event json not null
      )`,
      `create index audit_events_tenant on audit_events (tenant_id, id)`,
      `create index audit_events_users on audit_events using gin (user_ids)`,
      // The usage stream's items: accepted events and flushed verification deltas.
      `create table usage_events (
        id text primary key,
        tenant_id text not null,
        key_id text,
        metric text not null,
        quantity bigint not null,
        occurred_at timestamptz not null,
        source text not null,
        event_id text
      )`,
      `create index usage_events_tenant on usage_events (tenant_id, metric, occurred_at)`,
      // Daily counters hold KV's absolute values; only ever raised (see domain/usage/pg_sync.ts).
      `create table usage_daily (
        tenant_id text not null,
        metric text not null,
        day date not null,
        quantity bigint not null,
        primary key (tenant_id, metric, day)
      )`,
      `create table traffic_daily (
        metric text not null,
        day date not null,
        quantity bigint not null,
        primary key (metric, day)
      )`,
      // Where each copy from KV got to (the audit tail, the KV-to-Postgres migration).
      `create table sync_cursors (name text primary key, position text not null)`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Applies what is missing; returns the versions applied now and the version reached. */
export async function migrate(pg: PgStore): Promise<{ applied: number[]; version: number }> {
  const { sql } = pg;
  await sql`create schema if not exists ${sql(pg.schema)}`;
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`steward-migrate:${pg.schema}`}))`;
    await tx`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`;
    const done = new Set(
      (await tx<{ version: number }[]>`select version from schema_migrations`).map((r) =>
        r.version
      ),
    );
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      for (const statement of m.statements) await tx.unsafe(statement);
      await tx`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return { applied, version: SCHEMA_VERSION };
  });
}
