/**
 * The runtime configuration: GET/PATCH /v1/admin/config, its history and rollbacks, what each
 * setting changes in the live components, and a change reaching another process.
 */
import assert from "node:assert/strict";
import { type Harness, setup } from "../_harness.ts";
import { assertError, assertInvalid } from "../_assert.ts";
import { randomAlnum, ServerProcess, tempDir, within } from "../_server.ts";
import { REFRESH_MS, RuntimeConfig } from "../../domain/platform/runtime_config.ts";
import { SETTING_KEYS, SETTINGS } from "../../domain/platform/runtime_settings.ts";
import { retryDelay } from "../../domain/webhooks/schedule.ts";
import { loadConfig } from "../../config.ts";

const CONFIG = "/v1/admin/config";

async function read(h: Harness) {
  const res = await h.call("GET", CONFIG, { token: h.root });
  assert.equal(res.status, 200, res.text);
  return res;
}

/** PATCH with the version just read as If-Match. */
async function patch(h: Harness, body: Record<string, unknown>) {
  const etag = (await read(h)).headers.get("ETag")!;
  return await h.call("PATCH", CONFIG, { token: h.root, body, headers: { "If-Match": etag } });
}

Deno.test("config: every setting with its value, default, source, type and description", async () => {
  await using h = await setup();
  const res = await read(h);
  assert.equal(res.headers.get("ETag"), '"0"');
  const { version, settings } = res.body.data;
  assert.equal(version, 0);
  assert.deepEqual(Object.keys(settings).sort(), [...SETTING_KEYS].sort());
  assert.deepEqual(settings.log_retention_days, {
    value: 30,
    default: 30,
    source: "default",
    type: "integer",
    description: SETTINGS.log_retention_days.description,
    env: "LOG_RETENTION_DAYS",
  });
  assert.deepEqual(settings.rate_limit_read.value, { requests_per_second: 100, burst: 200 });
  assert.equal(settings.rate_limit_read.type, "rate");
  // The harness pins the sample rate, as its variable would.
  assert.equal(settings.request_log_sample_rate.source, "env");
  assert.equal(settings.request_log_sample_rate.value, 1);
});

Deno.test("config: PATCH needs If-Match (428), a current one (412), then applies and audits", async () => {
  await using h = await setup();
  const body = { log_retention_days: 14, session_idle_minutes: 5, rate_limit_write: "2/4" };
  const missing = await h.call("PATCH", CONFIG, { token: h.root, body });
  assertError(missing, 428, "PRECONDITION_REQUIRED");
  for (const stale of ['"7"', '"x"']) {
    const res = await h.call("PATCH", CONFIG, {
      token: h.root,
      body,
      headers: { "If-Match": stale },
    });
    assertError(res, 412, "PRECONDITION_FAILED");
  }
  assert.equal(h.runtime.version, 0);

  const res = await patch(h, body);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get("ETag"), '"1"');
  const { settings } = res.body.data;
  assert.equal(settings.log_retention_days.value, 14);
  assert.equal(settings.log_retention_days.source, "api");
  assert.deepEqual(settings.rate_limit_write.value, { requests_per_second: 2, burst: 4 });
  // This process applied it at once.
  assert.equal(h.svc.aggregator.options.retentionDays, 14);
  assert.equal(h.svc.sessions.idleMs, 5 * 60_000);

  const [event] = await h.auditFor("runtime_config");
  assert.equal(event.action, "config.updated");
  assert.deepEqual(event.changes, {
    version: { before: 0, after: 1 },
    settings: {
      before: {
        log_retention_days: 30,
        session_idle_minutes: 60,
        rate_limit_write: { requests_per_second: 20, burst: 40 },
      },
      after: {
        log_retention_days: 14,
        session_idle_minutes: 5,
        rate_limit_write: { requests_per_second: 2, burst: 4 },
      },
    },
  });

  // The version read before this change is stale now.
  const again = await h.call("PATCH", CONFIG, {
    token: h.root,
    body: { log_retention_days: 20 },
    headers: { "If-Match": '"0"' },
  });
  assertError(again, 412, "PRECONDITION_FAILED");

  // null unsets: back to the default.
  const unset = await patch(h, { log_retention_days: null });
  assert.equal(unset.body.data.settings.log_retention_days.source, "default");
  assert.equal(h.svc.aggregator.options.retentionDays, 30);
});

