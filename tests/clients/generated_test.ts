/**
 * The committed generated types match what Steward serves: each file equals what
 * `deno task clients:generate` writes from the current routes (the OpenAPI document and the
 * webhook event catalog).
 */
import assert from "node:assert/strict";
import { generatedFiles } from "../../scripts/clients_generate.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("generated clients: committed types equal what the served documents generate", async () => {
  const files = await generatedFiles();
  assert.deepEqual(Object.keys(files).sort(), [
    "clients/typescript/schema.gen.ts",
    "clients/webhooks/events.gen.ts",
  ]);
  for (const [path, expected] of Object.entries(files)) {
    const committed = await Deno.readTextFile(new URL(path, ROOT)).catch(() => null);
    assert.ok(
      committed === expected,
      `${path} differs from what Steward serves now: run \`deno task clients:generate\` and ` +
        "commit the result",
    );
  }
});

Deno.test("generated clients: the same documents generate the same text", async () => {
  assert.deepEqual(await generatedFiles(), await generatedFiles());
});
