/**
 * The vault's storage: an append-only RFC 6962 log in Deno KV.
 *
 * Every append is one `kv.atomic()` that checks the head record (the only
 * contended key), writes the entries and the new head. Each entry's record
 * also carries the hashes of the subtrees that entry completes (the nodes
 * whose rightmost leaf it is), so every node a proof names is one read away
 * and an append costs one mutation per entry, not two. Concurrent appends are group-committed: whatever queued while
 * a commit was in flight goes into the next atomic, up to KV's limits of 1,000
 * mutations and 800 KiB. A failed check (another process appended) or SQLite's
 * "database is locked" re-reads the head and rebuilds the batch. An append is
 * acknowledged only after its commit succeeded. Versionstamps are never used
 * as indices, vault keys never expire, and the head is always read strongly.
 */
import {
  type CommitCarrier,
  type CommitRider,
  isTransientKvError,
  KV_MAX_ATOMIC_BYTES,
  KV_MAX_MUTATIONS,
  type Ride,
  vaultCheckpointKey,
  vaultCheckpointPrefix,
  vaultEntryKey,
  vaultHeadKey,
  withKvRetry,
} from "../store/mod.ts";
import { canonicalString, lenientDigestJson, toHex } from "../lib/mod.ts";
import {
  buildConsistencyProof,
  buildInclusionProof,
  buildRoot,
  CompactRange,
  type CompactRangeJson,
  hashLeaf,
  type NodeId,
  openCheckpoint,
  signCheckpoint as signCheckpointNote,
  type Signer,
  type Verifier,
  verifierFromVkey,
} from "../merkle/mod.ts";
import { GENESIS_PREV } from "./bundle_verify.ts";
import type { CheckpointMirror } from "./mirror.ts";
import { writeBundle } from "./bundle_io.ts";
import { createBlobStore } from "./blob_store.ts";
import { createNodeReader } from "./node_cache.ts";
import {
  decodeEntryRecord,
  decodeHead,
  EMPTY_STATE,
  encodeEntryRecord,
  encodeHead,
  ENTRY_ENCODING,
  type HeadState,
  headView,
  type PreparedEntry,
  prepareEntry,
  renderEntry,
  VaultCorruptionError,
} from "./record_codec.ts";

export { VaultCorruptionError };

/** The head record: everything needed to append without reading the tree. */
export interface VaultHead {
  readonly size: number;
  /** Base64 RFC 6962 root of entries [0, size). */
  readonly root: string;
  readonly range: CompactRangeJson;
  /** Hex leaf hash of entry size−1 (the next entry's `prev`), or 64 zeros. */
  readonly last: string;
}

