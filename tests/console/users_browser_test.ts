/**
 * The Users and Audit sections in Chromium against a real Steward: an admin finds a user, blocks
 * them and finds `user.blocked` on the audit page filtered by action; support reads the same
 * user with the email masked and no buttons. axe-core and screenshots on each page.
 */
import assert from "node:assert/strict";
import { assertAccessible, BROWSER_TEST, screenshot, signIn, withConsole } from "./_browser.ts";

Deno.test({
  name: "console (browser): block a user and find it in the audit; support reads emails masked",
  ...BROWSER_TEST,
  fn: () =>
    withConsole(async (w) => {
      const admin = await w.user("admin");
      const support = await w.user("support");
      const target = await w.user(null);
      const sections = (page: Awaited<ReturnType<typeof w.page>>["page"]) =>
        page.getByRole("navigation", { name: "Sections" });

      const { page, errors } = await w.page();
      await signIn(page, w.server, admin.email);
      await sections(page).getByRole("link", { name: "Users" }).click();
      await page.getByRole("heading", { name: "Users", level: 1 }).waitFor();
      await page.getByLabel("Email, username or name").fill(target.email);
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForURL(/search=/);
      assert.equal(await page.getByRole("link", { name: admin.email }).count(), 0);
      await assertAccessible(page, "users");
      await screenshot(page, "users");

      await page.getByRole("link", { name: target.email }).click();
      await page.getByRole("heading", { name: `User ${target.email}`, level: 1 }).waitFor();
      await assertAccessible(page, "user");
      await screenshot(page, "user");
      await page.getByLabel("Reason for blocking").fill("Chargebacks on three invoices");
      await page.getByRole("button", { name: "Block", exact: true }).click();
      await page.getByText("The user is blocked and signed out everywhere.").waitFor();
      await page.getByRole("button", { name: "Unblock" }).waitFor();
      assert.match(await page.locator("dl.facts").textContent() ?? "", /Chargebacks/);
      await page.setViewportSize({ width: 390, height: 844 });
      await screenshot(page, "user-phone");
      await page.setViewportSize({ width: 1280, height: 800 });

      await sections(page).getByRole("link", { name: "Audit" }).click();
      await page.getByRole("heading", { name: "Audit trail", level: 1 }).waitFor();
      await page.getByLabel("Action (comma-separated)").fill("user.blocked");
      await page.getByRole("button", { name: "Filter" }).click();
      await page.waitForURL(/action=user\.blocked/);
      const row = page.getByRole("row", { name: /user\.blocked/ });
      assert.equal(await row.count(), 1);
      assert.match(await row.textContent() ?? "", new RegExp(admin.id));
      assert.equal(await page.getByRole("row", { name: /user\.created/ }).count(), 0);
      await assertAccessible(page, "audit");
      await screenshot(page, "audit");
      assert.deepEqual(errors, [], "no script error and no CSP refusal");

      // Support, in a browser of its own: masked emails on the list and the page, no buttons.
      const staff = await w.page();
      await signIn(staff.page, w.server, support.email);
      await sections(staff.page).getByRole("link", { name: "Users" }).click();
      await staff.page.getByRole("heading", { name: "Users", level: 1 }).waitFor();
      const masked = staff.page.getByRole("link", { name: /^c\*\*\*@e\*\*\*\.com$/ });
      assert.equal(await masked.count(), 3, "the three users, each email masked");
      assert.equal(await staff.page.getByText(target.email).count(), 0);
      await screenshot(staff.page, "users-support");
      await staff.page.goto(`${w.server.url}/console/users/${target.id}`);
      await staff.page.getByRole("heading", { name: "User c***@e***.com", level: 1 }).waitFor();
      assert.equal(await staff.page.getByText(target.email).count(), 0);
      assert.equal(
        await staff.page.getByRole("button", { name: /Block|Unblock|Erase/ }).count(),
        0,
      );
      await assertAccessible(staff.page, "user-support");
      assert.deepEqual(staff.errors, []);
    }),
});
