/**
 * Verify's own work alone, no HTTP: `Verifier.verify` and the request counter on 1,000 warm
 * keys of bench/verify.ts's tenant, called in a loop. Then the same calls with other memory
 * touched before each one (BENCH_TOUCH_KB, 1 MB by default), as a served request's network work
 * and answer do, next to the touching alone. Their difference is what a call costs once its data
 * has left the CPU's caches: the warm path is a few dozen `Map` probes and objects, so its cost
 * depends on where they sit more than on the instructions it runs (bench/RESULTS.md).
 *
 *   deno task bench:verify-call
 *
 * Settings: BENCH_ROUNDS (12, the first two are warm-up), BENCH_BATCH (10,000 calls),
 * BENCH_TOUCH_KB (1,024).
 */
import { setup } from "../tests/_harness.ts";
import { keyFor } from "../tests/keys/_keys.ts";
import { Verifier } from "../domain/keys/verify.ts";
import { recordRequest } from "../domain/usage/activity.ts";
import { median, setting, unlimitedTenant } from "./_load.ts";
import { turns } from "./_race.ts";

const ROUNDS = setting("BENCH_ROUNDS", 12, 3, 100);
const BATCH = setting("BENCH_BATCH", 10_000, 1_000, 1_000_000);
const TOUCH_KB = setting("BENCH_TOUCH_KB", 1_024, 4, 65_536);

await using h = await setup();
h.quotas.start();
const tenant = await unlimitedTenant(h, h.root, "bench");
const verifier = new Verifier(h.svc, h.svc.counters, { quotas: h.quotas });
const requests: { key: string }[] = [];
for (let i = 0; i < 1_000; i++) {
  const { key } = await keyFor(h, tenant);
  // A parsed body's own string, as a request's is: not the one the key was made with.
  requests.push(JSON.parse(JSON.stringify({ key })));
  await verifier.verify(requests[i]);
}

/** One cache line in every 64 bytes, read and written. */
const memory = new Int32Array((TOUCH_KB * 1024) / 4);
function touch(): number {
  let sum = 0;
  for (let i = 0; i < memory.length; i += 16) sum += memory[i]++;
  return sum;
}

let valid = 0;
let waits = 0;
/** A call; a promise only when it waits for a quota lease (a warm key needs no read). */
function call(i: number): Promise<void> | undefined {
  recordRequest(h.svc.counters, "tok_bench", h.svc.now());
  const verdict = verifier.verify(requests[i % requests.length]);
  if (!(verdict instanceof Promise)) return void (verdict.valid && valid++);
  waits++;
  return verdict.then((v) => void (v.valid && valid++));
}

const perCall = await turns(
  [
    ["a verify call", call],
    [`touching ${TOUCH_KB} KB`, touch],
    [`touching ${TOUCH_KB} KB, then a verify call`, (i) => (touch(), call(i))],
  ],
  ROUNDS,
  BATCH,
);
const us = (name: string) => median(perCall.get(name)!);
const [alone, touching, both] = [...perCall.keys()].map(us);
console.log(
  `\nmedian µs a call: a verify call ${alone.toFixed(2)}; touching ${TOUCH_KB} KB ` +
    `${touching.toFixed(2)}; both ${both.toFixed(2)}` +
    `\na verify call after the touching: ${(both - touching).toFixed(2)} µs ` +
    `(${((both - touching) / alone).toFixed(1)} × the call alone); ${valid} VALID answers, ` +
    `${waits} waited for a quota lease`,
);
await h.quotas.stop();
