/** The vault's blob store (issue 8 §1, split out of ledger.ts), over a real in-memory KV. */
import assert from "node:assert/strict";
import { BLOB_CHUNK_BYTES, createBlobStore } from "../../src/vault/blob_store.ts";
import { sha256, toHex } from "../../src/lib/mod.ts";
import { vaultBlobKey, vaultBlobPrefix } from "../../src/store/mod.ts";

Deno.test("blob store: a body of several chunks reads back whole under its SHA-256", async () => {
  using kv = await Deno.openKv(":memory:");
  const blobs = createBlobStore(kv);
  const body = new Uint8Array(BLOB_CHUNK_BYTES * 11 + 5).map((_, i) => i % 251);
  const hash = await blobs.store(body);
  assert.equal(hash, toHex(sha256(body)));
  let chunks = 0;
  for await (const _ of kv.list({ prefix: vaultBlobPrefix(hash) })) chunks++;
  assert.equal(chunks, 12, "11 full chunks and one of 5 bytes, across two atomics");
  assert.deepEqual(await blobs.read(hash), body);
  assert.equal(await blobs.store(body), hash, "storing again is harmless");
  assert.deepEqual(await blobs.read(hash), body);
});

Deno.test("blob store: unknown, malformed and tampered hashes read as null", async () => {
  using kv = await Deno.openKv(":memory:");
  const blobs = createBlobStore(kv);
  const hash = await blobs.store(new Uint8Array(BLOB_CHUNK_BYTES + 1).fill(9));
  assert.equal(await blobs.read("0".repeat(64)), null);
  assert.equal(await blobs.read("not-a-hash"), null);
  assert.equal(await blobs.read(hash.toUpperCase()), null);
  await kv.set(vaultBlobKey(hash, 1), new Uint8Array([8]));
  assert.equal(await blobs.read(hash), null, "bytes that no longer hash to the key are not served");
});
