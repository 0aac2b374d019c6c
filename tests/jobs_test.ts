/**
 * Jobs: enqueued in the commit of the change that causes them, run by the clock-driven sweep in
 * due order, retried with backoff until dead, claimed under a lease (exactly once between
 * concurrent runners, again once a lost worker's lease expires), held by a paused queue, and
 * the admin routes that list, pause, resume, retry and delete them.
 */
import assert from "node:assert/strict";
import {
  backoffMs,
  enqueueJob,
  getJob,
  type Job,
  type JobHandlers,
  type JobSpec,
  runDueJobs,
  runJob,
} from "../domain/jobs.ts";
import { JobWorker } from "../domain/job_worker.ts";
import { MAINTENANCE_TASKS, runMaintenance } from "../domain/maintenance.ts";
import { commit } from "../kv/commit.ts";
import { type Harness, setup } from "./_harness.ts";

const MINUTE = 60_000;

async function enqueue(h: Harness, spec: Partial<JobSpec> = {}): Promise<Job> {
  const op = h.kv.atomic();
  const job = enqueueJob(op, h.clock.now, { queue: "test", type: "test.ok", payload: {}, ...spec });
  assert.ok(await commit(op));
  return job;
}

const status = async (h: Harness, id: string) => (await getJob(h.svc, id))?.value;

/** Handlers that record which jobs ran, in order. */
function recorder() {
  const ran: string[] = [];
  const handlers: JobHandlers = {
    "test.ok": (_svc, job) => {
      ran.push(job.payload.name as string ?? job.id);
      return Promise.resolve({ ok: true });
    },
  };
  return { ran, handlers };
}

Deno.test("jobs: enqueued in the same commit as the change; a failed check commits neither", async () => {
  await using h = await setup();
  const marker = ["test_marker"];
  const op = h.kv.atomic().check({ key: marker, versionstamp: null }).set(marker, 1);
  const job = enqueueJob(op, h.clock.now, { queue: "test", type: "test.ok", payload: { n: 1 } });
  assert.ok(await commit(op));
  const stored = await status(h, job.id);
  assert.equal(stored?.status, "pending");
  assert.equal(stored?.attempts, 0);
  assert.equal(stored?.max_attempts, 5);
  assert.equal(stored?.next_run_at, new Date(h.clock.now).toISOString());

  const again = h.kv.atomic().check({ key: marker, versionstamp: null }).set(marker, 2);
  const lost = enqueueJob(again, h.clock.now, { queue: "test", type: "test.ok", payload: {} });
  assert.equal(await commit(again), null);
  assert.equal(await status(h, lost.id), undefined, "no job without its change");
  assert.equal((await h.kv.get(marker)).value, 1);
});

Deno.test("jobs: runDueJobs runs due jobs only, in due order, as the clock moves", async () => {
  await using h = await setup();
  const { ran, handlers } = recorder();
  const now = h.clock.now;
  await enqueue(h, { payload: { name: "later" }, runAt: now + 2 * MINUTE });
  await enqueue(h, { payload: { name: "second" }, runAt: now - 1_000 });
  await enqueue(h, { payload: { name: "first" }, runAt: now - 2_000 });
  await enqueue(h, { queue: "other", payload: { name: "third" } });

  assert.equal(await runDueJobs(h.svc, handlers), 3);
  assert.deepEqual(ran, ["first", "second", "third"]);
  assert.equal(await runDueJobs(h.svc, handlers), 0, "nothing twice");
  h.advance(MINUTE);
  assert.equal(await h.runJobs(handlers), 0, "not due yet");
  h.advance(MINUTE);
  assert.equal(await h.runJobs(handlers), 1);
  assert.deepEqual(ran, ["first", "second", "third", "later"]);
});

