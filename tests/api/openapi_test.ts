/**
 * The published contract: /openapi.json is a valid OpenAPI 3.1 document that documents every
 * route of the access table with its permission, security and error responses; /docs renders
 * it from assets Steward serves itself (no CDN).
 */
import assert from "node:assert/strict";
import { ERROR_CODES } from "../../domain/shared/errors.ts";
import { validate } from "@readme/openapi-parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { mediaOf, withExamples } from "../../routes/examples.ts";
import { ROUTE_ACCESS } from "../../routes/permissions.ts";
import { setup } from "../_harness.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const NOT_IN_DOCUMENT = new Set(["GET /openapi.json", "GET /docs", "GET /docs/assets/{asset}"]);
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async function document(): Promise<Json> {
  await using h = await setup();
  const res = await h.call("GET", "/openapi.json");
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get("Content-Type") ?? "", /^application\/json/);
  return res.body;
}

/** Every operation in the document as "METHOD /path" → operation. */
function operations(doc: Json): Map<string, Json> {
  const ops = new Map<string, Json>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const method of METHODS) {
      if (item[method]) ops.set(`${method.toUpperCase()} ${path}`, item[method]);
    }
  }
  return ops;
}

Deno.test("openapi: /openapi.json is a valid OpenAPI 3.1 document", async () => {
  const doc = await document();
  assert.equal(doc.openapi, "3.1.0");
  const result = await validate(structuredClone(doc));
  assert.ok(
    result.valid,
    `invalid OpenAPI: ${JSON.stringify("errors" in result ? result.errors : result, null, 1)}`,
  );
  assert.equal(result.specification, "OpenAPI");
  assert.deepEqual(result.warnings, []);
});

Deno.test("openapi: the validator really validates (a broken copy is refused)", async () => {
  const doc = await document();
  const broken = structuredClone(doc);
  const [path] = Object.keys(broken.paths);
  const [method] = Object.keys(broken.paths[path]);
  delete broken.paths[path][method].responses["500"].description;
  broken.info = { title: "no version" };
  const result = await validate(broken);
  assert.equal(result.valid, false);
});

Deno.test("openapi: every schema is strict JSON Schema 2020-12 (no OpenAPI 3.0 leftovers)", async () => {
  const doc = await document();
  // 3.0's `nullable` means nothing in 3.1 (a null type belongs in `type`); Ajv would accept it.
  assert.ok(!JSON.stringify(doc).includes('"nullable":'), "3.0-style nullable in a 3.1 document");
  const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
  ajv.addKeyword("example");
  const defs = JSON.parse(
    JSON.stringify(doc.components?.schemas ?? {}).replaceAll(
      '"#/components/schemas/',
      '"#/$defs/',
    ),
  );
  const schemas: [string, Json][] = Object.entries<Json>(defs).map(([k, s]) => [`$defs/${k}`, s]);
  for (const [key, op] of operations(doc)) {
    for (const p of op.parameters ?? []) schemas.push([`${key} parameter ${p.name}`, p.schema]);
    for (const [type, media] of Object.entries<Json>(op.requestBody?.content ?? {})) {
      schemas.push([`${key} body ${type}`, media.schema]);
    }
    for (const [status, response] of Object.entries<Json>(op.responses ?? {})) {
      for (const [type, media] of Object.entries<Json>(response.content ?? {})) {
        schemas.push([`${key} ${status} ${type}`, media.schema]);
      }
    }
  }
  assert.ok(schemas.length > 20);
  for (const [where, schema] of schemas) {
    assert.ok(schema && typeof schema === "object", `${where}: no schema`);
    const rewritten = JSON.parse(
      JSON.stringify(schema).replaceAll('"#/components/schemas/', '"#/$defs/'),
    );
    try {
      ajv.compile({ ...rewritten, $defs: { ...defs, ...rewritten.$defs } });
    } catch (err) {
      assert.fail(`${where}: ${(err as Error).message}`);
    }
    ajv.removeSchema();
  }
});

