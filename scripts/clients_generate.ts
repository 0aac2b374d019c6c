/**
 * `deno task clients:generate`: writes the clients' generated types from what Steward serves,
 * in-process (as scripts/openapi.ts gets the document): `clients/typescript/schema.gen.ts` from
 * `GET /openapi.json`, and `clients/webhooks/events.gen.ts` from `GET /v1/webhooks/event-types`.
 * tests/clients/generated_test.ts compares the committed files with `generatedFiles()`.
 */
import { setup } from "../tests/_harness.ts";
import { clientTypesSource } from "../clients/typescript/generate.ts";
import { eventTypesSource } from "../clients/webhooks/generate.ts";

/** Repository-relative path → the text the generator writes there. */
export async function generatedFiles(): Promise<Record<string, string>> {
  await using h = await setup();
  const doc = await h.call("GET", "/openapi.json");
  if (doc.status !== 200) throw new Error(`GET /openapi.json: ${doc.status} ${doc.text}`);
  const events = await h.call("GET", "/v1/webhooks/event-types", { token: h.root });
  if (events.status !== 200 || !Array.isArray(events.body?.data)) {
    throw new Error(`GET /v1/webhooks/event-types: ${events.status} ${events.text}`);
  }
  return {
    "clients/typescript/schema.gen.ts": await clientTypesSource(doc.body),
    "clients/webhooks/events.gen.ts": await eventTypesSource(events.body.data),
  };
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  for (const [path, text] of Object.entries(await generatedFiles())) {
    await Deno.writeTextFile(new URL(path, root), text);
    console.log(`wrote ${path}`);
  }
}
