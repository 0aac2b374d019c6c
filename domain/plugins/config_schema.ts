/**
 * A plugin's `config` checked against its own JSON Schema (`config_schema`, draft 2020-12) with
 * Ajv. A fresh Ajv per check: schemas come from operators, so none is cached (a `$id` of one
 * plugin cannot clash with another's) and nothing grows with the number of plugins.
 */
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { AppError, badRequest } from "../shared/errors.ts";

export type JsonObject = Record<string, unknown>;

/** The JSON size a schema or a config may have. */
export const MAX_JSON_BYTES = 16 * 1024;

const sizeOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;

function tooLarge(field: string, value: unknown) {
  if (sizeOf(value) > MAX_JSON_BYTES) {
    throw badRequest(`${field} must be at most ${MAX_JSON_BYTES} bytes of JSON`, [
      { path: [field], message: "too large" },
    ]);
  }
}

/** `/a/0/b` → ["a", 0, "b"] (JSON Pointer, as Ajv reports where a value failed). */
const pointerPath = (pointer: string): (string | number)[] =>
  pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => /^\d+$/.test(p) ? Number(p) : p);

const issues = (field: string, errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).map((e) => ({
    path: [field, ...pointerPath(e.instancePath)],
    message: e.message ?? e.keyword,
    keyword: e.keyword,
    params: e.params,
  }));

/**
 * 400 unless `schema` is a valid JSON Schema and `config` satisfies it (a null schema admits any
 * config object); the details list each issue with its path under `config` or `config_schema`.
 */
export function checkConfig(schema: JsonObject | null, config: JsonObject | null): void {
  if (schema !== null) tooLarge("config_schema", schema);
  if (config !== null) tooLarge("config", config);
  if (schema === null) return;
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);
  let validate;
  try {
    if (!ajv.validateSchema(schema)) {
      throw badRequest(
        "config_schema is not a valid JSON Schema",
        issues("config_schema", ajv.errors),
      );
    }
    validate = ajv.compile(schema);
  } catch (err) {
    if (err instanceof AppError) throw err;
    // An unknown $schema or an unresolvable $ref: the schema cannot be used as given.
    const message = err instanceof Error ? err.message : String(err);
    throw badRequest(`config_schema cannot be compiled: ${message}`, [
      { path: ["config_schema"], message },
    ]);
  }
  // An $async schema validates later, in a promise: a config must be judged now.
  if ((validate as { $async?: true }).$async) {
    throw badRequest("config_schema must not be $async", [
      { path: ["config_schema", "$async"], message: "not supported" },
    ]);
  }
  if (!validate(config ?? {})) {
    throw badRequest(
      "config does not match the plugin's config_schema",
      issues("config", validate.errors),
    );
  }
}
