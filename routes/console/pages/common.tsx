/**
 * Small parts the Webhooks and Operations pages share: list filters and totals, times typed in
 * forms, and what an action answers (a refusal, or a redirect with a notice key: a URL never
 * carries the text a page shows, so a crafted link cannot make the console say anything).
 */
import type { FC } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ApiAnswer } from "../api.ts";
import { Notice } from "../layout.tsx";
import type { ConsoleContext } from "../session.ts";

/** The notice of the `?notice` key, when `notices` knows it. */
export const Done: FC<{ c: ConsoleContext; notices?: Record<string, string> }> = (
  { c, notices },
) => {
  const key = c.req.query("notice");
  const text = key && notices && Object.hasOwn(notices, key) ? notices[key] : null;
  return text ? <Notice kind="ok" message={text} /> : null;
};

/** After an action: back to `path` with the key of its notice. */
export const redirectWith = (c: ConsoleContext, path: string, notice: string) =>
  c.redirect(`${path}${path.includes("?") ? "&" : "?"}notice=${notice}`, 303);

/** The API's status for a page that shows its refusal (a 403 stays 403). */
export const failWith = (c: ConsoleContext, res: Pick<ApiAnswer, "status">) =>
  c.status(res.status as ContentfulStatusCode);

/** A posted form, as `c.req.parseBody()` reads it. */
export type Form = Record<string, unknown>;

/** The form's nonce as the API call's Idempotency-Key (none when a forged form lacks it). */
export const nonceOf = (form: Form) =>
  typeof form._nonce === "string" && form._nonce ? form._nonce : undefined;

/** A duration as people read it (ms, s, min, h, d). */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** A filter's options: "any", then each value as itself. */
export const choices = (values: readonly string[]): [string, string][] => [
  ["", "any"],
  ...values.map((v): [string, string] => [v, v]),
];

/** A list's total for the pager: the API's, else as far as the pages are known to go. */
export const totalOf = (res: ApiAnswer<unknown[]>, offset: number) =>
  res.pagination?.total ?? offset + (res.data?.length ?? 0) + (res.pagination?.has_more ? 1 : 0);

/** A `datetime-local` value (read as UTC) as the API's timestamp; anything else as it came. */
export const utc = (local: string) =>
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(local)
    ? new Date(`${local.length === 16 ? `${local}:00` : local}Z`).toISOString()
    : local;
