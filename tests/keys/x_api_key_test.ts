import assert from "node:assert/strict";
import { setup } from "../_harness.ts";
import { assertError } from "../_assert.ts";

Deno.test("x-api-key: a service token authenticates in the header; Authorization wins over it", async () => {
  await using h = await setup();
  const reader = await h.serviceToken(["tenants:read"]);
  const ok = await h.call("GET", "/v1/tenants", { headers: { "x-api-key": reader.token } });
  assert.equal(ok.status, 200);
  // Its permissions are the token's, as with Authorization.
  assertError(
    await h.call("POST", "/v1/tenants", {
      headers: { "x-api-key": reader.token },
      body: { name: "Acme", slug: "acme" },
    }),
    403,
    "FORBIDDEN",
  );
  // Both sent: Authorization is the credential, even a bad one.
  assertError(
    await h.call("GET", "/v1/tenants", {
      headers: { "x-api-key": reader.token, Authorization: "Bearer stw_bogus" },
    }),
    401,
    "UNAUTHORIZED",
  );
  // Only service tokens: a session, or anything else, is no credential there.
  const user = await h.user("admin");
  assertError(
    await h.call("GET", "/v1/tenants", { headers: { "x-api-key": user.token } }),
    401,
    "UNAUTHORIZED",
  );
  assertError(
    await h.call("GET", "/v1/tenants", { headers: { "x-api-key": "stw_bogus" } }),
    401,
    "UNAUTHORIZED",
  );
  const doc = await h.call("GET", "/openapi.json");
  assert.deepEqual(doc.body.components.securitySchemes.apiKey, {
    type: "apiKey",
    in: "header",
    name: "x-api-key",
    description: doc.body.components.securitySchemes.apiKey.description,
  });
});
