/**
 * A process's IP guard: the check every request passes before anything else (is its source
 * address blocked?), and the tally of what each address did, added to its reputation every
 * second (protection/ip_reputation.ts).
 *
 * The blocks and the allowlist are held in memory (protection/ip_rules.ts) and reloaded whenever
 * `ip_rules_version` changes: each process watches it, so a block made anywhere is enforced
 * everywhere within a watch round trip. With no block at all, the check reads nothing.
 */
import { keys } from "../../kv/keys.ts";
import { canonicalIp } from "../shared/ip_address.ts";
import type { Services } from "../shared/services.ts";
import {
  type Activity,
  type ActivityKind,
  addActivity,
  noActivity,
  type ReputationSettings,
} from "./ip_reputation.ts";
import { type BlockInForce, IpRules, loadIpRules } from "./ip_rules.ts";

/** Addresses tallied between two flushes at most; a full tally is flushed at once. */
export const MAX_TALLIED_ADDRESSES = 10_000;
/** Records written together in a flush. */
const FLUSH_CONCURRENCY = 20;

export class IpGuard {
  readonly rules = new IpRules();
  #tally = new Map<string, Activity>();
  #flushing: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #watch: ReadableStreamDefaultReader<unknown> | null = null;
  #stopped = false;

  constructor(
    private readonly svc: Services,
    /** Read at each flush: the runtime configuration may change it. */
    readonly settings: ReputationSettings,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** How many addresses the tally holds now (for the bound's test). */
  get tallied(): number {
    return this.#tally.size;
  }

  /** The block in force on the request's address (counted as refused), or null. */
  refuse(ip: string | null): BlockInForce | null {
    if (!ip || !this.rules.blocking) return null;
    const canonical = canonicalIp(ip);
    const block = canonical ? this.rules.blockOf(canonical, this.svc.now()) : null;
    if (block) this.#count(canonical!, "blocked_requests");
    return block;
  }

  /** Counts something the address did (a failed login, a 4xx answer…). */
  note(ip: string | null, kind: ActivityKind): void {
    const canonical = ip && canonicalIp(ip);
    if (canonical) this.#count(canonical, kind);
  }

  #count(ip: string, kind: ActivityKind) {
    let activity = this.#tally.get(ip);
    if (!activity) {
      if (this.#tally.size >= MAX_TALLIED_ADDRESSES) {
        // Full: written now, and this event is dropped rather than the bound broken.
        void this.flush().catch(this.onError);
        return;
      }
      this.#tally.set(ip, activity = noActivity());
    }
    activity[kind]++;
  }

  /** Adds the tally to the reputation records (one flush at a time); auto-blocks take effect. */
  flush(): Promise<void> {
    // A failed flush (reported to its caller) does not stop the next.
    this.#flushing = this.#flushing.catch(() => {}).then(async () => {
      const batch = [...this.#tally];
      this.#tally = new Map();
      for (let i = 0; i < batch.length; i += FLUSH_CONCURRENCY) {
        await Promise.all(
          batch.slice(i, i + FLUSH_CONCURRENCY).map(async ([ip, activity]) => {
            const block = await addActivity(this.svc, ip, activity, this.settings, this.rules);
            if (block) this.rules.add(block);
          }),
        );
      }
    });
    return this.#flushing;
  }

  /** Reads the blocks and the allowlist again. */
  async reload(): Promise<void> {
    const { blocks, allowlist } = await loadIpRules(this.svc);
    this.rules.replace(blocks, allowlist);
  }

  /** Loads the rules, follows their changes, and flushes every `flushIntervalMs`. */
  async start(flushIntervalMs: number): Promise<void> {
    await this.reload();
    this.#timer = setInterval(() => this.flush().catch(this.onError), flushIntervalMs);
    void this.#follow();
  }

  async #follow(): Promise<void> {
    while (!this.#stopped) {
      try {
        this.#watch = this.svc.kv.watch([keys.ipRulesVersion()]).getReader();
        // The first answer is the version now; each next one is a change.
        while (!(await this.#watch.read()).done) await this.reload();
      } catch (err) {
        if (this.#stopped) return;
        this.onError(err);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  /** Stops following and writes what is tallied. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#watch?.cancel().catch(() => {});
    await this.flush();
  }
}
