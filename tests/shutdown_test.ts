/**
 * SIGTERM under load loses nothing: main.ts in its own process on a KV file, loaded with
 * concurrent verifies and usage-event batches, is sent SIGTERM while the load runs. Every
 * acknowledged unit — a VALID verify, an accepted event — is counted by the client; a request
 * that failed because the server was going away is not. After a restart on the same file the
 * usage endpoints show exactly what was acknowledged.
 */
import assert from "node:assert/strict";
import { randomAlnum, ServerProcess, tempDir, WAIT_SECONDS, within } from "./_server.ts";

const VERIFY_WORKERS = 8;
const EVENT_WORKERS = 4;
const EVENTS_PER_BATCH = 100;
/** Acknowledged before the SIGTERM (a couple of seconds, past a timed flush or two). */
const VERIFIES_BEFORE_SIGTERM = 3_000;
const BATCHES_BEFORE_SIGTERM = 30;
const METRIC = "api.calls";

/** What the client was told was counted. */
interface Acknowledged {
  verifications: number;
  units: number;
  batches: number;
  /** Requests that got no answer or an error: the server was going away. */
  failed: number;
}

/**
 * POSTs a `body()` after another until a request fails; `onAnswer` counts what an answer
 * acknowledges, and says false when the answer is a refusal (the server going away).
 */
async function worker<B>(
  url: string,
  token: string,
  body: () => B,
  // deno-lint-ignore no-explicit-any
  onAnswer: (status: number, data: any, sent: B) => boolean,
  ack: Acknowledged,
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
      ack.failed++;
      return;
    }
    if (!onAnswer(status, JSON.parse(text).data, sent)) {
      ack.failed++;
      return;
    }
  }
}

Deno.test("shutdown: SIGTERM under load of verifies and usage events loses nothing acknowledged", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  const env = { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: token };
  const ack: Acknowledged = { verifications: 0, units: 0, batches: 0, failed: 0 };
  let tenantId = "";
  {
    await using server = await ServerProcess.start({ env });
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

    let sent = 0;
    const verifying = Array.from({ length: VERIFY_WORKERS }, (_, w) =>
      worker(
        `${server.url}/v1/keys/verify`,
        token,
        () => ({ key: apiKeys[w % apiKeys.length] }),
        (status, data) => {
          if (status !== 200 || data.code !== "VALID") return false;
          ack.verifications++;
          return true;
        },
        ack,
      ));
    const reporting = Array.from({ length: EVENT_WORKERS }, (_, w) =>
      worker(
        `${server.url}/v1/usage/events`,
        token,
        () => {
          const batch = ++sent;
          return {
            events: Array.from({ length: EVENTS_PER_BATCH }, (_, i) => ({
              id: `w${w}-b${batch}-${i}`,
              tenant_id: tenantId,
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
            ack.units += event.quantity;
          });
          ack.batches++;
          return true;
        },
        ack,
      ));
    const load = Promise.all([...verifying, ...reporting]);

    await within(
      WAIT_SECONDS,
      "load to be acknowledged",
      (async () => {
        while (
          ack.verifications < VERIFIES_BEFORE_SIGTERM || ack.batches < BATCHES_BEFORE_SIGTERM
        ) {
          if (ack.failed) throw new Error(`a request failed before the SIGTERM: ${server.stderr}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      })(),
    );
    server.child.kill("SIGTERM");
    const status = await server.exited();
    assert.equal(status.code, 0, `exit after SIGTERM: ${status.code}\n${server.stderr}`);
    assert.match(server.stdout, /SIGTERM received, draining/);
    // Every worker stops at its first failed request: the server is gone.
    await within(WAIT_SECONDS, "the load to stop", load);
    assert.equal(ack.failed, VERIFY_WORKERS + EVENT_WORKERS);
  }
  {
    await using server = await ServerProcess.start({ env });
    const usage = await server.call("GET", "/v1/tenants/loaded/usage", { token });
    assert.equal(usage.status, 200, usage.text);
    const used = Object.fromEntries(
      usage.body.data.metrics.map((m: { metric: string; used: number }) => [m.metric, m.used]),
    );
    assert.deepEqual(used, { [METRIC]: ack.units, verifications: ack.verifications });
    // The same by day (yesterday included, should the run cross midnight UTC).
    const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    for (const [metric, expected] of [[METRIC, ack.units], ["verifications", ack.verifications]]) {
      const daily = await server.call(
        "GET",
        `/v1/tenants/loaded/usage/daily?metric=${metric}&from=${from}`,
        { token },
      );
      assert.equal(daily.status, 200, daily.text);
      assert.equal(daily.body.data.total, expected, `${metric} by day`);
    }
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
});
