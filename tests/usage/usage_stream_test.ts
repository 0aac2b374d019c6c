/**
 * GET /v1/admin/usage/stream: accepted usage events and flushed per-key verifications as items,
 * in order, resumed exactly from a cursor, settled before they show, expired after 7 days;
 * the SSE live tail (items as they arrive, Last-Event-ID, heartbeats, a clean end when the
 * client leaves); validation, 401 and 403.
 */
import assert from "node:assert/strict";
import { SETTLE_MS } from "../../domain/usage/stream.ts";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const DAY = 86_400_000;
const at = (h: Harness, offsetMs = 0) => new Date(h.clock.now + offsetMs).toISOString();

interface Item {
  id: string;
  tenant_id: string;
  key_id: string | null;
  metric: string;
  quantity: number;
  timestamp: string;
  source: "event" | "verify";
  event_id: string | null;
}

async function tenantWithKey(h: Harness, slug = "acme") {
  const t = await h.tenant(slug);
  const key = await h.call("POST", `/v1/tenants/${slug}/api-keys`, {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  return { tenantId: t.id, keyId: key.body.data.id as string, secret: key.body.data.key as string };
}

async function ingest(h: Harness, events: unknown[]) {
  const res = await h.call("POST", "/v1/usage/events", { token: h.root, body: { events } });
  assert.equal(res.status, 200, res.text);
  return res.body.data.results as { status: string }[];
}

async function verify(h: Harness, key: string, cost = 1) {
  const res = await h.call("POST", "/v1/keys/verify", { token: h.root, body: { key, cost } });
  assert.equal(res.body.data.code, "VALID", res.text);
}

async function page(h: Harness, query = "", token = h.root) {
  const res = await h.call("GET", `/v1/admin/usage/stream${query}`, { token });
  assert.equal(res.status, 200, res.text);
  return res.body as {
    data: Item[];
    pagination: { limit: number; next_cursor: string; has_more: boolean };
  };
}

Deno.test("usage stream: each accepted event and each flushed key-day of verifications, in order", async () => {
  await using h = await setup();
  const { tenantId, keyId, secret } = await tenantWithKey(h);
  const results = await ingest(h, [
    { id: "e1", tenant_id: tenantId, metric: "api.calls", quantity: 2, timestamp: at(h, -60_000) },
    { id: "e2", key_id: keyId, metric: "verifications", quantity: 5, timestamp: at(h) },
    { id: "e1", tenant_id: tenantId, metric: "api.calls", quantity: 2, timestamp: at(h) },
  ]);
  assert.deepEqual(results.map((r) => r.status), ["accepted", "accepted", "duplicate"]);
  h.advance(1_000);
  await verify(h, secret, 1);
  await verify(h, secret, 3);
  await verify(h, secret, 0); // spends nothing: counted nowhere
  const flushedAt = h.clock.now;
  await h.svc.aggregator.flush();

  assert.deepEqual((await page(h)).data, [], "nothing shows before it settles");
  h.advance(SETTLE_MS);
  const { data, pagination } = await page(h);
  assert.equal(data.length, 3);
  assert.deepEqual(data.map(({ id: _, ...rest }) => rest), [
    {
      tenant_id: tenantId,
      key_id: null,
      metric: "api.calls",
      quantity: 2,
      timestamp: at(h, -1_000 - SETTLE_MS - 60_000),
      source: "event",
      event_id: "e1",
    },
    {
      tenant_id: tenantId,
      key_id: keyId,
      metric: "verifications",
      quantity: 5,
      timestamp: at(h, -1_000 - SETTLE_MS),
      source: "event",
      event_id: "e2",
    },
    {
      tenant_id: tenantId,
      key_id: keyId,
      metric: "verifications",
      quantity: 4,
      timestamp: new Date(flushedAt).toISOString(),
      source: "verify",
      event_id: null,
    },
  ]);
  assert.ok(data[0].id < data[1].id && data[1].id < data[2].id, "ids are time-ordered");
  assert.deepEqual(pagination, { limit: 50, next_cursor: data[2].id, has_more: false });

  // What the stream says was counted is what the counters hold.
  const daily = await h.call("GET", `/v1/tenants/acme/usage/daily?from=2026-03-01&to=2026-03-01`, {
    token: h.root,
  });
  const streamed = data.filter((i) => i.metric === "verifications")
    .reduce((n, i) => n + i.quantity, 0);
  assert.equal(daily.body.data.total, streamed);
});

Deno.test("usage stream: a cursor resumes exactly after the last item; filters; from", async () => {
  await using h = await setup();
  const { tenantId } = await tenantWithKey(h);
  const g = await h.tenant("globex");
  const start = at(h);
  for (let i = 0; i < 7; i++) {
    await ingest(h, [{
      id: `e${i}`,
      tenant_id: i % 2 ? g.id : tenantId,
      metric: i % 3 ? "api.calls" : "storage.gb",
      quantity: i + 1,
      timestamp: at(h),
    }]);
    h.advance(10);
  }
  h.advance(SETTLE_MS);
  const all = (await page(h, "?limit=100")).data;
  assert.deepEqual(all.map((i) => i.event_id), ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]);

  // Page through from the start, two at a time: each item exactly once, in order.
  const seen: string[] = [];
  let query = `?limit=2&from=${encodeURIComponent(start)}`;
  for (let pages = 0; pages < 10; pages++) {
    const p = await page(h, query);
    seen.push(...p.data.map((i) => i.event_id!));
    query = `?limit=2&cursor=${p.pagination.next_cursor}`;
    if (!p.pagination.has_more) break;
  }
  assert.deepEqual(seen, all.map((i) => i.event_id));

  // Polling from the last cursor: nothing new, the same cursor; then exactly what came next.
  const last = all.at(-1)!.id;
  const idle = await page(h, `?cursor=${last}`);
  assert.deepEqual(idle.data, []);
  assert.equal(idle.pagination.next_cursor, last);
  await ingest(h, [{ id: "e7", tenant_id: tenantId, metric: "x", quantity: 1, timestamp: at(h) }]);
  assert.deepEqual((await page(h, `?cursor=${last}`)).data, [], "not settled yet");
  h.advance(SETTLE_MS);
  assert.deepEqual((await page(h, `?cursor=${last}`)).data.map((i) => i.event_id), ["e7"]);

  // Without a cursor: the latest `limit`, oldest first.
  assert.deepEqual((await page(h, "?limit=2")).data.map((i) => i.event_id), ["e6", "e7"]);
  assert.deepEqual(
    (await page(h, `?tenant_id=${g.id}`)).data.map((i) => i.event_id),
    ["e1", "e3", "e5"],
  );
  assert.deepEqual(
    (await page(h, `?metric=storage.gb&tenant_id=${tenantId}`)).data.map((i) => i.event_id),
    ["e0", "e6"],
  );
  // A start not settled yet (or in the future) reads nothing, and resumes from where it was.
  const ahead = `usg_${"Z".repeat(26)}`;
  assert.deepEqual((await page(h, `?cursor=${ahead}`)).pagination, {
    limit: 50,
    next_cursor: ahead,
    has_more: false,
  });
  const soon = await page(h, `?from=${encodeURIComponent(at(h, 1_000))}`);
  assert.deepEqual(soon.data, []);
  assert.equal((await page(h, `?cursor=${soon.pagination.next_cursor}`)).data.length, 0);
  const filtered = await page(h, `?metric=storage.gb&limit=1&cursor=${all[0].id}`);
  assert.deepEqual(filtered.data.map((i) => i.event_id), ["e3"]);
  assert.equal(filtered.pagination.has_more, true);
});

Deno.test("usage stream: items expire after 7 days (the stored deadline is checked on read)", async () => {
  await using h = await setup();
  const { tenantId } = await tenantWithKey(h);
  await ingest(h, [{ id: "old", tenant_id: tenantId, metric: "x", quantity: 1, timestamp: at(h) }]);
  h.advance(SETTLE_MS);
  const [item] = (await page(h)).data;
  const stored = await h.kv.get<{ until: number }>(keys.usageItem(item.id));
  assert.equal(stored.value?.until, Date.parse(item.timestamp) + 7 * DAY);
  h.advance(7 * DAY);
  assert.deepEqual((await page(h)).data, []);
  assert.deepEqual((await page(h, `?from=${encodeURIComponent(item.timestamp)}`)).data, []);
  assert.notEqual((await h.kv.get(keys.usageItem(item.id))).value, null, "still stored");
  // A cursor from before retention resumes at the oldest item kept (it once made KV throw).
  const stale = await h.call("GET", `/v1/admin/usage/stream?cursor=${item.id}`, { token: h.root });
  assert.equal(stale.status, 200, stale.text);
  assert.deepEqual(stale.body.data, []);
});

Deno.test("usage stream: verifications are reported against a key", async () => {
  await using h = await setup();
  const { tenantId } = await tenantWithKey(h);
  const res = await h.call("POST", "/v1/usage/events", {
    token: h.root,
    body: {
      events: [{
        id: "v",
        tenant_id: tenantId,
        metric: "verifications",
        quantity: 1,
        timestamp: at(h),
      }],
    },
  });
  assert.equal(res.body.data.results[0].status, "rejected");
  assert.match(res.body.data.results[0].reason, /key_id/);
});

Deno.test("usage stream: 400 on bad input; 401; 403 for roles and tokens without a platform grant", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const get = (query: string, opts: { token?: string; headers?: Record<string, string> } = {}) =>
    h.call("GET", `/v1/admin/usage/stream${query}`, { token: h.root, ...opts });
  assertInvalid(await get("?cursor=nope"), "query.cursor");
  assertInvalid(await get("?cursor=log_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A"), "query.cursor");
  assertInvalid(await get("?limit=0"), "query.limit");
  assertInvalid(await get("?limit=101"), "query.limit");
  assertInvalid(await get("?limit=ten"), "query.limit");
  assertInvalid(await get("?from=yesterday"), "query.from");
  assertInvalid(await get("?metric=Bad%20Metric"), "query.metric");
  assertInvalid(await get("?tenant=acme"), "query");
  assertInvalid(
    await get(`?cursor=usg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A&from=${encodeURIComponent(at(h))}`),
    "query.from",
  );
  assertInvalid(
    await get("", { headers: { Accept: "text/event-stream", "Last-Event-ID": "nope" } }),
    "header.last-event-id",
  );

  assertError(await get("", { token: undefined }), 401, "UNAUTHORIZED");
  assertError(await get("", { token: "stw_" + "x".repeat(40) }), 401, "UNAUTHORIZED");
  const bound = await h.serviceToken(["usage:read"], t.id);
  assertError(await get("", { token: bound.token }), 403, "FORBIDDEN");
  const owner = await memberOf(h, t.id, "owner");
  assertError(await get("", { token: owner.token }), 403, "FORBIDDEN");
  for (const role of ["qa", null] as const) {
    assertError(await get("", { token: (await h.user(role)).token }), 403, "FORBIDDEN");
  }
  for (const role of ["ops", "support", "finance", "admin"] as const) {
    assert.equal((await get("", { token: (await h.user(role)).token })).status, 200, role);
  }
});

