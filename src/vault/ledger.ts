/**
 * The vault's storage: an append-only RFC 6962 log in Deno KV.
 *
 * Appends are group-committed (group_commit.ts: many entries per `kv.atomic()`, each checking
 * the head record, acknowledged only once committed); entry and head records are laid out by
 * record_codec.ts, large bodies go to blob_store.ts and proofs read their nodes through
 * node_cache.ts. This file puts them together and signs checkpoints. Versionstamps are never
 * used as indices, vault keys never expire, and the head is always read strongly.
 */
import {
  type CommitCarrier,
  vaultCheckpointKey,
  vaultCheckpointPrefix,
  vaultEntryKey,
  withKvRetry,
} from "../store/mod.ts";
import { canonicalString, lenientDigestJson, toHex } from "../lib/mod.ts";
import {
  buildConsistencyProof,
  buildInclusionProof,
  buildRoot,
  type CompactRangeJson,
  hashLeaf,
  type NodeId,
  type NodeSource,
  openCheckpoint,
  signCheckpoint as signCheckpointNote,
  type Signer,
  type Verifier,
  verifierFromVkey,
} from "../merkle/mod.ts";
import { GENESIS_PREV } from "./bundle_verify.ts";
import type { CheckpointMirror } from "./mirror.ts";
import { writeBundle } from "./bundle_io.ts";
import { type BlobStore, createBlobStore } from "./blob_store.ts";
import { createNodeReader } from "./node_cache.ts";
import {
  type CommitStats,
  type CommittedHead,
  createGroupCommit,
  EntryExistsError,
  readCommittedHead,
  type SealReceipt,
} from "./group_commit.ts";
import {
  decodeEntryRecord,
  ENTRY_ENCODING,
  headView,
  type PreparedEntry,
  prepareEntry,
  renderEntry,
  VaultCorruptionError,
} from "./record_codec.ts";

export { EntryExistsError, type SealReceipt, VaultCorruptionError };

/** The head record: everything needed to append without reading the tree. */
export interface VaultHead {
  readonly size: number;
  /** Base64 RFC 6962 root of entries [0, size). */
  readonly root: string;
  readonly range: CompactRangeJson;
  /** Hex leaf hash of entry size−1 (the next entry's `prev`), or 64 zeros. */
  readonly last: string;
}

/** One stored entry. */
export interface StoredEntry {
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly leafHash: string;
  /** The leaf hash stored beside the entry when it was appended (from `entries`). */
  readonly recordedLeaf?: Uint8Array;
}

/** Entries are kept under this size; larger bodies go to content-addressed chunks. */
export const MAX_ENTRY_BYTES = 60 * 1024;
const INLINE_BODY_BYTES = 16 * 1024;

/**
 * The KV-backed log. Its group commits also carry riders' unconditional
 * mutations (`carry`): the limiter's releases ride along the seal of the call
 * they end.
 */
export interface Ledger extends CommitCarrier {
  readonly origin: string;
  /**
   * Appends one entry: `fields` plus `index`, `prev` and (when absent) `time`.
   * A `body` is stored inline as canonical JSON text when small, otherwise as
   * content-addressed chunks with only `body_sha256`/`body_bytes` in the entry.
   * Each `digests` member becomes a field holding the hex SHA-256 of that
   * value's canonical JSON (`lenientDigestJson`); the value is not stored.
   * Resolves only after the entry is committed.
   */
  append(fields: Record<string, unknown>, options?: AppendOptions): Promise<SealReceipt>;
  /** The committed head (strong read). */
  head(): Promise<VaultHead>;
  entry(index: number): Promise<StoredEntry | null>;
  /**
   * Reads entries [start, end) in order. A missing entry throws
   * VaultCorruptionError, unless `skipGaps` (export) asks to yield what exists
   * so an offline verifier can name the gap.
   */
  entries(start: number, end: number, options?: { skipGaps?: boolean }): AsyncIterable<StoredEntry>;
  /** Stored subtree hashes by id (throws VaultCorruptionError when one is missing). */
  nodes(ids: NodeId[]): Promise<Uint8Array[]>;
  inclusionProof(index: number, size: number): Promise<Uint8Array[]>;
  consistencyProof(size1: number, size2: number): Promise<Uint8Array[]>;
  /** Signs and stores a checkpoint of the committed head if it grew; returns the latest note. */
  signCheckpoint(): Promise<string | null>;
  latestCheckpoint(): Promise<string | null>;
  checkpoints(): AsyncIterable<{ size: number; note: string }>;
  blob(sha256hex: string): Promise<Uint8Array | null>;
  /** Recomputes the head's root from its compact range and checks the last leaf. */
  verifyHead(): Promise<{ ok: boolean; size: number; reason?: string }>;
  /**
   * Compares the log with the checkpoint mirrored outside the KV: not ok when
   * the log is behind it or forks from it (then no checkpoint is signed).
   * Always ok without a mirror.
   */
  checkMirror(): Promise<{ ok: boolean; where?: string; size?: number; reason?: string }>;
  /** Resolves once every queued append has committed or failed. */
  flush(): Promise<void>;
  /** This process's commits, conflicts and entries committed so far. */
  commitStats(): CommitStats;
}

