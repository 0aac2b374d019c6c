/**
 * Operations › queues and jobs: every queue's counts, pause state and lag (pause, resume); a
 * queue's jobs by status (retry); a job's payload and history (retry, delete with its id typed).
 */
import type { Hono } from "hono";
import { JOB_STATUSES } from "../../../domain/jobs/jobs.ts";
import { type Api, type ApiAnswer, can } from "../api.ts";
import {
  ActionForm,
  ApiError,
  count,
  Field,
  offsetOf,
  Pager,
  Select,
  Table,
  when,
} from "../layout.tsx";
import type { ConsoleContext, ConsoleEnv } from "../session.ts";
import {
  choices,
  duration,
  failWith,
  type Form,
  nonceOf,
  redirectWith,
  totalOf,
} from "./common.tsx";
import { Facts, OPS, OpsPage } from "./operations_nav.tsx";
import type { Job } from "../../../domain/jobs/jobs.ts";

const API = "/v1/admin/system";
const LIMIT = 25;
const seg = encodeURIComponent;
const queuePath = (name: string) => `${OPS}/queues/${seg(name)}`;
const jobPath = (id: string) => `${OPS}/jobs/${seg(id)}`;

const NOTICES: Record<string, string> = {
  paused: "The queue is paused: its jobs wait until it is resumed.",
  resumed: "The queue is resumed: its due jobs run now.",
  retried: "The job is pending again, due now, with a fresh round of attempts.",
  deleted: "The job is deleted.",
};

interface Queue {
  name: string;
  counts: Record<string, number>;
  paused: boolean;
  paused_at: string | null;
  oldest_due_age_ms: number | null;
}

const retriable = (job: Job) => job.status === "failed" || job.status === "dead";

async function queuesPage(c: ConsoleContext, api: Api, error?: ApiAnswer["error"]) {
  const res = await api<Queue[]>(c, "GET", `${API}/queues`);
  if (!res.ok) failWith(c, res);
  const write = can(c, "POST", `${API}/queues/{name}/pause`);
  return (
    <OpsPage c={c} title="Queues and jobs" tab="queues" notices={NOTICES} error={error}>
      {res.ok
        ? (
          <Table
            caption="Job queues"
            columns={[
              "Queue",
              ...JOB_STATUSES,
              "State",
              "Oldest due waits",
              ...(write ? ["Action"] : []),
            ]}
            rows={res.data.map((q) => [
              <a href={queuePath(q.name)}>{q.name}</a>,
              ...JOB_STATUSES.map((s) => count(q.counts[s] ?? 0)),
              q.paused ? `paused since ${when(q.paused_at)}` : "running",
              duration(q.oldest_due_age_ms),
              ...(write
                ? [
                  <ActionForm
                    c={c}
                    action={`${queuePath(q.name)}/${q.paused ? "resume" : "pause"}`}
                    label={q.paused ? `Resume ${q.name}` : `Pause ${q.name}`}
                    inline
                  />,
                ]
                : []),
            ])}
            empty="No queue has had a job yet."
          />
        )
        : <ApiError error={res.error} />}
    </OpsPage>
  );
}

async function jobsPage(c: ConsoleContext, api: Api, name: string, error?: ApiAnswer["error"]) {
  const offset = offsetOf(c);
  const status = c.req.query("status");
  const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  if (status && (JOB_STATUSES as readonly string[]).includes(status)) query.set("status", status);
  const res = await api<Job[]>(c, "GET", `${API}/queues/${seg(name)}/jobs?${query}`);
  if (!res.ok) failWith(c, res);
  const retry = can(c, "POST", `${API}/jobs/{id}/retry`);
  return (
    <OpsPage c={c} title={`Queue ${name}`} tab="queues" notices={NOTICES} error={error}>
      <p>
        <a href={`${OPS}/queues`}>All queues</a>
      </p>
      <form class="search" method="get" action={queuePath(name)}>
        <Select label="Status" name="status" options={choices(JOB_STATUSES)} value={status} />
        <button type="submit">Filter</button>
      </form>
      {res.ok
        ? (
          <>
            <Table
              caption={`Jobs of ${name} (newest first)`}
              columns={[
                "Job",
                "Type",
                "Status",
                "Attempts",
                "Next run",
                "Last error",
                "Created",
                ...(retry ? ["Action"] : []),
              ]}
              rows={res.data.map((j) => [
                <a href={jobPath(j.id)}>{j.id}</a>,
                j.type,
                j.status,
                `${j.attempts} of ${j.max_attempts}`,
                when(j.next_run_at),
                j.last_error ?? "—",
                when(j.created_at),
                ...(retry
                  ? [
                    retriable(j)
                      ? (
                        <ActionForm
                          c={c}
                          action={`${jobPath(j.id)}/retry`}
                          label="Retry"
                          inline
                        />
                      )
                      : "—",
                  ]
                  : []),
              ])}
              empty="No job here."
            />
            <Pager c={c} total={totalOf(res, offset)} offset={offset} limit={LIMIT} />
          </>
        )
        : <ApiError error={res.error} />}
    </OpsPage>
  );
}

