/**
 * The TypeScript client (clients/typescript) against a real Steward process: creating and paging
 * through 250 tenants, a POST replayed with its idempotency key, 429s retried within their bound
 * (Steward's own rate limits, and a fetch that answers 429 or fails a given number of times before
 * passing the request on), and errors read into `StewardError`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createSteward,
  type FetchLike,
  type StewardClient,
  StewardError,
  unwrap,
} from "../../clients/typescript/mod.ts";
import { randomAlnum, ServerProcess, WAIT_SECONDS, within } from "../_server.ts";

/** What a fetch saw of each request the client sent. */
interface Sent {
  method: string;
  path: string;
  idempotencyKey: string | null;
}

/**
 * A fetch that records every request and, while `plan` has entries, meets the next request whose
 * method matches with the planned fault: a 429 or 503 in Steward's envelope, a network error
 * before Steward sees the request, or ("lost") one after Steward answered it. Every request it
 * passes on is bounded by WAIT_SECONDS.
 */
function recordingFetch(plan: { method: string; fault: 429 | 503 | "network" | "lost" }[] = []) {
  const sent: Sent[] = [];
  const fetcher: FetchLike = async (request) => {
    const url = new URL(request.url);
    sent.push({
      method: request.method,
      path: url.pathname,
      idempotencyKey: request.headers.get("Idempotency-Key"),
    });
    const i = plan.findIndex((p) => p.method === request.method);
    if (i >= 0) {
      const [{ fault }] = plan.splice(i, 1);
      if (fault === "network") throw new TypeError("connection refused (planned)");
      if (fault === "lost") {
        await (await pass(request)).body?.cancel();
        throw new TypeError("connection reset after the request was sent (planned)");
      }
      const code = fault === 429 ? "RATE_LIMITED" : "UNAVAILABLE";
      return Response.json(
        { success: false, error: { code, message: "planned", request_id: "req_planned" } },
        { status: fault, headers: fault === 429 ? { "Retry-After": "0" } : {} },
      );
    }
    return await pass(request);
  };
  return { sent, fetch: fetcher };
}

/** The slugs of the tenants whose name or slug starts with `prefix`, from every page. */
async function slugsMatching(steward: StewardClient, prefix: string): Promise<string[]> {
  const slugs: string[] = [];
  for await (const t of steward.paginate("/v1/tenants", { query: { search: prefix } })) {
    slugs.push(t.slug);
  }
  return slugs;
}

function pass(request: Request): Promise<Response> {
  return fetch(request, { signal: AbortSignal.timeout(WAIT_SECONDS * 1000) });
}

async function startSteward(dir: string) {
  const token = `stw_${randomAlnum(40)}`;
  const server = await ServerProcess.start({
    env: {
      STEWARD_KV_PATH: join(dir, "steward.kv"),
      STEWARD_BOOTSTRAP_TOKEN: token,
      STEWARD_MASTER_KEY: btoa(
        String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))),
      ),
      // On, with roomy defaults: only the token made to be limited meets a 429.
      STEWARD_RATE_LIMITS: "on",
      STEWARD_RATE_LIMIT_READ: "100000/100000",
      STEWARD_RATE_LIMIT_WRITE: "100000/100000",
    },
  });
  return { server, token };
}

