/**
 * The backup file: every entry of a store, serialized losslessly with V8's serializer (as KV
 * stores values: Uint8Array, bigint, Date, Map… survive; a KvU64 is tagged, since V8 sees a
 * plain object), compressed with gzip, and cut into chunks each sealed with AES-256-GCM:
 *
 *   "STEWARD-BACKUP/1\n"
 *   u32 length, header (JSON: id, created_at, master_key_id, consistency, chunk_bytes)
 *   frames, one per chunk of the gzip stream: u32 length, u8 last?, 12-byte IV, ciphertext+tag
 *   32 bytes: the SHA-256 of everything before them
 *
 * A chunk's AAD is the SHA-256 of the magic and header, its index and whether it is the last:
 * a chunk moved, dropped or taken from another backup, a cut file or an edited header does not
 * open. The trailing checksum tells a damaged file (it fails) from a wrong key (it holds, a tag
 * fails). Both directions stream: memory holds a chunk and a few entries, whatever the store.
 */
import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
import { AppError } from "../shared/errors.ts";

const MAGIC = new TextEncoder().encode("STEWARD-BACKUP/1\n");
/** Plaintext bytes per sealed chunk. */
const CHUNK_BYTES = 256 * 1024;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DIGEST_BYTES = 32;
const MAX_HEADER_BYTES = 64 * 1024;

/** Record kinds in the compressed stream: an entry, a KvU64 entry, the end (with the count). */
const ENTRY = 0;
const COUNTER = 1;
const END = 2;

/** How the entries were read: at one instant, or page by page (see vault/backups.ts). */
export type Consistency = "point_in_time" | "per_page";

export interface ArchiveHeader {
  format: 1;
  id: string;
  created_at: string;
  /** The master key the chunk key derives from (its public id), so a restore can name it. */
  master_key_id: string | null;
  consistency: Consistency;
  chunk_bytes: number;
}

export interface ArchiveEntry {
  key: Deno.KvKey;
  value: unknown;
  /** Serialized size of key and value: what a restore budgets its commits by. */
  size: number;
}

export interface WrittenArchive {
  entries: number;
  bytes: number;
  /** SHA-256 of the whole file, as `sha256sum` prints it. */
  sha256: string;
}

const invalid = (message: string) => new AppError("UNPROCESSABLE", message);

const u32 = (n: number) => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
};
const readU32 = (bytes: Uint8Array) =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Binds a chunk to its file, its place and whether it ends the stream. */
function chunkAad(headerDigest: Uint8Array, index: number, last: boolean): Uint8Array<ArrayBuffer> {
  const aad = new Uint8Array(DIGEST_BYTES + 9);
  aad.set(headerDigest);
  new DataView(aad.buffer).setBigUint64(DIGEST_BYTES, BigInt(index));
  aad[DIGEST_BYTES + 8] = last ? 1 : 0;
  return aad;
}

function encodeHeader(header: ArchiveHeader): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(JSON.stringify(header));
  return concat([MAGIC, u32(json.length), json]);
}

/** One length-prefixed record of the compressed stream. */
function record(value: unknown): Uint8Array<ArrayBuffer> {
  const body = serialize(value);
  return concat([u32(body.length), body]);
}

/** The entries as records, pulled one at a time as the compressor asks for more. */
function recordStream(
  entries: AsyncIterable<Deno.KvEntry<unknown>>,
  counted: (n: number) => void,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  const source = entries[Symbol.asyncIterator]();
  let count = 0;
  return new ReadableStream({
    async pull(controller) {
      const next = await source.next();
      if (next.done) {
        counted(count);
        controller.enqueue(record([END, count]));
        controller.close();
        return;
      }
      const { key, value } = next.value;
      count++;
      controller.enqueue(
        record(value instanceof Deno.KvU64 ? [COUNTER, key, value.value] : [ENTRY, key, value]),
      );
    },
    async cancel() {
      await source.return?.();
    },
  });
}

