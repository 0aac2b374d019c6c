/**
 * Usage-event benchmark: `POST /v1/usage/events` in batches of 100 fresh events (ids never
 * repeat, so every event is read for its dedupe marker and committed), next to a naive server
 * that commits each event on its own (bench/naive_usage.ts: one dedupe read and one atomic
 * commit per event), both loaded in the same run with the same wrk script. Target: Steward
 * ≥ 20 × naive in events per second. The floor, loaded with them, commits each batch's writes
 * in one commit as Steward does and does nothing else: Steward ÷ floor is what its own work
 * costs, floor ÷ naive the most that batching these writes can reach.
 *
 * Events per second are events committed while wrk ran, read from each server's own count
 * before and after: a naive batch takes seconds, so wrk's completed requests would undercount it.
 *
 *   deno task bench:usage                         # wrk -t2 -c50 -d10s, one round
 *   BENCH_ROUNDS=3 deno task bench:usage
 *
 * Settings as bench/http.ts (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_THREADS,
 * BENCH_CONNECTIONS, BENCH_ROUNDS). Needs wrk.
 */
import { join } from "node:path";
import { LISTENING, randomAlnum, ServerProcess } from "../tests/_server.ts";
import {
  allAnswered,
  baselineServer,
  benchmark,
  fmt,
  LOAD,
  loadTargets,
  type Target,
  unlimitedTenant,
} from "./_load.ts";

const BATCH = 100;

/**
 * A wrk script POSTing batches of BATCH events for `tenantId`. Ids are the run's start second,
 * the wrk thread and a counter: unique across threads, the warm-up and the rounds.
 */
function eventsScript(token: string, tenantId: string): string {
  return `
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local prefix, n, stamp
function init(args)
  prefix = os.time() .. "-" .. tid
  n = 0
  stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${token}"
request = function()
  n = n + 1
  local events = {}
  for i = 1, ${BATCH} do
    events[i] = string.format(
      '{"id":"%s-%d-%d","tenant_id":"${tenantId}","metric":"api.calls","quantity":1,"timestamp":"%s"}',
      prefix, n, i, stamp)
  end
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(events, ",") .. ']}')
end
`;
}

Deno.exit(
  await benchmark(async (dir, servers) => {
    const token = `stw_${randomAlnum(40)}`;
    const steward = ServerProcess.spawn({
      env: { STEWARD_KV_PATH: join(dir, "steward.kv"), STEWARD_BOOTSTRAP_TOKEN: token },
    });
    servers.push(steward);
    const naive = baselineServer(servers, "bench/naive_usage.ts", {
      BENCH_KV_PATH: join(dir, "naive.kv"),
    });
    await Promise.all(
      [steward, naive].map((s) => s.waitForStdout(LISTENING, "the listening line")),
    );
    const tenantId = await unlimitedTenant(steward, token, "bench");
    const script = join(dir, "events.lua");
    await Deno.writeTextFile(script, eventsScript(token, tenantId));

    // One batch each, checked: every event accepted.
    const sample = (route: string) => ({
      events: Array.from({ length: BATCH }, (_, i) => ({
        id: `sample-${route}-${i}`,
        tenant_id: tenantId,
        metric: "api.calls",
        quantity: 1,
        timestamp: new Date().toISOString(),
      })),
    });
    const routes: [ServerProcess, string][] = [
      [steward, "/v1/usage/events"],
      [naive, "/v1/usage/events"],
      [naive, "/v1/usage/events/batched"],
    ];
    for (const [server, route] of routes) {
      const res = await server.call("POST", route, { token, body: sample(route) });
      const results: { status: string }[] = res.body?.data?.results ?? [];
      if (results.length !== BATCH || results.some((r) => r.status !== "accepted")) {
        throw new Error(`sample batch: ${res.status} ${res.text.slice(0, 500)}`);
      }
    }

    const NAIVE = "naive: one dedupe read + one commit per event";
    const FLOOR = "floor: the batch's writes in one commit, nothing else";
    const STEWARD = "steward POST /v1/usage/events";
    const targets: Target[] = [{
      name: NAIVE,
      url: `${naive.url}/v1/usage/events`,
      script,
      // 50 batches in line for one-by-one commits take seconds each: past wrk's 2 s default.
      timeoutSeconds: 30,
      committed: async () => (await naive.call("GET", "/v1/usage/total")).body.data.total,
    }, {
      name: FLOOR,
      url: `${naive.url}/v1/usage/events/batched`,
      script,
      timeoutSeconds: 30,
      committed: async () => (await naive.call("GET", "/v1/usage/total")).body.data.total,
    }, {
      name: STEWARD,
      url: `${steward.url}/v1/usage/events`,
      script,
      timeoutSeconds: 30,
      committed: async () =>
        (await steward.call("GET", "/v1/tenants/bench/usage", { token })).body.data.metrics
          .find((m: { metric: string }) => m.metric === "api.calls").used,
    }];
    // One window a round: a batch still being committed when a slice ends would count in none.
    const summary = await loadTargets(targets, token, LOAD.seconds);
    const rate = (name: string) => summary.find((s) => s.name === name)!.committedPerSec!;
    console.log(
      `\nevents committed per second (median of ${LOAD.rounds}): naive ${fmt(rate(NAIVE))}, ` +
        `steward ${fmt(rate(STEWARD))}` +
        `\nsteward ÷ naive = ${(rate(STEWARD) / rate(NAIVE)).toFixed(2)} (target ≥ 20)` +
        `\nsteward ÷ floor = ${(rate(STEWARD) / rate(FLOOR)).toFixed(2)}, floor ÷ naive = ` +
        `${(rate(FLOOR) / rate(NAIVE)).toFixed(2)} (the most any batching of these writes reaches)`,
    );
    return allAnswered(summary);
  }),
);
