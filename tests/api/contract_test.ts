/**
 * The contract, tested from the document alone: every operation in /openapi.json is called with
 * inputs drawn from its own schemas by fast-check, against a tenant that owns every kind of
 * record. Valid inputs and inputs the document refuses (judged by Ajv against the documented
 * schema), with and without credentials; for every answer:
 *   - no 5xx;
 *   - the status is documented for that operation, with the content type it answers;
 *   - the body validates against the schema documented for that status;
 *   - errors are in the envelope, with the request id of the answer's X-Request-Id;
 *   - input the document refuses is a 400 (401 without credentials), and the documented request
 *     example is accepted.
 * CONTRACT_RUNS sets the draws per operation and kind (default 12); a failure prints its seed,
 * which CONTRACT_SEED replays.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { type Harness, setup } from "../_harness.ts";
import { createHook, HOOK_URL } from "../_webhooks.ts";
import { Arbitraries } from "./_arbitrary.ts";
import { populate } from "./_world.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const RUNS = Number(Deno.env.get("CONTRACT_RUNS") ?? 12);
const METHODS = ["get", "post", "put", "patch", "delete"];
/** Component references, as Ajv reads them: from the `$defs` each compiled schema carries. */
const REFERENCES = "#/components/schemas/";

const doc: Json = await (async () => {
  await using h = await setup();
  return (await h.call("GET", "/openapi.json")).body;
})();
const defs = JSON.parse(JSON.stringify(doc.components.schemas).replaceAll(REFERENCES, "#/$defs/"));
const arbitraries = new Arbitraries(doc.components.schemas);
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
/** Query and path values arrive as text: the document's judgement of them coerces, as a server. */
const coercing = new Ajv2020({ strict: false, coerceTypes: true, validateFormats: false });

const compiled = new Map<Json, ValidateFunction<Json>>();
function validator(schema: Json, on = ajv): ValidateFunction<Json> {
  let fn = compiled.get(schema);
  if (!fn) {
    const local = JSON.parse(JSON.stringify(schema).replaceAll(REFERENCES, "#/$defs/"));
    fn = on.compile({ ...local, $defs: { ...defs, ...local.$defs } });
    compiled.set(schema, fn);
  }
  return fn;
}

/** Does the document admit `value` for the parameter `param`? */
function admits(param: Json, value: string): boolean {
  const holder = { v: value };
  return validator({ type: "object", properties: { v: param.schema } }, coercing)(holder);
}

interface Input {
  path: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  /** undefined: no body; otherwise sent as JSON (or as is, when `raw`). */
  body?: unknown;
  raw?: string;
}

interface Operation {
  method: string;
  template: string;
  op: Json;
}

const asText = (v: unknown) => typeof v === "string" ? v : JSON.stringify(v);

/** The collection whose list names a path parameter's real values, when it is not its prefix. */
const LISTED_AT: Record<string, string> = {
  "/v1/admin/system/jobs": "/v1/admin/system/queues/webhooks/jobs",
};
/** The field of a list item that a path parameter takes. */
const FIELD: Record<string, string> = { tenant: "slug", user_id: "user_id", name: "name" };

/** Real values for each path parameter of `template`: the first item of the collection's list. */
async function realPath(h: Harness, template: string): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  const fill = (s: string) => s.replace(/\{(\w+)\}/g, (_, name) => values[name]);
  for (const match of template.matchAll(/\{(\w+)\}/g)) {
    const name = match[1];
    const collection = fill(template.slice(0, match.index - 1));
    const list = await h.call("GET", LISTED_AT[collection] ?? collection, { token: h.root });
    const first = list.body?.data?.[0];
    values[name] = first ? String(first[FIELD[name] ?? "id"]) : "missing";
  }
  return values;
}

