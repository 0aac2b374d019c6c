/**
 * The layering of ARCHITECTURE.md, checked on the source: `routes → domain → kv | pg`, one
 * folder per bounded context under domain/ with no cycle between them, and domain code that
 * neither speaks HTTP nor reads the environment.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SPECIFIER =
  /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']/g;

interface Source {
  /** Path from the repository root, e.g. `domain/keys/verify.ts`. */
  path: string;
  text: string;
  /** What it imports: repository paths for relative imports, bare specifiers as written. */
  imports: string[];
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts") || entry.name.endsWith(".tsx")) yield path;
  }
}

function resolve(from: string, specifier: string): string {
  if (!specifier.startsWith(".")) return specifier;
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

async function sources(...dirs: string[]): Promise<Source[]> {
  const found: Source[] = [];
  for (const dir of dirs) {
    for await (const path of walk(dir)) {
      const text = await Deno.readTextFile(`${ROOT}${path}`);
      const imports = [...text.matchAll(SPECIFIER)].map(([, s]) => resolve(path, s));
      found.push({ path, text, imports });
    }
  }
  return found;
}

const all = await sources("domain", "routes", "kv", "pg", "clients");
const layer = (path: string) => path.split("/")[0];
/** `domain/keys/verify.ts` → `keys`. */
const context = (path: string) => path.split("/")[1];

function violations(from: string, forbidden: (target: string) => boolean): string[] {
  return all.filter((s) => layer(s.path) === from).flatMap((s) =>
    s.imports.filter(forbidden).map((t) => `${s.path} → ${t}`)
  );
}

Deno.test("layers: domain, kv and pg never import routes", () => {
  for (const from of ["domain", "kv", "pg"]) {
    assert.deepEqual(violations(from, (t) => t.startsWith("routes/")), [], from);
  }
});

Deno.test("layers: kv imports neither domain nor pg; pg imports neither domain nor kv", () => {
  assert.deepEqual(violations("kv", (t) => /^(domain|pg)\//.test(t)), []);
  assert.deepEqual(violations("pg", (t) => /^(domain|kv)\//.test(t)), []);
});

// Domain code may validate with zod, whose one copy comes through @hono/zod-openapi.
Deno.test("layers: clients are for Steward's users and import none of Steward's code", () => {
  const steward = ["domain", "routes", "kv", "pg", "tests", "main.ts", "serve.ts", "config.ts"];
  assert.deepEqual(violations("clients", (t) => steward.includes(layer(t))), []);
});

Deno.test("layers: domain speaks no HTTP and reads no configuration or environment", () => {
  const http = violations("domain", (t) => /^hono(\/|$)|^(config|main|serve)\.ts$/.test(t));
  assert.deepEqual(http, []);
  const env = all.filter((s) => layer(s.path) === "domain" && /\bDeno\.env\b/.test(s.text));
  assert.deepEqual(env.map((s) => s.path), []);
});

// Hono's `c.var` builds a new object from the context's map on every read; a dozen reads a
// request cost a third of a cheap route's throughput (bench/RESULTS.md, 2026-12-07).
Deno.test("speed: routes read context variables with c.get, never c.var", () => {
  const slow = all.filter((s) => layer(s.path) === "routes" && /\bc\.var\./.test(s.text));
  assert.deepEqual(slow.map((s) => s.path), []);
});

Deno.test("contexts: every domain module lives in a context folder", () => {
  const loose = all.filter((s) => layer(s.path) === "domain" && s.path.split("/").length !== 3);
  assert.deepEqual(loose.map((s) => s.path), []);
});

Deno.test("contexts: shared imports no other context", () => {
  const shared = all.filter((s) => s.path.startsWith("domain/shared/"));
  const out = shared.flatMap((s) =>
    s.imports.filter((t) => t.startsWith("domain/") && context(t) !== "shared")
      .map((t) => `${s.path} → ${t}`)
  );
  assert.deepEqual(out, []);
});

Deno.test("contexts: no import cycle between context folders (type imports count)", () => {
  const edges = new Map<string, Map<string, string[]>>();
  for (const s of all.filter((s) => layer(s.path) === "domain")) {
    for (const t of s.imports.filter((t) => t.startsWith("domain/"))) {
      const [a, b] = [context(s.path), context(t)];
      if (a === b) continue;
      if (!edges.has(a)) edges.set(a, new Map());
      const why = edges.get(a)!;
      why.set(b, [...why.get(b) ?? [], `${s.path} → ${t}`]);
    }
  }
  // Depth-first search; a back edge closes a cycle, reported with the imports that make it.
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    state.set(node, "open");
    for (const next of edges.get(node)?.keys() ?? []) {
      if (state.get(next) === "open") {
        const loop = [...path.slice(path.indexOf(next)), node, next];
        const because = loop.slice(0, -1).map((a, i) => edges.get(a)!.get(loop[i + 1])![0]);
        cycles.push(`${loop.join(" → ")} (${because.join("; ")})`);
      } else if (!state.has(next)) visit(next, [...path, node]);
    }
    state.set(node, "done");
  };
  for (const node of edges.keys()) if (!state.has(node)) visit(node, []);
  assert.deepEqual(cycles, []);
});
