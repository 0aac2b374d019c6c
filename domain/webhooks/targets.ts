/**
 * Where a webhook may be sent. A URL must be https, without credentials or fragment, and its
 * host must resolve (A and AAAA) only to public addresses (domain/shared/ip_address.ts): checked when
 * an endpoint is saved and again before every delivery, since DNS can change in between.
 * WEBHOOK_ALLOW_PRIVATE_URLS turns the address check off and admits http (local development,
 * tests).
 *
 * The delivery then connects by host name, so a resolver that answers differently between the
 * check and the connection (DNS rebinding) is not excluded: fetch can be pointed at a checked
 * address only through Deno's `tcp` proxy transport, which speaks plain HTTP even for https.
 */
import { isIpLiteral, reservedReason } from "../shared/ip_address.ts";
import type { WebhookNetwork } from "../shared/services.ts";

export function realNetwork(allowPrivateUrls: boolean): WebhookNetwork {
  return {
    allowPrivateUrls,
    fetch: (url, init) => fetch(url, init),
    resolveDns: (host, type) => Deno.resolveDns(host, type),
  };
}

export const MAX_URL_LENGTH = 2_000;

/** Why `value` is not an acceptable webhook URL as written (before DNS), or null. */
function urlProblem(value: string, allowPrivateUrls: boolean): string | null {
  if (value.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute URL";
  }
  const schemes = allowPrivateUrls ? ["https:", "http:"] : ["https:"];
  if (!schemes.includes(url.protocol)) {
    return allowPrivateUrls ? "must be an http or https URL" : "must be an https URL";
  }
  if (url.username || url.password) return "must not carry credentials";
  if (url.hash || value.includes("#")) return "must not have a fragment";
  if (allowPrivateUrls) return null;
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return "must not name this machine";
  if (isIpLiteral(host)) {
    const why = reservedReason(host);
    if (why) return `must not point at a ${why} address`;
  }
  return null;
}

async function addresses(net: WebhookNetwork, host: string): Promise<string[]> {
  const lookups = await Promise.allSettled([
    net.resolveDns(host, "A"),
    net.resolveDns(host, "AAAA"),
  ]);
  return lookups.flatMap((r) => r.status === "fulfilled" ? r.value : []);
}

/**
 * Why Steward must not send to `value` now, or null. Adds to `urlProblem` what only DNS tells:
 * a host name that resolves to nothing, or to any reserved address.
 */
export async function targetProblem(net: WebhookNetwork, value: string): Promise<string | null> {
  const problem = urlProblem(value, net.allowPrivateUrls);
  if (problem || net.allowPrivateUrls) return problem;
  const host = new URL(value).hostname.replace(/\.$/, "");
  if (isIpLiteral(host)) return null;
  const found = await addresses(net, host);
  if (found.length === 0) return `${host} does not resolve to any address`;
  for (const ip of found) {
    const why = reservedReason(ip);
    if (why) return `${host} resolves to ${ip}, a ${why} address`;
  }
  return null;
}
