/**
 * In-process variants taking turns (bench/chain.ts, bench/ab_chain.ts): each runs a batch of
 * requests, built and their bodies read, the order reversed every round, so a slow spell of the
 * machine falls on every variant alike. No network: only the JavaScript a request runs.
 */

/** Answers the `i`-th request of a batch. */
export type Fetch = (i: number) => Response | Promise<Response>;

/**
 * Runs `rounds` rounds of `batch` requests a variant, the first two as warm-up, printing each
 * round. Returns each variant's µs a request, measured round by measured round.
 */
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
  const perRequest = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    for (const [name, fetch] of round % 2 ? variants : [...variants].reverse()) {
      const started = performance.now();
      for (let i = 0; i < batch; i++) await (await fetch(i)).arrayBuffer();
      const us = ((performance.now() - started) * 1000) / batch;
      if (round > 2) perRequest.get(name)!.push(us);
      line.push(`${name} ${us.toFixed(2)} µs`);
    }
    console.log(`round ${round}${round <= 2 ? " (warm-up)" : ""}: ${line.join(", ")}`);
  }
  return perRequest;
}
