/**
 * Operating the job queues: what each holds (exact counts by status, kept by the commits that
 * move jobs), listing their jobs, pausing and resuming them, retrying and deleting a job. Every
 * change here is audited; the runner's own moves (claims, outcomes) are not — they are the
 * job's `attempts`, `last_error` and timestamps.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { listPage, type Page, type PageRequest } from "../../kv/list.ts";
import { getRecord, remove, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { conflict, notFound, staleVersion } from "../shared/errors.ts";
import {
  getJob,
  type Job,
  JOB_STATUSES,
  type JobStatus,
  jobTable,
  type JobWakeUp,
  queueNames,
  wakeJob,
} from "../jobs/jobs.ts";
import { updateRecord } from "../audit/records.ts";
import { type Actor, type Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";

interface QueuePause {
  paused_at: string;
  paused_by: string;
}

export interface QueueSummary {
  name: string;
  counts: Record<JobStatus, number>;
  paused: boolean;
  paused_at: string | null;
  /** How long the most overdue job has waited past its due time; null when none is due. */
  oldest_due_age_ms: number | null;
}

/** The queue's summary, or null for a queue that never had a job and is not paused. */
async function summarize(svc: Services, name: string): Promise<QueueSummary | null> {
  const now = svc.now();
  const [countEntries, pause, first] = await Promise.all([
    svc.kv.getMany<Deno.KvU64[]>(JOB_STATUSES.map((s) => keys.jobCount(name, s))),
    svc.kv.get<QueuePause>(keys.queuePause(name)),
    Array.fromAsync(svc.kv.list({ prefix: keys.jobsDue(name) }, { limit: 1 })),
  ]);
  const counts = Object.fromEntries(
    JOB_STATUSES.map((s, i) => [s, Number(countEntries[i].value?.value ?? 0n)]),
  ) as Record<JobStatus, number>;
  // Counters are written by the first job and kept at zero: they say the queue exists.
  if (pause.value === null && countEntries.every((e) => e.versionstamp === null)) return null;
  const due = first.length ? first[0].key[2] as number : null;
  return {
    name,
    counts,
    paused: pause.value !== null,
    paused_at: pause.value?.paused_at ?? null,
    oldest_due_age_ms: due !== null && due <= now ? now - due : null,
  };
}

/** Every queue that has had a job or is paused, by name. */
export async function listQueues(svc: Services): Promise<QueueSummary[]> {
  const all = await Promise.all((await queueNames(svc)).map((name) => summarize(svc, name)));
  return all.filter((q) => q !== null);
}

/** The queue's summary; 404 for a queue that never had a job and is not paused. */
async function getQueue(svc: Services, name: string): Promise<QueueSummary> {
  const summary = await summarize(svc, name);
  if (!summary) throw notFound("queue");
  return summary;
}

/**
 * A queue's jobs, newest first, optionally in one status. `total` comes from the counters, so it
 * is exact without a scan.
 */
export async function listQueueJobs(
  svc: Services,
  queue: string,
  status: JobStatus | undefined,
  page: PageRequest,
): Promise<Page<Job> & { total: number }> {
  const summary = await getQueue(svc, queue);
  const result = await listPage<Job>(svc.kv, {
    selector: { prefix: status ? keys.jobsByStatus(queue, status) : keys.queueJobs(queue) },
    resolve: (entry) => getRecord(svc.kv, jobTable, entry.value as string),
  }, { ...page, reverse: true });
  const total = status
    ? summary.counts[status]
    : Object.values(summary.counts).reduce((a, b) => a + b, 0);
  return { ...result, total };
}

/**
 * Pauses a queue (its jobs stay, unclaimed) or resumes it, waking a listener in the same commit
 * to run its due jobs (the sweep would, within its interval). Setting the state it has already
 * changes nothing.
 */
function setPaused(svc: Services, actor: Actor, name: string, paused: boolean) {
  return retrying(async () => {
    const summary = await getQueue(svc, name);
    const current = await svc.kv.get<QueuePause>(keys.queuePause(name));
    if ((current.versionstamp !== null) === paused) return summary;
    const now = svc.now();
    const op = svc.kv.atomic().check(current);
    const pause: QueuePause | null = paused ? { paused_at: iso(now), paused_by: actor.id } : null;
    if (pause) op.set(keys.queuePause(name), pause);
    else op.delete(keys.queuePause(name)).enqueue({ queue: name } satisfies JobWakeUp);
    recordChange(op, now, actor, {
      action: paused ? "job_queue.paused" : "job_queue.resumed",
      resource_type: "job_queue",
      resource_id: name,
      tenant_id: null,
      before: { name, paused: !paused },
      after: { name, paused },
    });
    return (await commit(op))
      ? { ...summary, paused, paused_at: pause?.paused_at ?? null }
      : CONFLICT;
  });
}

export const pauseQueue = (svc: Services, actor: Actor, name: string) =>
  setPaused(svc, actor, name, true);
export const resumeQueue = (svc: Services, actor: Actor, name: string) =>
  setPaused(svc, actor, name, false);

/** What the audit trail keeps of a job: not its payload, which may be large. */
const auditView = (j: Job) => ({
  id: j.id,
  queue: j.queue,
  type: j.type,
  status: j.status,
  attempts: j.attempts,
  next_run_at: j.next_run_at,
  last_error: j.last_error,
});

export async function getJobOr404(svc: Services, id: string): Promise<Versioned<Job>> {
  const job = await getJob(svc, id);
  if (!job) throw notFound("job");
  return job;
}

/**
 * Runs a failed or dead job again: pending, due now, with a fresh round of max_attempts
 * (`attempts` back to 0; `last_error` kept until the next run). 409 for a job that is pending,
 * running or succeeded.
 */
export async function retryJob(svc: Services, actor: Actor, id: string, ifMatch?: string) {
  return await updateRecord(svc, actor, jobTable, {
    id,
    noun: "job",
    ifMatch,
    action: "job.retried",
    resource_type: "job",
    tenant_id: () => null,
    view: auditView,
    apply: (job): Job => {
      if (job.status !== "failed" && job.status !== "dead") {
        throw conflict(`only a failed or dead job can be retried; this one is ${job.status}`);
      }
      const now = iso(svc.now());
      return {
        ...job,
        status: "pending",
        attempts: 0,
        next_run_at: now,
        finished_at: null,
        lease_until: null,
        updated_at: now,
      };
    },
    extra: (op, _current, next) => wakeJob(op, next.id, 0),
  });
}

/** Deletes a job that is not running (409 while it runs: its worker would finish it). */
export async function deleteJob(
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch?: string,
): Promise<Job> {
  return await retrying(async () => {
    const current = await getJobOr404(svc, id);
    if (ifMatch && ifMatch !== current.versionstamp) throw staleVersion();
    if (current.value.status === "running") {
      throw conflict("the job is running; delete it once its run ends");
    }
    const op = remove(svc.kv.atomic(), jobTable, current);
    recordChange(op, svc.now(), actor, {
      action: "job.deleted",
      resource_type: "job",
      resource_id: id,
      tenant_id: null,
      before: auditView(current.value),
    });
    if (await commit(op)) return current.value;
    if (ifMatch) throw staleVersion();
    return CONFLICT;
  });
}
