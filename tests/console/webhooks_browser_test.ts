/**
 * Webhooks and Operations in Chromium against a real Steward process: a platform endpoint whose
 * receiver (a local server) fails, a test delivery that fails, retried from the console once the
 * receiver is back, and seen delivered; axe-core and a screenshot of every page on the way.
 */
import assert from "node:assert/strict";
import { assertAccessible, BROWSER_TEST, screenshot, signIn, withConsole } from "./_browser.ts";

Deno.test({
  name: "console (browser): a failed delivery retried from the console; the operations pages",
  ...BROWSER_TEST,
  fn: async () => {
    // The receiver: 500 until it is switched back on, then 204.
    let failing = true;
    await using receiver = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        await req.body?.cancel();
        return failing
          ? new Response("receiver down", { status: 500 })
          : new Response(null, { status: 204 });
      },
    );
    const hookUrl = `http://127.0.0.1:${receiver.addr.port}/hook`;

    await withConsole(async (w) => {
      const created = await w.api("POST", "/v1/admin/webhooks", {
        body: { url: hookUrl, description: "Local receiver", event_types: ["webhook.test"] },
      });
      assert.equal(created.status, 201, created.text);
      const ops = await w.user("ops");
      const { page, errors } = await w.page();
      await signIn(page, w.server, ops.email);

      await page.getByRole("link", { name: "Webhooks" }).click();
      await page.waitForURL(/\/console\/webhooks$/);
      await page.getByRole("link", { name: hookUrl }).click();
      await page.waitForURL(/\/console\/webhooks\/whk_/);
      await page.getByRole("button", { name: "Send a test event" }).click();
      await page.getByText("The test event's first attempt failed").waitFor();
      await assertAccessible(page, "webhook endpoint");
      await screenshot(page, "webhook-endpoint");

      await page.getByRole("link", { name: /^msg_/ }).click();
      await page.waitForURL(/\/deliveries\/msg_/);
      await page.getByText("receiver down").waitFor();
      assert.equal(await page.locator("td strong", { hasText: /^500$/ }).count(), 1);

      failing = false;
      await page.getByRole("button", { name: "Retry now" }).click();
      await page.getByText("Retried: delivered.").waitFor();
      assert.equal(await page.locator("td strong", { hasText: /^204$/ }).count(), 1);
      await assertAccessible(page, "webhook delivery");
      await screenshot(page, "webhook-delivery");

      await page.goto(`${w.server.url}/console/webhooks`);
      await assertAccessible(page, "webhooks");
      await screenshot(page, "webhooks");

      for (const tab of ["queues", "alerts", "health", "logs", "usage", "cost"]) {
        await page.goto(`${w.server.url}/console/operations/${tab}`);
        await page.locator("h1").waitFor();
        await assertAccessible(page, `operations ${tab}`);
        await screenshot(page, `operations-${tab}`);
      }
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${w.server.url}/console/operations/health`);
      await screenshot(page, "operations-health-phone");
      assert.deepEqual(errors, [], "no script error and no CSP refusal");
    }, { WEBHOOK_ALLOW_PRIVATE_URLS: "true" });
  },
});
