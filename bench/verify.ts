/**
 * Verify benchmark: `POST /v1/keys/verify` with 1,000 distinct warm keys (round robin over
 * wrk's connections), next to a plain Hono JSON POST route and a naive verify doing one KV
 * read and one KV sum per request (bench/naive_verify.ts), all loaded in the same run with
 * the same wrk settings, a plain Hono route answering the same ~650-byte JSON with the same
 * headers (the like-for-like baseline), and the same answer with no framework, reading the
 * request headers verify reads (the floor: what any verify pays before its own work). Targets:
 * verify ≥ 0.75 × the same answer, ≥ 6 × naive in every round, and a p99 at most 1.5 × the same
 * answer's. Then the same answer slowed by a busy wait to verify's rate, loaded with verify
 * again: their p99s at the same throughput.
 *
 * Then the freshness of a revocation: made on one Steward process, seen by the same process
 * at once, and by a second process on the same KV file within STEWARD_VERIFY_CACHE_MS.
 *
 *   deno task bench:verify                        # wrk -t2 -c50 -d10s, one round
 *   BENCH_ROUNDS=3 deno task bench:verify
 *
 * Settings as bench/http.ts (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_THREADS,
 * BENCH_CONNECTIONS, BENCH_ROUNDS) and BENCH_KEYS (1000). Needs wrk.
 */
import { join } from "node:path";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import {
  allAnswered,
  baselineServer,
  benchmark,
  fmt,
  loadTargets,
  postScript,
  setting,
  type Target,
  unlimitedTenant,
} from "./_load.ts";

const KEYS = setting("BENCH_KEYS", 1_000, 1, 100_000);

