/**
 * fast-check arbitraries built from the published JSON Schemas, so the contract test draws its
 * inputs from the document itself: `valid` draws values the schema admits (its documented
 * example among them, so some calls reach real records), `invalid` draws values it refuses (each
 * checked against the schema with Ajv, so "invalid" is the document's judgement, not a guess).
 */
import fc from "fast-check";

// deno-lint-ignore no-explicit-any
type Json = any;
type Schema = Json;

/** Strings for the formats the document uses. */
const FORMATS: Record<string, fc.Arbitrary<string>> = {
  "date-time": fc.date({
    min: new Date("2000-01-01T00:00:00Z"),
    max: new Date("2100-01-01T00:00:00Z"),
    noInvalidDate: true,
  }).map((d) => d.toISOString()),
  date: fc.date({
    min: new Date("2000-01-01T00:00:00Z"),
    max: new Date("2100-01-01T00:00:00Z"),
    noInvalidDate: true,
  }).map((d) => d.toISOString().slice(0, 10)),
  email: fc.tuple(
    fc.stringMatching(/^[a-z][a-z0-9.]{0,10}[a-z0-9]$/),
    fc.constantFrom("example.com", "acme.example.org"),
  ).map(([local, domain]) => `${local.replace(/\.\.+/g, ".")}@${domain}`),
  uri: fc.webUrl({ validSchemes: ["https"] }),
  uuid: fc.uuid(),
};

/** The schemas the document's `$ref`s name. */
export class Arbitraries {
  constructor(private readonly components: Record<string, Schema>) {}

  private resolve(schema: Schema): Schema {
    return schema?.$ref ? this.components[String(schema.$ref).split("/").pop()!] : schema;
  }

  /** Values `schema` admits (up to zod refinements the document cannot express). */
  valid(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
    const s = this.resolve(schema);
    if (s === undefined || s === true || !s || Object.keys(s).length === 0) {
      return fc.constantFrom(null, "x", 1, { a: 1 });
    }
    const drawn = this.drawn(s, depth);
    return s.example !== undefined ? fc.oneof(fc.constant(s.example), drawn) : drawn;
  }

  private drawn(s: Schema, depth: number): fc.Arbitrary<unknown> {
    if ("const" in s) return fc.constant(s.const);
    if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum);
    const branches = s.anyOf ?? s.oneOf;
    if (branches) return fc.oneof(...branches.map((b: Schema) => this.valid(b, depth + 1)));
    if (s.allOf) {
      return fc.tuple(...s.allOf.map((b: Schema) => this.valid(b, depth + 1)))
        .map((parts) => Object.assign({}, ...parts));
    }
    if (Array.isArray(s.type)) {
      return fc.oneof(...s.type.map((type: string) => this.valid({ ...s, type }, depth)));
    }
    switch (s.type) {
      case "null":
        return fc.constant(null);
      case "boolean":
        return fc.boolean();
      case "integer":
        return fc.integer({
          min: s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -1000),
          max: s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 1_000_000),
        });
      case "number":
        return fc.double({
          min: s.minimum ?? -1e6,
          max: s.maximum ?? 1e6,
          noNaN: true,
          noDefaultInfinity: true,
        });
      case "string":
        return this.string(s);
      case "array": {
        const max = Math.min(s.maxItems ?? 4, (s.minItems ?? 0) + 4);
        const items = depth > 4 ? fc.constant(null) : this.valid(s.items ?? {}, depth + 1);
        return fc.array(items, { minLength: s.minItems ?? 0, maxLength: max });
      }
      default:
        return this.object(s, depth);
    }
  }

  private string(s: Schema): fc.Arbitrary<string> {
    const min = s.minLength ?? 0;
    const max = s.maxLength ?? 64;
    const base = s.pattern
      ? fc.stringMatching(new RegExp(s.pattern))
      : FORMATS[s.format] ?? fc.string({ minLength: min, maxLength: Math.min(max, min + 40) });
    return base.filter((v) => [...v].length >= min && [...v].length <= max);
  }

  private object(s: Schema, depth: number): fc.Arbitrary<unknown> {
    const properties: Record<string, Schema> = s.properties ?? {};
    if (!Object.keys(properties).length) {
      if (!s.additionalProperties || depth > 4) return fc.constant({});
      return fc.dictionary(
        fc.stringMatching(/^[a-z][a-z_]{0,15}$/),
        this.valid(s.additionalProperties, depth + 1),
        { maxKeys: 3 },
      );
    }
    const arbitraries: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [key, value] of Object.entries(properties)) {
      arbitraries[key] = depth > 4 ? fc.constant(null) : this.valid(value, depth + 1);
    }
    return fc.record(arbitraries, { requiredKeys: s.required ?? [] });
  }

  /**
   * Values that break `schema` in one place: the wrong kind of value, a missing required
   * field, a field of the wrong type, a string or number out of bounds, an unknown enum value,
   * an unknown field where none is allowed. Callers keep those the schema really refuses.
   */
  invalid(schema: Schema): fc.Arbitrary<unknown> {
    const s = this.resolve(schema);
    const wrongKinds = fc.constantFrom<unknown>(null, 42, "text", [], true, {});
    const properties: Record<string, Schema> = s?.properties ?? {};
    const names = Object.keys(properties);
    if (!names.length) return fc.oneof(wrongKinds, this.outOfBounds(s));
    const body = this.valid(s) as fc.Arbitrary<Record<string, unknown>>;
    const required: string[] = s.required ?? [];
    const breakers: fc.Arbitrary<unknown>[] = [
      wrongKinds,
      fc.tuple(body, fc.constantFrom(...names), fc.constantFrom<unknown>(42, "text", [], {}, true))
        .map(([value, key, wrong]) => ({ ...value, [key]: wrong })),
      fc.tuple(body, fc.constantFrom(...names))
        .chain(([value, key]) =>
          this.outOfBounds(properties[key]).map((bad) => ({ ...value, [key]: bad }))
        ),
    ];
    if (required.length) {
      breakers.push(
        fc.tuple(body, fc.constantFrom(...required)).map(([value, key]) => {
          const { [key]: _dropped, ...rest } = value;
          return rest;
        }),
      );
    }
    if (s.additionalProperties === false) {
      breakers.push(body.map((value) => ({ ...value, not_a_field: 1 })));
    }
    return fc.oneof(...breakers);
  }

  /** A value just outside a scalar schema's bounds (or of the wrong kind when it has none). */
  outOfBounds(schema: Schema): fc.Arbitrary<unknown> {
    return fc.constantFrom(...this.outside(schema));
  }

  /** The values `outOfBounds` draws from. */
  outside(schema: Schema): unknown[] {
    const s = this.resolve(schema) ?? {};
    const out: unknown[] = [];
    if (s.maxLength !== undefined) out.push("x".repeat(s.maxLength + 1));
    if (s.minLength > 0) out.push("");
    if (s.maximum !== undefined) out.push(s.maximum + 1);
    if (s.minimum !== undefined) out.push(s.minimum - 1);
    if (s.type === "integer") out.push(1.5);
    if (Array.isArray(s.enum)) out.push("not-one-of-them");
    if (s.pattern || s.format) out.push("\u0000 nope");
    if (s.maxItems !== undefined) out.push(Array(s.maxItems + 1).fill(null));
    return out.length ? out : [42, "text", []];
  }
}
