/**
 * Stopping under load: main.ts in its own process on a KV file, loaded with concurrent
 * verifies and usage-event batches, is stopped while the load runs. The client counts every
 * acknowledged unit — a VALID verify, an accepted event — and nothing of a request that failed
 * because the server was going away. After a restart on the same file the usage endpoints show:
 *
 * - after SIGTERM, exactly what was acknowledged, verifications and events alike;
 * - after SIGKILL, every acknowledged event (an event is committed before its answer), plus at
 *   most the events of the batches cut off unanswered. (Verify's loss to a hard kill, up to one
 *   flush interval, is measured by bench/sigkill.ts.)
 */
import assert from "node:assert/strict";
import { randomAlnum, ServerProcess, tempDir, WAIT_SECONDS, within } from "../_server.ts";

const EVENTS_PER_BATCH = 100;
const METRIC = "api.calls";

/** What the client was told was counted, and what it sent without an answer. */
class Tally {
  verifications = 0;
  units = 0;
  batches = 0;
  /** Requests that got no answer or a refusal: the server was going away. */
  failed = 0;
  /** Units of the event batches among those: committed or not, nobody was told. */
  unansweredUnits = 0;
}

/**
 * POSTs a `body()` after another until a request fails; `onAnswer` counts what an answer
 * acknowledges, and says false when the answer is a refusal.
 */
async function worker<B>(
  url: string,
  token: string,
  body: () => B,
  // deno-lint-ignore no-explicit-any
  onAnswer: (status: number, data: any, sent: B) => boolean,
  onFailure: (sent: B) => void,
) {
  for (;;) {
    const sent = body();
    let status: number;
    let text: string;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(sent),
      });
      status = res.status;
      text = await res.text();
    } catch {
      return onFailure(sent);
    }
    if (!onAnswer(status, JSON.parse(text).data, sent)) return onFailure(sent);
  }
}

/** A tenant on a plan without practical limits, with four keys. */
async function loadedTenant(server: ServerProcess, token: string) {
  let tenantId = "";
  const steps: [string, string, unknown][] = [
    ["POST", "/v1/plans", {
      code: "roomy",
      name: "Roomy",
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 1_000_000, burst: 1_000_000 },
      quota: { units: 1e12, period: "month" },
      sla: 99,
    }],
    ["POST", "/v1/tenants", { name: "Loaded", slug: "loaded" }],
    ["PATCH", "/v1/tenants/loaded/billing", { plan_code: "roomy", override: false }],
  ];
  for (const [method, path, body] of steps) {
    const res = await server.call(method, path, { token, body });
    assert.ok(res.status < 300, `${method} ${path}: ${res.text}`);
    if (path === "/v1/tenants") tenantId = res.body.data.id;
  }
  const apiKeys: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await server.call("POST", "/v1/tenants/loaded/api-keys", {
      token,
      body: { name: `k${i}`, environment: "live" },
    });
    assert.equal(res.status, 201, res.text);
    apiKeys.push(res.body.data.key);
  }
  return { tenantId, apiKeys };
}

/**
 * Starts `verifiers` + `reporters` workers against `server`; resolves when every one has
 * stopped at its first failed request.
 */
function load(
  server: ServerProcess,
  token: string,
  target: { tenantId: string; apiKeys: string[] },
  tally: Tally,
  workers: { verifiers: number; reporters: number },
) {
  let batches = 0;
  const verifying = Array.from({ length: workers.verifiers }, (_, w) =>
    worker(
      `${server.url}/v1/keys/verify`,
      token,
      () => ({ key: target.apiKeys[w % target.apiKeys.length] }),
      (status, data) => {
        if (status !== 200 || data.code !== "VALID") return false;
        tally.verifications++;
        return true;
      },
      () => tally.failed++,
    ));
  const reporting = Array.from({ length: workers.reporters }, (_, w) =>
    worker(
      `${server.url}/v1/usage/events`,
      token,
      () => {
        const batch = ++batches;
        return {
          events: Array.from({ length: EVENTS_PER_BATCH }, (_, i) => ({
            id: `w${w}-b${batch}-${i}`,
            tenant_id: target.tenantId,
            metric: METRIC,
            quantity: 1 + i % 3,
            timestamp: new Date().toISOString(),
          })),
        };
      },
      (status, data, sent) => {
        if (status !== 200) return false;
        sent.events.forEach((event, i) => {
          assert.equal(data.results[i].status, "accepted");
          tally.units += event.quantity;
        });
        tally.batches++;
        return true;
      },
      (sent) => {
        tally.failed++;
        tally.unansweredUnits += sent.events.reduce((n, e) => n + e.quantity, 0);
      },
    ));
  return Promise.all([...verifying, ...reporting]);
}

