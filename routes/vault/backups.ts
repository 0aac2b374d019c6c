/** Backups of the whole store: write one now, list them, and how the daily backup is doing. */
import { z } from "@hono/zod-openapi";
import { backupStatus, listBackups, writeBackup } from "../../domain/vault/backups.ts";
import { actorOf, ok, okList } from "../respond.ts";
import { defineRoute, errorResponse, router } from "../route.ts";
import { envelope, jsonResponse, listEnvelope, orNull, PageQuery } from "../schemas.ts";

const tags = ["Vault"];

const ID = "bkp_01JD2Z3Q4R5S6T7V8W9X0Y1Z2A";
const SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

const BackupSchema = z.object({
  id: z.string().openapi({ example: ID }),
  file: z.string().openapi({
    description: "The file's name in the backup directory (`STEWARD_BACKUP_DIR`).",
    example: `steward-20260301T022300Z-${ID}.backup`,
  }),
  status: z.enum(["running", "succeeded", "failed"]).openapi({ example: "succeeded" }),
  consistency: z.enum(["point_in_time", "per_page"]).openapi({
    description: "`point_in_time`: the store as of one instant (a store in a local file is " +
      "copied first). `per_page`: read page by page while writes went on (a store in memory or " +
      "over KV Connect); each entry is as of the moment its page was read.",
    example: "point_in_time",
  }),
  started_at: z.string().openapi({ example: "2026-03-01T02:23:00.000Z" }),
  finished_at: z.string().nullable().openapi({ example: "2026-03-01T02:23:04.000Z" }),
  entries: z.number().int().nullable().openapi({ example: 48_210 }),
  bytes: z.number().int().nullable().openapi({
    description: "The file's size.",
    example: 3_276_800,
  }),
  sha256: z.string().nullable().openapi({
    description: "SHA-256 of the file, as `sha256sum` prints it.",
    example: SHA256,
  }),
  error: z.string().nullable().openapi({
    description: "Why it failed.",
    example: null,
  }),
}).openapi("Backup");

const BackupStatusSchema = z.object({
  enabled: z.boolean().openapi({
    description: "False without a backup directory: no daily backup, and `POST` is 409.",
    example: true,
  }),
  directory: z.string().nullable().openapi({ example: "/var/lib/steward/backups" }),
  keep: z.number().int().openapi({
    description: "Succeeded backups kept (`STEWARD_BACKUP_KEEP`); older ones are deleted.",
    example: 7,
  }),
  schedule: z.string().nullable().openapi({
    description: "The daily backup's cron expression (UTC).",
    example: "23 2 * * *",
  }),
  next_run_at: z.string().nullable().openapi({ example: "2026-03-02T02:23:00.000Z" }),
  last_success: orNull(BackupSchema),
  last_success_age_seconds: z.number().int().nullable().openapi({ example: 35_820 }),
  last_failure: orNull(
    z.object({
      id: z.string().openapi({ example: "bkp_01JD0X1Y2Z3A4B5C6D7E8F9G0H" }),
      failed_at: z.string().openapi({ example: "2026-02-28T02:23:01.000Z" }),
      error: z.string().openapi({ example: "No space left on device (os error 28)" }),
    }).openapi("BackupFailure"),
  ),
}).openapi("BackupStatus");

export function backupRoutes() {
  const app = router();

  app.openapi(
    defineRoute({
      method: "post",
      path: "/v1/admin/vault/backups",
      tags,
      summary: "Write a backup of the whole store now",
      description: "Every KV entry, compressed and encrypted under a key derived from the master " +
        "key, written to the backup directory; answers once it is written. Older backups past " +
        "`STEWARD_BACKUP_KEEP` are deleted. 409 when backups are off or one is being written.",
      responses: {
        201: jsonResponse(envelope(BackupSchema), "The backup is written."),
        503: errorResponse(
          "The backup failed (it is listed, with its error) or the vault is closed.",
        ),
      },
    }),
    async (c) => ok(c, await writeBackup(c.get("svc"), actorOf(c)), 201),
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/vault/backups",
      tags,
      summary: "Backups, newest first",
      request: { query: z.strictObject(PageQuery) },
      responses: { 200: jsonResponse(listEnvelope(BackupSchema), "A page of backups.") },
    }),
    async (c) => {
      const page = c.req.valid("query");
      return okList(c, await listBackups(c.get("svc"), page), page.limit, (b) => b);
    },
  );

  app.openapi(
    defineRoute({
      method: "get",
      path: "/v1/admin/vault/backup-status",
      tags,
      summary: "The last backup, the last failure and the next daily run",
      responses: { 200: jsonResponse(envelope(BackupStatusSchema), "How backups are doing.") },
    }),
    async (c) => ok(c, await backupStatus(c.get("svc"))),
  );

  return app;
}
