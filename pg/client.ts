/** The optional Postgres connection (DATABASE_URL): the only module that imports npm:postgres. */
import postgres from "postgres";

export type Sql = postgres.Sql;
export type Json = postgres.JSONValue;

export interface PgStore {
  sql: Sql;
  /** The schema Steward's tables live in (`public` unless told otherwise). */
  schema: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** `schema` puts every table in that schema (tests use one each, so they never collide). */
export function connectPostgres(url: string, opts: { schema?: string } = {}): PgStore {
  const schema = opts.schema ?? "public";
  const sql = postgres(url, {
    max: 10,
    idle_timeout: 30,
    connect_timeout: 5,
    onnotice: () => {},
    // bigint columns come back as numbers: every counter here stays far below 2^53.
    types: {
      bigint: { to: 20, from: [20], parse: Number, serialize: (n: number) => String(n) },
    },
    connection: { search_path: schema },
    transform: { undefined: null },
  });
  return {
    sql,
    schema,
    ping: async () => {
      await sql`select 1`;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

/** Connection-level failures (Postgres down, unreachable, restarting), as opposed to bad SQL. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P03", // cannot_connect_now
]);

export const isUnreachable = (err: unknown): boolean =>
  typeof err === "object" && err !== null &&
  UNREACHABLE.has(String((err as { code?: unknown }).code));
