/**
 * The console in-process, as a browser without JavaScript uses it: a cookie jar, pages fetched
 * as HTML, forms posted with their CSRF token (tests/console/browser_test.ts drives a real
 * browser against a real process).
 */
import assert from "node:assert/strict";
import { type setup, TEST_PASSWORD } from "../_harness.ts";

type Harness = Awaited<ReturnType<typeof setup>>;

export interface Html {
  status: number;
  headers: Headers;
  text: string;
}

export class ConsoleClient {
  #cookies = new Map<string, string>();
  /** The signed-in session's form token (from the last page read). */
  csrf = "";

  constructor(private readonly h: Harness, readonly ip = "192.0.2.10") {}

  #remember(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, value] = pair.split("=");
      if (value === "" || /Max-Age=0/.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  get cookieHeader() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  hasCookie(name: string) {
    return this.#cookies.has(name);
  }

  async #send(path: string, init: RequestInit): Promise<Html> {
    const headers = new Headers(init.headers);
    if (this.#cookies.size) headers.set("Cookie", this.cookieHeader);
    const res = await this.h.app.request(path, { ...init, headers }, {
      remoteAddr: { hostname: this.ip },
    });
    this.#remember(res);
    const text = await res.text();
    const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
    if (token) this.csrf = token;
    return { status: res.status, headers: res.headers, text };
  }

  get(path: string): Promise<Html> {
    return this.#send(path, { method: "GET" });
  }

  /** Posts a form; its CSRF token is added unless `csrf: false` (or another is given). */
  post(path: string, fields: Record<string, string>, o: { csrf?: boolean } = {}): Promise<Html> {
    const form = new URLSearchParams(fields);
    if (o.csrf !== false && !form.has("_csrf")) form.set("_csrf", this.csrf);
    return this.#send(path, {
      method: "POST",
      body: form.toString(),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
  }

  /** Signs in through the form (a fresh sign-in page first, for its token). */
  async signIn(login: string, password = TEST_PASSWORD): Promise<Html> {
    await this.get("/console/login");
    return await this.post("/console/login", { login, password, next: "/console" });
  }
}

/** A console signed in as a new user with `role`. */
export async function signedIn(h: Harness, role: Parameters<Harness["user"]>[0]) {
  const user = await h.user(role);
  const client = new ConsoleClient(h);
  const res = await client.signIn(user.email);
  assert.equal(res.status, 303, res.text);
  await client.get("/console");
  return { client, user };
}

/** The text of an HTML fragment without its tags, for reading what a page says. */
export const textOf = (html: string) =>
  html.replace(/<[^>]+>/g, " ").replace(/&amp;/g, "&").replace(/\s+/g, " ").trim();
