/**
 * `/docs`: Swagger UI rendering `/openapi.json`, with every asset served by Steward itself, so
 * the reference works on a closed network. The assets come from the swagger-ui-dist package as
 * text imports, cached by Deno like any other dependency.
 */
import { Hono } from "hono";
import css from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import type { AppEnv } from "./context.ts";

const init = `window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: true,
  });
});
`;

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Steward API reference</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
`;

const ASSETS: Record<string, { body: string; type: string }> = {
  "swagger-ui.css": { body: css, type: "text/css; charset=utf-8" },
  "swagger-ui-bundle.js": { body: bundle, type: "text/javascript; charset=utf-8" },
  "init.js": { body: init, type: "text/javascript; charset=utf-8" },
};

/** Swagger UI needs inline styles; scripts and data come only from this origin. */
const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

export function docsRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    // A page a browser renders: the legacy framing and referrer headers earn their cost here.
    c.header("X-Frame-Options", "DENY");
    c.header("Referrer-Policy", "no-referrer");
    c.header("Cache-Control", "no-cache");
    return c.html(page);
  });
  app.get("/docs/assets/:asset", (c) => {
    const asset = ASSETS[c.req.param("asset")];
    if (!asset) return c.notFound();
    c.header("Cache-Control", "public, max-age=86400");
    return c.body(asset.body, 200, { "Content-Type": asset.type });
  });
  return app;
}
