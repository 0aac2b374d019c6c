/**
 * Gateway benchmark: requests per second through the example gateway
 * (clients/examples/gateway.ts: Hono + the Steward middleware, one verify call per request to a
 * Steward process) next to the same gateway app with no authentication (a stand-in middleware
 * that puts a fixed verdict on the context, so `GET /hello` answers the same body). Both are
 * loaded in the same run with the same wrk settings; every round prints both rates and their
 * ratio. Steward, both gateways and wrk share the machine.
 *
 *   deno task bench:gateway                                 # wrk -t2 -c50 -d10s, one round
 *   BENCH_SECONDS=5 BENCH_ROUNDS=3 deno task bench:gateway
 *
 * Settings as bench/http.ts (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_THREADS,
 * BENCH_CONNECTIONS, BENCH_ROUNDS). Needs wrk. Run with BENCH_GATEWAY_PLAIN_TENANT set, this
 * file is the unauthenticated gateway itself (the benchmark starts it that way).
 */
import { join } from "node:path";
import { gateway } from "../clients/examples/gateway.ts";
import type { StewardKey } from "../clients/hono/mod.ts";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import { allAnswered, benchmark, loadTargets, type Target, unlimitedTenant } from "./_load.ts";

const PLAIN_TENANT = Deno.env.get("BENCH_GATEWAY_PLAIN_TENANT");

/** The unauthenticated gateway: the example's app behind a middleware that checks nothing. */
function servePlain(tenantId: string) {
  const verdict: StewardKey = {
    degraded: false,
    key_id: "key_01KAQX5Q6Z8V3J2N1M0P9R8S7T",
    tenant_id: tenantId,
    project_id: null,
    environment: "live",
    scopes: [],
    meta: {},
    plan: { code: "unlimited" },
    ratelimit: null,
    quota: null,
    expires_at: null,
  };
  const app = gateway(async (c, next) => {
    c.set("steward", verdict);
    await next();
  });
  Deno.serve({
    port: Number(Deno.env.get("PORT") ?? 8081),
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
    onListen: ({ hostname, port }) =>
      console.log(`gateway (no authentication) listening on http://${hostname}:${port}`),
  }, app.fetch);
}

async function run(dir: string, servers: ServerProcess[]): Promise<number> {
  const admin = `stw_${randomAlnum(40)}`;
  const steward = ServerProcess.spawn({
    env: { STEWARD_KV_PATH: join(dir, "steward.kv"), STEWARD_BOOTSTRAP_TOKEN: admin },
  });
  servers.push(steward);
  await steward.waitForStdout(LISTENING, "steward's listening line");

  // A plan with no practical limits: every call is VALID and spends rate limit and quota.
  const tenantId = await unlimitedTenant(steward, admin, "bench");
  const key = await steward.call("POST", "/v1/tenants/bench/api-keys", {
    token: admin,
    body: { name: "bench", environment: "live" },
  });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${key.text}`);
  const verifier = await steward.call("POST", "/v1/admin/tokens", {
    token: admin,
    body: { name: "gateway", permissions: ["keys:verify"] },
  });
  if (verifier.status !== 201) throw new Error(`token: ${verifier.status} ${verifier.text}`);

  const guarded = ServerProcess.spawn({
    args: ["run", "--allow-net", "--allow-env", "clients/examples/gateway.ts"],
    env: { STEWARD_URL: steward.url, STEWARD_TOKEN: verifier.body.data.token },
  });
  const plain = ServerProcess.spawn({
    args: ["run", "--allow-net", "--allow-env", "bench/gateway.ts"],
    env: { BENCH_GATEWAY_PLAIN_TENANT: tenantId },
  });
  servers.push(guarded, plain);
  await Promise.all([guarded, plain].map((s) => s.waitForStdout(LISTENING, "the listening line")));

  const secret: string = key.body.data.key;
  const sampleHeaders = { Authorization: `Bearer ${secret}` };
  const samples = await Promise.all([guarded, plain].map(async (s) => {
    const res = await fetch(`${s.url}/hello`, { headers: sampleHeaders });
    return { status: res.status, text: await res.text() };
  }));
  const expected = JSON.stringify({ hello: tenantId });
  for (const s of samples) {
    if (s.status !== 200 || s.text !== expected) {
      throw new Error(`GET /hello: ${s.status} ${s.text} (expected ${expected})`);
    }
  }
  const refused = await fetch(`${guarded.url}/hello`);
  await refused.body?.cancel();
  if (refused.status !== 401) throw new Error(`no key: ${refused.status}, expected 401`);

  const GUARDED = "gateway + steward middleware GET /hello";
  const PLAIN = "gateway, no authentication GET /hello";
  const headers = [`Authorization: Bearer ${secret}`];
  const targets: Target[] = [
    { name: GUARDED, url: `${guarded.url}/hello`, headers },
    { name: PLAIN, url: `${plain.url}/hello`, headers },
  ];

  const summary = await loadTargets(targets, secret);
  const [withMiddleware, without] = summary;
  const ratios = withMiddleware.rounds.map((rps, i) => rps / without.rounds[i]);
  console.log(
    `\nwith middleware ÷ no authentication: ${(withMiddleware.rps / without.rps).toFixed(3)} ` +
      `(rounds: ${ratios.map((r) => r.toFixed(3)).join(", ")})`,
  );
  return allAnswered(summary);
}

if (PLAIN_TENANT) servePlain(PLAIN_TENANT);
else Deno.exit(await benchmark(run));
