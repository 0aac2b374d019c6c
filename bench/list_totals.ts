/**
 * What a list's `total` costs, and why counting stops at TOTAL_BOUND (10,000): the p50 of a first
 * page of 50 tenants, unfiltered (a maintained count) and filtered (`?plan=free`, counted by
 * walking the matches), with 1,000 tenants and at sizes past the bound, each as a ratio to the
 * same page at 1,000 tenants, measured in the same run. In process (app.request), so the figures
 * are the list's own work, not HTTP's.
 *
 *   deno task bench:lists                      # 1,000 / 10,000 / 30,000 tenants, 40 pages each
 */
import { createTenant } from "../domain/tenancy/tenants.ts";
import { SYSTEM_ACTOR } from "../domain/shared/services.ts";
import { setup } from "../tests/_harness.ts";

const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1000,10000,30000").split(",").map(Number);
const PAGES = Number(Deno.env.get("BENCH_PAGES") ?? 40);
const QUERIES = { unfiltered: "/v1/tenants?limit=50", filtered: "/v1/tenants?limit=50&plan=free" };

await using h = await setup();
let made = 0;
const p50s: Record<string, number[]> = { unfiltered: [], filtered: [] };
const totals: Record<string, string[]> = { unfiltered: [], filtered: [] };

for (const size of SIZES) {
  for (; made < size; made++) {
    await createTenant(h.svc, SYSTEM_ACTOR, {
      name: `Tenant ${made}`,
      slug: `tenant-${made}`,
    }, { is_test: false });
  }
  for (const [name, path] of Object.entries(QUERIES)) {
    const times: number[] = [];
    let answer;
    for (let i = 0; i < PAGES; i++) {
      const t = performance.now();
      answer = await h.call("GET", path, { token: h.root });
      times.push(performance.now() - t);
      if (answer.status !== 200) throw new Error(`${path}: ${answer.status} ${answer.text}`);
    }
    times.sort((a, b) => a - b);
    p50s[name].push(times[Math.floor(times.length / 2)]);
    const p = answer!.body.pagination;
    totals[name].push(`${p.total}${p.total_is_estimate ? " (estimate)" : ""}`);
  }
}

console.log(
  `first page of 50 tenants, p50 of ${PAGES} requests (ms), ratio to ${SIZES[0]} tenants`,
);
for (const name of Object.keys(QUERIES)) {
  SIZES.forEach((size, i) => {
    const ms = p50s[name][i];
    console.log(
      `${name.padEnd(10)} ${String(size).padStart(7)} tenants  p50 ${
        ms.toFixed(2).padStart(7)
      } ms` +
        `  ratio ${(ms / p50s[name][0]).toFixed(2).padStart(6)}  total ${totals[name][i]}`,
    );
  });
}
