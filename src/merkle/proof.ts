/**
 * Proof construction that names the tree nodes it needs and never touches
 * storage, in the manner of transparency-dev/merkle's `proof` package.
 *
 * Every node a plan names is a complete perfect subtree within the tree size
 * asked for, so a store that persists the nodes returned by
 * `CompactRange.append` can serve any plan with one batched read of
 * O(log n) keys. Where a proof needs the hash of a subtree that is not
 * perfect (the "ephemeral" right border of a tree whose size is not a power
 * of two), the plan names the perfect subtrees covering it and says which
 * run of them to hash together.
 *
 * @module
 */

import { assertCount, shiftRight, trailingZeros, xorBitLength } from "./_bits.ts";
import type { NodeId } from "./compact_range.ts";
import { assertHash, EMPTY_ROOT, hashChildren } from "./hasher.ts";

/** The nodes a proof needs and how to turn their hashes into the proof. */
export interface ProofPlan {
  /** Complete subtrees to fetch, in proof order. */
  nodes: NodeId[];
  /**
   * When not null, `nodes[start, end)` cover one incomplete subtree and are
   * listed rightmost first; `materialize` folds them into a single proof hash
   * as hash(nodes[end-1], …hash(nodes[start+1], nodes[start])).
   */
  rehash: { start: number; end: number } | null;
}

/** Reads node hashes in one batch, in the order asked; sync or async. */
export type GetNodes = (ids: NodeId[]) => Uint8Array[] | Promise<Uint8Array[]>;

/**
 * Where proofs read stored nodes from: typically the storage layer's node
 * repository itself, which turns `getNodes` into one batched read.
 */
export interface NodeSource {
  getNodes: GetNodes;
}

/**
 * The perfect subtrees tiling leaves [begin, end), left to right, each as
 * large as alignment allows. For begin = 0 these are exactly the nodes of the
 * compact range of size `end`.
 */
export function rangeNodes(begin: number, end: number): NodeId[] {
  assertCount(begin, "begin");
  assertCount(end, "end");
  if (begin > end) throw new RangeError(`Cannot tile leaves [${begin}, ${end}): begin > end`);
  const nodes: NodeId[] = [];
  while (begin < end) {
    let level = 0;
    while (begin % 2 ** (level + 1) === 0 && begin + 2 ** (level + 1) <= end) level++;
    nodes.push({ level, index: begin / 2 ** level });
    begin += 2 ** level;
  }
  return nodes;
}

// The nodes proving the complete node (level, index) within a tree of `size`
// leaves, with that node itself first. Going up from the node, the path to it
// and the path to the tree's right edge meet at the "fork"; below the fork
// the proof is the plain sibling path, beside it the (possibly incomplete)
// subtree to its right, and finally the complete subtrees to its left.
function planFor({ level, index }: NodeId, size: number): ProofPlan {
  const inner = xorBitLength(index, shiftRight(size, level)) - 1;
  const forkLevel = level + inner;
  const begin = shiftRight(index, inner) * 2 ** forkLevel;
  const end = begin + 2 ** forkLevel;

  const nodes: NodeId[] = [{ level, index }];
  for (let l = level, i = index; l < forkLevel; l++, i = shiftRight(i, 1)) {
    nodes.push({ level: l, index: i % 2 === 0 ? i + 1 : i - 1 });
  }
  const start = nodes.length;
  nodes.push(...rangeNodes(end, size).reverse());
  const stop = nodes.length;
  nodes.push(...rangeNodes(0, begin).reverse());
  return { nodes, rehash: stop - start >= 2 ? { start, end: stop } : null };
}

function withoutFirst(plan: ProofPlan): ProofPlan {
  const rehash = plan.rehash && { start: plan.rehash.start - 1, end: plan.rehash.end - 1 };
  return { nodes: plan.nodes.slice(1), rehash };
}

/**
 * Names the nodes of the RFC 9162 inclusion proof for leaf `index` in the tree
 * of `size` leaves. Throws a RangeError unless 0 <= index < size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inclusionNodes } from "./proof.ts";
 * assert.deepEqual(inclusionNodes(0, 3), {
 *   nodes: [{ level: 0, index: 1 }, { level: 0, index: 2 }],
 *   rehash: null,
 * });
 * ```
 */
