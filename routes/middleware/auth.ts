/**
 * Authentication (bearer session or service token) and authorization against the route's
 * entry in routes/permissions.ts. On `{tenant}` routes a tenant the caller may not see is 404;
 * one it sees without the permission is 403.
 */
import type { MiddlewareHandler } from "hono";
import { AppError, forbidden, notFound } from "../../domain/shared/errors.ts";
import { permissionsInTenant, type Principal, seesAsStaff } from "../../domain/access/principal.ts";
import { authenticateSession, SESSION_TOKEN_PREFIX } from "../../domain/identity/sessions.ts";
import type { Services } from "../../domain/shared/services.ts";
import { recordRequest } from "../../domain/usage/activity.ts";
import { resolveTenant } from "../../domain/tenancy/tenants.ts";
import { authenticateToken, SERVICE_TOKEN_PREFIX } from "../../domain/keys/tokens.ts";
import type { AppEnv } from "../context.ts";
import type { Access } from "../permissions.ts";

const BEARER = /^Bearer\s+(\S{1,512})$/i;
/** A service token as `x-api-key` carries it. */
export const API_KEY = new RegExp(`^${SERVICE_TOKEN_PREFIX}_\\S{1,508}$`);

/**
 * The secret the caller sent: `Authorization: Bearer …`, or a service token in `x-api-key` (as
 * key-validation APIs are called). Authorization wins when both are sent.
 */
export function credentialOf(authorization: string | undefined, apiKey: string | undefined) {
  if (authorization !== undefined) return BEARER.exec(authorization)?.[1];
  return apiKey !== undefined && API_KEY.test(apiKey) ? apiKey : undefined;
}

async function authenticate(svc: Services, secret: string | undefined): Promise<Principal> {
  if (!secret) {
    throw new AppError(
      "UNAUTHORIZED",
      "send credentials as Authorization: Bearer <token> (or a service token in x-api-key)",
    );
  }
  const principal = secret.startsWith(`${SESSION_TOKEN_PREFIX}_`)
    ? await authenticateSession(svc, secret)
    : secret.startsWith(`${SERVICE_TOKEN_PREFIX}_`)
    ? await authenticateToken(svc, secret)
    : null;
  if (!principal) throw new AppError("UNAUTHORIZED", "the token is invalid, expired or revoked");
  return principal;
}

export function guard(access: Access, tenantScoped: boolean): MiddlewareHandler<AppEnv> {
  if (access === "public") return async (_c, next) => await next();
  return async (c, next) => {
    const svc = c.get("svc");
    // Independent reads, so they go to KV together.
    const [principal, tenant] = await Promise.all([
      authenticate(svc, credentialOf(c.req.header("Authorization"), c.req.header("x-api-key"))),
      tenantScoped ? resolveTenant(svc, c.req.param("tenant") ?? "") : null,
    ]);
    c.set("principal", principal);
    // In memory; written behind with everything else the counters hold.
    recordRequest(svc.counters, principal.id, svc.now());
    if (tenantScoped) {
      // A deleted tenant is gone for everyone but platform staff (its own bound tokens too).
      const hidden = !tenant ||
        (tenant.value.status === "deleted" && !seesAsStaff(principal, tenant.value));
      const granted = hidden ? null : await permissionsInTenant(svc, principal, tenant.value);
      if (!tenant || !granted) throw notFound("tenant");
      if (access !== "authenticated" && !granted.has(access)) {
        throw forbidden(`this needs ${access} in the tenant`);
      }
      c.set("tenant", tenant);
      c.set("tenantPermissions", granted);
    } else if (access !== "authenticated" && !principal.platform.has(access)) {
      throw forbidden(`this needs the ${access} permission`);
    }
    await next();
  };
}
