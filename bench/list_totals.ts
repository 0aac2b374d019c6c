/**
 * Lists at scale (issue 22): the p50 of a first page of 50 and of a filtered page, each with its
 * `total`, for tenants, users, one tenant's API keys and the audit trail, at each size (records
 * per list), and the ratio of each to the same page at the first size. In process
 * (app.request), so the figures are the list's own work, not HTTP's. Each size has its own
 * store, and a query's requests alternate between them, so the machine's pace cancels out. Every record is made by the
 * domain code (20 at a time), so the counts read are the maintained ones; a sparse share of them
 * is suspended, blocked or made in the test environment, for the filters that walk an index.
 *
 *   deno task bench:lists                      # 1,000 and 100,000 of each, 40 pages each
 *   BENCH_SIZES=1000,10000 deno task bench:lists
 *   BENCH_LISTS=key deno task bench:lists      # only some lists (tenant, user, key, audit)
 */
import { createTenant, suspendTenant, type Tenant } from "../domain/tenancy/tenants.ts";
import { createProject } from "../domain/tenancy/projects.ts";
import { createUser } from "../domain/identity/users.ts";
import { setBlocked } from "../domain/identity/user_lifecycle.ts";
import { createApiKey, revokeApiKey } from "../domain/keys/api_keys.ts";
import { backfillListCounts } from "../domain/platform/list_counts.ts";
import { SYSTEM_PRINCIPAL } from "../domain/access/principal.ts";
import { SYSTEM_ACTOR } from "../domain/shared/services.ts";
import { setup } from "../tests/_harness.ts";

const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1000,100000").split(",").map(Number);
const PAGES = Number(Deno.env.get("BENCH_PAGES") ?? 40);
const CONCURRENCY = 20;
const LISTS = Deno.env.get("BENCH_LISTS")?.split(",") ?? ["tenant", "user", "key", "audit"];

/** Runs `make(i)` for i in [0, size), CONCURRENCY at a time. */
async function fill(size: number, make: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < size) await make(next++);
  }));
}

/** A store holding `size` records of each list, and the queries to time on it. */
async function store(size: number) {
  const h = await setup();
  await backfillListCounts(h.svc);
  const home = (await createTenant(h.svc, SYSTEM_ACTOR, { name: "Keys", slug: "keys-home" }, {
    is_test: false,
  })).value as Tenant;
  const project = (await createProject(h.svc, SYSTEM_ACTOR, home, { name: "Web" })).value;
  const makers = {
    /** Every 20th tenant suspended: a full page of them at 1,000. */
    tenant: async (i: number) => {
      const t = await createTenant(h.svc, SYSTEM_ACTOR, {
        name: `Tenant ${i}`,
        slug: `tenant-${i}`,
      }, { is_test: false });
      if (i % 20 === 10) await suspendTenant(h.svc, SYSTEM_ACTOR, t.value.id, "bench");
    },
    /** Every 20th user blocked; no password (hashing is not what is measured). */
    user: async (i: number) => {
      const u = await createUser(h.svc, SYSTEM_ACTOR, {
        email: `user${i}@example.com`,
        name: `User ${i}`,
        platform_role: null,
      });
      if (i % 20 === 10) {
        await setBlocked(h.svc, SYSTEM_ACTOR, SYSTEM_PRINCIPAL, u.value.id, { blocked: true });
      }
    },
    /** Every 10th key in the test environment, another 10th revoked, another in a project. */
    key: async (i: number) => {
      const { key } = await createApiKey(h.svc, SYSTEM_ACTOR, home, {
        name: `key ${i}`,
        environment: i % 10 === 5 ? "test" : "live",
        project_id: i % 10 === 7 ? project.id : undefined,
        external_id: i % 20 === 11 ? "cus_bench" : undefined,
      });
      if (i % 10 === 3) await revokeApiKey(h.svc, SYSTEM_ACTOR, home.id, key.value.id);
    },
  };
  const started = performance.now();
  for (const [list, make] of Object.entries(makers)) {
    if (LISTS.includes(list)) await fill(size, make);
  }
  console.error(`${size} of each made in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const keyList = `/v1/tenants/${home.id}/api-keys?limit=50`;
  /** [list, name, path]: audit events come from the other lists' changes. */
  const queries = ([
    ["tenant", "tenants", "/v1/tenants?limit=50"],
    ["tenant", "tenants ?plan=free", "/v1/tenants?limit=50&plan=free"],
    ["tenant", "tenants ?status=suspended", "/v1/tenants?limit=50&status=suspended"],
    ["user", "users", "/v1/users?limit=50"],
    ["user", "users ?status=blocked", "/v1/users?limit=50&status=blocked"],
    ["key", "API keys", keyList],
    ["key", "API keys ?environment=test", `${keyList}&environment=test`],
    ["key", "API keys ?status=active", `${keyList}&status=active`],
    ["key", "API keys ?status=revoked", `${keyList}&status=revoked`],
    ["key", "API keys ?project_id=", `${keyList}&project_id=${project.id}`],
    ["key", "API keys ?external_id=", `${keyList}&external_id=cus_bench`],
    ["audit", "audit", "/v1/admin/audit?limit=50"],
    ["audit", "audit ?resource_type=user", "/v1/admin/audit?limit=50&resource_type=user"],
    ["audit", "audit ?action=tenant.suspended", "/v1/admin/audit?limit=50&action=tenant.suspended"],
  ] as const).filter(([list]) => LISTS.includes(list)).map(([, name, path]) => ({ name, path }));
  return { h, queries };
}

// One store per size, all made first; then each query's requests alternate between the
// stores, so a slow spell of the machine lands on every size alike.
const stores = [];
for (const size of SIZES) stores.push(await store(size));

console.log(
  `first page of 50, p50 of ${PAGES} requests (ms), ratio to ${SIZES[0]} records per list\n`,
);
const head = SIZES.map((s) => `${s}`.padStart(16)).join("");
console.log(`${"list".padEnd(32)}${head}  total at ${SIZES.at(-1)}`);
for (let q = 0; q < stores[0].queries.length; q++) {
  const times: number[][] = stores.map(() => []);
  let total = "";
  for (let i = 0; i < PAGES; i++) {
    for (const [s, { h, queries }] of stores.entries()) {
      const t = performance.now();
      const answer = await h.call("GET", queries[q].path, { token: h.root });
      times[s].push(performance.now() - t);
      if (answer.status !== 200) {
        throw new Error(`${queries[q].path}: ${answer.status} ${answer.text}`);
      }
      const p = answer.body.pagination;
      total = `${p.total}${p.total_is_estimate ? " (estimate)" : ""}`;
    }
  }
  const p50s = times.map((t) => t.toSorted((a, b) => a - b)[Math.floor(t.length / 2)]);
  const cells = p50s.map((ms) => `${ms.toFixed(2)} (${(ms / p50s[0]).toFixed(2)})`.padStart(16));
  console.log(`${stores[0].queries[q].name.padEnd(32)}${cells.join("")}  ${total}`);
}
for (const { h } of stores) await h[Symbol.asyncDispose]();
