/**
 * Which budget each route spends (domain/access/api_rate_limit.ts), next to the access table:
 * GET reads, POST/PUT/PATCH/DELETE write, and the routes below are `expensive` or `ingest`
 * whatever their method. Routes left out of the limits entirely are listed too. routes/route.ts reads this
 * table for every route, and refuses a key that names no route of routes/permissions.ts.
 */
import type { PrincipalBudget } from "../domain/access/api_rate_limit.ts";
import { ROUTE_ACCESS, routeKey } from "./permissions.ts";

/** Exports, the usage stream, reconciliation, backups, vault rotations, bulk migrations. */
export const EXPENSIVE_ROUTES: ReadonlySet<string> = new Set([
  "GET /v1/admin/logs/export",
  "GET /v1/admin/audit/export",
  "GET /v1/admin/usage/stream",
  "POST /v1/admin/finance/reconcile",
  "POST /v1/admin/vault/backups",
  "POST /v1/admin/vault/rotate-all",
  "POST /v1/admin/maintenance/migrate-kv-to-postgres",
]);

/** Usage ingestion: gateways send batches on their own hot path, far more often than writes. */
export const INGEST_ROUTES: ReadonlySet<string> = new Set(["POST /v1/usage/events"]);

/**
 * Not limited: probes, and verify (which has per-key limits of its own; a call without valid
 * credentials still spends its IP's unauthenticated budget). /docs and /openapi.json are not
 * defineRoute routes and never pass the limiter.
 */
export const UNLIMITED_ROUTES: ReadonlySet<string> = new Set([
  "GET /health/live",
  "GET /health/ready",
  "POST /v1/keys/verify",
]);

for (const key of [...EXPENSIVE_ROUTES, ...INGEST_ROUTES, ...UNLIMITED_ROUTES]) {
  if (!ROUTE_ACCESS[key]) throw new Error(`routes/rate_limits.ts: ${key} is no route`);
}

/** The budget a route spends, or null when it is not limited. */
export function budgetOf(method: string, path: string): PrincipalBudget | null {
  const key = routeKey(method, path);
  if (UNLIMITED_ROUTES.has(key)) return null;
  if (EXPENSIVE_ROUTES.has(key)) return "expensive";
  if (INGEST_ROUTES.has(key)) return "ingest";
  return method.toUpperCase() === "GET" ? "read" : "write";
}
