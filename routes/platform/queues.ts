/** Job queues (platform operations): counts, lag and pause state; jobs listed, retried, deleted. */
import { z } from "@hono/zod-openapi";
import {
  deleteJob,
  getJobOr404,
  listQueueJobs,
  listQueues,
  pauseQueue,
  resumeQueue,
  retryJob,
} from "../../domain/platform/queues.ts";
import { JOB_STATUSES, QUEUE_NAME } from "../../domain/jobs/jobs.ts";
import { actorOf, ifMatch, ok, okList, okRecord } from "../respond.ts";
import { defineRoute, router } from "../route.ts";
import { envelope, IdParams, jsonResponse, listEnvelope, orNull, PageQuery } from "../schemas.ts";
import { jobView } from "../views.ts";

const Status = z.enum(JOB_STATUSES);

/** A webhook delivery whose first two attempts got a 503; its next run is due in ~5 min. */
const JobSchema = z.object({
  id: z.string().openapi({ example: "job_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
  queue: z.string().openapi({ example: "webhooks" }),
  type: z.string().openapi({ example: "webhook.deliver" }),
  payload: z.record(z.string(), z.unknown()).openapi({
    example: {
      tenant_id: "ten_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      endpoint_id: "whk_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      message_id: "msg_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A",
      trigger: "scheduled",
    },
  }),
  status: Status.openapi({
    description: "`failed`: the last attempt failed and a retry is due at `next_run_at`; " +
      "`dead`: no attempts left.",
    example: "failed",
  }),
  attempts: z.number().int().openapi({ example: 2 }),
  max_attempts: z.number().int().openapi({ example: 8 }),
  next_run_at: z.string().nullable().openapi({ example: "2026-01-31T12:05:09.000Z" }),
  last_error: z.string().nullable().openapi({ example: "the endpoint answered 503" }),
  created_at: z.string().openapi({ example: "2026-01-31T12:00:00.000Z" }),
  updated_at: z.string().openapi({ example: "2026-01-31T12:00:05.000Z" }),
  started_at: z.string().nullable().openapi({ example: "2026-01-31T12:00:05.000Z" }),
  finished_at: z.string().nullable().openapi({ example: null }),
  lease_until: z.string().nullable().openapi({
    description: "While running: when another worker may take the job over.",
    example: null,
  }),
  progress: orNull(z.object({
    done: z.number().int().openapi({ example: 412 }),
    total: z.number().int().openapi({ example: 1_001 }),
  })).optional().openapi({
    description: "A job done in steps (a vault rotation): how far it has come.",
    example: null,
  }),
}).openapi("Job");

/** The webhooks queue, paused 15 minutes ago: its due jobs wait. */
const QueueSchema = z.object({
  name: z.string().openapi({ example: "webhooks" }),
  counts: z.object({
    pending: z.number().int().openapi({ example: 42 }),
    running: z.number().int().openapi({ example: 0 }),
    succeeded: z.number().int().openapi({ example: 18_250 }),
    failed: z.number().int().openapi({ example: 3 }),
    dead: z.number().int().openapi({ example: 1 }),
  }).openapi({ description: "Jobs in each status (exact: kept by the commits that move jobs)." }),
  paused: z.boolean().openapi({ example: true }),
  paused_at: z.string().nullable().openapi({ example: "2026-01-31T11:45:00.000Z" }),
  oldest_due_age_ms: z.number().int().nullable().openapi({
    description: "How long the most overdue job has waited past its due time (a paused queue's " +
      "backlog, or a lag of the runners); null when nothing is due.",
    example: 897_000,
  }),
}).openapi("JobQueue");

const QueueParams = z.strictObject({
  name: z.string().regex(QUEUE_NAME, "a queue name: a-z, 0-9, '.', '_', '-'").openapi({
    param: { name: "name", in: "path" },
    example: "webhooks",
  }),
});

const tags = ["Jobs"];

export function adminQueueRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/queues",
      tags,
      summary: "List job queues with their counts by status, pause state and lag",
      responses: { 200: jsonResponse(envelope(z.array(QueueSchema)), "Every queue, by name.") },
    }),
    async (c) => ok(c, await listQueues(c.get("svc"))),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/queues/{name}/jobs",
      tags,
      summary: "List a queue's jobs (newest first)",
      request: {
        params: QueueParams,
        query: z.strictObject({ ...PageQuery, status: Status.optional() }),
      },
      responses: { 200: jsonResponse(listEnvelope(JobSchema), "A page of jobs.") },
    }),
    async (c) => {
      const { limit, cursor, offset, page: pageNo, status } = c.req.valid("query");
      const page = await listQueueJobs(c.get("svc"), c.req.valid("param").name, status, {
        limit,
        cursor,
        offset,
        page: pageNo,
      });
      return okList(c, page, limit, jobView(c.get("principal")));
    },
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/system/queues/{name}/pause",
      tags,
      summary: "Pause a queue",
      description: "Its jobs stay where they are, unclaimed, until the queue is resumed; a job " +
        "already running finishes. Pausing a paused queue changes nothing.",
      request: { params: QueueParams },
      responses: { 200: jsonResponse(envelope(QueueSchema), "The paused queue.") },
    }),
    async (c) => ok(c, await pauseQueue(c.get("svc"), actorOf(c), c.req.valid("param").name)),
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/system/queues/{name}/resume",
      tags,
      summary: "Resume a paused queue",
      description: "Its due jobs run at once (in due order); nothing held was lost. Resuming a " +
        "running queue changes nothing.",
      request: { params: QueueParams },
      responses: { 200: jsonResponse(envelope(QueueSchema), "The resumed queue.") },
    }),
    async (c) => ok(c, await resumeQueue(c.get("svc"), actorOf(c), c.req.valid("param").name)),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/system/jobs/{id}",
      tags,
      summary: "Get a job",
      request: { params: IdParams("job") },
      responses: { 200: jsonResponse(envelope(JobSchema), "The job.") },
    }),
    async (c) =>
      okRecord(
        c,
        await getJobOr404(c.get("svc"), c.req.valid("param").id),
        jobView(c.get("principal")),
      ),
  );

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/system/jobs/{id}/retry",
      tags,
      summary: "Run a failed or dead job again",
      description: "The job becomes pending and due now, with a fresh round of `max_attempts` " +
        "(`attempts` back to 0). 409 for a job that is pending, running or succeeded.",
      request: { params: IdParams("job") },
      responses: { 200: jsonResponse(envelope(JobSchema), "The job, pending.") },
    }),
    async (c) => {
      const job = await retryJob(c.get("svc"), actorOf(c), c.req.valid("param").id, ifMatch(c));
      return okRecord(c, job, jobView(c.get("principal")));
    },
  );

  app.openapi(
    defineRoute({
      method: "delete",
      path: "/v1/admin/system/jobs/{id}",
      tags,
      summary: "Delete a job",
      description: "409 while it runs (its worker would finish it).",
      request: { params: IdParams("job") },
      responses: { 200: jsonResponse(envelope(JobSchema), "The deleted job.") },
    }),
    async (c) => {
      const job = await deleteJob(c.get("svc"), actorOf(c), c.req.valid("param").id, ifMatch(c));
      return ok(c, jobView(c.get("principal"))(job));
    },
  );

  return app;
}
