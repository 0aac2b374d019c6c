/** Answers per minute (usage/answer_rates.ts): tallied per process, summed across processes, pruned. */
import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { keys } from "../../kv/keys.ts";
import { SumBuffer } from "../../kv/sum_buffer.ts";
import { Aggregator } from "../../domain/usage/aggregator.ts";
import {
  ANSWER_RATE_RETENTION_MS,
  AnswerTally,
  MINUTE_MS,
  recentAnswers,
} from "../../domain/usage/answer_rates.ts";
import { MAINTENANCE_TASKS, runMaintenance } from "../../domain/platform/maintenance.ts";

const NOON = Date.parse("2026-03-01T12:00:00.000Z");

Deno.test("AnswerTally: answers by minute and status class; take() starts over", () => {
  const t = new AnswerTally();
  for (const status of [200, 201, 304, 400, 401, 403, 429, 500, 503]) t.add(NOON + 10, status);
  t.add(NOON + MINUTE_MS, 401);
  t.add(NOON + 59_999, 200); // back in the first minute (clocks of concurrent requests)
  assert.equal(t.size, 2);
  assert.deepEqual(t.take(), [
    [NOON, { answers: 10, server_errors: 2, rate_limited: 1, unauthorized: 1 }],
    [NOON + MINUTE_MS, { answers: 1, server_errors: 0, rate_limited: 0, unauthorized: 1 }],
  ]);
  assert.equal(t.size, 0);
  t.add(NOON + 20, 500);
  assert.deepEqual(t.take(), [
    [NOON, { answers: 1, server_errors: 1, rate_limited: 0, unauthorized: 0 }],
  ]);
});

Deno.test("answer rates: two processes' flushes add up in one minute's record", async () => {
  await using kv = await Deno.openKv(":memory:");
  let now = NOON + 5_000;
  const process = () =>
    new Aggregator(new SumBuffer(kv, { flushIntervalMs: 1_000, maxEntries: 1_000 }), kv, {
      enabled: true,
      flushIntervalMs: 1_000,
      flushMaxEntries: 1_000,
      sampleRate: 0,
      retentionDays: 30,
      now: () => now,
    });
  const [a, b] = [process(), process()];
  const count = (agg: Aggregator, status: number, n: number) => {
    for (let i = 0; i < n; i++) agg.count({ status, bytes_in: 0, bytes_out: 0 });
  };
  count(a, 200, 7);
  count(a, 500, 2);
  count(b, 429, 3);
  count(b, 401, 4);
  await a.flush();
  count(a, 500, 1); // after a's first flush, in the same minute
  await Promise.all([a.flush(), b.flush()]);
  now += MINUTE_MS;
  assert.deepEqual(await recentAnswers(kv, now, 5), {
    answers: 17,
    server_errors: 3,
    rate_limited: 3,
    unauthorized: 4,
  });
  // The minute still filling is not read.
  assert.deepEqual(await recentAnswers(kv, now - MINUTE_MS, 5), {
    answers: 0,
    server_errors: 0,
    rate_limited: 0,
    unauthorized: 0,
  });
  const stored = await kv.get<Deno.KvU64>(keys.answerRate(NOON, "answers"));
  assert.equal(stored.value?.value, 17n);
});

Deno.test("answer rates: every answer counts, 401s and verify's fast path included", async () => {
  await using h = await setup();
  const t = await h.tenant("acme");
  const res = await h.call("POST", "/v1/tenants/acme/api-keys", {
    token: h.root,
    body: { name: "k", environment: "live" },
  });
  assert.equal(res.status, 201, res.text);
  await h.svc.aggregator.flush();
  const before = await recentAnswers(h.kv, h.clock.now + MINUTE_MS, 1);
  for (let i = 0; i < 3; i++) {
    const v = await h.call("POST", "/v1/keys/verify", {
      token: h.root,
      body: { key: res.body.data.key },
    });
    assert.equal(v.body.data.code, "VALID", v.text);
  }
  for (let i = 0; i < 2; i++) {
    assert.equal((await h.call("GET", `/v1/tenants/${t.id}`)).status, 401);
  }
  await h.svc.aggregator.flush();
  const after = await recentAnswers(h.kv, h.clock.now + MINUTE_MS, 1);
  assert.equal(after.answers - before.answers, 5);
  assert.equal(after.unauthorized - before.unauthorized, 2);
});

Deno.test("prune-answer-rates: minutes older than a day are deleted", async () => {
  await using h = await setup();
  const old = h.clock.now - ANSWER_RATE_RETENTION_MS - MINUTE_MS;
  const recent = h.clock.now - ANSWER_RATE_RETENTION_MS + MINUTE_MS;
  await h.kv.atomic()
    .sum(keys.answerRate(old, "answers"), 5n)
    .sum(keys.answerRate(old, "server_errors"), 1n)
    .sum(keys.answerRate(recent, "answers"), 3n)
    .commit();
  const task = MAINTENANCE_TASKS.find((t) => t.name === "prune-answer-rates")!;
  const run = await runMaintenance(h.svc, task, "worker");
  assert.deepEqual(run?.result, { answer_rate_keys_deleted: 2 });
  const left = await Array.fromAsync(h.kv.list({ prefix: keys.answerRates() }));
  assert.deepEqual(left.map((e) => e.key), [keys.answerRate(recent, "answers")]);
});
