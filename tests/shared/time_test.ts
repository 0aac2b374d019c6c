import assert from "node:assert/strict";
import { DAY_MS, dayOf, iso, quotaPeriod } from "../../domain/shared/time.ts";

Deno.test("time: a quota period's label and bounds hold in every year, 0–99 included", () => {
  for (const year of [0, 69, 99, 100, 999, 1969, 1970, 2026, 9998]) {
    const start = Date.parse(`${String(year).padStart(4, "0")}-10-15T12:00:00Z`);
    const month = quotaPeriod("month", start);
    const y = String(year).padStart(4, "0");
    assert.equal(month.label, `${y}-10`);
    assert.equal(iso(month.start), `${y}-10-01T00:00:00.000Z`);
    assert.equal(month.endIso, `${y}-11-01T00:00:00.000Z`);
    const whole = quotaPeriod("year", start);
    assert.equal(whole.label, y);
    assert.equal(iso(whole.start), `${y}-01-01T00:00:00.000Z`);
    assert.equal(iso(whole.end), `${String(year + 1).padStart(4, "0")}-01-01T00:00:00.000Z`);
  }
  // December rolls into the next year.
  assert.equal(
    quotaPeriod("month", Date.parse("0099-12-31T23:59:59Z")).endIso,
    "0100-01-01T00:00:00.000Z",
  );
});

Deno.test("time: the day of an instant before 1970 is its own, whatever was asked before", () => {
  assert.equal(dayOf(0), "1970-01-01");
  assert.equal(dayOf(-1), "1969-12-31");
  assert.equal(dayOf(-DAY_MS), "1969-12-31");
  assert.equal(dayOf(-DAY_MS - 1), "1969-12-30");
  assert.equal(dayOf(DAY_MS - 1), "1970-01-01");
});
