/**
 * Request logs stored in pages (domain/usage/log_pages.ts): how pages are cut, and that the
 * search, its cursors and offsets, the total, the export and the prune stay exact when pages of
 * several processes overlap in time, when a page spans a time bound, and when older one-entry
 * records sit among them.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { entriesOf, logPage, PAGE_SPAN_MS, pagesOf } from "../../domain/usage/log_pages.ts";
import { exportLogs, listLogs, pruneLogs } from "../../domain/usage/request_logs.ts";
import type { Services } from "../../domain/shared/services.ts";
import { newId } from "../../domain/shared/ids.ts";
import { iso } from "../../domain/shared/time.ts";
import { keys } from "../../kv/keys.ts";
import type { RequestLog } from "../../pg/analytics.ts";
import { type Harness, setup } from "../_harness.ts";

const T0 = Date.parse("2026-03-01T12:00:00.000Z");

const entry = (ms: number, fields: Partial<RequestLog> = {}): RequestLog => ({
  id: newId("log", ms),
  at: iso(ms),
  level: "info",
  method: "GET",
  route: "/v1/plans",
  path: "/v1/plans",
  status: 200,
  duration_ms: 1,
  bytes_in: 0,
  bytes_out: 10,
  tenant_id: null,
  principal_id: null,
  ip: "203.0.113.9",
  user_agent: "test",
  request_id: "req_1",
  error_code: null,
  ...fields,
});

/** Stores `entries` as a process's flush would: in pages. */
async function write(kv: Deno.Kv, entries: RequestLog[]) {
  for (const page of pagesOf(entries)) {
    const res = await kv.set(keys.requestLog(page.at(-1)!.id), logPage(page));
    assert.ok(res.ok);
  }
}

/** Every entry of `path` paged by cursor (limit 7): ids in order, and the first page's total. */
async function walk(h: Harness, path: string) {
  const sep = path.includes("?") ? "&" : "?";
  const ids: string[] = [];
  let total: number | undefined;
  let cursor: string | null = null;
  for (let pages = 0; pages < 500; pages++) {
    const url: string = `${path}${sep}limit=7${
      cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""
    }`;
    const res = await h.call("GET", url, { token: h.root });
    assert.equal(res.status, 200, res.text);
    total ??= res.body.pagination.total;
    ids.push(...res.body.data.map((e: RequestLog) => e.id));
    cursor = res.body.pagination.next_cursor;
    if (!cursor) return { ids, total };
  }
  throw new Error("the walk did not end");
}

const newestFirst = (entries: RequestLog[]) => entries.map((e) => e.id).sort().reverse();

Deno.test("log pages: cut by count, by time span and by size, each page in id order", async () => {
  const burst = Array.from({ length: 250 }, () => entry(T0));
  assert.deepEqual(pagesOf(burst.toReversed()).map((p) => p.length), [100, 100, 50]);
  assert.deepEqual(pagesOf(burst).flat().map((e) => e.id), burst.map((e) => e.id).sort());

  const spread = Array.from({ length: 10 }, (_, i) => entry(T0 + i * 300));
  const pages = pagesOf(spread);
  assert.deepEqual(pages.map((p) => p.length), [4, 4, 2]);
  for (const page of pages) {
    assert.ok(Date.parse(page.at(-1)!.at) - Date.parse(page[0].at) <= PAGE_SPAN_MS);
  }

  // The largest entries the middleware makes: a page of them still fits in one KV value.
  const large = Array.from({ length: 300 }, () =>
    entry(T0, {
      path: `/${"p".repeat(2_047)}`,
      route: `/${"r".repeat(200)}`,
      user_agent: "u".repeat(512),
      request_id: "q".repeat(128),
      ip: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
      error_code: "IDEMPOTENCY_KEY_REUSED",
      tenant_id: newId("ten"),
      principal_id: newId("tok"),
      test: true,
    }));
  const kv = await Deno.openKv(":memory:");
  try {
    const big = pagesOf(large);
    assert.ok(big.length > 1 && big.length < 30, `${big.length} pages`);
    await write(kv, large);
    const stored = await Array.fromAsync(kv.list({ prefix: keys.requestLogs() }));
    assert.equal(stored.flatMap((e) => entriesOf(e.value)).length, 300);
  } finally {
    kv.close();
  }
});

