/**
 * IP reputation (platform protection): each source address's score, blocks of addresses and
 * ranges, and the allowlist. A change of the blocks or the allowlist is enforced by this process
 * at once (its guard reloads) and by the others through their watch.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  ACTIVITY_KINDS,
  blockByOperator,
  getReputation,
  liftByOperator,
  listReputations,
  type ReputationView,
} from "../../domain/protection/ip_reputation.ts";
import {
  BLOCK_SOURCES,
  getAllowlist,
  type IpAllowlist,
  type IpBlock,
  listBlocks,
  MAX_ALLOWLIST_ENTRIES,
  replaceAllowlist,
} from "../../domain/protection/ip_rules.ts";
import type { AppEnv } from "../context.ts";
import { skipOf } from "../../kv/list.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import {
  envelope,
  IdParams,
  jsonBody,
  jsonResponse,
  listEnvelope,
  PageQuery,
  QueryBoolean,
  Text,
  Timestamp,
} from "../schemas.ts";
import { maskIp } from "../views.ts";

type Ctx = Context<AppEnv>;
const BLOCK_ID = "ipb_01JQ3V5W7X9Y1Z3A5B7C9D1E3X";
const IP = "198.51.100.23";
const AT = "2026-03-01T12:00:00.000Z";

const Activity = z.object(
  Object.fromEntries(ACTIVITY_KINDS.map((k) => [k, z.number().int().openapi({ example: 0 })])),
).openapi("IpActivity", {
  description: "Failed logins, failed token authentications, 429s, other 4xx answers, and " +
    "requests refused while blocked.",
  example: {
    login_failures: 18,
    auth_failures: 2,
    rate_limited: 4,
    client_errors: 6,
    blocked_requests: 0,
  },
});

const HistoryEntry = z.object({
  id: z.string().openapi({ example: BLOCK_ID }),
  source: z.enum(BLOCK_SOURCES).openapi({ example: "auto" }),
  reason: z.string().openapi({ example: "reputation score 107 reached 100" }),
  score: z.number().nullable().openapi({ example: 107 }),
  started_at: z.string().openapi({ example: AT }),
  expires_at: z.string().nullable().openapi({ example: "2026-03-01T12:15:00.000Z" }),
  lifted_at: z.string().nullable().openapi({ example: null }),
}).openapi("IpBlockHistoryEntry");

const ReputationSchema = z.object({
  ip: z.string().openapi({ example: IP }),
  score: z.number().openapi({
    description: "The weighted sum of the last 15 minutes' activity: 5 per failed login or " +
      "failed token authentication, 1 per 429, 0.5 per other 4xx. At the threshold " +
      "(`STEWARD_IP_BLOCK_SCORE`, default 100) the address is blocked automatically.",
    example: 107,
  }),
  window: Activity.openapi({ description: "The last 15 minutes." }),
  totals: Activity.openapi({ description: "Since the record began (it lasts 30 days idle)." }),
  first_seen_at: z.string().nullable().openapi({ example: "2026-03-01T11:52:00.000Z" }),
  last_seen_at: z.string().nullable().openapi({ example: AT }),
  blocked: z.boolean().openapi({ example: true }),
  block_id: z.string().nullable().openapi({
    description: "The block in force on the address (its own, or a range's).",
    example: BLOCK_ID,
  }),
  blocked_until: z.string().nullable().openapi({
    description: "When that block ends; null while not blocked or blocked until lifted.",
    example: "2026-03-01T12:15:00.000Z",
  }),
  auto_blocks: z.number().int().openapi({
    description: "Automatic blocks in a row, each within a day of the last: the next one " +
      "lasts twice as long as the last.",
    example: 1,
  }),
  blocks: z.array(HistoryEntry).openapi({ description: "Blocks of this address, newest first." }),
}).openapi("IpReputation");

const BlockSchema = z.object({
  id: z.string().openapi({ example: BLOCK_ID }),
  cidr: z.string().openapi({
    description: "The blocked range, host bits cleared (`/32` or `/128`: one address).",
    example: `${IP}/32`,
  }),
  ip: z.string().nullable().openapi({
    description: "The address, for a block of one.",
    example: IP,
  }),
  reason: z.string().openapi({ example: "credential stuffing from this host" }),
  source: z.enum(BLOCK_SOURCES).openapi({
    description: "`auto`: set by the reputation score; `manual`: by an operator.",
    example: "manual",
  }),
  score: z.number().nullable().openapi({ example: null }),
  created_at: z.string().openapi({ example: AT }),
  created_by: z.string().openapi({ example: "usr_01JQ3V5W7X9Y1Z3A5B7C9D1E3G" }),
  expires_at: z.string().nullable().openapi({
    description: "Null: until lifted.",
    example: "2026-03-02T12:00:00.000Z",
  }),
}).openapi("IpBlock");

const AllowlistEntrySchema = z.strictObject({
  cidr: z.string().min(1).max(64).openapi({
    description: "An address or a range (`10.0.0.0/8`, `2001:db8::/32`).",
    example: "10.0.0.0/8",
  }),
  note: Text(200).nullable().optional().openapi({ example: "office VPN" }),
});

const AllowlistSchema = z.object({
  entries: z.array(z.object({
    cidr: z.string().openapi({ example: "10.0.0.0/8" }),
    note: z.string().nullable().openapi({ example: "office VPN" }),
  })),
  updated_at: z.string().nullable().openapi({ example: AT }),
  updated_by: z.string().nullable().openapi({ example: "usr_01JQ3V5W7X9Y1Z3A5B7C9D1E3G" }),
}).openapi("IpAllowlist");

const OffsetQuery = {
  limit: PageQuery.limit,
  offset: PageQuery.offset,
  page: PageQuery.page,
};

/** Support staff see addresses masked, as everywhere else. */
const masked = <T extends { ip: string | null }>(c: Ctx, v: T): T =>
  c.get("principal").masked && v.ip ? { ...v, ip: maskIp(v.ip) } : v;