Deno.test("typescript client against a real Steward", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "steward_client_e2e_" });
  try {
    const { server, token } = await startSteward(dir);
    await using _server = server;

    await t.step("creates 250 tenants and pages through every one of them", async () => {
      const recorder = recordingFetch();
      const steward = createSteward({ url: server.url, token, fetch: recorder.fetch });
      const slugs = Array.from({ length: 250 }, (_, i) => `paged-${String(i).padStart(3, "0")}`);
      // Ten at a time: quick, and each call still gets its own idempotency key.
      for (let i = 0; i < slugs.length; i += 10) {
        await within(
          30,
          "creating tenants",
          Promise.all(
            slugs.slice(i, i + 10).map((slug) =>
              unwrap(steward.POST("/v1/tenants", { body: { name: `Tenant ${slug}`, slug } }))
            ),
          ),
        );
      }
      const posts = recorder.sent.filter((s) => s.method === "POST");
      assert.equal(posts.length, 250);
      assert.ok(posts.every((s) => s.idempotencyKey !== null));
      assert.equal(new Set(posts.map((s) => s.idempotencyKey)).size, 250);

      const seen = new Map<string, number>();
      for await (const tenant of steward.paginate("/v1/tenants", { query: { search: "paged-" } })) {
        seen.set(tenant.slug, (seen.get(tenant.slug) ?? 0) + 1);
      }
      assert.deepEqual([...seen.keys()].sort(), slugs);
      assert.ok([...seen.values()].every((n) => n === 1), "a tenant was yielded twice");
      const pages = recorder.sent.filter((s) => s.method === "GET" && s.path === "/v1/tenants");
      assert.equal(pages.length, 3, "100 + 100 + 50 items: three pages");

      // A smaller page size: more pages, the same items.
      let count = 0;
      for await (
        const _ of steward.paginate("/v1/tenants", { query: { search: "paged-", limit: 30 } })
      ) {
        count++;
      }
      assert.equal(count, 250);
    });

    await t.step("replays a POST with the same idempotency key: one tenant", async () => {
      const steward = createSteward({ url: server.url, token, fetch: recordingFetch().fetch });
      const key = crypto.randomUUID();
      const body = { name: "Replayed", slug: "replayed" };
      const first = await steward.POST("/v1/tenants", {
        body,
        headers: { "Idempotency-Key": key },
      });
      const second = await steward.POST("/v1/tenants", {
        body,
        headers: { "Idempotency-Key": key },
      });
      assert.equal(first.response.status, 201);
      assert.equal(second.response.status, 201);
      assert.equal(first.response.headers.get("Idempotent-Replayed"), null);
      assert.equal(second.response.headers.get("Idempotent-Replayed"), "true");
      assert.deepEqual(second.data, first.data);
      assert.deepEqual(await slugsMatching(steward, "replayed"), ["replayed"]);
    });

    await t.step(
      "a retried POST keeps its key: an answer lost in transit is replayed",
      async () => {
        // A 429, then Steward creates the tenant but the answer never arrives, then the retry.
        const recorder = recordingFetch([
          { method: "POST", fault: 429 },
          { method: "POST", fault: "lost" },
        ]);
        const steward = createSteward({
          url: server.url,
          token,
          fetch: recorder.fetch,
          retries: { baseDelayMs: 1 },
        });
        const answer = await steward.POST("/v1/tenants", {
          body: { name: "Retried", slug: "retried" },
        });
        assert.equal(answer.data?.data.slug, "retried");
        assert.equal(answer.response.headers.get("Idempotent-Replayed"), "true");
        assert.equal(recorder.sent.length, 3);
        assert.ok(recorder.sent[0].idempotencyKey);
        assert.equal(new Set(recorder.sent.map((s) => s.idempotencyKey)).size, 1);
        assert.deepEqual(await slugsMatching(steward, "retried"), ["retried"]);
      },
    );

    await t.step("Steward's own 429 is retried after its Retry-After, then passes", async () => {
      const limited = await server.call("POST", "/v1/admin/tokens", {
        token,
        body: {
          name: "limited",
          permissions: ["tenants:read", "tenants:create"],
          // One write, then one every four seconds: the next write is refused with Retry-After.
          rate_limit: { write: { requests_per_second: 0.25, burst: 1 } },
        },
      });
      assert.equal(limited.status, 201, limited.text);
      const recorder = recordingFetch();
      const statuses: number[] = [];
      const steward = createSteward({
        url: server.url,
        token: limited.body.data.token,
        fetch: async (request) => {
          const response = await recorder.fetch(request);
          statuses.push(response.status);
          return response;
        },
      });
      await unwrap(steward.POST("/v1/tenants", { body: { name: "Limited 1", slug: "limited-1" } }));
      await unwrap(steward.POST("/v1/tenants", { body: { name: "Limited 2", slug: "limited-2" } }));
      // The second call met the limit, waited, and passed; its retries kept its key.
      assert.equal(statuses[0], 201);
      assert.equal(statuses[1], 429);
      assert.equal(statuses.at(-1), 201);
      assert.ok(statuses.length <= 4, `within the default bound of 3 attempts: ${statuses}`);
      const second = recorder.sent.slice(1);
      assert.equal(new Set(second.map((s) => s.idempotencyKey)).size, 1);

      // A Retry-After beyond the client's longest wait: no wait, the 429 is thrown at once.
      const impatient = createSteward({
        url: server.url,
        token: limited.body.data.token,
        fetch: recorder.fetch,
        retries: { maxWaitMs: 100 },
      });
      const before = recorder.sent.length;
      const err = await impatient.POST("/v1/tenants", {
        body: { name: "Limited 3", slug: "limited-3" },
      }).then(() => null, (e) => e);
      assert.ok(err instanceof StewardError, String(err));
      assert.equal(err.status, 429);
      assert.equal(err.code, "RATE_LIMITED");
      assert.match(err.request_id ?? "", /^req_/);
      assert.equal(recorder.sent.length - before, 1);
    });

    await t.step("429s stop after the attempt bound with the last 429 thrown", async () => {
      const recorder = recordingFetch(
        Array.from({ length: 10 }, () => ({ method: "POST", fault: 429 as const })),
      );
      const steward = createSteward({ url: server.url, token, fetch: recorder.fetch });
      const err = await steward.POST("/v1/tenants", {
        body: { name: "Never", slug: "never-made" },
      }).then(() => null, (e) => e);
      assert.ok(err instanceof StewardError, String(err));
      assert.equal(err.status, 429);
      assert.equal(err.code, "RATE_LIMITED");
      assert.equal(recorder.sent.length, 3, "the default bound: three attempts");

      const once = recordingFetch(
        Array.from({ length: 10 }, () => ({ method: "POST", fault: 429 as const })),
      );
      const bounded = createSteward({
        url: server.url,
        token,
        fetch: once.fetch,
        retries: { attempts: 5 },
      });
      await assert.rejects(
        bounded.POST("/v1/tenants", { body: { name: "Never", slug: "never-made" } }),
        StewardError,
      );
      assert.equal(once.sent.length, 5);

      const off = recordingFetch([{ method: "POST", fault: 429 }]);
      const noRetries = createSteward({ url: server.url, token, fetch: off.fetch, retries: false });
      await assert.rejects(
        noRetries.POST("/v1/tenants", { body: { name: "Never", slug: "never-made" } }),
        StewardError,
      );
      assert.equal(off.sent.length, 1);
    });

    await t.step("a 5xx or network error is retried only when the call may repeat", async () => {
      const reads = recordingFetch([{ method: "GET", fault: 503 }, {
        method: "GET",
        fault: "network",
      }]);
      const steward = createSteward({
        url: server.url,
        token,
        fetch: reads.fetch,
        retries: { baseDelayMs: 1 },
      });
      const tenant = await unwrap(
        steward.GET("/v1/tenants/{tenant}", { params: { path: { tenant: "replayed" } } }),
      );
      assert.equal(tenant.slug, "replayed");
      assert.equal(reads.sent.length, 3);

      // No idempotency key: a POST that failed with a 503 may have happened, so it is not sent again.
      const writes = recordingFetch([{ method: "POST", fault: 503 }]);
      const unkeyed = createSteward({
        url: server.url,
        token,
        fetch: writes.fetch,
        idempotency: false,
      });
      const err = await unkeyed.POST("/v1/tenants", { body: { name: "Once", slug: "once" } })
        .then(() => null, (e) => e);
      assert.ok(err instanceof StewardError);
      assert.equal(err.status, 503);
      assert.equal(err.code, "UNAVAILABLE");
      assert.equal(writes.sent.length, 1);
      assert.equal(writes.sent[0].idempotencyKey, null);
    });

    await t.step("errors carry Steward's code, message, details and request id", async () => {
      const steward = createSteward({ url: server.url, token, fetch: recordingFetch().fetch });
      const invalid = await steward.POST("/v1/tenants", { body: { name: "", slug: "Not A Slug!" } })
        .then(() => null, (e) => e);
      assert.ok(invalid instanceof StewardError, String(invalid));
      assert.equal(invalid.name, "StewardError");
      assert.equal(invalid.status, 400);
      assert.equal(invalid.code, "BAD_REQUEST");
      assert.ok(invalid.message.length > 0);
      assert.ok(
        Array.isArray(invalid.details) && invalid.details.length > 0,
        String(invalid.details),
      );
      assert.match(invalid.request_id ?? "", /^req_/);

      const missing = await steward.GET("/v1/tenants/{tenant}", {
        params: { path: { tenant: "no-such-tenant" } },
      }).then(() => null, (e) => e);
      assert.ok(missing instanceof StewardError, String(missing));
      assert.equal(missing.status, 404);
      assert.equal(missing.code, "NOT_FOUND");
      assert.ok(missing.message.length > 0);
      assert.match(missing.request_id ?? "", /^req_/);
    });

    const status = await server.stop();
    assert.equal(status.code, 0, server.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
