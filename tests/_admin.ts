/** Runs a `deno task admin` command in process on `svc`; returns what it printed. */
import { runAdminCommand } from "../admin.ts";
import type { Services } from "../domain/shared/services.ts";

export async function admin(svc: Services, ...args: string[]): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  try {
    await runAdminCommand(svc, args[0], args.slice(1));
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}
