/**
 * Operations: queues and jobs, alerts, infrastructure health, request logs, the usage pipeline
 * and cost, one sub-page each under /console/operations (operations_*.tsx), joined by a local
 * navigation that lists only what the signed-in user may read.
 */
import type { Hono } from "hono";
import type { Api } from "../api.ts";
import type { ConsoleEnv } from "../session.ts";
import { alertPages } from "./operations_alerts.tsx";
import { logPages } from "./operations_logs.tsx";
import { OPS, visibleTabs } from "./operations_nav.tsx";
import { queuePages } from "./operations_queues.tsx";
import { statusPages } from "./operations_status.tsx";

export function operationsPages(app: Hono<ConsoleEnv>, api: Api) {
  // The section opens on the first sub-page the user may read.
  app.get(OPS, (c) => {
    const [first] = visibleTabs(c);
    return first
      ? c.redirect(`${OPS}/${first.id}`, 303)
      : c.text("your role reads none of the operations pages", 403);
  });
  queuePages(app, api);
  alertPages(app, api);
  statusPages(app, api);
  logPages(app, api);
}
