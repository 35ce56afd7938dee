/**
 * Offline verification of an exported vault bundle: every entry's canonical
 * form, index and hash-chain link, the Merkle root at every checkpoint, every
 * checkpoint signature, and consistency between consecutive checkpoints.
 *
 * Entries are processed one at a time into a compact range, so memory stays
 * O(log n + checkpoints) and a million entries take seconds; the streaming
 * form (`createBundleVerifier`) lets a caller feed entries as it reads them.
 *
 * @module
 */

import { canonicalString, equalBytes, fromBase64, fromHex, toHex } from "../lib/mod.ts";
import {
  type Checkpoint,
  CompactRange,
  consistencyNodes,
  hashLeaf,
  materialize,
  type NodeId,
  openCheckpoint,
  parseCheckpoint,
  splitNote,
  type Verifier,
  verifierFromVkey,
  verifyConsistency,
} from "../merkle/mod.ts";

/** `prev` of the first entry: there is no previous entry to hash. */
export const GENESIS_PREV = "0".repeat(64);

/** An export bundle as written by `warden export`. */
export interface Bundle {
  /** The log's origin; every checkpoint must carry it. */
  origin: string;
  /** Verifier key of the log's signing key. */
  vkey: string;
  /** Base64 of each entry's canonical JSON bytes, in index order. */
  entries: readonly string[];
  /** Signed checkpoint notes, in any order. */
  checkpoints: readonly string[];
  /**
   * Hex leaf hash of each entry as the log recorded it when it was appended
   * (optional). Unauthenticated by itself; a signed root authenticates it, and
   * then a changed entry is named exactly even when the chain was re-linked.
   */
  leaves?: readonly string[];
}

/** Options of `verifyBundle` and `createBundleVerifier`. */
export interface BundleOptions {
  /**
   * The verifier key the caller trusts, obtained out of band. Without it the
   * bundle's own `vkey` is used, which only proves the bundle consistent with
   * itself; with it, a bundle naming any other key fails, and every entry
   * must be covered by a signed checkpoint.
   */
  key?: string;
  /**
   * With a trusted key, entries after the last signed checkpoint are a
   * warning instead of a failure.
   */
  allowUnsignedTail?: boolean;
}

/** A bundle that verified. */
export interface BundleSuccess {
  ok: true;
  /** Number of entries checked. */
  entries: number;
  /** Number of checkpoints whose signature and root verified. */
  checkpoints: number;
  /** Tree size: equal to `entries`. */
  size: number;
  /** Largest checkpoint size: entries beyond it are chained but not signed. */
  signedSize: number;
  /** Consistency proofs built and verified between consecutive checkpoints. */
  consistencyProofs: number;
  /** Hex root of all `size` entries. */
  root: string;
  /** True only when a trusted key was given: otherwise nothing was authenticated. */
  authenticated: boolean;
  /** What verified but deserves attention (an allowed unsigned tail). */
  warnings?: string[];
}

/** The first defect found. */
export interface BundleFailure {
  ok: false;
  /** First entry index that cannot be trusted; absent for bundle-level defects. */
  index?: number;
  reason: string;
  /** Hex hash the bundle claims (a checkpoint root, a recorded prev). */
  expected?: string;
  /** Hex hash recomputed from the entries. */
  calculated?: string;
  /** The signed checkpoint note at fault, if any. */
  checkpoint?: string;
}

/** Outcome of a bundle verification. */
export type BundleResult = BundleSuccess | BundleFailure;

/** Entry-by-entry verifier; see `createBundleVerifier`. */
export interface BundleVerifier {
  /**
   * Feeds the next entry, as canonical bytes or their base64. Returns false
   * once the bundle is known to have failed; later entries are then ignored.
   */
  push(entry: Uint8Array | string): boolean;
  /**
   * Feeds the next recorded leaf hash (hex), in index order, after the
   * entries; used only to name the changed entry of a re-chained forgery.
   */
  pushLeaf(hex: unknown): void;
  /** True when recorded leaf hashes could still sharpen the verdict. */
  readonly wantsLeaves: boolean;
  /** Ends the input and returns the verdict. Call once. */
  finish(): BundleResult;
}

interface LocatedCheckpoint {
  size: number;
  note: string;
  /** Set when the signature or origin did not verify. */
  problem?: string;
  checkpoint?: Checkpoint;
}

