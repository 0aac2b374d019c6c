/**
 * The Operations section's frame: its sub-pages (queues, alerts, health, logs, the usage
 * pipeline, cost), each shown in its local navigation only to a role that may read it, and the
 * small parts its pages share.
 */
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { type ApiAnswer, can } from "../api.ts";
import { ApiError, Page } from "../layout.tsx";
import { Done } from "./common.tsx";
import type { ConsoleContext } from "../session.ts";

export const OPS = "/console/operations";

export type OpsTab = "queues" | "alerts" | "health" | "logs" | "usage" | "cost";

/** Each sub-page, and the API read that decides whether the signed-in user sees it. */
const TABS: { id: OpsTab; label: string; needs: string }[] = [
  { id: "queues", label: "Queues and jobs", needs: "/v1/admin/system/queues" },
  { id: "alerts", label: "Alerts", needs: "/v1/admin/system/alerts" },
  { id: "health", label: "Health", needs: "/v1/admin/system/health" },
  { id: "logs", label: "Request logs", needs: "/v1/admin/logs" },
  { id: "usage", label: "Usage pipeline", needs: "/v1/admin/usage/diagnostics" },
  { id: "cost", label: "Cost", needs: "/v1/admin/cost" },
];

/** The sub-pages the signed-in user may open. */
export const visibleTabs = (c: ConsoleContext) => TABS.filter((t) => can(c, "GET", t.needs));

/**
 * A page of the section: the local navigation, what a finished action did (`notices`, by the
 * `?notice` key), and the refusal of a failed one.
 */
export const OpsPage: FC<
  PropsWithChildren<{
    c: ConsoleContext;
    title: string;
    tab: OpsTab;
    notices?: Record<string, string>;
    error?: ApiAnswer["error"];
  }>
> = ({ c, title, tab, notices, error, children }) => (
  <Page c={c} title={title} section="operations">
    <nav aria-label="Operations" class="subnav">
      <ul>
        {visibleTabs(c).map((t) => (
          <li>
            <a href={`${OPS}/${t.id}`} aria-current={t.id === tab ? "page" : undefined}>
              {t.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
    <Done c={c} notices={notices} />
    <ApiError error={error} />
    {children}
  </Page>
);

/** Label and value pairs. */
export const Facts: FC<{ items: [string, Child][] }> = ({ items }) => (
  <dl class="facts">
    {items.map(([label, value]) => (
      <>
        <dt>{label}</dt>
        <dd>{value}</dd>
      </>
    ))}
  </dl>
);
