/**
 * What the HTTP benchmarks share: settings from the environment, wrk runs and their parsing,
 * rounds over targets with a summary table, the machine description, and server processes
 * that are killed however the run ends.
 */
import { ServerProcess, within } from "../tests/_server.ts";

export function setting(name: string, fallback: number, min: number, max: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`bench: ${name} must be an integer from ${min} to ${max}, not "${raw}"`);
    Deno.exit(2);
  }
  return value;
}

export const LOAD = {
  seconds: setting("BENCH_SECONDS", 10, 1, 600),
  warmupSeconds: setting("BENCH_WARMUP_SECONDS", 2, 0, 60),
  threads: setting("BENCH_THREADS", 2, 1, 64),
  connections: setting("BENCH_CONNECTIONS", 50, 1, 10_000),
  // Up to 100: the in-process benches (chain.ts, verify_call.ts) take their rounds from it too.
  rounds: setting("BENCH_ROUNDS", 1, 1, 100),
  /** Targets take turns in slices this long (see loadTargets). */
  sliceSeconds: setting("BENCH_SLICE_SECONDS", 2, 1, 600),
};

export interface WrkResult {
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

export function parseWrk(out: string): WrkResult {
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

/** One load target: a URL, its headers, and optionally a wrk Lua script (POST bodies). */
export interface Target {
  name: string;
  url: string;
  headers?: string[];
  script?: string;
  /** wrk's per-request timeout (default 2 s), for targets whose answers take longer. */
  timeoutSeconds?: number;
  /**
   * A count the target's server keeps of the work it has done (events committed, …), read
   * before and after each measured run: its rate is reported as units committed per second.
   * Unlike wrk's request rate it also counts the work of requests still in flight at the end,
   * which matters when a single request takes seconds.
   */
  committed?: () => Promise<number>;
}

/** wrk processes under way, killed if the benchmark is interrupted. */
const running = new Set<Deno.ChildProcess>();

function wrkArgs(seconds: number, t: Target, script = t.script): string[] {
  return [
    `-t${LOAD.threads}`,
    `-c${LOAD.connections}`,
    `-d${seconds}s`,
    "--latency",
    ...(t.timeoutSeconds ? ["--timeout", `${t.timeoutSeconds}s`] : []),
    ...(script ? ["-s", script] : []),
    ...(t.headers ?? []).flatMap((h) => ["-H", h]),
    t.url,
  ];
}

async function wrk(seconds: number, t: Target, script: string): Promise<string> {
  const child = new Deno.Command("wrk", {
    args: wrkArgs(seconds, t, script),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.add(child);
  const out = await within(seconds + 30, "wrk", child.output()).finally(() =>
    running.delete(child)
  );
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrk failed (${out.code}):\n${text}`);
  return text;
}

export async function wrkInstalled(): Promise<boolean> {
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
export async function run(cmd: string, ...args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

export async function machine(): Promise<string[]> {
  const model = /:\s*(.+)$/.exec(await run("grep", "-m1", "model name", "/proc/cpuinfo"))?.[1];
  const memKb = Number(/(\d+) kB/.exec(await run("grep", "MemTotal", "/proc/meminfo"))?.[1] ?? 0);
  return [
    `cpus: ${navigator.hardwareConcurrency} × ${model ?? "unknown"}`,
    `memory: ${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    `deno ${Deno.version.deno} (v8 ${Deno.version.v8}), ${Deno.build.target}`,
    `load average before the run: ${await run("cat", "/proc/loadavg")}`,
  ];
}

export const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

export interface Summary {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  bad: number;
  /** req/s of each round, in order. */
  rounds: number[];
  /** req/s of each slice of every round, in order: a target's and its baseline's i-th ran together. */
  slices: number[];
  /** Median units committed per second (targets with `committed`), else null. */
  committedPerSec: number | null;
}

/**
 * What a wrk script adds to every measured run: its counts and its whole latency histogram
 * (microseconds:count, the non-empty buckets), so that the slices of a round add up exactly.
 */
const REPORT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("\\nbench-counts %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout))
  local buckets = {}
  for i = 1, #latency do
    local us, count = latency(i)
    buckets[#buckets + 1] = us .. ":" .. count
  end
  io.write("bench-latency ", table.concat(buckets, " "), "\\n")
end
`;

/** The measured part of a target's round: the sum of its slices. */
class Tally {
  requests = 0;
  durationUs = 0;
  non2xx = 0;
  socketErrors = 0;
  /** Latency histogram: microseconds → requests. */
  readonly latency = new Map<number, number>();
  /** req/s of each slice. */
  readonly slices: number[] = [];
  units = 0;
  unitSeconds = 0;

  add(wrkOutput: string) {
    const counts = /^bench-counts (\d+) (\d+) (\d+) (\d+)$/m.exec(wrkOutput);
    const buckets = /^bench-latency (.*)$/m.exec(wrkOutput);
    if (!counts || !buckets) throw new Error(`no report in wrk's output:\n${wrkOutput}`);
    const [requests, durationUs, non2xx, socketErrors] = counts.slice(1).map(Number);
    this.requests += requests;
    this.durationUs += durationUs;
    this.non2xx += non2xx;
    this.socketErrors += socketErrors;
    this.slices.push(requests / (durationUs / 1e6));
    for (const bucket of buckets[1].split(" ").filter(Boolean)) {
      const [us, count] = bucket.split(":").map(Number);
      this.latency.set(us, (this.latency.get(us) ?? 0) + count);
    }
  }

  get rps() {
    return this.requests / (this.durationUs / 1e6);
  }

  /** The latency at percentile `p`, in ms, ranked as wrk ranks it. */
  percentileMs(p: number): number {
    const total = [...this.latency.values()].reduce((a, b) => a + b, 0);
    const rank = Math.round((p / 100) * total + 0.5);
    let seen = 0;
    for (const [us, count] of [...this.latency].sort(([a], [b]) => a - b)) {
      seen += count;
      if (seen >= rank) return us / 1000;
    }
    return 0;
  }
}

/**
 * Loads the targets for LOAD.rounds rounds and returns the median round of each. A round gives
 * each target LOAD.seconds of load in slices of LOAD.sliceSeconds, taking turns (the order
 * reversed every slice), so a slow spell of the machine falls on every target alike and the
 * ratios between them hold; each target is warmed up once a round. A target's round adds its
 * slices' requests, time and latency histograms. Prints every round and a table of medians;
 * `secret` is masked in the commands. `sliceSeconds`: LOAD.seconds for targets whose requests
 * take seconds (work still in flight when a slice ends is counted in no slice).
 */
export async function loadTargets(
  targets: Target[],
  secret: string,
  sliceSeconds = LOAD.sliceSeconds,
): Promise<Summary[]> {
  const slices = Math.ceil(LOAD.seconds / sliceSeconds);
  console.log(`\n${(await machine()).join("\n")}`);
  console.log(
    `wrk -t${LOAD.threads} -c${LOAD.connections} --latency, ${LOAD.seconds} s a target a round ` +
      `in ${slices} slice(s) taking turns, ${LOAD.warmupSeconds} s warm-up, ` +
      `${LOAD.rounds} round(s)\n`,
  );
  for (const t of targets) {
    const args = wrkArgs(sliceSeconds, t).map((a) => a.includes(" ") ? `'${a}'` : a);
    const command = args.join(" ");
    console.log(`  wrk ${secret ? command.replaceAll(secret, "$TOKEN") : command}`);
  }
  console.log(`  (each script also reports its latency histogram, for adding slices up)\n`);

  const scripts = new Map<Target, string>();
  const tallies = new Map<Target, Tally[]>(targets.map((t) => [t, []]));
  try {
    for (const t of targets) {
      const script = await Deno.makeTempFile({ prefix: "bench_", suffix: ".lua" });
      const own = t.script ? await Deno.readTextFile(t.script) : "";
      await Deno.writeTextFile(script, own + REPORT);
      scripts.set(t, script);
    }
    for (let round = 1; round <= LOAD.rounds; round++) {
      const tally = new Map(targets.map((t) => [t, new Tally()]));
      for (const t of targets) {
        if (LOAD.warmupSeconds > 0) await wrk(LOAD.warmupSeconds, t, scripts.get(t)!);
      }
      for (let slice = 0; slice < slices; slice++) {
        const seconds = Math.min(sliceSeconds, LOAD.seconds - slice * sliceSeconds);
        for (const t of slice % 2 === 0 ? targets : [...targets].reverse()) {
          const before = await t.committed?.();
          const started = performance.now();
          const r = tally.get(t)!;
          r.add(await wrk(seconds, t, scripts.get(t)!));
          if (t.committed) {
            r.units += (await t.committed()) - before!;
            r.unitSeconds += (performance.now() - started) / 1000;
          }
        }
      }
      for (const t of targets) {
        const r = tally.get(t)!;
        tallies.get(t)!.push(r);
        const rate = t.committed ? `, ${fmt(r.units / r.unitSeconds)} units/s committed` : "";
        console.log(
          `round ${round} ${t.name}: ${fmt(r.rps)} req/s${rate}, ` +
            `p50 ${fmt(r.percentileMs(50), 2)} ms, p99 ${fmt(r.percentileMs(99), 2)} ms, ` +
            `${r.requests} requests` +
            (r.non2xx || r.socketErrors
              ? `, ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`
              : "") +
            (slices > 1 ? ` (slices: ${r.slices.map((x) => fmt(x)).join(" / ")})` : ""),
        );
      }
    }
  } finally {
    for (const script of scripts.values()) await Deno.remove(script).catch(() => {});
  }

  const summary = targets.map((t) => {
    const rs = tallies.get(t)!;
    return {
      name: t.name,
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.percentileMs(50))),
      p99: median(rs.map((r) => r.percentileMs(99))),
      bad: rs.reduce((n, r) => n + r.non2xx + r.socketErrors, 0),
      rounds: rs.map((r) => r.rps),
      slices: rs.flatMap((r) => r.slices),
      committedPerSec: t.committed ? median(rs.map((r) => r.units / r.unitSeconds)) : null,
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
  return summary;
}

/** A baseline server script (bench/plain_hono.ts, bench/naive_*.ts) in its own process, in `servers`. */
export function baselineServer(
  servers: ServerProcess[],
  script: string,
  env?: Record<string, string>,
): ServerProcess {
  const args = ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", script];
  const server = ServerProcess.spawn({ args, env });
  servers.push(server);
  return server;
}

/**
 * Runs `body` with a temporary directory and a list to put server processes in; on the way
 * out, however it goes (error, Ctrl-C, SIGTERM), the servers and wrk are stopped and the
 * directory removed. Returns the exit code for Deno.exit.
 */
export async function benchmark(
  body: (dir: string, servers: ServerProcess[]) => Promise<number>,
): Promise<number> {
  if (!(await wrkInstalled())) {
    console.error(
      "bench: wrk is not installed. Install it (Debian/Ubuntu: apt-get install -y wrk) and retry.",
    );
    return 2;
  }
  const dir = await Deno.makeTempDir({ prefix: "steward_bench_" });
  const servers: ServerProcess[] = [];
  // Interrupted: `finally` would not run, so kill everything here.
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
    const code = await body(dir, servers);
    console.log(`load average after the run: ${await run("cat", "/proc/loadavg")}`);
    return code;
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : err}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
    // SIGTERM; one that does not exit in time is killed.
    await Promise.all(servers.map((s) => s.stop().catch(() => s[Symbol.asyncDispose]())));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A wrk script that POSTs the lines of `bodiesFile` in turn. */
export function postScript(bodiesFile: string, token: string | null): string {
  return `
local bodies = {}
for line in io.lines("${bodiesFile}") do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
${token ? `wrk.headers["Authorization"] = "Bearer ${token}"` : ""}
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
`;
}

/** Fails the run when any request failed: the figures would not be valid. */
export function allAnswered(summary: Summary[]): number {
  if (!summary.some((s) => s.bad > 0)) return 0;
  console.error(
    "bench: some requests failed (non-2xx or socket errors); the figures are not valid",
  );
  return 1;
}

/**
 * A tenant `slug` on a plan with no practical limits, so every verify is VALID and the whole
 * path (rate limit, quota, usage) runs. Returns the tenant's id.
 */
export async function unlimitedTenant(
  server: Pick<ServerProcess, "call">,
  token: string,
  slug: string,
): Promise<string> {
  const steps: [string, string, unknown, number][] = [
    ["POST", "/v1/plans", {
      code: "unlimited",
      name: "Unlimited",
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 1_000_000, burst: 1_000_000 },
      quota: { units: 1e15, period: "month" },
      sla: 99.9,
    }, 201],
    ["POST", "/v1/tenants", { name: slug, slug }, 201],
    [
      "PATCH",
      `/v1/tenants/${slug}/billing`,
      { plan_code: "unlimited", override: true, reason: "benchmark" },
      200,
    ],
  ];
  let tenantId = "";
  for (const [method, path, body, status] of steps) {
    const res = await server.call(method, path, { token, body });
    if (res.status !== status) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
    if (path === "/v1/tenants") tenantId = res.body.data.id;
  }
  return tenantId;
}