Deno.test("config: two PATCHes with the same If-Match: one wins, the other is 412", async () => {
  await using h = await setup();
  const headers = { "If-Match": '"0"' };
  const answers = await Promise.all([
    h.call("PATCH", CONFIG, { token: h.root, body: { backup_keep: 3 }, headers }),
    h.call("PATCH", CONFIG, { token: h.root, body: { backup_keep: 4 }, headers }),
  ]);
  assert.deepEqual(answers.map((r) => r.status).sort(), [200, 412]);
  const won = answers.find((r) => r.status === 200)!;
  assert.equal(won.body.data.version, 1);
  assert.equal(h.svc.backups.keep, won.body.data.settings.backup_keep.value);
});

Deno.test("config: unknown keys and bad values are 400 and change nothing", async () => {
  await using h = await setup();
  await read(h); // the token's first use is written once
  const before = await h.dump();
  assertInvalid(await patch(h, { log_retention_days: 0 }), "json.log_retention_days");
  assertInvalid(await patch(h, { log_retention_days: "14" }), "json.log_retention_days");
  assertInvalid(await patch(h, { request_log_sample_rate: 1.5 }), "json.request_log_sample_rate");
  assertInvalid(await patch(h, { rate_limit_read: "fast" }), "json.rate_limit_read");
  assertInvalid(await patch(h, { alert_rules: { nope: { threshold: 1 } } }), "json.alert_rules");
  assertInvalid(await patch(h, { no_such_setting: 1 }));
  assert.equal(await h.dump(), before);
});

Deno.test("config: a setting pinned by its environment variable is 409, naming it", async () => {
  await using h = await setup({ env: { LOG_RETENTION_DAYS: "45" } });
  const { settings } = (await read(h)).body.data;
  assert.deepEqual(
    [settings.log_retention_days.value, settings.log_retention_days.source],
    [45, "env"],
  );
  const res = await patch(h, { log_retention_days: 10, backup_keep: 3 });
  assertError(res, 409, "CONFLICT");
  assert.match(res.body.error.message, /log_retention_days \(LOG_RETENTION_DAYS\)/);
  assert.equal(h.runtime.version, 0, "nothing of the request was applied");
  assert.equal(h.svc.aggregator.options.retentionDays, 45);
  assert.equal((await patch(h, { backup_keep: 3 })).status, 200);
});

Deno.test("config: config:read and config:write only; none without credentials", async () => {
  await using h = await setup();
  assertError(await h.call("GET", CONFIG), 401, "UNAUTHORIZED");
  assertError(await h.call("PATCH", CONFIG, { body: {} }), 401, "UNAUTHORIZED");
  // Admins hold neither (platform configuration is the super admin's).
  const admin = await h.user("admin");
  assertError(await h.call("GET", CONFIG, { token: admin.token }), 403, "FORBIDDEN");
  assertError(
    await h.call("GET", `${CONFIG}/history`, { token: admin.token }),
    403,
    "FORBIDDEN",
  );
  const reader = await h.serviceToken(["config:read"]);
  assert.equal((await h.call("GET", CONFIG, { token: reader.token })).status, 200);
  const denied = await h.call("PATCH", CONFIG, {
    token: reader.token,
    body: { backup_keep: 3 },
    headers: { "If-Match": '"0"' },
  });
  assertError(denied, 403, "FORBIDDEN");
  const rollback = await h.call("POST", `${CONFIG}/rollback`, {
    token: reader.token,
    body: { version: 0 },
  });
  assertError(rollback, 403, "FORBIDDEN");
});

