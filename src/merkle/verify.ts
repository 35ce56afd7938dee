/**
 * RFC 9162 proof verification (sections 2.1.3.2 and 2.1.4.2) with the
 * strictness of transparency-dev/merkle: every hash is exactly 32 bytes, a
 * proof with extra or missing hashes is rejected, and a consistency proof
 * needs 0 < size1 <= size2.
 *
 * Malformed arguments (sizes that are not safe integers, index >= size,
 * hashes that are not 32-byte Uint8Arrays) throw TypeError or RangeError. A
 * well-formed proof that fails to prove the claim throws a `ProofError`
 * subclass carrying the evidence.
 *
 * @module
 */

import { assertCount, bitAt, popCount, shiftRight, trailingZeros, xorBitLength } from "./_bits.ts";
import { assertHash, hashChildren } from "./hasher.ts";
import { equalBytes } from "../lib/mod.ts";

/** Base class of the verification failures callers are expected to catch. */
export class ProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProofError";
  }
}

/** The proof led to a root other than the one claimed. */
export class RootMismatchError extends ProofError {
  /** The root the caller claimed (e.g. from a signed checkpoint). */
  expected: Uint8Array;
  /** The root the proof actually leads to. */
  calculated: Uint8Array;

  constructor(
    message: string,
    { expected, calculated }: { expected: Uint8Array; calculated: Uint8Array },
  ) {
    super(message);
    this.name = "RootMismatchError";
    this.expected = expected;
    this.calculated = calculated;
  }
}

/** The proof has more or fewer hashes than the tree shape requires. */
export class ProofSizeError extends ProofError {
  /** Number of hashes the tree shape requires. */
  expected: number;
  /** Number of hashes given. */
  actual: number;

