/**
 * One process or one per core: `POST /v1/keys/verify` with 1,000 warm keys on Steward as one
 * `deno run` process and as `deno serve --parallel` (one isolate per core, `deno task
 * start:parallel`), both on the same KV file, loaded in the same run with the same wrk settings.
 * Also the KV commits the single process spends per 1,000 verifies (write-behind flushes and
 * quota leases), read from its `GET /v1/admin/usage/aggregator-status` before and after a round.
 *
 *   BENCH_SECONDS=5 BENCH_ROUNDS=3 deno task bench:parallel
 *
 * Settings as bench/http.ts, and BENCH_KEYS (1000). Needs wrk.
 */
import { join } from "node:path";
import {
  answering,
  freePort,
  LISTENING,
  parallelSteward,
  randomAlnum,
  ServerProcess,
} from "../tests/_server.ts";
import { allAnswered, benchmark, fmt, loadTargets, setting, unlimitedTenant } from "./_load.ts";

const KEYS = setting("BENCH_KEYS", 1_000, 1, 100_000);

Deno.exit(
  await benchmark(async (dir, servers) => {
    const token = `stw_${randomAlnum(40)}`;
    const env = {
      STEWARD_KV_PATH: join(dir, "steward.kv"),
      STEWARD_BOOTSTRAP_TOKEN: token,
      STEWARD_MASTER_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    };
    const single = ServerProcess.spawn({ env });
    servers.push(single);
    await single.waitForStdout(LISTENING, "steward's listening line");
    await unlimitedTenant(single, token, "bench");
    const bodies: string[] = [];
    for (let i = 0; i < KEYS; i++) {
      const res = await single.call("POST", "/v1/tenants/bench/api-keys", {
        token,
        body: { name: `bench ${i}`, environment: "live" },
      });
      if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
      bodies.push(JSON.stringify({ key: res.body.data.key }));
    }
    const bodiesFile = join(dir, "bodies.txt");
    await Deno.writeTextFile(bodiesFile, bodies.join("\n") + "\n");
    const script = join(dir, "verify.lua");
    await Deno.writeTextFile(
      script,
      `
local bodies = {}
for line in io.lines("${bodiesFile}") do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${token}"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
`,
    );

    const port = freePort();
    const parallel = parallelSteward(port, env);
    servers.push(parallel);
    const parallelUrl = `http://127.0.0.1:${port}`;
    await answering(parallelUrl, 30);
    const cores = navigator.hardwareConcurrency;

    const status = async () => {
      const res = await single.call("GET", "/v1/admin/usage/aggregator-status", { token });
      const { aggregator, quota_leases } = res.body.data;
      return {
        flushes: aggregator.flushes as number,
        leases: quota_leases.taken + quota_leases.returned as number,
      };
    };
    // Read around each measured run of the single process (warm-ups excluded).
    const commits = { flushes: 0, leases: 0 };
    let last: { flushes: number; leases: number } | null = null;
    const around = async () => {
      const now = await status();
      if (last) {
        commits.flushes += now.flushes - last.flushes;
        commits.leases += now.leases - last.leases;
        last = null;
      } else last = now;
      return 0;
    };
    const SINGLE = "one process (deno run main.ts) POST /v1/keys/verify";
    const PARALLEL = `deno serve --parallel (${cores} isolates) POST /v1/keys/verify`;
    const summary = await loadTargets([
      { name: SINGLE, url: `${single.url}/v1/keys/verify`, script, committed: around },
      { name: PARALLEL, url: `${parallelUrl}/v1/keys/verify`, script },
    ], token);
    const single$ = summary.find((s) => s.name === SINGLE)!;
    const verifies = single$.requests;
    console.log(
      `\n--parallel ÷ one process = ${
        (summary.find((s) => s.name === PARALLEL)!.rps / single$.rps).toFixed(2)
      } on ${cores} cores` +
        `\nKV commits of the single process per 1,000 verifies: ` +
        `${fmt((1000 * commits.flushes) / verifies, 3)} flushes + ` +
        `${fmt((1000 * commits.leases) / verifies, 3)} quota lease commits ` +
        `(${verifies} verifies measured)`,
    );
    return allAnswered(summary);
  }),
);
