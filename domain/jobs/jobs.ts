/**
 * Jobs: background work (webhook deliveries, syncs, exports) as records in KV
 * (ARCHITECTURE.md, jobs and crons).
 * A job commits with the change that caused it, together with a KV queue message that is only
 * its wake-up; a sweep (`runDueJobs`) runs whatever is due and unclaimed, so delivery works
 * where queues are missing (KV Connect, Deno Deploy) or slow (cross-process on one file).
 *
 * States:
 *
 *   pending ──claim──▶ running ──ok──────────────────────────▶ succeeded
 *   failed  ──claim──▶ running ──error, attempts left────────▶ failed (next_run_at = retry)
 *                      running ──error, none left / dead────▶ dead
 *                      running ──lease expired──▶ claimed again by the sweep (an attempt),
 *                                                 or dead when no attempts are left
 *   failed | dead ──admin retry──▶ pending (due now, attempts back to 0)
 *
 * - `pending`: waiting for its first run at `next_run_at`, or for a run an operator asked for.
 * - `failed`: the last attempt failed and a retry is scheduled at `next_run_at`.
 * - `dead`: no more attempts (max_attempts spent, the handler said so, or no handler exists).
 * - A claim is a versionstamp-checked change to `running` with `lease_until`: of two workers
 *   only one wins. It also checks that the queue is not paused, so a paused queue starts
 *   nothing once its pause has committed. A worker that outlives its lease loses its result
 *   (its finishing commit fails its check) and the job runs again.
 * - `attempts` counts claims, so a run lost with its worker counts as one.
 */
