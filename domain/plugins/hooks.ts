/**
 * Plugins' synchronous hooks: before a tenant, API key or user is created, each enabled plugin
 * hooked on that creation gets a signed POST (Standard Webhooks, its endpoint's secrets, through
 * the webhook network: the same target rules) of `{ type, timestamp, data }` and answers
 * `{ "allow": true }` or `{ "allow": false, "reason": "…" }`.
 *
 * - A veto refuses the creation: 422 UNPROCESSABLE, `details.code` `VETOED_BY_PLUGIN`, the
 *   message naming the plugin and its reason.
 * - No usable answer within the hook's `timeout_ms` (timeout, network error, refused address,
 *   non-2xx, a body that is not such an object): `on_failure` `open` allows the creation,
 *   `closed` refuses it with 503 UNAVAILABLE, `details.code` `PLUGIN_UNAVAILABLE` (Steward could
 *   not ask; the caller may retry).
 *
 * The hooked plugins are held in memory and read again at the first creation after a change:
 * one this process made (`reload`), or one that bumped `plugins_version`, which a started
 * instance watches. A creation that no plugin hooks thus costs no KV read. Each process keeps the
 * last calls of each plugin for its health report.
 */
import { keys } from "../../kv/keys.ts";
import { getRecord } from "../../kv/table.ts";
import { AppError } from "../shared/errors.ts";
import type { Actor, CreationHook, CreationHooks, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import { readStart } from "../webhooks/delivery.ts";
import { endpointTable, openSecrets } from "../webhooks/endpoints.ts";
import { signedHeaders } from "../webhooks/signature.ts";
import { targetProblem } from "../webhooks/targets.ts";
import type { Plugin, PluginHook } from "./plugins.ts";

/** How many calls of each plugin a process remembers. */
export const RECENT_CALLS = 50;
const REASON_LIMIT = 500;
/** The most of an answer that is read: `{ allow, reason }` needs little. */
const ANSWER_LIMIT = 16 * 1024;
const USER_AGENT = "Steward-Plugins/1";

/** One hook call, as the health report shows it. */
export interface HookCall {
  hook: CreationHook;
  at: string;
  /** `allowed`/`vetoed`: the plugin's answer; `failed`: no usable answer. */
  outcome: "allowed" | "vetoed" | "failed";
  /** For a failure: what `on_failure` made of it. */
  applied: "allowed" | "refused";
  latency_ms: number;
  /** The plugin's HTTP status; null when none came back. */
  status: number | null;
  reason: string | null;
  error: string | null;
}

interface Hooked {
  plugin: Pick<Plugin, "id" | "name" | "url" | "endpoint_id">;
  hook: PluginHook;
}

type Answer =
  | { allow: true; status: number }
  | { allow: false; status: number; reason: string };

class HookFailure extends Error {
  constructor(message: string, readonly status: number | null = null) {
    super(message);
  }
}

/** The plugin's answer, or why there is none. */
function parseAnswer(status: number, text: string): Answer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HookFailure("the answer is not JSON", status);
  }
  const allow = (body as { allow?: unknown } | null)?.allow;
  if (typeof allow !== "boolean") {
    throw new HookFailure('the answer has no boolean "allow"', status);
  }
  if (allow) return { allow, status };
  const reason = (body as { reason?: unknown }).reason;
  return {
    allow,
    status,
    reason: typeof reason === "string" && reason.trim()
      ? reason.trim().slice(0, REASON_LIMIT)
      : "no reason given",
  };
}