Deno.test("openapi: every route is documented with its permission, security and errors", async () => {
  const doc = await document();
  const ops = operations(doc);
  const expected = Object.entries(ROUTE_ACCESS).filter(([key]) => !NOT_IN_DOCUMENT.has(key));
  for (const [key, access] of expected) {
    const op = ops.get(key);
    assert.ok(op, `${key} is not in /openapi.json`);
    assert.equal(op["x-permission"], access, `${key}: x-permission`);
    assert.ok(op.summary, `${key}: no summary`);
    assert.ok(op.description?.includes(`\`${access}\``), `${key}: description omits the access`);
    const responses = op.responses ?? {};
    const codes = Object.keys(responses);
    assert.ok(codes.some((c) => /^2\d\d$/.test(c)), `${key}: no success response`);
    assert.ok(responses["500"], `${key}: 500 not documented`);
    if (access === "public") {
      assert.deepEqual(op.security ?? [], [], `${key}: a public route asks for credentials`);
    } else {
      assert.ok(responses["401"], `${key}: 401 not documented`);
      assert.ok(responses["403"], `${key}: 403 not documented`);
      assert.deepEqual(op.security, [{ bearer: [] }, { apiKey: [] }], `${key}: security`);
    }
    if (key.includes("{")) assert.ok(responses["404"], `${key}: 404 not documented`);
    if (op.parameters?.length || op.requestBody) {
      assert.ok(responses["400"], `${key}: takes input but 400 is not documented`);
    }
    if (op.requestBody) {
      assert.ok(responses["413"], `${key}: 413 not documented`);
      assert.ok(responses["415"], `${key}: 415 not documented`);
    }
    if (key.startsWith("POST ")) {
      assert.ok(responses["422"], `${key}: 422 (Idempotency-Key reuse) not documented`);
      assert.ok(
        op.parameters?.some((p: Json) => p.in === "header" && p.name === "Idempotency-Key"),
        `${key}: Idempotency-Key header not documented`,
      );
    }
    if (key.startsWith("PATCH ") || key.startsWith("DELETE ")) {
      assert.ok(responses["412"], `${key}: 412 (stale If-Match) not documented`);
    }
    // Every documented error answers with the error envelope.
    for (const [status, response] of Object.entries<Json>(responses)) {
      if (Number(status) < 400) continue;
      assert.equal(
        response.content?.["application/json"]?.schema?.$ref,
        "#/components/schemas/Error",
        `${key}: ${status} is not documented as the error envelope`,
      );
    }
  }
  // Nothing in the document that the access table does not know.
  const table = new Set(Object.keys(ROUTE_ACCESS));
  const extra = [...ops.keys()].filter((k) => !table.has(k));
  assert.deepEqual(extra, [], "documented operations missing from routes/permissions.ts");
  assert.equal(ops.size, expected.length);
  assert.deepEqual(doc.components.securitySchemes.bearer, {
    type: "http",
    scheme: "bearer",
    description: doc.components.securitySchemes.bearer.description,
  });
});

Deno.test("openapi: every operation has a unique camelCase operationId, stable across releases", async () => {
  const doc = await document();
  const ops = operations(doc);
  const ids = [...ops.values()].map((op) => op.operationId);
  for (const id of ids) assert.match(id ?? "", /^[a-z][A-Za-z0-9]+$/, `operationId ${id}`);
  assert.equal(new Set(ids).size, ids.length, "duplicate operationId");
  // A generated client keeps compiling: an id changes only with this list, on purpose.
  const listed = [...ops].map(([key, op]) => `${op.operationId} ${key}`).sort();
  const committed = (await Deno.readTextFile(new URL("./operation_ids.txt", import.meta.url)))
    .trim().split("\n");
  assert.deepEqual(listed, committed, "operation ids changed: update tests/api/operation_ids.txt");
});

Deno.test("openapi: tags are declared with descriptions; servers are given", async () => {
  const doc = await document();
  const declared = new Map<string, Json>(doc.tags.map((t: Json) => [t.name, t]));
  for (const [key, op] of operations(doc)) {
    for (const tag of op.tags ?? []) {
      assert.ok(declared.get(tag)?.description, `${key}: tag ${tag}`);
    }
  }
  assert.ok(doc.servers?.length, "servers");
});

Deno.test("openapi: a nullable field accepts null (no allOf of a $ref and an object-or-null)", async () => {
  const doc = await document();
  const impossible: string[] = [];
  const walk = (value: Json, at: string) => {
    if (!value || typeof value !== "object") return;
    const allOf = Array.isArray(value.allOf) ? value.allOf : [];
    if (
      allOf.some((s: Json) => s.$ref) && allOf.some((s: Json) => [s.type].flat().includes("null"))
    ) {
      impossible.push(at);
    }
    for (const [k, v] of Object.entries(value)) walk(v, `${at}/${k}`);
  };
  walk(doc, "");
  assert.deepEqual(impossible, []);
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  const defs = JSON.parse(
    JSON.stringify(doc.components.schemas).replaceAll('"#/components/schemas/', '"#/$defs/'),
  );
  const principal = ajv.compile({ $ref: "#/$defs/Principal", $defs: defs });
  // GET /v1/auth/me as a service token answers user: null.
  await using h = await setup();
  const me = await h.call("GET", "/v1/auth/me", { token: h.root });
  assert.equal(me.body.data.user, null);
  assert.ok(principal(me.body.data), ajv.errorsText(principal.errors));
});

Deno.test("openapi: the error envelope schema lists every error code", async () => {
  const doc = await document();
  const error = doc.components.schemas.Error;
  assert.deepEqual(error.required, ["success", "error"]);
  const inner = error.properties.error;
  for (const field of ["code", "message", "request_id"]) {
    assert.ok(inner.required.includes(field), `error.${field} is not required`);
  }
  for (
    const code of ERROR_CODES
  ) {
    assert.ok(inner.properties.code.enum.includes(code), `${code} missing from Error.code`);
  }
});

