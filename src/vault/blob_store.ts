/**
 * The vault's blob store: entry bodies over the inline limit, kept in KV as content-addressed
 * chunks under their SHA-256 and read back only when the bytes still hash to it.
 * @module
 */
import { vaultBlobKey, vaultBlobPrefix } from "../store/mod.ts";
import { sha256, toHex } from "../lib/mod.ts";

/** Bodies are split into chunks of this many bytes (under KV's 64 KiB value limit). */
export const BLOB_CHUNK_BYTES = 60 * 1024;
/** At most this many chunks are written in one atomic. */
const CHUNKS_PER_COMMIT = 10;

/** Content-addressed bodies in KV. */
export interface BlobStore {
  /** Stores `bytes` (idempotent: the key is their hash) and returns their hex SHA-256. */
  store(bytes: Uint8Array): Promise<string>;
  /** The bytes stored under `sha256hex`, or null when absent, malformed or not matching it. */
  read(sha256hex: string): Promise<Uint8Array | null>;
}

/**
 * Creates the blob store over `kv`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createBlobStore } from "./blob_store.ts";
 * const kv = await Deno.openKv(":memory:");
 * const blobs = createBlobStore(kv);
 * const hash = await blobs.store(new Uint8Array(100_000).fill(7));
 * assert.equal((await blobs.read(hash))?.byteLength, 100_000);
 * assert.equal(await blobs.read("0".repeat(64)), null);
 * kv.close();
 * ```
 */
export function createBlobStore(kv: Deno.Kv): BlobStore {
  return {
    async store(bytes) {
      const hash = toHex(sha256(bytes));
      // Content-addressed, so rewriting an existing body is harmless; chunks go in
      // before the entry that names them, so an entry never points at nothing.
      for (let offset = 0, part = 0; offset < bytes.byteLength; part += CHUNKS_PER_COMMIT) {
        const op = kv.atomic();
        for (
          let i = 0;
          i < CHUNKS_PER_COMMIT && offset < bytes.byteLength;
          i++, offset += BLOB_CHUNK_BYTES
        ) {
          op.set(vaultBlobKey(hash, part + i), bytes.slice(offset, offset + BLOB_CHUNK_BYTES));
        }
        await op.commit();
      }
      return hash;
    },
    async read(hash) {
      if (!/^[0-9a-f]{64}$/.test(hash)) return null;
      const parts: Uint8Array[] = [];
      for await (const e of kv.list<Uint8Array>({ prefix: vaultBlobPrefix(hash) })) {
        parts.push(e.value);
      }
      if (parts.length === 0) return null;
      const total = parts.reduce((n, p) => n + p.byteLength, 0);
      const out = new Uint8Array(total);
      let offset = 0;
      for (const p of parts) {
        out.set(p, offset);
        offset += p.byteLength;
      }
      return toHex(sha256(out)) === hash ? out : null;
    },
  };
}