Deno.test("jobs: a failing handler retries with backoff, then goes dead after max_attempts", async () => {
  await using h = await setup();
  let calls = 0;
  const handlers: JobHandlers = {
    "test.fail": () => Promise.resolve({ ok: false, error: `boom ${++calls}` }),
  };
  const job = await enqueue(h, { type: "test.fail", maxAttempts: 3 });
  assert.equal(await h.runJobs(handlers), 1);
  let j = (await status(h, job.id))!;
  assert.equal(j.status, "failed");
  assert.equal(j.attempts, 1);
  assert.equal(j.last_error, "boom 1");
  assert.equal(Date.parse(j.next_run_at!), h.clock.now + backoffMs(1));

  h.advance(backoffMs(1) - 1);
  assert.equal(await h.runJobs(handlers), 0, "not before the backoff");
  h.advance(1);
  assert.equal(await h.runJobs(handlers), 1);
  j = (await status(h, job.id))!;
  assert.equal(j.status, "failed");
  assert.equal(Date.parse(j.next_run_at!), h.clock.now + backoffMs(2));
  assert.ok(backoffMs(2) > backoffMs(1));

  h.advance(backoffMs(2));
  assert.equal(await h.runJobs(handlers), 1);
  j = (await status(h, job.id))!;
  assert.equal(j.status, "dead");
  assert.equal(j.attempts, 3);
  assert.equal(j.last_error, "boom 3");
  assert.equal(j.next_run_at, null);
  assert.ok(j.finished_at);
  h.advance(24 * 60 * MINUTE);
  assert.equal(await h.runJobs(handlers), 0, "dead stays dead");
  assert.equal(calls, 3);
});

Deno.test("jobs: retryAt is honoured; dead: true ends at once; a throw is a failure", async () => {
  await using h = await setup();
  const handlers: JobHandlers = {
    "test.later": () => Promise.resolve({ ok: false, error: "busy", retryAt: h.clock.now + 5_000 }),
    "test.fatal": () => Promise.resolve({ ok: false, error: "gone", dead: true }),
    "test.throw": () => Promise.reject(new Error("exploded")),
  };
  const later = await enqueue(h, { type: "test.later" });
  const fatal = await enqueue(h, { type: "test.fatal" });
  const thrown = await enqueue(h, { type: "test.throw" });
  const unknown = await enqueue(h, { type: "test.unknown" });
  assert.equal(await h.runJobs(handlers), 4);

  const l = (await status(h, later.id))!;
  assert.equal(l.status, "failed");
  assert.equal(l.next_run_at, new Date(h.clock.now + 5_000).toISOString());
  const f = (await status(h, fatal.id))!;
  assert.equal(f.status, "dead");
  assert.equal(f.attempts, 1);
  const t = (await status(h, thrown.id))!;
  assert.equal(t.status, "failed");
  assert.equal(t.last_error, "exploded");
  const u = (await status(h, unknown.id))!;
  assert.equal(u.status, "dead", "an unknown type is not retried forever");
  assert.equal(u.last_error, 'no handler for job type "test.unknown"');

  h.advance(5_000);
  assert.equal(await h.runJobs(handlers), 1, "only the retryAt job is due");
});

Deno.test("jobs: two concurrent runners run a job exactly once", async () => {
  await using h = await setup();
  let runs = 0;
  const handlers: JobHandlers = {
    "test.ok": async () => {
      runs++;
      await Promise.resolve();
      return { ok: true };
    },
  };
  const jobs = await Promise.all([1, 2, 3].map(() => enqueue(h)));
  const [a, b] = await Promise.all([runDueJobs(h.svc, handlers), runDueJobs(h.svc, handlers)]);
  assert.equal(a + b, 3);
  assert.equal(runs, 3);
  const one = await enqueue(h);
  const results = await Promise.all([
    runJob(h.svc, handlers, one.id),
    runJob(h.svc, handlers, one.id),
    runDueJobs(h.svc, handlers),
  ]);
  assert.equal(runs, 4, "one run whatever the number of runners");
  assert.equal(
    results.filter((r) => r && typeof r === "object").length + (results[2] as number),
    1,
  );
  for (const j of [...jobs, one]) assert.equal((await status(h, j.id))?.status, "succeeded");
});

