/** Assertions and fixtures the members and invitations suites share. */
import assert from "node:assert/strict";
import type { TenantRole } from "../domain/access/permissions.ts";
import type { Harness, Reply } from "./_harness.ts";

/** An error envelope with `status` and `code`. */
export function assertError(res: Reply, status: number, code: string) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body?.success, false);
  assert.equal(res.body?.error?.code, code);
}

/** 400 BAD_REQUEST whose details name an issue at each of `paths` ("json.role", …). */
export function assertInvalid(res: Reply, ...paths: string[]) {
  assertError(res, 400, "BAD_REQUEST");
  const got = (res.body.error.details as { path: unknown[] }[]).map((d) => d.path.join("."));
  for (const path of paths) {
    assert.ok(got.includes(path), `expected an issue at ${path}, got [${got.join(", ")}]`);
  }
}

/** A logged-in user without a platform role, made `role` in the tenant. */
export async function memberOf(h: Harness, tenantId: string, role: TenantRole) {
  const user = await h.user(null);
  await h.member(tenantId, user.id, role);
  return user;
}
