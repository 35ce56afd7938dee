/**
 * RFC 6962 hashing: the leaf and interior-node hashes of the Merkle tree and
 * the empty root. SHA-256 itself is in `src/lib/` (digests).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { sha256, toBytes } from "../lib/mod.ts";

/** Size in bytes of every hash in the tree. */
export const HASH_SIZE = 32;

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** Root of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1). */
export const EMPTY_ROOT: Uint8Array<ArrayBuffer> = sha256(new Uint8Array());

/**
 * RFC 6962 leaf hash: SHA-256(0x00 ‖ data). The prefix keeps a leaf from ever
 * being mistaken for an interior node (second-preimage protection).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashLeaf } from "./hasher.ts";
 * import { toHex } from "../lib/mod.ts";
 * assert.equal(
 *   toHex(hashLeaf(new Uint8Array())),
 *   "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
 * );
 * ```
 */
export function hashLeaf(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return toBytes(createHash("sha256").update(LEAF_PREFIX).update(data).digest());
}

/**
 * RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashChildren, hashLeaf } from "./hasher.ts";
 * import { toHex } from "../lib/mod.ts";
 * // The RFC 6962 test tree of the leaves "" and 0x00.
 * const node = hashChildren(hashLeaf(new Uint8Array()), hashLeaf(Uint8Array.of(0)));
 * assert.equal(toHex(node), "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
 * ```
 */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array<ArrayBuffer> {
  return toBytes(createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest());
}

/** Throws a TypeError unless `hash` is a Uint8Array of exactly 32 bytes. */
export function assertHash(hash: unknown, what: string): asserts hash is Uint8Array {
  if (!(hash instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a Uint8Array, got ${typeof hash}`);
  }
  if (hash.length !== HASH_SIZE) {
    throw new TypeError(`${what} must be ${HASH_SIZE} bytes, got ${hash.length}`);
  }
}