/** An open SSE answer, read frame by frame. */
async function openTail(h: Harness, query = "", headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await h.app.request(`/v1/admin/usage/stream${query}`, {
    headers: { Authorization: `Bearer ${h.root}`, Accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("Content-Type")!, /^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    abort,
    reader,
    bytes: 0,
    /** The next frame (an event's lines, or a comment), or null when the stream ended. */
    async next(): Promise<string | null> {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          return frame;
        }
        const chunk = await reader.read();
        if (chunk.done) return null;
        this.bytes += chunk.value.byteLength;
        buffer += decoder.decode(chunk.value, { stream: true });
      }
    },
    /** The next event, skipping comments (heartbeats). */
    async event(): Promise<{ id: string; item: Item }> {
      for (;;) {
        const frame = await this.next();
        assert.ok(frame !== null, "the stream ended");
        const lines = frame.split("\n");
        const id = lines.find((l) => l.startsWith("id: "))?.slice(4);
        const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
        if (id && data) {
          assert.ok(lines.includes("event: usage"));
          return { id, item: JSON.parse(data) };
        }
      }
    },
  };
}

Deno.test("usage stream SSE: items as they arrive, heartbeats, and an end when the request is aborted", async () => {
  await using h = await setup();
  const { tenantId, secret } = await tenantWithKey(h);
  await ingest(h, [{
    id: "before",
    tenant_id: tenantId,
    metric: "x",
    quantity: 1,
    timestamp: at(h),
  }]);
  h.advance(SETTLE_MS);

  const tail = await openTail(h, "?limit=1");
  assert.match((await tail.next())!, /^retry: \d+\n: connected$/);
  const first = await tail.event();
  assert.equal(first.item.event_id, "before", "the latest item first");
  assert.equal(first.id, first.item.id);

  await ingest(h, [{
    id: "live",
    tenant_id: tenantId,
    metric: "x",
    quantity: 3,
    timestamp: at(h),
  }]);
  await verify(h, secret, 2);
  await h.svc.aggregator.flush();
  h.advance(SETTLE_MS);
  const second = await tail.event();
  const third = await tail.event();
  assert.deepEqual([second.item.event_id, third.item.source], ["live", "verify"]);
  assert.ok(first.id < second.id && second.id < third.id);

  // Nothing new: comments keep the connection alive.
  let frame: string | null;
  do frame = await tail.next(); while (frame !== ": heartbeat");

  tail.abort.abort();
  for (;;) if ((await tail.next()) === null) break;
});

