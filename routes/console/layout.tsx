/**
 * The console's page shell and the parts every page is built from: tiles, charts, tables,
 * pagers, forms and notices. Server-rendered; htmx (boosted links and forms) and uPlot (charts)
 * are enhancements loaded from /console/assets, with no inline script or style (the CSP forbids
 * both).
 */
import { raw } from "hono/html";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { randomBase62 } from "../../domain/shared/secrets.ts";
import { can } from "./api.ts";
import { type ConsoleContext, CSRF_FIELD, CSRF_HEADER } from "./session.ts";

export type Section =
  | "overview"
  | "tenants"
  | "users"
  | "webhooks"
  | "operations"
  | "finance"
  | "vault"
  | "audit";

/** Each section, and the API read that decides whether the signed-in user sees it. */
const SECTIONS: { id: Section; label: string; href: string; needs: [string, string] | null }[] = [
  { id: "overview", label: "Overview", href: "/console", needs: null },
  { id: "tenants", label: "Tenants", href: "/console/tenants", needs: ["GET", "/v1/tenants"] },
  { id: "users", label: "Users", href: "/console/users", needs: ["GET", "/v1/users"] },
  {
    id: "webhooks",
    label: "Webhooks",
    href: "/console/webhooks",
    needs: ["GET", "/v1/admin/webhooks"],
  },
  {
    id: "operations",
    label: "Operations",
    href: "/console/operations",
    needs: ["GET", "/v1/admin/system/queues"],
  },
  {
    id: "finance",
    label: "Finance",
    href: "/console/finance",
    needs: ["GET", "/v1/admin/finance/subscription-summary"],
  },
  { id: "vault", label: "Vault", href: "/console/vault", needs: ["GET", "/v1/admin/secrets"] },
  { id: "audit", label: "Audit", href: "/console/audit", needs: ["GET", "/v1/admin/audit"] },
];

/** The sections the signed-in user may open. */
export const visibleSections = (c: ConsoleContext) =>
  SECTIONS.filter((s) => !s.needs || can(c, s.needs[0], s.needs[1]));

const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  historyCacheSize: 0,
  // A refused form answers 4xx with the page and its error: show it (htmx drops 4xx/5xx by default).
  responseHandling: [{ code: "204", swap: false }, { code: "...", swap: true }],
});

/** Standards mode: without a doctype the browser renders in quirks mode. */
const DOCTYPE = raw("<!doctype html>");

const Head: FC<{ title: string }> = ({ title }) => (
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="htmx-config" content={HTMX_CONFIG} />
    <title>{`${title} · Steward console`}</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/console/assets/uPlot.min.css" />
    <link rel="stylesheet" href="/console/assets/console.css" />
    <script src="/console/assets/htmx.min.js" defer></script>
    <script src="/console/assets/uPlot.iife.min.js" defer></script>
    <script src="/console/assets/console.js" defer></script>
  </head>
);

/** A page of a signed-in user: navigation by what they may see, sign-out, the content. */
export const Page: FC<
  PropsWithChildren<{ c: ConsoleContext; title: string; section: Section }>
