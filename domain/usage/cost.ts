/**
 * What running Steward costs in a month (GET /v1/admin/cost). Modeled from what Steward counts
 * itself — requests answered, KV read and write units (kv/metered.ts), the size of the KV
 * file — at configured unit prices; or, when COST_LIVE_URL is set and answers, taken from that
 * billing source, falling back to the model (with the reason) when it fails. Each period's
 * answer is kept 10 minutes (a fallback 1 minute, so a recovered source is asked again soon).
 */
import { z } from "@hono/zod-openapi";
import { storeSize } from "../../kv/open.ts";
import { badRequest } from "../shared/errors.ts";
import { type Services } from "../shared/services.ts";
import { dailyTraffic } from "./traffic.ts";
import { dayOf, iso, monthRange } from "../shared/time.ts";

const CACHE_MS = 10 * 60_000;
const FALLBACK_CACHE_MS = 60_000;
/** Reports cached at most: any past month may be asked for, so the oldest asked go first. */
export const MAX_CACHED_PERIODS = 36;
const GIB = 2 ** 30;

export interface CostSettings {
  currency: string;
  /** Per million requests, read units and write units; per GiB stored for a month. */
  prices: { requests: number; kv_reads: number; kv_writes: number; storage_gib_month: number };
  /** The KV store's path (STEWARD_KV_PATH): its file sizes are the storage measured. */
  storePath: string;
  live: { url: string; token: string | null; timeoutMs: number } | null;
}

export type Confidence = "high" | "medium" | "low";

export interface CostReport {
  period: string;
  cost_source: "live" | "modeled";
  cost_confidence: Confidence;
  fetched_at: string;
  cache_age_ms: number;
  cost: {
    requests_cost: number;
    kv_read_cost: number;
    kv_write_cost: number;
    storage_cost: number;
    total_cost: number;
    currency: string;
  };
  fallback_reason: string | null;
  /** What the model counts (also shown for a live answer, to compare). */
  usage: { requests: number; kv_reads: number; kv_writes: number; stored_bytes: number | null };
  unit_prices: CostSettings["prices"] & { currency: string };
}

/** What a live billing source answers for a period (`GET <COST_LIVE_URL>?period=YYYY-MM`). */
const LiveCost = z.object({
  requests_cost: z.number().nonnegative(),
  kv_read_cost: z.number().nonnegative(),
  kv_write_cost: z.number().nonnegative(),
  storage_cost: z.number().nonnegative(),
  total_cost: z.number().nonnegative(),
  currency: z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code"),
});

/** Amounts are kept to the millionth of the currency unit. */
const micros = (amount: number) => Math.round(amount * 1e6) / 1e6;

export class CostReports {
  readonly #svc: Services;
  readonly #settings: CostSettings;
  readonly #cache = new Map<string, { report: CostReport; at: number; ttl: number }>();

  constructor(svc: Services, settings: CostSettings) {
    this.#svc = svc;
    this.#settings = settings;
  }

  /** Periods whose report is cached (for the bound's test). */
  get cachedPeriods(): number {
    return this.#cache.size;
  }

  /** The report of `period` (YYYY-MM, not after the current month), from cache when fresh. */
  async report(period: string): Promise<CostReport> {
    const now = this.#svc.now();
    if (period > dayOf(now).slice(0, 7)) {
      throw badRequest("the period has not begun", [{
        path: ["query", "period"],
        message: "after the current month",
      }]);
    }
    const cached = this.#cache.get(period);
    if (cached && now - cached.at < cached.ttl) {
      return { ...cached.report, cache_age_ms: now - cached.at };
    }
    const report = await this.#build(period, now);
    const ttl = report.fallback_reason ? FALLBACK_CACHE_MS : CACHE_MS;
    this.#cache.delete(period);
    this.#cache.set(period, { report, at: now, ttl });
    if (this.#cache.size > MAX_CACHED_PERIODS) this.#cache.delete(this.#cache.keys().next().value!);
    return report;
  }

  async #build(period: string, now: number): Promise<CostReport> {
    const { prices, currency } = this.#settings;
    const range = monthRange(period, now);
    const traffic = (await dailyTraffic(this.#svc, ["requests", "kv_reads", "kv_writes"], range))
      .totals;
    const stored = await storeSize(this.#settings.storePath);
    const usage = {
      requests: traffic.requests,
      kv_reads: traffic.kv_reads,
      kv_writes: traffic.kv_writes,
      stored_bytes: stored,
    };
    const modeled = {
      requests_cost: micros(usage.requests * prices.requests / 1e6),
      kv_read_cost: micros(usage.kv_reads * prices.kv_reads / 1e6),
      kv_write_cost: micros(usage.kv_writes * prices.kv_writes / 1e6),
      storage_cost: micros((stored ?? 0) / GIB * prices.storage_gib_month),
    };
    const base = {
      period,
      fetched_at: iso(now),
      cache_age_ms: 0,
      usage,
      unit_prices: { ...prices, currency },
    };
    let fallback: string | null = null;
    if (this.#settings.live) {
      const live = await this.#fetchLive(period);
      if (typeof live !== "string") {
        return {
          ...base,
          cost_source: "live",
          cost_confidence: "high",
          cost: live,
          fallback_reason: null,
        };
      }
      fallback = live;
    }
    // Storage is today's size: only the current month's figure is measured for its period.
    const current = period === dayOf(now).slice(0, 7);
    return {
      ...base,
      cost_source: "modeled",
      cost_confidence: stored !== null && current ? "medium" : "low",
      cost: {
        ...modeled,
        total_cost: micros(
          modeled.requests_cost + modeled.kv_read_cost + modeled.kv_write_cost +
            modeled.storage_cost,
        ),
        currency,
      },
      fallback_reason: fallback,
    };
  }

  /** The live source's answer, or why there is none. */
  async #fetchLive(period: string): Promise<CostReport["cost"] | string> {
    const live = this.#settings.live!;
    const url = new URL(live.url);
    url.searchParams.set("period", period);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), live.timeoutMs);
    try {
      const res = await fetch(url, {
        headers: {
          Accept: "application/json",
          ...(live.token ? { Authorization: `Bearer ${live.token}` } : {}),
        },
        signal: abort.signal,
      });
      if (!res.ok) {
        await res.body?.cancel();
        return `the live cost source answered ${res.status}`;
      }
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        return "the live cost source answered something that is not JSON";
      }
      const parsed = LiveCost.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return `the live cost source answered an unexpected shape: ${
          issue.path.join(".") || "body"
        }: ${issue.message}`;
      }
      return parsed.data;
    } catch (err) {
      return abort.signal.aborted
        ? `the live cost source did not answer within ${live.timeoutMs} ms`
        : `the live cost source could not be reached: ${(err as Error).message}`;
    } finally {
      clearTimeout(timer);
    }
  }
}
