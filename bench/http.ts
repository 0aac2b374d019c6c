/**
 * HTTP load benchmark: `GET /v1/tenants/{id}` on Steward (authenticated with a service token)
 * against `GET /json` on a plain Hono app (bench/plain_hono.ts), loaded in the same run with
 * the same wrk settings. Prints req/s and p50/p99 latency of each, and the ratio steward/plain.
 * Steward's `GET /health/live` (whole middleware chain, no auth, no KV) is loaded too, to split
 * the gap between the framework layers and the KV reads.
 *
 *   deno task bench                              # wrk -t2 -c50 -d10s, one round
 *   BENCH_SECONDS=20 BENCH_ROUNDS=3 deno task bench
 *
 * Settings (environment): BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_THREADS (2),
 * BENCH_CONNECTIONS (50), BENCH_ROUNDS (1; with more, each target's median round counts).
 * Needs wrk (`apt-get install -y wrk`). Every server runs on 127.0.0.1 in its own process
 * and is killed when the run ends, however it ends.
 */
import { join } from "node:path";
import { LISTENING, randomAlnum, ServerProcess, within } from "../tests/_server.ts";

function setting(name: string, fallback: number, min: number, max: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`bench: ${name} must be an integer from ${min} to ${max}, not "${raw}"`);
    Deno.exit(2);
  }
  return value;
}

const SECONDS = setting("BENCH_SECONDS", 10, 1, 600);
const WARMUP_SECONDS = setting("BENCH_WARMUP_SECONDS", 2, 0, 60);
const THREADS = setting("BENCH_THREADS", 2, 1, 64);
const CONNECTIONS = setting("BENCH_CONNECTIONS", 50, 1, 10_000);
const ROUNDS = setting("BENCH_ROUNDS", 1, 1, 10);

interface WrkResult {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === "us" ? n / 1000 : unit === "ms" ? n : unit === "s" ? n * 1000 : n * 60_000;
}

function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const total = /(\d+) requests in /.exec(out);
  if (!rps || !p50 || !p99 || !total) throw new Error(`could not read wrk's output:\n${out}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(total[1]),
    p50Ms: toMs(p50[1], p50[2]),
    p99Ms: toMs(p99[1], p99[2]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

/** wrk processes under way, killed if the benchmark is interrupted. */
const running = new Set<Deno.ChildProcess>();

async function wrk(seconds: number, url: string, headers: string[]): Promise<string> {
  const args = [
    `-t${THREADS}`,
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    "--latency",
    ...headers.flatMap((h) => ["-H", h]),
    url,
  ];
  const child = new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).spawn();
  running.add(child);
  const out = await within(seconds + 30, "wrk", child.output()).finally(() =>
    running.delete(child)
  );
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrk failed (${out.code}):\n${text}`);
  return text;
}

