import assert from "node:assert/strict";
import {
  buildConsistencyProof,
  buildInclusionProof,
  buildRoot,
  CompactRange,
  consistencyNodes,
  EMPTY_ROOT,
  hashChildren,
  inclusionNodes,
  materialize,
  type NodeId,
  rangeNodes,
  rootFromInclusionProof,
  RootMismatchError,
  rootNodes,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/mod.ts";
import { createRandom, flipBit, NodeStore, randomLeaves, ReferenceTree } from "./_reference.ts";

function ids(...pairs: [number, number][]): NodeId[] {
  return pairs.map(([level, index]) => ({ level, index }));
}

Deno.test("inclusionNodes() names the RFC 9162 example proof nodes", () => {
  // RFC 9162 section 2.1.5: in the 7-leaf tree, the path of leaf 0 is
  // [b, h, l] with l the ephemeral node over leaves 4..6; of leaf 3, [c, g, l];
  // of leaf 4, [f, j, k] (here as nodes (0,5), (1,3), (2,0)).
  assert.deepEqual(inclusionNodes(0, 7), {
    nodes: ids([0, 1], [1, 1], [0, 6], [1, 2]),
    rehash: { start: 2, end: 4 },
  });
  assert.deepEqual(inclusionNodes(3, 7), {
    nodes: ids([0, 2], [1, 0], [0, 6], [1, 2]),
    rehash: { start: 2, end: 4 },
  });
  assert.deepEqual(inclusionNodes(4, 7), { nodes: ids([0, 5], [0, 6], [2, 0]), rehash: null });
  assert.deepEqual(inclusionNodes(6, 7), { nodes: ids([1, 2], [2, 0]), rehash: null });
  assert.deepEqual(inclusionNodes(0, 1), { nodes: [], rehash: null });
});

Deno.test("consistencyNodes() names the RFC 9162 example proof nodes", () => {
  // RFC 9162 section 2.1.5: PROOF(3, D[7]) = [c, d, g, l],
  // PROOF(4, D[7]) = [l], PROOF(6, D[7]) = [i, j, k].
  assert.deepEqual(consistencyNodes(3, 7), {
    nodes: ids([0, 2], [0, 3], [1, 0], [0, 6], [1, 2]),
    rehash: { start: 3, end: 5 },
  });
  assert.deepEqual(consistencyNodes(4, 7), {
    nodes: ids([0, 6], [1, 2]),
    rehash: { start: 0, end: 2 },
  });
  assert.deepEqual(consistencyNodes(6, 7), { nodes: ids([1, 2], [0, 6], [2, 0]), rehash: null });
  assert.deepEqual(consistencyNodes(7, 7), { nodes: [], rehash: null });
});

Deno.test("inclusionNodes() and consistencyNodes() reject impossible sizes with RangeError", () => {
  assert.throws(() => inclusionNodes(3, 3), RangeError);
  assert.throws(() => inclusionNodes(0, 0), RangeError);
  assert.throws(() => inclusionNodes(-1, 3), RangeError);
  assert.throws(() => inclusionNodes(0.5, 3), RangeError);
  assert.throws(() => inclusionNodes(0, 2 ** 53), RangeError);
  assert.throws(() => consistencyNodes(0, 3), /requires 0 < size1 <= size2/);
  assert.throws(() => consistencyNodes(4, 3), RangeError);
});

Deno.test("materialize() refuses a hash list that does not fit the plan", () => {
  const plan = inclusionNodes(0, 7);
  const hashes = plan.nodes.map(() => new Uint8Array(32));
  assert.equal(materialize(plan, hashes).length, 3);
  assert.throws(() => materialize(plan, hashes.slice(1)), /got 3 hashes for 4 nodes/);
  assert.throws(() => materialize(plan, [...hashes.slice(1), new Uint8Array(31)]), TypeError);
});

Deno.test("buildInclusionProof() rejects a store that returns the wrong number of hashes", async () => {
  await assert.rejects(
    buildInclusionProof(0, 7, { getNodes: () => [new Uint8Array(32)] }),
    /getNodes returned 1 hashes for 4 nodes/,
  );
});

// Leaves [begin, end) covered by each node, checked to tile [0, size) exactly.
function assertTiles(nodes: NodeId[], { size, label }: { size: number; label: string }): void {
  const spans = nodes
    .map(({ level, index }) => [index * 2 ** level, (index + 1) * 2 ** level])
    .sort((a, b) => a[0] - b[0]);
  let cursor = 0;
  for (const [begin, end] of spans) {
    assert.equal(begin, cursor, `${label}: gap or overlap at ${cursor}`);
    cursor = end;
  }
  assert.equal(cursor, size, `${label}: covers ${cursor} of ${size} leaves`);
}

Deno.test("proof plans stay exact beyond 32-bit sizes, up to 2^53 - 1", () => {
  const random = createRandom(7);
  const sizes = [2 ** 32, 2 ** 32 + 1, 2 ** 40 - 1, 2 ** 52, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER];
  for (const size of sizes) {
    for (
      const index of [0, 1, size - 2, size - 1, Math.floor(size / 3), random(2 ** 30) * 2 ** 20]
    ) {
      if (index >= size) continue;
      const plan = inclusionNodes(index, size);
      // Together with the leaf, an inclusion proof's nodes tile the tree.
      assertTiles([...plan.nodes, { level: 0, index }], {
        size,
        label: `inclusion ${index}/${size}`,
      });
      // And the verifier expects exactly as many hashes as the plan yields.
      const proof = materialize(plan, plan.nodes.map(() => new Uint8Array(32)));
      rootFromInclusionProof({ index, size, leafHash: new Uint8Array(32), proof });
    }
    for (const size1 of [1, 2, 3, 2 ** 31, 2 ** 31 + 1, size - 1, Math.floor(size / 5)]) {
      if (size1 < 1 || size1 >= size) continue;
      const plan = consistencyNodes(size1, size);
      // Bitwise tricks truncate to 32 bits, so test for a power of two by doubling.
      let power = 1;
      while (power < size1) power *= 2;
      const seedIsOldRoot = power === size1;
      const covered = seedIsOldRoot ? [...plan.nodes, ...rangeNodes(0, size1)] : plan.nodes;
      assertTiles(covered, { size, label: `consistency ${size1}/${size}` });
      const proof = materialize(plan, plan.nodes.map(() => new Uint8Array(32)));
      // A wrong count would be a ProofSizeError; a mismatch is all we may get.
      assert.throws(
        () =>
          verifyConsistency({
            size1,
            size2: size,
            root1: new Uint8Array(32),
            root2: new Uint8Array(32),
            proof,
          }),
        RootMismatchError,
      );
    }
  }
});

Deno.test("rootNodes() of size 0 is empty and buildRoot() gives EMPTY_ROOT", async () => {
  assert.deepEqual(rootNodes(0), { nodes: [], rehash: null });
  assert.deepEqual(await buildRoot(0, { getNodes: () => [] }), EMPTY_ROOT);
});

function assertVerifyFails(verify: () => void, label: string): void {
  assert.throws(verify, RootMismatchError, label);
}

// Checks everything about one tree: stored nodes, roots at every size, and
// sampled inclusion and consistency proofs against the RFC's own recursive
// definitions, including that any single flipped bit is caught.
async function checkTree(
  size: number,
  options: { random: (n: number) => number; samples: number },
): Promise<void> {
  const { random, samples } = options;
  const leaves = randomLeaves(size, random);
  const reference = new ReferenceTree(leaves);
  const store = new NodeStore();
  const range = new CompactRange();
  for (const leaf of leaves) {
    store.add(range.append(leaf));
    assert.deepEqual(range.root(), reference.root(range.size), `root at size ${range.size}`);
  }
  // Every complete node exists once: floor(size / 2^level) at each level.
  let expectedNodes = 0;
  for (let level = 0; 2 ** level <= size; level++) expectedNodes += Math.floor(size / 2 ** level);
  assert.equal(store.nodes.size, expectedNodes, `stored nodes for size ${size}`);
  assert.deepEqual(CompactRange.fromJSON(range.toJSON()).root(), range.root());
  assert.deepEqual(range.nodeIds(), rangeNodes(0, size));

  const exhaustive = size <= samples;
  const sizes = exhaustive
    ? Array.from({ length: size }, (_, i) => i + 1)
    : [size, ...Array.from({ length: samples - 1 }, () => 1 + random(size))];

  for (const treeSize of sizes) {
    const root = reference.root(treeSize);
    assert.deepEqual(await buildRoot(treeSize, store), root, `buildRoot(${treeSize})`);
    const indices = exhaustive && treeSize === size
      ? Array.from({ length: treeSize }, (_, i) => i)
      : [random(treeSize), treeSize - 1];
    for (const index of indices) {
      const reads = store.reads;
      const proof = await buildInclusionProof(index, treeSize, store);
      assert.ok(store.reads - reads <= 1, "one batched read per proof");
      const label = `inclusion ${index}/${treeSize}`;
      assert.deepEqual(proof, reference.path(index, 0, treeSize), label);
      const leafHash = leaves[index];
      verifyInclusion({ index, size: treeSize, leafHash, proof, root });
      proof.forEach((node, i) => {
        const bad = proof.with(i, flipBit(node, random(256)));
        assertVerifyFails(
          () => verifyInclusion({ index, size: treeSize, leafHash, proof: bad, root }),
          `${label} node ${i}`,
        );
      });
      assertVerifyFails(
        () =>
          verifyInclusion({
            index,
            size: treeSize,
            leafHash,
            proof,
            root: flipBit(root, random(256)),
          }),
        `${label} root`,
      );
      assertVerifyFails(
        () =>
          verifyInclusion({
            index,
            size: treeSize,
            leafHash: flipBit(leafHash, random(256)),
            proof,
            root,
          }),
        `${label} leaf`,
      );
    }

    const olderSizes = exhaustive && treeSize === size
      ? Array.from({ length: treeSize }, (_, i) => i + 1)
      : [1 + random(treeSize), treeSize];
    for (const size1 of olderSizes) {
      const root1 = reference.root(size1);
      const proof = await buildConsistencyProof(size1, treeSize, store);
      const label = `consistency ${size1}/${treeSize}`;
      assert.deepEqual(proof, reference.consistency(size1, treeSize), label);
      verifyConsistency({ size1, size2: treeSize, root1, root2: root, proof });
      proof.forEach((node, i) => {
        const bad = proof.with(i, flipBit(node, random(256)));
        assertVerifyFails(
          () => verifyConsistency({ size1, size2: treeSize, root1, root2: root, proof: bad }),
          `${label} node ${i}`,
        );
      });
      assertVerifyFails(
        () =>
          verifyConsistency({
            size1,
            size2: treeSize,
            root1: flipBit(root1, random(256)),
            root2: root,
            proof,
          }),
        `${label} root1`,
      );
      assertVerifyFails(
        () =>
          verifyConsistency({
            size1,
            size2: treeSize,
            root1,
            root2: flipBit(root, random(256)),
            proof,
          }),
        `${label} root2`,
      );
    }
  }
}

Deno.test("proofs from stored nodes equal RFC 6962 PATH/PROOF and catch any flipped bit (sizes 1..64, exhaustive)", async () => {
  const random = createRandom(1);
  for (let size = 1; size <= 64; size++) await checkTree(size, { random, samples: 64 });
});

Deno.test("proofs from stored nodes equal RFC 6962 PATH/PROOF and catch any flipped bit (random sizes up to 1000)", async () => {
  const random = createRandom(2);
  const sizes = [127, 128, 129, 255, 256, 511, 512, 513, 999, 1000];
  for (let i = 0; i < 30; i++) sizes.push(65 + random(936));
  for (const size of sizes) await checkTree(size, { random, samples: 24 });
});

Deno.test("hashChildren() order matters, so a proof with two nodes swapped fails", () => {
  const random = createRandom(3);
  const leaves = randomLeaves(8, random);
  const reference = new ReferenceTree(leaves);
  const proof = reference.path(5, 0, 8);
  const swapped = [proof[1], proof[0], proof[2]];
  assert.notDeepEqual(hashChildren(proof[0], proof[1]), hashChildren(proof[1], proof[0]));
  assert.throws(
    () =>
      verifyInclusion({
        index: 5,
        size: 8,
        leafHash: leaves[5],
        proof: swapped,
        root: reference.root(8),
      }),
    RootMismatchError,
  );
});
