/**
 * Plugins: external services that extend Steward over HTTP. A plugin owns a platform webhook
 * endpoint (`plugin_id` set on it), created, changed and deleted in the same commit as the
 * plugin: the events it subscribed to reach it through webhook delivery (signing, retries,
 * history), and that endpoint's signing secret is the plugin's, sealed by the vault as every
 * endpoint secret is and shown once. Its optional hooks (plugins/hooks.ts) are asked before a
 * tenant, API key or user is created. Its `config` must satisfy its own `config_schema`.
 */
import { commit, CONFLICT, retrying } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { getRecord, insert, replace, type Table, type Versioned } from "../../kv/table.ts";
import { recordChange } from "../audit/audit.ts";
import { createRecord } from "../audit/records.ts";
import { badRequest, conflict, notFound, staleVersion } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import type { Actor, CreationHook, Services } from "../shared/services.ts";
import { iso } from "../shared/time.ts";
import {
  endpointTable,
  endpointView,
  eventTypes,
  newEndpoint,
  requireTarget,
  type WebhookEndpoint,
} from "../webhooks/endpoints.ts";
import { checkConfig, type JsonObject } from "./config_schema.ts";

export const HOOK_FAILURE_MODES = ["open", "closed"] as const;
export type HookFailureMode = typeof HOOK_FAILURE_MODES[number];

/** Bounds of a hook's timeout: a creation waits at most this long for one plugin. */
export const MIN_HOOK_TIMEOUT_MS = 10;
export const MAX_HOOK_TIMEOUT_MS = 10_000;

export interface PluginHook {
  name: CreationHook;
  /** How long the creation waits for the plugin's answer. */
  timeout_ms: number;
  /** `open`: no answer allows the creation; `closed`: no answer refuses it (503). */
  on_failure: HookFailureMode;
}

