/**
 * In-process variants taking turns (bench/chain.ts, bench/ab_chain.ts, bench/verify_call.ts):
 * each runs a batch, the order reversed every round, so a slow spell of the machine falls on
 * every variant alike. No network: only the JavaScript each runs.
 */

/** Runs the `i`-th step of a batch; a promise is awaited before the next. */
export type Step = (i: number) => unknown;

/** Answers the `i`-th request of a batch. */
export type Fetch = (i: number) => Response | Promise<Response>;

/**
 * Runs `rounds` rounds of `batch` steps a variant, the first two as warm-up, printing each
 * round. Returns each variant's µs a step, measured round by measured round.
 */
export async function turns(
  variants: [string, Step][],
  rounds: number,
  batch: number,
): Promise<Map<string, number[]>> {
  const perStep = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    for (const [name, step] of round % 2 ? variants : [...variants].reverse()) {
      const started = performance.now();
      for (let i = 0; i < batch; i++) {
        const waiting = step(i);
        if (waiting instanceof Promise) await waiting;
      }
      const us = ((performance.now() - started) * 1000) / batch;
      if (round > 2) perStep.get(name)!.push(us);
      line.push(`${name} ${us.toFixed(2)} µs`);
    }
    console.log(`round ${round}${round <= 2 ? " (warm-up)" : ""}: ${line.join(", ")}`);
    // Timers (quota leases, flushes) run between batches, as they do between requests.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return perStep;
}

/** turns() for requests: each answer checked once, then each request built and its body read. */
export async function race(
  variants: [string, Fetch][],
  rounds: number,
  batch: number,
): Promise<Map<string, number[]>> {
  for (const [name, fetch] of variants) {
    const res = await fetch(0);
    if (res.status !== 200) throw new Error(`${name}: ${res.status} ${await res.text()}`);
    console.log(`${name}: 200, ${(await res.arrayBuffer()).byteLength} bytes`);
  }
  return await turns(
    variants.map(([name, fetch]) => [name, async (i) => await (await fetch(i)).arrayBuffer()]),
    rounds,
    batch,
  );
}
