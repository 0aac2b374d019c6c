/**
 * Usage under load, in-process: 5,000 usage events in 50 concurrent batches (with ids repeated
 * across batches) and 5,000 concurrent verifies over six keys of two tenants, with flushes
 * running in between. Every counter — per tenant per period and per day for both metrics, per
 * key per day, the platform's verification traffic, and the usage read endpoints before and
 * after the last flush — equals the totals computed from what was sent; a repeated id counts once.
 */
import assert from "node:assert/strict";
import { keys } from "../../kv/keys.ts";
import { type Harness, setup } from "../_harness.ts";

const DAY_MS = 86_400_000;
const BATCHES = 50;
const PER_BATCH = 100;
const VERIFIES = 5_000;
const KEYS_PER_TENANT = 3;
const METRIC = "api.calls";

interface Counted {
  tenant: string;
  period: string;
  day: string;
}

/** Sums of `amount` by name, for comparing with what the store holds. */
class Totals {
  readonly sums = new Map<string, number>();
  add(name: string, amount: number) {
    this.sums.set(name, (this.sums.get(name) ?? 0) + amount);
  }
  get(name: string) {
    return this.sums.get(name) ?? 0;
  }
}

/** A tenant on its own plan (no practical rate limit or quota), with keys. */
async function tenantOnPlan(h: Harness, slug: string, period: "month" | "year") {
  const plan = await h.call("POST", "/v1/plans", {
    token: h.root,
    body: {
      code: `load-${period}`,
      name: `Load ${period}`,
      price: { amount: 0, currency: "usd", interval: "month" },
      rate_limit: { requests_per_second: 1_000_000, burst: 1_000_000 },
      quota: { units: 1_000_000_000, period },
      sla: 99,
    },
  });
  assert.equal(plan.status, 201, plan.text);
  const tenant = await h.tenant(slug);
  const moved = await h.call("PATCH", `/v1/tenants/${slug}/billing`, {
    token: h.root,
    body: { plan_code: `load-${period}`, override: false },
  });
  assert.equal(moved.status, 200, moved.text);
  const apiKeys: { id: string; key: string }[] = [];
  for (let i = 0; i < KEYS_PER_TENANT; i++) {
    const res = await h.call("POST", `/v1/tenants/${slug}/api-keys`, {
      token: h.root,
      body: { name: `k${i}`, environment: "live" },
    });
    assert.equal(res.status, 201, res.text);
    apiKeys.push({ id: res.body.data.id, key: res.body.data.key });
  }
  return { id: tenant.id, slug, period, keys: apiKeys };
}

/** Every KvU64 under `prefix`, by the key's last `depth` parts joined with "/". */
async function stored(h: Harness, prefix: Deno.KvKey, depth: number) {
  const found = new Map<string, number>();
  for await (const e of h.kv.list<Deno.KvU64>({ prefix })) {
    found.set(e.key.slice(-depth).join("/"), Number(e.value.value));
  }
  return found;
}

