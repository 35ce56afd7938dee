/**
 * The vault's record codec: how an entry's canonical JSON is prepared before its index and
 * previous hash are known, how an entry record (leaf hash, the subtree hashes it completes, the
 * entry's bytes) and the head record are laid out in KV, and how they are read back. Pure: no KV.
 * @module
 */
import { canonicalMembers, fromHex, toBase64, toHex } from "../lib/mod.ts";
import { CompactRange, popCount } from "../merkle/mod.ts";
import { GENESIS_PREV } from "./bundle_verify.ts";
import type { VaultHead } from "./ledger.ts";

/** Raised when stored data does not add up (a missing node, a head that does not match). */
export class VaultCorruptionError extends Error {
  override name = "VaultCorruptionError";
}

/**
 * An entry's canonical JSON, pre-encoded as `"key":value` members around the
 * two members only the commit can know (`index`, `prev`). Canonical order
 * puts every key either before "index", between "index" and "prev", or after
 * "prev", so the commit splices the two in without re-encoding the rest.
 */
export interface PreparedEntry {
  /** `{` and the members before "index", each followed by a comma. */
  readonly open: string;
  /** The members between "index" and "prev", each preceded by a comma. */
  readonly middle: string;
  /** The members after "prev", each preceded by a comma, and `}`. */
  readonly close: string;
}

/** Encodes `fields` once, leaving room for the `index` and `prev` members the commit adds. */
export function prepareEntry(fields: Record<string, unknown>): PreparedEntry {
  let open = "{", middle = "", close = "";
  canonicalMembers(fields, ENTRY_MEMBERS, (key, member) => {
    if (key < "index") open += member + ",";
    else if (key < "prev") middle += "," + member;
    else close += "," + member;
  });
  return { open, middle, close: close + "}" };
}

/** Entries encode any JS string: lone surrogates become escapes (see canonical_json.ts). */
export const ENTRY_ENCODING = { surrogates: "escape" } as const;
const ENTRY_MEMBERS = { ...ENTRY_ENCODING, name: "entry" } as const;

/** The entry's canonical JSON once its index and previous leaf hash are known. */
export function renderEntry(p: PreparedEntry, index: number, prev: string): string {
  return p.open + '"index":' + index + p.middle + ',"prev":"' + prev + '"' + p.close;
}

/**
 * Entry records are raw bytes (KV stores those without V8 serialization):
 * leaf hash (32) ‖ n (1 byte) ‖ the n subtree hashes this entry completes,
 * levels 1..n (32 each) ‖ the entry's canonical JSON. Node (level l ≥ 1,
 * index k) is therefore slot l−1 of entry (k+1)·2^l − 1.
 */
export function encodeEntryRecord(
  leaf: Uint8Array,
  nodes: Uint8Array[],
  data: Uint8Array,
): Uint8Array {
  const start = 33 + nodes.length * 32;
  const record = new Uint8Array(start + data.byteLength);
  record.set(leaf, 0);
  record[32] = nodes.length;
  for (let i = 0; i < nodes.length; i++) record.set(nodes[i], 33 + i * 32);
  record.set(data, start);
  return record;
}

/** A decoded entry record. */
export interface EntryRecord {
  readonly leaf: Uint8Array;
  /** Stored hash of the node this entry completes at `level` ≥ 1, if any. */
  node(level: number): Uint8Array | undefined;
  readonly data: Uint8Array;
}

/** Reads an entry record back, or null when the stored value is not one. */
export function decodeEntryRecord(value: unknown): EntryRecord | null {
  if (!(value instanceof Uint8Array) || value.byteLength < 34) return null;
  const count = value[32];
  const start = 33 + count * 32;
  if (value.byteLength <= start) return null;
  return {
    leaf: value.subarray(0, 32),
    node: (level) =>
      level >= 1 && level <= count ? value.subarray(1 + level * 32, 33 + level * 32) : undefined,
    data: value.subarray(start),
  };
}

/** The head as the ledger keeps it: the compact range is all an append needs. */
export interface HeadState {
  readonly range: CompactRange;
  /** Hex leaf hash of the last entry, or GENESIS_PREV. */
  readonly last: string;
}

const HEAD_FORMAT = 1;

/**
 * The head record, binary: format (1) ‖ size (8, big-endian) ‖ last leaf (32)
 * ‖ the compact range's subtree roots (32 each, one per set bit of size).
 * The root is recomputed from the range when read, so it cannot disagree.
 */
export function encodeHead(state: HeadState): Uint8Array {
  const hashes = state.range.hashes;
  const bytes = new Uint8Array(41 + hashes.length * 32);
  const view = new DataView(bytes.buffer);
  bytes[0] = HEAD_FORMAT;
  view.setBigUint64(1, BigInt(state.range.size));
  bytes.set(fromHex(state.last), 9);
  for (let i = 0; i < hashes.length; i++) bytes.set(hashes[i], 41 + i * 32);
  return bytes;
}

/** Reads the head record back; a malformed one is a VaultCorruptionError. */
export function decodeHead(bytes: unknown): HeadState {
  const malformed = () => new VaultCorruptionError("Cannot read the vault head: malformed record");
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 41 || bytes[0] !== HEAD_FORMAT) {
    throw malformed();
  }
  const size = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(1);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed();
  const n = Number(size);
  if (bytes.byteLength !== 41 + popCount(n) * 32) throw malformed();
  const hashes: Uint8Array[] = [];
  for (let offset = 41; offset < bytes.byteLength; offset += 32) {
    hashes.push(bytes.slice(offset, offset + 32));
  }
  return { range: new CompactRange(n, hashes), last: toHex(bytes.subarray(9, 41)) };
}

/** The head as callers see it (size, base64 root, compact range, last leaf). */
export function headView(state: HeadState): VaultHead {
  return {
    size: state.range.size,
    root: toBase64(state.range.root()),
    range: state.range.toJSON(),
    last: state.last,
  };
}

/** The head of an empty vault. */
export const EMPTY_STATE: HeadState = { range: new CompactRange(), last: GENESIS_PREV };
