/**
 * Quota thresholds: when a tenant's use crosses 80 % and 100 % of its plan's quota, a
 * `usage.threshold_reached` domain event (percent, used, limit, period) goes out — once per
 * threshold per period, across every process (a KV marker is checked in the event's commit).
 * Verify reports each VALID call here synchronously; the gate looks at a tenant at most once
 * per `intervalMs` and writes in the background, so the hot path never waits on it.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { emitEvent } from "../audit/events.ts";
import type { Services } from "../shared/services.ts";

export const THRESHOLDS = [80, 100] as const;
/** Tenants tracked at once; beyond it the oldest are forgotten (they are simply re-checked). */
export const MAX_TRACKED = 100_000;

export interface GateStats {
  enabled: boolean;
  interval_ms: number;
  allowed: number;
  skipped_throttled: number;
  skipped_disabled: number;
  evicted_entries: number;
  tracked_tenants: number;
}

export class ThresholdGate {
  readonly #svc: Services;
  readonly #intervalMs: number;
  /** Per tenant: when it was last looked at, and the thresholds already announced, by period. */
  readonly #tenants = new Map<string, { at: number; period: string; done: Set<number> }>();
  readonly stats: GateStats;

  constructor(svc: Services, opts: { intervalMs: number; enabled?: boolean }) {
    this.#svc = svc;
    this.#intervalMs = opts.intervalMs;
    this.stats = {
      enabled: opts.enabled ?? true,
      interval_ms: opts.intervalMs,
      allowed: 0,
      skipped_throttled: 0,
      skipped_disabled: 0,
      evicted_entries: 0,
      tracked_tenants: 0,
    };
  }

  /** A tenant's use now; announces the thresholds it crossed. Never throws, never waits. */
  observe(tenantId: string, used: number, limit: number | null, period: { label: string }) {
    if (!this.stats.enabled || limit === null) {
      this.stats.skipped_disabled++;
      return;
    }
    const now = this.#svc.now();
    let seen = this.#tenants.get(tenantId);
    if (seen && seen.period === period.label && now - seen.at < this.#intervalMs) {
      this.stats.skipped_throttled++;
      return;
    }
    this.stats.allowed++;
    if (!seen || seen.period !== period.label) {
      seen = { at: now, period: period.label, done: new Set() };
      this.#remember(tenantId, seen);
    }
    seen.at = now;
    const percent = (used / limit) * 100;
    for (const threshold of THRESHOLDS) {
      if (percent < threshold || seen.done.has(threshold)) continue;
      seen.done.add(threshold);
      void this.#announce(tenantId, threshold, used, limit, period.label).catch(() => {
        seen!.done.delete(threshold); // try again at the next look
      });
    }
  }

  #remember(tenantId: string, entry: { at: number; period: string; done: Set<number> }) {
    this.#tenants.delete(tenantId);
    this.#tenants.set(tenantId, entry);
    if (this.#tenants.size > MAX_TRACKED) {
      this.#tenants.delete(this.#tenants.keys().next().value!);
      this.stats.evicted_entries++;
    }
    this.stats.tracked_tenants = this.#tenants.size;
  }

  /** Writes the event with its once-per-period marker; another process may have done it. */
  async #announce(
    tenantId: string,
    threshold: number,
    used: number,
    limit: number,
    period: string,
  ) {
    const marker = keys.thresholdReached(tenantId, period, threshold);
    const op = this.#svc.kv.atomic()
      .check({ key: marker, versionstamp: null })
      .set(marker, { used, at: this.#svc.now() });
    emitEvent(op, this.#svc.now(), {
      type: "usage.threshold_reached",
      tenant_id: tenantId,
      data: {
        tenant_id: tenantId,
        metric: "verifications",
        percent: threshold,
        used,
        limit,
        period,
      },
    });
    await commit(op);
  }
}
