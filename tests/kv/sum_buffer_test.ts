/**
 * kv/sum_buffer.ts: write-behind counters — sums and maxima land, in chunks; pending() stays
 * exact through a flush in flight; a failed commit loses nothing; flushes never overlap.
 */
import assert from "node:assert/strict";
import { SumBuffer } from "../../kv/sum_buffer.ts";

/** A KV whose commits can be made to fail or to wait. */
async function flakyKv() {
  const real = await Deno.openKv(":memory:");
  /** `failures` commits fail once `okBeforeFailing` more have succeeded. */
  const control = {
    failures: 0,
    okBeforeFailing: 0,
    gate: null as Promise<void> | null,
    commits: 0,
  };
  const kv = {
    atomic() {
      const op = real.atomic();
      const commit = op.commit.bind(op);
      op.commit = async () => {
        if (control.gate) await control.gate;
        if (control.failures > 0 && control.okBeforeFailing > 0) control.okBeforeFailing--;
        else if (control.failures > 0) {
          control.failures--;
          throw new Error("disk on fire");
        }
        control.commits++;
        return await commit();
      };
      return op;
    },
  } as unknown as Deno.Kv;
  const read = async (key: Deno.KvKey) => (await real.get<Deno.KvU64>(key)).value?.value ?? 0n;
  return { kv, real, control, read, [Symbol.dispose]: () => real.close() };
}

const options = { flushIntervalMs: 60_000, maxEntries: 100_000 };

Deno.test("sum buffer: sums and maxima are written on flush; pending counts until then", async () => {
  using f = await flakyKv();
  const committed: [string, bigint][] = [];
  const buffer = new SumBuffer(f.kv, {
    ...options,
    onCommitted: (key, amount) => committed.push([String(key[0]), amount]),
  });
  buffer.add(["a"], 2);
  buffer.add(["a"]);
  buffer.max(["last"], 50);
  buffer.max(["last"], 40);
  assert.equal(buffer.pending(["a"]), 3);
  assert.equal(await f.read(["a"]), 0n);
  await buffer.flush();
  assert.equal(await f.read(["a"]), 3n);
  assert.equal(await f.read(["last"]), 50n);
  assert.equal(buffer.pending(["a"]), 0);
  assert.deepEqual(committed, [["a", 3n]]);
  buffer.add(["a"], 4);
  await buffer.flush();
  assert.equal(await f.read(["a"]), 7n);
  assert.equal(buffer.stats.flushes, 2);
});

Deno.test("sum buffer: over a thousand keys go out in several commits, all of them", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, options);
  for (let i = 0; i < 1_200; i++) buffer.add(["k", i], i);
  await buffer.flush();
  assert.equal(f.control.commits, 3);
  for (const i of [0, 499, 500, 1_199]) assert.equal(await f.read(["k", i]), BigInt(i));
});

Deno.test("sum buffer: a failed commit keeps its deltas for the next flush; nothing is lost", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, options);
  buffer.add(["a"], 5);
  f.control.failures = 1;
  await assert.rejects(buffer.flush(), /disk on fire/);
  assert.equal(buffer.pending(["a"]), 5);
  assert.equal(buffer.stats.flush_errors, 1);
  assert.equal(buffer.stats.last_error, "disk on fire");
  buffer.add(["a"], 1);
  await buffer.flush();
  assert.equal(await f.read(["a"]), 6n);
  assert.equal(buffer.pending(["a"]), 0);
});

Deno.test("sum buffer: a flush failing mid-way keeps the chunks not written; none is written twice", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, options);
  for (let i = 0; i < 1_200; i++) buffer.add(["k", i], 1);
  // The first chunk (500 keys) commits, the second fails; the third is not tried.
  f.control.okBeforeFailing = 1;
  f.control.failures = 1;
  await assert.rejects(buffer.flush(), /disk on fire/);
  assert.equal(f.control.commits, 1);
  assert.equal(buffer.size, 700, "two chunks back in pending");
  assert.equal(await f.read(["k", 0]), 1n);
  assert.equal(buffer.pending(["k", 0]), 0, "written, so no longer pending");
  assert.equal(await f.read(["k", 500]), 0n);
  assert.equal(buffer.pending(["k", 500]), 1);
  // What arrives meanwhile merges with what was put back.
  buffer.add(["k", 0], 1);
  buffer.add(["k", 1_199], 1);
  await buffer.flush();
  assert.equal(await f.read(["k", 0]), 2n);
  assert.equal(await f.read(["k", 500]), 1n);
  assert.equal(await f.read(["k", 1_199]), 2n);
  assert.equal(buffer.size, 0);
});

Deno.test("sum buffer: pending() still counts a flush in flight; flushes queue, never overlap", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, options);
  let open!: () => void;
  f.control.gate = new Promise((r) => open = r);
  buffer.add(["a"], 3);
  const first = buffer.flush();
  await new Promise((r) => setTimeout(r, 10));
  buffer.add(["a"], 2);
  const second = buffer.flush();
  assert.equal(buffer.pending(["a"]), 5, "in flight + new");
  assert.equal(await f.read(["a"]), 0n);
  f.control.gate = null;
  open();
  await Promise.all([first, second]);
  assert.equal(await f.read(["a"]), 5n);
  assert.equal(buffer.pending(["a"]), 0);
  assert.equal(f.control.commits, 2);
});

