/**
 * Envelope encryption for what Steward must keep but never store in clear (signing keys,
 * webhook secrets, tenant secrets). Each tenant gets a random 256-bit data key, and the
 * platform one for what no tenant owns (platform webhook endpoints), stored wrapped by the
 * master key (STEWARD_MASTER_KEY, AES-256-GCM); values are sealed with AES-256-GCM under the
 * tenant's data key and bound by their AAD to the record they belong to, so a ciphertext
 * copied onto another record does not open. Without a master key the vault is closed: what
 * needs it answers 503 and says why.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { AppError } from "../shared/errors.ts";
import type { KeyOwner, Sealed, Sealer, VaultState } from "../shared/services.ts";
import { masterKeyId } from "./master_key.ts";

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const AES = { name: "AES-GCM", length: 256 } as const;

async function encrypt(
  key: CryptoKey,
  plain: Uint8Array<ArrayBuffer>,
  aad: string,
): Promise<Sealed> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(aad) },
    key,
    plain,
  );
  return { iv: b64(iv), data: b64(new Uint8Array(data)) };
}

async function decrypt(
  key: CryptoKey,
  sealed: Sealed,
  aad: string,
): Promise<Uint8Array<ArrayBuffer>> {
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: unb64(sealed.iv), additionalData: new TextEncoder().encode(aad) },
      key,
      unb64(sealed.data),
    );
    return new Uint8Array(plain);
  } catch {
    throw new Error(`a sealed value did not open (${aad}): wrong key, or moved to another record`);
  }
}

const ownerName = (owner: KeyOwner) => owner ?? "platform";

export class Vault implements Sealer {
  readonly #master: Promise<CryptoKey> | null;
  /** Unwrapped data keys, by owner: unwrapping costs a KV read and a decryption. */
  readonly #dataKeys = new Map<string, Promise<CryptoKey>>();

  readonly state: VaultState;

  /** `masterKey`: 32 bytes, or null for a closed (sealed) vault. */
  constructor(masterKey: Uint8Array<ArrayBuffer> | null, source: VaultState["source"] = "env") {
    this.#master = masterKey
      ? crypto.subtle.importKey("raw", masterKey, AES, false, ["encrypt", "decrypt"])
      : null;
    this.state = masterKey
      ? { sealed: false, key_id: masterKeyId(masterKey), source }
      : { sealed: true, key_id: null, source: null };
  }

  #masterKey(): Promise<CryptoKey> {
    if (!this.#master) {
      throw new AppError(
        "UNAVAILABLE",
        "the vault is closed: set STEWARD_MASTER_KEY (32 bytes, base64) to store keys and secrets",
      );
    }
    return this.#master;
  }

  /** The owner's data key, created (once, even under concurrent first uses) when missing. */
  #dataKey(kv: Deno.Kv, owner: KeyOwner): Promise<CryptoKey> {
    const name = ownerName(owner);
    let key = this.#dataKeys.get(name);
    if (!key) {
      key = this.#loadDataKey(kv, owner);
      key.catch(() => this.#dataKeys.delete(name));
      this.#dataKeys.set(name, key);
    }
    return key;
  }

  async #loadDataKey(kv: Deno.Kv, owner: KeyOwner): Promise<CryptoKey> {
    const master = await this.#masterKey();
    const aad = `data_key:${ownerName(owner)}`;
    const where = owner === null ? keys.platformDataKey() : keys.tenantDataKey(owner);
    for (;;) {
      const stored = await kv.get<Sealed>(where);
      if (stored.value) {
        const raw = await decrypt(master, stored.value, aad);
        return await crypto.subtle.importKey("raw", raw, AES, false, ["encrypt", "decrypt"]);
      }
      const raw = crypto.getRandomValues(new Uint8Array(32));
      const wrapped = await encrypt(master, raw, aad);
      // Two first uses at once: one commit wins, the other reads the winner's key.
      await commit(kv.atomic().check(stored).set(where, wrapped));
    }
  }

  async seal(
    kv: Deno.Kv,
    owner: KeyOwner,
    plain: Uint8Array<ArrayBuffer>,
    aad: string,
  ): Promise<Sealed> {
    return await encrypt(await this.#dataKey(kv, owner), plain, aad);
  }

  async open(
    kv: Deno.Kv,
    owner: KeyOwner,
    sealed: Sealed,
    aad: string,
  ): Promise<Uint8Array<ArrayBuffer>> {
    return await decrypt(await this.#dataKey(kv, owner), sealed, aad);
  }
}
