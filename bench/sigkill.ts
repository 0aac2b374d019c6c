/**
 * What a hard kill costs: verifies are acknowledged (200 VALID) while usage is still in the
 * write-behind counters, so SIGKILL loses what the last flush had not written yet — at most
 * about one flush interval (1 s) of traffic. This loads verify with wrk, kills the server with
 * SIGKILL mid-load, reopens the store and compares the persisted verification count with the
 * number of VALID answers wrk received.
 *
 *   deno task bench:sigkill
 *
 * Settings: BENCH_SECONDS (load before the kill, 4), BENCH_CONNECTIONS (50). Needs wrk.
 */
import { join } from "node:path";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import { benchmark, fmt, LOAD, parseWrk, unlimitedTenant } from "./_load.ts";

Deno.exit(
  await benchmark(async (dir, servers) => {
    const token = `stw_${randomAlnum(40)}`;
    const kvPath = join(dir, "steward.kv");
    const steward = ServerProcess.spawn({
      env: { STEWARD_KV_PATH: kvPath, STEWARD_BOOTSTRAP_TOKEN: token },
    });
    servers.push(steward);
    await steward.waitForStdout(LISTENING, "the listening line");
    const tenantId = await unlimitedTenant(steward, token, "killed");
    const key = await steward.call("POST", "/v1/tenants/killed/api-keys", {
      token,
      body: { name: "k", environment: "live" },
    });
    const script = join(dir, "verify.lua");
    await Deno.writeTextFile(
      script,
      `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${token}"
wrk.body = '{"key":"${key.body.data.key}"}'
`,
    );

    // wrk runs a little longer than the kill comes: every answer it counts came before it.
    const loadSeconds = Math.max(2, LOAD.seconds === 10 ? 4 : LOAD.seconds);
    const wrk = new Deno.Command("wrk", {
      args: [
        "-t2",
        `-c${LOAD.connections}`,
        `-d${loadSeconds + 2}s`,
        "--latency",
        "-s",
        script,
        `${steward.url}/v1/keys/verify`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await new Promise((r) => setTimeout(r, loadSeconds * 1000));
    steward.child.kill("SIGKILL");
    const out = await wrk.output();
    const text = new TextDecoder().decode(out.stdout);
    const result = parseWrk(text);
    const acknowledged = result.requests - result.non2xx;
    await steward.exited().catch(() => {});

    const kv = await Deno.openKv(kvPath);
    let persisted = 0n;
    try {
      for await (
        const e of kv.list<Deno.KvU64>({ prefix: ["t", tenantId, "usage", "verifications"] })
      ) {
        persisted += e.value.value;
      }
    } finally {
      kv.close();
    }
    const lost = acknowledged - Number(persisted);
    const perSecond = acknowledged / loadSeconds;
    console.log(
      `SIGKILL after ${loadSeconds} s of load (${LOAD.connections} connections): ` +
        `${fmt(acknowledged)} VALID answers received, ${fmt(Number(persisted))} persisted, ` +
        `${fmt(lost)} lost (${(lost / perSecond).toFixed(2)} s of traffic at ` +
        `${fmt(perSecond)} verifies/s; flush interval 1 s)`,
    );
    return 0;
  }),
);