/** What an append returns once the entry is committed. */
export interface SealReceipt {
  readonly index: number;
  /** Hex leaf hash. */
  readonly leafHash: string;
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
/** A KV key as comparable text. */
function keyText(key: Deno.KvKey): string {
  return JSON.stringify(key, (_, v) => typeof v === "bigint" ? `${v}n` : v);
}

/** At most this many entries with a `once` key join one commit (each adds a check). */
const MAX_ONCE_PER_BATCH = 8;

/** At most this many riders' mutations join one commit. */
const RIDER_MUTATIONS = 64;
/** Room left for them in an atomic's bytes (64 counters with keys of a few hundred bytes). */
const RIDER_BYTES = 32 * 1024;

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

/** An append naming a `once` key another entry already holds; `index` is that entry's. */
export class EntryExistsError extends Error {
  override name = "EntryExistsError";
  constructor(readonly key: Deno.KvKey, readonly index: number) {
    super(`Cannot seal entry: entry ${index} already holds ${JSON.stringify(key)}`);
  }
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

interface Pending {
  readonly entry: PreparedEntry;
  readonly once?: Deno.KvKey;
  resolve(receipt: SealReceipt): void;
  reject(error: unknown): void;
}

interface CachedHead {
  state: HeadState;
  versionstamp: string | null;
}

function trailingOnes(n: number): number {
  let count = 0;
  while (n % 2 === 1) {
    count++;
    n = (n - 1) / 2;
  }
  return count;
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
// Kept whole for now: the record codec, blob store and node reader are their own files; the group
// commit (batches, riders, retry) still shares the tip and the head cache with append and the
// checkpoint signer here, and its own file is open (issue 8).
export function createLedger(
  kv: Deno.Kv,
  options: { origin: string; signer: Signer; maxBatch?: number; mirror?: CheckpointMirror },
): Ledger {
  const { origin, signer, mirror } = options;
  const maxBatch = options.maxBatch ?? 500;
  let lastSignedSize = -1;

  /** The largest log size known to be committed (from a read or our own commit). */
  let knownSize = 0;

  async function readHead(): Promise<CachedHead> {
    const e = await kv.get<Uint8Array>(vaultHeadKey(), { consistency: "strong" });
    const state = e.value === null ? EMPTY_STATE : decodeHead(e.value);
    knownSize = Math.max(knownSize, state.range.size);
    return { state, versionstamp: e.versionstamp };
  }

  /** Entries built on a predicted head, committed together as one atomic. */
  interface Batch {
    readonly pendings: Pending[];
    readonly receipts: SealReceipt[];
    readonly mutations: [Deno.KvKey, Uint8Array][];
    /** `once` keys checked absent and set to their entry's index in the batch's commit. */
    readonly once: [Deno.KvKey, number][];
    bytes: number;
    /** The new head record; set when the batch is closed (no more entries join). */
    head: Uint8Array | null;
  }

  // The commit engine. Entries are built (encoded, hashed, placed in the
  // tree) the moment they arrive, on `tip`: the head as it will be once every
  // batch before them has committed. So hashing overlaps the commit in
  // flight, and every entry that arrives during a commit joins the next one.
  // At most one atomic is in flight: the next must check the versionstamp the
  // previous one produces. When a commit fails (another writer moved the
  // head, or SQLite was busy), every uncommitted entry is rebuilt, in order,
  // on the head actually in KV.
  let tip: { range: CompactRange; last: string } | null = null;
  /** Versionstamp of the committed head that `batches[0]` builds on. */
  let committedVersionstamp: string | null = null;
  const batches: Batch[] = [];
  let inFlight = false;
  /** Entries waiting for the head to be (re)read. */
  let backlog: Pending[] = [];
  let reading = false;
  /** A re-read scheduled after a failed commit (backing off). */
  let retry: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let idle: (() => void)[] = [];
  const riders: CommitRider[] = [];

  function newBatch(): Batch {
    const batch: Batch = {
      pendings: [],
      receipts: [],
      mutations: [],
      once: [],
      bytes: 4096,
      head: null,
    };
    batches.push(batch);
    return batch;
  }

  function closeBatch(batch: Batch): void {
    if (!batch.head) batch.head = encodeHead({ range: tip!.range, last: tip!.last });
  }

  /** Builds one entry onto the tip, into the last open batch or a new one. */
  function place(p: Pending): void {
    const t = tip!;
    const index = t.range.size;
    const data = textEncoder.encode(renderEntry(p.entry, index, t.last));
    const size = data.byteLength + 160 + trailingOnes(index) * 32;
    let batch = batches.length > 0 ? batches[batches.length - 1] : undefined;
    if (
      !batch || batch.head !== null || batch.pendings.length >= maxBatch ||
      batch.mutations.length + batch.once.length + 3 > KV_MAX_MUTATIONS ||
      batch.bytes + size > KV_MAX_ATOMIC_BYTES ||
      // Two entries naming one key never share a commit (both checks would pass): the second
      // goes in the next, whose check fails once the first is committed.
      (p.once !== undefined &&
        (batch.once.length >= MAX_ONCE_PER_BATCH ||
          batch.once.some(([k]) => keyText(k) === keyText(p.once!))))
    ) {
      if (batch) closeBatch(batch);
      batch = newBatch();
    }
    const leaf = hashLeaf(data);
    const created = t.range.append(leaf);
    const nodes: Uint8Array[] = [];
    for (let i = 1; i < created.length; i++) nodes.push(created[i].hash);
    batch.mutations.push([vaultEntryKey(index), encodeEntryRecord(leaf, nodes, data)]);
    batch.bytes += size;
    t.last = toHex(leaf);
    batch.receipts.push({ index, leafHash: t.last });
    batch.pendings.push(p);
    if (p.once !== undefined) batch.once.push([p.once, index]);
  }

  function enqueue(p: Pending): void {
    if (tip === null) {
      backlog.push(p);
      refresh();
      return;
    }
    place(p);
    pump();
  }

  /** Submits the first batch if nothing is in flight. */
  function pump(): void {
    if (inFlight || batches.length === 0 || tip === null) return;
    const batch = batches[0];
    closeBatch(batch);
    inFlight = true;
    let commit: Promise<Deno.KvCommitResult | Deno.KvCommitError>;
    const rides: Ride[] = [];
    try {
      const op = kv.atomic().check({ key: vaultHeadKey(), versionstamp: committedVersionstamp });
      for (const [key, value] of batch.mutations) op.set(key, value);
      for (const [key, index] of batch.once) op.check({ key, versionstamp: null }).set(key, index);
      op.set(vaultHeadKey(), batch.head!);
      // Riders fill what the batch leaves of KV's mutation limit (a few dozen at most) and of
      // its byte limit: a batch built up to the limit takes none.
      let room = batch.bytes + RIDER_BYTES > KV_MAX_ATOMIC_BYTES ? 0 : Math.min(
        RIDER_MUTATIONS,
        KV_MAX_MUTATIONS - batch.mutations.length - batch.once.length - 1,
      );
      for (const rider of riders) {
        const ride = room > 0 ? rider.ride(room) : undefined;
        if (!ride) continue;
        rides.push(ride);
        op.mutate(...ride.mutations.slice(0, room));
        room -= ride.mutations.length;
      }
      commit = op.commit();
    } catch (e) {
      // A synchronous refusal (a closed KV, say) must fail the batch, not strand it.
      commit = Promise.reject(e);
    }
    commit.then(
      (result) => settle(batch, result, rides),
      (error) => settle(batch, error instanceof Error ? error : new Error(String(error)), rides),
    );
  }

  function settle(
    batch: Batch,
    outcome: Deno.KvCommitResult | Deno.KvCommitError | Error,
    rides: Ride[],
  ): void {
    inFlight = false;
    const ok = !(outcome instanceof Error) && outcome.ok;
    for (const ride of rides) {
      try {
        ride.settle(ok);
      } catch {
        // A rider's bookkeeping never fails the vault.
      }
    }
    if (ok) {
      attempt = 0;
      committedVersionstamp = (outcome as Deno.KvCommitResult).versionstamp;
      knownSize = Math.max(knownSize, batch.receipts[batch.receipts.length - 1].index + 1);
      batches.shift();
      batch.pendings.forEach((p, i) => p.resolve(batch.receipts[i]));
      pump();
      if (batches.length === 0) wakeIdle();
      return;
    }
    // Rebuild every uncommitted entry, in order, on what is really in KV.
    const waiting = batches.flatMap((b) => b.pendings);
    batches.length = 0;
    tip = null;
    backlog = [...waiting, ...backlog];
    attempt++;
    const fatal = outcome instanceof Error && !isTransientKvError(outcome);
    if (fatal || attempt > 200) {
      const error = fatal
        ? outcome
        : new Error(`Cannot append to the vault: head kept changing (${attempt} attempts)`);
      attempt = 0;
      fail(error);
      return;
    }
    const ms = Math.min(50, attempt) * (0.5 + Math.random());
    retry = setTimeout(() => {
      retry = undefined;
      refresh();
    }, ms);
  }

  /**
   * Reads the committed head and rebuilds the backlog on it. Runs only while
   * nothing is built (tip unknown), so no batch can rest on a stale tip.
   */
  function refresh(): void {
    if (reading || retry !== undefined || tip !== null) return;
    reading = true;
    // An entry whose `once` key another entry now holds is refused, not rebuilt: its commit
    // would fail on that check for ever. The keys are read after the head, so a key set since
    // the head was read fails the next commit and is found on the next read.
    Promise.all([readHead(), readOnceKeys(backlog)]).then(([read, held]) => {
      reading = false;
      tip = { range: read.state.range.clone(), last: read.state.last };
      committedVersionstamp = read.versionstamp;
      const waiting = backlog;
      backlog = [];
      for (const p of waiting) {
        const index = p.once !== undefined ? held.get(keyText(p.once)) : undefined;
        if (index !== undefined) p.reject(new EntryExistsError(p.once!, index));
        else place(p);
      }
      pump();
      if (batches.length === 0) wakeIdle();
    }, (error) => {
      reading = false;
      fail(error);
    });
  }

  /** The entry indices held by the `once` keys of `pendings` (by JSON of the key). */
  async function readOnceKeys(pendings: readonly Pending[]): Promise<Map<string, number>> {
    const held = new Map<string, number>();
    const keys = pendings.flatMap((p) => p.once !== undefined ? [p.once] : []);
    for (let i = 0; i < keys.length; i += 10) {
      const got = await kv.getMany<number[]>(keys.slice(i, i + 10), { consistency: "strong" });
      for (const e of got) {
        if (typeof e.value === "number") held.set(keyText(e.key), e.value);
      }
    }
    return held;
  }

  function fail(error: unknown): void {
    const waiting = backlog;
    backlog = [];
    for (const p of waiting) p.reject(error);
    wakeIdle();
  }

  function busy(): boolean {
    return inFlight || reading || retry !== undefined || batches.length > 0 || backlog.length > 0;
  }

  function wakeIdle(): void {
    if (busy()) return;
    // Riders left waiting for a commit that will not come now commit for themselves.
    for (const rider of riders) {
      try {
        rider.idle?.();
      } catch {
        // A rider's bookkeeping never fails the vault.
      }
    }
    const waiters = idle;
    idle = [];
    for (const w of waiters) w();
  }

  const nodes = createNodeReader(kv);
  const getNodes = nodes.getNodes;
  const source = { getNodes };
  const blobs = createBlobStore(kv);

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
  async function compareWithMirror(
    size: number,
    root: Uint8Array,
  ): Promise<{ ok: boolean; where?: string; size?: number; reason?: string }> {
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
      if ("index" in fields || "prev" in fields) {
        throw new TypeError("Cannot seal entry: index and prev are assigned by the vault");
      }
      const entry: Record<string, unknown> = { time: new Date().toISOString(), ...fields };
      if (appendOptions.digests) {
        for (const [name, value] of Object.entries(appendOptions.digests)) {
          entry[name] = lenientDigestJson(value);
        }
      }
      if (appendOptions.body !== undefined) {
        const text = canonicalString(appendOptions.body, {
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
      return await new Promise<SealReceipt>((resolve, reject) => {
        enqueue({
          entry: prepared,
          ...(appendOptions.once !== undefined ? { once: appendOptions.once } : {}),
          resolve,
          reject,
        });
      });
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
    async *entries(start, end, entryOptions = {}) {
      const iter = kv.list({ start: vaultEntryKey(start), end: vaultEntryKey(end) }, {
        batchSize: 500,
      });
      let expected = start;
      for await (const e of iter) {
        const index = e.key[2] as number;
        if (index !== expected && !entryOptions.skipGaps) {
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
      if (expected < end && !entryOptions.skipGaps) {
        throw new VaultCorruptionError(`Cannot read entries: entry ${expected} is missing`);
      }
    },
    nodes: getNodes,
    async inclusionProof(index, size) {
      // The size check and the node reads run together; a size beyond the head
      // is reported as such even though its nodes would also be missing.
      const [checked, proof] = await Promise.allSettled([
        requireSize(size, "inclusion proof"),
        buildInclusionProof(index, size, source),
      ]);
      if (checked.status === "rejected") throw checked.reason;
      if (proof.status === "rejected") throw proof.reason;
      return proof.value;
    },
    async consistencyProof(size1, size2) {
      const [checked, proof] = await Promise.allSettled([
        requireSize(size2, "consistency proof"),
        buildConsistencyProof(size1, size2, source),
      ]);
      if (checked.status === "rejected") throw checked.reason;
      if (proof.status === "rejected") throw proof.reason;
      return proof.value;
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
    async verifyHead() {
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
    },
    flush() {
      return busy() ? new Promise<void>((resolve) => idle.push(resolve)) : Promise.resolve();
    },
    carry(rider) {
      if (!riders.includes(rider)) riders.push(rider);
    },
    pending: busy,
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