/** What `Ledger.append` takes besides the entry's fields. */
export interface AppendOptions {
  readonly body?: unknown;
  readonly digests?: Readonly<Record<string, unknown>>;
  /**
   * A key this entry is the only one for, ever: the entry's commit checks it is absent and sets
   * it to the entry's index, so of two appends naming one key (a stale writer and the one that
   * took over, in any process) one is appended and the other throws {@link EntryExistsError}.
   */
  readonly once?: Deno.KvKey;
}

/**
 * Why `fields` (with `options`) could not be appended, or undefined when they
 * can: the same encoding and size checks `append` makes, without appending,
 * so a caller can decide before acting whether its record will seal.
 */
export function entryProblem(
  fields: Record<string, unknown>,
  options: AppendOptions = {},
): string | undefined {
  if (options.body === undefined && surelyFits(fields, options)) return undefined;
  try {
    const entry: Record<string, unknown> = { time: "0000-00-00T00:00:00.000Z", ...fields };
    for (const name of Object.keys(options.digests ?? {})) entry[name] = "0".repeat(64);
    if (options.body !== undefined) {
      const text = canonicalString(options.body, {
        ...ENTRY_ENCODING,
        name: "body",
        numbers: "jcs",
      });
      if (text.length <= INLINE_BODY_BYTES) entry.body = text;
      else Object.assign(entry, { body_sha256: "0".repeat(64), body_bytes: text.length * 3 });
    }
    const text = renderEntry(prepareEntry(entry), Number.MAX_SAFE_INTEGER, GENESIS_PREV);
    // As in append: at most 3 UTF-8 bytes per UTF-16 unit, so most entries need no encoding.
    const size = text.length * 3 <= MAX_ENTRY_BYTES
      ? text.length
      : textEncoder.encode(text).byteLength;
    if (size > MAX_ENTRY_BYTES) return `the entry would be ${size} bytes, over ${MAX_ENTRY_BYTES}`;
    return undefined;
  } catch (e) {
    return e instanceof RangeError && /call stack/i.test(e.message)
      ? "the value is nested too deeply to encode"
      : (e as Error).message;
  }
}

const textEncoder = new TextEncoder();

/** Room for what an entry adds to its fields: time, index, prev and the braces. */
const ENTRY_OVERHEAD_BYTES = 256;

/**
 * Whether `fields` (without a body) certainly encode within MAX_ENTRY_BYTES, judged without
 * encoding them: only JSON-like values the entry encoder always accepts (strings — lone
 * surrogates are escaped —, safe integers, booleans, null, arrays without holes, plain objects
 * without symbol keys, at most 8 deep), each string counted at 6 bytes a UTF-16 unit (a `\u00XX`
 * escape; an unescaped unit is at most 3 UTF-8 bytes). False means "encode and see", never
 * "does not fit": the pre-check of every call then costs a walk, not an encoding (it was about
 * 5 % of a sealed call's CPU in a --cpu-prof).
 */
function surelyFits(fields: Record<string, unknown>, options: AppendOptions): boolean {
  let bytes = ENTRY_OVERHEAD_BYTES;
  for (const name in options.digests ?? {}) bytes += 6 * name.length + 70;
  const walk = (value: unknown, depth: number): boolean => {
    switch (typeof value) {
      case "string":
        bytes += 6 * value.length + 2;
        return true;
      case "number":
        bytes += 17;
        return Number.isSafeInteger(value);
      case "boolean":
        bytes += 5;
        return true;
      case "object":
        break;
      default:
        return false;
    }
    if (value === null) {
      bytes += 4;
      return true;
    }
    if (depth >= 8) return false;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value) || !walk(value[i], depth + 1)) return false;
        bytes += 1;
      }
      return true;
    }
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return false;
    if (Object.getOwnPropertySymbols(value).length > 0) return false;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) return false;
      bytes += 6 * key.length + 4;
      if (!walk((value as Record<string, unknown>)[key], depth + 1)) return false;
    }
    return true;
  };
  return walk(fields, 0) && bytes <= MAX_ENTRY_BYTES;
}