Deno.test("jobs: a running job whose lease expired is run again by the sweep; the lost worker's result is dropped", async () => {
  await using h = await setup();
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const slow: JobHandlers = {
    "test.ok": async () => {
      started.resolve();
      await release.promise;
      return { ok: false, error: "too late to matter" };
    },
  };
  const { ran, handlers } = recorder();
  const job = await enqueue(h, { payload: { name: "again" }, maxAttempts: 2 });
  const lost = runJob(h.svc, slow, job.id, { leaseMs: MINUTE });
  await started.promise;
  const running = (await status(h, job.id))!;
  assert.equal(running.status, "running");
  assert.equal(running.lease_until, new Date(h.clock.now + MINUTE).toISOString());

  assert.equal(await h.runJobs(handlers), 0, "held by its lease");
  h.advance(MINUTE);
  assert.equal(await h.runJobs(handlers), 1, "the lease ran out: the sweep takes it");
  assert.deepEqual(ran, ["again"]);
  release.resolve();
  assert.equal(await lost, null, "the first worker lost its lease and its result");
  const done = (await status(h, job.id))!;
  assert.equal(done.status, "succeeded");
  assert.equal(done.attempts, 2, "the lost run counts as an attempt");
});

Deno.test("jobs: a lost run with no attempts left goes dead", async () => {
  await using h = await setup();
  const started = Promise.withResolvers<void>();
  const never = Promise.withResolvers<void>();
  const hang: JobHandlers = {
    "test.ok": async () => {
      started.resolve();
      await never.promise;
      return { ok: true };
    },
  };
  const job = await enqueue(h, { maxAttempts: 1 });
  const lost = runJob(h.svc, hang, job.id, { leaseMs: MINUTE });
  await started.promise;
  h.advance(MINUTE);
  assert.equal(await h.runJobs(recorder().handlers), 1);
  const dead = (await status(h, job.id))!;
  assert.equal(dead.status, "dead");
  assert.match(dead.last_error!, /lease/);
  never.resolve();
  assert.equal(await lost, null);
});

Deno.test("jobs: a KV queue wake-up runs the job through the worker's listener", async () => {
  await using h = await setup();
  const done = Promise.withResolvers<string>();
  const handlers: JobHandlers = {
    "test.ok": (_svc, job) => {
      done.resolve(job.id);
      return Promise.resolve({ ok: true });
    },
  };
  const worker = new JobWorker(h.svc, handlers, {
    sweepIntervalMs: 60_000,
    onError: (err) => done.reject(err),
  });
  // Ends when the harness closes the store.
  void h.kv.listenQueue((message) => worker.wake(message));
  const job = await enqueue(h);
  assert.equal(await done.promise, job.id, "woken by its queue message, not by a sweep");
  await worker.stop();
  assert.equal((await status(h, job.id))?.status, "succeeded");
});

Deno.test("jobs: the sweep-jobs maintenance task runs due jobs once per tick", async () => {
  await using h = await setup();
  const task = MAINTENANCE_TASKS.find((t) => t.name === "sweep-jobs")!;
  assert.equal(task.schedule, "* * * * *");
  const job = await enqueue(h, { type: "test.unregistered" });
  const [a, b] = await Promise.all([
    runMaintenance(h.svc, task, "worker-a"),
    runMaintenance(h.svc, task, "worker-b"),
  ]);
  const runs = [a, b].filter((r) => r !== null);
  assert.equal(runs.length, 1, "one worker per tick");
  assert.deepEqual(runs[0]!.result, { jobs_run: 1 });
  assert.equal((await status(h, job.id))?.status, "dead", "no handler registered for its type");
});