async function jobPage(c: ConsoleContext, api: Api, id: string, error?: ApiAnswer["error"]) {
  const res = await api<Job>(c, "GET", `${API}/jobs/${seg(id)}`);
  if (!res.ok) {
    failWith(c, res);
    return (
      <OpsPage c={c} title="Job" tab="queues" error={res.error}>
        <p>
          <a href={`${OPS}/queues`}>All queues</a>
        </p>
      </OpsPage>
    );
  }
  const j = res.data;
  return (
    <OpsPage c={c} title={`Job ${j.id}`} tab="queues" notices={NOTICES} error={error}>
      <p>
        <a href={queuePath(j.queue)}>{`Queue ${j.queue}`}</a>
      </p>
      <Facts
        items={[
          ["Type", j.type],
          ["Status", j.status],
          ["Attempts", `${j.attempts} of ${j.max_attempts}`],
          ["Next run", when(j.next_run_at)],
          ["Last error", j.last_error ?? "—"],
          [
            "Progress",
            j.progress ? `${count(j.progress.done)} of ${count(j.progress.total)}` : "—",
          ],
          ["Created", when(j.created_at)],
          ["Started", when(j.started_at)],
          ["Finished", when(j.finished_at)],
        ]}
      />
      <h2>Payload</h2>
      <pre class="body">{JSON.stringify(j.payload, null, 2)}</pre>
      {can(c, "POST", `${API}/jobs/{id}/retry`) && retriable(j) && (
        <ActionForm c={c} action={`${jobPath(j.id)}/retry`} label="Retry" />
      )}
      {can(c, "DELETE", `${API}/jobs/{id}`) && j.status !== "running" && (
        <ActionForm c={c} action={`${jobPath(j.id)}/delete`} label="Delete job" danger>
          <Field label="Type the job's id to delete it" name="confirm" required />
        </ActionForm>
      )}
    </OpsPage>
  );
}

export function queuePages(app: Hono<ConsoleEnv>, api: Api) {
  app.get(`${OPS}/queues`, async (c) => c.html(await queuesPage(c, api)));
  app.get(`${OPS}/queues/:name`, async (c) => c.html(await jobsPage(c, api, c.req.param("name"))));
  app.get(`${OPS}/jobs/:id`, async (c) => c.html(await jobPage(c, api, c.req.param("id"))));

  for (const action of ["pause", "resume"] as const) {
    app.post(`${OPS}/queues/:name/${action}`, async (c) => {
      const name = c.req.param("name");
      const form: Form = await c.req.parseBody();
      const res = await api(c, "POST", `${API}/queues/${seg(name)}/${action}`, {
        idempotencyKey: nonceOf(form),
      });
      if (!res.ok) {
        failWith(c, res);
        return c.html(await queuesPage(c, api, res.error));
      }
      return redirectWith(c, `${OPS}/queues`, action === "pause" ? "paused" : "resumed");
    });
  }

  app.post(`${OPS}/jobs/:id/retry`, async (c) => {
    const id = c.req.param("id");
    const form: Form = await c.req.parseBody();
    const res = await api(c, "POST", `${API}/jobs/${seg(id)}/retry`, {
      idempotencyKey: nonceOf(form),
    });
    if (!res.ok) {
      failWith(c, res);
      return c.html(await jobPage(c, api, id, res.error));
    }
    return redirectWith(c, jobPath(id), "retried");
  });

  app.post(`${OPS}/jobs/:id/delete`, async (c) => {
    const id = c.req.param("id");
    const form: Form = await c.req.parseBody();
    if (String(form.confirm ?? "").trim() !== id) {
      c.status(422);
      return c.html(
        await jobPage(c, api, id, {
          code: "VALIDATION_FAILED",
          message: "Type the job's id to delete it.",
        }),
      );
    }
    const job = await api<Job>(c, "GET", `${API}/jobs/${seg(id)}`);
    const res = job.ok
      ? await api(c, "DELETE", `${API}/jobs/${seg(id)}`, { idempotencyKey: nonceOf(form) })
      : job;
    if (!res.ok) {
      failWith(c, res);
      return c.html(await jobPage(c, api, id, res.error));
    }
    return redirectWith(c, queuePath(job.data.queue), "deleted");
  });
}
