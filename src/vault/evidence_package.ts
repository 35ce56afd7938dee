/**
 * Evidence packages: a few vault entries that prove themselves offline —
 * each entry's canonical bytes with its RFC 9162 inclusion proof against one
 * signed checkpoint, the receipts that name them, the bodies they refer to
 * and the verifier key. `warden verify PACKAGE [--key VKEY]` checks one
 * exactly as `verifyEvidencePackage` does; an export bundle proves a whole
 * log, a package proves a handful of entries without the rest.
 *
 * ```json
 * {"format":"warden-evidence-package/1","origin":"…","vkey":"…","size":N,"checkpoint":"<note>",
 *  "entries":[{"index":i,"data":"<base64 canonical entry>","proof":["<hex>",…]}],
 *  "receipts":["<receipt note>"],"blobs":{"<sha256 hex>":"<base64>"}}
 * ```
 *
 * @module
 */

import type { BundleFileResult } from "./bundle_io.ts";
import type { BundleFailure } from "./bundle_verify.ts";
import { canonicalString, fromBase64, fromHex, sha256, toBase64, toHex } from "../lib/mod.ts";
import {
  hashLeaf,
  openCheckpoint,
  RootMismatchError,
  type Verifier,
  verifierFromVkey,
  verifyInclusion,
} from "../merkle/mod.ts";
import type { Ledger } from "./ledger.ts";
import { openReceipt } from "./receipt.ts";

/** The format tag of every package. */
export const EVIDENCE_PACKAGE_FORMAT = "warden-evidence-package/1";

/** One entry with its proof. */
export interface PackagedEntry {
  readonly index: number;
  /** Base64 of the entry's canonical JSON bytes. */
  readonly data: string;
  /** Hex hashes of the inclusion proof against the checkpoint. */
  readonly proof: readonly string[];
}

/** A self-verifying evidence package. */
export interface EvidencePackage {
  readonly format: string;
  readonly origin: string;
  readonly vkey: string;
  /** The tree size the checkpoint signs and the proofs lead to. */
  readonly size: number;
  readonly checkpoint: string;
  readonly entries: readonly PackagedEntry[];
  /** Signed execution receipts naming packaged entries. */
  readonly receipts: readonly string[];
  readonly blobs: Readonly<Record<string, string>>;
}

/** The most entries one package holds. */
export const MAX_PACKAGE_ENTRIES = 1000;

const BODY_REF = /"body_sha256":"([0-9a-f]{64})"/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Builds a package of the entries at `indices` (deduplicated, in order) and
 * the given receipts. Signs a checkpoint first when none covers the last
 * index yet. Throws RangeError for an index the log does not hold.
 */
export async function buildEvidencePackage(
  ledger: Ledger,
  options: { vkey: string; indices: readonly number[]; receipts?: readonly string[] },
): Promise<EvidencePackage> {
  const indices = [...new Set(options.indices)].sort((a, b) => a - b);
  if (indices.length === 0) throw new RangeError("Cannot build an evidence package of no entries");
  if (indices.length > MAX_PACKAGE_ENTRIES) {
    throw new RangeError(`Cannot package more than ${MAX_PACKAGE_ENTRIES} entries`);
  }
  const last = indices[indices.length - 1];
  await ledger.flush();
  let note = await ledger.latestCheckpoint();
  let size = note === null ? 0 : sizeOf(note);
  if (size <= last) {
    note = await ledger.signCheckpoint();
    size = note === null ? 0 : sizeOf(note);
  }
  if (note === null || size <= last) {
    throw new RangeError(`Cannot package entry ${last}: the vault holds ${size} entries`);
  }
  const entries: PackagedEntry[] = [];
  const blobs: Record<string, string> = {};
  for (const index of indices) {
    const stored = await ledger.entry(index);
    if (stored === null) throw new RangeError(`Cannot package entry ${index}: it does not exist`);
    const proof = await ledger.inclusionProof(index, size);
    entries.push({ index, data: toBase64(stored.bytes), proof: proof.map(toHex) });
    const ref = BODY_REF.exec(new TextDecoder().decode(stored.bytes));
    if (ref && blobs[ref[1]] === undefined) {
      const body = await ledger.blob(ref[1]);
      if (body) blobs[ref[1]] = toBase64(body);
    }
  }
  return {
    format: EVIDENCE_PACKAGE_FORMAT,
    origin: ledger.origin,
    vkey: options.vkey,
    size,
    checkpoint: note,
    entries,
    receipts: [...(options.receipts ?? [])],
    blobs,
  };
}

function sizeOf(note: string): number {
  return Number(note.split("\n")[1]);
}

/** What a verified package adds to a bundle result. */
export type PackageResult = BundleFileResult & { receipts?: number; packaged?: number };

function fail(reason: string, index?: number): BundleFailure {
  return index === undefined ? { ok: false, reason } : { ok: false, index, reason };
}

/**
 * Verifies a package offline: the checkpoint's signature (by `key` when
 * given, else the package's own `vkey`, which proves only self-consistency),
 * every entry's canonical form, index and inclusion proof against the signed
 * root, every receipt's signature and agreement with the entry it names, and
 * every referenced body's hash. Returns the first defect with the entry
 * index at fault; never throws for bad data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyEvidencePackage } from "./evidence_package.ts";
 * // A package is the JSON evidence_package wrote; on failure: { ok: false, index?, reason }.
 * const result = await verifyEvidencePackage({ format: "something else" });
 * assert.equal(result.ok, false);
 * ```
 */