Deno.test("config: history newest first with its total; rollback makes a new version", async () => {
  await using h = await setup();
  await patch(h, { log_retention_days: 14 });
  h.advance(1_000);
  await patch(h, { log_retention_days: 7, backup_keep: 3 });
  h.advance(1_000);

  const history = await h.call("GET", `${CONFIG}/history?limit=1&offset=1`, { token: h.root });
  assert.equal(history.status, 200, history.text);
  assert.equal(history.body.pagination.total, 2);
  assert.equal(history.body.data.length, 1);
  assert.equal(history.body.data[0].version, 1);
  assert.equal(history.body.data[0].actor_type, "service_token");
  assert.deepEqual(history.body.data[0].values, { log_retention_days: 14 });
  assert.deepEqual(history.body.data[0].changes, {
    log_retention_days: { before: 30, after: 14 },
  });

  const back = await h.call("POST", `${CONFIG}/rollback`, {
    token: h.root,
    body: { version: 1 },
  });
  assert.equal(back.status, 200, back.text);
  assert.equal(back.body.data.version, 3);
  assert.equal(back.body.data.settings.log_retention_days.value, 14);
  assert.equal(back.body.data.settings.backup_keep.source, "default");
  assert.equal(h.svc.backups.keep, 7);
  assert.equal(h.svc.aggregator.options.retentionDays, 14);
  const [event] = await h.auditFor("runtime_config");
  assert.equal(event.action, "config.rolled_back");

  const newest = await h.call("GET", `${CONFIG}/history`, { token: h.root });
  assert.deepEqual(newest.body.data.map((v: { version: number }) => v.version), [3, 2, 1]);
  assert.equal(newest.body.data[0].rolled_back_to, 1);
  assert.deepEqual(newest.body.data[0].changes, {
    log_retention_days: { before: 7, after: 14 },
    backup_keep: { before: 3, after: 7 },
  });

  // Version 0: nothing set through the API.
  const reset = await h.call("POST", `${CONFIG}/rollback`, {
    token: h.root,
    body: { version: 0 },
  });
  assert.equal(reset.body.data.settings.log_retention_days.source, "default");
  const missing = await h.call("POST", `${CONFIG}/rollback`, {
    token: h.root,
    body: { version: 99 },
  });
  assertError(missing, 404, "NOT_FOUND");
  assertInvalid(
    await h.call("POST", `${CONFIG}/rollback`, { token: h.root, body: { version: -1 } }),
    "json.version",
  );
});

Deno.test("config: each setting reaches the component that uses it", async () => {
  await using h = await setup({ env: { STEWARD_RATE_LIMITS: "on" } });
  const res = await patch(h, {
    rate_limit_read: "2/3",
    rate_limit_roles: { support: { read: { requests_per_second: 1, burst: 2 } } },
    usage_flush_interval_ms: 250,
    verify_cache_ms: 1_000,
    alert_rules: { dead_jobs: { threshold: 5 } },
    session_max_hours: 2,
    password_min_score: 1,
    webhook_max_attempts: 3,
    webhook_max_retry_delay_seconds: 60,
    backup_hour_utc: 4,
  });
  assert.equal(res.status, 200, res.text);
  const tenants = await h.call("GET", "/v1/tenants", { token: h.root });
  assert.equal(tenants.headers.get("RateLimit-Policy"), '"read";q=3;w=2');
  assert.equal(h.svc.aggregator.status().flush_interval_ms, 250);
  assert.deepEqual(h.svc.alertRules, { dead_jobs: { threshold: 5 } });
  assert.equal(h.svc.sessions.maxMs, 2 * 3_600_000);
  assert.equal(h.svc.passwords.minScore, 1);
  assert.equal(h.svc.backups.hour, 4);
  // Retries: the third attempt is the last; waits are cut to a minute (before jitter).
  const bounds = h.svc.webhookRetry;
  assert.equal(retryDelay(2, null, () => 0.5, bounds), 60_000);
  assert.equal(retryDelay(1, null, () => 0.5, bounds), 5_000);
  assert.equal(retryDelay(3, null, () => 0.5, bounds), null);
  const rules = await h.call("GET", "/v1/admin/system/alert-rules", { token: h.root });
  const dead = rules.body.data.find((r: { name: string }) => r.name === "dead_jobs");
  assert.equal(dead.threshold, 5);
});