export function inclusionNodes(index: number, size: number): ProofPlan {
  assertCount(index, "index");
  assertCount(size, "size");
  if (index >= size) {
    throw new RangeError(
      `Cannot prove inclusion of leaf ${index} in tree of size ${size}: index out of range`,
    );
  }
  return withoutFirst(planFor({ level: 0, index }, size));
}

/**
 * Names the nodes of the RFC 9162 consistency proof from the tree of `size1`
 * leaves to the tree of `size2`. Throws a RangeError unless
 * 0 < size1 <= size2, matching what `verifyConsistency` accepts; equal sizes
 * give an empty plan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { consistencyNodes } from "./proof.ts";
 * assert.deepEqual(consistencyNodes(4, 8), { nodes: [{ level: 2, index: 1 }], rehash: null });
 * ```
 */
export function consistencyNodes(size1: number, size2: number): ProofPlan {
  assertCount(size1, "size1");
  assertCount(size2, "size2");
  if (size1 === 0 || size1 > size2) {
    throw new RangeError(
      `Cannot prove consistency between sizes ${size1} and ${size2}: requires 0 < size1 <= size2`,
    );
  }
  if (size1 === size2) return { nodes: [], rehash: null };
  // Start from the largest complete subtree ending at size1; its hash opens
  // the proof unless size1 is a power of two, when the verifier already
  // holds it as the old root.
  const level = trailingZeros(size1);
  const index = size1 / 2 ** level - 1;
  const plan = planFor({ level, index }, size2);
  return index === 0 ? withoutFirst(plan) : plan;
}

/**
 * Names the nodes whose hashes fold into the root of the tree of `size`
 * leaves (the compact range, rightmost first, to be rehashed into one hash).
 * The empty tree has no nodes; its root is EMPTY_ROOT.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rootNodes } from "./proof.ts";
 * // Nodes (0,2) then (1,0), rehashed together into one hash.
 * assert.deepEqual(rootNodes(3), {
 *   nodes: [{ level: 0, index: 2 }, { level: 1, index: 0 }],
 *   rehash: { start: 0, end: 2 },
 * });
 * ```
 */
export function rootNodes(size: number): ProofPlan {
  assertCount(size, "size");
  const nodes = rangeNodes(0, size).reverse();
  return { nodes, rehash: nodes.length >= 2 ? { start: 0, end: nodes.length } : null };
}

/**
 * Turns the hashes of `plan.nodes` (same order) into the proof hash list,
 * folding the ephemeral run if the plan has one. Throws a TypeError if the
 * number of hashes differs from the number of nodes or a hash is not 32
 * bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inclusionNodes, materialize } from "./proof.ts";
 * const plan = inclusionNodes(0, 3);
 * const proof = materialize(plan, plan.nodes.map(() => new Uint8Array(32)));
 * assert.equal(proof.length, 2);
 * ```
 */
export function materialize(plan: ProofPlan, hashes: readonly Uint8Array[]): Uint8Array[] {
  if (!Array.isArray(hashes) || hashes.length !== plan.nodes.length) {
    throw new TypeError(
      `Cannot materialize proof: got ${hashes?.length} hashes for ${plan.nodes.length} nodes`,
    );
  }
  hashes.forEach((hash, i) => assertHash(hash, `hashes[${i}]`));
  const proof: Uint8Array[] = [];
  for (let i = 0; i < hashes.length; i++) {
    if (plan.rehash !== null && i === plan.rehash.start) {
      let hash = hashes[i];
      for (i++; i < plan.rehash.end; i++) hash = hashChildren(hashes[i], hash);
      i--;
      proof.push(hash);
    } else {
      proof.push(hashes[i]);
    }
  }
  return proof;
}

async function fetchAndMaterialize(
  plan: ProofPlan,
  { source, context }: { source: NodeSource; context: string },
): Promise<Uint8Array[]> {
  if (plan.nodes.length === 0) return [];
  const hashes = await source.getNodes(plan.nodes);
  if (!Array.isArray(hashes) || hashes.length !== plan.nodes.length) {
    throw new TypeError(
      `${context}: getNodes returned ${hashes?.length} hashes for ${plan.nodes.length} nodes`,
    );
  }
  return materialize(plan, hashes);
}

