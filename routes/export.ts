/** Streamed NDJSON and CSV exports (audit trail, request logs). */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "./context.ts";

export type ExportFormat = "ndjson" | "csv";

export const ExportFormatQuery = {
  format: z.enum(["ndjson", "csv"]).optional().openapi({
    description: "Defaults to csv when Accept asks for text/csv, else ndjson.",
  }),
};

export const exportResponses = (what: string) => ({
  200: {
    description: what,
    content: {
      "application/x-ndjson": { schema: z.string() },
      "text/csv": { schema: z.string() },
    },
  },
});

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
 * Streams `records` as they are read (memory stays flat however long the list) as NDJSON, or
 * as CSV with `columns`; `name` names the download.
 */
export function streamExport<T extends object>(
  c: Context<AppEnv>,
  records: AsyncGenerator<T>,
  opts: { format: ExportFormat; name: string; columns: readonly (keyof T & string)[] },
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
      const line = csv
        ? opts.columns.map((col) => csvCell(next.value[col])).join(",") + "\r\n"
        : JSON.stringify(next.value) + "\n";
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
