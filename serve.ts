/**
 * The entry of `deno serve` (`deno task start:parallel`: one Steward per core, each an isolate
 * with its own caches and leases, as separate processes on one store). Deno owns the listener and
 * takes this export; main.ts, started with `STEWARD_SERVE=deno`, wires Steward without
 * listening. A module of its own, because `deno run main.ts` warns of a default `fetch` export.
 */
import { app } from "./main.ts";

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
