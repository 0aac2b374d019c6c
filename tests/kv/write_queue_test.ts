/** kv/write_queue.ts: one write at a time, failures do not stop the queue, joined calls share. */
import assert from "node:assert/strict";
import { WriteQueue } from "../../kv/write_queue.ts";

/** A write that records its start and end, and finishes when `release` is called. */
function gate(log: string[], name: string, fail = false) {
  let release!: () => void;
  const done = new Promise<void>((r) => release = r);
  const write = async () => {
    log.push(`start ${name}`);
    await done;
    log.push(`end ${name}`);
    if (fail) throw new Error(name);
  };
  return { write, release };
}

/** Lets queued promise callbacks run. */
const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("WriteQueue: writes run one after another, in the order queued", async () => {
  const q = new WriteQueue();
  const log: string[] = [];
  const a = gate(log, "a"), b = gate(log, "b");
  const ran = [q.run(a.write), q.run(b.write)];
  assert.ok(q.busy instanceof Promise);
  await tick();
  assert.deepEqual(log, ["start a"]);
  b.release();
  a.release();
  await Promise.all(ran);
  assert.deepEqual(log, ["start a", "end a", "start b", "end b"]);
  await tick();
  assert.equal(q.busy, null, "idle once every write has settled");
});

Deno.test("WriteQueue: a failed write rejects its caller and does not stop the next", async () => {
  const q = new WriteQueue();
  const log: string[] = [];
  const a = gate(log, "a", true), b = gate(log, "b");
  const first = q.run(a.write), second = q.run(b.write);
  a.release();
  await assert.rejects(first, /a/);
  b.release();
  await second;
  assert.deepEqual(log, ["start a", "end a", "start b", "end b"]);
});

Deno.test("WriteQueue: with join, calls made while a write waits share it", async () => {
  const q = new WriteQueue({ join: true });
  const log: string[] = [];
  const a = gate(log, "a"), b = gate(log, "b"), c = gate(log, "c");
  const first = q.run(a.write);
  await tick();
  const second = q.run(b.write);
  const third = q.run(c.write);
  assert.equal(second, third, "the waiting write is shared");
  a.release();
  b.release();
  await Promise.all([first, second]);
  assert.deepEqual(log, ["start a", "end a", "start b", "end b"]);
  // Once it has started, a new call queues a new write.
  const d = gate(log, "d");
  const fourth = q.run(d.write);
  d.release();
  await fourth;
  assert.deepEqual(log.slice(-2), ["start d", "end d"]);
});
