/** Times as the API writes them: ISO 8601 UTC, and the UTC day of a moment. */

export const DAY_MS = 86_400_000;

export const iso = (ms: number) => new Date(ms).toISOString();

/** The last day formatted: the verify hot path asks for today's label on every call. */
let lastDay = { start: NaN, label: "" };

/** The UTC day of `ms` as YYYY-MM-DD. */
export function dayOf(ms: number): string {
  const start = ms - (ms % DAY_MS);
  if (start !== lastDay.start) lastDay = { start, label: iso(ms).slice(0, 10) };
  return lastDay.label;
}