/** A world per operation, so a DELETE cannot starve the operations after it. */
async function world(template: string) {
  const h = await setup();
  await populate(h, "acme");
  await createHook(h, "/v1/admin/webhooks", { url: HOOK_URL });
  await h.runJobs();
  await h.svc.aggregator.flush();
  return { h, path: await realPath(h, template) };
}

/** Inputs the document admits; path parameters real or drawn (`drawPath`), else real. */
function validInput(
  o: Operation,
  real: Record<string, string>,
  drawPath = true,
): fc.Arbitrary<Input> {
  const params: Json[] = o.op.parameters ?? [];
  const path: Record<string, fc.Arbitrary<string>> = {};
  const query: Record<string, fc.Arbitrary<string>> = {};
  const headers: Record<string, fc.Arbitrary<string>> = {};
  for (const p of params) {
    const drawn = arbitraries.valid(p.schema).map(asText);
    if (p.in === "path") {
      // "." and ".." are dot segments: a URL cannot carry them as a value, even encoded.
      const segment = drawn.filter((v) => v !== "." && v !== "..");
      path[p.name] = drawPath
        ? fc.oneof({ weight: 4, arbitrary: fc.constant(real[p.name]) }, segment)
        : fc.constant(real[p.name]);
    }
    if (p.in === "query") query[p.name] = drawn;
    if (p.in === "header") headers[p.name] = drawn;
  }
  const media = o.op.requestBody?.content?.["application/json"];
  const body = media
    ? (o.op.requestBody.required
      ? arbitraries.valid(media.schema)
      : fc.option(arbitraries.valid(media.schema), { nil: undefined }))
    : fc.constant(undefined);
  return fc.record({
    path: fc.record(path),
    query: fc.record(query, {
      requiredKeys: params.filter((p) => p.in === "query" && p.required).map((p) => p.name),
    }),
    headers: fc.record(headers, { requiredKeys: [] }),
    body,
  });
}

/**
 * Inputs with one thing the document refuses: the body, a query value or a header. The path is
 * real: an unknown tenant is a 404 before any input is judged (a caller learns nothing of a
 * tenant it cannot see).
 */