// Kept whole: verification reads as a checklist (format, signatures, each leaf, the root,
// referenced bodies), each step refusing with its own reason; split, the order of checks would be
// hidden.
export async function verifyEvidencePackage(
  pkg: unknown,
  options: { key?: string } = {},
): Promise<PackageResult> {
  if (typeof pkg !== "object" || pkg === null || Array.isArray(pkg)) {
    return fail("evidence package is not a JSON object");
  }
  const p = pkg as Record<string, unknown>;
  if (p.format !== EVIDENCE_PACKAGE_FORMAT) {
    return fail(
      `not a warden evidence package (format ${JSON.stringify(String(p.format).slice(0, 40))})`,
    );
  }
  if (
    typeof p.origin !== "string" || typeof p.vkey !== "string" || typeof p.checkpoint !== "string"
  ) {
    return fail("evidence package origin, vkey or checkpoint is missing");
  }
  if (!Array.isArray(p.entries) || !Array.isArray(p.receipts ?? [])) {
    return fail("evidence package entries or receipts is not an array");
  }
  if (p.entries.length === 0 || p.entries.length > MAX_PACKAGE_ENTRIES) {
    return fail(`evidence package must hold 1 to ${MAX_PACKAGE_ENTRIES} entries`);
  }
  const blobs = (p.blobs ?? {}) as Record<string, unknown>;
  if (typeof blobs !== "object" || blobs === null || Array.isArray(blobs)) {
    return fail("evidence package blobs is not an object");
  }
  let verifier: Verifier;
  try {
    verifier = await verifierFromVkey(options.key ?? p.vkey);
    if (options.key !== undefined && (await verifierFromVkey(p.vkey)).vkey !== verifier.vkey) {
      return fail(
        `evidence package is signed by ${p.vkey}, not by the trusted key ${verifier.vkey}`,
      );
    }
  } catch (error) {
    return fail((error as Error).message);
  }
  let size: number;
  let root: Uint8Array;
  try {
    const { checkpoint } = await openCheckpoint(p.checkpoint, [verifier], { origin: p.origin });
    size = checkpoint.size;
    root = checkpoint.root;
  } catch (error) {
    return fail(`checkpoint: ${(error as Error).message}`);
  }
  if (p.size !== size) return fail(`package says size ${p.size}, its checkpoint signs ${size}`);

  const leaves = new Map<number, { leaf: string; value: Record<string, unknown> }>();
  let referencedBodies = 0;
  for (const [position, raw] of p.entries.entries()) {
    const e = raw as Partial<PackagedEntry>;
    const index = e?.index;
    if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) {
      return fail(`package entry ${position}: index is not an entry index`);
    }
    if (leaves.has(index)) return fail(`entry ${index}: packaged twice`, index);
    if (typeof e.data !== "string" || !Array.isArray(e.proof)) {
      return fail(`entry ${index}: data or proof is missing`, index);
    }
    let bytes: Uint8Array;
    let value: Record<string, unknown>;
    try {
      bytes = fromBase64(e.data);
      const text = strictUtf8.decode(bytes);
      value = JSON.parse(text);
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error();
      if (canonicalString(value, { surrogates: "escape" }) !== text) {
        return fail(`entry ${index}: not canonical JSON`, index);
      }
    } catch {
      return fail(`entry ${index}: not base64 of a canonical JSON object`, index);
    }
    if (value.index !== index) return fail(`entry ${index}: index field is ${value.index}`, index);
    const leafHash = hashLeaf(bytes);
    try {
      verifyInclusion({
        index,
        size,
        leafHash,
        proof: e.proof.map((h) => fromHex(String(h))),
        root,
      });
    } catch (error) {
      const result = fail(
        error instanceof RootMismatchError
          ? `entry ${index} is not the entry the checkpoint of size ${size} commits to (its inclusion proof leads to another root)`
          : `entry ${index}: ${(error as Error).message}`,
        index,
      );
      return error instanceof RootMismatchError
        ? { ...result, expected: toHex(root), calculated: toHex(error.calculated) }
        : result;
    }
    const ref = BODY_REF.exec(new TextDecoder().decode(bytes));
    if (ref) {
      const body = blobs[ref[1]];
      if (typeof body !== "string") {
        return fail(`entry ${index}: body ${ref[1]} is missing from the package`, index);
      }
      let calculated: string;
      try {
        calculated = toHex(sha256(fromBase64(body)));
      } catch {
        return fail(`entry ${index}: body ${ref[1]} is not valid base64`, index);
      }
      if (calculated !== ref[1]) {
        return fail(`entry ${index}: body does not hash to its recorded body_sha256`, index);
      }
      referencedBodies++;
    }
    leaves.set(index, { leaf: toHex(leafHash), value });
  }
  const receipts = (p.receipts ?? []) as unknown[];
  for (const [position, note] of receipts.entries()) {
    let receipt;
    try {
      receipt = await openReceipt(String(note), verifier);
    } catch (error) {
      return fail(`receipt ${position}: ${(error as Error).message}`);
    }
    const named = leaves.get(receipt.vault_index);
    const i = receipt.vault_index;
    if (named === undefined) {
      return fail(`receipt ${position} names entry ${i}, not in the package`);
    }
    if (named.leaf !== receipt.vault_leaf_hash) {
      return fail(`entry ${i}: its leaf hash is not the one receipt ${position} signed`, i);
    }
    for (const field of ["execution_id", "input_sha256", "output_sha256", "principal"]) {
      if (named.value[field] !== receipt[field]) {
        return fail(`entry ${i}: ${field} differs from receipt ${position}`, i);
      }
    }
  }
  return {
    ok: true,
    entries: leaves.size,
    packaged: leaves.size,
    checkpoints: 1,
    size,
    signedSize: size,
    consistencyProofs: 0,
    root: toHex(root),
    authenticated: options.key !== undefined,
    blobs: referencedBodies,
    receipts: receipts.length,
  };
}
