/** config.ts: settings parsed once at start-up; a bad value names its variable. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../config.ts";

Deno.test("config: STEWARD_TRUSTED_PROXIES takes addresses and CIDR blocks, and names a bad one", () => {
  assert.deepEqual(loadConfig({}).STEWARD_TRUSTED_PROXIES, []);
  const blocks = loadConfig({ STEWARD_TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1,fd00::/8" })
    .STEWARD_TRUSTED_PROXIES;
  assert.deepEqual(blocks.map((b) => [b.family, b.bits]), [[4, 8], [4, 32], [6, 8]]);
  assert.throws(
    () => loadConfig({ STEWARD_TRUSTED_PROXIES: "10.0.0.0/8,proxy.internal" }),
    (err: Error) =>
      err instanceof ConfigError && /STEWARD_TRUSTED_PROXIES/.test(err.message) &&
      /"proxy.internal" is not an address or CIDR block/.test(err.message),
  );
});

Deno.test("config: production refuses to start without SMTP unless mail is disabled", () => {
  assert.throws(
    () => loadConfig({ STEWARD_ENV: "production" }),
    (err: Error) =>
      err instanceof ConfigError && /STEWARD_SMTP_URL: required in production/.test(err.message),
  );
  assert.equal(
    loadConfig({ STEWARD_ENV: "production", STEWARD_EMAIL_DISABLED: "true" }).STEWARD_ENV,
    "production",
  );
  const smtp = loadConfig({
    STEWARD_ENV: "production",
    STEWARD_SMTP_URL: "smtp://u:p@mail.example.com:587",
  });
  assert.equal(smtp.STEWARD_PUBLIC_URL, "http://localhost:8000", "links default to this server");
  assert.throws(() => loadConfig({ STEWARD_SMTP_URL: "http://mail.example.com" }), ConfigError);
});
