/**
 * Examples in the published document. Each schema states its own example where it is declared
 * (on a field, or on a whole component); `withExamples` composes from those the example of every
 * request body and answer that does not state one, so a field's example is written once and every
 * answer that holds it shows it. What cannot be composed is named, so a test can insist on it.
 */

// deno-lint-ignore no-explicit-any
type Json = any;

/** Formats whose example says nothing a reader needs spelled out. */
const FORMAT_EXAMPLES: Record<string, string> = {
  "date-time": "2026-01-31T12:00:00.000Z",
  date: "2026-01-31",
  email: "ada@example.com",
  uri: "https://app.example.com",
  uuid: "0f6c3b5e-3c1a-4d7e-9b7a-2f4e6d8c1a3b",
};

/**
 * The example of `schema`: its own, else one composed from its parts. `missing` collects the path
 * of each part with nothing to compose from (a free string or number with no example).
 */
export function exampleOf(
  schema: Json,
  components: Record<string, Json>,
  missing: string[] = [],
  path = "",
  seen: string[] = [],
): Json {
  if (schema === undefined || schema === true || schema === null) return null;
  if (schema.example !== undefined) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.$ref) {
    const name = String(schema.$ref).split("/").pop()!;
    // A schema that holds itself composes once, then stops.
    if (seen.includes(name)) return null;
    return exampleOf(components[name], components, missing, name, [...seen, name]);
  }
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) {
    const branch = branches.find((b: Json) => b.type !== "null") ?? branches[0];
    return exampleOf(branch, components, missing, path, seen);
  }
  if (schema.allOf) {
    return Object.assign(
      {},
      ...schema.allOf.map((s: Json) => exampleOf(s, components, missing, path, seen)),
    );
  }
  const type = Array.isArray(schema.type)
    ? schema.type.find((t: string) => t !== "null") ?? "null"
    : schema.type;
  switch (type) {
    case "object": {
      const out: Record<string, Json> = {};
      for (const [key, value] of Object.entries<Json>(schema.properties ?? {})) {
        out[key] = exampleOf(value, components, missing, `${path}.${key}`, seen);
      }
      return out;
    }
    case "array":
      return schema.items ? [exampleOf(schema.items, components, missing, `${path}[]`, seen)] : [];
    case "boolean":
      return true;
    case "null":
      return null;
    case "string":
      if (FORMAT_EXAMPLES[schema.format]) return FORMAT_EXAMPLES[schema.format];
      break;
  }
  if (type === undefined && !schema.properties) return {};
  missing.push(path || "(root)");
  return null;
}

/** Every media type of every request body and 2xx answer, with where it is. */
export function* mediaOf(doc: Json): Generator<[string, Json]> {
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<Json>(item)) {
      const key = `${method.toUpperCase()} ${path}`;
      for (const [type, media] of Object.entries<Json>(op.requestBody?.content ?? {})) {
        yield [`${key} body ${type}`, media];
      }
      for (const [status, response] of Object.entries<Json>(op.responses ?? {})) {
        if (!status.startsWith("2")) continue;
        for (const [type, media] of Object.entries<Json>(response.content ?? {})) {
          yield [`${key} ${status} ${type}`, media];
        }
      }
    }
  }
}

/** The document with an example on every request body and 2xx answer; `missing` as above. */
export function withExamples(doc: Json, missing: string[] = []): Json {
  const components = doc.components?.schemas ?? {};
  for (const [where, media] of mediaOf(doc)) {
    if (media.example !== undefined || media.examples) continue;
    const lacking: string[] = [];
    media.example = exampleOf(media.schema, components, lacking);
    missing.push(...lacking.map((p) => `${where}: ${p}`));
  }
  return doc;
}