/** Cuts the gzip stream into CHUNK_BYTES chunks and seals each; the last is sealed at the end. */
function sealChunks(key: CryptoKey, headerDigest: Uint8Array) {
  let pending: Uint8Array[] = [];
  let size = 0;
  let index = 0;
  const seal = async (plain: Uint8Array<ArrayBuffer>, last: boolean) => {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: chunkAad(headerDigest, index++, last) },
        key,
        plain,
      ),
    );
    return concat([u32(sealed.length), new Uint8Array([last ? 1 : 0]), iv, sealed]);
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      pending.push(chunk);
      size += chunk.length;
      // Strictly more than a chunk: what ends the stream is sealed in flush, marked last.
      while (size > CHUNK_BYTES) {
        const all = concat(pending);
        controller.enqueue(await seal(all.slice(0, CHUNK_BYTES), false));
        pending = [all.subarray(CHUNK_BYTES)];
        size = pending[0].length;
      }
    },
    async flush(controller) {
      controller.enqueue(await seal(concat(pending), true));
    },
  });
}

/** Writes to `file` and hashes what it writes: the body for the trailer, and the whole file. */
class HashedFile {
  readonly #file: Deno.FsFile;
  readonly #body = createHash("sha256");
  readonly #whole = createHash("sha256");
  bytes = 0;

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.#body.update(bytes);
    await this.#raw(bytes);
  }

  async #raw(bytes: Uint8Array): Promise<void> {
    this.#whole.update(bytes);
    this.bytes += bytes.length;
    for (let at = 0; at < bytes.length;) at += await this.#file.write(bytes.subarray(at));
  }

  /** Appends the body's checksum, flushes to disk; returns the whole file's SHA-256. */
  async finish(): Promise<string> {
    await this.#raw(this.#body.digest());
    await this.#file.syncData();
    return this.#whole.digest("hex");
  }
}

/** Writes `entries` to a new file at `path` (mode 0600), sealed under `key`. */
export async function writeArchive(
  entries: AsyncIterable<Deno.KvEntry<unknown>>,
  key: CryptoKey,
  header: Omit<ArchiveHeader, "format" | "chunk_bytes">,
  path: string,
): Promise<WrittenArchive> {
  const head = encodeHeader({ format: 1, ...header, chunk_bytes: CHUNK_BYTES });
  const headerDigest = createHash("sha256").update(head).digest();
  using file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  const out = new HashedFile(file);
  await out.write(head);
  let count = 0;
  await recordStream(entries, (n) => count = n)
    .pipeThrough(new CompressionStream("gzip"))
    .pipeThrough(sealChunks(key, headerDigest))
    .pipeTo(new WritableStream({ write: (frame) => out.write(frame) }));
  const sha256 = await out.finish();
  return { entries: count, bytes: out.bytes, sha256 };
}

/** Exact-length reads over a stream of chunks. */
class ByteReader {
  readonly #chunks: AsyncIterator<Uint8Array>;
  #buffer: Uint8Array = new Uint8Array(0);
  #at = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#chunks = source[Symbol.asyncIterator]();
  }

  /** The next `n` bytes; null when the stream ended exactly here; throws when it ends inside. */
  async read(n: number, what: string): Promise<Uint8Array | null> {
    while (this.#buffer.length - this.#at < n) {
      const next = await this.#chunks.next();
      if (next.done) {
        if (this.#at === this.#buffer.length) return null;
        throw invalid(`the backup is cut short (inside ${what})`);
      }
      this.#buffer = concat([this.#buffer.subarray(this.#at), next.value]);
      this.#at = 0;
    }
    const out = this.#buffer.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  async need(n: number, what: string): Promise<Uint8Array> {
    const bytes = await this.read(n, what);
    if (!bytes) throw invalid(`the backup is cut short (before ${what})`);
    return bytes;
  }

  /** Stops the source (a reader left before the end). */
  async close(): Promise<void> {
    await this.#chunks.return?.();
  }
}

/** The first `limit` bytes of `file`, from where it stands, in pieces of up to 64 KiB. */
async function* fileBytes(file: Deno.FsFile, limit: number): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(64 * 1024);
  for (let left = limit; left > 0;) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
    if (n === null) return;
    left -= n;
    yield buffer.slice(0, n);
  }
}

/** The file's size less its trailer; refuses what is too short to be a backup. */
async function bodyLength(path: string): Promise<number> {
  const size = (await Deno.stat(path)).size;
  if (size < MAGIC.length + 4 + DIGEST_BYTES) throw invalid(`${path} is not a Steward backup`);
  return size - DIGEST_BYTES;
}

/**
 * Checks the file against the checksum it ends with; returns the SHA-256 of the whole file.
 * Throws when they differ: the file was damaged after it was written.
 */
