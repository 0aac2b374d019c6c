/**
 * Reports every answered request to the aggregator (traffic counters, sampled log entry). The
 * request context (routes/middleware/request.ts) calls it around the whole chain, so errors
 * answered by onError are logged with their code.
 */
import type { Context } from "hono";
import type { TrafficRecorder } from "../../domain/shared/services.ts";
import type { AppEnv } from "../context.ts";
import { clientIp } from "../respond.ts";

/** Answers sent as a stream: counted as they flow, never buffered to be measured. */
const STREAMED = /^(text\/event-stream|application\/x-ndjson|text\/csv)/;

/** Hono's route patterns in OpenAPI syntax, each converted once (one entry per route). */
const ROUTE_NAMES = new Map<string, string | null>();
function routeName(pattern: string): string | null {
  let name = ROUTE_NAMES.get(pattern);
  if (name === undefined) {
    name = pattern === "/*" ? null : pattern.replace(/:(\w+)/g, "{$1}");
    ROUTE_NAMES.set(pattern, name);
  }
  return name;
}

/**
 * `res` with its body counted as it flows: `done` gets the bytes sent when the stream ends or
 * when the client leaves (a live tail only ends so); a cancel reaches the answer's own stream
 * and waits for it to stop.
 */
function countedStream(res: Response, done: (bytes: number) => void): Response {
  let counted = 0;
  const source = res.body!.getReader();
  const counting = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await source.read();
      if (chunk.done) {
        done(counted);
        return controller.close();
      }
      counted += chunk.value.byteLength;
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      done(counted);
      return source.cancel(reason);
    },
  });
  return new Response(counting, res);
}

/**
 * Counts the answered request and logs it when sampled; `started` is when it came in
 * (performance.now()). A promise only for an answer that noted no size and is not a stream,
 * which is measured on a copy.
 */
export function logRequest(c: Context<AppEnv>, started: number): Promise<void> | undefined {
  const aggregator = c.get("svc").aggregator;
  if (!aggregator.collecting) {
    aggregator.drop();
    return;
  }
  // Answers made from a string note their size (routes/middleware/request.ts); streams are
  // counted as they flow, never buffered to be measured; anything else is measured.
  const bytesOut = c.get("bytesOut");
  if (bytesOut !== undefined) return record(c, aggregator, started, bytesOut);
  const res = c.res;
  if (!res.body) return record(c, aggregator, started, 0);
  if (STREAMED.test(res.headers.get("content-type") ?? "")) {
    c.res = countedStream(res, (counted) => aggregator.addBytesOut(counted));
    return record(c, aggregator, started, null);
  }
  return res.clone().arrayBuffer().then((body) => record(c, aggregator, started, body.byteLength));
}

function record(
  c: Context<AppEnv>,
  aggregator: TrafficRecorder,
  started: number,
  bytesOut: number | null,
): undefined {
  const status = c.res.status;
  const bytesIn = Number(c.req.header("content-length") ?? 0) || 0;
  const counted = {
    status,
    bytes_in: bytesIn,
    bytes_out: bytesOut,
    verification: c.req.path === "/v1/keys/verify",
  };
  // Counted always; the entry is built only for the requests sampled.
  if (!aggregator.count(counted)) return;
  const principal = c.get("principal");
  const tenant = c.get("tenant");
  aggregator.log({
    method: c.req.method,
    route: routeName(c.req.routePath),
    // Bounded, as the user agent is: a page of entries must fit in one KV value.
    path: c.req.path.slice(0, 2_048),
    status,
    duration_ms: Math.round((performance.now() - started) * 100) / 100,
    bytes_in: bytesIn,
    bytes_out: bytesOut,
    tenant_id: tenant?.value.id ?? principal?.tenant_id ?? null,
    principal_id: principal?.id ?? null,
    ip: clientIp(c),
    user_agent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    request_id: c.get("requestId"),
    error_code: status >= 400 ? c.get("errorCode") ?? null : null,
  });
}