Deno.test("usage under load: 10,000 concurrent events and verifies give exact totals; repeats count once", async () => {
  await using h = await setup();
  const now = h.clock.now;
  const today = new Date(now).toISOString().slice(0, 10);
  const yesterday = new Date(now - DAY_MS).toISOString().slice(0, 10);
  // Month plan: yesterday (2026-02-28) is another period; year plan: the same one.
  const tenants = [
    await tenantOnPlan(h, "monthly", "month"),
    await tenantOnPlan(h, "yearly", "year"),
  ];
  const periodOf = (t: typeof tenants[number], day: string) =>
    t.period === "year" ? day.slice(0, 4) : day.slice(0, 7);

  // The events: batch b, slot i. In odd batches every tenth slot repeats, as is, the event of
  // the batch before it — sent concurrently, so either copy may be the one counted.
  const eventAt = (b: number, i: number) => {
    if (b % 2 === 1 && i % 10 === 9) return eventAt(b - 1, i);
    const t = tenants[(b + i) % 2];
    const day = i % 4 === 0 ? yesterday : today;
    const key = t.keys[i % KEYS_PER_TENANT];
    return {
      id: `evt-${b}-${i}`,
      ...(i % 3 === 0 ? { key_id: key.id } : { tenant_id: t.id }),
      metric: METRIC,
      quantity: 1 + (7 * i + b) % 5,
      timestamp: new Date(day === today ? now - (i % 60) * 1_000 : now - DAY_MS).toISOString(),
      counted: { tenant: t.id, period: periodOf(t, day), day } satisfies Counted,
    };
  };
  const batches = Array.from(
    { length: BATCHES },
    (_, b) => Array.from({ length: PER_BATCH }, (_, i) => eventAt(b, i)),
  );
  const expected = new Totals();
  const unique = new Map(batches.flat().map((e) => [`${e.counted.tenant}/${e.id}`, e]));
  for (const e of unique.values()) {
    const { tenant, period, day } = e.counted;
    expected.add(`period/${tenant}/${METRIC}/${period}`, e.quantity);
    expected.add(`daily/${tenant}/${METRIC}/${day}`, e.quantity);
  }

  // The verifies: round robin over the six keys, costs 0 to 3 (0 checks without spending).
  const verifies = Array.from({ length: VERIFIES }, (_, j) => {
    const t = tenants[j % 2];
    const key = t.keys[Math.floor(j / 2) % KEYS_PER_TENANT];
    return { t, key, cost: j % 4 };
  });
  for (const { t, key, cost } of verifies) {
    expected.add(`period/${t.id}/verifications/${periodOf(t, today)}`, cost);
    expected.add(`daily/${t.id}/verifications/${today}`, cost);
    // Per key too, in quota units (what the drift check compares with the tenant).
    expected.add(`key/${t.id}/${key.id}/${today}`, cost);
  }

  // All at once, interleaved, with a flush started after every 1,000 verifies.
  const flushes: Promise<void>[] = [];
  const sent = batches.map((events) =>
    h.call("POST", "/v1/usage/events", {
      token: h.root,
      body: { events: events.map(({ counted: _, ...e }) => e) },
    })
  );
  const answered = verifies.map(({ key, cost }, j) => {
    if (j % 1_000 === 999) flushes.push(h.svc.aggregator.flush());
    return h.call("POST", "/v1/keys/verify", { token: h.root, body: { key: key.key, cost } });
  });
  const [ingested, verified] = await Promise.all([Promise.all(sent), Promise.all(answered)]);
  await Promise.all(flushes);

  const statuses = new Totals();
  for (const res of ingested) {
    assert.equal(res.status, 200, res.text);
    for (const r of res.body.data.results) statuses.add(r.status, 1);
  }
  assert.deepEqual(Object.fromEntries(statuses.sums), {
    accepted: unique.size,
    duplicate: BATCHES * PER_BATCH - unique.size,
  });
  assert.equal(BATCHES * PER_BATCH - unique.size, 250);
  for (const res of verified) {
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.code, "VALID", res.text);
  }

  // The read endpoints, while part of the verifies is still in memory, then after a flush.
  const reads = async () => {
    const out = new Map<string, unknown>();
    for (const t of tenants) {
      const usage = await h.call("GET", `/v1/tenants/${t.slug}/usage`, { token: h.root });
      assert.equal(usage.status, 200, usage.text);
      for (const m of usage.body.data.metrics) out.set(`used/${t.id}/${m.metric}`, m.used);
      for (const metric of [METRIC, "verifications"]) {
        const daily = await h.call(
          "GET",
          `/v1/tenants/${t.slug}/usage/daily?metric=${metric}&from=${yesterday}&to=${today}`,
          { token: h.root },
        );
        assert.equal(daily.status, 200, daily.text);
        out.set(`days/${t.id}/${metric}`, daily.body.data.days);
      }
    }
    const traffic = await h.call(
      "GET",
      `/v1/admin/metrics/daily?from=${today}&to=${today}`,
      { token: h.root },
    );
    out.set("traffic", traffic.body.data.totals.verifications);
    return out;
  };
  const expectedReads = new Map<string, unknown>();
  for (const t of tenants) {
    for (const metric of [METRIC, "verifications"]) {
      expectedReads.set(
        `used/${t.id}/${metric}`,
        expected.get(`period/${t.id}/${metric}/${periodOf(t, today)}`),
      );
      expectedReads.set(
        `days/${t.id}/${metric}`,
        [yesterday, today].map((date) => ({
          date,
          used: expected.get(`daily/${t.id}/${metric}/${date}`),
        })),
      );
    }
  }
  expectedReads.set("traffic", VERIFIES);
  assert.deepEqual(await reads(), expectedReads);
  await h.svc.aggregator.flush();
  assert.deepEqual(await reads(), expectedReads);

  // What the store holds: every counter, nothing more.
  const persisted = new Totals();
  for (const t of tenants) {
    for (const [name, n] of await stored(h, keys.usages(t.id), 2)) {
      persisted.add(`period/${t.id}/${name}`, n);
    }
    for (const [name, n] of await stored(h, ["t", t.id, "usage_daily"], 2)) {
      persisted.add(`daily/${t.id}/${name}`, n);
    }
    for (const [name, n] of await stored(h, ["t", t.id, "key_usage"], 2)) {
      persisted.add(`key/${t.id}/${name}`, n);
    }
    for (const key of t.keys) {
      const last = await h.kv.get<Deno.KvU64>(keys.keyLastUsed(t.id, key.id));
      assert.equal(Number(last.value?.value), now);
    }
  }
  assert.deepEqual(persisted.sums, new Map([...expected.sums].filter(([, n]) => n > 0)));
  const traffic = await h.kv.get<Deno.KvU64>(keys.traffic("verifications", today));
  assert.equal(Number(traffic.value?.value), VERIFIES);

  // The verify cache holds the persisted counter exactly: the next call sees every unit.
  for (const t of tenants) {
    const next = await h.call("POST", "/v1/keys/verify", {
      token: h.root,
      body: { key: t.keys[0].key },
    });
    assert.equal(
      next.body.data.quota.used,
      expected.get(`period/${t.id}/verifications/${periodOf(t, today)}`) + 1,
    );
  }
});