export async function verifyChecksum(path: string): Promise<string> {
  const body = await bodyLength(path);
  using file = await Deno.open(path);
  const [ofBody, whole] = [createHash("sha256"), createHash("sha256")];
  for await (const bytes of fileBytes(file, body)) {
    ofBody.update(bytes);
    whole.update(bytes);
  }
  const trailer = concat(await Array.fromAsync(fileBytes(file, DIGEST_BYTES)));
  whole.update(trailer);
  if (!ofBody.digest().equals(trailer)) {
    throw invalid(`${path} is damaged: its content does not match the checksum it ends with`);
  }
  return whole.digest("hex");
}

async function readHeaderFrom(
  reader: ByteReader,
  path: string,
): Promise<{ header: ArchiveHeader; digest: Uint8Array }> {
  const magic = await reader.need(MAGIC.length, "the header");
  if (!magic.every((b, i) => b === MAGIC[i])) throw invalid(`${path} is not a Steward backup`);
  const length = readU32(await reader.need(4, "the header"));
  if (length > MAX_HEADER_BYTES) throw invalid(`${path} has a malformed header`);
  const json = await reader.need(length, "the header");
  let header: ArchiveHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(json));
  } catch {
    throw invalid(`${path} has a malformed header`);
  }
  if (header.format !== 1) throw invalid(`${path} is in an unknown format (${header.format})`);
  const digest = createHash("sha256").update(concat([magic, u32(length), json])).digest();
  return { header, digest };
}

/** The header of the backup at `path` (not authenticated until its chunks open). */
export async function readArchiveHeader(path: string): Promise<ArchiveHeader> {
  await bodyLength(path);
  using file = await Deno.open(path);
  return (await readHeaderFrom(new ByteReader(fileBytes(file, MAX_HEADER_BYTES)), path)).header;
}

/** The opened chunks, in order; throws at the first that does not open, or a missing end. */
async function* openChunks(
  reader: ByteReader,
  key: CryptoKey,
  header: ArchiveHeader,
  headerDigest: Uint8Array,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  for (let index = 0;; index++) {
    const length = await reader.read(4, `chunk ${index}`);
    if (!length) throw invalid(`the backup is cut short: chunk ${index} and the end are missing`);
    const size = readU32(length);
    if (size < TAG_BYTES || size > header.chunk_bytes + TAG_BYTES) {
      throw invalid(`chunk ${index} of the backup has an impossible length`);
    }
    const last = (await reader.need(1, `chunk ${index}`))[0] === 1;
    const iv = await reader.need(IV_BYTES, `chunk ${index}`);
    const sealed = await reader.need(size, `chunk ${index}`);
    let plain: ArrayBuffer;
    try {
      plain = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: iv.slice(),
          additionalData: chunkAad(headerDigest, index, last),
        },
        key,
        sealed.slice(),
      );
    } catch {
      throw invalid(
        `chunk ${index} of the backup does not open: it was written under another master key ` +
          `(${header.master_key_id ?? "unknown"}), or altered`,
      );
    }
    yield new Uint8Array(plain);
    if (last) {
      if (await reader.read(1, "the end")) throw invalid("the backup has bytes after its end");
      return;
    }
  }
}

/**
 * The entries of the backup at `path`, each chunk opened and checked under `key` as it is read;
 * throws at the first chunk that does not open, and at the end if the count is not the one
 * written. Check the file's checksum first (verifyChecksum) to tell damage from a wrong key.
 */
export async function* readArchive(path: string, key: CryptoKey): AsyncGenerator<ArchiveEntry> {
  const body = await bodyLength(path);
  using file = await Deno.open(path);
  const reader = new ByteReader(fileBytes(file, body));
  const { header, digest } = await readHeaderFrom(reader, path);
  const records = new ByteReader(
    ReadableStream.from(openChunks(reader, key, header, digest))
      .pipeThrough(new DecompressionStream("gzip")),
  );
  try {
    for (let count = 0;;) {
      const length = await records.need(4, "the end record");
      const bytes = await records.need(readU32(length), "a record");
      const [kind, ...rest] = deserialize(bytes) as [number, ...unknown[]];
      if (kind === END) {
        if (rest[0] !== count) {
          throw invalid(`the backup holds ${count} entries where it says ${rest[0]}`);
        }
        if (await records.read(1, "the end")) throw invalid("the backup has records after its end");
        return;
      }
      const [key, value] = rest as [Deno.KvKey, unknown];
      count++;
      yield {
        key,
        value: kind === COUNTER ? new Deno.KvU64(value as bigint) : value,
        size: bytes.length,
      };
    }
  } finally {
    await records.close();
  }
}
