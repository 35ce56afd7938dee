/**
 * The vault's node reader: the Merkle tree's nodes a proof needs, read from the entry records
 * that hold them (each record keeps the subtree hashes its entry completed), with the upper
 * levels cached in memory.
 * @module
 */
import { vaultEntryKey } from "../store/mod.ts";
import type { NodeId } from "../merkle/mod.ts";
import { decodeEntryRecord, type EntryRecord, VaultCorruptionError } from "./record_codec.ts";

/** Nodes at this level and above are cached in memory once read. */
export const CACHED_LEVEL = 10;
/** At most this many cached nodes (~6 MB by default); the oldest go first. */
export const MAX_CACHED_NODES = 1 << 16;

/** The entry whose record holds node (level, index), level ≥ 1 (a leaf, level 0: its own). */
export function nodeHolder(node: NodeId): number {
  return (node.index + 1) * 2 ** node.level - 1;
}

/** Reads tree nodes for proofs and roots (`merkle/`'s node source). */
export interface NodeReader {
  /** The hashes of `ids`, in order; a missing one is a VaultCorruptionError. */
  getNodes(ids: NodeId[]): Promise<Uint8Array[]>;
  /** How many nodes are cached now. */
  readonly cached: number;
}

/**
 * Creates the node reader over `kv`'s entry records.
 *
 * Nodes at CACHED_LEVEL and above are kept once read: a stored node never changes, there are
 * few of them (one per 2^10 entries), and every proof crosses the top of the tree. A proof then
 * reads mostly its lower levels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createNodeReader } from "./node_cache.ts";
 * const kv = await Deno.openKv(":memory:");
 * // An empty vault holds no nodes: asking for one says so instead of inventing it.
 * await assert.rejects(createNodeReader(kv).getNodes([{ level: 0, index: 0 }]), /missing/);
 * kv.close();
 * ```
 */
export function createNodeReader(
  kv: Deno.Kv,
  options: { maxCached?: number } = {},
): NodeReader {
  const maxCached = options.maxCached ?? MAX_CACHED_NODES;
  if (!Number.isInteger(maxCached) || maxCached < 0) {
    throw new RangeError(`Cannot create node reader: maxCached must be a whole number ≥ 0`);
  }
  const nodeCache = new Map<string, Uint8Array>();

  async function getNodes(ids: NodeId[]): Promise<Uint8Array[]> {
    const out: (Uint8Array | undefined)[] = ids.map((n) =>
      n.level >= CACHED_LEVEL ? nodeCache.get(`${n.level}/${n.index}`) : undefined
    );
    const missing = ids.filter((_, i) => out[i] === undefined);
    // Every node lives in the record of the entry that completed it; several
    // may share one. KV's getMany takes at most 10 keys; slices run concurrently.
    const holders = [...new Set(missing.map(nodeHolder))];
    const slices: number[][] = [];
    for (let i = 0; i < holders.length; i += 10) slices.push(holders.slice(i, i + 10));
    const pages = await Promise.all(
      slices.map((slice) => kv.getMany<unknown[]>(slice.map(vaultEntryKey))),
    );
    const records = new Map<number, EntryRecord | null>();
    pages.forEach((page, p) =>
      page.forEach((e, j) => records.set(slices[p][j], decodeEntryRecord(e.value)))
    );
    return ids.map((n, i) => {
      if (out[i]) return out[i];
      const record = records.get(nodeHolder(n));
      const hash = n.level === 0 ? record?.leaf : record?.node(n.level);
      if (!hash) {
        throw new VaultCorruptionError(
          `Cannot build proof: node (level ${n.level}, index ${n.index}) is missing`,
        );
      }
      if (n.level >= CACHED_LEVEL && maxCached > 0) {
        if (nodeCache.size >= maxCached) {
          nodeCache.delete(nodeCache.keys().next().value!);
        }
        nodeCache.set(`${n.level}/${n.index}`, hash.slice());
      }
      return hash;
    });
  }

  return {
    getNodes,
    get cached() {
      return nodeCache.size;
    },
  };
}