/**
 * `fields` as the entry `append` commits: its time (when absent) and digests added, its body
 * inline or stored as a blob, encoded once so a bad entry fails alone and never a whole batch.
 */
async function prepareAppend(
  fields: Record<string, unknown>,
  options: AppendOptions,
  blobs: BlobStore,
): Promise<PreparedEntry> {
  if ("index" in fields || "prev" in fields) {
    throw new TypeError("Cannot seal entry: index and prev are assigned by the vault");
  }
  const entry: Record<string, unknown> = { time: new Date().toISOString(), ...fields };
  if (options.digests) {
    for (const [name, value] of Object.entries(options.digests)) {
      entry[name] = lenientDigestJson(value);
    }
  }
  if (options.body !== undefined) {
    const text = canonicalString(options.body, {
      ...ENTRY_ENCODING,
      name: "body",
      numbers: "jcs",
    });
    const bytes = new TextEncoder().encode(text);
    if (bytes.byteLength <= INLINE_BODY_BYTES) {
      entry.body = text;
    } else {
      entry.body_sha256 = await blobs.store(bytes);
      entry.body_bytes = bytes.byteLength;
    }
  }
  // Encoding happens once, here, so a bad entry fails alone and never a whole batch.
  const prepared = prepareEntry(entry);
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most entries need no encoding to know.
  const text = renderEntry(prepared, Number.MAX_SAFE_INTEGER, GENESIS_PREV);
  const size = text.length * 3 <= MAX_ENTRY_BYTES
    ? text.length
    : textEncoder.encode(text).byteLength;
  if (size > MAX_ENTRY_BYTES) {
    throw new RangeError(
      `Cannot seal entry: ${size} bytes, over the ${MAX_ENTRY_BYTES}-byte limit; pass large content as a body`,
    );
  }
  return prepared;
}

/** Entries [start, end) of the log in `kv`, in order (see `Ledger.entries`). */
async function* readEntries(
  kv: Deno.Kv,
  start: number,
  end: number,
  options: { skipGaps?: boolean },
): AsyncIterable<StoredEntry> {
  const iter = kv.list({ start: vaultEntryKey(start), end: vaultEntryKey(end) }, {
    batchSize: 500,
  });
  let expected = start;
  for await (const e of iter) {
    const index = e.key[2] as number;
    if (index !== expected && !options.skipGaps) {
      throw new VaultCorruptionError(`Cannot read entries: entry ${expected} is missing`);
    }
    expected = index + 1;
    // The leaf is recomputed from the bytes, not trusted from storage.
    const record = decodeEntryRecord(e.value);
    const data = record?.data ?? new Uint8Array();
    const leafHash = hashLeaf(data);
    yield {
      index,
      bytes: data,
      leafHash: toHex(leafHash),
      recordedLeaf: record?.leaf ?? leafHash,
    };
  }
  if (expected < end && !options.skipGaps) {
    throw new VaultCorruptionError(`Cannot read entries: entry ${expected} is missing`);
  }
}

/** The committed head checked against the last entry it names (see `Ledger.verifyHead`). */
async function verifyHeadIn(
  kv: Deno.Kv,
  readHead: () => Promise<CommittedHead>,
): Promise<{ ok: boolean; size: number; reason?: string }> {
  let head: VaultHead;
  try {
    head = headView((await readHead()).state);
  } catch (e) {
    return { ok: false, size: -1, reason: (e as Error).message };
  }
  try {
    if (head.size > 0) {
      const last = decodeEntryRecord((await kv.get(vaultEntryKey(head.size - 1))).value);
      if (!last || toHex(hashLeaf(last.data)) !== head.last) {
        return { ok: false, size: head.size, reason: "last leaf does not match the head" };
      }
    }
    return { ok: true, size: head.size };
  } catch (e) {
    return { ok: false, size: head.size, reason: (e as Error).message };
  }
}

/** How the log compares with the checkpoint mirrored outside the KV (see `Ledger.checkMirror`). */
type MirrorComparison = { ok: boolean; where?: string; size?: number; reason?: string };