  constructor(message: string, { expected, actual }: { expected: number; actual: number }) {
    super(message);
    this.name = "ProofSizeError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** Arguments of `verifyInclusion`. */
export interface InclusionClaim {
  index: number;
  size: number;
  leafHash: Uint8Array;
  proof: readonly Uint8Array[];
}

/** Arguments of `verifyConsistency`. */
export interface ConsistencyClaim {
  size1: number;
  size2: number;
  root1: Uint8Array;
  root2: Uint8Array;
  proof: readonly Uint8Array[];
}

function assertProof(proof: unknown): asserts proof is readonly Uint8Array[] {
  if (!Array.isArray(proof)) throw new TypeError("proof must be an array of hashes");
  proof.forEach((hash, i) => assertHash(hash, `proof[${i}]`));
}

// Folds the sibling path below the point where the path to `index` leaves the
// tree's right border: bit i of `index` says whether the sibling at height i
// is on the left (1) or the right (0).
function chainInner(
  seed: Uint8Array,
  { proof, index }: { proof: readonly Uint8Array[]; index: number },
): Uint8Array {
  for (let i = 0; i < proof.length; i++) {
    seed = bitAt(index, i) === 0 ? hashChildren(seed, proof[i]) : hashChildren(proof[i], seed);
  }
  return seed;
}

// Like chainInner, but only the left siblings: what remains is the root of
// the smaller tree when proving consistency.
function chainInnerRight(
  seed: Uint8Array,
  { proof, index }: { proof: readonly Uint8Array[]; index: number },
): Uint8Array {
  for (let i = 0; i < proof.length; i++) {
    if (bitAt(index, i) === 1) seed = hashChildren(proof[i], seed);
  }
  return seed;
}

// Along the right border every sibling is a left one.
function chainBorderRight(seed: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  for (const hash of proof) seed = hashChildren(hash, seed);
  return seed;
}

// Splits the proof of `index` in a tree of `size` into the part below the
// right border (inner) and the part along it (border).
function decompose(index: number, size: number): { inner: number; border: number } {
  const inner = xorBitLength(index, size - 1);
  return { inner, border: popCount(shiftRight(index, inner)) };
}

/**
 * Computes the root that an inclusion proof leads to for `leafHash` at
 * `index` in a tree of `size` leaves, without comparing it to anything.
 * Throws a `ProofSizeError` if the proof has the wrong number of hashes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rootFromInclusionProof } from "./verify.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const leafHash = hashLeaf(new Uint8Array());
 * assert.deepEqual(rootFromInclusionProof({ index: 0, size: 1, leafHash, proof: [] }), leafHash);
 * ```
 */
export function rootFromInclusionProof(claim: InclusionClaim): Uint8Array {
  const { index, size, leafHash, proof } = claim;
  assertCount(index, "index");
  assertCount(size, "size");
  assertHash(leafHash, "leafHash");
  assertProof(proof);
  if (index >= size) {
    throw new RangeError(
      `Cannot verify inclusion of leaf ${index} in tree of size ${size}: index out of range`,
    );
  }
  const { inner, border } = decompose(index, size);
  if (proof.length !== inner + border) {
    throw new ProofSizeError(
      `Cannot verify inclusion of leaf ${index} in tree of size ${size}: ` +
        `proof has ${proof.length} hashes, want ${inner + border}`,
      { expected: inner + border, actual: proof.length },
    );
  }
  const hash = chainInner(leafHash, { proof: proof.slice(0, inner), index });
  return chainBorderRight(hash, proof.slice(inner));
}

/**
 * Checks that `leafHash` is the leaf at `index` of the tree of `size` leaves
 * whose root is `root` (RFC 9162 section 2.1.3.2). Returns nothing on
 * success; throws `RootMismatchError` or `ProofSizeError` on failure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RootMismatchError, verifyInclusion } from "./verify.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const leafHash = hashLeaf(new Uint8Array());
 * verifyInclusion({ index: 0, size: 1, leafHash, proof: [], root: leafHash }); // returns: it holds
 * const otherRoot = hashLeaf(Uint8Array.of(1));
 * assert.throws(
 *   () => verifyInclusion({ index: 0, size: 1, leafHash, proof: [], root: otherRoot }),
 *   RootMismatchError,
 * );
 * ```
 */
export function verifyInclusion(claim: InclusionClaim & { root: Uint8Array }): void {
  assertHash(claim.root, "root");
  const calculated = rootFromInclusionProof(claim);
  if (!equalBytes(calculated, claim.root)) {
    throw new RootMismatchError(
      `Cannot verify inclusion of leaf ${claim.index} in tree of size ${claim.size}: root mismatch`,
      { expected: claim.root, calculated },
    );
  }
}

/**
 * Checks that the tree of `size1` leaves with root `root1` is a prefix of the
 * tree of `size2` leaves with root `root2` (RFC 9162 section 2.1.4.2).
 * Requires 0 < size1 <= size2 (RangeError otherwise); equal sizes need an
 * empty proof and equal roots. Throws `RootMismatchError` (naming which root)
 * or `ProofSizeError` on failure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProofError, verifyConsistency } from "./verify.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const root = hashLeaf(new Uint8Array());
 * verifyConsistency({ size1: 1, size2: 1, root1: root, root2: root, proof: [] }); // returns: it holds
 * const root2 = hashLeaf(Uint8Array.of(1));
 * assert.throws(
 *   () => verifyConsistency({ size1: 1, size2: 1, root1: root, root2, proof: [] }),
 *   ProofError,
 * );
 * ```
 */
export function verifyConsistency(claim: ConsistencyClaim): void {
  const { size1, size2, root1, root2, proof } = claim;
  assertCount(size1, "size1");
  assertCount(size2, "size2");
  assertHash(root1, "root1");
  assertHash(root2, "root2");
  assertProof(proof);
  const context = `Cannot verify consistency between sizes ${size1} and ${size2}`;
  if (size1 === 0 || size1 > size2) {
    throw new RangeError(`${context}: requires 0 < size1 <= size2`);
  }

  if (size1 === size2) {
    if (proof.length !== 0) {
      throw new ProofSizeError(
        `${context}: proof has ${proof.length} hashes, want 0`,
        { expected: 0, actual: proof.length },
      );
    }
    if (!equalBytes(root1, root2)) {
      throw new RootMismatchError(`${context}: roots of equal sizes differ`, {
        expected: root1,
        calculated: root2,
      });
    }
    return;
  }

  // The proof is a suffix of the inclusion proof of leaf size1-1 in the
  // larger tree, starting at the height of the largest complete subtree that
  // ends at size1; that subtree's hash comes first unless size1 is a power
  // of two, in which case it is root1 itself.
  const decomposition = decompose(size1 - 1, size2);
  const shift = trailingZeros(size1);
  const inner = decomposition.inner - shift;
  const start = size1 === 2 ** shift ? 0 : 1;
  const want = start + inner + decomposition.border;
  if (proof.length !== want) {
    throw new ProofSizeError(
      `${context}: proof has ${proof.length} hashes, want ${want}`,
      { expected: want, actual: proof.length },
    );
  }
  const seed = start === 0 ? root1 : proof[0];
  const innerPath = proof.slice(start, start + inner);
  const borderPath = proof.slice(start + inner);
  const mask = shiftRight(size1 - 1, shift);

  const hash1 = chainBorderRight(
    chainInnerRight(seed, { proof: innerPath, index: mask }),
    borderPath,
  );
  if (!equalBytes(hash1, root1)) {
    throw new RootMismatchError(`${context}: root mismatch for size ${size1}`, {
      expected: root1,
      calculated: hash1,
    });
  }
  const hash2 = chainBorderRight(chainInner(seed, { proof: innerPath, index: mask }), borderPath);
  if (!equalBytes(hash2, root2)) {
    throw new RootMismatchError(`${context}: root mismatch for size ${size2}`, {
      expected: root2,
      calculated: hash2,
    });
  }
}
