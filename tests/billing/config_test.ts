/** STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET and STRIPE_API_URL as config.ts reads them. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../config.ts";

const base = { STEWARD_KV_PATH: ":memory:" };
const KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const SECRET = "whsec_0123456789abcdef";

Deno.test("config: Stripe is off by default, on with both variables, at Stripe's API by default", () => {
  const off = loadConfig(base);
  assert.equal(off.STRIPE_SECRET_KEY, undefined);
  assert.equal(off.STRIPE_API_URL, "https://api.stripe.com");
  const on = loadConfig({
    ...base,
    STRIPE_SECRET_KEY: KEY,
    STRIPE_WEBHOOK_SECRET: SECRET,
    STRIPE_API_URL: "http://127.0.0.1:12111",
  });
  assert.deepEqual(
    [on.STRIPE_SECRET_KEY, on.STRIPE_WEBHOOK_SECRET, on.STRIPE_API_URL],
    [KEY, SECRET, "http://127.0.0.1:12111"],
  );
});

Deno.test("config: one Stripe variable without the other, or a malformed one, stops start-up", () => {
  assert.throws(
    () => loadConfig({ ...base, STRIPE_SECRET_KEY: KEY }),
    (err: Error) =>
      err instanceof ConfigError && /STRIPE_WEBHOOK_SECRET: .*together/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ ...base, STRIPE_WEBHOOK_SECRET: SECRET }),
    (err: Error) => err instanceof ConfigError && /STRIPE_SECRET_KEY: /.test(err.message),
  );
  for (
    const [name, value] of [
      ["STRIPE_SECRET_KEY", "pk_test_publishable0001"],
      ["STRIPE_WEBHOOK_SECRET", "not-a-secret"],
      ["STRIPE_API_URL", "api.stripe.com"],
      ["STRIPE_API_URL", "https://api.stripe.com/v1"],
    ]
  ) {
    assert.throws(
      () =>
        loadConfig({
          ...base,
          STRIPE_SECRET_KEY: KEY,
          STRIPE_WEBHOOK_SECRET: SECRET,
          [name]: value,
        }),
      (err: Error) => err instanceof ConfigError && err.message.includes(name),
      `${name}=${value}`,
    );
  }
});
