/**
 * The tenants section in Chromium against a real Steward: a super admin creates a tenant and a
 * key, sees the key once, revokes it, and verify (through the API) answers REVOKED.
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
  name: "console (browser): create a tenant and a key, see the key once, revoke it",
  ...BROWSER_TEST,
  fn: () =>
    withConsole(async (w) => {
      const admin = await w.user("super_admin");
      const acme = await w.api("POST", "/v1/tenants", {
        body: { name: "Acme Inc.", slug: "acme" },
      });
      assert.equal(acme.status, 201);
      const { page, errors } = await w.page();
      await signIn(page, w.server, admin.email);
      await page.getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Tenants" }).click();
      await page.getByRole("heading", { name: "Tenants", level: 1 }).waitFor();
      await assertAccessible(page, "tenants");
      await screenshot(page, "tenants");

      // A refusal (400) is shown in place; then the form again, right.
      await page.getByLabel("Name", { exact: true }).fill("Browser Co");
      await page.getByRole("textbox", { name: /^Slug/ }).fill("Browser Co");
      await page.getByRole("button", { name: "Create tenant" }).click();
      await page.getByRole("alert").getByText(/slug: 3–63 lower-case letters/).waitFor();
      // The browser logs the 400 itself; nothing else may be logged.
      const refused = errors.findIndex((e) => /status of 400/.test(e));
      assert.ok(refused >= 0);
      errors.splice(refused, 1);
      await page.getByLabel("Name", { exact: true }).fill("Browser Co");
      await page.getByRole("textbox", { name: /^Slug/ }).fill("browser-co");
      await page.getByRole("button", { name: "Create tenant" }).click();
      await page.getByRole("heading", { name: "Tenant Browser Co", level: 1 }).waitFor();
      await page.getByText("Tenant created.").waitFor();

      await page.getByLabel("Key name").fill("Checkout");
      await page.getByRole("button", { name: "Create key" }).click();
      const shown = page.locator(".secret");
      await shown.waitFor();
      const secret = (await shown.textContent())!.trim();
      assert.match(secret, /^sk_live_/);
      await page.locator("#chart-usage canvas").first().waitFor();
      assert.ok(await chartDrawn(page, "#chart-usage"), "the usage chart has pixels");
      await assertAccessible(page, "tenant");
      await screenshot(page, "tenant");
      const valid = await w.api("POST", "/v1/keys/verify", { body: { key: secret } });
      assert.equal(valid.body.data.valid, true);

      // Shown once: opening the page again shows the key's start only.
      await page.reload();
      await page.getByRole("heading", { name: "API keys" }).waitFor();
      assert.equal(await page.locator(".secret").count(), 0);
      assert.equal(await page.getByText(secret).count(), 0);

      await page.getByRole("row", { name: /Checkout/ }).getByRole("button", { name: "Revoke" })
        .click();
      await page.getByText("Key revoked.").waitFor();
      const verdict = await w.api("POST", "/v1/keys/verify", { body: { key: secret } });
      assert.equal(verdict.status, 200);
      assert.equal(verdict.body.data.code, "REVOKED");

      await page.setViewportSize({ width: 390, height: 844 });
      await assertAccessible(page, "tenant-phone");
      await screenshot(page, "tenant-phone");
      assert.deepEqual(errors, [], "no script error and no CSP refusal");
    }),
});

Deno.test({
  name: "console (browser): a tenant viewer sees no write buttons, and a forged form post is 403",
  ...BROWSER_TEST,
  fn: () =>
    withConsole(async (w) => {
      const acme = await w.api("POST", "/v1/tenants", { body: { name: "Acme", slug: "acme" } });
      assert.equal(acme.status, 201);
      const key = await w.api("POST", "/v1/tenants/acme/api-keys", {
        body: { name: "gateway", environment: "live" },
      });
      assert.equal(key.status, 201);
      const viewer = await w.user(null);
      const added = await w.api("POST", "/v1/tenants/acme/members", {
        body: { user_id: viewer.id, role: "viewer" },
      });
      assert.equal(added.status, 201, added.text);
      const { page } = await w.page();
      await signIn(page, w.server, viewer.email);
      await page.goto(`${w.server.url}/console/tenants/acme`);
      await page.getByRole("heading", { level: 1 }).waitFor();
      await page.getByText("gateway").first().waitFor();
      for (const label of ["Create key", "Revoke", "Rotate", "Invite", "Suspend tenant"]) {
        assert.equal(
          await page.getByRole("button", { name: label, exact: true }).count(),
          0,
          `a viewer sees no ${label} button`,
        );
      }
      await assertAccessible(page, "tenant-viewer");
      await screenshot(page, "tenant-viewer");
      // The form the page leaves out, posted anyway with the session's own CSRF token: the API's
      // permission check refuses it, and the key still verifies.
      const keyId = key.body.data.id as string;
      const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
      const status = await page.evaluate(async ([id, csrf]) => {
        const res = await fetch(`/console/tenants/acme/keys/${id}/revoke`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ _csrf: csrf, _nonce: "forged-1" }).toString(),
        });
        return res.status;
      }, [keyId, csrf]);
      assert.equal(status, 403);
      const verdict = await w.api("POST", "/v1/keys/verify", {
        body: { key: key.body.data.key },
      });
      assert.equal(verdict.body.data.code, "VALID");
    }),
});
