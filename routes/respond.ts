/** Building responses in the API's envelope, and reading what every handler needs from a request. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Actor } from "../domain/shared/services.ts";
import type { Page } from "../kv/list.ts";
import type { Versioned } from "../kv/table.ts";
import type { AppEnv } from "./context.ts";

type Ctx = Context<AppEnv>;

/** `{ success, data, meta }`, with the record's versionstamp as its ETag when given. */
export function ok<T, S extends ContentfulStatusCode = 200>(
  c: Ctx,
  data: T,
  status?: S,
  etag?: string,
) {
  if (etag) c.header("ETag", `"${etag}"`);
  return c.json(
    { success: true as const, data, meta: { request_id: c.var.requestId } },
    (status ?? 200) as S,
  );
}

/** A versioned record in the envelope, with its ETag. */
export function okRecord<T, V, S extends ContentfulStatusCode = 200>(
  c: Ctx,
  record: Versioned<T>,
  view: (value: T) => V,
  status?: S,
) {
  return ok(c, view(record.value), status, record.versionstamp);
}

export function okList<T, V>(
  c: Ctx,
  page: Page<T> & { total?: number },
  limit: number,
  view: (value: T) => V,
) {
  return c.json({
    success: true as const,
    data: page.items.map((i) => view(i.value)),
    meta: { request_id: c.var.requestId },
    pagination: {
      limit,
      next_cursor: page.next_cursor,
      has_more: page.has_more,
      total: page.total,
    },
  }, 200);
}

/** The versionstamp named by `If-Match` (quotes and a weak `W/` prefix are tolerated). */
export function ifMatch(c: Ctx): string | undefined {
  const header = c.req.header("If-Match")?.trim();
  if (!header || header === "*") return undefined;
  return header.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** The peer address Deno.serve saw (X-Forwarded-For is spoofable, so it is not trusted). */
export function clientIp(c: Ctx): string | null {
  const info = (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr;
  return info?.hostname ?? null;
}

/** Where a request comes from, as the audit trail records it (also before anyone is known). */
export function originOf(c: Ctx): Omit<Actor, "type" | "id"> {
  return {
    ip: clientIp(c),
    user_agent: c.req.header("User-Agent")?.slice(0, 512) ?? null,
    request_id: c.var.requestId,
  };
}

/** The caller as the audit trail records it. */
export function actorOf(c: Ctx): Actor {
  return { type: c.var.principal.type, id: c.var.principal.id, ...originOf(c) };
}