/** Waits (bounded) until `tally` has acknowledged at least `verifications` and `batches`. */
function acknowledged(server: ServerProcess, tally: Tally, verifications: number, batches: number) {
  return within(
    WAIT_SECONDS,
    "load to be acknowledged",
    (async () => {
      while (tally.verifications < verifications || tally.batches < batches) {
        if (tally.failed) throw new Error(`a request failed before the signal: ${server.stderr}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
  );
}

/** The tenant's use this period and its total over yesterday and today, per metric. */
async function usage(server: ServerProcess, token: string) {
  const res = await server.call("GET", "/v1/tenants/loaded/usage", { token });
  assert.equal(res.status, 200, res.text);
  const used: Record<string, number> = Object.fromEntries(
    res.body.data.metrics.map((m: { metric: string; used: number }) => [m.metric, m.used]),
  );
  // Yesterday too, should the run cross midnight UTC.
  const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const byDay: Record<string, number> = {};
  for (const metric of [METRIC, "verifications"]) {
    const daily = await server.call(
      "GET",
      `/v1/tenants/loaded/usage/daily?metric=${metric}&from=${from}`,
      { token },
    );
    assert.equal(daily.status, 200, daily.text);
    byDay[metric] = daily.body.data.total;
  }
  return { used, byDay };
}

Deno.test("shutdown: SIGTERM under load of verifies and usage events loses nothing acknowledged", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  const env = { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: token };
  const tally = new Tally();
  const workers = { verifiers: 8, reporters: 4 };
  {
    await using server = await ServerProcess.start({ env });
    const target = await loadedTenant(server, token);
    const running = load(server, token, target, tally, workers);
    // A couple of seconds of load, past a timed flush or two.
    await acknowledged(server, tally, 3_000, 30);
    server.child.kill("SIGTERM");
    const status = await server.exited();
    assert.equal(status.code, 0, `exit after SIGTERM: ${status.code}\n${server.stderr}`);
    assert.match(server.stdout, /SIGTERM received, draining/);
    await within(WAIT_SECONDS, "the load to stop", running);
    assert.equal(tally.failed, workers.verifiers + workers.reporters);
  }
  {
    await using server = await ServerProcess.start({ env });
    const expected = { [METRIC]: tally.units, verifications: tally.verifications };
    assert.deepEqual(await usage(server, token), { used: expected, byDay: expected });
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
});

Deno.test("shutdown: SIGKILL under load of usage events loses no acknowledged event", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  const env = { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: token };
  const tally = new Tally();
  const workers = { verifiers: 0, reporters: 8 };
  {
    await using server = await ServerProcess.start({ env });
    const target = await loadedTenant(server, token);
    const running = load(server, token, target, tally, workers);
    await acknowledged(server, tally, 0, 40);
    server.child.kill("SIGKILL");
    assert.equal((await server.exited()).signal, "SIGKILL");
    await within(WAIT_SECONDS, "the load to stop", running);
    assert.equal(tally.failed, workers.reporters);
  }
  {
    await using server = await ServerProcess.start({ env });
    const { used, byDay } = await usage(server, token);
    for (const counted of [used[METRIC], byDay[METRIC]]) {
      assert.ok(
        counted >= tally.units && counted <= tally.units + tally.unansweredUnits,
        `${counted} counted; ${tally.units} acknowledged, ${tally.unansweredUnits} unanswered`,
      );
    }
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
});