import { conflict } from "../shared/errors.ts";
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { checksPerCommit } from "../../kv/open.ts";
import { getRecord, insert, remove, replace, type Table, type Versioned } from "../../kv/table.ts";
import { newId, timePrefix } from "../shared/ids.ts";
import { type Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

export type JobStatus = "pending" | "running" | "succeeded" | "failed" | "dead";
export const JOB_STATUSES: readonly JobStatus[] = [
  "pending",
  "running",
  "succeeded",
  "failed",
  "dead",
];

export interface Job {
  id: string;
  queue: string;
  type: string;
  payload: Record<string, unknown>;
  status: JobStatus;
  /** Claims so far (each run, including one lost with its worker). */
  attempts: number;
  max_attempts: number;
  /** When a pending or failed job is due; null while running and once finished. */
  next_run_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  /** When the current or last run started. */
  started_at: string | null;
  /** When it succeeded or died. */
  finished_at: string | null;
  /** While running: when another worker may take it over. */
  lease_until: string | null;
  /** How far a job done in steps has come (see JobResult's `next`). */
  progress?: JobProgress | null;
}

export interface JobProgress {
  done: number;
  total: number;
}

export interface JobSpec {
  /** Matches QUEUE_NAME; the unit that is paused, resumed and counted. */
  queue: string;
  /** Picks the handler (a key of JobHandlers), e.g. `webhook.deliver`. */
  type: string;
  /** Stored in the job record (KV values stop at 64 KiB): carry ids, not documents. */
  payload: Record<string, unknown>;
  /** Epoch ms; default now. */
  runAt?: number;
  /** Default DEFAULT_MAX_ATTEMPTS. */
  maxAttempts?: number;
}

export type JobResult =
  | {
    ok: true;
    /**
     * Work left: the job runs again (at `runAt`, default now) with this payload, so a long job
     * goes in steps that each commit where it got to, and a crash loses one step at most.
     */
    next?: { payload: Record<string, unknown>; progress?: JobProgress; runAt?: number };
    /** Where a job done in steps ended. */
    progress?: JobProgress;
  }
  | {
    ok: false;
    error: string;
    /** Epoch ms of the next attempt; absent: the runner's default backoff. */
    retryAt?: number;
    /** No more attempts, whatever is left. */
    dead?: boolean;
  };

export type JobHandler = (svc: Services, job: Job) => Promise<JobResult>;
export type JobHandlers = Record<string, JobHandler>;

/** The KV queue message: run one job, or run a queue's due jobs (after a resume). */
export type JobWakeUp = { job: string } | { queue: string };

const DEFAULT_MAX_ATTEMPTS = 5;
/** How long a claim holds a job: a worker lost mid-run delays its job by this much. */
const JOB_LEASE_MS = 2 * 60_000;
/** KV refuses queue delays over 30 days; a later job is woken by the sweep instead. */
const MAX_WAKE_UP_DELAY_MS = 30 * 86_400_000;
const MAX_ERROR_LENGTH = 1_000;
const DEFAULT_SWEEP_LIMIT = 100;

/** A queue name: lower-case letters, digits, `.`, `_`, `-`; it is also a URL segment. */
export const QUEUE_NAME = /^[a-z][a-z0-9._-]{0,62}$/;

/** Default wait before retry `attempt` + 1: 30 s, 2 min, 8 min, 32 min, … at most 6 h. */
export const backoffMs = (attempt: number) =>
  Math.min(6 * 3_600_000, 30_000 * 4 ** Math.max(0, attempt - 1));

/** When the job is next claimable (epoch ms), or null when it never is without an operator. */
function dueAt(job: Job): number | null {
  if (job.status === "running") return Date.parse(job.lease_until!);
  if (job.status === "pending" || job.status === "failed") return Date.parse(job.next_run_at!);
  return null;
}

export const jobTable: Table<Job> = {
  key: keys.job,
  indexes: (j) => {
    const due = dueAt(j);
    return [
      keys.queueJob(j.queue, j.id),
      keys.jobByStatus(j.queue, j.status, j.id),
      ...(due === null ? [] : [keys.jobDue(j.queue, due, j.id)]),
    ];
  },
  counters: (j) => [keys.jobCount(j.queue, j.status)],
};

/** Adds the KV queue message that wakes a listener for `id` in `delayMs` (the sweep is the backstop). */
export function wakeJob(op: Deno.AtomicOperation, id: string, delayMs: number) {
  const delay = Math.min(MAX_WAKE_UP_DELAY_MS, Math.max(0, Math.round(delayMs)));
  op.enqueue({ job: id } satisfies JobWakeUp, { delay });
}

/**
 * Adds the job record, its indexes and its wake-up (op.enqueue with delay) to `op`: the job
 * commits with the change that caused it.
 */
export function enqueueJob(op: Deno.AtomicOperation, now: number, spec: JobSpec): Job {
  if (!QUEUE_NAME.test(spec.queue)) throw new Error(`jobs: invalid queue name "${spec.queue}"`);
  if (!spec.type) throw new Error("jobs: a job needs a type");
  const maxAttempts = spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new Error(`jobs: maxAttempts must be a positive integer, not ${maxAttempts}`);
  }
  const runAt = spec.runAt ?? now;
  const job: Job = {
    id: newId("job", now),
    queue: spec.queue,
    type: spec.type,
    payload: spec.payload,
    status: "pending",
    attempts: 0,
    max_attempts: maxAttempts,
    next_run_at: iso(runAt),
    last_error: null,
    created_at: iso(now),
    updated_at: iso(now),
    started_at: null,
    finished_at: null,
    lease_until: null,
  };
  insert(op, jobTable, job);
  wakeJob(op, job.id, runAt - now);
  return job;
}

export const getJob = (svc: Services, id: string) => getRecord(svc.kv, jobTable, id);

/**
 * The lock of a job that runs alone (a data key rotation, a reconciliation): a record naming the
 * job. Returned for the commit that starts the next one to check; 409 while the job it names is
 * still to finish (`what` says which).
 */
export async function soleJobLock(
  svc: Services,
  lock: Deno.KvKey,
  what: string,
): Promise<Deno.KvEntryMaybe<string>> {
  const entry = await svc.kv.get<string>(lock);
  if (entry.value) {
    const running = await getJob(svc, entry.value);
    if (running && !["succeeded", "dead"].includes(running.value.status)) {
      throw conflict(`${what} is running (job ${entry.value})`);
    }
  }
  return entry;
}

const isClaimable = (job: Job, now: number) => {
  const due = dueAt(job);
  return due !== null && due <= now;
};

/** A failure as `last_error`: a message, at most MAX_ERROR_LENGTH characters. */
const errorText = (err: unknown) =>
  (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH) || "failed";

/**
 * Claims a due job: running under a lease, one more attempt. A job whose lease ran out with no
 * attempts left goes dead instead (returned with status dead). Null when another worker won,
 * the job changed, or its queue was paused meanwhile.
 */