function expectOk(what: string, res: { status: number; text: string }, status = 200) {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${res.text}`);
}

Deno.exit(
  await benchmark(async (dir, servers) => {
    const token = `stw_${randomAlnum(40)}`;
    const kvPath = join(dir, "steward.kv");
    const env = { STEWARD_KV_PATH: kvPath, STEWARD_BOOTSTRAP_TOKEN: token };
    const steward = ServerProcess.spawn({ env });
    servers.push(steward);
    await steward.waitForStdout(LISTENING, "steward's listening line");

    await unlimitedTenant(steward, token, "bench");
    const keys: { id: string; key: string }[] = [];
    for (let i = 0; i < KEYS; i++) {
      const res = await steward.call("POST", "/v1/tenants/bench/api-keys", {
        token,
        body: { name: `bench ${i}`, environment: "live" },
      });
      await expectOk("key", res, 201);
      keys.push({ id: res.body.data.id, key: res.body.data.key });
    }
    console.log(`${KEYS} keys created`);

    const keysFile = join(dir, "keys.txt");
    await Deno.writeTextFile(keysFile, keys.map((k) => k.key).join("\n") + "\n");
    const bodiesFile = join(dir, "bodies.txt");
    await Deno.writeTextFile(
      bodiesFile,
      keys.map((k) => JSON.stringify({ key: k.key })).join("\n") + "\n",
    );
    const verifyScript = join(dir, "verify.lua");
    await Deno.writeTextFile(verifyScript, postScript(bodiesFile, token));
    const naiveScript = join(dir, "naive.lua");
    await Deno.writeTextFile(naiveScript, postScript(bodiesFile, null));

    const plain = baselineServer(servers, "bench/plain_hono.ts");
    const naive = baselineServer(servers, "bench/naive_verify.ts", {
      BENCH_KV_PATH: join(dir, "naive.kv"),
      BENCH_KEYS_FILE: keysFile,
    });
    await Promise.all([plain, naive].map((s) => s.waitForStdout(LISTENING, "the listening line")));

    const sample = await steward.call("POST", "/v1/keys/verify", {
      token,
      body: { key: keys[0].key },
    });
    if (sample.body?.data?.code !== "VALID") throw new Error(`verify: ${sample.text}`);
    const naiveSample = await naive.call("POST", "/v1/keys/verify", { body: { key: keys[0].key } });
    if (naiveSample.body?.data?.valid !== true) throw new Error(`naive: ${naiveSample.text}`);

    const PLAIN = "plain hono POST /json";
    const SIZED = "plain hono POST /json, verify-sized answer";
    const NAIVE = "naive verify (1 KV read + 1 KV sum)";
    const VERIFY = "steward POST /v1/keys/verify";
    const BARE = "no framework: verify's header reads, body and answer";
    const targets: Target[] = [
      { name: PLAIN, url: `${plain.url}/json`, script: naiveScript },
      { name: SIZED, url: `${plain.url}/json/verify-sized`, script: naiveScript },
      { name: NAIVE, url: `${naive.url}/v1/keys/verify`, script: naiveScript },
      { name: BARE, url: `${plain.url}/bare/verify-sized`, script: verifyScript },
      { name: VERIFY, url: `${steward.url}/v1/keys/verify`, script: verifyScript },
    ];
    const summary = await loadTargets(targets, token);
    const of = (name: string) => summary.find((s) => s.name === name)!;
    const rps = (name: string) => of(name).rps;
    const byRound = of(VERIFY).rounds.map((r, i) => (r / of(NAIVE).rounds[i]).toFixed(2));
    const bySlice = (baseline: string) =>
      of(VERIFY).slices.map((r, i) => (r / of(baseline).slices[i]).toFixed(2)).join(" / ");
    console.log(
      `\nverify ÷ plain Hono               = ${(rps(VERIFY) / rps(PLAIN)).toFixed(3)}` +
        `\nverify ÷ plain Hono, same answer  = ${(rps(VERIFY) / rps(SIZED)).toFixed(3)} ` +
        `(target ≥ 0.75); by slice ${bySlice(SIZED)}` +
        `\nverify ÷ no framework             = ${(rps(VERIFY) / rps(BARE)).toFixed(3)}; ` +
        `µs a request more: ${(1e6 / rps(VERIFY) - 1e6 / rps(BARE)).toFixed(1)}` +
        `\nverify ÷ naive                    = ${(rps(VERIFY) / rps(NAIVE)).toFixed(2)}, ` +
        `by round ${byRound.join(" / ")} (target ≥ 6 in every round); by slice ${bySlice(NAIVE)}` +
        `\nverify p99 ÷ same answer's p99    = ${(of(VERIFY).p99 / of(SIZED).p99).toFixed(2)} ` +
        `(target ≤ 1.5)`,
    );

    // The tail at the same throughput: under closed-loop load a slower server has a longer
    // tail whatever its shape, so the same answer is slowed by a busy wait to verify's rate.
    const burnUs = Math.max(0, Math.round(1e6 / rps(VERIFY) - 1e6 / rps(SIZED)));
    const SLOWED = `plain hono POST /json, verify-sized answer, ${burnUs} µs busy wait`;
    const matched = await loadTargets([
      { name: SLOWED, url: `${plain.url}/json/verify-sized/slowed/${burnUs}`, script: naiveScript },
      { name: VERIFY, url: `${steward.url}/v1/keys/verify`, script: verifyScript },
    ], token);
    const [slowed, again] = [matched[0], matched[1]];
    console.log(
      `\nat the same throughput: verify ÷ slowed same answer = ${
        (again.rps / slowed.rps).toFixed(3)
      }` +
        ` req/s, p99 ÷ its p99 = ${(again.p99 / slowed.p99).toFixed(2)}`,
    );

    // Verify spends from leases taken ahead of need: how many calls waited for one.
    const status = await steward.call("GET", "/v1/admin/usage/aggregator-status", { token });
    const leases = status.body.data.quota_leases;
    console.log(
      `\nquota leases: ${leases.taken} blocks taken, ${leases.waited} calls waited for one`,
    );

    // Freshness: revoke on this process; a second process on the same store answers from its
    // cache until the window ends.
    const second = ServerProcess.spawn({ env });
    servers.push(second);
    await second.waitForStdout(LISTENING, "the second process's listening line");
    const victim = keys[keys.length - 1];
    const check = async (s: ServerProcess) =>
      (await s.call("POST", "/v1/keys/verify", { token, body: { key: victim.key } })).body.data
        .code as string;
    if ((await check(second)) !== "VALID") {
      throw new Error("the second process does not see the key");
    }
    const revokedAt = performance.now();
    await expectOk(
      "revoke",
      await steward.call("DELETE", `/v1/tenants/bench/api-keys/${victim.id}`, { token }),
    );
    const here = await check(steward);
    const hereMs = performance.now() - revokedAt;
    let polls = 0;
    while ((await check(second)) === "VALID") {
      polls++;
      if (performance.now() - revokedAt > 60_000) {
        throw new Error("never seen by the second process");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const thereMs = performance.now() - revokedAt;
    console.log(
      `\nrevocation: the process that made it answered ${here} ${fmt(hereMs, 1)} ms after the ` +
        `revoke started (its first verify); a second process answered REVOKED after ` +
        `${fmt(thereMs)} ms (${polls} VALID answers while polling every 20 ms; ` +
        `STEWARD_VERIFY_CACHE_MS = 5000)`,
    );
    return allAnswered(summary) || (here === "REVOKED" ? 0 : 1);
  }),
);
