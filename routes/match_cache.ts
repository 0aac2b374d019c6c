/**
 * Hono's router with its answers for recent paths remembered. Two of the API's paths
 * (`POST /v1/tenants/test`, `POST …/secrets/smtp/test`) are literals where other routes have a
 * parameter, which Hono's RegExpRouter refuses, so its SmartRouter settles on the TrieRouter:
 * a walk of ~800 routes' nodes on every request, a twentieth of a cheap route's time
 * (bench/RESULTS.md). The same method and path always match the same handlers and parameters,
 * so a match is made once per path and kept, as RegExpRouter keeps its static paths' matches.
 */
import type { Result, Router } from "hono/router";

/** Paths remembered, oldest forgotten first: every route with room for the busiest ids. */
export const MATCHES_KEPT = 4_096;
/** Longer paths are matched each time: a path that long is rarely asked for twice. */
const LONGEST_KEPT_PATH = 256;

export class MatchCache<T> implements Router<T> {
  readonly #router: Router<T>;
  readonly #matches = new Map<string, Result<T>>();

  constructor(router: Router<T>) {
    this.#router = router;
  }

  get name() {
    return `MatchCache + ${this.#router.name}`;
  }

  /** Paths whose match is held (for the bound's test). */
  get size() {
    return this.#matches.size;
  }

  add(method: string, path: string, handler: T) {
    this.#matches.clear();
    this.#router.add(method, path, handler);
  }

  match(method: string, path: string): Result<T> {
    if (path.length > LONGEST_KEPT_PATH) return this.#router.match(method, path);
    const key = `${method} ${path}`;
    let result = this.#matches.get(key);
    if (result === undefined) {
      result = this.#router.match(method, path);
      if (this.#matches.size >= MATCHES_KEPT) {
        this.#matches.delete(this.#matches.keys().next().value!);
      }
      this.#matches.set(key, result);
    }
    return result;
  }
}