function invalidInput(o: Operation, real: Record<string, string>): fc.Arbitrary<Input> | null {
  const params: Json[] = o.op.parameters ?? [];
  const media = o.op.requestBody?.content?.["application/json"];
  const base = validInput(o, real, false);
  const breakers: fc.Arbitrary<Input>[] = [];
  if (media) {
    // Only where the document refuses some of what is drawn (else the filter would never end).
    const refuses = (b: unknown) => !validator(media.schema)(b);
    const invalid = arbitraries.invalid(media.schema);
    if (fc.sample(invalid, 50).some(refuses)) {
      breakers.push(
        fc.tuple(base, invalid.filter(refuses)).map(([input, body]) => ({ ...input, body })),
      );
    }
    breakers.push(
      fc.tuple(base, fc.constantFrom("", "{", "[1,", "null x", "\u0000"))
        .map(([input, raw]) => ({ ...input, body: undefined, raw })),
    );
  }
  for (const p of params.filter((p) => p.in === "query" || p.in === "header")) {
    // A header value must be one HTTP can carry: visible ASCII and inner spaces.
    const candidates = arbitraries.outside(p.schema).map(asText)
      .concat(p.in === "header" ? ["two words"] : [])
      .filter((v) => p.in !== "header" || /^([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?$/.test(v));
    const refused = candidates.filter((v) => !admits(p, v));
    if (!refused.length) continue;
    const where = p.in === "query" ? "query" : "headers";
    breakers.push(
      fc.tuple(base, fc.constantFrom(...refused)).map(([input, value]) => ({
        ...input,
        [where]: { ...input[where], [p.name]: value },
      })),
    );
  }
  return breakers.length ? fc.oneof(...breakers) : null;
}

async function send(h: Harness, o: Operation, input: Input, token?: string) {
  const url = o.template.replace(/\{(\w+)\}/g, (_, n) => encodeURIComponent(input.path[n]));
  const search = new URLSearchParams(input.query).toString();
  const headers = Object.fromEntries(
    Object.entries(input.headers).filter((e): e is [string, string] => e[1] !== undefined),
  );
  if (token) headers.Authorization = `Bearer ${token}`;
  const body = input.raw ?? (input.body === undefined ? undefined : JSON.stringify(input.body));
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await h.app.request(search ? `${url}?${search}` : url, {
    method: o.method.toUpperCase(),
    headers,
    body,
  });
  const type = (res.headers.get("Content-Type") ?? "").split(";")[0].trim();
  // A live tail never ends: its headers are the answer.
  const text = type === "text/event-stream" ? (await res.body?.cancel(), "") : await res.text();
  return { status: res.status, headers: res.headers, type, text };
}

type Answer = Awaited<ReturnType<typeof send>>;

/** What every answer owes the document. */
function conforms(o: Operation, input: Input, res: Answer) {
  const where = `${o.method.toUpperCase()} ${o.template} ${JSON.stringify(input)} → ${res.status}`;
  assert.ok(res.status < 500, `${where}: ${res.text}`);
  const documented = o.op.responses?.[String(res.status)];
  assert.ok(documented, `${where}: status not documented`);
  if (!res.text) return;
  const media = documented.content?.[res.type];
  assert.ok(media, `${where}: ${res.type} is not documented for ${res.status}`);
  if (res.type !== "application/json") return;
  const body: Json = JSON.parse(res.text);
  const valid = validator(media.schema);
  assert.ok(valid(body), `${where}: ${ajv.errorsText(valid.errors)} in ${res.text.slice(0, 500)}`);
  if (res.status >= 400) {
    assert.equal(body.success, false, where);
    assert.equal(body.error.request_id, res.headers.get("X-Request-Id"), `${where}: request id`);
  }
}

const operations: Operation[] = Object.entries<Json>(doc.paths).flatMap(([template, item]) =>
  METHODS.filter((m) => item[m]).map((method) => ({ method, template, op: item[method] }))
);
const seed = Deno.env.get("CONTRACT_SEED");
const run = { numRuns: RUNS, endOnFailure: true, ...(seed ? { seed: Number(seed) } : {}) };

for (const o of operations) {
  const key = `${o.method.toUpperCase()} ${o.template}`;
  Deno.test(`contract: ${key}`, async () => {
    const { h, path } = await world(o.template);
    await using _ = h;
    const noInput: Input = { path, query: {}, headers: {} };

    // Without credentials: 401 unless public, before any input is judged.
    const anonymous = await send(h, o, noInput);
    conforms(o, noInput, anonymous);
    if (o.op["x-permission"] !== "public") assert.equal(anonymous.status, 401, key);

    // The documented request example passes validation (the world may still refuse what it
    // names: an unknown project, a date now past).
    const example = o.op.requestBody?.content?.["application/json"]?.example;
    if (example !== undefined) {
      const input = { ...noInput, body: example };
      const res = await send(h, o, input, h.root);
      conforms(o, input, res);
      assert.doesNotMatch(res.text, /invalid request:/, `${key}: the documented example`);
    }

    // Refused input is a 400 and changes nothing (run first: valid input may delete the world).
    const invalid = invalidInput(o, path);
    if (invalid) {
      const before = await h.dump();
      await fc.assert(
        fc.asyncProperty(invalid, async (input) => {
          const res = await send(h, o, input, h.root);
          conforms(o, input, res);
          assert.equal(res.status, 400, `${key} ${JSON.stringify(input)}: ${res.text}`);
        }),
        run,
      );
      assert.equal(await h.dump(), before, `${key}: refused input changed the store`);
    }

    await fc.assert(
      fc.asyncProperty(validInput(o, path), async (input) => {
        conforms(o, input, await send(h, o, input, h.root));
      }),
      run,
    );
  });
}
