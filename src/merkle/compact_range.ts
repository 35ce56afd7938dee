/**
 * The compact Merkle range [0, size): the roots of the perfect subtrees that
 * tile the leaves, one per set bit of `size`, largest (leftmost) first. It is
 * all a log needs to append a leaf and to compute its root, so the storage
 * layer keeps it in the head record and never reads the tree to append.
 *
 * @module
 */

import { assertCount, popCount, shiftRight } from "./_bits.ts";
import { assertHash, EMPTY_ROOT, hashChildren } from "./hasher.ts";
import { fromBase64, toBase64 } from "../lib/mod.ts";

/**
 * A node of the tree: the root of the perfect subtree at `level` (0 = leaf)
 * covering leaves [index·2^level, (index+1)·2^level).
 */
export interface NodeId {
  level: number;
  index: number;
}

/** A node together with its hash. */
export interface NodeHash extends NodeId {
  hash: Uint8Array;
}

/** The JSON form of a compact range, as kept in a head record. */
export interface CompactRangeJson {
  size: number;
  /** Base64 subtree roots, leftmost first; one per set bit of `size`. */
  hashes: string[];
}

/**
 * Append-only state of a Merkle tree in O(log n) space.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CompactRange } from "./compact_range.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const leaf = hashLeaf(new TextEncoder().encode("a"));
 * const range = new CompactRange();
 * range.append(leaf);
 * assert.deepEqual(range.root(), leaf); // a one-leaf tree's root is its leaf hash
 * ```
 */
export class CompactRange {
  #size: number;
  #hashes: Uint8Array[];

  /** An empty range, or the range restored from `size` and its subtree roots. */
  constructor(size = 0, hashes: readonly Uint8Array[] = []) {
    assertCount(size, "size");
    if (!Array.isArray(hashes)) throw new TypeError("hashes must be an array");
    const want = popCount(size);
    if (hashes.length !== want) {
      throw new RangeError(
        `Cannot restore compact range of size ${size}: ${hashes.length} hashes, want ${want}`,
      );
    }
    hashes.forEach((hash, i) => assertHash(hash, `hashes[${i}]`));
    this.#size = size;
    this.#hashes = hashes.slice();
  }

  /** Number of leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /** The perfect subtree roots, leftmost (largest) first. */
  get hashes(): readonly Uint8Array[] {
    return this.#hashes.slice();
  }

  /**
   * Appends one leaf hash and returns every node it completes, bottom-up:
   * the leaf itself at level 0, then each parent whose right subtree it
   * closes. Persisting exactly these makes every node a proof can name
   * available, since proofs only name complete subtrees.
   */
  append(leafHash: Uint8Array): NodeHash[] {
    assertHash(leafHash, "leafHash");
    if (this.#size >= Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`Cannot append leaf ${this.#size}: tree is full`);
    }
    let index = this.#size;
    let level = 0;
    let hash: Uint8Array = leafHash;
    const created: NodeHash[] = [{ level, index, hash }];
    // An odd index is a right child whose left sibling is the last stored
    // subtree root; merging repeats once per trailing one bit of the size.
    while (index % 2 === 1) {
      const left = this.#hashes.pop()!;
      hash = hashChildren(left, hash);
      index = (index - 1) / 2;
      level++;
      created.push({ level, index, hash });
    }
    this.#hashes.push(hash);
    this.#size++;
    return created;
  }

  /** The RFC 6962 Merkle tree hash of leaves [0, size). */
  root(): Uint8Array {
    const hashes = this.#hashes;
    if (hashes.length === 0) return EMPTY_ROOT.slice();
    // The largest subtree sits on the left of every split, so folding from
    // the right reproduces MTH's "largest power of two smaller than n" rule.
    let root = hashes[hashes.length - 1];
    for (let i = hashes.length - 2; i >= 0; i--) root = hashChildren(hashes[i], root);
    return root;
  }

  /** The node ids of the subtree roots, matching `hashes` one to one. */
  nodeIds(): NodeId[] {
    const ids: NodeId[] = [];
    let begin = 0;
    for (let level = 52; level >= 0; level--) {
      if (shiftRight(this.#size, level) % 2 === 1) {
        ids.push({ level, index: begin / 2 ** level });
        begin += 2 ** level;
      }
    }
    return ids;
  }

  /** A copy that can be appended to independently. */
  clone(): CompactRange {
    return new CompactRange(this.#size, this.#hashes);
  }

  /** Plain JSON for a head record; hashes as base64. */
  toJSON(): CompactRangeJson {
    return { size: this.#size, hashes: this.#hashes.map(toBase64) };
  }

  /** Restores a range from `toJSON()` output, checking its shape strictly. */
  static fromJSON(json: CompactRangeJson): CompactRange {
    if (typeof json !== "object" || json === null || !Array.isArray(json.hashes)) {
      throw new TypeError("Cannot restore compact range: expected {size, hashes[]}");
    }
    return new CompactRange(json.size, json.hashes.map(fromBase64));
  }
}