/**
 * Builds the inclusion proof for leaf `index` in the tree of `size` leaves,
 * reading every node it needs with one `source.getNodes` call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildInclusionProof } from "./proof.ts";
 * import { verifyInclusion } from "./verify.ts";
 * import { buildRoot } from "./proof.ts";
 * import type { NodeId } from "./compact_range.ts";
 * import { CompactRange } from "./compact_range.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const store = new Map<string, Uint8Array>();
 * const range = new CompactRange();
 * for (let i = 0; i < 7; i++) {
 *   for (const node of range.append(hashLeaf(Uint8Array.of(i)))) {
 *     store.set(`${node.level}/${node.index}`, node.hash);
 *   }
 * }
 * const getNodes = (ids: NodeId[]) => ids.map(({ level, index }) => store.get(`${level}/${index}`)!);
 * const proof = await buildInclusionProof(0, 3, { getNodes });
 * assert.equal(proof.length, 2);
 * const root = await buildRoot(3, { getNodes });
 * verifyInclusion({ index: 0, size: 3, leafHash: hashLeaf(Uint8Array.of(0)), proof, root });
 * ```
 */
export function buildInclusionProof(
  index: number,
  size: number,
  source: NodeSource,
): Promise<Uint8Array[]> {
  return fetchAndMaterialize(inclusionNodes(index, size), {
    source,
    context: `Cannot build inclusion proof of leaf ${index} in tree of size ${size}`,
  });
}

/**
 * Builds the consistency proof from the tree of `size1` leaves to the tree of
 * `size2`, reading every node it needs with one `source.getNodes` call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildConsistencyProof, buildRoot } from "./proof.ts";
 * import { verifyConsistency } from "./verify.ts";
 * import type { NodeId } from "./compact_range.ts";
 * import { CompactRange } from "./compact_range.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const store = new Map<string, Uint8Array>();
 * const range = new CompactRange();
 * for (let i = 0; i < 7; i++) {
 *   for (const node of range.append(hashLeaf(Uint8Array.of(i)))) {
 *     store.set(`${node.level}/${node.index}`, node.hash);
 *   }
 * }
 * const getNodes = (ids: NodeId[]) => ids.map(({ level, index }) => store.get(`${level}/${index}`)!);
 * const proof = await buildConsistencyProof(3, 7, { getNodes });
 * assert.equal(proof.length, 4);
 * const [root1, root2] = [await buildRoot(3, { getNodes }), await buildRoot(7, { getNodes })];
 * verifyConsistency({ size1: 3, size2: 7, root1, root2, proof });
 * ```
 */
export function buildConsistencyProof(
  size1: number,
  size2: number,
  source: NodeSource,
): Promise<Uint8Array[]> {
  return fetchAndMaterialize(consistencyNodes(size1, size2), {
    source,
    context: `Cannot build consistency proof between sizes ${size1} and ${size2}`,
  });
}

/**
 * Computes the root of the tree of `size` leaves from stored nodes (one
 * `source.getNodes` call), e.g. to answer for an older size than the head's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildRoot } from "./proof.ts";
 * import { hashChildren } from "./hasher.ts";
 * import type { NodeId } from "./compact_range.ts";
 * import { CompactRange } from "./compact_range.ts";
 * import { hashLeaf } from "./hasher.ts";
 * const store = new Map<string, Uint8Array>();
 * const range = new CompactRange();
 * for (let i = 0; i < 7; i++) {
 *   for (const node of range.append(hashLeaf(Uint8Array.of(i)))) {
 *     store.set(`${node.level}/${node.index}`, node.hash);
 *   }
 * }
 * const getNodes = (ids: NodeId[]) => ids.map(({ level, index }) => store.get(`${level}/${index}`)!);
 * const leaves = [0, 1, 2].map((i) => hashLeaf(Uint8Array.of(i)));
 * const expected = hashChildren(hashChildren(leaves[0], leaves[1]), leaves[2]);
 * assert.deepEqual(await buildRoot(3, { getNodes }), expected); // the root of the first 3 leaves
 * ```
 */
export async function buildRoot(size: number, source: NodeSource): Promise<Uint8Array> {
  const plan = rootNodes(size);
  if (plan.nodes.length === 0) return EMPTY_ROOT.slice();
  const [root] = await fetchAndMaterialize(plan, {
    source,
    context: `Cannot build root of size ${size}`,
  });
  return root;
}
