/**
 * A plugin's health: its endpoint's state and its latest deliveries (each with its newest
 * attempt), from the webhook records; and its latest hook calls, as this process remembers them
 * (plugins/hooks.ts). Latencies are summarised as the mean and the maximum over what is shown.
 */
import { keys } from "../../kv/keys.ts";
import { listPage } from "../../kv/list.ts";
import { getRecord } from "../../kv/table.ts";
import type { Services } from "../shared/services.ts";
import type { EndpointHealth } from "../webhooks/endpoints.ts";
import { endpointTable } from "../webhooks/endpoints.ts";
import type { WebhookAttempt, WebhookMessage } from "../webhooks/messages.ts";
import { type HookCall, PluginHooks } from "./hooks.ts";
import { getPlugin } from "./plugins.ts";
import { iso } from "../shared/time.ts";

/** How many of the newest deliveries the report shows. */
export const RECENT_DELIVERIES = 20;

export interface DeliverySummary {
  message_id: string;
  event_type: string;
  status: WebhookMessage["status"];
  attempts: number;
  last_attempt_at: string | null;
  /** The newest attempt's HTTP status (0: no answer); null before the first attempt. */
  response_status_code: number | null;
  duration_ms: number | null;
  error: string | null;
}

const latency = (values: number[]) => ({
  avg_latency_ms: values.length
    ? Math.round(values.reduce((a, b) => a + b, 0) / values.length)
    : null,
  max_latency_ms: values.length ? Math.max(...values) : null,
});

async function newestAttempt(kv: Deno.Kv, messageId: string): Promise<WebhookAttempt | null> {
  const iter = kv.list<WebhookAttempt>(
    { prefix: keys.webhookAttempts(null, messageId) },
    { reverse: true, limit: 1 },
  );
  for await (const e of iter) return e.value;
  return null;
}

async function deliveries(svc: Services, endpointId: string) {
  const page = await listPage<WebhookMessage>(svc.kv, {
    selector: { prefix: keys.webhookMessages(null, endpointId) },
  }, { limit: RECENT_DELIVERIES, reverse: true });
  const recent: DeliverySummary[] = await Promise.all(page.items.map(async ({ value: m }) => {
    const attempt = await newestAttempt(svc.kv, m.id);
    return {
      message_id: m.id,
      event_type: m.event_type,
      status: m.status,
      attempts: m.attempts,
      last_attempt_at: m.last_attempt_at,
      response_status_code: attempt?.response_status_code ?? null,
      duration_ms: attempt?.duration_ms ?? null,
      error: attempt?.error ?? m.failure_reason,
    };
  }));
  const count = (s: WebhookMessage["status"]) => recent.filter((d) => d.status === s).length;
  return {
    shown: recent.length,
    succeeded: count("succeeded"),
    failed: count("failed"),
    pending: count("pending"),
    ...latency(recent.flatMap((d) => d.duration_ms === null ? [] : [d.duration_ms])),
    recent,
  };
}

function hookCalls(recent: HookCall[]) {
  const count = (o: HookCall["outcome"]) => recent.filter((c) => c.outcome === o).length;
  return {
    shown: recent.length,
    allowed: count("allowed"),
    vetoed: count("vetoed"),
    failed: count("failed"),
    ...latency(recent.map((c) => c.latency_ms)),
    recent,
  };
}

export async function pluginHealth(svc: Services, id: string) {
  const { value: plugin } = await getPlugin(svc, id);
  const [endpoint, streak] = await Promise.all([
    getRecord(svc.kv, endpointTable(null), plugin.endpoint_id),
    svc.kv.get<EndpointHealth>(keys.webhookHealth(null, plugin.endpoint_id)),
  ]);
  const e = endpoint?.value;
  return {
    plugin_id: plugin.id,
    enabled: plugin.enabled,
    endpoint: {
      id: plugin.endpoint_id,
      enabled: e?.status === "active" && e.enabled,
      disabled_reason: e?.disabled_reason ?? null,
      failing_since: streak.value ? iso(streak.value.failing_since) : null,
    },
    deliveries: await deliveries(svc, plugin.endpoint_id),
    hooks: hookCalls(svc.hooks instanceof PluginHooks ? svc.hooks.recent(plugin.id) : []),
  };
}
