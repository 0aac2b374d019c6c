/**
 * The console in Chromium against a real Steward process: sign in, the overview's charts drawn,
 * sign out, CSRF refusals, and axe-core on every page. Pages' own scenarios are in
 * tests/console/*_browser_test.ts.
 */
import assert from "node:assert/strict";
import {
  assertAccessible,
  BROWSER_TEST,
  chartDrawn,
  screenshot,
  signIn,
  withConsole,
} from "./_browser.ts";

Deno.test({
  name: "console (browser): sign in, the overview with drawn charts, sign out",
  ...BROWSER_TEST,
  fn: () =>
    withConsole(async (w) => {
      const admin = await w.user("super_admin");
      const { page, errors } = await w.page();
      await page.goto(`${w.server.url}/console`);
      await page.waitForURL(/\/console\/login/);
      await assertAccessible(page, "login");
      await screenshot(page, "login");
      await signIn(page, w.server, admin.email);
      await page.locator("#chart-requests canvas").first().waitFor();
      assert.ok(await chartDrawn(page, "#chart-requests"), "the requests chart has pixels");
      assert.ok(await chartDrawn(page, "#chart-errors"), "the errors chart has pixels");
      assert.equal(await page.getByText("Firing alerts").count(), 1);
      await assertAccessible(page, "overview");
      await screenshot(page, "overview");
      await page.setViewportSize({ width: 390, height: 844 });
      await screenshot(page, "overview-phone");
      assert.deepEqual(errors, [], "no script error and no CSP refusal");
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/console\/login/);
      await page.goto(`${w.server.url}/console`);
      await page.waitForURL(/\/console\/login/);
    }),
});

Deno.test({
  name: "console (browser): a form without its CSRF token is 403",
  ...BROWSER_TEST,
  fn: () =>
    withConsole(async (w) => {
      const admin = await w.user("super_admin");
      const { page } = await w.page();
      await signIn(page, w.server, admin.email);
      // A forged sign-out from the page's own origin, without the token: refused, still signed in.
      const status = await page.evaluate(async () =>
        (await fetch("/console/logout", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: "",
        })).status
      );
      assert.equal(status, 403);
      await page.goto(`${w.server.url}/console`);
      assert.match(page.url(), /\/console$/);
    }),
});
