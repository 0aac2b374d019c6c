/**
 * End to end: main.ts in its own process delivers webhooks to a receiver in this test, and is
 * stopped between attempts. The deliveries wait in the KV file, and the next process finishes
 * them: every event arrives, verified with the `standardwebhooks` package (on the wall clock).
 *
 * The first retry comes about 5 s after the first attempt (the schedule's first step), so this
 * test waits for it, bounded, as e2e tests do.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { keys } from "../../kv/keys.ts";
import { randomAlnum, ServerProcess, within } from "../_server.ts";

interface Receipt {
  id: string;
  type: string;
  status: number;
}

Deno.test("e2e webhooks: pending deliveries survive a restart between attempts and complete", async () => {
  const dir = await Deno.makeTempDir({ prefix: "steward_hooks_e2e_" });
  const token = `stw_${randomAlnum(40)}`;
  const env = {
    STEWARD_KV_PATH: join(dir, "steward.kv"),
    STEWARD_BOOTSTRAP_TOKEN: token,
    STEWARD_MASTER_KEY: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    WEBHOOK_ALLOW_PRIVATE_URLS: "true",
  };

  let up = false;
  let verifier: Webhook | null = null;
  const receipts: Receipt[] = [];
  const rejected: string[] = [];
  const changed = { notify: () => {} };
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    try {
      const payload = verifier!.verify(body, Object.fromEntries(req.headers)) as { type: string };
      receipts.push({
        id: req.headers.get("webhook-id")!,
        type: payload.type,
        status: up ? 204 : 503,
      });
    } catch (err) {
      rejected.push(String(err));
    }
    changed.notify();
    return new Response(null, { status: up ? 204 : 503 });
  });
  /** Waits (bounded) until `done` holds, re-checking after each request the receiver gets. */
  const until = (what: string, done: () => boolean) =>
    within(
      30,
      what,
      (async () => {
        while (!done()) await new Promise<void>((resolve) => (changed.notify = resolve));
      })(),
    );

  try {
    let endpointId: string;
    {
      await using server = await ServerProcess.start({ env });
      const created = await server.call("POST", "/v1/admin/webhooks", {
        token,
        body: { url: `http://127.0.0.1:${receiver.addr.port}/hooks` },
      });
      assert.equal(created.status, 201, created.text);
      verifier = new Webhook(created.body.data.secret);
      endpointId = created.body.data.id;
      for (const slug of ["acme", "globex", "initech"]) {
        const t = await server.call("POST", "/v1/tenants", { token, body: { name: slug, slug } });
        assert.equal(t.status, 201, t.text);
      }
      // Each event's first attempt fails (the receiver is down); then the server stops. The
      // endpoint gets its own webhook.created too.
      await until("the first attempts", () => new Set(receipts.map((r) => r.id)).size >= 4);
      const status = await server.stop();
      assert.equal(status.code, 0, server.stderr);
    }
    const ids = new Set(receipts.map((r) => r.id));
    assert.equal(ids.size, 4);
    assert.ok(receipts.every((r) => r.status === 503));

    up = true;
    {
      await using server = await ServerProcess.start({ env });
      await until(
        "the retries after the restart",
        () => [...ids].every((id) => receipts.some((r) => r.id === id && r.status === 204)),
      );
      // A stop waits for the runs in flight: every outcome is written when it exits.
      const status = await server.stop();
      assert.equal(status.code, 0, server.stderr);
    }
    const kv = await Deno.openKv(env.STEWARD_KV_PATH);
    try {
      const messages = await Array.fromAsync(
        kv.list<{ id: string; status: string }>({ prefix: keys.webhookMessages(null, endpointId) }),
      );
      assert.deepEqual(
        messages.map((m) => [m.value.id, m.value.status]).sort(),
        [...ids].sort().map((id) => [id, "succeeded"]),
      );
    } finally {
      kv.close();
    }
    assert.deepEqual(rejected, [], "every request verified");
    assert.deepEqual(
      receipts.filter((r) => r.status === 204).map((r) => r.type).sort(),
      ["tenant.created", "tenant.created", "tenant.created", "webhook.created"],
    );
  } finally {
    await receiver.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
