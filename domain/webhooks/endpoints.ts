/**
 * Webhook endpoints: where domain events are delivered. A platform endpoint (tenant_id null)
 * receives every tenant's events; a tenant's endpoint only that tenant's. `event_types` filters
 * (empty: every type). Signing secrets are sealed by the vault under the owner's data key and
 * shown once, at creation and on rotation; a rotation keeps the previous secret signing for a
 * grace period. Deletion is soft (the record stays for the audit trail, its secrets do not).
 */
import { keys } from "../../kv/keys.ts";
import { type Counted, listCounted, type Page, type PageRequest } from "../../kv/list.ts";
import { getRecord, type Table, type Versioned } from "../../kv/table.ts";
import { isEventType } from "../audit/event_catalog.ts";
import { AppError, badRequest, conflict, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { createRecord, mergeMap, updateRecord } from "../audit/records.ts";
import { type Actor, type Services, SYSTEM_ACTOR } from "../shared/services.ts";
import type { Tenant } from "../tenancy/tenants.ts";
import type { KeyOwner, Sealed, SealedRecord } from "../shared/services.ts";
import { newWebhookSecret } from "./signature.ts";
import { targetProblem } from "./targets.ts";
import { iso } from "../shared/time.ts";

export interface WebhookSecret {
  sealed: Sealed;
  created_at: string;
  /** Null for the current secret; when a rotated-out one stops signing. */
  expires_at: string | null;
}

/** Why Steward turned an endpoint off: it answered 410 Gone, or failed for days. */
export type DisabledReason = "gone" | "failing";

export interface WebhookEndpoint {
  id: string;
  /** Null: a platform endpoint (every tenant's events). */
  tenant_id: string | null;
  url: string;
  description: string | null;
  /** Event types delivered; empty means all. */
  event_types: string[];
  enabled: boolean;
  status: "active" | "deleted";
  /** Set when Steward disabled it; null when enabled or disabled by hand. */
  disabled_reason: DisabledReason | null;
  disabled_at: string | null;
  metadata: Record<string, string>;
  /** Newest first. */
  secrets: WebhookSecret[];
  created_by: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  /** The plugin that owns it (plugins/plugins.ts): changed and deleted only with the plugin. */
  plugin_id?: string;
}

/** Since when every attempt to an endpoint failed; absent while it is healthy. */
export interface EndpointHealth {
  failing_since: number;
}

export const DEFAULT_SECRET_GRACE_SECONDS = 86_400;
export const MAX_SECRET_GRACE_SECONDS = 7 * 86_400;
export const MAX_EVENT_TYPES = 100;

export const endpointTable = (tenantId: string | null): Table<WebhookEndpoint> => ({
  key: (id) => keys.webhookEndpoint(tenantId, id),
});

const aadOf = (e: Pick<WebhookEndpoint, "id">) => `webhook_secret:${e.id}`;

/** The secrets that sign at `now`: the current one and any still in its grace. */
const liveSecrets = (e: WebhookEndpoint, now: number) =>
  e.secrets.filter((s) => s.expires_at === null || Date.parse(s.expires_at) > now);

/** What the API, the audit trail and the events show: never the secrets. */
export function endpointView(e: WebhookEndpoint) {
  const previous = e.secrets.find((s) => s.expires_at !== null);
  return {
    id: e.id,
    tenant_id: e.tenant_id,
    url: e.url,
    description: e.description,
    event_types: e.event_types,
    enabled: e.enabled,
    disabled_reason: e.disabled_reason,
    disabled_at: e.disabled_at,
    metadata: e.metadata,
    previous_secret_expires_at: previous?.expires_at ?? null,
    created_by: e.created_by,
    created_at: e.created_at,
    updated_at: e.updated_at,
    deleted_at: e.deleted_at,
  };
}

/** 400 when Steward must not send to `url` (targets.ts). */
export async function requireTarget(svc: Services, url: string) {
  const problem = await targetProblem(svc.webhooks, url);
  if (problem) throw badRequest(`url ${problem}`, [{ path: ["url"], message: problem }]);
}

/** The catalogue's types named in `field`, deduplicated and sorted; 400 for an unknown one. */
export function eventTypes(types: string[], field = "event_types"): string[] {
  types.forEach((t, i) => {
    if (!isEventType(t)) {
      throw badRequest(
        `${field}[${i}] is not a known event type (GET /v1/webhooks/event-types)`,
        [
          { path: [field, i], message: "unknown event type" },
        ],
      );
    }
  });
  return [...new Set(types)].sort();
}

async function sealSecret(svc: Services, endpoint: Pick<WebhookEndpoint, "id" | "tenant_id">) {
  const secret = newWebhookSecret();
  const sealed = await svc.vault.seal(
    svc.kv,
    endpoint.tenant_id,
    new TextEncoder().encode(secret),
    aadOf(endpoint),
  );
  return { secret, sealed };
}

/** The secrets that sign at `now`, opened. */
export async function openSecrets(
  svc: Services,
  e: WebhookEndpoint,
  now: number,
): Promise<string[]> {
  const opened = await Promise.all(
    liveSecrets(e, now).map((s) => svc.vault.open(svc.kv, e.tenant_id, s.sealed, aadOf(e))),
  );
  return opened.map((bytes) => new TextDecoder().decode(bytes));
}

const liveTenant = (tenant: Tenant | null) => {
  if (tenant?.status === "deleted") throw conflict("the tenant is deleted");
};

/** A plugin's endpoint follows its plugin: it is changed through /v1/admin/plugins only. */
const notOwned = (e: WebhookEndpoint) => {
  if (e.plugin_id) {
    throw conflict(`this endpoint belongs to plugin ${e.plugin_id}: change the plugin instead`);
  }
};

export interface NewEndpoint {
  url: string;
  description?: string | null;
  event_types?: string[];
  enabled?: boolean;
  metadata?: Record<string, string>;
}

const describe = {
  resource_type: "webhook",
  tenant_id: (e: WebhookEndpoint) => e.tenant_id,
  view: endpointView,
};

/**
 * A new endpoint record of `tenantId` (null: the platform) with its sealed secret, checked but
 * not stored: for a caller that commits it with a record of its own (a plugin's endpoint).
 */
export async function newEndpoint(
  svc: Services,
  actor: Actor,
  tenantId: string | null,
  input: NewEndpoint,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const types = eventTypes(input.event_types ?? []);
  await requireTarget(svc, input.url);
  const now = svc.now();
  const id = newId("whk", now);
  const { secret, sealed } = await sealSecret(svc, { id, tenant_id: tenantId });
  const endpoint: WebhookEndpoint = {
    id,
    tenant_id: tenantId,
    url: input.url,
    description: input.description ?? null,
    event_types: types,
    enabled: input.enabled ?? true,
    status: "active",
    disabled_reason: null,
    disabled_at: input.enabled === false ? iso(now) : null,
    metadata: input.metadata ?? {},
    secrets: [{ sealed, created_at: iso(now), expires_at: null }],
    created_by: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
    deleted_at: null,
  };
  return { endpoint, secret };
}

/** Creates an endpoint of `tenant` (null: the platform); the secret is returned this once. */
export async function createEndpoint(
  svc: Services,
  actor: Actor,
  tenant: Tenant | null,
  input: NewEndpoint,
): Promise<{ endpoint: Versioned<WebhookEndpoint>; secret: string }> {
  liveTenant(tenant);
  const tenantId = tenant?.id ?? null;
  const { endpoint, secret } = await newEndpoint(svc, actor, tenantId, input);
  const created = await createRecord(svc, actor, endpointTable(tenantId), endpoint, {
    ...describe,
    action: "webhook.created",
  });
  return { endpoint: created, secret };
}

/** A live endpoint of the scope, or 404. */
export async function getEndpoint(
  svc: Services,
  tenantId: string | null,
  id: string,
): Promise<Versioned<WebhookEndpoint>> {
  const found = await getRecord(svc.kv, endpointTable(tenantId), id);
  if (!found || found.value.status === "deleted") throw notFound("webhook endpoint");
  return found;
}

/** The scope's live endpoints, newest first. */
export function listEndpoints(
  svc: Services,
  tenantId: string | null,
  filter: { enabled?: boolean },
  page: PageRequest,
): Promise<Page<WebhookEndpoint> & Counted> {
  return listCounted<WebhookEndpoint>(svc.kv, {
    selector: { prefix: keys.webhookEndpoints(tenantId) },
    filter: (e) =>
      e.status === "active" && (filter.enabled === undefined || e.enabled === filter.enabled),
  }, { ...page, reverse: true });
}

export interface EndpointPatch {
  url?: string;
  description?: string | null;
  event_types?: string[];
  enabled?: boolean;
  metadata?: Record<string, string | null>;
}

function changeEndpoint(
  svc: Services,
  actor: Actor,
  tenantId: string | null,
  id: string,
  ifMatch: string | undefined,
  action: string,
  next: (e: WebhookEndpoint, now: number) => WebhookEndpoint,
): Promise<Versioned<WebhookEndpoint>> {
  return updateRecord(svc, actor, endpointTable(tenantId), {
    ...describe,
    id,
    noun: "webhook endpoint",
    ifMatch,
    action,
    apply: (e) => {
      if (e.status === "deleted") throw notFound("webhook endpoint");
      const now = svc.now();
      const after = next(e, now);
      if (JSON.stringify(after) === JSON.stringify(e)) return e;
      return { ...after, updated_at: iso(now) };
    },
    // Enabled again, or pointed elsewhere: the failure streak that may disable it starts over.
    extra: (op, before, after) => {
      if ((after.enabled && !before.enabled) || after.url !== before.url) {
        op.delete(keys.webhookHealth(tenantId, id));
      }
    },
  });
}

export async function updateEndpoint(
  svc: Services,
  actor: Actor,
  tenant: Tenant | null,
  id: string,
  patch: EndpointPatch,
  ifMatch?: string,
): Promise<Versioned<WebhookEndpoint>> {
  liveTenant(tenant);
  const types = patch.event_types && eventTypes(patch.event_types);
  if (patch.url !== undefined) await requireTarget(svc, patch.url);
  return changeEndpoint(
    svc,
    actor,
    tenant?.id ?? null,
    id,
    ifMatch,
    "webhook.updated",
    (e, now) => {
      notOwned(e);
      const enabled = patch.enabled ?? e.enabled;
      return {
        ...e,
        url: patch.url ?? e.url,
        description: patch.description === undefined ? e.description : patch.description,
        event_types: types ?? e.event_types,
        enabled,
        disabled_reason: enabled ? null : e.disabled_reason,
        disabled_at: enabled ? null : e.enabled ? iso(now) : e.disabled_at,
        metadata: patch.metadata ? mergeMap(e.metadata, patch.metadata) : e.metadata,
      };
    },
  );
}

/** Deletes softly: no more deliveries; the secrets are dropped, the record stays for the trail. */
export function deleteEndpoint(
  svc: Services,
  actor: Actor,
  tenantId: string | null,
  id: string,
  ifMatch?: string,
): Promise<Versioned<WebhookEndpoint>> {
  return changeEndpoint(svc, actor, tenantId, id, ifMatch, "webhook.deleted", (e, now) => {
    notOwned(e);
    return { ...e, status: "deleted", enabled: false, secrets: [], deleted_at: iso(now) };
  });
}

/**
 * A new current secret, returned this once; the previous one keeps signing for `graceSeconds`
 * (0: it stops now). Secrets whose grace is over are dropped.
 */
export async function rotateSecret(
  svc: Services,
  actor: Actor,
  tenant: Tenant | null,
  id: string,
  graceSeconds = DEFAULT_SECRET_GRACE_SECONDS,
  ifMatch?: string,
): Promise<{ endpoint: Versioned<WebhookEndpoint>; secret: string }> {
  liveTenant(tenant);
  const tenantId = tenant?.id ?? null;
  const { secret, sealed } = await sealSecret(svc, { id, tenant_id: tenantId });
  const endpoint = await changeEndpoint(
    svc,
    actor,
    tenantId,
    id,
    ifMatch,
    "webhook.secret_rotated",
    (e, now) => {
      const until = iso(now + graceSeconds * 1000);
      const kept = liveSecrets(e, now).map((s) => ({
        ...s,
        expires_at: s.expires_at === null || s.expires_at > until ? until : s.expires_at,
      }));
      return {
        ...e,
        secrets: [
          { sealed, created_at: iso(now), expires_at: null },
          ...(graceSeconds > 0 ? kept : []),
        ],
      };
    },
  );
  return { endpoint, secret };
}

/**
 * Turns an endpoint off on Steward's own authority (it answered 410, or failed for days): one
 * commit with the audit event and the `webhook.endpoint_disabled` event. Null when it was
 * already disabled or deleted meanwhile.
 */
export async function disableEndpoint(
  svc: Services,
  tenantId: string | null,
  id: string,
  reason: DisabledReason,
): Promise<Versioned<WebhookEndpoint> | null> {
  let disabled = false;
  try {
    const after = await changeEndpoint(
      svc,
      SYSTEM_ACTOR,
      tenantId,
      id,
      undefined,
      "webhook.endpoint_disabled",
      (e, now) => {
        disabled = e.enabled;
        return e.enabled
          ? { ...e, enabled: false, disabled_reason: reason, disabled_at: iso(now) }
          : e;
      },
    );
    return disabled ? after : null;
  } catch (err) {
    if (err instanceof AppError && err.code === "NOT_FOUND") return null;
    throw err;
  }
}

/** An owner's endpoints' signing secrets, as a data key rotation re-seals them (vault/reseal.ts). */
export async function* sealedEndpointSecrets(
  kv: Deno.Kv,
  owner: KeyOwner,
): AsyncGenerator<SealedRecord<WebhookEndpoint>> {
  for await (const entry of kv.list<WebhookEndpoint>({ prefix: keys.webhookEndpoints(owner) })) {
    yield {
      entry,
      fields: entry.value.secrets.map((s) => ({ sealed: s.sealed, aad: aadOf(entry.value) })),
      with: (sealed) => ({
        ...entry.value,
        secrets: entry.value.secrets.map((s, i) => ({ ...s, sealed: sealed[i] })),
      }),
    };
  }
}
