/**
 * How records are shown to a caller: support staff read emails, names and IP addresses masked
 * (ARCHITECTURE.md, access control), wherever they appear.
 */
import type { AuditEvent } from "../domain/audit/audit.ts";
import type { Job } from "../domain/jobs/jobs.ts";
import type { Principal } from "../domain/access/principal.ts";
import { isIpLiteral } from "../domain/shared/ip_address.ts";
import { type RequestLog } from "../pg/analytics.ts";

export function maskEmail(email: string): string {
  const [local, domain = ""] = email.split("@");
  const dot = domain.lastIndexOf(".");
  const host = dot > 0 ? domain.slice(0, dot) : domain;
  const tld = dot > 0 ? domain.slice(dot) : "";
  return `${local.slice(0, 1)}***@${host.slice(0, 1)}***${tld}`;
}

export function maskIp(ip: string): string {
  if (ip.includes(":")) return ip.split(":").slice(0, 2).join(":") + ":****";
  const parts = ip.split(".");
  return parts.length === 4 ? `${parts[0]}.${parts[1]}.x.x` : "****";
}

export const maskName = (name: string) => name ? `${name.slice(0, 1)}***` : name;

const EMAIL = /[^\s@"]+@[^\s@"]+\.[^\s@"]+/g;
const PII_FIELD = /^(email|name|ip|ip_address)$/;

const maskAs = (field: string, value: string) =>
  field === "email" ? maskEmail(value) : field === "name" ? maskName(value) : maskIp(value);

const IPV4_INSIDE = /\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b/g;

/** Free text with every email- and IP-shaped part masked. */
const maskShapes = (text: string) =>
  isIpLiteral(text) ? maskIp(text) : text.replace(EMAIL, maskEmail).replace(IPV4_INSIDE, maskIp);

/**
 * Masks PII anywhere in a JSON-like value: everything under an email, name or IP field (such as
 * an audit change's before and after), and any email or IP address inside other strings.
 */
export function maskDeep(value: unknown, piiField: string | null = null): unknown {
  if (typeof value === "string") return piiField ? maskAs(piiField, value) : maskShapes(value);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, piiField));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, maskDeep(v, PII_FIELD.test(k) ? k : piiField)]),
    );
  }
  return value;
}

/**
 * A response's data as a masked viewer may see it: every `metadata` or `meta` map in it (on
 * tenants, users, projects, API keys, verify answers) has its email- and IP-shaped values masked,
 * since callers put whatever they like there.
 */
export function maskMetadata<T>(data: T): T {
  if (Array.isArray(data)) return data.map(maskMetadata) as T;
  if (!data || typeof data !== "object") return data;
  return Object.fromEntries(
    Object.entries(data).map((
      [k, v],
    ) => [k, k === "metadata" || k === "meta" ? maskDeep(v) : maskMetadata(v)]),
  ) as T;
}

export const auditView = (viewer: Principal) => (event: AuditEvent): AuditEvent =>
  viewer.masked
    ? {
      ...event,
      ip_address: event.ip_address && maskIp(event.ip_address),
      changes: event.changes && maskDeep(event.changes) as AuditEvent["changes"],
    }
    : event;

/** A request-log entry as `viewer` may see it: support sees masked IPs. */
export const logView = (viewer: Principal) => (entry: RequestLog): RequestLog =>
  viewer.masked && entry.ip ? { ...entry, ip: maskIp(entry.ip) } : entry;

/** A job as `viewer` may see it: support sees PII in its payload and last error masked. */
export const jobView = (viewer: Principal) => (job: Job): Job =>
  viewer.masked
    ? {
      ...job,
      payload: maskDeep(job.payload) as Job["payload"],
      last_error: job.last_error && maskDeep(job.last_error) as string,
    }
    : job;
