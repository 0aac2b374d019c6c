import assert from "node:assert/strict";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { KvCache } from "../../kv/cache.ts";
import { named } from "../../kv/names.ts";
import { commit, CONFLICT, ContentionError, retrying } from "../../kv/commit.ts";
import { acquireLease, releaseLease } from "../../kv/lease.ts";
import { InvalidCursorError, listPage } from "../../kv/list.ts";
import { getRecord, insert, readCounter, remove, replace, type Table } from "../../kv/table.ts";
import { setup } from "../_harness.ts";

interface Thing {
  id: string;
  code: string;
  tag: string;
  live: boolean;
}

const things: Table<Thing> = {
  key: (id) => ["things", id],
  unique: (t) => [["thing_codes", t.code]],
  indexes: (t) => [["things_by_tag", t.tag, t.id]],
  counters: (t) => t.live ? [["counters", "things"]] : [],
};

async function withKv(fn: (kv: Deno.Kv) => Promise<void>) {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

Deno.test("table: insert writes the record, its indexes and its counter in one commit", () =>
  withKv(async (kv) => {
    const a: Thing = { id: "a", code: "A", tag: "red", live: true };
    assert.ok(await commit(insert(kv.atomic(), things, a)));
    assert.deepEqual((await getRecord(kv, things, "a"))?.value, a);
    assert.equal((await kv.get(["thing_codes", "A"])).value, "a");
    assert.equal((await kv.get(["things_by_tag", "red", "a"])).value, "a");
    assert.equal(await readCounter(kv, ["counters", "things"]), 1);
  }));

Deno.test("table: a unique clash fails the whole commit", () =>
  withKv(async (kv) => {
    await commit(insert(kv.atomic(), things, { id: "a", code: "A", tag: "red", live: true }));
    const clash = await commit(
      insert(kv.atomic(), things, { id: "b", code: "A", tag: "blue", live: true }),
    );
    assert.equal(clash, null);
    assert.equal(await getRecord(kv, things, "b"), null);
    assert.equal((await kv.get(["things_by_tag", "blue", "b"])).versionstamp, null);
    assert.equal(await readCounter(kv, ["counters", "things"]), 1);
  }));

Deno.test("table: replace moves changed indexes and the counter; a stale version fails", () =>
  withKv(async (kv) => {
    await commit(insert(kv.atomic(), things, { id: "a", code: "A", tag: "red", live: true }));
    const current = (await getRecord(kv, things, "a"))!;
    const next: Thing = { id: "a", code: "B", tag: "blue", live: false };
    assert.ok(await commit(replace(kv.atomic(), things, current, next)));
    assert.equal((await kv.get(["thing_codes", "A"])).versionstamp, null);
    assert.equal((await kv.get(["thing_codes", "B"])).value, "a");
    assert.equal((await kv.get(["things_by_tag", "red", "a"])).versionstamp, null);
    assert.equal((await kv.get(["things_by_tag", "blue", "a"])).value, "a");
    assert.equal(await readCounter(kv, ["counters", "things"]), 0);
    // The version read before the change no longer matches.
    assert.equal(
      await commit(replace(kv.atomic(), things, current, { ...next, tag: "green" })),
      null,
    );
  }));

Deno.test("table: remove deletes the record and every index entry", () =>
  withKv(async (kv) => {
    await commit(insert(kv.atomic(), things, { id: "a", code: "A", tag: "red", live: true }));
    assert.ok(await commit(remove(kv.atomic(), things, (await getRecord(kv, things, "a"))!)));
    const left = [];
    for await (const e of kv.list({ prefix: [] })) left.push(e.key);
    assert.deepEqual(left, [["counters", "things"]]);
    assert.equal(await readCounter(kv, ["counters", "things"]), 0);
  }));

/** `things` whose every write bumps one stamp. */
const STAMP = ["stamp"];
const stamped: Table<Thing> = { ...things, stamp: () => STAMP };

Deno.test("table: insert, replace and remove each bump the table's stamp", () =>
  withKv(async (kv) => {
    const stamps = [(await kv.get(STAMP)).versionstamp];
    const a: Thing = { id: "a", code: "A", tag: "red", live: true };
    await commit(insert(kv.atomic(), stamped, a));
    stamps.push((await kv.get(STAMP)).versionstamp);
    await commit(replace(kv.atomic(), stamped, (await getRecord(kv, stamped, "a"))!, a));
    stamps.push((await kv.get(STAMP)).versionstamp);
    await commit(remove(kv.atomic(), stamped, (await getRecord(kv, stamped, "a"))!));
    stamps.push((await kv.get(STAMP)).versionstamp);
    assert.equal(stamps[0], null);
    assert.equal(new Set(stamps).size, 4, "a new versionstamp at every write");
    assert.equal(await readCounter(kv, STAMP), 3);
  }));

Deno.test("retrying: re-runs an attempt on CONFLICT and gives up with ContentionError", async () => {
  let calls = 0;
  assert.equal(await retrying(() => Promise.resolve(++calls < 3 ? CONFLICT : "done")), "done");
  assert.equal(calls, 3);
  await assert.rejects(retrying(() => Promise.resolve(CONFLICT), 4), ContentionError);
});

Deno.test("listPage: filters, offsets and cursors cover every match exactly once", () =>
  withKv(async (kv) => {
    for (let i = 0; i < 25; i++) await kv.set(["n", String(i).padStart(2, "0")], i);
    const even = { selector: { prefix: ["n"] }, filter: (n: number) => n % 2 === 0 };
    const seen: number[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await listPage<number>(kv, even, { limit: 4, cursor });
      seen.push(...page.items.map((i) => i.value));
      if (!page.has_more) break;
      cursor = page.next_cursor!;
    }
    assert.deepEqual(seen, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
    const skipped = await listPage<number>(kv, even, { limit: 3, offset: 2, reverse: true });
    assert.deepEqual(skipped.items.map((i) => i.value), [20, 18, 16]);
    await assert.rejects(listPage(kv, even, { limit: 3, cursor: "garbage" }), InvalidCursorError);
  }));

Deno.test("lease: one holder at a time; free again after its deadline or release", () =>
  withKv(async (kv) => {
    const t0 = 1_000_000;
    assert.equal(await acquireLease(kv, "job", "a", 1000, t0), true);
    assert.equal(await acquireLease(kv, "job", "b", 1000, t0 + 10), false);
    assert.equal(await acquireLease(kv, "job", "a", 1000, t0 + 20), true, "the holder may renew");
    assert.equal(await acquireLease(kv, "job", "b", 1000, t0 + 1021), true, "past the deadline");
    await releaseLease(kv, "job", "a"); // not the holder: no effect
    assert.equal(await acquireLease(kv, "job", "a", 1000, t0 + 1022), false);
    await releaseLease(kv, "job", "b");
    assert.equal(await acquireLease(kv, "job", "a", 1000, t0 + 1023), true);
  }));

Deno.test("maintenance: expire-sessions prunes ended sessions once across concurrent workers", async () => {
  await using h = await setup();
  const stale = await h.user(null);
  h.advance(2 * 60 * 60_000); // past the 1 h idle timeout of the first session
  const fresh = await h.user(null);
  const task = MAINTENANCE_TASKS.find((t) => t.name === "expire-sessions")!;
  const [a, b] = await Promise.all([
    runMaintenance(h.svc, task, "w1"),
    runMaintenance(h.svc, task, "w2"),
  ]);
  const ran = [a, b].filter((r) => r !== null);
  assert.equal(ran.length, 1, "exactly one worker runs the tick");
  assert.deepEqual(ran[0]?.result, { sessions_deleted: 1 });
  assert.equal(
    await runMaintenance(h.svc, task, "w3"),
    null,
    "a late worker does not rerun the tick",
  );
  const recorded = await h.kv.get(["maintenance_runs", "expire-sessions"]);
  assert.deepEqual((recorded.value as { result: unknown }).result, { sessions_deleted: 1 });
  assert.equal((await h.call("GET", "/v1/auth/me", { token: stale.token })).status, 401);
  assert.equal((await h.call("GET", "/v1/auth/me", { token: fresh.token })).status, 200);
});

Deno.test("cache: when full, the oldest entry not hit since the sweep passed goes first", () =>
  withKv(async (kv) => {
    const cache = new KvCache(kv, { freshMs: 60_000, maxEntries: 3 });
    for (const k of ["a", "b", "c"]) await cache.get(["c", k]);
    assert.ok(cache.getSync(["c", "a"])); // a hit: a second chance
    await cache.get(["c", "d"]);
    assert.equal(cache.size, 3);
    assert.equal(cache.getSync(["c", "b"]), undefined, "b was the oldest not hit");
    for (const k of ["a", "c", "d"]) assert.ok(cache.getSync(["c", k]), k);
  }));

Deno.test("cache: a refresh overtaken by an adjustment is not stored, and the next hit refreshes again", () =>
  withKv(async (kv) => {
    const clock = { now: 0 };
    const cache = new KvCache(kv, { freshMs: 1_000, maxEntries: 10, now: () => clock.now });
    const key = ["counter"];
    await kv.set(key, new Deno.KvU64(5n));
    await cache.get(key);
    clock.now = 600; // past half the window: a hit starts a background refresh
    await kv.set(key, new Deno.KvU64(7n));
    cache.getSync(key);
    cache.adjust(key, 2n); // a flush committed meanwhile: the read in flight is overtaken
    await new Promise((r) => setTimeout(r, 20));
    const reads = cache.reads;
    const entry = cache.getSync<Deno.KvU64>(key);
    assert.equal(entry!.value!.value, 7n, "5 read, 2 adjusted; the overtaken read not stored");
    assert.equal(cache.reads, reads + 1, "this hit started a new refresh");
    await new Promise((r) => setTimeout(r, 20));
    clock.now = 1_500; // past the first read's window: served thanks to the refresh
    assert.equal(cache.getSync<Deno.KvU64>(key)!.value!.value, 7n);
  }));

Deno.test("cache: entries read with a stamp stay fresh through one read of the stamp; a write elsewhere shows within the window", () =>
  withKv(async (kv) => {
    const clock = { now: 0 };
    const cache = new KvCache(kv, { freshMs: 1_000, maxEntries: 100, now: () => clock.now });
    const stamp = named(STAMP);
    for (const id of ["a", "b", "c"]) {
      await commit(insert(kv.atomic(), stamped, { id, code: id, tag: "red", live: true }));
    }
    const get = (id: string) => cache.getSync<Thing>(["things", id], undefined, stamp);
    for (const id of ["a", "b", "c"]) await cache.get(["things", id], stamp);
    const reads = cache.reads;
    // Many windows later, every hit is served; only the stamp was read again, once a half window.
    for (let t = 100; t <= 5_000; t += 100) {
      clock.now = t;
      for (const id of ["a", "b", "c"]) assert.equal(get(id)?.value?.id, id);
      await cache.settled();
    }
    assert.ok(cache.reads - reads <= 10, `${cache.reads - reads} reads: the stamp's alone`);
    for (const id of ["a", "b", "c"]) get(id); // vouched for by the stamp's last read

    // Another process renames b: nothing here is forgotten, the stamp's refresh shows it.
    const b = (await getRecord(kv, stamped, "b"))!;
    await commit(replace(kv.atomic(), stamped, b, { ...b.value, tag: "blue" }));
    clock.now += 600; // past half the stamp's window: this hit refreshes it
    get("a");
    await cache.settled();
    // The stamp moved: b is served as read until it refreshes itself (it is past half its
    // window since the stamp last vouched for it), never past the window.
    assert.equal(get("b")?.value?.tag, "red");
    await cache.settled();
    assert.equal(get("b")?.value?.tag, "blue");
    clock.now += 1_000;
    assert.equal(get("c"), undefined, "c: a window since the stamp last vouched for it");
    assert.equal((await cache.get<Thing>(["things", "c"], stamp)).value?.id, "c");
  }));

Deno.test("cache: a stamp never written vouches for its entries until it is", () =>
  withKv(async (kv) => {
    const clock = { now: 0 };
    const cache = new KvCache(kv, { freshMs: 1_000, maxEntries: 100, now: () => clock.now });
    await kv.set(["things", "a"], { id: "a" }); // written before stamps existed
    await cache.get(["things", "a"], named(STAMP));
    clock.now = 2_500;
    const reads = cache.reads;
    assert.equal(cache.getSync(["things", "a"], undefined, named(STAMP)), undefined, "stamp stale");
    await cache.get(["things", "a"], named(STAMP));
    assert.ok(cache.getSync(["things", "a"], undefined, named(STAMP)), "served again");
    assert.equal(cache.reads, reads + 1);
  }));