type Inspected =
  | { ok: true; bytes: Uint8Array; index: number; prev: string }
  | { ok: false; reason: string };

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const HEX_HASH = /^[0-9a-f]{64}$/;

function inspect(raw: unknown): Inspected {
  let bytes: Uint8Array;
  if (raw instanceof Uint8Array) {
    bytes = raw;
  } else if (typeof raw === "string") {
    try {
      bytes = fromBase64(raw);
    } catch {
      return { ok: false, reason: "not valid base64" };
    }
  } else {
    return { ok: false, reason: "not a base64 string" };
  }
  let text: string;
  let value: unknown;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { ok: false, reason: "not valid UTF-8" };
  }
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: "not valid JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "not a JSON object" };
  }
  // Re-encoding and comparing catches every non-canonical form at once:
  // whitespace, key order, duplicate keys, escapes, floats, number spelling.
  try {
    if (canonicalString(value, { surrogates: "escape" }) !== text) {
      return { ok: false, reason: "not canonical JSON" };
    }
  } catch (error) {
    return { ok: false, reason: `not canonical JSON (${(error as Error).message})` };
  }
  const { index, prev } = value as { index?: unknown; prev?: unknown };
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) {
    return { ok: false, reason: "index field missing or not a non-negative integer" };
  }
  if (typeof prev !== "string" || !HEX_HASH.test(prev)) {
    return { ok: false, reason: "prev field missing or not 64 lower-case hex digits" };
  }
  return { ok: true, bytes, index, prev };
}

function failure(reason: string, fields: Omit<BundleFailure, "ok" | "reason"> = {}): BundleFailure {
  const result: BundleFailure = { ok: false, reason };
  // Absent rather than undefined, so results compare and print cleanly.
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) Object.assign(result, { [key]: value });
  }
  return result;
}

async function locate(
  note: unknown,
  { position, verifier, origin }: { position: number; verifier: Verifier; origin: string },
): Promise<LocatedCheckpoint | BundleFailure> {
  if (typeof note !== "string") {
    return failure(`checkpoint ${position} is not a string`);
  }
  try {
    const { checkpoint } = await openCheckpoint(note, [verifier], { origin });
    return { size: checkpoint.size, note, checkpoint };
  } catch (error) {
    // The claim could not be verified; find which size it speaks for so the
    // failure is reported in index order with the entries.
    let size: number;
    try {
      size = parseCheckpoint(splitNote(note).text).size;
    } catch {
      return failure(`checkpoint ${position}: ${(error as Error).message}`, { checkpoint: note });
    }
    return { size, note, problem: (error as Error).message };
  }
}

/**
 * Prepares a streaming verifier: parses the key, verifies every checkpoint
 * signature up front, then checks entries as they are pushed, in index
 * order. Never throws for defects in the data; they come back from
 * `finish()` as a `BundleFailure`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createBundleVerifier, GENESIS_PREV } from "./bundle_verify.ts";
 * import { canonicalize } from "../lib/mod.ts";
 * import { generateSigner } from "../merkle/mod.ts";
 * const signer = await generateSigner("warden.example/vault");
 * const verifier = await createBundleVerifier({
 *   origin: "warden.example/vault",
 *   vkey: signer.vkey,
 *   checkpoints: [], // signed checkpoint notes
 * });
 * verifier.push(canonicalize({ index: 0, prev: GENESIS_PREV, tool: "echo" }));
 * const result = verifier.finish();
 * assert.equal(result.ok, true);
 * assert.equal(result.size, 1);
 * ```
 */
