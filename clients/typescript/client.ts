/**
 * `createSteward`: an openapi-fetch client typed by `schema.gen.ts` (paths, parameters, bodies
 * and answers come from Steward's OpenAPI document), with bearer auth, an `Idempotency-Key` on
 * every POST, bounded retries (retry.ts), errors thrown as `StewardError`, and `paginate`, an
 * async iterator over every item of a list.
 *
 *   const steward = createSteward({ url: "https://steward.example.com", token });
 *   const tenant = await unwrap(steward.POST("/v1/tenants", { body: { name: "Acme", slug: "acme" } }));
 *   for await (const t of steward.paginate("/v1/tenants", { query: { status: "active" } })) …
 */
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./schema.gen.ts";
import { type FetchLike, type RetryOptions, stewardFetch } from "./retry.ts";

export interface StewardOptions {
  /** Steward's base URL (`https://steward.example.com`). */
  url: string;
  /** A service token, a session token or a tenant's token, sent as `Authorization: Bearer`. */
  token: string;
  /** The fetch to send requests with (default the global one). */
  fetch?: FetchLike;
  /** Retries on 429, 5xx and network errors (default 3 attempts, waits of at most 10 s). */
  retries?: RetryOptions | false;
  /**
   * A random `Idempotency-Key` on every POST, the same for all retries of that call (default
   * true). A call may send its own key in its `headers` (or `params.header`).
   */
  idempotency?: boolean;
}

/** The JSON body of an operation's 200 answer. */
type OkBody<Op> = Op extends { responses: { 200: { content: { "application/json": infer B } } } }
  ? B
  : never;
type GetOperation<P extends keyof paths> = paths[P] extends { get: infer Op } ? Op : never;

/** Every path whose GET answers a page: `{ data: [...], pagination }`. */
export type ListPath = {
  [P in keyof paths]: OkBody<GetOperation<P>> extends { data: unknown[]; pagination: unknown } ? P
    : never;
}[keyof paths];

/** One item of the list at `P`. */
export type ListItem<P extends ListPath> = OkBody<GetOperation<P>> extends { data: (infer I)[] } ? I
  : never;

type ListParameters<P extends ListPath> = GetOperation<P> extends { parameters: infer Prm } ? Prm
  : never;

type QueryOf<Prm> = Prm extends { query?: infer Q } ? Q : never;

/** The list's parameters; `cursor` is the iterator's, and `limit` defaults to 100 (the maximum). */
export type PageParams<P extends ListPath> =
  & Omit<ListParameters<P>, "query" | "cookie">
  & { query?: Omit<NonNullable<QueryOf<ListParameters<P>>>, "cursor"> };

/** `[params?]` for a list without path parameters, `[params]` for one with them. */
type PageArgs<P extends ListPath> = Record<never, never> extends
  Pick<ListParameters<P>, "path" & keyof ListParameters<P>> ? [params?: PageParams<P>]
  : [params: PageParams<P>];

interface Page {
  data: unknown[];
  pagination: { next_cursor: string | null; has_more: boolean };
}

export type StewardClient = Client<paths> & {
  /** Every item of the list at `path`, page after page (each page one request). */
  paginate<P extends ListPath>(path: P, ...params: PageArgs<P>): AsyncGenerator<ListItem<P>>;
};

export function createSteward(options: StewardOptions): StewardClient {
  const base: FetchLike = options.fetch ?? ((request) => fetch(request));
  const client = createClient<paths>({
    baseUrl: options.url,
    headers: { Authorization: `Bearer ${options.token}` },
    fetch: stewardFetch(base, options.retries ?? {}, options.idempotency ?? true),
  });

  async function* paginate<P extends ListPath>(
    path: P,
    ...[params]: PageArgs<P>
  ): AsyncGenerator<ListItem<P>> {
    const query: Record<string, unknown> = { limit: 100, ...params?.query };
    let cursor: string | undefined;
    do {
      // paginate's signature checks the list's parameters; openapi-fetch's own generic
      // signature cannot follow a path chosen at run time.
      const { data } = await (client.GET as (path: string, init: unknown) => Promise<{
        data?: Page;
      }>)(path, { params: { ...params, query: { ...query, cursor } } });
      if (!data) return;
      yield* data.data as ListItem<P>[];
      cursor = data.pagination.has_more ? data.pagination.next_cursor ?? undefined : undefined;
    } while (cursor !== undefined);
  }

  return Object.assign(client, { paginate });
}

/**
 * The `data` of Steward's success envelope, from a call of the client:
 * `const tenant = await unwrap(steward.GET("/v1/tenants/{tenant}", { params }))`.
 * (Errors are thrown by the client already; a call without a body, a 204, is refused here.)
 */
export async function unwrap<T>(
  call: Promise<{ data?: { data: T }; response: Response }>,
): Promise<T> {
  const { data, response } = await call;
  if (data === undefined) {
    throw new TypeError(`unwrap: the answer (${response.status}) has no body to unwrap`);
  }
  return data.data;
}
