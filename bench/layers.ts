/**
 * The chain's layers over the wire, in one process: Steward (main.ts, its whole app) answers
 * `GET /health/live` next to other apps in the same process, each on its own port, around the
 * same answer: Steward's request context alone (the one layer every request passes: its
 * variables, the IP guard, the request log, the answer headers; no router of ~800 routes), plain
 * Hono sending Steward's headers and bytes, plain Hono's `c.json`, and `Deno.serve` answering
 * Steward's bytes with all five headers (also reading the caller's X-Request-Id, as Steward's
 * request id must) and with the Content-Type alone (Deno sends an answer with at most that header
 * on a faster path: the floor any framework's extra headers start from). Same process, so the
 * same heap, timers and KV watches: what differs is only the code each request runs. Loaded with
 * wrk in turns (bench/_load.ts).
 *
 *   deno task bench:layers
 *
 * Settings as bench/http.ts. Needs wrk. Run with BENCH_LAYERS_SERVE=1, this file is the server.
 */
import { join } from "node:path";
import { Hono } from "hono";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import { allAnswered, benchmark, loadTargets } from "./_load.ts";
import { plainLiveness, plainLivenessWithStewardHeaders } from "./_liveness.ts";
import type { AppDeps, AppEnv } from "../routes/context.ts";

const LAYER = /^layer (.+) listening on (http:\/\/\S+)$/gm;

/** Steward, then each layer's app on a port of its own, printed as `layer NAME listening on URL`. */
async function serve() {
  const { app } = await import("../main.ts");
  const { requestContext } = await import("../routes/middleware/request.ts");
  const { ok } = await import("../routes/respond.ts");
  // The app's own dependencies, as its request context hands them to every request.
  let deps: AppDeps | null = null;
  app.get("/bench/deps", (c) => {
    deps = c.get("deps");
    return c.body(null, 204);
  });
  await app.fetch(new Request("http://127.0.0.1/bench/deps"));
  const context = new Hono<AppEnv>()
    .use("*", requestContext(deps!, null))
    .get("/health/live", (c) => ok(c, { status: "ok" as const }));
  // A fresh request id in every answer, as Steward's and the plain Hono baseline's: Deno sends
  // the same header strings answer after answer measurably faster than new ones.
  let requests = 0;
  const answer = (): [string, string] => {
    const id = `req_01KAQX5Q6Z8V3J2N1M${String(++requests).padStart(8, "0")}`;
    return [
      id,
      JSON.stringify({ success: true, data: { status: "ok" }, meta: { request_id: id } }),
    ];
  };
  const fiveHeaders = (callerId: string | null = null) => {
    const [fresh, body] = answer();
    const id = callerId ?? fresh;
    return new Response(body, {
      headers: {
        "Content-Type": "application/json",
        "X-Request-Id": id,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
      },
    });
  };
  const contentTypeOnly = () =>
    new Response(answer()[1], { headers: { "Content-Type": "application/json" } });
  const apps: [string, (req: Request) => Response | Promise<Response>][] = [
    ["the request context alone", context.fetch],
    ["plain Hono, Steward's headers and bytes", plainLivenessWithStewardHeaders().fetch],
    ["plain Hono c.json", plainLiveness().fetch],
    ["Deno.serve, Steward's bytes and five headers", () => fiveHeaders()],
    // Reading one request header makes Deno copy the request's headers before it answers.
    [
      "Deno.serve, the same, reading the caller's X-Request-Id",
      (req) => fiveHeaders(req.headers.get("x-request-id")),
    ],
    ["Deno.serve, Steward's bytes and the Content-Type alone", contentTypeOnly],
  ];
  for (const [name, fetch] of apps) {
    Deno.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen: ({ port }) => console.log(`layer ${name} listening on http://127.0.0.1:${port}`),
    }, fetch);
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
      while ([...server.stdout.matchAll(LAYER)].length < 6) {
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
