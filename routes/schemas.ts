/**
 * Shared schemas: envelopes, errors, pagination, ids, timestamps and safe text. One schema is
 * the source of truth for validation, types and the OpenAPI document.
 */
import { z } from "@hono/zod-openapi";
import { ERROR_CODES } from "../domain/shared/errors.ts";

export const ErrorSchema = z.object({
  success: z.literal(false),
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    details: z.unknown().optional().openapi({
      description: "For BAD_REQUEST: the issues, each with its path.",
    }),
    request_id: z.string(),
  }),
}).openapi("Error");

const Meta = z.object({
  request_id: z.string().openapi({ example: "req_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A" }),
});

/**
 * `schema` or null. A registered schema's `.nullable()` is documented as `allOf` of its `$ref`
 * and an object-or-null type, which no null satisfies; a union documents `anyOf` ref or null.
 */
export const orNull = <T extends z.ZodType>(schema: T) => z.union([schema, z.null()]);

export const envelope = <T extends z.ZodType>(data: T) =>
  z.object({ success: z.literal(true), data, meta: Meta });

export const Pagination = z.object({
  limit: z.number().int().openapi({ example: 50 }),
  next_cursor: z.string().nullable().openapi({ example: "djE6MDFKRDJaM1E0UjVTNlQ3Vjg" }),
  has_more: z.boolean(),
  total: z.number().int().optional().openapi({
    example: 128,
    description: "How many items the list holds (all pages): from a maintained count where one " +
      "keeps it, else counted, up to 10,000 (then `total_is_estimate`). Absent on the usage " +
      "stream, and on request logs read from Postgres.",
  }),
  total_is_estimate: z.boolean().optional().openapi({
    description: "True when counting stopped at a bound: `total` is that bound, not the count.",
  }),
}).openapi("Pagination");

export const listEnvelope = <T extends z.ZodType>(item: T) =>
  z.object({ success: z.literal(true), data: z.array(item), meta: Meta, pagination: Pagination });

/** ASCII and Unicode control characters, which no single-line field may hold. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A trimmed single-line string of 1..max characters with no control characters. */
export const Text = (max: number) =>
  z.string().trim().min(1).max(max)
    .refine((s) => !CONTROL.test(s), "must not contain control characters")
    .refine((s) => s.isWellFormed(), "must be well-formed Unicode");

export const Timestamp = z.iso.datetime({ offset: true }).openapi({
  example: "2026-01-31T12:00:00.000Z",
});

const Day = z.string().regex(
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  "a date as YYYY-MM-DD",
).refine(
  (d) =>
    !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) &&
    new Date(`${d}T00:00:00Z`).toISOString().startsWith(d),
  "not a calendar date",
);

/** A range of UTC days (at most 366; see dayRange). */
export const DayRangeQuery = z.strictObject({
  from: Day.optional().openapi({ description: "First day (UTC), inclusive." }),
  to: Day.optional().openapi({ description: "Last day (UTC), inclusive; default today." }),
});

export const idOf = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`), `must be a ${prefix}_ id`)
    .openapi({ example: `${prefix}_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A` });

/** A metadata value: up to 500 characters, no control characters, well-formed Unicode. */
const MetadataValue = z.string().max(500)
  .refine((s) => !CONTROL.test(s), "must not contain control characters")
  .refine((s) => s.isWellFormed(), "must be well-formed Unicode");

/** Free-form labels, Stripe-style: up to 50 keys of 40 characters, values up to 500. */
export const Metadata = z.record(Text(40), MetadataValue)
  .refine((m) => Object.keys(m).length <= 50, "at most 50 keys")
  .openapi({ example: { crm_id: "A-1234" } });

/** Metadata patch: a null value removes the key; values obey the same rules as on create. */
export const MetadataPatch = z.record(Text(40), MetadataValue.nullable())
  .refine((m) => Object.keys(m).length <= 50, "at most 50 keys");

export const PageQuery = {
  limit: z.coerce.number().int().min(1).max(100).default(50).openapi({
    description: "Items per page (max 100).",
  }),
  cursor: z.string().max(1024).optional().openapi({
    description: "`pagination.next_cursor` of the previous page, as it was: an opaque token " +
      "(base64, a dot, and a check of the list it belongs to); one from another list is 400.",
    pattern: "^[A-Za-z0-9+/=_-]+\\.[0-9a-f]{16}$",
  }),
  // Coerced from the query string; documented as the integer it must be (never null).
  offset: z.coerce.number().int().min(0).max(10_000).optional()
    .openapi({
      type: "integer",
      description: "Items to skip, for jump-to-page views (instead of a cursor).",
    }),
  page: z.coerce.number().int().min(1).max(10_000).optional()
    .openapi({
      type: "integer",
      description: "1-based page of `limit` items (instead of `offset`; `offset` wins).",
    }),
};

export const QueryBoolean = z.enum(["true", "false"]).transform((v) => v === "true");

/** `{tenant}`: a tenant id or slug. */
export const TenantParams = z.strictObject({
  tenant: z.string().min(1).max(64).openapi({
    param: { name: "tenant", in: "path" },
    example: "acme",
  }),
});

export const IdParams = (prefix: string) =>
  z.strictObject({ id: idOf(prefix).openapi({ param: { name: "id", in: "path" } }) });

/** A JSON request body; unknown fields are rejected by the strict object schema. */
export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({
  required: true,
  description,
  content: { "application/json": { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
