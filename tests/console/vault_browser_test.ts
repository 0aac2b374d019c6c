/**
 * The Vault and Finance sections in Chromium against a real Steward: a super admin reveals a
 * tenant secret with a reason, sees it once, finds the reveal in the audit page, writes a
 * backup, and looks at the keys and at Finance with billing off (no Stripe).
 */
import assert from "node:assert/strict";
import { assertAccessible, BROWSER_TEST, screenshot, signIn, withConsole } from "./_browser.ts";

const VALUE = "EXAMPLE-ONLY-browser-secret-0001";
const REASON = "checking the partner integration";

Deno.test({
  name:
    "console (browser): reveal a secret with a reason and find it in the audit; backups, keys, finance",
  ...BROWSER_TEST,
  fn: () =>
    withConsole(async (w) => {
      const admin = await w.user("super_admin");
      const tenant = await w.api("POST", "/v1/tenants", {
        body: { name: "Vault Co", slug: "vault-co" },
      });
      assert.equal(tenant.status, 201, tenant.text);
      const created = await w.api("POST", "/v1/tenants/vault-co/secrets", {
        body: { name: "partner-key", type: "generic", value: VALUE },
      });
      assert.equal(created.status, 201, created.text);

      const { page, errors } = await w.page();
      await signIn(page, w.server, admin.email);
      await page.getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Vault" }).click();
      await page.getByRole("heading", { name: "Vault", level: 1 }).waitFor();
      assert.equal(await page.getByText(VALUE).count(), 0, "the list shows no value");
      await assertAccessible(page, "vault");
      await screenshot(page, "vault");

      await page.getByRole("link", { name: "Reveal partner-key" }).click();
      await page.getByRole("heading", { name: "Secret partner-key", level: 1 }).waitFor();
      await assertAccessible(page, "vault-secret");
      await screenshot(page, "vault-secret");
      // The reason is required: the browser will not send the form without one.
      await page.getByRole("button", { name: "Reveal" }).click();
      assert.equal(await page.locator(".secret").count(), 0);
      // Too short a reason: the API's refusal on the page, no value.
      await page.getByLabel("Reason").fill("ab");
      await page.getByRole("button", { name: "Reveal" }).click();
      await page.getByRole("alert").waitFor();
      assert.equal(await page.locator(".secret").count(), 0);
      await page.getByLabel("Reason").fill(REASON);
      await page.getByRole("button", { name: "Reveal" }).click();
      const shown = page.locator(".secret");
      await shown.waitFor();
      assert.equal((await shown.textContent())!.trim(), VALUE);
      assert.ok(!page.url().includes(VALUE), "the value is in no URL");
      await assertAccessible(page, "vault-secret-revealed");
      await screenshot(page, "vault-secret-revealed");

      // Once: the page again shows no value.
      await page.goto(`${w.server.url}/console/vault/secrets/${tenant.body.data.id}/partner-key`);
      await page.getByRole("heading", { name: "Secret partner-key", level: 1 }).waitFor();
      assert.equal(await page.locator(".secret").count(), 0);

      // The reveal in the audit trail, through the console's audit page and the API.
      const trail = await w.api("GET", "/v1/admin/audit?action=secret.revealed");
      assert.equal(trail.body.data.length, 1, trail.text);
      assert.equal(trail.body.data[0].actor_id, admin.id);
      await page.goto(`${w.server.url}/console/audit?action=secret.revealed`);
      await page.getByRole("heading", { name: "Audit", level: 1 }).waitFor();
      const row = page.getByRole("row", { name: /secret\.revealed/ });
      assert.equal(await row.count(), 1);
      assert.match((await row.textContent())!, new RegExp(REASON));

      await page.getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Vault" }).click();
      await page.getByRole("navigation", { name: "Vault" })
        .getByRole("link", { name: "Backups" }).click();
      await page.getByRole("heading", { name: "Backups", level: 1 }).waitFor();
      await page.getByRole("button", { name: "Back up now" }).click();
      await page.getByText("The backup is written.").waitFor();
      await page.getByRole("cell", { name: "succeeded" }).waitFor();
      await assertAccessible(page, "vault-backups");
      await screenshot(page, "vault-backups");

      await page.getByRole("navigation", { name: "Vault" })
        .getByRole("link", { name: "Keys and rotation" }).click();
      await page.getByRole("heading", { name: "Keys and rotation", level: 1 }).waitFor();
      await assertAccessible(page, "vault-keys");
      await screenshot(page, "vault-keys");

      await page.getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Finance" }).click();
      await page.getByRole("heading", { name: "Finance", level: 1 }).waitFor();
      await page.getByText("Billing is off").waitFor();
      await page.getByRole("heading", { name: "Stripe sync" }).waitFor();
      await assertAccessible(page, "finance");
      await screenshot(page, "finance");
      await page.setViewportSize({ width: 390, height: 844 });
      await assertAccessible(page, "finance-phone");
      await screenshot(page, "finance-phone");
      // The refused reveal's 400 is logged by the browser as a failed load: expected.
      const unexpected = errors.filter((e) => !/status of 400 \(Bad Request\)/.test(e));
      assert.deepEqual(unexpected, [], "no script error and no CSP refusal");
    }),
});
