// Test fixtures for the vault core: a deliberately naive RFC 6962 tree written
// straight from the RFC's recursive definitions (section 2.1), a node store
// filled the way the storage layer fills it, and a bundle builder.

import { canonicalize, sha256, toBase64, toHex } from "../../src/lib/mod.ts";
import {
  CompactRange,
  hashChildren,
  hashLeaf,
  type NodeId,
  type NodeSource,
  signCheckpoint,
  type Signer,
} from "../../src/merkle/mod.ts";

/** Largest power of two strictly smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 6962 MTH, PATH and PROOF over a fixed list of leaf hashes, memoised by range. */
export class ReferenceTree {
  readonly leaves: Uint8Array[];
  #memo = new Map<string, Uint8Array>();

  constructor(leaves: Uint8Array[]) {
    this.leaves = leaves;
  }

  /** MTH(D[begin:end]). */
  hash(begin: number, end: number): Uint8Array {
    if (end - begin === 0) return sha256(new Uint8Array());
    if (end - begin === 1) return this.leaves[begin];
    const key = `${begin}:${end}`;
    let hash = this.#memo.get(key);
    if (hash === undefined) {
      const k = splitPoint(end - begin);
      hash = hashChildren(this.hash(begin, begin + k), this.hash(begin + k, end));
      this.#memo.set(key, hash);
    }
    return hash;
  }

  /** Root of the tree of the first `size` leaves. */
  root(size: number): Uint8Array {
    return this.hash(0, size);
  }

  /** PATH(m, D[begin:end]). */
  path(m: number, begin: number, end: number): Uint8Array[] {
    const n = end - begin;
    if (n === 1) return [];
    const k = splitPoint(n);
    if (m < k) return [...this.path(m, begin, begin + k), this.hash(begin + k, end)];
    return [...this.path(m - k, begin + k, end), this.hash(begin, begin + k)];
  }

  /** PROOF(m, D[0:n]) via SUBPROOF. */
  consistency(m: number, n: number): Uint8Array[] {
    return this.#subproof(m, 0, n, true);
  }

  #subproof(m: number, begin: number, end: number, complete: boolean): Uint8Array[] {
    const n = end - begin;
    if (m === n) return complete ? [] : [this.hash(begin, end)];
    const k = splitPoint(n);
    if (m <= k) {
      return [...this.#subproof(m, begin, begin + k, complete), this.hash(begin + k, end)];
    }
    return [...this.#subproof(m - k, begin + k, end, false), this.hash(begin, begin + k)];
  }
}

/** Node hashes persisted exactly as CompactRange.append reports them. */
export class NodeStore implements NodeSource {
  readonly nodes = new Map<string, Uint8Array>();
  reads = 0;

  add(created: { level: number; index: number; hash: Uint8Array }[]): void {
    for (const { level, index, hash } of created) {
      const key = `${level}/${index}`;
      if (this.nodes.has(key)) throw new Error(`node ${key} created twice`);
      this.nodes.set(key, hash);
    }
  }

  getNodes(ids: NodeId[]): Uint8Array[] {
    this.reads++;
    return ids.map(({ level, index }) => {
      const hash = this.nodes.get(`${level}/${index}`);
      if (hash === undefined) throw new Error(`node ${level}/${index} was never stored`);
      return hash;
    });
  }
}

/** Deterministic pseudo-random bytes (mulberry32), so failures reproduce. */
export function createRandom(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return function next(n: number): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Leaf hashes of `count` small random leaves. */
export function randomLeaves(count: number, random: (n: number) => number): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const data = new Uint8Array(random(8));
    for (let i = 0; i < data.length; i++) data[i] = random(256);
    return hashLeaf(data);
  });
}

/** Copy of `bytes` with bit `bit` flipped. */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
}

/** Canonical entry bytes of a chained log of `count` entries. */
export function chainedEntries(count: number): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let prev = "0".repeat(64);
  for (let index = 0; index < count; index++) {
    const bytes = canonicalize({
      index,
      prev,
      tool: "fs.read",
      args: { path: `/tmp/file-${index}.txt` },
      verdict: index % 7 === 0 ? "deny" : "allow",
      latency_ms: index * 3,
    });
    entries.push(bytes);
    prev = toHex(hashLeaf(bytes));
  }
  return entries;
}

/** A bundle of `entries` with checkpoints at `sizes`, signed by `signer`. */
export async function buildBundle(
  entries: Uint8Array[],
  sizes: number[],
  options: { signer: Signer; origin: string },
): Promise<{ origin: string; vkey: string; entries: string[]; checkpoints: string[] }> {
  const range = new CompactRange();
  const roots = new Map<number, Uint8Array>([[0, range.root()]]);
  for (const entry of entries) {
    range.append(hashLeaf(entry));
    roots.set(range.size, range.root());
  }
  const checkpoints = await Promise.all(
    sizes.map((size) =>
      signCheckpoint({ origin: options.origin, size, root: roots.get(size)! }, options.signer)
    ),
  );
  return {
    origin: options.origin,
    vkey: options.signer.vkey,
    entries: entries.map(toBase64),
    checkpoints,
  };
}