/** Reads and compares the mirrored checkpoint of a ledger with `origin` signed by `signer`. */
function createMirrorCheck(
  mirror: CheckpointMirror | undefined,
  options: { origin: string; signer: Signer; source: NodeSource },
) {
  const { origin, signer, source } = options;
  let mirrorVerifier: Promise<Verifier> | undefined;
  /** The mirrored checkpoint, its signature checked against this log's own key. */
  async function readMirror(): Promise<{ size: number; root: Uint8Array; origin: string } | null> {
    const note = await mirror!.read();
    if (note === null) return null;
    mirrorVerifier ??= verifierFromVkey(signer.vkey);
    try {
      return (await openCheckpoint(note, [await mirrorVerifier])).checkpoint;
    } catch (e) {
      throw new Error(
        `it is not a checkpoint signed by this server's key (${
          (e as Error).message
        }); if the signing key was replaced on purpose, move the old file away`,
      );
    }
  }

  /** The log of `size` with root `root` against the mirrored checkpoint. */
  async function compareWithMirror(size: number, root: Uint8Array): Promise<MirrorComparison> {
    if (mirror === undefined) return { ok: true };
    const where = mirror.where;
    let held;
    try {
      held = await readMirror();
    } catch (e) {
      return {
        ok: false,
        where,
        reason: `cannot use the checkpoint mirror ${where}: ${(e as Error).message}`,
      };
    }
    if (held === null) return { ok: true, where };
    if (held.origin !== origin) {
      return {
        ok: false,
        where,
        size: held.size,
        reason: `the mirrored checkpoint in ${where} is for log "${held.origin}", not "${origin}"`,
      };
    }
    if (held.size > size) {
      return {
        ok: false,
        where,
        size: held.size,
        reason:
          `the log has ${size} entries but ${where} holds a checkpoint of ${held.size}: the KV was rolled back or replaced`,
      };
    }
    const rootThen = held.size === size ? root : await buildRoot(held.size, source);
    if (toHex(rootThen) !== toHex(held.root)) {
      return {
        ok: false,
        where,
        size: held.size,
        reason:
          `the log's first ${held.size} entries differ from the checkpoint in ${where}: the KV forks from the published log`,
      };
    }
    return { ok: true, where, size: held.size };
  }

  return { readMirror, compareWithMirror };
}

/** A proof built while the size it needs is checked; a size beyond the head is reported as such. */
async function checkedProof(
  checking: Promise<void>,
  building: Promise<Uint8Array[]>,
): Promise<Uint8Array[]> {
  // The size check and the node reads run together; a size beyond the head
  // is reported as such even though its nodes would also be missing.
  const [checked, proof] = await Promise.allSettled([checking, building]);
  if (checked.status === "rejected") throw checked.reason;
  if (proof.status === "rejected") throw proof.reason;
  return proof.value;
}

/**
 * Opens the ledger over a KV handle. The signer signs checkpoints; `origin`
 * is the first line of every checkpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLedger } from "./ledger.ts";
 * import { generateSigner } from "../merkle/mod.ts";
 * const kv = await Deno.openKv(":memory:");
 * const ledger = createLedger(kv, { origin: "warden/test", signer: await generateSigner("warden/test") });
 * const { index } = await ledger.append({ type: "note", text: "hello" });
 * assert.equal(index, 0);
 * assert.equal((await ledger.head()).size, 1);
 * await ledger.flush();
 * kv.close();
 * ```
 */