export interface Plugin {
  id: string;
  name: string;
  version: string;
  url: string;
  /** Event types delivered to `url` through the plugin's webhook endpoint (empty: none). */
  events: string[];
  config_schema: JsonObject | null;
  config: JsonObject | null;
  hooks: PluginHook[];
  enabled: boolean;
  status: "active" | "deleted";
  /** The platform webhook endpoint that delivers its events and holds its signing secret. */
  endpoint_id: string;
  created_by: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export const pluginTable: Table<Plugin> = {
  key: keys.plugin,
  unique: (p) => p.status === "deleted" ? [] : [keys.pluginName(p.name.toLowerCase())],
};

/** What the API, the audit trail and the events show of a plugin. */
export function pluginView(p: Plugin) {
  const { status: _, ...view } = p;
  return view;
}

const nameTaken = (p: Pick<Plugin, "name">) => `a plugin named "${p.name}" already exists`;

/** One entry per hook name; 400 for a name given twice. */
function hookList(hooks: PluginHook[]): PluginHook[] {
  const seen = new Set<string>();
  hooks.forEach((h, i) => {
    if (seen.has(h.name)) {
      throw badRequest(`hooks[${i}]: ${h.name} is given twice`, [
        { path: ["hooks", i, "name"], message: "duplicate hook" },
      ]);
    }
    seen.add(h.name);
  });
  return [...hooks].sort((a, b) => a.name.localeCompare(b.name));
}

/** Whether the plugin's endpoint should deliver: an enabled live plugin with events. */
const delivers = (p: Plugin) => p.status === "active" && p.enabled && p.events.length > 0;

/**
 * The plugin's endpoint as the plugin now wants it. An endpoint Steward disabled (410, or failing
 * for days) stays disabled until the plugin is enabled again or moves to another URL.
 */
function mirrored(e: WebhookEndpoint, p: Plugin, reenable: boolean, now: number): WebhookEndpoint {
  if (p.status === "deleted") {
    return { ...e, status: "deleted", enabled: false, secrets: [], deleted_at: iso(now) };
  }
  const held = e.disabled_reason !== null && !reenable && e.url === p.url;
  const enabled = delivers(p) && !held;
  return {
    ...e,
    url: p.url,
    description: descriptionOf(p),
    event_types: p.events,
    enabled,
    disabled_reason: enabled ? null : e.disabled_reason,
    disabled_at: enabled ? null : e.enabled ? iso(now) : e.disabled_at,
  };
}

const descriptionOf = (p: Pick<Plugin, "name" | "version">) =>
  `Events of plugin ${p.name} ${p.version}`;

export interface NewPlugin {
  name: string;
  version: string;
  url: string;
  events: string[];
  config_schema?: JsonObject | null;
  config?: JsonObject | null;
  hooks?: PluginHook[];
  enabled?: boolean;
}

/** Registers a plugin and its endpoint in one commit; its signing secret is returned this once. */
export async function createPlugin(
  svc: Services,
  actor: Actor,
  input: NewPlugin,
): Promise<{ plugin: Versioned<Plugin>; secret: string }> {
  const events = eventTypes(input.events, "events");
  const hooks = hookList(input.hooks ?? []);
  const schema = input.config_schema ?? null;
  const config = input.config ?? null;
  checkConfig(schema, config);
  const now = svc.now();
  const id = newId("plg", now);
  const enabled = input.enabled ?? true;
  const made = await newEndpoint(svc, actor, null, {
    url: input.url,
    description: descriptionOf(input),
    event_types: events,
    enabled: enabled && events.length > 0,
  });
  const endpoint: WebhookEndpoint = { ...made.endpoint, plugin_id: id };
  const plugin: Plugin = {
    id,
    name: input.name,
    version: input.version,
    url: input.url,
    events,
    config_schema: schema,
    config,
    hooks,
    enabled,
    status: "active",
    endpoint_id: endpoint.id,
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
    deleted_at: null,
  };
  const created = await createRecord(svc, actor, pluginTable, plugin, {
    action: "plugin.created",
    resource_type: "plugin",
    tenant_id: () => null,
    view: pluginView,
    clash: nameTaken,
    extra: (op) => {
      op.sum(keys.pluginsVersion(), 1n);
      insert(op, endpointTable(null), endpoint);
      recordChange(op, svc.now(), actor, {
        action: "webhook.created",
        resource_type: "webhook",
        resource_id: endpoint.id,
        tenant_id: null,
        after: endpointView(endpoint),
      });
    },
  });
  svc.hooks?.reload();
  return { plugin: created, secret: made.secret };
}

/** A live plugin, or 404. */
export async function getPlugin(svc: Services, id: string): Promise<Versioned<Plugin>> {
  const found = await getRecord(svc.kv, pluginTable, id);
  if (!found || found.value.status === "deleted") throw notFound("plugin");
  return found;
}

/** The live plugins, newest first, with their total. */
export function listPlugins(
  svc: Services,
  filter: { enabled?: boolean },
  page: PageRequest,
): Promise<Page<Plugin> & Counted> {
  return listCounted<Plugin>(svc.kv, {
    selector: { prefix: keys.plugins() },
    filter: (p) =>
      p.status === "active" && (filter.enabled === undefined || p.enabled === filter.enabled),
  }, { ...page, reverse: true });
}

/**
 * Changes a plugin and its endpoint in one commit with both audit events. `reenable`: the
 * endpoint is enabled again even if Steward had disabled it.
 */
async function changePlugin(
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch: string | undefined,
  action: string,
  next: (p: Plugin, now: number) => Plugin,
  reenable = false,
): Promise<Versioned<Plugin>> {
  const changed = await retrying(async () => {
    const current = await getPlugin(svc, id);
    if (ifMatch && ifMatch !== current.versionstamp) throw staleVersion();
    const now = svc.now();
    const after = next(current.value, now);
    const endpoint = await getRecord(svc.kv, endpointTable(null), current.value.endpoint_id);
    const live = endpoint && endpoint.value.status === "active" ? endpoint : null;
    const edited = live && mirrored(live.value, after, reenable, now);
    const endpointMoves = edited !== null && JSON.stringify(edited) !== JSON.stringify(live!.value);
    if (after === current.value && !endpointMoves) return current;
    const name = after.name.toLowerCase();
    if (
      name !== current.value.name.toLowerCase() && after.status === "active" &&
      (await svc.kv.get(keys.pluginName(name))).versionstamp !== null
    ) {
      throw conflict(nameTaken(after));
    }
    const plugin = { ...after, updated_at: iso(now) };
    const op = replace(svc.kv.atomic(), pluginTable, current, plugin)
      .sum(keys.pluginsVersion(), 1n);
    if (endpointMoves) {
      const e = { ...edited!, updated_at: iso(now) };
      replace(op, endpointTable(null), live!, e);
      // Enabled again, or pointed elsewhere: the failure streak that may disable it starts over.
      if ((e.enabled && !live!.value.enabled) || e.url !== live!.value.url) {
        op.delete(keys.webhookHealth(null, e.id));
      }
      recordChange(op, now, actor, {
        action: e.status === "deleted" ? "webhook.deleted" : "webhook.updated",
        resource_type: "webhook",
        resource_id: e.id,
        tenant_id: null,
        before: endpointView(live!.value),
        after: endpointView(e),
      });
    }
    recordChange(op, now, actor, {
      action,
      resource_type: "plugin",
      resource_id: id,
      tenant_id: null,
      before: pluginView(current.value),
      after: pluginView(plugin),
    });
    const res = await commit(op);
    if (res) return { value: plugin, versionstamp: res.versionstamp };
    if (ifMatch) throw staleVersion();
    return CONFLICT;
  });
  svc.hooks?.reload();
  return changed;
}

export interface PluginPatch {
  name?: string;
  version?: string;
  url?: string;
  events?: string[];
  config_schema?: JsonObject | null;
  config?: JsonObject | null;
  hooks?: PluginHook[];
}

/** Changes what is given; `config` is checked against the schema it will have. */
export async function updatePlugin(
  svc: Services,
  actor: Actor,
  id: string,
  patch: PluginPatch,
  ifMatch?: string,
): Promise<Versioned<Plugin>> {
  const events = patch.events && eventTypes(patch.events, "events");
  const hooks = patch.hooks && hookList(patch.hooks);
  if (patch.url !== undefined) await requireTarget(svc, patch.url);
  return await changePlugin(svc, actor, id, ifMatch, "plugin.updated", (p) => {
    const after: Plugin = {
      ...p,
      name: patch.name ?? p.name,
      version: patch.version ?? p.version,
      url: patch.url ?? p.url,
      events: events ?? p.events,
      config_schema: patch.config_schema === undefined ? p.config_schema : patch.config_schema,
      config: patch.config === undefined ? p.config : patch.config,
      hooks: hooks ?? p.hooks,
    };
    if (patch.config_schema !== undefined || patch.config !== undefined) {
      checkConfig(after.config_schema, after.config);
    }
    return JSON.stringify(after) === JSON.stringify(p) ? p : after;
  });
}

/** Enables or disables a plugin: its events and its hooks start or stop together. */
export function setPluginEnabled(
  svc: Services,
  actor: Actor,
  id: string,
  enabled: boolean,
  ifMatch?: string,
): Promise<Versioned<Plugin>> {
  return changePlugin(
    svc,
    actor,
    id,
    ifMatch,
    enabled ? "plugin.enabled" : "plugin.disabled",
    (p) => p.enabled === enabled ? p : { ...p, enabled },
    enabled,
  );
}

/** Deletes softly, with its endpoint (whose secrets are dropped): the record stays for the trail. */
export function deletePlugin(
  svc: Services,
  actor: Actor,
  id: string,
  ifMatch?: string,
): Promise<Versioned<Plugin>> {
  return changePlugin(svc, actor, id, ifMatch, "plugin.deleted", (p, now) => ({
    ...p,
    status: "deleted",
    enabled: false,
    deleted_at: iso(now),
  }));
}