// Kept whole: a streaming verifier — its closures share the running tree state (expected previous
// hash, pending leaves, checkpoint window, consistency proofs) entry by entry.
export async function createBundleVerifier(
  header: Omit<Bundle, "entries">,
  options: BundleOptions = {},
): Promise<BundleVerifier> {
  const prepared = await prepare(header, options);
  if (!("located" in prepared)) return failedVerifier(prepared);
  const { located } = prepared;

  // Each consecutive pair of good checkpoints gets a consistency proof; the
  // nodes those proofs name are captured as the compact range creates them.
  const good = located.filter((c) => c.problem === undefined);
  const wanted = new Map<number, Map<number, Uint8Array | null>>();
  for (let i = 1; i < good.length; i++) {
    if (good[i - 1].size === 0) continue;
    for (const { level, index } of consistencyNodes(good[i - 1].size, good[i].size).nodes) {
      if (!wanted.has(level)) wanted.set(level, new Map());
      wanted.get(level)!.set(index, null);
    }
  }

  const range = new CompactRange();
  let expectedPrev = GENESIS_PREV;
  let pending: Uint8Array | string | undefined;
  let hasPending = false;
  let nextCheckpoint = 0;
  let lastGood: LocatedCheckpoint | undefined;
  let consistencyProofs = 0;
  let verdict: BundleFailure | undefined;
  // Leaf hashes computed since the last verified checkpoint: if the next
  // signed root does not match, recorded leaf hashes authenticated by that
  // root can then name the exact entry that changed.
  let windowStart = 0;
  let windowBase = new CompactRange();
  let windowLeaves: Uint8Array[] | undefined = [];
  let forgery: Forgery | undefined;
  let leafIndex = 0;

  function checkCheckpoints(): BundleFailure | undefined {
    const size = range.size;
    let root: Uint8Array | undefined;
    for (
      ;
      nextCheckpoint < located.length && located[nextCheckpoint].size === size;
      nextCheckpoint++
    ) {
      const current = located[nextCheckpoint];
      const index = size > 0 ? size - 1 : undefined;
      if (current.problem !== undefined) {
        return failure(`checkpoint of size ${size}: ${current.problem}`, {
          index,
          checkpoint: current.note,
        });
      }
      root ??= range.root();
      const claimed = current.checkpoint!.root;
      if (!equalBytes(root, claimed)) {
        const result = failure(`checkpoint of size ${size}: root does not match the entries`, {
          index,
          expected: toHex(claimed),
          calculated: toHex(root),
          checkpoint: current.note,
        });
        if (windowLeaves !== undefined) {
          forgery = {
            start: windowStart,
            end: size,
            base: windowBase,
            computed: windowLeaves,
            recorded: [],
            root: claimed,
            size,
            result,
          };
        }
        return result;
      }
      if (lastGood !== undefined && lastGood.size > 0) {
        const problem = checkConsistency(lastGood, current);
        if (problem !== undefined) {
          return failure(problem, { index, checkpoint: current.note });
        }
      }
      lastGood = current;
      windowStart = size;
      windowBase = range.clone();
      windowLeaves = [];
    }
    return undefined;
  }

  function checkConsistency(from: LocatedCheckpoint, to: LocatedCheckpoint): string | undefined {
    try {
      const plan = consistencyNodes(from.size, to.size);
      const hashes = plan.nodes.map(({ level, index }: NodeId) => wanted.get(level)!.get(index)!);
      verifyConsistency({
        size1: from.size,
        size2: to.size,
        root1: from.checkpoint!.root,
        root2: to.checkpoint!.root,
        proof: materialize(plan, hashes),
      });
      consistencyProofs++;
      return undefined;
    } catch (error) {
      return `checkpoints of sizes ${from.size} and ${to.size} are not consistent: ${
        (error as Error).message
      }`;
    }
  }

  // Checks entry `i`; the following entry, when there is one, only decides
  // which side of a broken chain link to blame.
  function process(raw: unknown, following?: { entry: unknown }): BundleFailure | undefined {
    const i = range.size;
    const entry = inspect(raw);
    if (!entry.ok) return failure(`entry ${i}: ${entry.reason}`, { index: i });
    if (entry.index !== i) {
      return failure(`entry ${i}: index field is ${entry.index}`, { index: i });
    }
    const leafHash = hashLeaf(entry.bytes);
    const leafHex = toHex(leafHash);
    if (entry.prev !== expectedPrev) {
      // A broken link means entry i-1 was altered or entry i's prev was.
      // If entry i+1 still vouches for entry i, entry i is intact and the
      // fault is entry i-1.
      const next = following === undefined ? undefined : inspect(following.entry);
      // With no following entry, the edit is taken to be in entry i-1's
      // content (what a forger changes), not in the last entry's prev field.
      if (i > 0 && (following === undefined || (next?.ok && next.prev === leafHex))) {
        return failure(`entry ${i - 1} does not hash to the prev recorded by entry ${i}`, {
          index: i - 1,
          expected: entry.prev,
          calculated: expectedPrev,
        });
      }
      return failure(
        i === 0
          ? "entry 0: prev must be 64 zeros"
          : `entry ${i}: prev does not match the leaf hash of entry ${i - 1}`,
        { index: i, expected: entry.prev, calculated: expectedPrev },
      );
    }
    expectedPrev = leafHex;
    if (windowLeaves !== undefined) {
      if (windowLeaves.length < MAX_WINDOW) windowLeaves.push(leafHash);
      else windowLeaves = undefined;
    }
    for (const node of range.append(leafHash)) {
      const atLevel = wanted.get(node.level);
      if (atLevel?.has(node.index)) atLevel.set(node.index, node.hash);
    }
    return checkCheckpoints();
  }

  verdict = checkCheckpoints();
  const authenticated = options.key !== undefined;

  return {
    push(entry) {
      if (verdict !== undefined) return false;
      if (hasPending) verdict = process(pending, { entry });
      pending = entry;
      hasPending = true;
      return verdict === undefined;
    },
    get wantsLeaves() {
      return forgery !== undefined || verdict === undefined;
    },
    pushLeaf(hex) {
      if (leafIndex === 0 && verdict === undefined && hasPending) {
        // The entries have ended: the last one can be judged now.
        verdict = process(pending);
        hasPending = false;
      }
      const i = leafIndex++;
      if (forgery === undefined || i < forgery.start || i >= forgery.end) return;
      if (typeof hex !== "string" || !HEX_HASH.test(hex)) {
        forgery = undefined; // unusable: the verdict stays at the checkpoint
        return;
      }
      forgery.recorded.push(fromHex(hex));
    },
    finish() {
      if (verdict === undefined && hasPending) verdict = process(pending);
      hasPending = false;
      if (forgery !== undefined && verdict === forgery.result) {
        verdict = localize(forgery) ?? verdict;
      }
      if (verdict === undefined && nextCheckpoint < located.length) {
        const beyond = located[nextCheckpoint];
        verdict = failure(
          `bundle ends after ${range.size} entries but a checkpoint covers ${beyond.size}`,
          { index: range.size, checkpoint: beyond.note },
        );
      }
      if (verdict !== undefined) return verdict;
      const signedSize = located.length > 0 ? located[located.length - 1].size : 0;
      const warnings: string[] = [];
      if (authenticated && signedSize < range.size) {
        const what = `entries ${signedSize}..${range.size - 1} are not covered by any ` +
          `signed checkpoint (the latest signed checkpoint covers ${signedSize} entries), ` +
          `so nothing authenticates them`;
        if (signedSize === 0) {
          // --allow-unsigned-tail accepts entries after a signed checkpoint, never a log none of
          // which is signed: a forger who drops every checkpoint must not pass with a warning.
          verdict = failure(
            `entry 0: ${what}; no checkpoint is signed at all, and --allow-unsigned-tail accepts only entries after a signed checkpoint`,
            { index: 0 },
          );
          return verdict;
        }
        if (!options.allowUnsignedTail) {
          verdict = failure(
            `entry ${signedSize}: ${what}; pass --allow-unsigned-tail to accept them as a warning`,
            { index: signedSize },
          );
          return verdict;
        }
        warnings.push(what);
      }
      return {
        ok: true,
        entries: range.size,
        checkpoints: located.length,
        size: range.size,
        signedSize,
        consistencyProofs,
        root: toHex(range.root()),
        authenticated,
        ...(warnings.length > 0 ? { warnings } : {}),
      };
    },
  };
}

