/**
 * HTTP load benchmark: `GET /v1/tenants/{id}` on Steward (authenticated with a service token)
 * against `GET /json` on a plain Hono app (bench/plain_hono.ts), loaded in the same run with
 * the same wrk settings. Prints req/s and p50/p99 latency of each, and the ratio steward/plain.
 * Steward's `GET /health/live` (whole middleware chain, no auth, no KV) is loaded too, to split
 * the gap between the framework layers and the KV reads; and a list page (50 API keys) next to
 * plain Hono sending an answer of the same size (`GET /size/{bytes}`). Each Steward route also
 * has a like-for-like baseline in plain Hono: the same response headers and bytes after the
 * same Deno KV reads, so the chain's own cost and the most any chain could reach are both shown.
 *
 *   deno task bench                              # wrk -t2 -c50 -d10s, one round
 *   BENCH_SECONDS=20 BENCH_ROUNDS=3 deno task bench
 *
 * Settings (environment): BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_THREADS (2),
 * BENCH_CONNECTIONS (50), BENCH_ROUNDS (1; with more, each target's median round counts),
 * BENCH_SLICE_SECONDS (2: within a round the targets take turns in slices this long).
 * Needs wrk (`apt-get install -y wrk`). Every server runs on 127.0.0.1 in its own process
 * and is killed when the run ends, however it ends.
 */
import { join } from "node:path";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import { allAnswered, baselineServer, benchmark, loadTargets, type Target } from "./_load.ts";

Deno.exit(
  await benchmark(async (dir, servers) => {
    const token = `stw_${randomAlnum(40)}`;
    const steward = ServerProcess.spawn({
      env: { STEWARD_KV_PATH: join(dir, "steward.kv"), STEWARD_BOOTSTRAP_TOKEN: token },
    });
    servers.push(steward);
    const plain = baselineServer(servers, "bench/plain_hono.ts", {
      BENCH_KV_PATH: join(dir, "plain.kv"),
    });
    await Promise.all(servers.map((s) => s.waitForStdout(LISTENING, "the listening line")));

    const auth = `Authorization: Bearer ${token}`;
    const created = await steward.call("POST", "/v1/tenants", {
      token,
      body: { name: "Bench Inc", slug: "bench" },
    });
    if (created.status !== 201) throw new Error(`creating the tenant: ${created.text}`);
    const tenantId: string = created.body.data.id;
    for (let i = 0; i < 50; i++) {
      const key = await steward.call("POST", "/v1/tenants/bench/api-keys", {
        token,
        body: { name: `bench key ${i}`, environment: "live" },
      });
      if (key.status !== 201) throw new Error(`creating a key: ${key.text}`);
    }
    const listPath = "/v1/tenants/bench/api-keys?limit=50";
    const bytesOf = async (path: string) =>
      new TextEncoder().encode((await steward.call("GET", path, { token })).text).length;
    const pageBytes = await bytesOf(listPath);
    const liveBytes = await bytesOf("/health/live");
    const tenantBytes = await bytesOf(`/v1/tenants/${tenantId}`);

    const PLAIN = "plain hono GET /json";
    const LIVE = "steward GET /health/live (no auth, no KV)";
    const TENANT = "steward GET /v1/tenants/{id}";
    const LIST = "steward GET /v1/tenants/{t}/api-keys?limit=50";
    const SIZED = `plain hono GET /size/${pageBytes} (the list page's size)`;
    // Like for like: plain Hono sending Steward's headers and bytes, after the same KV reads.
    const SAME_LIVE = `plain hono, /health/live's headers and ${liveBytes} bytes`;
    const SAME_TENANT = `plain hono, one KV read, the tenant's headers and ${tenantBytes} bytes`;
    const SAME_LIST = `plain hono, the page's KV reads, headers and ${pageBytes} bytes`;
    const targets: Target[] = [
      { name: PLAIN, url: `${plain.url}/json` },
      { name: SAME_LIVE, url: `${plain.url}/headers/${liveBytes}` },
      { name: LIVE, url: `${steward.url}/health/live` },
      { name: SAME_TENANT, url: `${plain.url}/kv/one/${tenantBytes}` },
      { name: TENANT, url: `${steward.url}/v1/tenants/${tenantId}`, headers: [auth] },
      { name: SIZED, url: `${plain.url}/size/${pageBytes}` },
      { name: SAME_LIST, url: `${plain.url}/kv/page/${pageBytes}` },
      { name: LIST, url: `${steward.url}${listPath}`, headers: [auth] },
    ];
    for (const t of targets) {
      const res = await fetch(t.url, {
        headers: Object.fromEntries(
          (t.headers ?? []).map((h) => h.split(": ") as [string, string]),
        ),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${t.name}: ${res.status} ${text}`);
      console.log(`${t.name}: 200, ${new TextEncoder().encode(text).length} body bytes`);
    }

    const summary = await loadTargets(targets, token);
    const rps = (name: string) => summary.find((s) => s.name === name)!.rps;
    const ratio = rps(TENANT) / rps(PLAIN);
    console.log(
      `\nratio steward/plain (GET /v1/tenants/{id} ÷ GET /json): ${ratio.toFixed(3)} ` +
        `(${(100 * ratio).toFixed(1)} % of plain Hono's req/s)`,
    );
    console.log(
      `context: /health/live ÷ plain = ${(rps(LIVE) / rps(PLAIN)).toFixed(3)}, ` +
        `/v1/tenants/{id} ÷ /health/live = ${(rps(TENANT) / rps(LIVE)).toFixed(3)}` +
        `\nlist page ÷ plain Hono answer of the same size (${pageBytes} bytes) = ` +
        (rps(LIST) / rps(SIZED)).toFixed(3),
    );
    // What the chain costs (Steward ÷ the same answer and reads without it), and the most any
    // chain could reach against the baselines (the like-for-like ÷ those baselines).
    const pct = (a: string, b: string) => (rps(a) / rps(b)).toFixed(3);
    console.log(
      `\nlike for like:       steward ÷ same   same ÷ issue's baseline` +
        `\n  /health/live        ${pct(LIVE, SAME_LIVE)}            ${pct(SAME_LIVE, PLAIN)}` +
        `\n  /v1/tenants/{id}    ${pct(TENANT, SAME_TENANT)}            ${
          pct(SAME_TENANT, PLAIN)
        }` +
        `\n  list page           ${pct(LIST, SAME_LIST)}            ${pct(SAME_LIST, SIZED)}`,
    );
    const bySlice = (a: string, b: string) => {
      const base = summary.find((s) => s.name === b)!.slices;
      return summary.find((s) => s.name === a)!.slices.map((r, i) => (r / base[i]).toFixed(3));
    };
    console.log(
      `\n/health/live ÷ plain by slice (each pair ran seconds apart): ` +
        bySlice(LIVE, PLAIN).join(" / ") +
        `\n/health/live ÷ same by slice: ${bySlice(LIVE, SAME_LIVE).join(" / ")}`,
    );
    return allAnswered(summary);
  }),
);
