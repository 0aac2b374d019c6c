/**
 * Writes the OpenAPI document Steward serves to a file (default data/openapi.json), for linters
 * and client generators: `deno task openapi:lint` runs Redocly's recommended rules on it.
 */
import { setup } from "../tests/_harness.ts";

const out = Deno.args[0] ?? "data/openapi.json";
await using h = await setup();
const doc = await h.call("GET", "/openapi.json");
if (doc.status !== 200) throw new Error(`GET /openapi.json: ${doc.status}`);
await Deno.mkdir(out.split("/").slice(0, -1).join("/") || ".", { recursive: true });
await Deno.writeTextFile(out, doc.text);
console.log(`wrote ${out}`);