Deno.test("sum buffer: maxEntries distinct keys start a flush by themselves; stop() writes the rest", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, { flushIntervalMs: 60_000, maxEntries: 3 });
  buffer.start();
  buffer.add(["a"]);
  buffer.add(["b"]);
  buffer.add(["c"]);
  buffer.add(["d"]);
  await buffer.stop();
  for (const k of ["a", "b", "c", "d"]) assert.equal(await f.read([k]), 1n);
});

Deno.test("sum buffer: lazy counters wait for a full flush; eager ones go every time", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, options);
  buffer.add(["quota"], 2);
  buffer.add(["stat"], 3, true);
  buffer.max(["seen"], 9, true);
  buffer.add(["stat"], 1, true);
  await buffer.flush(true);
  assert.equal(await f.read(["quota"]), 2n);
  assert.equal(await f.read(["stat"]), 0n);
  assert.equal(buffer.pending(["stat"]), 4, "still counted while it waits");
  assert.equal(buffer.pendingMax(["seen"]), 9);
  // An eager addition to a lazy counter makes it eager.
  buffer.add(["stat"], 1);
  await buffer.flush(true);
  assert.equal(await f.read(["stat"]), 5n);
  await buffer.flush();
  assert.equal(await f.read(["seen"]), 9n);
});

Deno.test("sum buffer: lazy keys do not count toward maxEntries; lazyEvery × maxEntries keys flush all", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, { flushIntervalMs: 60_000, maxEntries: 3, lazyEvery: 3 });
  for (const k of ["s1", "s2", "s3"]) buffer.add([k], 1, true);
  assert.equal(buffer.stats.flushes, 0, "three lazy keys start no flush");
  for (const k of ["q1", "q2", "q3"]) buffer.add([k]);
  // The eager bound starts a flush of the eager keys only (awaited by queueing one behind it).
  await buffer.flush(true);
  assert.deepEqual(
    await Promise.all(["q1", "s1"].map((k) => f.read([k]))),
    [1n, 0n],
  );
  const lazy = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"];
  for (const k of lazy.slice(3)) buffer.add([k], 1, true);
  await buffer.flush(true);
  for (const k of lazy) assert.equal(await f.read([k]), 1n);
  assert.equal(buffer.size, 0);
});

Deno.test("sum buffer: a companion commits with its sum; a commit holds at most 500 mutations", async () => {
  using f = await flakyKv();
  let mutations = 0;
  const atomic = f.kv.atomic.bind(f.kv);
  f.kv.atomic = () => {
    const op = atomic();
    const mutate = op.mutate.bind(op);
    op.mutate = (...m) => (mutations += m.length, mutate(...m));
    const commit = op.commit.bind(op);
    op.commit = () => {
      assert.ok(mutations <= 500, `${mutations} mutations in one commit`);
      mutations = 0;
      return commit();
    };
    return op;
  };
  const buffer = new SumBuffer(f.kv, {
    ...options,
    companion: (key, amount, now) =>
      key[0] === "stat" ? { type: "set", key: ["item", ...key], value: { amount, now } } : null,
    now: () => 42,
  });
  for (let i = 0; i < 300; i++) buffer.add(["stat", i], i + 1);
  for (let i = 0; i < 100; i++) buffer.add(["plain", i]);
  await buffer.flush();
  assert.equal(f.control.commits, 2, "700 mutations: two commits");
  for (const i of [0, 150, 299]) {
    assert.equal(await f.read(["stat", i]), BigInt(i + 1));
    assert.deepEqual((await f.real.get(["item", "stat", i])).value, {
      amount: BigInt(i + 1),
      now: 42,
    });
  }
  assert.equal((await f.real.get(["item", "plain", 0])).value, null);
});

Deno.test("sum buffer: a failed commit writes no companion; the next flush draws it anew", async () => {
  using f = await flakyKv();
  let drawn = 0;
  const buffer = new SumBuffer(f.kv, {
    ...options,
    companion: (_key, amount) => ({ type: "set", key: ["item", ++drawn], value: amount }),
  });
  buffer.add(["a"], 2);
  f.control.failures = 1;
  await assert.rejects(buffer.flush(), /disk on fire/);
  assert.equal((await f.real.get(["item", 1])).value, null);
  buffer.add(["a"], 1);
  await buffer.flush();
  assert.equal((await f.real.get(["item", 2])).value, 3n, "one item for the whole delta");
});

Deno.test("sum buffer: pendingSums lists what is not yet committed; idle() and the mark bracket flushes", async () => {
  using f = await flakyKv();
  const buffer = new SumBuffer(f.kv, options);
  buffer.add(["a"], 3);
  buffer.max(["m"], 9);
  let open!: () => void;
  f.control.gate = new Promise((r) => open = r);
  const mark = await buffer.idle();
  const flushing = buffer.flush();
  await new Promise((r) => setTimeout(r, 10));
  buffer.add(["a"], 2);
  buffer.add(["b"], 1);
  assert.notEqual(buffer.writeMark, mark, "a flush is writing");
  assert.deepEqual([...buffer.pendingSums()], [[["a"], 5], [["b"], 1]], "sums only, in flight too");
  const waited = buffer.idle();
  f.control.gate = null;
  open();
  await flushing;
  const after = await waited;
  assert.equal(after, buffer.writeMark);
  assert.deepEqual([...buffer.pendingSums()], [[["a"], 2], [["b"], 1]]);
});
