/** Dependency checks behind the health endpoints: each probe timed, failures reported, never thrown. */
import { keys } from "../../kv/keys.ts";
import type { VaultState } from "../shared/services.ts";

export interface Probe {
  name: string;
  check: () => Promise<void>;
}

export interface CheckResult {
  status: "ok" | "failing";
  latency_ms: number;
  error?: string;
}

const instance = crypto.randomUUID();

/**
 * Writes and reads back a scratch key: proves the store answers both. `remove` deletes it after
 * (the operators' report proves deletes too; /health leaves it to expire).
 */
export function kvProbe(kv: Deno.Kv, opts: { remove?: boolean } = {}): Probe {
  return {
    name: "kv",
    check: async () => {
      const key = keys.healthProbe(instance);
      const stamp = Date.now();
      await kv.set(key, stamp, { expireIn: 60_000 });
      if ((await kv.get<number>(key)).value !== stamp) {
        throw new Error("read did not return the write");
      }
      if (opts.remove) await kv.delete(key);
    },
  };
}

/** Fails while the vault is sealed: secrets, signing keys and webhook secrets cannot be used. */
export function vaultProbe(state: VaultState): Probe {
  return {
    name: "vault",
    check: () =>
      state.sealed
        ? Promise.reject(new Error("sealed: set STEWARD_MASTER_KEY"))
        : Promise.resolve(),
  };
}

async function timed(check: () => Promise<void>): Promise<CheckResult> {
  const started = performance.now();
  const latency = () => Math.round((performance.now() - started) * 100) / 100;
  try {
    await check();
    return { status: "ok", latency_ms: latency() };
  } catch (err) {
    return { status: "failing", latency_ms: latency(), error: (err as Error).message };
  }
}

/** Runs every probe at once; the names of failing ones come back alongside. */
export async function runChecks(probes: Probe[]) {
  const results = await Promise.all(probes.map((p) => timed(p.check)));
  const checks = Object.fromEntries(probes.map((p, i) => [p.name, results[i]]));
  const failing = probes.filter((_, i) => results[i].status !== "ok").map((p) => p.name);
  return { checks, failing };
}
