/**
 * A real Steward process and Debian's Chromium driven by playwright-core, for the console's
 * browser tests. Screenshots go to test-output/console/ (ignored by git) so anyone can look at
 * each page after `deno task ci`. Without a Chromium on the PATH the tests are skipped, unless
 * STEWARD_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import axeSource from "axe-core/axe.min.js" with { type: "text" };
import { randomAlnum, ServerProcess, tempDir } from "../_server.ts";

const SHOTS = new URL("../../test-output/console/", import.meta.url);
export const PASSWORD = "plum kettle orbit harbor lantern";

function findChromium(): string | null {
  const wanted = Deno.env.get("CHROMIUM_PATH");
  if (wanted) return wanted;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch {
        // not here
      }
    }
  }
  return null;
}

export const CHROMIUM = findChromium();
if (!CHROMIUM && Deno.env.get("STEWARD_REQUIRE_BROWSER") === "1") {
  throw new Error("browser tests: no chromium on the PATH (apt-get install -y chromium)");
}
/** Deno.test options: skipped without a browser. */
export const BROWSER_TEST = { ignore: !CHROMIUM, sanitizeResources: false, sanitizeOps: false };

export interface World {
  server: ServerProcess;
  /** The super-admin service token. */
  root: string;
  browser: Browser;
  /** Calls the API as root (or with `token`). */
  api: ServerProcess["call"];
  /** A user with `role` and the shared test password; returns its email and id. */
  user(role: string | null): Promise<{ id: string; email: string }>;
  /** A new page; its console errors (a CSP refusal, a script error) are collected. */
  page(): Promise<{ page: Page; errors: string[] }>;
}

let users = 0;

/** Runs `fn` against a fresh Steward and browser, and tears both down. */
export async function withConsole(
  fn: (w: World) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  await using dir = await tempDir();
  const root = `stw_${randomAlnum(40)}`;
  await using server = await ServerProcess.start({
    env: { STEWARD_KV_PATH: dir.kvPath, STEWARD_BOOTSTRAP_TOKEN: root, ...env },
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] });
  try {
    const api: ServerProcess["call"] = (method, path, o = {}) =>
      server.call(method, path, { token: root, ...o });
    await fn({
      server,
      root,
      browser,
      api,
      async user(role) {
        const email = `console${++users}_${randomAlnum(6)}@example.com`;
        const res = await api("POST", "/v1/users", {
          body: { email, name: `Console user ${users}`, password: PASSWORD, platform_role: role },
        });
        assert.equal(res.status, 201, res.text);
        return { id: res.body.data.id, email };
      },
      async page() {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
        page.on("pageerror", (e) => errors.push(e.message));
        return { page, errors };
      },
    });
  } finally {
    await browser.close();
  }
}

export async function signIn(page: Page, server: ServerProcess, email: string) {
  await page.goto(`${server.url}/console/login`);
  await page.getByLabel("Email or username").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console$/);
}

/** Writes the page's screenshot to test-output/console/<name>.png (and a phone-width one). */
export async function screenshot(page: Page, name: string) {
  await Deno.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, SHOTS).pathname, fullPage: true });
}

/**
 * axe-core on the page as it is: no serious or critical violation. Run through the DevTools
 * protocol, which the page's CSP does not govern (an injected <script> it would refuse).
 */
export async function assertAccessible(page: Page, name: string) {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const axe = (globalThis as any).axe;
    const result = await axe.run({ resultTypes: ["violations"] });
    return result.violations.map((v: { id: string; impact: string; nodes: unknown[] }) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.length,
    }));
  });
  const bad = found.filter((v: { impact: string }) =>
    v.impact === "serious" || v.impact === "critical"
  );
  assert.deepEqual(bad, [], `${name}: accessibility violations ${JSON.stringify(bad)}`);
}

/** What is read of a <canvas> (the tests are type-checked without the DOM's types). */
interface Canvas {
  width: number;
  height: number;
  getContext(kind: "2d"): {
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
  } | null;
}

/** Whether a canvas in the element has drawn pixels (a chart, not a blank box). */
export async function chartDrawn(page: Page, selector: string): Promise<boolean> {
  return await page.locator(`${selector} canvas`).first().evaluate((canvas: Canvas) => {
    const ctx = canvas.getContext("2d");
    if (!ctx || canvas.width === 0) return false;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
    return false;
  });
}
