/**
 * Deliveries to a real HTTP receiver on 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE_URLS on), each one
 * verified with the `standardwebhooks` package. The receiver first takes deliveries but fails to
 * acknowledge them, then is down, then recovers: every event arrives, every request verifies,
 * and a duplicate always carries the webhook-id of the first copy.
 *
 * The clock is injected (retries run without sleeping) but set near the wall clock, because the
 * package checks `webhook-timestamp` against it (±5 minutes): the whole run spans 7 minutes of
 * the injected clock, centred on now.
 */
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { setup } from "../_harness.ts";
import { ADMIN, drain, tenantHooks } from "../_webhooks.ts";

interface Receipt {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

Deno.test("receiver: every event arrives verified; the receiver fails, then recovers; duplicates share a webhook-id", async () => {
  await using h = await setup({ allowPrivateUrls: true });
  h.network.fetch = (url, init) => fetch(url, init);
  const start = Date.now() - 3 * 60_000;
  h.clock.now = start;

  const receipts: Receipt[] = [];
  const rejected: string[] = [];
  let requests = 0;
  /** One verifier per endpoint, by the path it receives on. */
  const verifiers = new Map<string, Webhook>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    requests++;
    const body = await req.text();
    let payload: { type: string; data: Record<string, unknown> };
    try {
      const verifier = verifiers.get(new URL(req.url).pathname)!;
      payload = verifier.verify(body, Object.fromEntries(req.headers)) as typeof payload;
    } catch (err) {
      rejected.push(String(err));
      return new Response("bad signature", { status: 400 });
    }
    const elapsed = h.clock.now - start;
    // First it takes deliveries without acknowledging them, then it is down, then it is back.
    if (elapsed >= 3_000 && elapsed < 60_000) return new Response("down", { status: 503 });
    receipts.push({ id: req.headers.get("webhook-id")!, type: payload.type, data: payload.data });
    return new Response(null, { status: elapsed < 3_000 ? 500 : 204 });
  });
  try {
    const endpoints: string[] = [];
    const listen = async (base: string, path: string) => {
      const created = await h.call("POST", base, {
        token: h.root,
        body: { url: `http://127.0.0.1:${server.addr.port}${path}` },
      });
      assert.equal(created.status, 201, created.text);
      verifiers.set(path, new Webhook(created.body.data.secret));
      endpoints.push(`${base}/${created.body.data.id}`);
    };
    await listen(ADMIN, "/platform");

    // Events now, and more while the receiver is down.
    for (const slug of ["acme", "globex", "initech"]) {
      const t = await h.tenant(slug);
      await h.call("POST", `/v1/tenants/${slug}/projects`, {
        token: h.root,
        body: { name: `${slug} app` },
      });
      await h.call("PATCH", `/v1/tenants/${t.id}`, { token: h.root, body: { name: slug } });
    }
    await drain(h);
    assert.ok(receipts.length > 0, "the first attempts were taken (and not acknowledged)");
    h.advance(30_000);
    await listen(tenantHooks("acme"), "/acme");
    await h.call("POST", "/v1/tenants/acme/suspend", { token: h.root, body: { reason: "late" } });

    for (let elapsed = 30_000; elapsed <= 7 * 60_000; elapsed += 10_000) {
      await drain(h);
      h.advance(10_000);
    }

    assert.deepEqual(rejected, [], "every request verified");
    const messages: { id: string; status: string }[] = [];
    for (const endpoint of endpoints) {
      const res = await h.call("GET", `${endpoint}/deliveries?limit=100`, { token: h.root });
      messages.push(...res.body.data);
    }
    assert.ok(messages.length >= 12, `${messages.length} messages`);
    for (const m of messages) assert.equal(m.status, "succeeded", JSON.stringify(m));
    // Every message arrived; each webhook-id stands for one event, however often it came.
    const byId = new Map<string, Receipt[]>();
    for (const r of receipts) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
    assert.deepEqual([...byId.keys()].sort(), messages.map((m) => m.id).sort());
    let duplicates = 0;
    for (const copies of byId.values()) {
      duplicates += copies.length - 1;
      for (const c of copies) assert.deepEqual(c, copies[0], "a duplicate is the same delivery");
    }
    assert.ok(duplicates > 0, "the unacknowledged first deliveries came again");
    assert.ok(requests > receipts.length, "some requests failed while it was down");
    const types = new Set(receipts.map((r) => r.type));
    for (const t of ["tenant.created", "project.created", "tenant.updated", "tenant.suspended"]) {
      assert.ok(types.has(t), `no ${t} arrived`);
    }
  } finally {
    await server.shutdown();
  }
});
