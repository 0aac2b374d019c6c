/**
 * Envelope encryption for what Steward must keep but never store in clear (signing keys,
 * webhook secrets, tenant secrets). Each tenant has a ring of random 256-bit data keys, and the
 * platform one for what no tenant owns (platform webhook endpoints, mail bodies), stored wrapped
 * by the master key (STEWARD_MASTER_KEY, AES-256-GCM). The ring's current key seals; every key
 * still in the ring opens what it sealed (`Sealed.kid` names it), so a rotation (vault_rotation in
 * domain/platform) can re-seal at its own pace and then drop the old key. Values are bound by
 * their AAD to the record they belong to, so a ciphertext copied onto another record does not
 * open. Without a master key the vault is closed: what needs it answers 503 and says why.
 */
import { commit } from "../../kv/commit.ts";
import { keys } from "../../kv/keys.ts";
import { AppError } from "../shared/errors.ts";
import type {
  DataKeyRing,
  KeyOwner,
  Sealed,
  Sealer,
  VaultState,
  WrappedDataKey,
} from "../shared/services.ts";
import type { Versioned } from "../../kv/table.ts";
import { iso } from "../shared/time.ts";
import { newId } from "../shared/ids.ts";
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
const ringKey = (owner: KeyOwner) =>
  owner === null ? keys.platformDataKey() : keys.tenantDataKey(owner);

/** The kid of an owner's first key, sealed before keys had ids (and so before any rotation). */
export const FIRST_KID = "dky_first";
/** How long a process seals with the ring it read: a rotation waits this out twice. */
export const RING_FRESH_MS = 5_000;
/** Rings and unwrapped data keys held in memory, each at most (the oldest added go first). */
const MAX_CACHED_KEYS = 10_000;

/** The AAD of a wrapped data key: binds it to its owner (and kid, for all but the first key). */
const wrapAad = (owner: KeyOwner, kid: string) =>
  kid === FIRST_KID ? `data_key:${ownerName(owner)}` : `data_key:${ownerName(owner)}:${kid}`;

/** A stored ring; the record of a first key, from before rings, reads as a ring of one. */
function asRing(value: DataKeyRing | Sealed): DataKeyRing {
  if ("current" in value) return value;
  return {
    current: FIRST_KID,
    keys: { [FIRST_KID]: { wrapped: value, master_key_id: "", created_at: iso(0) } },
    since: iso(0),
  };
}

interface MasterKeyHandle {
  id: string;
  key: Promise<CryptoKey>;
}

const importAes = (raw: Uint8Array<ArrayBuffer>) =>
  crypto.subtle.importKey("raw", raw, AES, false, ["encrypt", "decrypt"]);

export interface VaultOptions {
  /** STEWARD_MASTER_KEY_PREVIOUS: opens data keys not yet re-wrapped after a master rotation. */
  previous?: Uint8Array<ArrayBuffer> | null;
  now?: () => number;
  /** Rings and unwrapped data keys held at most, each (default MAX_CACHED_KEYS). */
  maxCached?: number;
}

export class Vault implements Sealer {
  /** The master key, then the previous one when given. */
  readonly #masters: MasterKeyHandle[];
  /** The master key as HKDF input, for keys derived from it (derivedKey). */
  readonly #derivation: Promise<CryptoKey> | null;
  /** Rings as last read, by owner: sealing reads KV at most every RING_FRESH_MS. */
  readonly #rings = new Map<string, { ring: Versioned<DataKeyRing>; at: number }>();
  /** Unwrapped data keys by owner and kid: an unwrap costs a KV read and a decryption. */
  readonly #keys = new Map<string, Promise<CryptoKey>>();
  readonly #now: () => number;
  readonly #maxCached: number;

  readonly state: VaultState;

  /** `masterKey`: 32 bytes, or null for a closed (sealed) vault. */
  constructor(
    masterKey: Uint8Array<ArrayBuffer> | null,
    source: VaultState["source"] = "env",
    opts: VaultOptions = {},
  ) {
    this.#now = opts.now ?? Date.now;
    this.#maxCached = opts.maxCached ?? MAX_CACHED_KEYS;
    this.#masters = [masterKey, opts.previous ?? null]
      .filter((k): k is Uint8Array<ArrayBuffer> => k !== null)
      .map((k) => ({ id: masterKeyId(k), key: importAes(k) }));
    if (!masterKey) this.#masters.length = 0;
    this.#derivation = masterKey
      ? crypto.subtle.importKey("raw", masterKey, "HKDF", false, ["deriveKey"])
      : null;
    this.state = masterKey
      ? {
        sealed: false,
        key_id: masterKeyId(masterKey),
        source,
        previous_key_id: this.#masters[1]?.id ?? null,
      }
      : { sealed: true, key_id: null, source: null, previous_key_id: null };
  }