Deno.test("config: password_min_score decides which new passwords pass", async () => {
  await using h = await setup();
  const post = (email: string) =>
    h.call("POST", "/v1/users", {
      token: h.root,
      body: { email, name: "Grace", password: "qwertyuiop12" },
    });
  assertInvalid(await post("a@example.com"), "password");
  assert.equal((await patch(h, { password_min_score: 0 })).status, 200);
  assert.equal((await post("b@example.com")).status, 201);
});

Deno.test("config: a variable reads with the setting's schema; JSON or text", () => {
  const c = loadConfig({
    STEWARD_RATE_LIMIT_READ: "5/10",
    STEWARD_RATE_LIMIT_ROLES: '{"support":{"read":{"requests_per_second":1,"burst":2}}}',
    WEBHOOK_MAX_ATTEMPTS: "4",
  });
  assert.deepEqual(c.STEWARD_RATE_LIMIT_READ, { requests_per_second: 5, burst: 10 });
  assert.deepEqual(c.STEWARD_RATE_LIMIT_ROLES, {
    support: { read: { requests_per_second: 1, burst: 2 } },
  });
  assert.equal(c.WEBHOOK_MAX_ATTEMPTS, 4);
  assert.equal(c.STEWARD_PASSWORD_MIN_SCORE, 3);
  assert.throws(() => loadConfig({ STEWARD_BACKUP_HOUR: "24" }), /STEWARD_BACKUP_HOUR/);
});

Deno.test("config: another RuntimeConfig on the same store follows a change by its watch", async () => {
  await using h = await setup();
  // A second process's view: its own sessions, on the same store.
  const other = { ...h.svc, sessions: { ...h.svc.sessions } };
  const runtime = new RuntimeConfig(other, {});
  await runtime.refresh();
  runtime.start();
  try {
    assert.equal((await patch(h, { session_idle_minutes: 7 })).status, 200);
    await within(
      REFRESH_MS / 1000,
      "the watch to deliver the change",
      (async () => {
        while (runtime.version !== 1) await new Promise((r) => setTimeout(r, 10));
      })(),
    );
    assert.equal(other.sessions.idleMs, 7 * 60_000);
  } finally {
    await runtime.stop();
  }
});

Deno.test({
  name: "config: a change made through one process reaches another within REFRESH_MS",
  async fn() {
    await using dir = await tempDir();
    const token = `stw_${randomAlnum(40)}`;
    const env = {
      STEWARD_KV_PATH: dir.kvPath,
      STEWARD_BOOTSTRAP_TOKEN: token,
      STEWARD_RATE_LIMITS: "on",
    };
    await using a = await ServerProcess.start({ env });
    await using b = await ServerProcess.start({ env });
    const policy = async () =>
      (await b.call("GET", "/v1/tenants", { token })).headers.get("RateLimit-Policy");
    assert.equal(await policy(), '"read";q=200;w=2');

    const read = await a.call("GET", CONFIG, { token });
    const res = await fetch(`${a.url}${CONFIG}`, {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/json",
        "If-Match": read.headers.get("ETag")!,
      },
      body: JSON.stringify({ rate_limit_read: "50/60" }),
    });
    assert.equal(res.status, 200, await res.text());
    // The documented bound (the re-read), with room for a loaded machine.
    await within(
      REFRESH_MS / 1000 + 5,
      "process B to apply the change",
      (async () => {
        while (await policy() !== '"read";q=60;w=2') await new Promise((r) => setTimeout(r, 50));
      })(),
    );
    const seen = await b.call("GET", CONFIG, { token });
    assert.equal(seen.body.data.version, 1);
    assert.equal(seen.body.data.settings.rate_limit_read.source, "api");
  },
});
