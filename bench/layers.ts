/**
 * The chain's layers over the wire, in one process: Steward (main.ts, its whole app) answers
 * `GET /health/live` next to five Hono apps in the same process, each on its own port, around
 * the same answer: the request context, log and IP guard middlewares alone (no router of ~800
 * routes), the request context alone, the same without the four headers it adds to every
 * answer, plain Hono sending Steward's headers and bytes, and plain Hono's `c.json`. Same
 * process, so the same heap, timers and KV watches: what differs is only the code each request
 * runs. Loaded with wrk in turns (bench/_load.ts).
 *
 *   deno task bench:layers
 *
 * Settings as bench/http.ts. Needs wrk. Run with BENCH_LAYERS_SERVE=1, this file is the server.
 */
import { join } from "node:path";
import { Hono, type MiddlewareHandler } from "hono";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import { allAnswered, benchmark, loadTargets } from "./_load.ts";
import { plainLiveness, plainLivenessWithStewardHeaders } from "./_liveness.ts";
import type { AppDeps, AppEnv } from "../routes/context.ts";

const LAYER = /^layer (.+) listening on (http:\/\/\S+)$/gm;

/** Steward, then each layer's app on a port of its own, printed as `layer NAME listening on URL`. */
async function serve() {
  const { app } = await import("../main.ts");
  const { requestContext, requestIdFrom, measuredJson } = await import(
    "../routes/middleware/request.ts"
  );
  const { requestLog } = await import("../routes/middleware/request_log.ts");
  const { ipGuard } = await import("../routes/middleware/ip_guard.ts");
  const { ok } = await import("../routes/respond.ts");
  // The app's own dependencies, as its request context hands them to every request.
  let deps: AppDeps | null = null;
  app.get("/bench/deps", (c) => {
    deps = c.get("deps");
    return c.body(null, 204);
  });
  await app.fetch(new Request("http://127.0.0.1/bench/deps"));
  const layered = (middleware: MiddlewareHandler<AppEnv>[]) => {
    const a = new Hono<AppEnv>();
    a.use("*", requestContext(deps!, null), ...middleware);
    a.get("/health/live", (c) => ok(c, { status: "ok" as const }));
    return a;
  };
  // The request context's work but for the four headers it adds to every answer.
  const headerless = new Hono<AppEnv>().use("*", async (c, next) => {
    c.set("requestId", requestIdFrom(c.req.header("X-Request-Id")));
    c.set("deps", deps!);
    c.set("svc", deps!.svc);
    c.set("rateLimiter", null);
    c.json = measuredJson(c);
    await next();
  }).get("/health/live", (c) => ok(c, { status: "ok" as const }));
  const apps: [string, { fetch: (req: Request) => Response | Promise<Response> }][] = [
    ["context, log and IP guard", layered([requestLog, ipGuard])],
    ["context", layered([])],
    ["context without its four answer headers", headerless],
    ["plain Hono, Steward's headers and bytes", plainLivenessWithStewardHeaders()],
    ["plain Hono c.json", plainLiveness()],
  ];
  for (const [name, a] of apps) {
    Deno.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen: ({ port }) => console.log(`layer ${name} listening on http://127.0.0.1:${port}`),
    }, a.fetch);
  }
}

if (Deno.env.get("BENCH_LAYERS_SERVE")) await serve();
else {
  Deno.exit(
    await benchmark(async (dir, servers) => {
      const server = ServerProcess.spawn({
        args: ["run", "-A", "bench/layers.ts"],
        env: {
          BENCH_LAYERS_SERVE: "1",
          STEWARD_KV_PATH: join(dir, "steward.kv"),
          STEWARD_BOOTSTRAP_TOKEN: `stw_${randomAlnum(40)}`,
        },
      });
      servers.push(server);
      await server.waitForStdout(LISTENING, "steward's listening line");
      while ([...server.stdout.matchAll(LAYER)].length < 5) {
        await server.waitForStdout(/layer .* listening/, "the layers' listening lines");
        await new Promise((r) => setTimeout(r, 100));
      }
      const STEWARD = "steward's app";
      const targets = [
        { name: STEWARD, url: `${server.url}/health/live` },
        ...[...server.stdout.matchAll(LAYER)].map(([, name, url]) => ({
          name,
          url: `${url}/health/live`,
        })),
      ];
      const summary = await loadTargets(targets, "");
      const rps = (name: string) => summary.find((s) => s.name === name)!.rps;
      const same = "plain Hono, Steward's headers and bytes";
      console.log(
        `\nµs a request more than plain Hono with Steward's headers (1e6 / req/s, wrk's share ` +
          `of the machine included):`,
      );
      for (const { name } of targets) {
        console.log(`  ${name}: ${(1e6 / rps(name) - 1e6 / rps(same)).toFixed(2)}`);
      }
      return allAnswered(summary);
    }),
  );
}
