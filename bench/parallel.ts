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
import {
  allAnswered,
  benchmark,
  fmt,
  LOAD,
  loadTargets,
  postScript,
  setting,
  unlimitedTenant,
} from "./_load.ts";

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
    await Deno.writeTextFile(script, postScript(bodiesFile, token));

    const port = freePort();
    const parallel = parallelSteward(port, env);
    servers.push(parallel);
    const parallelUrl = `http://127.0.0.1:${port}`;
    await answering(parallelUrl, 30);
    const cores = navigator.hardwareConcurrency;

    /** The single process's KV commits so far: write-behind flushes and quota lease commits. */
    const commits = async () => {
      const res = await single.call("GET", "/v1/admin/usage/aggregator-status", { token });
      const { aggregator, quota_leases } = res.body.data;
      return {
        flushes: aggregator.flushes as number,
        leases: quota_leases.taken + quota_leases.returned as number,
      };
    };
    const total = async () => {
      const c = await commits();
      return c.flushes + c.leases;
    };
    const before = await commits();
    const SINGLE = "one process (deno run main.ts) POST /v1/keys/verify";
    const PARALLEL = `deno serve --parallel (${cores} isolates) POST /v1/keys/verify`;
    // One window a round: a flush's commit after a slice ends would count in no slice.
    const summary = await loadTargets(
      [
        { name: SINGLE, url: `${single.url}/v1/keys/verify`, script, committed: total },
        { name: PARALLEL, url: `${parallelUrl}/v1/keys/verify`, script },
      ],
      token,
      LOAD.seconds,
    );
    const after = await commits();
    const single$ = summary.find((s) => s.name === SINGLE)!;
    const perThousand = (1000 * single$.committedPerSec!) / single$.rps;
    const share = (n: number) =>
      n / (after.flushes - before.flushes + after.leases - before.leases);
    console.log(
      `\n--parallel ÷ one process = ${
        (summary.find((s) => s.name === PARALLEL)!.rps / single$.rps).toFixed(2)
      } on ${cores} cores` +
        `\nKV commits of the single process per 1,000 verifies (medians of its rounds): ` +
        `${fmt(perThousand, 3)}, of which flushes ${
          fmt(perThousand * share(after.flushes - before.flushes), 3)
        } ` +
        `and quota lease commits ${fmt(perThousand * share(after.leases - before.leases), 3)} ` +
        `(split as over the whole run)`,
    );
    return allAnswered(summary);
  }),
);