async function claim(
  svc: Services,
  current: Versioned<Job>,
  leaseMs: number,
): Promise<Versioned<Job> | null> {
  const now = svc.now();
  const job = current.value;
  const lost = job.status === "running";
  const next: Job = lost && job.attempts >= job.max_attempts
    ? {
      ...job,
      status: "dead",
      lease_until: null,
      finished_at: iso(now),
      last_error: "the worker running it stopped or overran its lease, and no attempts are left",
      updated_at: iso(now),
    }
    : {
      ...job,
      status: "running",
      attempts: job.attempts + 1,
      next_run_at: null,
      started_at: iso(now),
      lease_until: iso(now + leaseMs),
      updated_at: iso(now),
    };
  const op = replace(svc.kv.atomic(), jobTable, current, next)
    .check({ key: keys.queuePause(job.queue), versionstamp: null });
  const res = await commit(op);
  return res ? { value: next, versionstamp: res.versionstamp } : null;
}

/** Records the outcome of a run; null when the lease was lost (another worker has the job). */
async function finish(
  svc: Services,
  claimed: Versioned<Job>,
  result: JobResult,
): Promise<Job | null> {
  const now = svc.now();
  const job = claimed.value;
  const op = svc.kv.atomic();
  const ended = { lease_until: null, updated_at: iso(now) };
  let next: Job;
  if (result.ok && result.next) {
    // A step done: the attempts start again, each step has its own.
    const runAt = result.next.runAt ?? now;
    next = {
      ...job,
      ...ended,
      status: "pending",
      attempts: 0,
      payload: result.next.payload,
      progress: result.next.progress ?? job.progress ?? null,
      next_run_at: iso(runAt),
      last_error: null,
    };
    wakeJob(op, job.id, runAt - now);
  } else if (result.ok) {
    next = {
      ...job,
      ...ended,
      status: "succeeded",
      finished_at: iso(now),
      last_error: null,
      ...(result.progress ? { progress: result.progress } : {}),
    };
  } else if (result.dead || job.attempts >= job.max_attempts) {
    next = { ...job, ...ended, status: "dead", finished_at: iso(now), last_error: result.error };
  } else {
    const retryAt = result.retryAt ?? now + backoffMs(job.attempts);
    next = {
      ...job,
      ...ended,
      status: "failed",
      next_run_at: iso(retryAt),
      last_error: result.error,
    };
    wakeJob(op, job.id, retryAt - now);
  }
  return (await commit(replace(op, jobTable, claimed, next))) ? next : null;
}

async function execute(svc: Services, handlers: JobHandlers, claimed: Versioned<Job>) {
  const job = claimed.value;
  const handler = Object.hasOwn(handlers, job.type) ? handlers[job.type] : undefined;
  let result: JobResult;
  if (!handler) {
    result = { ok: false, error: `no handler for job type "${job.type}"`, dead: true };
  } else {
    try {
      result = await handler(svc, job);
    } catch (err) {
      result = { ok: false, error: errorText(err) };
    }
  }
  // Handlers come from other modules: a malformed answer fails the attempt, not the runner.
  if (typeof result?.ok !== "boolean") {
    result = { ok: false, error: "the handler returned no result" };
  } else if (!result.ok) {
    const retryAt = Number.isFinite(result.retryAt) ? result.retryAt : undefined;
    result = { ...result, error: errorText(result.error ?? "failed"), retryAt };
  }
  return await finish(svc, claimed, result);
}

export interface RunOptions {
  /** How long a claim holds the job (default JOB_LEASE_MS). */
  leaseMs?: number;
}

/**
 * Runs one job by id if it is due and claimable (what the KV queue listener calls on a
 * wake-up). Returns the job as the run left it, or null when nothing ran: unknown, not due,
 * finished, claimed by another worker, or its queue is paused.
 */
export async function runJob(
  svc: Services,
  handlers: JobHandlers,
  id: string,
  opts: RunOptions = {},
): Promise<Job | null> {
  const current = await getJob(svc, id);
  if (!current || !isClaimable(current.value, svc.now())) return null;
  const claimed = await claim(svc, current, opts.leaseMs ?? JOB_LEASE_MS);
  if (!claimed) return null;
  if (claimed.value.status === "dead") return claimed.value;
  return await execute(svc, handlers, claimed);
}