Deno.test("usage stream SSE: Last-Event-ID resumes right after it; a cancelled body stops the tail", async () => {
  await using h = await setup();
  const { tenantId } = await tenantWithKey(h);
  for (const id of ["a", "b", "c"]) {
    await ingest(h, [{ id, tenant_id: tenantId, metric: "x", quantity: 1, timestamp: at(h) }]);
    h.advance(5);
  }
  h.advance(SETTLE_MS);
  const items = (await page(h)).data;
  const bytesOut = () => h.svc.aggregator.pendingTraffic("bytes_out", "2026-03-01");
  const before = bytesOut();
  const tail = await openTail(h, `?cursor=${items[2].id}`, { "Last-Event-ID": items[0].id });
  assert.deepEqual(
    [(await tail.event()).item.event_id, (await tail.event()).item.event_id],
    ["b", "c"],
    "the header wins over the cursor it reconnects with",
  );
  await tail.reader.cancel();
  const counted = bytesOut() - before;
  assert.ok(counted >= tail.bytes && tail.bytes > 0, `${counted} bytes out, ${tail.bytes} read`);
  // The app still answers, and nothing of the tail is left running (the test's sanitizers).
  assert.equal((await page(h, `?cursor=${items[2].id}`)).data.length, 0);
});

Deno.test("usage stream: a batch's items are one page in KV; a cursor inside it resumes exactly", async () => {
  await using h = await setup();
  const { tenantId } = await tenantWithKey(h);
  const events = Array.from({ length: 10 }, (_, i) => ({
    id: `p${i}`,
    tenant_id: tenantId,
    metric: "api.calls",
    quantity: i + 1,
    timestamp: at(h),
  }));
  await ingest(h, events);
  let pages = 0;
  for await (const _ of h.kv.list({ prefix: keys.usageItems() })) pages++;
  assert.equal(pages, 1, "one stored page for the batch");
  h.advance(SETTLE_MS);
  const seen: Item[] = (await page(h, `?from=${at(h, -60_000)}&limit=3`)).data;
  while (seen.length < 10) {
    const next = await page(h, `?cursor=${seen.at(-1)!.id}&limit=3`);
    assert.ok(next.data.length > 0, "progress");
    seen.push(...next.data);
  }
  assert.deepEqual(seen.map((i) => i.event_id), events.map((e) => e.id));
  assert.deepEqual(seen.map((i) => i.quantity), events.map((e) => e.quantity));
  const after = await page(h, `?cursor=${seen.at(-1)!.id}`);
  assert.deepEqual(after.data, []);
});
