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
  handleWakeUp,
  type Job,
  type JobHandlers,
  type JobResult,
  type JobSpec,
  jobTable,
  runDueJobs,
  runJob,
} from "../../domain/jobs/jobs.ts";
import { JobWorker } from "../../domain/jobs/worker.ts";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";
import { newId } from "../../domain/shared/ids.ts";
import { commit } from "../../kv/commit.ts";
import { insert } from "../../kv/table.ts";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid, memberOf } from "../_assert.ts";

const MINUTE = 60_000;

async function enqueue(h: Harness, spec: Partial<JobSpec> = {}): Promise<Job> {
  const op = h.kv.atomic();
  const job = enqueueJob(op, h.clock.now, { queue: "test", type: "test.ok", payload: {}, ...spec });
  assert.ok(await commit(op));
  return job;
}

/** A `test.ok` handler that holds its job running until `release` resolves. */
function holding(result: JobResult = { ok: true }) {
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const handlers: JobHandlers = {
    "test.ok": async () => {
      started.resolve();
      await release.promise;
      return result;
    },
  };
  return { started, release, handlers };
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
  const { started, release, handlers: slow } = holding({ ok: false, error: "too late to matter" });
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

Deno.test("jobs: the worker's sweep runs a job no wake-up announced; stop waits for the run", async () => {
  await using h = await setup();
  const { started, release, handlers } = holding();
  // The record alone, as a store without queues commits it.
  const job: Job = {
    ...enqueueJob(h.kv.atomic(), h.clock.now, { queue: "test", type: "test.ok", payload: {} }),
  };
  assert.ok(await commit(insert(h.kv.atomic(), jobTable, job)));
  const worker = new JobWorker(h.svc, handlers, { sweepIntervalMs: 10, onError: started.reject });
  // The sweep's timer is unref'd (it must not keep a server alive): hold the test's loop open.
  const keepAlive = setTimeout(() => started.reject(new Error("the sweep never ran")), 20_000);
  worker.start();
  await started.promise;
  clearTimeout(keepAlive);
  let stopped = false;
  const stopping = worker.stop().then(() => stopped = true);
  await Promise.resolve();
  assert.equal(stopped, false, "stop waits for the run in flight");
  release.resolve();
  await stopping;
  assert.equal((await status(h, job.id))?.status, "succeeded");
});

Deno.test("jobs: a malformed handler answer or retry time fails the attempt, not the runner", async () => {
  await using h = await setup();
  const handlers = {
    "test.nothing": () => Promise.resolve(undefined),
    "test.nan": () => Promise.resolve({ ok: false, error: "x", retryAt: NaN }),
    "test.long": () => Promise.resolve({ ok: false, error: "e".repeat(5_000) }),
  } as unknown as JobHandlers;
  const nothing = await enqueue(h, { type: "test.nothing" });
  const nan = await enqueue(h, { type: "test.nan" });
  const long = await enqueue(h, { type: "test.long" });
  assert.equal(await h.runJobs(handlers), 3);
  assert.equal((await status(h, long.id))?.last_error?.length, 1_000, "kept short");
  assert.equal((await status(h, nothing.id))?.last_error, "the handler returned no result");
  const n = (await status(h, nan.id))!;
  assert.equal(n.status, "failed");
  assert.equal(Date.parse(n.next_run_at!), h.clock.now + backoffMs(1), "the default backoff");
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

Deno.test("jobs: with concurrency, a slow job does not hold up the others; each runs once", async () => {
  await using h = await setup();
  const release = Promise.withResolvers<void>();
  const othersDone = Promise.withResolvers<void>();
  const ran: string[] = [];
  const handlers: JobHandlers = {
    "test.slow": async () => {
      await release.promise;
      ran.push("slow");
      return { ok: true };
    },
    "test.ok": (_svc, job) => {
      ran.push(job.payload.name as string);
      if (ran.length === 3) othersDone.resolve();
      return Promise.resolve({ ok: true });
    },
  };
  await enqueue(h, { type: "test.slow", runAt: h.clock.now - 1 });
  for (const name of ["a", "b", "c"]) await enqueue(h, { payload: { name } });
  const sweep = runDueJobs(h.svc, handlers, { concurrency: 2 });
  await othersDone.promise;
  assert.deepEqual(ran, ["a", "b", "c"], "run while the first-due job is still running");
  release.resolve();
  assert.equal(await sweep, 4);
  assert.deepEqual(ran, ["a", "b", "c", "slow"]);
});

Deno.test("jobs: prune-jobs deletes succeeded jobs a week after they finish, dead ones after 30 days", async () => {
  await using h = await setup();
  const DAY = 86_400_000;
  const handlers: JobHandlers = {
    ...recorder().handlers,
    "test.fatal": () => Promise.resolve({ ok: false, error: "no", dead: true }),
  };
  const old = await enqueue(h);
  const dead = await enqueue(h, { type: "test.fatal" });
  const late = await enqueue(h, { runAt: h.clock.now + 3 * DAY });
  const waiting = await enqueue(h, { runAt: h.clock.now + 365 * DAY });
  await h.runJobs(handlers);
  h.advance(3 * DAY);
  await h.runJobs(handlers);
  const task = MAINTENANCE_TASKS.find((t) => t.name === "prune-jobs")!;

  h.advance(4 * DAY);
  assert.deepEqual(await task.run(h.svc), { jobs_deleted: 0 }, "kept for a week");
  h.advance(1);
  assert.deepEqual(await task.run(h.svc), { jobs_deleted: 1 });
  assert.equal(await status(h, old.id), undefined);
  h.advance(3 * DAY);
  assert.deepEqual(await task.run(h.svc), { jobs_deleted: 1 }, "a week after it finished");
  assert.equal(await status(h, late.id), undefined);
  assert.equal((await status(h, dead.id))?.status, "dead", "dead jobs are kept longer");
  h.advance(20 * DAY);
  assert.deepEqual(await task.run(h.svc), { jobs_deleted: 1 });
  assert.equal(await status(h, dead.id), undefined);
  assert.equal((await status(h, waiting.id))?.status, "pending", "unfinished jobs stay");
  const [test] = await queues(h);
  assert.deepEqual(test.counts, { pending: 1, running: 0, succeeded: 0, failed: 0, dead: 0 });
});

// ── Admin routes ──────────────────────────────────────────────────────────────

const QUEUES = "/v1/admin/system/queues";
const jobsOf = (queue: string, query = "") => `${QUEUES}/${queue}/jobs${query}`;

async function queues(h: Harness, token = h.root) {
  const res = await h.call("GET", QUEUES, { token });
  assert.equal(res.status, 200, res.text);
  return res.body.data as {
    name: string;
    counts: Record<string, number>;
    paused: boolean;
    paused_at: string | null;
    oldest_due_age_ms: number | null;
  }[];
}

Deno.test("admin queues: counts by status, pause state and how overdue the oldest due job is", async () => {
  await using h = await setup();
  assert.deepEqual(await queues(h), []);
  const handlers: JobHandlers = {
    ...recorder().handlers,
    "test.fail": () => Promise.resolve({ ok: false, error: "no" }),
  };
  await enqueue(h, { queue: "mail" });
  await enqueue(h, { queue: "mail", type: "test.fail" });
  await enqueue(h, { queue: "mail", type: "test.fail", maxAttempts: 1 });
  await enqueue(h, { queue: "mail", runAt: h.clock.now + 10 * MINUTE });
  await enqueue(h, { queue: "hooks", runAt: h.clock.now + MINUTE });
  assert.equal(await h.runJobs(handlers), 3);
  h.advance(2 * MINUTE);

  const [hooks, mail] = await queues(h);
  assert.deepEqual(hooks, {
    name: "hooks",
    counts: { pending: 1, running: 0, succeeded: 0, failed: 0, dead: 0 },
    paused: false,
    paused_at: null,
    oldest_due_age_ms: MINUTE,
  });
  assert.deepEqual(mail.counts, { pending: 1, running: 0, succeeded: 1, failed: 1, dead: 1 });
  assert.equal(mail.oldest_due_age_ms, 2 * MINUTE - backoffMs(1), "the retry, due after 30 s");
  h.advance(-2 * MINUTE);
  assert.equal((await queues(h))[0].oldest_due_age_ms, null, "nothing due yet");
});

Deno.test("admin queues: a queue's jobs, newest first, by status, paginated with totals; 400s and 404s", async () => {
  await using h = await setup();
  const made: Job[] = [];
  for (let i = 0; i < 5; i++) {
    made.push(await enqueue(h, { queue: "mail", payload: { n: i } }));
    h.advance(1);
  }
  await runJob(h.svc, recorder().handlers, made[0].id);

  const all = await h.call("GET", jobsOf("mail", "?limit=2"), { token: h.root });
  assert.equal(all.status, 200, all.text);
  assert.deepEqual(all.body.data.map((j: Job) => j.id), [made[4].id, made[3].id]);
  assert.deepEqual(all.body.pagination, {
    limit: 2,
    next_cursor: all.body.pagination.next_cursor,
    has_more: true,
    total: 5,
  });
  const seen = [...all.body.data];
  let cursor = all.body.pagination.next_cursor;
  while (cursor) {
    const next = await h.call("GET", jobsOf("mail", `?limit=2&cursor=${cursor}`), {
      token: h.root,
    });
    assert.equal(next.status, 200, next.text);
    seen.push(...next.body.data);
    cursor = next.body.pagination.next_cursor;
  }
  assert.deepEqual(seen.map((j) => j.id), made.map((j) => j.id).reverse(), "each once");

  const done = await h.call("GET", jobsOf("mail", "?status=succeeded"), { token: h.root });
  assert.deepEqual(done.body.data.map((j: Job) => j.id), [made[0].id]);
  assert.equal(done.body.pagination.total, 1);
  assert.equal(done.body.data[0].status, "succeeded");
  assert.equal(done.body.data[0].attempts, 1);
  assert.deepEqual(done.body.data[0].payload, { n: 0 });
  const pending = await h.call("GET", jobsOf("mail", "?status=pending"), { token: h.root });
  assert.equal(pending.body.pagination.total, 4);

  const one = await h.call("GET", `/v1/admin/system/jobs/${made[1].id}`, { token: h.root });
  assert.equal(one.status, 200, one.text);
  assert.equal(one.body.data.id, made[1].id);
  assert.ok(one.headers.get("ETag"));

  assertInvalid(
    await h.call("GET", jobsOf("mail", "?status=lost"), { token: h.root }),
    "query.status",
  );
  assertInvalid(await h.call("GET", jobsOf("mail", "?limit=0"), { token: h.root }), "query.limit");
  assertInvalid(await h.call("GET", jobsOf("mail", "?sort=id"), { token: h.root }), "query");
  assertError(
    await h.call("GET", jobsOf("mail", "?cursor=nope"), { token: h.root }),
    400,
    "BAD_REQUEST",
  );
  const otherCursor = (await h.call("GET", jobsOf("mail", "?status=pending&limit=1"), {
    token: h.root,
  })).body.pagination.next_cursor;
  assertError(
    await h.call("GET", jobsOf("mail", `?cursor=${otherCursor}`), { token: h.root }),
    400,
    "BAD_REQUEST",
  );
  assertInvalid(await h.call("GET", jobsOf("Mail!"), { token: h.root }), "param.name");
  assertError(await h.call("GET", jobsOf("nothing"), { token: h.root }), 404, "NOT_FOUND");
  assertError(
    await h.call("GET", `/v1/admin/system/jobs/${newId("job")}`, { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(await h.call("GET", "/v1/admin/system/jobs/nope", { token: h.root }), "param.id");
});

Deno.test("admin queues: a paused queue holds its jobs; resuming runs them, nothing lost; audited", async () => {
  await using h = await setup();
  const { ran, handlers } = recorder();
  const held = await enqueue(h, { queue: "mail", payload: { name: "held" } });
  await enqueue(h, { queue: "other", payload: { name: "other" } });

  const pause = await h.call("POST", `${QUEUES}/mail/pause`, { token: h.root });
  assert.equal(pause.status, 200, pause.text);
  assert.equal(pause.body.data.paused, true);
  assert.equal(pause.body.data.paused_at, new Date(h.clock.now).toISOString());
  const again = await h.call("POST", `${QUEUES}/mail/pause`, { token: h.root });
  assert.deepEqual(again.body.data, pause.body.data, "pausing twice changes nothing");

  h.advance(5 * MINUTE);
  assert.equal(await h.runJobs(handlers), 1);
  assert.deepEqual(ran, ["other"], "the paused queue's job is held");
  assert.equal(await runJob(h.svc, handlers, held.id), null, "a wake-up does not run it either");
  assert.equal(await h.runJobs(handlers, { queue: "mail" }), 0);
  const [mail] = await queues(h);
  assert.equal(mail.paused, true);
  assert.equal(mail.counts.pending, 1);
  assert.equal(mail.oldest_due_age_ms, 5 * MINUTE, "the backlog shows");

  // The resume commits a wake-up that runs the queue's due jobs.
  const woken = Promise.withResolvers<unknown>();
  void h.kv.listenQueue((m) => {
    if ((m as { queue?: string }).queue) woken.resolve(m);
  });
  const resume = await h.call("POST", `${QUEUES}/mail/resume`, { token: h.root });
  assert.equal(resume.status, 200, resume.text);
  assert.equal(resume.body.data.paused, false);
  assert.deepEqual(await woken.promise, { queue: "mail" });
  assert.equal(await handleWakeUp(h.svc, handlers, { queue: "mail" }), true);
  assert.deepEqual(ran, ["other", "held"]);
  assert.equal((await status(h, held.id))?.status, "succeeded");
  const resumeAgain = await h.call("POST", `${QUEUES}/mail/resume`, { token: h.root });
  assert.equal(resumeAgain.body.data.paused, false);

  assert.deepEqual(
    (await h.auditFor("mail")).map((e) => e.action),
    ["job_queue.resumed", "job_queue.paused"],
    "one event per change, none for the no-ops",
  );
  assertError(await h.call("POST", `${QUEUES}/nothing/pause`, { token: h.root }), 404, "NOT_FOUND");
  assertError(
    await h.call("POST", `${QUEUES}/nothing/resume`, { token: h.root }),
    404,
    "NOT_FOUND",
  );
  assertInvalid(await h.call("POST", `${QUEUES}/A%20B/pause`, { token: h.root }), "param.name");
});

Deno.test("admin jobs: retry runs a dead or failed job again; 409 for pending, running, succeeded", async () => {
  await using h = await setup();
  let fail = true;
  const handlers: JobHandlers = {
    "test.flaky": () => Promise.resolve(fail ? { ok: false, error: "down" } : { ok: true }),
  };
  const dead = await enqueue(h, { type: "test.flaky", maxAttempts: 1 });
  const failed = await enqueue(h, { type: "test.flaky", maxAttempts: 3 });
  const pending = await enqueue(h, { runAt: h.clock.now + MINUTE });
  await h.runJobs(handlers);
  assert.equal((await status(h, dead.id))?.status, "dead");
  assert.equal((await status(h, failed.id))?.status, "failed");

  const retry = (id: string, headers?: Record<string, string>) =>
    h.call("POST", `/v1/admin/system/jobs/${id}/retry`, { token: h.root, headers });
  const res = await retry(dead.id);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, "pending");
  assert.equal(res.body.data.attempts, 0, "a fresh round of attempts");
  assert.equal(res.body.data.next_run_at, new Date(h.clock.now).toISOString());
  assert.equal(res.body.data.last_error, "down", "kept until the next run");
  assert.equal((await retry(failed.id)).status, 200, "a scheduled retry is brought forward");
  fail = false;
  assert.equal(await h.runJobs(handlers), 2, "both due now, without waiting for the backoff");
  assert.equal((await status(h, dead.id))?.status, "succeeded");
  assert.equal((await status(h, dead.id))?.last_error, null);

  assertError(await retry(dead.id), 409, "CONFLICT");
  assertError(await retry(pending.id), 409, "CONFLICT");
  const { started, release, handlers: held } = holding();
  const running = await enqueue(h);
  const run = runJob(h.svc, held, running.id);
  await started.promise;
  assertError(await retry(running.id), 409, "CONFLICT");
  release.resolve();
  await run;
  assertError(await retry(newId("job")), 404, "NOT_FOUND");
  assertInvalid(await retry("job_nope"), "param.id");
  assert.deepEqual((await h.auditFor(dead.id)).map((e) => e.action), ["job.retried"]);
});

Deno.test("admin jobs: delete removes a job and its counts; 404 unknown, 409 while running, 412 stale", async () => {
  await using h = await setup();
  const job = await enqueue(h, { queue: "mail" });
  const keep = await enqueue(h, { queue: "mail" });
  const del = (id: string, headers?: Record<string, string>) =>
    h.call("DELETE", `/v1/admin/system/jobs/${id}`, { token: h.root, headers });

  const etag = (await h.call("GET", `/v1/admin/system/jobs/${job.id}`, { token: h.root })).headers
    .get("ETag")!;
  assertError(
    await del(job.id, { "If-Match": '"00000000000000000000"' }),
    412,
    "PRECONDITION_FAILED",
  );
  const res = await del(job.id, { "If-Match": etag });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.id, job.id);
  assert.equal(await status(h, job.id), undefined);
  assertError(await del(job.id), 404, "NOT_FOUND");
  assert.equal((await queues(h))[0].counts.pending, 1);
  assert.equal(await h.runJobs(recorder().handlers), 1, "only the kept job runs");
  assert.deepEqual((await h.auditFor(job.id)).map((e) => e.action), ["job.deleted"]);

  const { started, release, handlers: held } = holding();
  const running = await enqueue(h, { queue: "mail" });
  const run = runJob(h.svc, held, running.id);
  await started.promise;
  assertError(await del(running.id), 409, "CONFLICT");
  release.resolve();
  await run;
  assert.equal((await del(running.id)).status, 200, "deletable once finished");
  assert.equal((await del(keep.id)).status, 200);
  assert.deepEqual((await queues(h))[0].counts, {
    pending: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    dead: 0,
  });
});

Deno.test("admin queues and jobs: 401 without credentials, 403 without system permissions or when tenant-bound", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const job = await enqueue(h, {
    queue: "mail",
    type: "test.none",
    payload: { to: "ann@example.com" },
  });
  await h.runJobs(recorder().handlers);
  const finance = await h.user("finance");
  const support = await h.user("support");
  const ops = await h.user("ops");
  const owner = await memberOf(h, t.id, "owner");
  const bound = await h.serviceToken(["tenants:read", "webhooks:write"], t.id);
  const routes: [string, string, boolean][] = [
    ["GET", QUEUES, false],
    ["GET", jobsOf("mail"), false],
    ["GET", `/v1/admin/system/jobs/${job.id}`, false],
    ["POST", `${QUEUES}/mail/pause`, true],
    ["POST", `${QUEUES}/mail/resume`, true],
    ["POST", `/v1/admin/system/jobs/${job.id}/retry`, true],
    ["DELETE", `/v1/admin/system/jobs/${job.id}`, true],
  ];
  for (const [method, path, writes] of routes) {
    assertError(await h.call(method, path), 401, "UNAUTHORIZED");
    assertError(
      await h.call(method, path, { headers: { Authorization: "Bearer stw_nope" } }),
      401,
      "UNAUTHORIZED",
    );
    for (const who of [finance, owner, bound]) {
      assertError(await h.call(method, path, { token: who.token }), 403, "FORBIDDEN");
    }
    if (writes) assertError(await h.call(method, path, { token: support.token }), 403, "FORBIDDEN");
  }
  // ops runs the system; support reads it with PII masked.
  assert.equal((await h.call("POST", `${QUEUES}/mail/pause`, { token: ops.token })).status, 200);
  const seen = await h.call("GET", jobsOf("mail"), { token: support.token });
  assert.equal(seen.status, 200, seen.text);
  assert.deepEqual(seen.body.data[0].payload, { to: "a***@e***.com" });
  const full = await h.call("GET", jobsOf("mail"), { token: ops.token });
  assert.deepEqual(full.body.data[0].payload, { to: "ann@example.com" });
});
