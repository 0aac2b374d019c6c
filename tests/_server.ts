/**
 * A Steward (or any Deno) server in its own process, for end-to-end tests and benchmarks:
 * stdout and stderr drained as they arrive (a full pipe never blocks it), every wait bounded.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Seconds to wait for a start, an exit or an answer before failing. */
export const WAIT_SECONDS = 20;
export const LISTENING = /listening on http:\/\//;
/** Variables of the caller that must not leak into the server (it gets its own). */
const NOT_INHERITED = /^(STEWARD_.*|DATABASE_URL|PORT|HOST)$/;
/** `deno run` of Steward itself, with the permissions `deno task start` grants. */
const STEWARD_ARGS = [
  "run",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-sys=hostname,networkInterfaces",
  "main.ts",
];

/**
 * Steward under `deno serve --parallel` (one isolate per core) on `port`, with `env`. Deno prints
 * its listening line on stderr: wait with `answering`.
 */
export function parallelSteward(port: number, env: Record<string, string>): ServerProcess {
  return ServerProcess.spawn({
    args: [
      "serve",
      "--parallel",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      ...STEWARD_ARGS.slice(1, -1),
      "serve.ts",
    ],
    env: { ...env, STEWARD_SERVE: "deno" },
  });
}

/** Waits (bounded) until `url` answers GET /health/live. */
export async function answering(url: string, seconds = WAIT_SECONDS): Promise<void> {
  await within(
    seconds,
    `${url} to answer`,
    (async () => {
      for (;;) {
        const res = await fetch(`${url}/health/live`).catch(() => null);
        await res?.body?.cancel();
        if (res?.ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
  );
}

export interface ServerOptions {
  /** Arguments to `deno` (default: run main.ts). */
  args?: string[];
  env?: Record<string, string>;
}

/** `p`, or a rejection naming `what` once `seconds` have passed. */
export async function within<T>(seconds: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${seconds} s waiting for ${what}`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A temporary folder with the path of a KV file in it; removed on dispose. */
export async function tempDir() {
  const path = await Deno.makeTempDir({ prefix: "steward_e2e_" });
  return {
    path,
    kvPath: join(path, "steward.kv"),
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

export function randomAlnum(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export interface Reply {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

export function parseJson(text: string) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A `deno` child process with its stdout and stderr collected as they arrive. */
export class ServerProcess {
  readonly port: number;
  readonly url: string;
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  #stdoutEnded = false;
  #changed = Promise.withResolvers<void>();
  readonly #drained: Promise<void>;

  private constructor(opts: ServerOptions) {
    this.port = freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const inherited = Object.entries(Deno.env.toObject()).filter(([k]) => !NOT_INHERITED.test(k));
    this.child = new Deno.Command(Deno.execPath(), {
      args: opts.args ?? STEWARD_ARGS,
      cwd: ROOT,
      clearEnv: true,
      env: {
        ...Object.fromEntries(inherited),
        NO_COLOR: "1",
        RUST_BACKTRACE: "0",
        PORT: String(this.port),
        HOST: "127.0.0.1",
        // Load tests and benchmarks measure Steward, not its rate limits: off unless asked for.
        STEWARD_RATE_LIMITS: "off",
        ...opts.env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = collect(this.child.stdout, (text) => {
      this.stdout += text;
      this.#notify();
    }).finally(() => {
      this.#stdoutEnded = true;
      this.#notify();
    });
    const stderr = collect(this.child.stderr, (text) => (this.stderr += text));
    this.#drained = Promise.all([stdout, stderr]).then(() => {});
  }

  /** Spawns the server without waiting for anything (for start-ups meant to fail). */
  static spawn(opts: ServerOptions = {}): ServerProcess {
    return new ServerProcess(opts);
  }

  /** Spawns the server and waits for its "listening" line. */
  static async start(opts: ServerOptions = {}): Promise<ServerProcess> {
    const server = new ServerProcess(opts);
    try {
      await server.waitForStdout(LISTENING, "the listening line");
    } catch (err) {
      await server[Symbol.asyncDispose]();
      throw err;
    }
    return server;
  }

  #notify() {
    const changed = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    changed.resolve();
  }

  #output() {
    return `\n--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  /** Waits (bounded) until stdout matches `pattern`; fails with the output so far otherwise. */
  async waitForStdout(pattern: RegExp, what: string): Promise<void> {
    const wait = async () => {
      while (!pattern.test(this.stdout)) {
        if (this.#stdoutEnded) throw new Error(`the server ended without printing ${what}`);
        await this.#changed.promise;
      }
    };
    try {
      await within(WAIT_SECONDS, what, wait());
    } catch (err) {
      throw new Error(`${(err as Error).message}${this.#output()}`);
    }
  }

  /** Waits (bounded) for the exit, with every byte of output read. */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await within(WAIT_SECONDS, "the server to exit", this.child.status);
    await within(WAIT_SECONDS, "the server's output to end", this.#drained);
    return status;
  }

  /** SIGTERM, then the exit status. */
  async stop(): Promise<Deno.CommandStatus> {
    this.child.kill("SIGTERM");
    return await this.exited();
  }

  async call(
    method: string,
    path: string,
    o: { token?: string; body?: unknown } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (o.token) headers["Authorization"] = `Bearer ${o.token}`;
    if (o.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await within(
      WAIT_SECONDS,
      `${method} ${path}`,
      fetch(`${this.url}${path}`, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
      }).then(async (r) => ({ res: r, text: await r.text() })),
    );
    return {
      status: res.res.status,
      headers: res.res.headers,
      body: parseJson(res.text),
      text: res.text,
    };
  }

  /** Kills the process if it still runs and waits for it and its output streams. */
  async [Symbol.asyncDispose]() {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.child.status;
    await this.#drained;
  }
}

/** Reads `stream` to its end, handing over the text; never rejects. */
async function collect(stream: ReadableStream<Uint8Array>, onText: (text: string) => void) {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
    onText(decoder.decode());
  } catch (err) {
    onText(`\n[reading the stream failed: ${err}]\n`);
  }
}
