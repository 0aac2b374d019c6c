/**
 * Tenants named by their slug in lists that carry only tenant ids (secrets, subscriptions): one
 * read of each tenant of the page through the API, and a link to its page. A tenant the user
 * may not read, or one deleted since, stays its id.
 */
import type { Child } from "hono/jsx";
import { type Api, can } from "../api.ts";
import type { ConsoleContext } from "../session.ts";

export async function tenantLinks(
  c: ConsoleContext,
  api: Api,
  ids: string[],
): Promise<(id: string) => Child> {
  const slugs = new Map<string, string>();
  if (can(c, "GET", "/v1/tenants/{tenant}")) {
    const found = await Promise.all(
      [...new Set(ids)].map((id) =>
        api<{ id: string; slug: string }>(c, "GET", `/v1/tenants/${encodeURIComponent(id)}`)
      ),
    );
    for (const res of found) if (res.ok) slugs.set(res.data.id, res.data.slug);
  }
  return (id) => {
    const slug = slugs.get(id);
    return slug ? <a href={`/console/tenants/${encodeURIComponent(slug)}`}>{slug}</a> : id;
  };
}
