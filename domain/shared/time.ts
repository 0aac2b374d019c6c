/** Times as the API writes them (ISO 8601 UTC), and the days, months and quota periods they fall in. */

export const DAY_MS = 86_400_000;

export const iso = (ms: number) => new Date(ms).toISOString();

/** The month of `ms` as YYYY-MM (UTC). */
export const monthOf = (ms: number) => iso(ms).slice(0, 7);

/** The calendar month `period` (YYYY-MM) as a day range, up to today for the current one. */
export function monthRange(period: string, now: number): { from: number; to: number } {
  const from = Date.parse(`${period}-01T00:00:00Z`);
  const next = new Date(from);
  next.setUTCMonth(next.getUTCMonth() + 1);
  return { from, to: Math.min(next.getTime() - DAY_MS, Date.parse(`${dayOf(now)}T00:00:00Z`)) };
}

/** The last day formatted: the verify hot path asks for today's label on every call. */
let lastDay = { start: NaN, label: "" };

/** The UTC day of `ms` as YYYY-MM-DD. */
export function dayOf(ms: number): string {
  // Floored: before 1970 a remainder is negative, and `ms - ms % DAY_MS` would be the next day.
  const start = Math.floor(ms / DAY_MS) * DAY_MS;
  if (start !== lastDay.start) lastDay = { start, label: iso(ms).slice(0, 10) };
  return lastDay.label;
}

export interface QuotaPeriod {
  readonly label: string;
  readonly start: number;
  readonly end: number;
  /** `end` as an ISO string (verify answers it on every call). */
  readonly endIso: string;
}

/** The last period computed per interval: the hot path asks for the current one every call. */
const lastPeriods: Record<"month" | "year", QuotaPeriod | null> = { month: null, year: null };

/** The quota period containing `now`: its label and its bounds (UTC calendar month or year). */
export function quotaPeriod(interval: "month" | "year", now: number): QuotaPeriod {
  const last = lastPeriods[interval];
  if (last && now >= last.start && now < last.end) return last;
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const year = String(y).padStart(4, "0");
  const [label, start, end] = interval === "year"
    ? [year, monthStart(y, 0), monthStart(y + 1, 0)]
    : [`${year}-${String(m + 1).padStart(2, "0")}`, monthStart(y, m), monthStart(y, m + 1)];
  return lastPeriods[interval] = { label, start, end, endIso: iso(end) };
}

/** The first instant of `month` (0-based, past 11 rolls over) of `year`, for any year. */
function monthStart(year: number, month: number): number {
  // Not Date.UTC: it reads the years 0–99 as 1900–1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month, 1);
  return d.getTime();
}
