/**
 * The runtime configuration (ARCHITECTURE.md, Runtime configuration): the values set through
 * the API are one versioned document (`runtime_config`), each version kept in its history; a
 * change or a rollback is one commit checked against the version read, with its audit event.
 *
 * Each process holds a `RuntimeConfig`: the effective value of every setting (an environment
 * variable, else the API's value, else the default) applied to its live components. It follows
 * the document with `kv.watch`, and re-reads it every REFRESH_MS in case a watch misses a change:
 * a change reaches every process within about a second, and at the latest within REFRESH_MS.
 */
import { keys } from "../../kv/keys.ts";
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { recordChange } from "../audit/audit.ts";
import { AppError, badRequest, conflict, notFound, staleVersion } from "../shared/errors.ts";
import type { Actor, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import type { IpGuard } from "../protection/ip_guard.ts";
import type { ApiRateLimiter } from "../access/api_rate_limit.ts";
import {
  type LiveTargets,
  type Setting,
  SETTING_KEYS,
  type SettingKey,
  settingOf,
  SETTINGS,
} from "./runtime_settings.ts";

/** The longest a process goes without re-reading the document (the watch is the fast path). */
export const REFRESH_MS = 10_000;

/** The values set through the API: one document, versioned. */
export interface ConfigDocument {
  /** 0 before the first change. */
  version: number;
  /** By setting key, each value as its schema outputs it. */
  values: Partial<Record<SettingKey, unknown>>;
  updated_at: string | null;
  updated_by: string | null;
}

/** One version of the document, as the history keeps it. */
export interface ConfigVersion {
  version: number;
  action: "config.updated" | "config.rolled_back";
  /** The version a rollback restored; null for a change. */
  rolled_back_to: number | null;
  /** The effective values that changed, before and after. */
  changes: Record<string, { before: unknown; after: unknown }>;
  /** Every value set through the API in this version. */
  values: Partial<Record<SettingKey, unknown>>;
  actor_type: Actor["type"];
  actor_id: string;
  created_at: string;
}

export type SettingSource = "default" | "env" | "api";

export interface SettingView {
  value: unknown;
  default: unknown;
  source: SettingSource;
  type: Setting["type"];
  description: string;
  /** The variable that pins it. */
  env: string;
}

export interface ConfigView {
  version: number;
  settings: Record<SettingKey, SettingView>;
  updated_at: string | null;
  updated_by: string | null;
}

const EMPTY: ConfigDocument = { version: 0, values: {}, updated_at: null, updated_by: null };

/** The stored values that still pass their setting's schema (a removed setting is dropped). */
function checkedValues(values: Record<string, unknown>): Partial<Record<SettingKey, unknown>> {
  const out: Partial<Record<SettingKey, unknown>> = {};
  for (const [key, value] of Object.entries(values)) {
    if (!Object.hasOwn(SETTINGS, key)) continue;
    const parsed = settingOf(key as SettingKey).schema.safeParse(value);
    if (parsed.success) out[key as SettingKey] = parsed.data;
  }
  return out;
}

async function readDocument(kv: Deno.Kv) {
  const entry = await kv.get<ConfigDocument>(keys.runtimeConfig());
  const doc = entry.value ? { ...entry.value, values: checkedValues(entry.value.values) } : EMPTY;
  return { doc, versionstamp: entry.versionstamp };
}

/**
 * This process's settings: the environment's pinned values over the API's over the defaults,
 * applied to the live components whenever the document moves to another version.
 */
export class RuntimeConfig {
  readonly #live: LiveTargets;
  readonly #pinned: Partial<Record<SettingKey, unknown>>;
  #doc: ConfigDocument = EMPTY;
  #applied = false;
  #watch: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]> | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** `pinned`: the settings whose variable is set, with their values (config.ts). */
  constructor(svc: Services, pinned: Partial<Record<SettingKey, unknown>>) {
    this.#live = { svc, limiter: null, ipGuard: null };
    this.#pinned = pinned;
  }

  get version(): number {
    return this.#doc.version;
  }

  /** The variable pinning `key`, or null. */
  pinnedBy(key: SettingKey): string | null {
    return Object.hasOwn(this.#pinned, key) ? SETTINGS[key].env : null;
  }

  /** The effective value of `key` and where it comes from, under `doc` (default: the held one). */
  effective(key: SettingKey, doc = this.#doc): { value: unknown; source: SettingSource } {
    if (Object.hasOwn(this.#pinned, key)) return { value: this.#pinned[key], source: "env" };
    if (Object.hasOwn(doc.values, key)) return { value: doc.values[key], source: "api" };
    return { value: SETTINGS[key].default, source: "default" };
  }

  /** Every setting as GET /v1/admin/config shows it. */
  view(): ConfigView {
    const settings = Object.fromEntries(SETTING_KEYS.map((key) => {
      const s = SETTINGS[key];
      const { value, source } = this.effective(key);
      return [key, {
        value,
        default: s.default,
        source,
        type: s.type,
        description: s.description,
        env: s.env,
      }];
    })) as Record<SettingKey, SettingView>;
    const { version, updated_at, updated_by } = this.#doc;
    return { version, settings, updated_at, updated_by };
  }

  /** The API's rate limiter and the IP guard (built with the app) follow the settings too. */
  attach(limiter: ApiRateLimiter | null, ipGuard: IpGuard) {
    this.#live.limiter = limiter;
    this.#live.ipGuard = ipGuard;
    this.#applyAll();
  }

  /** Takes `doc` if it is newer than the one held (versions only grow), and applies it. */
  accept(doc: ConfigDocument) {
    if (this.#applied && doc.version <= this.#doc.version) return;
    this.#doc = doc;
    this.#applyAll();
    this.#applied = true;
  }

  #applyAll() {
    for (const key of SETTING_KEYS) settingOf(key).apply(this.effective(key).value, this.#live);
  }

  /** Reads the document and applies it. */
  async refresh(): Promise<void> {
    this.accept((await readDocument(this.#live.svc.kv)).doc);
  }

  /** Follows the document (watch, and a re-read every REFRESH_MS) until stop(). */
  start(onError: (err: unknown) => void = () => {}) {
    if (this.#timer !== null) return;
    const kv = this.#live.svc.kv;
    const timer = setInterval(() => void this.refresh().catch(onError), REFRESH_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
    const watch = kv.watch([keys.runtimeConfig()]).getReader();
    this.#watch = watch;
    void (async () => {
      for (let next = await watch.read(); !next.done; next = await watch.read()) {
        const value = next.value[0].value as ConfigDocument | null;
        this.accept(value ? { ...value, values: checkedValues(value.values) } : EMPTY);
      }
    })().catch(onError);
  }

  /** Stops following the document (shutdown). */
  async stop() {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#watch?.cancel().catch(() => {});
    this.#watch = null;
  }
}

/** Effective values before and after, for the keys whose effective value moved. */
function changesBetween(
  runtime: RuntimeConfig,
  before: ConfigDocument,
  after: ConfigDocument,
): Record<string, { before: unknown; after: unknown }> {
  const changes: Record<string, { before: unknown; after: unknown }> = {};
  for (const key of SETTING_KEYS) {
    const [b, a] = [runtime.effective(key, before).value, runtime.effective(key, after).value];
    if (JSON.stringify(b) !== JSON.stringify(a)) changes[key] = { before: b, after: a };
  }
  return changes;
}

/**
 * Commits the next version of the document (its values from the current one by `next`), with
 * its history entry and audit event, checked against the version read; `expected`: the version
 * the caller read (If-Match), else a concurrent change is re-read and retried.
 */
async function commitVersion(
  svc: Services,
  actor: Actor,
  runtime: RuntimeConfig,
  action: ConfigVersion["action"],
  next: (current: ConfigDocument) => ConfigVersion["values"],
  opts: { expected?: number; rolledBackTo?: number } = {},
): Promise<ConfigDocument> {
  const doc = await retrying(async () => {
    const { doc: current, versionstamp } = await readDocument(svc.kv);
    if (opts.expected !== undefined && opts.expected !== current.version) throw staleVersion();
    const now = svc.now();
    const updated: ConfigDocument = {
      version: current.version + 1,
      values: next(current),
      updated_at: iso(now),
      updated_by: actor.id,
    };
    const changes = changesBetween(runtime, current, updated);
    const record: ConfigVersion = {
      version: updated.version,
      action,
      rolled_back_to: opts.rolledBackTo ?? null,
      changes,
      values: updated.values,
      actor_type: actor.type,
      actor_id: actor.id,
      created_at: updated.updated_at!,
    };
    const op = svc.kv.atomic()
      .check({ key: keys.runtimeConfig(), versionstamp })
      .check({ key: keys.runtimeConfigVersion(updated.version), versionstamp: null })
      .set(keys.runtimeConfig(), updated)
      .set(keys.runtimeConfigVersion(updated.version), record);
    // Nested under `settings`: the audit trail redacts top-level names that look secret.
    const side = (at: "before" | "after") => ({
      version: at === "before" ? current.version : updated.version,
      settings: Object.fromEntries(Object.entries(changes).map(([k, c]) => [k, c[at]])),
    });
    recordChange(op, now, actor, {
      action,
      resource_type: "config",
      resource_id: "runtime_config",
      tenant_id: null,
      before: side("before"),
      after: side("after"),
    });
    if (await commit(op)) return updated;
    if (opts.expected !== undefined) throw staleVersion();
    return CONFLICT;
  });
  // This process applies it now; the others when their watch (or re-read) sees it.
  runtime.accept(doc);
  return doc;
}

/**
 * Sets (or, with null, unsets) settings through the API. Unknown keys and bad values are 400, a
 * key pinned by its environment variable is 409, a stale `version` is 412.
 */
export async function updateConfig(
  svc: Services,
  actor: Actor,
  runtime: RuntimeConfig,
  patch: Record<string, unknown>,
  expected: number,
): Promise<ConfigDocument> {
  const values: Partial<Record<SettingKey, unknown>> = {};
  const issues: { path: string[]; message: string }[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (!Object.hasOwn(SETTINGS, key)) {
      issues.push({ path: ["body", key], message: "no such setting" });
      continue;
    }
    if (value === null) {
      values[key as SettingKey] = null;
      continue;
    }
    const parsed = settingOf(key as SettingKey).schema.safeParse(value);
    if (parsed.success) values[key as SettingKey] = parsed.data;
    else {issues.push(...parsed.error.issues.map((i) => ({
        path: ["body", key, ...i.path.map(String)],
        message: i.message,
      })
      ));}
  }
  if (issues.length) {
    throw badRequest(`invalid settings: ${issues.map((i) => i.path.join(".")).join(", ")}`, issues);
  }
  const pinned = Object.keys(values).flatMap((key) => {
    const env = runtime.pinnedBy(key as SettingKey);
    return env ? [`${key} (${env})`] : [];
  });
  if (pinned.length) {
    throw conflict(
      `set by an environment variable, so not changeable here: ${pinned.join(", ")}; ` +
        "unset the variable and restart to manage it through the API",
    );
  }
  return await commitVersion(svc, actor, runtime, "config.updated", (current) => {
    const next = { ...current.values };
    for (const [key, value] of Object.entries(values)) {
      if (value === null) delete next[key as SettingKey];
      else next[key as SettingKey] = value;
    }
    return next;
  }, { expected });
}

/** Makes a new version whose values are those of `version` (0: nothing set through the API). */
export async function rollbackConfig(
  svc: Services,
  actor: Actor,
  runtime: RuntimeConfig,
  version: number,
): Promise<ConfigDocument> {
  let values: ConfigVersion["values"] = {};
  if (version > 0) {
    const old = await svc.kv.get<ConfigVersion>(keys.runtimeConfigVersion(version));
    if (!old.value) throw notFound(`config version ${version}`);
    values = checkedValues(old.value.values);
  }
  return await commitVersion(svc, actor, runtime, "config.rolled_back", () => values, {
    rolledBackTo: version,
  });
}

/** The document's versions, newest first. */
export async function listConfigHistory(
  svc: Services,
  page: PageRequest,
): Promise<Page<ConfigVersion> & Counted> {
  return await listCounted<ConfigVersion>(
    svc.kv,
    { selector: { prefix: keys.runtimeConfigVersions() } },
    { ...page, reverse: true },
  );
}

/** A version number from If-Match: a whole number, else the answer is 412. */
export function versionOf(tag: string): number {
  if (!/^\d{1,15}$/.test(tag)) throw staleVersion();
  return Number(tag);
}

/** PATCH names the version it read, or changes nothing. */
export const versionRequired = () =>
  new AppError(
    "PRECONDITION_REQUIRED",
    "If-Match is required: send the ETag of GET /v1/admin/config",
  );
