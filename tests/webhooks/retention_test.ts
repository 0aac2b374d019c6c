/**
 * Retention of the webhook history (the daily prune-webhook-history task): outbox events,
 * fan-out markers, messages and attempts older than 30 days go; a message still pending stays,
 * with its event; newer history is untouched.
 */
import assert from "node:assert/strict";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { WEBHOOK_RETENTION_MS } from "../../domain/webhooks/retention.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { createHook, drain, receiver, tenantHooks } from "../_webhooks.ts";

const DAY = 86_400_000;

const count = async (h: Harness, prefix: Deno.KvKey) =>
  (await Array.fromAsync(h.kv.list({ prefix }))).length;

async function rename(h: Harness, name: string) {
  const res = await h.call("PATCH", "/v1/tenants/acme", { token: h.root, body: { name } });
  assert.equal(res.status, 200, res.text);
}

Deno.test("webhook retention: history past 30 days goes, pending messages and their events stay", async () => {
  await using h = await setup();
  const acme = await h.tenant("acme");
  // The "down" endpoint fails every time; the other answers 204.
  receiver(h, (req) => new Response(null, { status: req.url.endsWith("/down") ? 500 : 204 }));
  const up = await createHook(h, tenantHooks("acme"), { event_types: ["tenant.updated"] });
  const down = await createHook(h, tenantHooks("acme"), {
    url: "https://hooks.example.com/down",
    event_types: ["tenant.updated"],
  });
  await drain(h);
  const eventsBefore = await count(h, keys.events());

  await rename(h, "Old news");
  await h.runJobs(); // the fan-out
  await h.runJobs(); // first attempts: "up" succeeds; "down" fails and waits 5 s (pending)
  const messagesUp = keys.webhookMessages(acme.id, up.id);
  const messagesDown = keys.webhookMessages(acme.id, down.id);
  assert.equal(await count(h, messagesUp), 1);
  assert.equal(await count(h, messagesDown), 1);

  // A month on. (The sweep would have retried "down" and, after 5 days of failures, disabled
  // it: it is held back here so that a message older than the retention is still pending.)
  h.advance(WEBHOOK_RETENTION_MS + DAY);
  await rename(h, "Recent");
  const task = MAINTENANCE_TASKS.find((t) => t.name === "prune-webhook-history")!;
  const run = await runMaintenance(h.svc, task, "test");
  assert.equal(run?.error, null);
  // "up"'s old message and its attempt went; "down"'s is still pending, so it stayed.
  assert.equal(run?.result?.webhook_messages_deleted, 1);
  assert.equal(run?.result?.webhook_attempts_deleted, 1);
  assert.equal(await count(h, messagesUp), 0);
  const [pending] = await Array.fromAsync(
    h.kv.list<{ event_id: string; status: string }>({ prefix: messagesDown }),
  );
  assert.equal(pending.value.status, "pending");
  // Old events went (those of start-up and of the endpoints' creation too), except the one the
  // pending message still needs; the recent one stays.
  assert.equal(run?.result?.webhook_events_deleted, eventsBefore);
  const left = await Array.fromAsync(
    h.kv.list<{ id: string; type: string }>({ prefix: keys.events() }),
  );
  assert.deepEqual(left.map((e) => e.value.type), ["tenant.updated", "tenant.updated"]);
  assert.equal(left[0].value.id, pending.value.event_id);

  // Twice changes nothing more; the recent event is still delivered.
  h.advance(60_000);
  const again = await runMaintenance(h.svc, task, "test");
  assert.deepEqual(again?.result, {
    webhook_events_deleted: 0,
    webhook_messages_deleted: 0,
    webhook_attempts_deleted: 0,
  });
  await drain(h);
  assert.equal(await count(h, messagesUp), 1);
});
