/** Building responses in the API's envelope, and reading what every handler needs from a request. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type Cidr, inCidrs, isIpLiteral } from "../domain/shared/ip_address.ts";
import type { Actor } from "../domain/shared/services.ts";
import type { Page } from "../kv/list.ts";
import type { Versioned } from "../kv/table.ts";
import type { AppEnv } from "./context.ts";
import { maskMetadata } from "./views.ts";

type Ctx = Context<AppEnv>;

const NON_ASCII = /[\u0080-\uffff]/;
const encoder = new TextEncoder();

/** The UTF-8 size of `text`: its length unless it holds non-ASCII characters (rare in answers). */
export const byteLength = (text: string) =>
  NON_ASCII.test(text) ? encoder.encode(text).length : text.length;

/** Data as the caller may see it: masked metadata for support staff (routes/views.ts). */
const shown = <T>(c: Ctx, data: T): T => c.get("principal")?.masked ? maskMetadata(data) : data;

/** `{ success, data, meta }`, with the record's versionstamp as its ETag when given. */
export function ok<T, S extends ContentfulStatusCode = 200>(
  c: Ctx,
  data: T,
  status?: S,
  etag?: string,
) {
  if (etag) c.header("ETag", `"${etag}"`);
  return c.json(
    { success: true as const, data: shown(c, data), meta: { request_id: c.get("requestId") } },
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
  page: Page<T> & { total?: number; total_is_estimate?: boolean },
  limit: number,
  view: (value: T) => V,
) {
  return c.json({
    success: true as const,
    data: shown(c, page.items.map((i) => view(i.value))),
    meta: { request_id: c.get("requestId") },
    pagination: {
      limit,
      next_cursor: page.next_cursor,
      has_more: page.has_more,
      total: page.total,
      ...(page.total_is_estimate ? { total_is_estimate: true } : {}),
    },
  }, 200);
}

/** The versionstamp named by `If-Match` (quotes and a weak `W/` prefix are tolerated). */
export function ifMatch(c: Ctx): string | undefined {
  const header = c.req.header("If-Match")?.trim();
  if (!header || header === "*") return undefined;
  return header.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/**
 * The client's address: the peer Deno.serve saw, unless that peer is a trusted proxy
 * (STEWARD_TRUSTED_PROXIES). Then X-Forwarded-For is read from the right, skipping the trusted
 * proxies, and its nearest other address counts: hops further left were written by the client
 * and prove nothing.
 */
export function clientIp(c: Ctx): string | null {
  return clientAddress(
    c.env,
    c.req.header("X-Forwarded-For"),
    c.get("deps").config.STEWARD_TRUSTED_PROXIES,
  );
}

/** clientIp from Deno.serve's connection info, for code that has no context (verify). */
export function clientAddress(
  info: unknown,
  forwardedFor: string | null | undefined,
  trusted: readonly Cidr[],
): string | null {
  const peer = (info as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname ??
    null;
  if (!peer || trusted.length === 0 || !inCidrs(peer, trusted)) return peer;
  const hops = (forwardedFor ?? "").split(",").map((h) => h.trim());
  let client = peer;
  for (let i = hops.length - 1; i >= 0 && inCidrs(client, trusted); i--) {
    if (!isIpLiteral(hops[i])) break;
    client = hops[i];
  }
  return client;
}

/** Where a request comes from, as the audit trail records it (also before anyone is known). */
export function originOf(c: Ctx): Omit<Actor, "type" | "id"> {
  return {
    ip: clientIp(c),
    user_agent: c.req.header("User-Agent")?.slice(0, 512) ?? null,
    request_id: c.get("requestId"),
  };
}

/** The caller as the audit trail records it. */
export function actorOf(c: Ctx): Actor {
  return { type: c.get("principal").type, id: c.get("principal").id, ...originOf(c) };
}