export function createLedger(
  kv: Deno.Kv,
  options: { origin: string; signer: Signer; maxBatch?: number; mirror?: CheckpointMirror },
): Ledger {
  const { origin, signer, mirror } = options;
  let lastSignedSize = -1;

  /** The largest log size known to be committed (from a read or our own commit). */
  let knownSize = 0;

  async function readHead(): Promise<CommittedHead> {
    const read = await readCommittedHead(kv);
    knownSize = Math.max(knownSize, read.state.range.size);
    return read;
  }

  const commits = createGroupCommit(kv, {
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    readHead,
    committed: (size) => knownSize = Math.max(knownSize, size),
  });
  const nodes = createNodeReader(kv);
  const getNodes = nodes.getNodes;
  const source = { getNodes };
  const blobs = createBlobStore(kv);
  const { readMirror, compareWithMirror } = createMirrorCheck(mirror, { origin, signer, source });

  async function requireSize(size: number, what: string): Promise<void> {
    // Entries are never removed: a size already seen committed needs no read.
    if (size <= knownSize) return;
    const { state } = await readHead();
    if (size > state.range.size) {
      throw new RangeError(
        `Cannot build ${what}: tree size ${size} exceeds log size ${state.range.size}`,
      );
    }
  }

  return {
    origin,
    async append(fields, appendOptions = {}) {
      const prepared = await prepareAppend(fields, appendOptions, blobs);
      return await commits.append(prepared, appendOptions.once);
    },
    async head() {
      return headView((await readHead()).state);
    },
    async entry(index) {
      if (!Number.isSafeInteger(index) || index < 0) return null;
      const record = decodeEntryRecord((await kv.get(vaultEntryKey(index))).value);
      if (!record) return null;
      return { index, bytes: record.data, leafHash: toHex(record.leaf) };
    },
    entries: (start, end, entryOptions = {}) => readEntries(kv, start, end, entryOptions),
    nodes: getNodes,
    async inclusionProof(index, size) {
      return await checkedProof(
        requireSize(size, "inclusion proof"),
        buildInclusionProof(index, size, source),
      );
    },
    async consistencyProof(size1, size2) {
      return await checkedProof(
        requireSize(size2, "consistency proof"),
        buildConsistencyProof(size1, size2, source),
      );
    },
    async signCheckpoint() {
      const { range } = (await readHead()).state;
      const size = range.size;
      if (size === 0) return null;
      if (size === lastSignedSize) return await this.latestCheckpoint();
      const root = range.root();
      const mirrored = await compareWithMirror(size, root);
      if (!mirrored.ok) {
        // Signing now would fork from (or roll back) a checkpoint already published.
        throw new VaultCorruptionError(`refusing to sign a checkpoint: ${mirrored.reason}`);
      }
      const note = await signCheckpointNote({ origin, size, root }, signer);
      const key = vaultCheckpointKey(size);
      // Another process may have signed this size already: keep the first.
      // Processes sharing the KV file meet SQLite's write lock here too: retried, not a fault.
      await withKvRetry(() =>
        kv.atomic().check({ key, versionstamp: null }).set(key, note).commit()
      );
      if (mirror !== undefined && (mirrored.size ?? -1) < size) {
        // Another process sharing the KV may have mirrored a larger one meanwhile: keep that.
        const again = await readMirror();
        if (again === null || again.size < size) await mirror.write(note);
      }
      lastSignedSize = size;
      return await this.latestCheckpoint();
    },
    async checkMirror() {
      const { range } = (await readHead()).state;
      return await compareWithMirror(range.size, range.root());
    },
    async latestCheckpoint() {
      for await (
        const e of kv.list<string>({ prefix: vaultCheckpointPrefix() }, { reverse: true, limit: 1 })
      ) {
        return e.value;
      }
      return null;
    },
    async *checkpoints() {
      for await (const e of kv.list<string>({ prefix: vaultCheckpointPrefix() })) {
        yield { size: e.key[2] as number, note: e.value };
      }
    },
    blob: (hash) => blobs.read(hash),
    verifyHead: () => verifyHeadIn(kv, readHead),
    flush: () => commits.flush(),
    commitStats: () => commits.stats(),
    carry: (rider) => commits.carry(rider),
    pending: () => commits.pending(),
  };
}

/**
 * Streams the whole log as an export bundle (see bundle_io.ts): the entries
 * committed when the export starts, every checkpoint up to that size, the
 * verifier key and the bodies entries refer to.
 */
export async function exportBundle(
  ledger: Ledger,
  options: { vkey: string; write: (chunk: string) => Promise<void> },
): Promise<{ entries: number; checkpoints: number; blobs: number; size: number }> {
  // Checkpoints are read before the head and all of them are exported: an
  // honest log only signs committed heads, so none can exceed the head read
  // after them. One that does is evidence of truncation, for the verifier.
  const notes: string[] = [];
  for await (const cp of ledger.checkpoints()) notes.push(cp.note);
  const head = await ledger.head();
  async function* entries() {
    // Gaps are exported as gaps: the offline verifier names the first missing index.
    // The recorded leaf hashes go with them: the signed roots authenticate
    // them, so a verifier can name an entry changed after it was appended.
    for await (const e of ledger.entries(0, head.size, { skipGaps: true })) {
      yield { bytes: e.bytes, leaf: e.recordedLeaf ?? hashLeaf(e.bytes) };
    }
  }
  const written = await writeBundle({
    header: { origin: ledger.origin, vkey: options.vkey, size: head.size },
    checkpoints: notes,
    entries: entries(),
    blob: (hash) => ledger.blob(hash),
  }, options.write);
  return { ...written, size: head.size };
}