/** Rejects after `ms` (and aborts `controller`), whatever the promise does meanwhile. */
function within<T>(ms: number, controller: AbortController, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new HookFailure(`no answer within ${ms} ms`);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export class PluginHooks implements CreationHooks {
  #held: Map<CreationHook, Hooked[]> | null = null;
  /** Bumped by each reload: a read that a change overtook is not kept. */
  #generation = 0;
  #calls = new Map<string, HookCall[]>();
  #watch: ReadableStreamDefaultReader<unknown> | null = null;
  #stopped = false;

  constructor(private readonly svc: Services) {}

  reload(): void {
    this.#generation++;
    this.#held = null;
  }

  /** Follows other processes' changes (`plugins_version`) until `stop`. */
  start(onError: (err: unknown) => void): void {
    void this.#follow(onError);
  }

  async #follow(onError: (err: unknown) => void): Promise<void> {
    while (!this.#stopped) {
      try {
        this.#watch = this.svc.kv.watch([keys.pluginsVersion()]).getReader();
        // The first answer is the version now; each next one is a change.
        while (!(await this.#watch.read()).done) this.reload();
      } catch (err) {
        if (this.#stopped) return;
        onError(err);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watch?.cancel().catch(() => {});
  }

  /** This process's last calls of a plugin's hooks, newest first. */
  recent(pluginId: string): HookCall[] {
    return this.#calls.get(pluginId) ?? [];
  }

  async #hooked(hook: CreationHook): Promise<Hooked[]> {
    let held = this.#held;
    if (!held) {
      const generation = this.#generation;
      const byHook = new Map<CreationHook, Hooked[]>();
      for await (const { value: p } of this.svc.kv.list<Plugin>({ prefix: keys.plugins() })) {
        if (p.status !== "active" || !p.enabled) continue;
        for (const h of p.hooks) {
          byHook.set(h.name, [...byHook.get(h.name) ?? [], { plugin: p, hook: h }]);
        }
      }
      held = byHook;
      if (generation === this.#generation) this.#held = byHook;
    }
    return held.get(hook) ?? [];
  }

  async ask(hook: CreationHook, subject: Record<string, unknown>, actor: Actor): Promise<void> {
    const hooked = await this.#hooked(hook);
    if (hooked.length === 0) return;
    const calls = await Promise.all(hooked.map((h) => this.#call(h, subject, actor)));
    calls.forEach((call, i) => {
      const { plugin, hook: h } = hooked[i];
      if (call.outcome === "vetoed") {
        throw new AppError(
          "UNPROCESSABLE",
          `plugin "${plugin.name}" vetoed ${hook}: ${call.reason}`,
          {
            code: "VETOED_BY_PLUGIN",
            plugin_id: plugin.id,
            plugin: plugin.name,
            hook,
            reason: call.reason,
          },
        );
      }
      if (call.applied === "refused") {
        throw new AppError(
          "UNAVAILABLE",
          `plugin "${plugin.name}" did not answer ${hook} (${call.error}) and fails closed`,
          {
            code: "PLUGIN_UNAVAILABLE",
            plugin_id: plugin.id,
            plugin: plugin.name,
            hook,
            error: call.error,
          },
          Math.ceil(h.timeout_ms / 1000),
        );
      }
    });
  }

  async #call(hooked: Hooked, subject: Record<string, unknown>, actor: Actor): Promise<HookCall> {
    const { plugin, hook } = hooked;
    const started = performance.now();
    const now = this.svc.now();
    const controller = new AbortController();
    let call: HookCall;
    try {
      const answer = await within(
        hook.timeout_ms,
        controller,
        this.#post(hooked, subject, actor, now, controller.signal),
      );
      call = {
        hook: hook.name,
        at: iso(now),
        outcome: answer.allow ? "allowed" : "vetoed",
        applied: answer.allow ? "allowed" : "refused",
        latency_ms: 0,
        status: answer.status,
        reason: answer.allow ? null : answer.reason,
        error: null,
      };
    } catch (err) {
      call = {
        hook: hook.name,
        at: iso(now),
        outcome: "failed",
        applied: hook.on_failure === "open" ? "allowed" : "refused",
        latency_ms: 0,
        status: err instanceof HookFailure ? err.status : null,
        reason: null,
        error: (err instanceof Error ? err.message : String(err)).slice(0, REASON_LIMIT),
      };
    }
    call.latency_ms = Math.round(performance.now() - started);
    const kept = [call, ...this.recent(plugin.id)].slice(0, RECENT_CALLS);
    this.#calls.set(plugin.id, kept);
    return call;
  }

  async #post(
    { plugin, hook }: Hooked,
    subject: Record<string, unknown>,
    actor: Actor,
    now: number,
    signal: AbortSignal,
  ): Promise<Answer> {
    const refused = await targetProblem(this.svc.webhooks, plugin.url);
    if (refused) throw new HookFailure(`not sent: the url ${refused}`);
    const endpoint = await getRecord(this.svc.kv, endpointTable(null), plugin.endpoint_id);
    if (!endpoint || endpoint.value.status === "deleted") {
      throw new HookFailure("the plugin's webhook endpoint is deleted: no secret to sign with");
    }
    const secrets = await openSecrets(this.svc, endpoint.value, now);
    const body = JSON.stringify({
      type: hook.name,
      timestamp: iso(now),
      data: { ...subject, actor: { type: actor.type, id: actor.id } },
    });
    const res = await this.svc.webhooks.fetch(plugin.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        ...signedHeaders(secrets, `hook_${crypto.randomUUID()}`, Math.floor(now / 1000), body),
      },
      body,
      redirect: "manual",
      signal,
    });
    const text = await readStart(res, ANSWER_LIMIT);
    if (res.status < 200 || res.status >= 300) {
      throw new HookFailure(`the plugin answered ${res.status}`, res.status);
    }
    return parseAnswer(res.status, text);
  }
}
