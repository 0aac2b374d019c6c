/** The optional Postgres connection (DATABASE_URL): the only module that imports npm:postgres. */
import postgres from "postgres";

export interface PgStore {
  sql: postgres.Sql;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function connectPostgres(url: string): PgStore {
  const sql = postgres(url, { max: 10, idle_timeout: 30, connect_timeout: 5, onnotice: () => {} });
  return {
    sql,
    ping: async () => {
      await sql`select 1`;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
