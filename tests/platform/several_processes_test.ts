/**
 * End to end: three Steward processes on one KV file, requests spread across them. A quota
 * holds across them (leases), a change made through one is seen by the others within
 * STEWARD_VERIFY_CACHE_MS, each webhook message is delivered once, each cron runs once per
 * tick, and a key's rate limit is counted per process, as README "Running several processes"
 * says.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { keys } from "../../kv/keys.ts";
import {
  answering,
  freePort,
  parallelSteward,
  randomAlnum,
  ServerProcess,
  tempDir,
  within,
} from "../_server.ts";

const CACHE_MS = 500;

Deno.test("several processes: quotas, changes, webhooks, crons and rate limits across three processes on one store", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  const env = {
    STEWARD_KV_PATH: join(dir.path, "steward.kv"),
    STEWARD_BOOTSTRAP_TOKEN: token,
    STEWARD_MASTER_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    STEWARD_VERIFY_CACHE_MS: String(CACHE_MS),
    WEBHOOK_ALLOW_PRIVATE_URLS: "true",
  };
  // The first creates the store; the others start on it.
  await using a = await ServerProcess.start({ env });
  await using b = await ServerProcess.start({ env });
  await using c = await ServerProcess.start({ env });
  const all = [a, b, c];

  const deliveries = new Map<string, number>();
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const id = req.headers.get("webhook-id")!;
    deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
    return new Response(null, { status: 204 });
  });
  try {
    const call = async (
      server: ServerProcess,
      method: string,
      path: string,
      body?: unknown,
      status = 200,
    ) => {
      const res = await server.call(method, path, { token, body });
      assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
      return res.body?.data;
    };
    const hook = await call(a, "POST", "/v1/admin/webhooks", {
      url: `http://127.0.0.1:${receiver.addr.port}/hooks`,
      event_types: ["tenant.created"],
    }, 201);
    assert.ok(hook.id);

    // Tenants created through each process: their events go out from any of them, once.
    for (let i = 0; i < 9; i++) {
      await call(all[i % 3], "POST", "/v1/tenants", { name: `t${i}`, slug: `tenant-${i}` }, 201);
    }
    await call(a, "POST", "/v1/plans", {
      code: "q100",
      name: "q100",
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 10_000, burst: 10_000 },
      quota: { units: 100, period: "month" },
      sla: 99,
    }, 201);
    await call(b, "PATCH", "/v1/tenants/tenant-0/billing", { plan_code: "q100", override: false });
    const key = await call(c, "POST", "/v1/tenants/tenant-0/api-keys", {
      name: "k",
      environment: "live",
    }, 201);
    const verify = async (server: ServerProcess, k: string) =>
      (await call(server, "POST", "/v1/keys/verify", { key: k })) as {
        code: string;
        plan: { code: string } | null;
      };

    // 1. A quota of 100, 300 concurrent verifies spread over the three.
    const codes = await Promise.all(
      Array.from({ length: 300 }, (_, i) => verify(all[i % 3], key.key).then((v) => v.code)),
    );
    const valid = codes.filter((code) => code === "VALID").length;
    assert.ok(valid <= 103, `at most 100 + one per process: ${valid}`);
    assert.equal(valid, 100, "leases make it exact");
    assert.equal(codes.filter((code) => code === "USAGE_EXCEEDED").length, 300 - valid);

    // 2. Changes made through one process reach the others within the cache window.
    await call(a, "PATCH", "/v1/tenants/tenant-0/billing", { plan_code: "pro", override: false });
    const fresh = await call(a, "POST", "/v1/tenants/tenant-1/api-keys", {
      name: "k",
      environment: "live",
    }, 201);
    for (const s of all) assert.equal((await verify(s, fresh.key)).code, "VALID"); // warm
    await call(a, "DELETE", `/v1/tenants/tenant-1/api-keys/${fresh.id}`);
    await call(b, "POST", "/v1/tenants/tenant-0/suspend");
    await new Promise((r) => setTimeout(r, CACHE_MS + 100));
    for (const s of all) {
      assert.equal((await verify(s, fresh.key)).code, "REVOKED");
      assert.equal((await verify(s, key.key)).code, "TENANT_SUSPENDED");
    }
    await call(c, "POST", "/v1/tenants/tenant-0/resume");
    await new Promise((r) => setTimeout(r, CACHE_MS + 100));
    for (const s of all) assert.equal((await verify(s, key.key)).plan?.code, "pro");

    // 3. A key's rate limit is counted in each process: three allow up to three times it.
    const limited = await call(b, "POST", "/v1/tenants/tenant-2/api-keys", {
      name: "limited",
      environment: "live",
      rate_limit: { requests_per_second: 1, burst: 5 },
    }, 201);
    const perProcess = [];
    for (const s of all) {
      const answers = [];
      for (let i = 0; i < 15; i++) answers.push((await verify(s, limited.key)).code);
      perProcess.push(answers.filter((code) => code === "VALID").length);
      assert.ok(answers.includes("RATE_LIMITED"), "each process enforces the limit");
    }
    assert.ok(perProcess.every((n) => n >= 5), `each allows its own burst: ${perProcess}`);

    // 4. Each webhook message once (9 tenant.created events), whichever process ran the job.
    await within(
      30,
      "the deliveries",
      (async () => {
        while (deliveries.size < 9) await new Promise((r) => setTimeout(r, 100));
      })(),
    );

    // 5. Each cron once per tick: wait for the next minute's every-minute tasks.
    const runs = () =>
      all.flatMap((s) =>
        s.stdout.split("\n").filter((l) => l.includes('"msg":"maintenance"')).map((l) =>
          JSON.parse(l) as { task: string; started_at: string }
        )
      );
    await within(
      75,
      "a minute's maintenance runs",
      (async () => {
        while (runs().length === 0) await new Promise((r) => setTimeout(r, 250));
      })(),
    );
    await new Promise((r) => setTimeout(r, 3_000)); // the other processes' ticks of that minute
    const ticks = runs().map((r) => `${r.task} ${r.started_at.slice(0, 16)}`);
    assert.ok(ticks.length > 0);
    assert.equal(new Set(ticks).size, ticks.length, `each task once per minute: ${ticks}`);

    assert.ok([...deliveries.values()].every((n) => n === 1), "no message delivered twice");
    for (const s of all) assert.equal((await s.stop()).code, 0, s.stderr);
  } finally {
    await receiver.shutdown();
  }
});

Deno.test("several processes: deno serve --parallel answers on every isolate and SIGTERM loses no count", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  await using server = parallelSteward(port, {
    STEWARD_KV_PATH: dir.kvPath,
    STEWARD_BOOTSTRAP_TOKEN: token,
    STEWARD_MASTER_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
  });
  // Both isolates up before the calls, so that they can reach both (each says when it is).
  for (const worker of [0, 1]) {
    const ready = new RegExp(`serve-worker-${worker}\\s*\\] Steward: ready`);
    await server.waitForStdout(ready, `isolate ${worker}'s ready line`);
  }
  await answering(url);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await within(
      10,
      `${method} ${path}`,
      fetch(`${url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    return { status: res.status, body: await res.json() };
  };
  assert.equal((await call("POST", "/v1/tenants", { name: "Acme", slug: "acme" })).status, 201);
  await call("POST", "/v1/plans", {
    code: "roomy",
    name: "roomy",
    price: { amount: 0, currency: "usd", interval: "month" },
    rate_limit: { requests_per_second: 10_000, burst: 10_000 },
    quota: { units: 1_000_000, period: "month" },
    sla: 99,
  });
  await call("PATCH", "/v1/tenants/acme/billing", { plan_code: "roomy", override: false });
  const key = (await call("POST", "/v1/tenants/acme/api-keys", { name: "k", environment: "live" }))
    .body.data.key;
  // Concurrent calls over fresh connections reach both isolates.
  const codes = await Promise.all(
    Array.from({ length: 200 }, () => call("POST", "/v1/keys/verify", { key })),
  );
  assert.ok(codes.every((r) => r.body.data.code === "VALID"));
  const status = await server.stop();
  assert.equal(status.code, 0, server.stderr);
  assert.match(server.stdout, /serve-worker-1.*draining/, "a second isolate ran and drained");

  const kv = await Deno.openKv(dir.kvPath);
  try {
    const tenants = await Array.fromAsync(kv.list<{ id: string }>({ prefix: ["tenants"] }));
    const period = new Date().toISOString().slice(0, 7);
    const used = await kv.get<Deno.KvU64>(
      keys.usagePeriod(tenants[0].value.id, "verifications", period),
    );
    assert.equal(used.value?.value, 200n, "every isolate's counts written before the exit");
  } finally {
    kv.close();
  }
});
