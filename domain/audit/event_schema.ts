/**
 * A JSON Schema (draft 2020-12 subset) for each event type's `data`, derived from its catalog
 * example, so receivers can generate types from `GET /v1/webhooks/event-types`. The derivation is
 * deterministic: an object lists every key as a property and requires it (records carry all their
 * fields, `null` when unset) and allows more (new fields are added over time); an array takes
 * its first item's schema. An example holds `null` where a field is unset, which says nothing of
 * its type: the type is taken from the same field elsewhere in the catalog, or from `FIELD_HINTS`;
 * and a field set in one example and null in another is nullable in both.
 */
import { EVENT_CATALOG, type EventType } from "./event_catalog.ts";

export type JsonType = "string" | "number" | "integer" | "boolean" | "object" | "array" | "null";

export interface JsonSchema {
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  description?: string;
}

const nullable = (type: JsonType): JsonSchema => ({ type: [type, "null"] });
const freeForm: JsonSchema = {
  type: "object",
  additionalProperties: true,
  description: "Free-form: the keys are the caller's.",
};

/**
 * Fields whose example cannot tell their schema: maps whose keys are the user's (an example's
 * keys are not a contract), fields `null` in every example, and those no example shows null.
 */
export const FIELD_HINTS: Readonly<Record<string, JsonSchema>> = {
  metadata: freeForm,
  meta: freeForm,
  feature_flags: freeForm,
  features: freeForm,
  config: freeForm,
  config_schema: freeForm,
  settings: freeForm,
  key_prefix: nullable("string"),
  platform_role: nullable("string"),
  last_used_at: nullable("string"),
  stripe_price_id: nullable("string"),
  stripe_meter_event_name: nullable("string"),
  rotated_from: nullable("string"),
  last_revealed_at: nullable("string"),
  trial_end: nullable("string"),
  description: nullable("string"),
};

function jsonTypeOf(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "boolean";
  return "object";
}

/** What the whole catalog tells of each field name: its scalar types, and whether it is ever null. */
export interface FieldFacts {
  types: Map<string, Set<JsonType>>;
  nullable: Set<string>;
}

export function fieldFacts(catalog: readonly EventType[]): FieldFacts {
  const facts: FieldFacts = { types: new Map(), nullable: new Set() };
  const walk = (value: unknown, field: string | null) => {
    const type = jsonTypeOf(value);
    if (type === "array") return (value as unknown[]).forEach((item) => walk(item, null));
    if (type === "object") {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, k);
      return;
    }
    if (field === null) return;
    if (type === "null") return void facts.nullable.add(field);
    const types = facts.types.get(field) ?? facts.types.set(field, new Set()).get(field)!;
    types.add(type);
    // A field seen both as an integer and a number is a number.
    if (types.has("number")) types.delete("integer");
  };
  for (const e of catalog) walk(e.example, null);
  return facts;
}

/**
 * The schema of one example value; `field` is the key it sits under (null: none). A scalar whose
 * field is null in another example is nullable: the catalog shows records in different states.
 */
export function deriveSchema(value: unknown, field: string | null, facts: FieldFacts): JsonSchema {
  if (field !== null && FIELD_HINTS[field]) return FIELD_HINTS[field];
  const type = jsonTypeOf(value);
  if (type === "null") {
    const types = field === null ? undefined : facts.types.get(field);
    return types?.size === 1 ? nullable([...types][0]) : {};
  }
  if (type === "array") {
    const items = value as unknown[];
    return { type, items: items.length ? deriveSchema(items[0], null, facts) : {} };
  }
  if (type !== "object") {
    return field !== null && facts.nullable.has(field) ? nullable(type) : { type };
  }
  const entries = Object.entries(value as Record<string, unknown>);
  return {
    type,
    properties: Object.fromEntries(entries.map(([k, v]) => [k, deriveSchema(v, k, facts)])),
    required: entries.map(([k]) => k),
    additionalProperties: true,
  };
}

const FACTS = fieldFacts(EVENT_CATALOG);

/** Each catalog type's `data` schema, derived once. */
export const EVENT_SCHEMAS: ReadonlyMap<string, JsonSchema> = new Map(
  EVENT_CATALOG.map((e) => [e.type, deriveSchema(e.example, null, FACTS)]),
);
