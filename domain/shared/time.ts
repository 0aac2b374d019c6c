/** Times as the API writes them: ISO 8601 UTC, and the UTC day of a moment. */

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
  const start = ms - (ms % DAY_MS);
  if (start !== lastDay.start) lastDay = { start, label: iso(ms).slice(0, 10) };
  return lastDay.label;
}
