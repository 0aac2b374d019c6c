/** Searches and streamed NDJSON or CSV exports of time-ordered records (audit trail, request logs). */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { badRequest } from "../domain/shared/errors.ts";
import type { AppEnv } from "./context.ts";

export type ExportFormat = "ndjson" | "csv";

export const ExportFormatQuery = {
  format: z.enum(["ndjson", "csv"]).optional().openapi({
    description: "Defaults to csv when Accept asks for text/csv, else ndjson.",
  }),
};

/** A line of each format, as streamExport writes it. */
const csvLine = <T extends object>(record: T, columns: readonly (keyof T & string)[]) =>
  columns.map((col) => csvCell(record[col])).join(",") + "\r\n";
const ndjsonLine = (record: object) => JSON.stringify(record) + "\n";

/** The documented answer of an export: `examples` as each format would stream them. */
export function exportResponses<T extends object>(
  what: string,
  examples: T[],
  columns: readonly (keyof T & string)[],
) {
  return {
    200: {
      description: what,
      content: {
        "application/x-ndjson": {
          schema: z.string(),
          example: examples.map(ndjsonLine).join(""),
        },
        "text/csv": {
          schema: z.string(),
          example: columns.join(",") + "\r\n" + examples.map((e) => csvLine(e, columns)).join(""),
        },
      },
    },
  };
}

/** Inclusive time bounds from ISO query values (ms); 400 when from is after to. */
export function timeBounds(q: { from?: string; to?: string }): { from?: number; to?: number } {
  const from = q.from ? Date.parse(q.from) : undefined;
  const to = q.to ? Date.parse(q.to) : undefined;
  if (from !== undefined && to !== undefined && from > to) {
    throw badRequest("from must not be after to", [{
      path: ["query", "from"],
      message: "after to",
    }]);
  }
  return { from, to };
}

/** The format asked for, else what Accept prefers. */
export const exportFormat = (c: Context<AppEnv>, format?: ExportFormat): ExportFormat =>
  format ?? (c.req.header("Accept")?.includes("text/csv") ? "csv" : "ndjson");

/** Quotes a CSV cell, and defuses cells a spreadsheet would run as a formula. */
function csvCell(value: unknown): string {
  let text = value === null || value === undefined
    ? ""
    : typeof value === "string"
    ? value
    : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Streams `records` as they are read (memory stays flat however long the list), each through
 * `view`, as NDJSON or as CSV with `columns`; `name` names the download.
 */
export function streamExport<T extends object>(
  c: Context<AppEnv>,
  records: AsyncGenerator<T>,
  opts: {
    format: ExportFormat;
    name: string;
    columns: readonly (keyof T & string)[];
    /** How the caller may see each record (masking). */
    view: (record: T) => T;
  },
) {
  const encoder = new TextEncoder();
  const csv = opts.format === "csv";
  let headerSent = !csv;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode(opts.columns.join(",") + "\r\n"));
        return;
      }
      const next = await records.next();
      if (next.done) return controller.close();
      const record = opts.view(next.value);
      const line = csv ? csvLine(record, opts.columns) : ndjsonLine(record);
      controller.enqueue(encoder.encode(line));
    },
    async cancel() {
      await records.return(undefined);
    },
  });
  return c.body(body, 200, {
    "Content-Type": csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
    "Content-Disposition": `attachment; filename="${opts.name}.${opts.format}"`,
  });
}
