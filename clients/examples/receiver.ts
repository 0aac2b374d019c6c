/**
 * A webhook receiver (`deno task example:receiver`): listens on `PORT` (default 8081, next to the
 * gateway example's 8080) for Steward's deliveries, signed with the endpoint's secret in
 * `STEWARD_WEBHOOK_SECRET` (`whsec_…`, shown once when the endpoint is created). Each verified
 * event is printed and answered 204; a bad signature, a stale timestamp or a malformed body is
 * answered 400 (Steward retries it).
 */
import { createReceiver } from "../webhooks/mod.ts";

const secret = Deno.env.get("STEWARD_WEBHOOK_SECRET");
if (!secret) {
  console.error("Set STEWARD_WEBHOOK_SECRET to the endpoint's secret (whsec_…).");
  Deno.exit(1);
}
const port = Number(Deno.env.get("PORT") ?? 8081);

const receiver = createReceiver({ secret });

Deno.serve(
  { port },
  receiver.handler(({ id, event }) => {
    // `event` narrows by its type: here `event.data` is a TenantCreatedData.
    const detail = event.type === "tenant.created" ? ` ${event.data.slug}` : "";
    console.log(`${event.timestamp} ${event.type} ${id}${detail}`);
  }),
);
