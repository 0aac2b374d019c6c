/**
 * Steward's TypeScript client: `createSteward({ url, token })`, `unwrap`, `StewardError`, and the
 * types generated from Steward's OpenAPI document (`deno task clients:generate`).
 */
export {
  createSteward,
  type ListItem,
  type ListPath,
  type PageParams,
  type StewardClient,
  type StewardOptions,
  unwrap,
} from "./client.ts";
export { StewardError } from "./errors.ts";
export { type FetchLike, retryAfterMs, type RetryOptions } from "./retry.ts";
export type { components, operations, paths } from "./schema.gen.ts";