  #master(): MasterKeyHandle {
    if (!this.#masters.length) {
      throw new AppError(
        "UNAVAILABLE",
        "the vault is closed: set STEWARD_MASTER_KEY (32 bytes, base64) to store keys and secrets",
      );
    }
    return this.#masters[0];
  }

  /** The owner's ring, made with its first key on first use (once, even when raced). */
  async #ring(kv: Deno.Kv, owner: KeyOwner, fresh = false): Promise<Versioned<DataKeyRing>> {
    const name = ownerName(owner);
    const cached = this.#rings.get(name);
    if (!fresh && cached && this.#now() - cached.at < RING_FRESH_MS) return cached.ring;
    this.#master();
    for (;;) {
      const stored = await kv.get<DataKeyRing | Sealed>(ringKey(owner));
      if (stored.value) {
        const ring = { value: asRing(stored.value), versionstamp: stored.versionstamp! };
        this.#holdRing(name, { ring, at: this.#now() });
        return ring;
      }
      const kid = newId("dky", this.#now());
      const ring: DataKeyRing = {
        current: kid,
        keys: { [kid]: await this.#newKey(owner, kid) },
        since: iso(this.#now()),
      };
      // Two first uses at once: one commit wins, the other reads the winner's ring.
      await commit(kv.atomic().check(stored).set(ringKey(owner), ring));
    }
  }

  async #newKey(owner: KeyOwner, kid: string): Promise<WrappedDataKey> {
    const master = this.#master();
    const raw = crypto.getRandomValues(new Uint8Array(32));
    return {
      wrapped: await encrypt(await master.key, raw, wrapAad(owner, kid)),
      master_key_id: master.id,
      created_at: iso(this.#now()),
    };
  }

  /** Opens a wrapped data key with the master that wrapped it (else each master in turn). */
  async #unwrap(
    owner: KeyOwner,
    kid: string,
    entry: WrappedDataKey,
  ): Promise<Uint8Array<ArrayBuffer>> {
    this.#master();
    const masters = [...this.#masters].sort((a, b) =>
      Number(b.id === entry.master_key_id) - Number(a.id === entry.master_key_id)
    );
    for (const [i, master] of masters.entries()) {
      try {
        return await decrypt(await master.key, entry.wrapped, wrapAad(owner, kid));
      } catch (err) {
        if (i === masters.length - 1) {
          throw new Error(
            `data key ${kid} of ${ownerName(owner)} did not open under master key ` +
              `${masters.map((m) => m.id).join(" or ")}: set STEWARD_MASTER_KEY_PREVIOUS to ` +
              `the key it was wrapped with (${entry.master_key_id || "unknown"})`,
            { cause: err },
          );
        }
      }
    }
    throw new Error("unreachable");
  }

  /** Caches `name`'s ring; one per owner (a tenant), so the oldest goes past the bound. */
  #holdRing(name: string, held: { ring: Versioned<DataKeyRing>; at: number }) {
    this.#rings.delete(name);
    this.#rings.set(name, held);
    if (this.#rings.size > this.#maxCached) this.#rings.delete(this.#rings.keys().next().value!);
  }

  /** Rings and data keys held in memory (for the bound's test). */
  get cached(): { rings: number; keys: number } {
    return { rings: this.#rings.size, keys: this.#keys.size };
  }

  /** The owner's data key `kid`, unwrapped once per process. */
  #dataKey(kv: Deno.Kv, owner: KeyOwner, kid: string): Promise<CryptoKey> {
    const name = `${ownerName(owner)}/${kid}`;
    let key = this.#keys.get(name);
    if (!key) {
      key = (async () => {
        let ring = await this.#ring(kv, owner);
        // A key this process has not seen: another process rotated since the ring was read.
        if (!ring.value.keys[kid]) ring = await this.#ring(kv, owner, true);
        const entry = ring.value.keys[kid];
        if (!entry) {
          throw new Error(`data key ${kid} of ${ownerName(owner)} is gone (a rotation dropped it)`);
        }
        return await importAes(await this.#unwrap(owner, kid, entry));
      })();
      key.catch(() => this.#keys.delete(name));
      if (this.#keys.size >= this.#maxCached) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(name, key);
    }
    return key;
  }

  /**
   * A key for one purpose (backups), derived from the master key with HKDF-SHA-256: anyone with
   * the master key derives it again, and it opens nothing the vault seals.
   */
  async derivedKey(purpose: string): Promise<CryptoKey> {
    this.#master();
    return await crypto.subtle.deriveKey(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: new TextEncoder().encode("steward"),
        info: new TextEncoder().encode(purpose),
      },
      await this.#derivation!,
      AES,
      false,
      ["encrypt", "decrypt"],
    );
  }

  async seal(
    kv: Deno.Kv,
    owner: KeyOwner,
    plain: Uint8Array<ArrayBuffer>,
    aad: string,
  ): Promise<Sealed> {
    const { current } = (await this.#ring(kv, owner)).value;
    return { ...await encrypt(await this.#dataKey(kv, owner, current), plain, aad), kid: current };
  }

  async open(
    kv: Deno.Kv,
    owner: KeyOwner,
    sealed: Sealed,
    aad: string,
  ): Promise<Uint8Array<ArrayBuffer>> {
    return await decrypt(await this.#dataKey(kv, owner, sealed.kid ?? FIRST_KID), sealed, aad);
  }

  /** The owner's current kid, read from the store: seals after this use it. */
  async current(kv: Deno.Kv, owner: KeyOwner): Promise<string> {
    return (await this.#ring(kv, owner, true)).value.current;
  }

  /** The owner's ring as stored (null before its first use); reads KV. */
  async ring(kv: Deno.Kv, owner: KeyOwner): Promise<DataKeyRing | null> {
    const stored = await kv.get<DataKeyRing | Sealed>(ringKey(owner));
    return stored.value ? asRing(stored.value) : null;
  }

  /**
   * A new current data key for `owner`; the keys it replaces stay in the ring (they open what
   * they sealed) until `dropKeys`. Returns the new kid and those it replaces.
   */
  async rotate(kv: Deno.Kv, owner: KeyOwner): Promise<{ current: string; replaced: string[] }> {
    for (;;) {
      const ring = await this.#ring(kv, owner, true);
      const kid = newId("dky", this.#now());
      const next: DataKeyRing = {
        current: kid,
        keys: { ...ring.value.keys, [kid]: await this.#newKey(owner, kid) },
        since: iso(this.#now()),
      };
      const done = await commit(
        kv.atomic().check({ key: ringKey(owner), versionstamp: ring.versionstamp })
          .set(ringKey(owner), next),
      );
      if (done) {
        this.#holdRing(ownerName(owner), {
          ring: { value: next, versionstamp: done.versionstamp },
          at: this.#now(),
        });
        return { current: kid, replaced: Object.keys(ring.value.keys) };
      }
    }
  }

  /** Destroys data keys of `owner` (never the current one): what they sealed no longer opens. */
  async dropKeys(kv: Deno.Kv, owner: KeyOwner, kids: string[]): Promise<void> {
    for (;;) {
      const ring = await this.#ring(kv, owner, true);
      const keep = Object.entries(ring.value.keys)
        .filter(([kid]) => kid === ring.value.current || !kids.includes(kid));
      const next = { ...ring.value, keys: Object.fromEntries(keep) };
      if (
        await commit(
          kv.atomic().check({ key: ringKey(owner), versionstamp: ring.versionstamp })
            .set(ringKey(owner), next),
        )
      ) break;
    }
    for (const kid of kids) this.#keys.delete(`${ownerName(owner)}/${kid}`);
  }

  /**
   * Re-wraps the owner's data keys that another master key wrapped (after a master rotation,
   * with the previous key in STEWARD_MASTER_KEY_PREVIOUS). Returns how many it re-wrapped.
   */
  async rewrap(kv: Deno.Kv, owner: KeyOwner): Promise<number> {
    const master = this.#master();
    for (;;) {
      const stored = await kv.get<DataKeyRing | Sealed>(ringKey(owner));
      if (!stored.value) return 0;
      const ring = asRing(stored.value);
      const stale = Object.entries(ring.keys).filter(([, k]) => k.master_key_id !== master.id);
      if (!stale.length && "current" in stored.value) return 0;
      const keys = { ...ring.keys };
      for (const [kid, entry] of stale) {
        const raw = await this.#unwrap(owner, kid, entry);
        keys[kid] = {
          ...entry,
          wrapped: await encrypt(await master.key, raw, wrapAad(owner, kid)),
          master_key_id: master.id,
        };
      }
      if (await commit(kv.atomic().check(stored).set(ringKey(owner), { ...ring, keys }))) {
        this.#rings.delete(ownerName(owner));
        return stale.length;
      }
    }
  }
}
