/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): a secret is `whsec_` + base64
 * of 32 random bytes; each request carries `webhook-id`, `webhook-timestamp` (seconds) and
 * `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's
 * decoded bytes, one per secret in use, separated by spaces (so a receiver holding either the
 * new or the previous secret verifies during a rotation).
 */
import { createHmac } from "node:crypto";

const SECRET_PREFIX = "whsec_";

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

export const newWebhookSecret = () =>
  SECRET_PREFIX + b64(crypto.getRandomValues(new Uint8Array(32)));

const keyOf = (secret: string) =>
  Uint8Array.from(atob(secret.slice(SECRET_PREFIX.length)), (c) => c.charCodeAt(0));

export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`);
  return `v1,${mac.digest("base64")}`;
}

/** The three headers of one delivery attempt, signed with every secret given. */
export function signedHeaders(
  secrets: string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": secrets.map((s) => sign(s, id, timestampSeconds, body)).join(" "),
  };
}
