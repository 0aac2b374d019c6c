/**
 * Scheduled maintenance: what each cron tick does. main.ts registers the schedules; each tick
 * runs under a lease so it happens once across workers and instances.
 */
import { acquireLease, releaseLease } from "../kv/lease.ts";
import { pruneSessions } from "./sessions.ts";
import type { Services } from "./services.ts";

export interface MaintenanceTask {
  name: string;
  /** Cron expression (UTC). */
  schedule: string;
  run(svc: Services): Promise<Record<string, number>>;
}

export const MAINTENANCE_TASKS: MaintenanceTask[] = [
  {
    name: "expire-sessions",
    schedule: "*/10 * * * *",
    run: async (svc) => ({ sessions_deleted: await pruneSessions(svc) }),
  },
];

/** Runs `task` if this worker wins the tick's lease; returns its result, or null when another ran it. */
export async function runMaintenance(
  svc: Services,
  task: MaintenanceTask,
  owner: string,
): Promise<Record<string, number> | null> {
  const lease = `cron:${task.name}`;
  if (!(await acquireLease(svc.kv, lease, owner, 5 * 60_000, svc.now()))) return null;
  try {
    return await task.run(svc);
  } finally {
    await releaseLease(svc.kv, lease, owner);
  }
}