Deno.test("openapi: /docs is self-hosted: only same-origin assets, each served", async () => {
  await using h = await setup();
  const page = await h.call("GET", "/docs");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("Content-Type") ?? "", /^text\/html/);
  assert.ok(!/https?:\/\//i.test(page.text), "the docs page names an external URL");
  assert.ok(!/(src|href)\s*=\s*["']?\/\//i.test(page.text), "protocol-relative URL");
  const csp = page.headers.get("Content-Security-Policy") ?? "";
  assert.ok(csp, "no CSP on /docs");
  assert.ok(!/https?:|\*/.test(csp), `the docs CSP allows other origins: ${csp}`);
  assert.match(csp, /frame-ancestors 'none'/);
  const refs = [...page.text.matchAll(/\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1]);
  assert.ok(refs.length >= 2, "the page loads no assets?");
  const types: Record<string, RegExp> = {
    ".css": /^text\/css/,
    ".js": /^(text|application)\/javascript/,
  };
  for (const ref of refs) {
    assert.ok(ref.startsWith("/docs/assets/"), `${ref} is not under /docs/assets/`);
    const asset = await h.call("GET", ref);
    assert.equal(asset.status, 200, `${ref}: ${asset.status}`);
    assert.ok(asset.text.length > 0, `${ref} is empty`);
    const ext = Object.keys(types).find((e) => ref.endsWith(e));
    assert.ok(ext, `${ref}: unexpected asset type`);
    assert.match(asset.headers.get("Content-Type") ?? "", types[ext], ref);
    assert.equal(asset.headers.get("X-Content-Type-Options"), "nosniff", ref);
  }
  assert.ok(refs.some((r) => r.endsWith(".js")) && refs.some((r) => r.endsWith(".css")));
  // The UI loads the document from this origin too.
  const init = await h.call("GET", "/docs/assets/init.js");
  assert.match(init.text, /url:\s*"\/openapi\.json"/);
  // Unknown assets are the usual 404 envelope, and paths cannot climb out of the asset folder.
  for (const bad of ["/docs/assets/nope.js", "/docs/assets/..%2Fopenapi.json"]) {
    const res = await h.call("GET", bad);
    assert.equal(res.status, 404, bad);
    assert.equal(res.body?.error?.code, "NOT_FOUND", bad);
  }
});

Deno.test("openapi: the 404s of token-taking public routes and of token creation are documented", async () => {
  const ops = operations(await document());
  for (
    const key of [
      "POST /v1/auth/password-reset",
      "POST /v1/invitations/accept",
      "POST /v1/admin/tokens",
    ]
  ) {
    assert.ok(ops.get(key)?.responses?.["404"], `${key}: 404 not documented`);
  }
});

Deno.test("openapi: parameters are as strict as the server (Idempotency-Key, offset, days, cursors)", async () => {
  const doc = await document();
  const params = [...operations(doc).values()].flatMap((op) => op.parameters ?? []);
  const idem = params.find((p: Json) => p.name === "Idempotency-Key").schema;
  assert.deepEqual([idem.minLength, idem.maxLength, idem.pattern], [1, 255, "^[\\x21-\\x7E]+$"]);
  for (const offset of params.filter((p: Json) => p.name === "offset")) {
    assert.equal(offset.schema.type, "integer", "offset=null is 400, so null is not documented");
  }
  const day = params.find((p: Json) => p.name === "from" && p.schema.pattern).schema.pattern;
  assert.ok(!new RegExp(day).test("0000-00-00") && new RegExp(day).test("2026-02-28"), day);
  // A real cursor matches the documented form.
  await using h = await setup();
  for (const s of ["acme-a", "acme-b"]) await h.tenant(s);
  const cursor = (await h.call("GET", "/v1/tenants?limit=1", { token: h.root })).body.pagination
    .next_cursor;
  const documented = params.find((p: Json) => p.name === "cursor" && p.schema.maxLength).schema;
  assert.match(cursor, new RegExp(documented.pattern));
});

Deno.test("openapi: every request body and 2xx answer has an example that validates against its schema", async () => {
  // Composed where a route states none: from the examples of the fields and components it holds,
  // each of which must have one.
  await using h = await setup();
  const missing: string[] = [];
  withExamples(
    h.app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "", version: "" } }),
    missing,
  );
  assert.deepEqual(missing, [], "parts with no example");

  const doc = await document();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // ajv-formats is CommonJS: its default export is the module object.
  (formats as unknown as { default: (a: unknown) => void }).default(ajv);
  const defs = JSON.parse(
    JSON.stringify(doc.components.schemas).replaceAll('"#/components/schemas/', '"#/$defs/'),
  );
  const failures: string[] = [];
  let checked = 0;
  for (const [where, media] of mediaOf(doc)) {
    assert.ok(media.example !== undefined, `${where}: no example`);
    const schema = JSON.parse(
      JSON.stringify(media.schema).replaceAll('"#/components/schemas/', '"#/$defs/'),
    );
    const valid = ajv.compile({ ...schema, $defs: defs });
    if (!valid(media.example)) {
      failures.push(`${where}: ${ajv.errorsText(valid.errors)}`);
    }
    ajv.removeSchema();
    checked++;
  }
  assert.ok(checked > 150, `only ${checked} bodies and answers`);
  assert.deepEqual(failures, [], "examples that do not validate");
});