/** At most this many leaf hashes are kept per checkpoint window (32 MiB). */
const MAX_WINDOW = 1 << 20;

/** A signed root that did not match the entries, with what is needed to find the entry. */
interface Forgery {
  readonly start: number;
  readonly end: number;
  /** The verified range of entries [0, start). */
  readonly base: CompactRange;
  /** Leaf hashes of entries [start, end) as the bundle's entries give them. */
  readonly computed: readonly Uint8Array[];
  /** Recorded leaf hashes of entries [start, end), as fed. */
  readonly recorded: Uint8Array[];
  readonly root: Uint8Array;
  readonly size: number;
  readonly result: BundleFailure;
}

/**
 * Names the changed entry of a forgery: when the recorded leaf hashes of the
 * window hash (with the verified prefix) to the signed root, they are what
 * the log signed, and the first entry whose own leaf hash differs is the one
 * that was changed, whatever was re-chained after it.
 */
function localize(f: Forgery): BundleFailure | undefined {
  if (f.recorded.length !== f.end - f.start || f.computed.length !== f.end - f.start) {
    return undefined;
  }
  const signed = f.base.clone();
  for (const leaf of f.recorded) signed.append(leaf);
  if (!equalBytes(signed.root(), f.root)) return undefined;
  for (let k = 0; k < f.recorded.length; k++) {
    if (!equalBytes(f.recorded[k], f.computed[k])) {
      const index = f.start + k;
      return failure(
        `entry ${index} was changed after it was signed: its leaf hash is not the one ` +
          `the checkpoint of size ${f.size} commits to`,
        {
          index,
          expected: toHex(f.recorded[k]),
          calculated: toHex(f.computed[k]),
          checkpoint: f.result.checkpoint,
        },
      );
    }
  }
  return undefined;
}

