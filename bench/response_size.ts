/**
 * What a response's size costs Deno's HTTP server: `GET /size/{n}` on the plain Hono baseline
 * (bench/plain_hono.ts) answering n bytes and nothing else, for sizes on both sides of 512 bytes
 * of head and body together, each as a ratio to the smallest, all in one run. It explains the
 * verify benchmark's ceiling: plain Hono's JSON answer fits in one 512-byte write, a verify
 * answer with the fields it must carry does not (bench/RESULTS.md, "the 512-byte cliff").
 *
 *   deno task bench:size                          # wrk -t2 -c50 -d10s, one round
 *   BENCH_ROUNDS=3 deno task bench:size
 *
 * Settings as bench/http.ts. Needs wrk.
 */
import { LISTENING } from "../tests/_server.ts";
import { allAnswered, baselineServer, benchmark, loadTargets, type Target } from "./_load.ts";

const BODY_BYTES = [100, 300, 360, 400, 650];

/** The whole response as it goes on the wire (status line, head and body), in bytes. */
async function wireBytes(port: number, path: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    let total = 0;
    const buf = new Uint8Array(4096);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
    return total;
  } finally {
    conn.close();
  }
}

Deno.exit(
  await benchmark(async (_dir, servers) => {
    const plain = baselineServer(servers, "bench/plain_hono.ts");
    await plain.waitForStdout(LISTENING, "the listening line");
    const targets: Target[] = [];
    for (const bytes of BODY_BYTES) {
      const path = `/size/${bytes}`;
      const wire = await wireBytes(plain.port, path);
      targets.push({ name: `${bytes} body bytes (${wire} on the wire)`, url: plain.url + path });
    }
    const summary = await loadTargets(targets, "");
    console.log();
    for (const s of summary) {
      console.log(`${s.name.padEnd(34)} ÷ smallest = ${(s.rps / summary[0].rps).toFixed(2)}`);
    }
    return allAnswered(summary);
  }),
);
