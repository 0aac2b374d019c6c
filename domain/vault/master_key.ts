/**
 * Where the vault's master key comes from. STEWARD_MASTER_KEY wins. Without it, a store in a
 * local file gets a key file beside it (`<store>.master-key`, mode 0600), generated on the first
 * start and read on every later one, so a fresh install has every feature working. A remote
 * store (KV Connect) is shared by processes on other machines, which a local file cannot reach:
 * there the variable is required. A `:memory:` store gets a key for the life of the process.
 */
import { dirname } from "node:path";
import { sha256Hex } from "../shared/secrets.ts";

export type MasterKeySource = "env" | "file" | "memory";

export interface MasterKey {
  bytes: Uint8Array<ArrayBuffer>;
  source: MasterKeySource;
  /** The key file, when the key is one. */
  path: string | null;
  /** True when this start made the key file. */
  generated: boolean;
}

export class MasterKeyError extends Error {}

/** A key as the environment or a key file holds it (base64). */
export const fromBase64 = (text: string) =>
  Uint8Array.from(atob(text.trim()), (c) => c.charCodeAt(0));
const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** The key file of a store in a local file. */
export const masterKeyPath = (kvPath: string) => `${kvPath}.master-key`;

/** A short public name of a key (the first 12 hex digits of its SHA-256): safe to show. */
export const masterKeyId = (bytes: Uint8Array) => sha256Hex(bytes).slice(0, 12);

export async function resolveMasterKey(
  fromEnv: string | undefined,
  kvPath: string,
): Promise<MasterKey> {
  if (fromEnv) return { bytes: fromBase64(fromEnv), source: "env", path: null, generated: false };
  if (kvPath === ":memory:") {
    return {
      bytes: crypto.getRandomValues(new Uint8Array(32)),
      source: "memory",
      path: null,
      generated: true,
    };
  }
  if (/^https?:\/\//.test(kvPath)) {
    throw new MasterKeyError(
      "STEWARD_MASTER_KEY is required with a remote store (KV Connect): every process must " +
        "hold the same key (32 bytes, base64: openssl rand -base64 32)",
    );
  }
  const path = masterKeyPath(kvPath);
  const existing = await readKeyFile(path);
  if (existing) return { bytes: existing, source: "file", path, generated: false };
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  // The store's folder may not exist yet: the key is made before the store is opened.
  await Deno.mkdir(dirname(path), { recursive: true });
  try {
    // createNew: of two processes starting at once on a new store, one writes the key.
    await Deno.writeTextFile(path, `${toBase64(bytes)}\n`, { createNew: true, mode: 0o600 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    const written = await readKeyFile(path, 20);
    if (!written) throw new MasterKeyError(`${path} does not hold a 32-byte key`);
    return { bytes: written, source: "file", path, generated: false };
  }
  return { bytes, source: "file", path, generated: true };
}

/**
 * The key in `path`, or null when there is no file. `tries` waits out another process that has
 * created the file and not yet written it.
 */
async function readKeyFile(path: string, tries = 1): Promise<Uint8Array<ArrayBuffer> | null> {
  for (let i = 1;; i++) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    const bytes = text.trim() ? fromBase64(text) : new Uint8Array(0);
    if (bytes.length === 32) return bytes;
    if (i >= tries) throw new MasterKeyError(`${path} does not hold a 32-byte key`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