> = ({ c, title, section, children }) => {
  const { principal, csrf } = c.get("session");
  const who = principal.platform_role ?? "tenant member";
  return (
    <>
      {DOCTYPE}
      <html lang="en">
        <Head title={title} />
        <body hx-boost="true" hx-headers={JSON.stringify({ [CSRF_HEADER]: csrf })}>
          <a class="skip" href="#main">Skip to content</a>
          <header class="top">
            <a class="brand" href="/console">Steward</a>
            <nav aria-label="Sections">
              <ul>
                {visibleSections(c).map((s) => (
                  <li>
                    <a href={s.href} aria-current={s.id === section ? "page" : undefined}>
                      {s.label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
            <form class="signout" method="post" action="/console/logout" hx-boost="false">
              <input type="hidden" name={CSRF_FIELD} value={csrf} />
              <span class="who">{who}</span>
              <button type="submit">Sign out</button>
            </form>
          </header>
          <main id="main" tabindex={-1}>
            <h1>{title}</h1>
            {children}
          </main>
        </body>
      </html>
    </>
  );
};

/** A page before sign-in. */
export const BarePage: FC<PropsWithChildren<{ title: string }>> = ({ title, children }) => (
  <>
    {DOCTYPE}
    <html lang="en">
      <Head title={title} />
      <body>
        <main id="main" class="bare">
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  </>
);

export const Kpi: FC<{ label: string; value: Child; href?: string }> = (
  { label, value, href },
) => (
  <div class="kpi">
    <dt>{href ? <a href={href}>{label}</a> : label}</dt>
    <dd>{value}</dd>
  </div>
);

export interface Series {
  label: string;
  values: (number | null)[];
}

/**
 * A chart of day series: drawn by uPlot from its data attribute (console.js), with the same
 * numbers in a table for keyboards and screen readers.
 */
export const Chart: FC<{ id: string; title: string; days: string[]; series: Series[] }> = (
  { id, title, days, series },
) => (
  <figure class="chart" aria-labelledby={`${id}-title`}>
    <figcaption id={`${id}-title`}>{title}</figcaption>
    <div
      class="plot"
      id={id}
      role="img"
      aria-label={`${title}: chart of ${days.length} days`}
      data-chart={JSON.stringify({ days, series })}
    >
    </div>
    <details>
      <summary>{`${title}: the numbers`}</summary>
      <Table
        caption={title}
        columns={["Day", ...series.map((s) => s.label)]}
        rows={days.map((d, i) => [d, ...series.map((s) => s.values[i] ?? "—")])}
      />
    </details>
  </figure>
);

export const Table: FC<{ caption: string; columns: string[]; rows: Child[][]; empty?: string }> = (
  { caption, columns, rows, empty },
) => (
  // Focusable, so a keyboard can scroll a table wider than a phone's screen.
  <div class="table-wrap" tabindex={0} role="region" aria-label={caption}>
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>{columns.map((col) => <th scope="col">{col}</th>)}</tr>
      </thead>
      <tbody>
        {rows.length ? rows.map((r) => <tr>{r.map((cell) => <td>{cell}</td>)}</tr>) : (
          <tr>
            <td colspan={columns.length}>{empty ?? "Nothing here yet."}</td>
          </tr>
        )}
      </tbody>
    </table>
  </div>
);

/** Offset pages: previous / next links that keep the other query parameters. */
export const Pager: FC<{ c: ConsoleContext; total: number; offset: number; limit: number }> = (
  { c, total, offset, limit },
) => {
  const at = (o: number) => {
    const url = new URL(c.req.url);
    url.searchParams.set("offset", String(o));
    return `${url.pathname}?${url.searchParams}`;
  };
  const last = Math.min(offset + limit, total);
  return (
    <nav class="pager" aria-label="Pages">
      <span>{total ? `${offset + 1}–${last} of ${total}` : "none"}</span>
      {offset > 0 && <a href={at(Math.max(0, offset - limit))}>Previous</a>}
      {last < total && <a href={at(offset + limit)}>Next</a>}
    </nav>
  );
};

/**
 * A form that changes something: POST with the CSRF token and a nonce that makes a double
 * submit replay the first answer (it becomes the API call's Idempotency-Key).
 */
export const ActionForm: FC<
  PropsWithChildren<{
    c: ConsoleContext;
    action: string;
    label: string;
    danger?: boolean;
    inline?: boolean;
  }>
> = ({ c, action, label, danger, inline, children }) => (
  <form method="post" action={action} class={inline ? "action inline" : "action"}>
    <input type="hidden" name={CSRF_FIELD} value={c.get("session").csrf} />
    <input type="hidden" name="_nonce" value={randomBase62(24)} />
    {children}
    <button type="submit" class={danger ? "danger" : undefined}>{label}</button>
  </form>
);

/** A labelled input. */
export const Field: FC<{
  label: string;
  name: string;
  type?: string;
  value?: string;
  required?: boolean;
  hint?: string;
  autocomplete?: string;
}> = ({ label, name, type, value, required, hint, autocomplete }) => (
  <label class="field">
    <span>{label}</span>
    <input
      name={name}
      type={type ?? "text"}
      value={value}
      required={required}
      autocomplete={autocomplete}
      aria-describedby={hint ? `${name}-hint` : undefined}
    />
    {hint && <small id={`${name}-hint`}>{hint}</small>}
  </label>
);

/** The `offset` query parameter of a list page (0 when absent or not a valid offset). */
export const offsetOf = (c: ConsoleContext): number => {
  const n = Number(c.req.query("offset") ?? 0);
  return Number.isInteger(n) && n >= 0 && n <= 10_000 ? n : 0;
};

/** An outcome to tell: `alert` for errors (read out at once), `status` otherwise. */
export const Notice: FC<{ kind: "ok" | "error"; message: Child }> = ({ kind, message }) => (
  // A div, not a p: an API error's message comes with a list of its fields' issues.
  <div class={`notice ${kind}`} role={kind === "error" ? "alert" : "status"}>{message}</div>
);

/** An API refusal as a notice: its message, and each field's issue. */
export const ApiError: FC<{
  error?: { code: string; message: string; details?: { path: string[]; message: string }[] };
}> = ({ error }) =>
  error
    ? (
      <Notice
        kind="error"
        message={
          <>
            {error.message}
            {error.details?.length
              ? (
                <ul>
                  {error.details.map((d) => <li>{`${d.path.slice(1).join(".")}: ${d.message}`}
                  </li>)}
                </ul>
              )
              : null}
          </>
        }
      />
    )
    : null;

/** A time as people read it, in UTC. */
export const when = (iso: string | null | undefined) =>
  iso ? iso.replace("T", " ").replace(/\.\d{3}Z$/, " UTC") : "—";

/** A count as people read it. */
export const count = (n: number) => n.toLocaleString("en-US");

/** Minor units by currency (never added across currencies), e.g. "49.00 USD, 20.00 EUR". */
export const money = (amounts: Record<string, number>) =>
  Object.entries(amounts).map(([currency, minor]) =>
    `${
      (minor / 100).toLocaleString("en-US", { minimumFractionDigits: 2 })
    } ${currency.toUpperCase()}`
  ).join(", ") || "0";

/** A labelled choice; `""` among the options is "any". */
export const Select: FC<{
  label: string;
  name: string;
  options: [value: string, label: string][];
  value?: string;
}> = ({ label, name, options, value }) => (
  <label class="field">
    <span>{label}</span>
    <select name={name}>
      {options.map(([v, text]) => <option value={v} selected={v === (value ?? "")}>{text}</option>)}
    </select>
  </label>
);