/** Every queue that has had a job or is paused (by name), and which of them are paused. */
async function queueState(svc: Services): Promise<{ names: string[]; paused: Set<string> }> {
  const names = new Set<string>();
  const paused = new Set<string>();
  for await (const e of svc.kv.list({ prefix: keys.jobCounts() })) names.add(e.key[1] as string);
  for await (const e of svc.kv.list({ prefix: keys.queuePauses() })) {
    names.add(e.key[1] as string);
    paused.add(e.key[1] as string);
  }
  return { names: [...names].sort(), paused };
}

export const queueNames = async (svc: Services) => (await queueState(svc)).names;

/** The first `limit` entries of a queue's due index at or before `now`. */
async function dueIn(svc: Services, queue: string, now: number, limit: number) {
  const due: { at: number; id: string }[] = [];
  const selector = { start: keys.jobsDue(queue), end: [...keys.jobsDue(queue), now + 1] };
  for await (const e of svc.kv.list<string>(selector, { limit })) {
    due.push({ at: e.key[2] as number, id: e.value });
  }
  return due;
}

export interface SweepOptions extends RunOptions {
  /** Only this queue. */
  queue?: string;
  /** At most this many jobs (default 100; the next call goes on). */
  limit?: number;
  /** Jobs run at once, started in due order (default 1: one after the other). */
  concurrency?: number;
}

/**
 * Claims (under a lease) and runs every job due at svc.now(), in due order; returns how many
 * ran. Paused queues are skipped. Used by the sweep cron and by tests (deterministic, injected
 * clock).
 */
export async function runDueJobs(
  svc: Services,
  handlers: JobHandlers,
  opts: SweepOptions = {},
): Promise<number> {
  const now = svc.now();
  const limit = opts.limit ?? DEFAULT_SWEEP_LIMIT;
  const { names, paused } = await queueState(svc);
  const queues = (opts.queue ? [opts.queue] : names).filter((q) => !paused.has(q));
  const due = (await Promise.all(queues.map((q) => dueIn(svc, q, now, limit)))).flat()
    .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit);
  let ran = 0;
  let next = 0;
  const lane = async () => {
    while (next < due.length) {
      if (await runJob(svc, handlers, due[next++].id, opts)) ran++;
    }
  };
  const lanes = Math.min(due.length, Math.max(1, opts.concurrency ?? 1));
  await Promise.all(Array.from({ length: lanes }, lane));
  return ran;
}

/** How long finished jobs are kept after they finish: the daily prune deletes older ones. */
const JOB_RETENTION_MS = { succeeded: 7 * 86_400_000, dead: 30 * 86_400_000 } as const;

/**
 * Deletes succeeded jobs a week after they finished and dead ones after 30 days; returns how
 * many. Each status index is in creation order, so only jobs created before the cutoff are read.
 */
export async function pruneFinishedJobs(svc: Services): Promise<number> {
  const now = svc.now();
  const perCommit = checksPerCommit(svc.kv);
  let deleted = 0;
  let batch: Versioned<Job>[] = [];
  const drop = async () => {
    const op = svc.kv.atomic();
    for (const job of batch) remove(op, jobTable, job);
    // A job retried meanwhile fails its check: it is no longer finished, so it stays.
    if (await commit(op)) deleted += batch.length;
    batch = [];
  };
  for (const queue of await queueNames(svc)) {
    for (const status of ["succeeded", "dead"] as const) {
      const cutoff = now - JOB_RETENTION_MS[status];
      const prefix = keys.jobsByStatus(queue, status);
      const selector = { start: prefix, end: [...prefix, `job_${timePrefix(cutoff)}`] };
      for await (const entry of svc.kv.list<string>(selector, { batchSize: 500 })) {
        const job = await getJob(svc, entry.value);
        if (!job || Date.parse(job.value.finished_at!) >= cutoff) continue;
        batch.push(job);
        if (batch.length === perCommit) await drop();
      }
    }
  }
  if (batch.length) await drop();
  return deleted;
}

/** What the KV queue listener does with a message; false for one that is not a job wake-up. */
export async function handleWakeUp(
  svc: Services,
  handlers: JobHandlers,
  message: unknown,
): Promise<boolean> {
  const m = message as Partial<Record<"job" | "queue", unknown>> | null;
  if (typeof m?.job === "string") await runJob(svc, handlers, m.job);
  else if (typeof m?.queue === "string") await runDueJobs(svc, handlers, { queue: m.queue });
  else return false;
  return true;
}