async function wrkInstalled(): Promise<boolean> {
  try {
    await new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** `cmd args…`'s stdout, or "" (reading /proc directly would need --allow-all). */
async function run(cmd: string, ...args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

async function machine(): Promise<string[]> {
  const model = /:\s*(.+)$/.exec(await run("grep", "-m1", "model name", "/proc/cpuinfo"))?.[1];
  const memKb = Number(/(\d+) kB/.exec(await run("grep", "MemTotal", "/proc/meminfo"))?.[1] ?? 0);
  return [
    `cpus: ${navigator.hardwareConcurrency} × ${model ?? "unknown"}`,
    `memory: ${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    `deno ${Deno.version.deno} (v8 ${Deno.version.v8}), ${Deno.build.target}`,
    `load average before the run: ${await run("cat", "/proc/loadavg")}`,
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<number> {
  if (!(await wrkInstalled())) {
    console.error(
      "bench: wrk is not installed. Install it (Debian/Ubuntu: apt-get install -y wrk) and retry.",
    );
    return 2;
  }

  const dir = await Deno.makeTempDir({ prefix: "steward_bench_" });
  const token = `stw_${randomAlnum(40)}`;
  const servers: ServerProcess[] = [];
  // Interrupted (Ctrl-C, SIGTERM): `finally` would not run, so kill the servers here.
  const interrupted = () => {
    for (const child of [...running, ...servers.map((s) => s.child)]) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
    Deno.removeSync(dir, { recursive: true });
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    const steward = ServerProcess.spawn({
      env: { STEWARD_KV_PATH: join(dir, "steward.kv"), STEWARD_BOOTSTRAP_TOKEN: token },
    });
    servers.push(steward);
    const plain = ServerProcess.spawn({
      args: ["run", "--allow-net", "--allow-env", "bench/plain_hono.ts"],
    });
    servers.push(plain);
    await Promise.all(servers.map((s) => s.waitForStdout(LISTENING, "the listening line")));

    const auth = `Authorization: Bearer ${token}`;
    const created = await fetch(`${steward.url}/v1/tenants`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "Bench Inc", slug: "bench" }),
    });
    const createdBody = await created.json();
    if (created.status !== 201) {
      throw new Error(`creating the tenant: ${created.status} ${JSON.stringify(createdBody)}`);
    }
    const tenantId: string = createdBody.data.id;

    const PLAIN = "plain hono GET /json";
    const LIVE = "steward GET /health/live (no auth, no KV)";
    const TENANT = "steward GET /v1/tenants/{id}";
    const targets = [
      { name: PLAIN, url: `${plain.url}/json`, headers: [] as string[] },
      { name: LIVE, url: `${steward.url}/health/live`, headers: [] as string[] },
      { name: TENANT, url: `${steward.url}/v1/tenants/${tenantId}`, headers: [auth] },
    ];
    for (const t of targets) {
      const res = await fetch(t.url, {
        headers: Object.fromEntries(t.headers.map((h) => h.split(": ") as [string, string])),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${t.name}: ${res.status} ${text}`);
      console.log(`${t.name}: 200, ${new TextEncoder().encode(text).length} body bytes`);
    }

    console.log(`\n${(await machine()).join("\n")}`);
    console.log(
      `wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s --latency, ${WARMUP_SECONDS} s warm-up, ` +
        `${ROUNDS} round(s), targets loaded one at a time\n`,
    );
    for (const t of targets) {
      const h = t.headers.map((x) => ` -H '${x.replace(token, "$TOKEN")}'`).join("");
      console.log(`  wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s --latency${h} ${t.url}`);
    }
    console.log();

    const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        if (WARMUP_SECONDS > 0) await wrk(WARMUP_SECONDS, t.url, t.headers);
        const r = parseWrk(await wrk(SECONDS, t.url, t.headers));
        results.get(t.name)!.push(r);
        console.log(
          `round ${round} ${t.name}: ${fmt(r.requestsPerSec)} req/s, ` +
            `p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms, ${r.requests} requests` +
            (r.non2xx || r.socketErrors
              ? `, ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`
              : ""),
        );
      }
    }

    const summary = targets.map((t) => {
      const rs = results.get(t.name)!;
      return {
        name: t.name,
        rps: median(rs.map((r) => r.requestsPerSec)),
        p50: median(rs.map((r) => r.p50Ms)),
        p99: median(rs.map((r) => r.p99Ms)),
        bad: rs.reduce((n, r) => n + r.non2xx + r.socketErrors, 0),
      };
    });
    const width = Math.max(...summary.map((s) => s.name.length));
    console.log(
      `\n${"target".padEnd(width)} | ${"req/s".padStart(9)} | ${"p50 ms".padStart(7)} | ` +
        `${"p99 ms".padStart(7)} | errors`,
    );
    console.log(
      `${"-".repeat(width)}-|-${"-".repeat(9)}-|-${"-".repeat(7)}-|-${"-".repeat(7)}-|-------`,
    );
    for (const s of summary) {
      console.log(
        `${s.name.padEnd(width)} | ${fmt(s.rps).padStart(9)} | ${fmt(s.p50, 2).padStart(7)} | ` +
          `${fmt(s.p99, 2).padStart(7)} | ${s.bad}`,
      );
    }
    const rps = (name: string) => summary.find((s) => s.name === name)!.rps;
    const ratio = rps(TENANT) / rps(PLAIN);
    console.log(
      `\nratio steward/plain (GET /v1/tenants/{id} ÷ GET /json): ${ratio.toFixed(3)} ` +
        `(${(100 * ratio).toFixed(1)} % of plain Hono's req/s)`,
    );
    console.log(
      `context: /health/live ÷ plain = ${(rps(LIVE) / rps(PLAIN)).toFixed(3)}, ` +
        `/v1/tenants/{id} ÷ /health/live = ${(rps(TENANT) / rps(LIVE)).toFixed(3)}`,
    );
    console.log(`load average after the run: ${await run("cat", "/proc/loadavg")}`);
    if (summary.some((s) => s.bad > 0)) {
      console.error(
        "bench: some requests failed (non-2xx or socket errors); the figures are not valid",
      );
      return 1;
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
    // SIGTERM; one that does not exit in time is killed.
    await Promise.all(servers.map((s) => s.stop().catch(() => s[Symbol.asyncDispose]())));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

try {
  Deno.exit(await main());
} catch (err) {
  console.error(`bench: ${err instanceof Error ? err.message : err}`);
  Deno.exit(1);
}