Deno.test("log pages: overlapping pages of two processes are searched newest first, exactly", async () => {
  await using h = await setup();
  // Two processes logging over the same two seconds, each flushing its own pages.
  const a = Array.from({ length: 60 }, (_, i) => entry(T0 + i * 33, { status: i % 5 ? 200 : 404 }));
  const b = Array.from(
    { length: 45 },
    (_, i) => entry(T0 + 7 + i * 41, { status: i % 4 ? 200 : 404 }),
  );
  await write(h.kv, a.slice(0, 30));
  await write(h.kv, b);
  await write(h.kv, a.slice(30));
  // And three one-entry records, as code before the pages wrote them.
  const older = [entry(T0 - 5_000), entry(T0 + 500), entry(T0 + 3_000)];
  for (const e of older) await h.kv.set(keys.requestLog(e.id), e);
  const all = [...a, ...b, ...older];

  const everything = await walk(h, "/v1/admin/logs");
  assert.deepEqual(everything.ids, newestFirst(all));
  assert.equal(everything.total, all.length);

  const missing = all.filter((e) => e.status === 404);
  const filtered = await walk(h, "/v1/admin/logs?status=404");
  assert.deepEqual(filtered.ids, newestFirst(missing));
  assert.equal(filtered.total, missing.length);

  // Offsets and pages give the same slices as the cursors.
  const page3 = await h.call("GET", "/v1/admin/logs?limit=10&page=3", { token: h.root });
  assert.deepEqual(page3.body.data.map((e: RequestLog) => e.id), everything.ids.slice(20, 30));
  const offset = await h.call("GET", "/v1/admin/logs?limit=5&offset=103", { token: h.root });
  assert.deepEqual(offset.body.data.map((e: RequestLog) => e.id), everything.ids.slice(103));
  assert.equal(offset.body.pagination.has_more, false);

  // A time range: pages reach past both ends of it.
  const from = T0 + 400;
  const to = T0 + 1_200;
  const ranged = await walk(
    h,
    `/v1/admin/logs?from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}`,
  );
  const inRange = all.filter((e) => Date.parse(e.at) >= from && Date.parse(e.at) <= to);
  assert.deepEqual(ranged.ids, newestFirst(inRange));
  assert.equal(ranged.total, inRange.length);

  // The export, oldest first.
  const nd = await h.call("GET", "/v1/admin/logs/export", { token: h.root });
  const exported = nd.text.trim().split("\n").map((l) => JSON.parse(l).id);
  assert.deepEqual(exported, all.map((e) => e.id).sort());
});

Deno.test("log pages: a sparse search answers short pages within its budget, and ends", async () => {
  await using h = await setup();
  // 250 pages (a second apart), one 404 in every 50th.
  for (let i = 0; i < 250; i++) {
    await write(h.kv, [entry(T0 + i * 2_000, { status: i % 50 === 7 ? 404 : 200 })]);
  }
  const res = await h.call("GET", "/v1/admin/logs?status=404&limit=10", { token: h.root });
  assert.equal(res.status, 200, res.text);
  assert.ok(res.body.data.length < 5, "short: the budget of pages ran out");
  assert.equal(res.body.pagination.has_more, true);
  const { ids, total } = await walk(h, "/v1/admin/logs?status=404");
  assert.equal(ids.length, 5);
  assert.equal(total, 5);
});

Deno.test("log pages: the prune deletes exactly the entries before the bound, also inside a page", async () => {
  await using h = await setup();
  const page = [0, 300, 600, 900].map((ms) => entry(T0 + ms));
  const before = [entry(T0 - 10_000), entry(T0 - 9_000)];
  await write(h.kv, [...before, ...page]);
  const single = entry(T0 + 100);
  await h.kv.set(keys.requestLog(single.id), single);
  assert.equal(await pruneLogs(h.svc, T0 + 450), 2 + 2 + 1);
  const left = await walk(h, "/v1/admin/logs");
  assert.deepEqual(left.ids, newestFirst(page.slice(2)));
  assert.equal(await pruneLogs(h.svc, T0 + 450), 0, "nothing twice");
});

Deno.test("log pages: any layout of pages, searched by cursor and exported, gives every entry once, in order", async () => {
  const kv = await Deno.openKv(":memory:");
  const svc = { kv, pg: null } as unknown as Services;
  // A writer's entries (ms after T0, status) and where its flushes cut them.
  const writer = fc.record({
    entries: fc.array(fc.tuple(fc.nat(6_000), fc.constantFrom(200, 404)), { maxLength: 80 }),
    cuts: fc.array(fc.nat(80), { maxLength: 4 }),
  });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(writer, { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat(6_000), { maxLength: 5 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(undefined, 404),
        fc.option(fc.tuple(fc.nat(6_000), fc.nat(6_000))),
        async (writers, singles, limit, status, range) => {
          for await (const e of kv.list({ prefix: keys.requestLogs() })) await kv.delete(e.key);
          const all: RequestLog[] = [];
          for (const w of writers) {
            const made = w.entries.map(([ms, s]) => entry(T0 + ms, { status: s }));
            const cuts = [0, ...w.cuts.toSorted((a, b) => a - b), made.length];
            for (let i = 1; i < cuts.length; i++) await write(kv, made.slice(cuts[i - 1], cuts[i]));
            all.push(...made);
          }
          for (const ms of singles) {
            const e = entry(T0 + ms);
            await kv.set(keys.requestLog(e.id), e);
            all.push(e);
          }
          const [from, to] = range ? [T0 + Math.min(...range), T0 + Math.max(...range)] : [];
          const filter = { status, from, to };
          const wanted = all.filter((e) =>
            (status === undefined || e.status === status) &&
            (from === undefined || (Date.parse(e.at) >= from && Date.parse(e.at) <= to!))
          ).map((e) => e.id).sort();

          const seen: string[] = [];
          let cursor: string | undefined;
          let total;
          do {
            const page = await listLogs(svc, filter, { limit, cursor });
            total ??= page.total;
            seen.push(...page.items.map((i) => i.value.id));
            cursor = page.next_cursor ?? undefined;
          } while (cursor);
          assert.deepEqual(seen, wanted.toReversed());
          assert.equal(total, wanted.length);
          const exported = await Array.fromAsync(exportLogs(svc, filter), (e) => e.id);
          assert.deepEqual(exported, wanted);
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    kv.close();
  }
});
