/**
 * End to end: main.ts in its own process on a KV file, driven over real HTTP.
 *
 * Every wait is bounded (a clear failure instead of a hung run) and nothing asserts on
 * wall-clock time. Each child process is killed and its output drained when a test ends.
 */
import assert from "node:assert/strict";
import { keys } from "../../kv/keys.ts";
import { existsSync } from "node:fs";
import {
  LISTENING,
  parseJson,
  randomAlnum,
  type Reply,
  ServerProcess,
  tempDir,
  WAIT_SECONDS,
  within,
} from "../_server.ts";

const ANY_SERVICE_TOKEN = /stw_[A-Za-z0-9]+/g;

const enc = new TextEncoder();
const dec = new TextDecoder();

const HEAD_END = enc.encode("\r\n\r\n");

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * One HTTP/1.1 request on its own TCP connection, sent in a single write with
 * `Expect: 100-continue`. The server answers `100 Continue` when the handler starts reading
 * the body, so once `continued()` resolves the request is provably in flight: its handler runs
 * and its whole body is already buffered by the server.
 */
class InFlight {
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);

  private constructor(readonly conn: Deno.TcpConn) {}

  static async send(
    port: number,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: unknown,
  ): Promise<InFlight> {
    const payload = enc.encode(JSON.stringify(body));
    const head = [
      `${method} ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Content-Type: application/json",
      `Content-Length: ${payload.length}`,
      "Expect: 100-continue",
      "Connection: close",
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ].join("\r\n") + "\r\n\r\n";
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const request = new Uint8Array([...enc.encode(head), ...payload]);
    try {
      for (let sent = 0; sent < request.length;) sent += await conn.write(request.subarray(sent));
    } catch (err) {
      conn.close();
      throw err;
    }
    return new InFlight(conn);
  }

  async #readMore(): Promise<boolean> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }

  /** Resolves on the server's `100 Continue`. */
  continued(): Promise<void> {
    return within(
      WAIT_SECONDS,
      "100 Continue",
      (async () => {
        let end;
        while ((end = indexOfBytes(this.#buf, HEAD_END)) < 0) {
          if (!(await this.#readMore())) break;
        }
        const head = dec.decode(this.#buf.subarray(0, Math.max(end, 0)));
        if (end < 0 || !/^HTTP\/1\.1 100 /.test(head)) {
          throw new Error(`expected 100 Continue, got: ${dec.decode(this.#buf)}`);
        }
        this.#buf = this.#buf.slice(end + HEAD_END.length);
      })(),
    );
  }

  /** The final response, read to the end of the connection (the request said close). */
  response(): Promise<Reply> {
    return within(
      WAIT_SECONDS,
      "the response",
      (async () => {
        while (await this.#readMore());
        let bytes = this.#buf;
        let end = indexOfBytes(bytes, HEAD_END);
        // Skip any interim (1xx) answers.
        while (end >= 0 && /^HTTP\/1\.1 1\d\d /.test(dec.decode(bytes.subarray(0, end)))) {
          bytes = bytes.subarray(end + HEAD_END.length);
          end = indexOfBytes(bytes, HEAD_END);
        }
        if (end < 0) throw new Error(`no complete response: ${JSON.stringify(dec.decode(bytes))}`);
        const [statusLine, ...lines] = dec.decode(bytes.subarray(0, end)).split("\r\n");
        const headers = new Headers();
        for (const line of lines) {
          const colon = line.indexOf(":");
          headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
        }
        let body = bytes.subarray(end + HEAD_END.length);
        if (headers.get("transfer-encoding")?.includes("chunked")) body = dechunk(body);
        else if (headers.has("content-length")) {
          body = body.subarray(0, Number(headers.get("content-length")));
        }
        const text = dec.decode(body);
        return { status: Number(statusLine.split(" ")[1]), headers, body: parseJson(text), text };
      })(),
    );
  }

  close() {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

function dechunk(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const parts: number[] = [];
  let at = 0;
  while (at < bytes.length) {
    const lineEnd = indexOfBytes(bytes, enc.encode("\r\n"), at);
    const size = parseInt(dec.decode(bytes.subarray(at, lineEnd)), 16);
    if (!size) break;
    parts.push(...bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return new Uint8Array(parts);
}

Deno.test("e2e: first start prints a working bootstrap token once; a restart prints none", async () => {
  await using dir = await tempDir();
  let token: string;
  {
    await using server = await ServerProcess.start({ env: { STEWARD_KV_PATH: dir.kvPath } });
    const printed = server.stdout.match(ANY_SERVICE_TOKEN) ?? [];
    assert.equal(printed.length, 1, `one stw_ token expected on first start:\n${server.stdout}`);
    token = printed[0];
    const me = await server.call("GET", "/v1/auth/me", { token });
    assert.equal(me.status, 200, me.text);
    assert.match(me.body.data.id, /^tok_/);
    const status = await server.stop();
    assert.equal(status.code, 0, server.stderr);
    assert.equal((server.stdout.match(ANY_SERVICE_TOKEN) ?? []).length, 1, server.stdout);
    assert.doesNotMatch(server.stderr, ANY_SERVICE_TOKEN);
  }
  {
    await using server = await ServerProcess.start({ env: { STEWARD_KV_PATH: dir.kvPath } });
    const me = await server.call("GET", "/v1/auth/me", { token });
    assert.equal(me.status, 200, "the first start's token still works after a restart");
    const status = await server.stop();
    assert.equal(status.code, 0, server.stderr);
    assert.doesNotMatch(server.stdout, ANY_SERVICE_TOKEN);
    assert.doesNotMatch(server.stderr, ANY_SERVICE_TOKEN);
  }
});

Deno.test("e2e: STEWARD_BOOTSTRAP_TOKEN on a fresh store is registered as is, never printed", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  await using server = await ServerProcess.start({
    env: { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: token },
  });
  const me = await server.call("GET", "/v1/auth/me", { token });
  assert.equal(me.status, 200, me.text);
  const registered = server.stdout.match(/registered STEWARD_BOOTSTRAP_TOKEN as .*(tok_\w+)/);
  assert.ok(registered, server.stdout);
  assert.equal(me.body.data.id, registered[1]);
  const other = await server.call("GET", "/v1/auth/me", { token: `stw_${randomAlnum(40)}` });
  assert.equal(other.status, 401);
  const status = await server.stop();
  assert.equal(status.code, 0, server.stderr);
  for (const output of [server.stdout, server.stderr]) {
    assert.ok(!output.includes(token.slice(4)), "the configured token must not be printed");
    assert.doesNotMatch(output, ANY_SERVICE_TOKEN);
  }
});

Deno.test("e2e: SIGTERM lets in-flight requests finish, exits 0, and the data survives", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  const auth = { Authorization: `Bearer ${token}` };
  const before = {} as Record<string, string>;
  {
    await using server = await ServerProcess.start({
      env: { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: token },
    });
    for (const slug of ["before-1", "before-2"]) {
      const created = await server.call("POST", "/v1/tenants", {
        token,
        body: { name: `Tenant ${slug}`, slug },
      });
      assert.equal(created.status, 201, created.text);
      before[slug] = created.body.data.id;
    }

    const inFlight: InFlight[] = [];
    try {
      // A login (scrypt: about a second of work, so it surely outlasts the SIGTERM) and two
      // tenant creations.
      inFlight.push(
        await InFlight.send(server.port, "POST", "/v1/auth/login", {}, {
          email: "nobody@example.com",
          password: "not the password at all",
        }),
      );
      for (const n of [1, 2]) {
        inFlight.push(
          await InFlight.send(server.port, "POST", "/v1/tenants", auth, {
            name: `In flight ${n}`,
            slug: `in-flight-${n}`,
          }),
        );
      }
      for (const request of inFlight) await request.continued();

      server.child.kill("SIGTERM");
      await server.waitForStdout(/SIGTERM received, draining/, "the draining line");

      const [login, tenant1, tenant2] = await Promise.all(inFlight.map((r) => r.response()));
      assert.equal(login.status, 401, login.text);
      assert.equal(login.body.error.code, "UNAUTHORIZED");
      for (const [reply, slug] of [[tenant1, "in-flight-1"], [tenant2, "in-flight-2"]] as const) {
        assert.equal(reply.status, 201, reply.text);
        assert.equal(reply.body.data.slug, slug);
        before[slug] = reply.body.data.id;
      }
    } finally {
      for (const request of inFlight) request.close();
    }

    const status = await server.exited();
    assert.equal(status.code, 0, `exit after SIGTERM: ${status.code}\n${server.stderr}`);
    assert.equal(status.signal, null);
  }
  {
    await using server = await ServerProcess.start({ env: { STEWARD_KV_PATH: dir.kvPath } });
    assert.doesNotMatch(server.stdout, ANY_SERVICE_TOKEN, "a restart generates no token");
    for (const [slug, id] of Object.entries(before)) {
      const read = await server.call("GET", `/v1/tenants/${id}`, { token });
      assert.equal(read.status, 200, `${slug} after restart: ${read.text}`);
      assert.equal(read.body.data.slug, slug);
    }
    assert.equal((await server.stop()).code, 0, server.stderr);
  }
});

Deno.test("e2e: SIGTERM writes the counters still in memory (requests, verifications) before exit", async () => {
  await using dir = await tempDir();
  const token = `stw_${randomAlnum(40)}`;
  let tokenId = "";
  let tenantId = "";
  {
    await using server = await ServerProcess.start({
      env: { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: token },
    });
    tokenId = (await server.call("GET", "/v1/auth/me", { token })).body.data.id;
    const tenant = await server.call("POST", "/v1/tenants", {
      token,
      body: { name: "Counted", slug: "counted" },
    });
    tenantId = tenant.body.data.id;
    const key = await server.call("POST", "/v1/tenants/counted/api-keys", {
      token,
      body: { name: "k", environment: "live" },
    });
    for (let i = 0; i < 20; i++) {
      const res = await server.call("POST", "/v1/keys/verify", {
        token,
        body: { key: key.body.data.key },
      });
      assert.equal(res.body.data.code, "VALID", res.text);
    }
    // A bad call too, so the error path has had its chance to log something.
    await server.call("POST", "/v1/keys/verify", {
      token,
      body: { key: key.body.data.key, cost: -1 },
    });
    const status = await server.stop();
    assert.equal(status.code, 0, server.stderr);
    for (const output of [server.stdout, server.stderr]) {
      assert.ok(!output.includes(key.body.data.key), "an API key in the logs");
      assert.ok(!output.includes(token.slice(4)), "a service token in the logs");
    }
  }
  const kv = await Deno.openKv(dir.kvPath);
  try {
    let requests = 0n;
    for await (const e of kv.list<Deno.KvU64>({ prefix: keys.principalDailies(tokenId) })) {
      requests += e.value.value;
    }
    // /auth/me, the tenant, the key, twenty verifies and the bad one: all answered, all written.
    assert.equal(requests, 24n);
    let verifications = 0n;
    for await (
      const e of kv.list<Deno.KvU64>({ prefix: ["t", tenantId, "usage", "verifications"] })
    ) {
      verifications += e.value.value;
    }
    assert.equal(verifications, 20n);
  } finally {
    kv.close();
  }
});

for (
  const [variable, value] of [
    ["PORT", "abc"],
    ["STEWARD_CORS_ORIGINS", "not-an-origin"],
  ]
) {
  Deno.test(`e2e: ${variable}=${value} stops start-up with a message naming it`, async () => {
    await using dir = await tempDir();
    await using server = ServerProcess.spawn({
      env: { STEWARD_KV_PATH: dir.kvPath, [variable]: value },
    });
    const status = await server.exited();
    assert.notEqual(status.code, 0, `start-up should fail:\n${server.stdout}`);
    assert.match(server.stderr, new RegExp(`\\b${variable}\\b`), server.stderr);
    assert.match(server.stderr, /invalid configuration/);
    assert.doesNotMatch(server.stdout, LISTENING);
    assert.ok(!existsSync(dir.kvPath), "nothing is opened before the configuration is valid");
  });
}
