/**
 * An API protected by Steward: every request needs an API key that Steward verifies.
 *
 *   STEWARD_URL=http://localhost:8000 STEWARD_TOKEN=stw_… deno task example:gateway
 *   curl -H "Authorization: Bearer <api key>" http://localhost:8080/hello
 *
 * PORT (default 8080) and HOST (default all interfaces) say where it listens; STEWARD_TOKEN is
 * a service token with the `keys:verify` permission.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { steward, type StewardEnv } from "../hono/mod.ts";

/** The API, behind `auth` (the Steward middleware; bench/gateway.ts swaps in a stand-in). */
export function gateway(auth: MiddlewareHandler<StewardEnv>): Hono<StewardEnv> {
  const app = new Hono<StewardEnv>();
  app.use("*", auth);
  app.get("/hello", (c) => c.json({ hello: c.get("steward").tenant_id }));
  return app;
}

if (import.meta.main) {
  const url = Deno.env.get("STEWARD_URL");
  const token = Deno.env.get("STEWARD_TOKEN");
  if (!url || !token) {
    console.error("gateway: set STEWARD_URL and STEWARD_TOKEN (a token with keys:verify)");
    Deno.exit(2);
  }
  const port = Number(Deno.env.get("PORT") ?? 8080);
  const hostname = Deno.env.get("HOST") ?? "0.0.0.0";
  const app = gateway(steward({ url, token }));
  Deno.serve({
    port,
    hostname,
    onListen: (addr) => console.log(`gateway listening on http://${addr.hostname}:${addr.port}`),
  }, app.fetch);
}
