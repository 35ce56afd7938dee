import assert from "node:assert/strict";
import {
  CompactRange,
  hashLeaf,
  ProofError,
  ProofSizeError,
  rootFromInclusionProof,
  RootMismatchError,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/mod.ts";
import { flipBit, ReferenceTree } from "./_reference.ts";

const leaves = Array.from({ length: 8 }, (_, i) => hashLeaf(Uint8Array.of(i)));
const tree = new ReferenceTree(leaves);

Deno.test("verifyInclusion() throws RootMismatchError carrying both roots", () => {
  const proof = tree.path(5, 0, 8);
  const root = flipBit(tree.root(8), 0);
  assert.throws(
    () => verifyInclusion({ index: 5, size: 8, leafHash: leaves[5], proof, root }),
    (e: unknown) => {
      assert.ok(e instanceof RootMismatchError && e instanceof ProofError);
      assert.equal(e.message, "Cannot verify inclusion of leaf 5 in tree of size 8: root mismatch");
      assert.deepEqual(e.expected, root);
      assert.deepEqual(e.calculated, tree.root(8));
      return true;
    },
  );
});

Deno.test("rootFromInclusionProof() returns the root the proof leads to", () => {
  for (let index = 0; index < 7; index++) {
    const proof = tree.path(index, 0, 7);
    assert.deepEqual(
      rootFromInclusionProof({ index, size: 7, leafHash: leaves[index], proof }),
      tree.root(7),
    );
  }
});

Deno.test("verifyInclusion() throws ProofSizeError for a missing or extra node", () => {
  const proof = tree.path(5, 0, 8);
  const root = tree.root(8);
  for (const bad of [proof.slice(1), [...proof, proof[0]], []]) {
    assert.throws(
      () => verifyInclusion({ index: 5, size: 8, leafHash: leaves[5], proof: bad, root }),
      (e: unknown) => e instanceof ProofSizeError && e.expected === 3 && e.actual === bad.length,
    );
  }
});

Deno.test("verifyInclusion() rejects malformed arguments with TypeError and RangeError", () => {
  const proof = tree.path(5, 0, 8);
  const root = tree.root(8);
  const leafHash = leaves[5];
  assert.throws(() => verifyInclusion({ index: 8, size: 8, leafHash, proof, root }), RangeError);
  assert.throws(() => verifyInclusion({ index: -1, size: 8, leafHash, proof, root }), RangeError);
  assert.throws(
    () => verifyInclusion({ index: 2 ** 64, size: 8, leafHash, proof, root }),
    RangeError,
  );
  assert.throws(
    () => verifyInclusion({ index: 5, size: 8, leafHash: leafHash.subarray(1), proof, root }),
    TypeError,
  );
  assert.throws(
    () => verifyInclusion({ index: 5, size: 8, leafHash, proof, root: new Uint8Array(33) }),
    TypeError,
  );
  assert.throws(
    () =>
      verifyInclusion({
        index: 5,
        size: 8,
        leafHash,
        proof: [proof[0], proof[1], new Uint8Array()],
        root,
      }),
    TypeError,
  );
  assert.throws(
    () => verifyInclusion({ index: 5, size: 8, leafHash, proof: null as never, root }),
    TypeError,
  );
});

Deno.test("verifyConsistency() requires 0 < size1 <= size2", () => {
  const root = tree.root(4);
  assert.throws(
    () => verifyConsistency({ size1: 0, size2: 4, root1: tree.root(0), root2: root, proof: [] }),
    /requires 0 < size1 <= size2/,
  );
  assert.throws(
    () => verifyConsistency({ size1: 5, size2: 4, root1: root, root2: root, proof: [] }),
    RangeError,
  );
});

Deno.test("verifyConsistency() with equal sizes needs an empty proof and equal roots", () => {
  const root = tree.root(6);
  verifyConsistency({ size1: 6, size2: 6, root1: root, root2: root, proof: [] });
  assert.throws(
    () => verifyConsistency({ size1: 6, size2: 6, root1: root, root2: root, proof: [root] }),
    ProofSizeError,
  );
  assert.throws(
    () => verifyConsistency({ size1: 6, size2: 6, root1: root, root2: tree.root(5), proof: [] }),
    RootMismatchError,
  );
});

Deno.test("verifyConsistency() names the root that does not match", () => {
  const proof = tree.consistency(3, 7);
  const root1 = tree.root(3);
  const root2 = tree.root(7);
  verifyConsistency({ size1: 3, size2: 7, root1, root2, proof });
  assert.throws(
    () => verifyConsistency({ size1: 3, size2: 7, root1: flipBit(root1, 9), root2, proof }),
    (e: unknown) =>
      e instanceof RootMismatchError &&
      e.message === "Cannot verify consistency between sizes 3 and 7: root mismatch for size 3" &&
      e.calculated.toString() === root1.toString(),
  );
  assert.throws(
    () => verifyConsistency({ size1: 3, size2: 7, root1, root2: flipBit(root2, 9), proof }),
    /root mismatch for size 7/,
  );
  assert.throws(
    () => verifyConsistency({ size1: 3, size2: 7, root1, root2, proof: proof.slice(0, 3) }),
    (e: unknown) => e instanceof ProofSizeError && e.expected === 4 && e.actual === 3,
  );
});

Deno.test("verifyConsistency() rejects a proof between unrelated trees of the same sizes", () => {
  const other = new CompactRange();
  for (let i = 0; i < 7; i++) other.append(hashLeaf(Uint8Array.of(100 + i)));
  assert.throws(
    () =>
      verifyConsistency({
        size1: 3,
        size2: 7,
        root1: tree.root(3),
        root2: other.root(),
        proof: tree.consistency(3, 7),
      }),
    RootMismatchError,
  );
});