function failedVerifier(verdict: BundleFailure): BundleVerifier {
  return {
    push() {
      return false;
    },
    pushLeaf() {},
    wantsLeaves: false,
    finish() {
      return verdict;
    },
  };
}

async function prepare(
  header: Omit<Bundle, "entries">,
  options: BundleOptions,
): Promise<{ located: LocatedCheckpoint[] } | BundleFailure> {
  if (typeof header !== "object" || header === null) return failure("bundle is not an object");
  const { origin, vkey, checkpoints } = header;
  if (typeof origin !== "string" || origin === "") return failure("bundle origin is missing");
  if (!Array.isArray(checkpoints)) return failure("bundle checkpoints is not an array");

  let verifier: Verifier;
  try {
    verifier = await verifierFromVkey(options.key ?? vkey);
  } catch (error) {
    return failure((error as Error).message);
  }
  if (options.key !== undefined) {
    let claimed: Verifier;
    try {
      claimed = await verifierFromVkey(vkey);
    } catch (error) {
      return failure(`bundle vkey: ${(error as Error).message}`);
    }
    if (claimed.vkey !== verifier.vkey) {
      return failure(
        `bundle is signed by ${claimed.vkey}, not by the trusted key ${verifier.vkey}`,
      );
    }
  }

  const results = await Promise.all(
    checkpoints.map((note, position) => locate(note, { position, verifier, origin })),
  );
  const located: LocatedCheckpoint[] = [];
  for (const result of results) {
    if ("ok" in result) return result;
    located.push(result);
  }
  // Stable sort keeps bundle order among equal sizes, so reports are repeatable.
  located.sort((a, b) => a.size - b.size);
  return { located };
}

/**
 * Verifies a whole bundle held in memory; see `createBundleVerifier` for the
 * checks. Returns `{ ok: true, … }` or the first defect as
 * `{ ok: false, index?, reason, expected?, calculated?, checkpoint? }`, where
 * `index` is the first entry that cannot be trusted: the entry at fault, the
 * last entry a bad checkpoint covers (size − 1), or the first missing entry
 * when the bundle stops short of a checkpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GENESIS_PREV, verifyBundle } from "./bundle_verify.ts";
 * import { canonicalize, toBase64 } from "../lib/mod.ts";
 * import { generateSigner, hashLeaf, signCheckpoint } from "../merkle/mod.ts";
 * const signer = await generateSigner("warden.example/vault");
 * const entry = canonicalize({ index: 0, prev: GENESIS_PREV, tool: "echo" });
 * const checkpoint = await signCheckpoint(
 *   { origin: "warden.example/vault", size: 1, root: hashLeaf(entry) },
 *   signer,
 * );
 * const result = await verifyBundle(
 *   { origin: "warden.example/vault", vkey: signer.vkey, entries: [toBase64(entry)], checkpoints: [checkpoint] },
 *   { key: signer.vkey },
 * );
 * assert.equal(result.ok, true); // on failure: { ok: false, index, reason }
 * ```
 */
export async function verifyBundle(
  bundle: Bundle,
  options: BundleOptions = {},
): Promise<BundleResult> {
  if (typeof bundle !== "object" || bundle === null) return failure("bundle is not an object");
  if (!Array.isArray(bundle.entries)) return failure("bundle entries is not an array");
  if (bundle.leaves !== undefined && !Array.isArray(bundle.leaves)) {
    return failure("bundle leaves is not an array");
  }
  const verifier = await createBundleVerifier(bundle, options);
  for (const entry of bundle.entries) {
    if (!verifier.push(entry)) break;
  }
  if (verifier.wantsLeaves) { for (const leaf of bundle.leaves ?? []) verifier.pushLeaf(leaf); }
  return verifier.finish();
}