const blockView = (c: Ctx) => (b: IpBlock): IpBlock =>
  c.get("principal").masked ? { ...masked(c, b), cidr: maskIp(b.cidr) } : b;
const allowlistView = (c: Ctx) => (a: IpAllowlist): IpAllowlist =>
  c.get("principal").masked
    ? { ...a, entries: a.entries.map((e) => ({ ...e, cidr: maskIp(e.cidr) })) }
    : a;

/**
 * An offset page in the list envelope: these lists are sorted in memory (no cursor), and their
 * items are views, not stored records (no versionstamp).
 */
function offsetPage<T, V>(
  c: Ctx,
  found: { items: T[]; total: number; total_is_estimate?: true },
  q: { limit: number; offset?: number; page?: number },
  view: (item: T) => V,
) {
  const items = found.items.map((value) => ({ value, versionstamp: "" }));
  const has_more = skipOf(q) + items.length < found.total;
  return okList(c, { ...found, items, has_more, next_cursor: null }, q.limit, view);
}

const tags = ["IP reputation"];

export function ipReputationRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/ip-reputation",
      tags,
      summary: "List source addresses, worst score first, with their total",
      description: "Addresses with recent error answers, failed logins or blocks (a record " +
        "lasts 30 days after its last activity). Scores are those of the last 15 minutes, " +
        "computed now; up to 10,000 records are read (beyond, `total_is_estimate`).",
      request: {
        query: z.strictObject({
          ...OffsetQuery,
          blocked: QueryBoolean.optional().openapi({ description: "Only blocked, or unblocked." }),
          min_score: z.coerce.number().min(0).optional().openapi({
            type: "number",
            description: "Only addresses scoring at least this.",
          }),
        }),
      },
      responses: { 200: jsonResponse(listEnvelope(ReputationSchema), "A page of addresses.") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const found = await listReputations(
        c.get("svc"),
        c.get("deps").ipGuard.rules,
        { blocked: q.blocked, min_score: q.min_score },
        skipOf(q),
        q.limit,
      );
      return offsetPage(c, found, q, (v) => masked<ReputationView>(c, v));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/ip-reputation/{ip}",
      tags,
      summary: "Get an address's reputation: counts, score and blocks",
      description: "An address never seen answers with zero counts (and any range block on it).",
      request: {
        params: z.strictObject({
          ip: z.string().min(2).max(64).openapi({
            param: { name: "ip", in: "path" },
            description: "An IPv4 or IPv6 address.",
            example: IP,
          }),
        }),
      },
      responses: { 200: jsonResponse(envelope(ReputationSchema), "The address's reputation.") },
    }),
    async (c) => {
      const found = await getReputation(
        c.get("svc"),
        c.get("deps").ipGuard.rules,
        c.req.valid("param").ip,
      );
      return ok(c, masked(c, found.value));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/ip-blocks",
      tags,
      summary: "List the blocks in force, oldest first, with their total",
      request: {
        query: z.strictObject({ ...OffsetQuery, source: z.enum(BLOCK_SOURCES).optional() }),
      },
      responses: { 200: jsonResponse(listEnvelope(BlockSchema), "A page of blocks.") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const found = await listBlocks(c.get("svc"), { source: q.source }, skipOf(q), q.limit);
      return offsetPage(c, found, q, blockView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/system/ip-blocks",
      tags,
      summary: "Block an address or a range",
      description: "Requests from it answer 403 before authentication, on every route, in " +
        "every process (within a second). The allowlist wins over a block. A block covering " +
        "the caller's own address is refused (422).",
      request: {
        body: jsonBody(
          z.strictObject({
            ip: z.string().min(2).max(64).optional().openapi({ example: IP }),
            cidr: z.string().min(2).max(64).optional().openapi({
              description: "A range instead of one address.",
              example: "198.51.100.0/24",
            }),
            reason: Text(500).openapi({ example: "credential stuffing from this host" }),
            expires_at: Timestamp.optional().openapi({
              description: "When the block ends; omitted: until lifted.",
              example: "2026-03-02T12:00:00.000Z",
            }),
          }).openapi("NewIpBlock", {
            example: {
              ip: IP,
              reason: "credential stuffing from this host",
              expires_at: "2026-03-02T12:00:00.000Z",
            },
          }),
        ),
      },
      responses: { 201: jsonResponse(envelope(BlockSchema), "The block.") },
    }),
    async (c) => {
      const block = await blockByOperator(c.get("svc"), actorOf(c), c.req.valid("json"));
      await c.get("deps").ipGuard.reload();
      return okRecord(c, block, blockView(c), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/admin/system/ip-blocks/{id}",
      tags,
      summary: "Lift a block",
      description: "Lifting a block of one address also clears its last 15 minutes, so it is " +
        "not blocked again at once.",
      request: { params: IdParams("ipb") },
      responses: { 200: jsonResponse(envelope(BlockSchema), "The block, lifted.") },
    }),
    async (c) => {
      const block = await liftByOperator(
        c.get("svc"),
        actorOf(c),
        c.req.valid("param").id,
        ifMatch(c),
      );
      await c.get("deps").ipGuard.reload();
      return okRecord(c, block, blockView(c));
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/ip-allowlist",
      tags,
      summary: "Get the allowlist",
      description: "Addresses and ranges never blocked, automatically or by hand.",
      responses: { 200: jsonResponse(envelope(AllowlistSchema), "The allowlist.") },
    }),
    async (c) => okRecord(c, await getAllowlist(c.get("svc")), allowlistView(c)),
  );

  app.openapi(
    defineRoute({
      method: "put",
      path: "/v1/admin/system/ip-allowlist",
      tags,
      summary: "Replace the allowlist",
      description: "Entries are normalized (host bits cleared) and kept once each. `If-Match` " +
        '(the ETag read; `"0"` before the first write) guards against a lost update.',
      request: {
        body: jsonBody(
          z.strictObject({
            entries: z.array(AllowlistEntrySchema).max(MAX_ALLOWLIST_ENTRIES),
          }).openapi("IpAllowlistUpdate", {
            example: { entries: [{ cidr: "10.0.0.0/8", note: "office VPN" }] },
          }),
        ),
      },
      responses: { 200: jsonResponse(envelope(AllowlistSchema), "The allowlist.") },
    }),
    async (c) => {
      const { entries } = c.req.valid("json");
      const list = await replaceAllowlist(
        c.get("svc"),
        actorOf(c),
        entries.map((e) => ({ cidr: e.cidr, note: e.note ?? null })),
        ifMatch(c),
      );
      await c.get("deps").ipGuard.reload();
      return okRecord(c, list, allowlistView(c));
    },
  );

  return app;
}
