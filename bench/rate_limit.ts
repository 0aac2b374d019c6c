/**
 * The cost of the API's rate limiter (domain/access/api_rate_limit.ts) on a cached GET route:
 * `GET /v1/tenants/{id}` with a warm service token, on two Steward processes in the same run, one
 * with `STEWARD_RATE_LIMITS=off` and one with the limits on (a read budget set high enough that
 * wrk is never refused: what is measured is the bucket and the two header fields, not 429s).
 * Prints every round, the medians, and the ratio on/off.
 *
 *   deno task bench:ratelimit                    # wrk -t2 -c50 -d10s, one round
 *   BENCH_SECONDS=10 BENCH_ROUNDS=3 deno task bench:ratelimit
 *
 * Settings as bench/http.ts (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_THREADS,
 * BENCH_CONNECTIONS, BENCH_ROUNDS). Needs wrk. Servers listen on 127.0.0.1 only and are killed
 * when the run ends, however it ends.
 */
import { join } from "node:path";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import { allAnswered, benchmark, loadTargets, type Target } from "./_load.ts";

Deno.exit(
  await benchmark(async (dir, servers) => {
    const token = `stw_${randomAlnum(40)}`;
    const spawn = (name: string, env: Record<string, string>) => {
      const s = ServerProcess.spawn({
        env: {
          STEWARD_KV_PATH: join(dir, `${name}.kv`),
          STEWARD_BOOTSTRAP_TOKEN: token,
          ...env,
        },
      });
      servers.push(s);
      return s;
    };
    const off = spawn("off", { STEWARD_RATE_LIMITS: "off" });
    const on = spawn("on", {
      STEWARD_RATE_LIMITS: "on",
      STEWARD_RATE_LIMIT_READ: "1000000/1000000",
    });
    await Promise.all(servers.map((s) => s.waitForStdout(LISTENING, "the listening line")));

    const auth = `Authorization: Bearer ${token}`;
    const tenantOn = async (s: ServerProcess) => {
      const created = await s.call("POST", "/v1/tenants", {
        token,
        body: { name: "Bench Inc", slug: "bench" },
      });
      if (created.status !== 201) throw new Error(`creating the tenant: ${created.text}`);
      return created.body.data.id as string;
    };
    const OFF = "GET /v1/tenants/{id}, limits off";
    const ON = "GET /v1/tenants/{id}, limits on";
    const targets: Target[] = [
      { name: OFF, url: `${off.url}/v1/tenants/${await tenantOn(off)}`, headers: [auth] },
      { name: ON, url: `${on.url}/v1/tenants/${await tenantOn(on)}`, headers: [auth] },
    ];
    for (const t of targets) {
      const res = await fetch(t.url, { headers: { Authorization: `Bearer ${token}` } });
      await res.body?.cancel();
      if (res.status !== 200) throw new Error(`${t.name}: ${res.status}`);
      console.log(`${t.name}: 200, RateLimit: ${res.headers.get("RateLimit") ?? "(none)"}`);
    }

    const summary = await loadTargets(targets, token);
    const rps = (name: string) => summary.find((s) => s.name === name)!.rps;
    const ratio = rps(ON) / rps(OFF);
    console.log(
      `\nratio on/off: ${ratio.toFixed(3)} (${(100 * (1 - ratio)).toFixed(1)} % of req/s spent ` +
        `on the limiter)`,
    );
    return allAnswered(summary);
  }),
);
