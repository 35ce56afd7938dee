/**
 * The vault's storage: an append-only RFC 6962 log in Deno KV.
 *
 * Every append is one `kv.atomic()` that checks the head record (the only
 * contended key), writes the entries, every subtree node they complete and
 * the new head. Concurrent appends are group-committed: whatever queued while
 * a commit was in flight goes into the next atomic, up to KV's limits of 1,000
 * mutations and 800 KiB. A failed check (another process appended) or SQLite's
 * "database is locked" re-reads the head and rebuilds the batch. An append is
 * acknowledged only after its commit succeeded. Versionstamps are never used
 * as indices, vault keys never expire, and the head is always read strongly.
 */
import {
  isTransientKvError,
  KV_MAX_ATOMIC_BYTES,
  KV_MAX_MUTATIONS,
  vaultBlobKey,
  vaultBlobPrefix,
  vaultCheckpointKey,
  vaultCheckpointPrefix,
  vaultEntryKey,
  vaultHeadKey,
  vaultNodeKey,
} from "../store/mod.ts";
import { canonicalString } from "./canonical_json.ts";
import { signCheckpoint as signCheckpointNote } from "./checkpoint.ts";
import { CompactRange, type CompactRangeJson, type NodeId } from "./compact_range.ts";
import { GENESIS_PREV } from "./bundle_verify.ts";
import { fromBase64, hashLeaf, sha256, toBase64, toHex } from "./hasher.ts";
import type { Signer } from "./note.ts";
import { buildConsistencyProof, buildInclusionProof } from "./proof.ts";
import { writeBundle } from "./bundle_io.ts";

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
}

/** Entries are kept under this size; larger bodies go to content-addressed chunks. */
export const MAX_ENTRY_BYTES = 60 * 1024;
const INLINE_BODY_BYTES = 16 * 1024;
const BLOB_CHUNK_BYTES = 60 * 1024;

const EMPTY_HEAD: VaultHead = {
  size: 0,
  root: toBase64(sha256(new Uint8Array())),
  range: { size: 0, hashes: [] },
  last: GENESIS_PREV,
};

/** Raised when stored data does not add up (a missing node, a head that does not match). */
export class VaultCorruptionError extends Error {
  override name = "VaultCorruptionError";
}

/** The KV-backed log. */
export interface Ledger {
  readonly origin: string;
  /**
   * Appends one entry: `fields` plus `index`, `prev` and (when absent) `time`.
   * A `body` is stored inline as canonical JSON text when small, otherwise as
   * content-addressed chunks with only `body_sha256`/`body_bytes` in the entry.
   * Resolves only after the entry is committed.
   */
  append(
    fields: Record<string, unknown>,
    options?: { body?: unknown },
  ): Promise<SealReceipt>;
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
  /** Resolves once every queued append has committed or failed. */
  flush(): Promise<void>;
}

/**
 * An entry's canonical JSON, pre-encoded as `"key":value` members around the
 * two members only the commit can know (`index`, `prev`). Canonical order
 * puts every key either before "index", between "index" and "prev", or after
 * "prev", so the commit splices the two in without re-encoding the rest.
 */
interface PreparedEntry {
  readonly before: string[];
  readonly middle: string[];
  readonly after: string[];
}

function prepareEntry(fields: Record<string, unknown>): PreparedEntry {
  const prepared: PreparedEntry = { before: [], middle: [], after: [] };
  // Default sort compares UTF-16 code units: the canonical (RFC 8785) key order.
  for (const key of Object.keys(fields).sort()) {
    const member = canonicalString(key) + ":" +
      canonicalString(fields[key], { name: `entry.${key}` });
    if (key < "index") prepared.before.push(member);
    else if (key < "prev") prepared.middle.push(member);
    else prepared.after.push(member);
  }
  return prepared;
}

function renderEntry(p: PreparedEntry, index: number, prev: string): string {
  return "{" +
    [...p.before, `"index":${index}`, ...p.middle, `"prev":"${prev}"`, ...p.after].join(",") + "}";
}

const textEncoder = new TextEncoder();

interface Pending {
  readonly entry: PreparedEntry;
  resolve(receipt: SealReceipt): void;
  reject(error: unknown): void;
}

/** Entry records are raw bytes (KV stores those without V8 serialization): leaf ‖ data. */
function encodeEntryRecord(leaf: Uint8Array, data: Uint8Array): Uint8Array {
  const record = new Uint8Array(32 + data.byteLength);
  record.set(leaf, 0);
  record.set(data, 32);
  return record;
}

function decodeEntryRecord(value: unknown): { leaf: Uint8Array; data: Uint8Array } | null {
  if (!(value instanceof Uint8Array) || value.byteLength <= 32) return null;
  return { leaf: value.subarray(0, 32), data: value.subarray(32) };
}

/**
 * The head is stored as UTF-8 JSON bytes: KV writes bytes as they are, while
 * an object would go through V8 serialization on every commit.
 */
function encodeHead(head: VaultHead): Uint8Array {
  return textEncoder.encode(JSON.stringify(head));
}

function decodeHead(bytes: Uint8Array): VaultHead {
  const head = JSON.parse(new TextDecoder().decode(bytes));
  if (
    typeof head?.size !== "number" || typeof head.root !== "string" ||
    typeof head.last !== "string" ||
    typeof head.range?.size !== "number" || !Array.isArray(head.range.hashes)
  ) {
    throw new VaultCorruptionError("Cannot read the vault head: malformed record");
  }
  return head;
}

interface CachedHead {
  head: VaultHead;
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
 * const kv = await Deno.openKv(":memory:");
 * const ledger = createLedger(kv, { origin: "warden/test", signer: await generateSigner("warden/test") });
 * const { index } = await ledger.append({ type: "note", text: "hello" });
 * ```
 */
export function createLedger(
  kv: Deno.Kv,
  options: { origin: string; signer: Signer; maxBatch?: number },
): Ledger {
  const { origin, signer } = options;
  const maxBatch = options.maxBatch ?? 500;
  const queue: Pending[] = [];
  let running: Promise<void> | null = null;
  let cached: CachedHead | null = null;
  let lastSignedSize = -1;

  async function readHead(): Promise<CachedHead> {
    const e = await kv.get<Uint8Array>(vaultHeadKey(), { consistency: "strong" });
    return { head: e.value ? decodeHead(e.value) : EMPTY_HEAD, versionstamp: e.versionstamp };
  }

  /** A batch built on a predicted head, ready to commit. */
  interface Built {
    readonly pendings: Pending[];
    readonly receipts: SealReceipt[];
    readonly mutations: [Deno.KvKey, Uint8Array][];
    readonly head: VaultHead;
    readonly range: CompactRange;
  }

  /**
   * Takes from the queue as many entries as fit in one atomic and builds them
   * on top of `base`: entry records, completed nodes and the new head.
   */
  function build(base: { head: VaultHead; range: CompactRange }): Built {
    const range = base.range.clone();
    const mutations: [Deno.KvKey, Uint8Array][] = [];
    let count = 2; // the head set, and a margin
    let bytes = 2048;
    let prev = base.head.last;
    const receipts: SealReceipt[] = [];
    const pendings: Pending[] = [];
    while (queue.length > 0 && pendings.length < maxBatch) {
      const p = queue[0];
      // The leaf rides in the entry record; only higher nodes get keys of their own.
      const nodeCount = trailingOnes(range.size);
      const data = textEncoder.encode(renderEntry(p.entry, range.size, prev));
      const cost = 1 + nodeCount;
      const size = data.byteLength + 128 + nodeCount * 64;
      if (
        pendings.length > 0 &&
        (count + cost > KV_MAX_MUTATIONS || bytes + size > KV_MAX_ATOMIC_BYTES)
      ) {
        break;
      }
      queue.shift();
      const leaf = hashLeaf(data);
      const index = range.size;
      mutations.push([vaultEntryKey(index), encodeEntryRecord(leaf, data)]);
      for (const node of range.append(leaf)) {
        if (node.level > 0) mutations.push([vaultNodeKey(node.level, node.index), node.hash]);
      }
      count += cost;
      bytes += size;
      prev = toHex(leaf);
      receipts.push({ index, leafHash: prev });
      pendings.push(p);
    }
    const head: VaultHead = {
      size: range.size,
      root: toBase64(range.root()),
      range: range.toJSON(),
      last: prev,
    };
    return { pendings, receipts, mutations, head, range };
  }

  function submit(
    built: Built,
    versionstamp: string | null,
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const op = kv.atomic().check({ key: vaultHeadKey(), versionstamp });
    for (const [key, value] of built.mutations) op.set(key, value);
    op.set(vaultHeadKey(), encodeHead(built.head));
    return op.commit();
  }

  function backoff(attempt: number): Promise<void> {
    const ms = Math.min(50, attempt) * (0.5 + Math.random());
    return new Promise((r) => setTimeout(r, ms));
  }

  /**
   * Group commit, pipelined: while one batch's atomic is in flight, the next
   * batch is built on the head that commit will produce, so hashing and
   * encoding overlap KV's commit latency. The next batch is submitted only
   * after the previous one committed (its check needs that versionstamp);
   * if a commit fails, everything built on it goes back to the front of the
   * queue and is rebuilt on the head actually in KV.
   */
  async function drain(): Promise<void> {
    let attempt = 0;
    type InFlight = { built: Built; result: Promise<Deno.KvCommitResult | Deno.KvCommitError> };
    let inFlight: InFlight | null = null as InFlight | null;
    while (queue.length > 0 || inFlight) {
      let base = cached;
      if (!base && !inFlight) {
        try {
          base = await readHead();
        } catch (e) {
          rejectAll(queue.splice(0), e);
          return;
        }
        cached = base;
      }
      const predicted: { head: VaultHead; range: CompactRange } = inFlight
        ? { head: inFlight.built.head, range: inFlight.built.range }
        : { head: base!.head, range: CompactRange.fromJSON(base!.head.range) };
      const next: Built | null = queue.length > 0 ? build(predicted) : null;
      if (inFlight) {
        const current: InFlight = inFlight;
        inFlight = null;
        let outcome: Deno.KvCommitResult | Deno.KvCommitError | Error;
        try {
          outcome = await current.result;
        } catch (e) {
          outcome = e as Error;
        }
        if (!(outcome instanceof Error) && outcome.ok) {
          attempt = 0;
          cached = { head: current.built.head, versionstamp: outcome.versionstamp };
          current.built.pendings.forEach((p, i) => p.resolve(current.built.receipts[i]));
        } else {
          // Another writer moved the head, or KV was busy: rebuild on what is really there.
          queue.unshift(...current.built.pendings, ...(next?.pendings ?? []));
          cached = null;
          attempt++;
          const fatal = outcome instanceof Error && !isTransientKvError(outcome);
          if (fatal || attempt > 200) {
            const error = fatal
              ? outcome
              : new Error(`Cannot append to the vault: head kept changing (${attempt} attempts)`);
            rejectAll(queue.splice(0), error);
            return;
          }
          await backoff(attempt);
          continue;
        }
      }
      if (next) inFlight = { built: next, result: submit(next, cached!.versionstamp) };
    }
  }

  function rejectAll(pendings: Pending[], error: unknown): void {
    for (const p of pendings) p.reject(error);
  }

  function kick(): void {
    if (!running) {
      running = drain().finally(() => {
        running = null;
        if (queue.length > 0) kick();
      });
    }
  }

  async function storeBlob(bytes: Uint8Array): Promise<string> {
    const hash = toHex(sha256(bytes));
    // Content-addressed, so rewriting an existing body is harmless; chunks go in
    // before the entry that names them, so an entry never points at nothing.
    for (let offset = 0, part = 0; offset < bytes.byteLength; part += 10) {
      const op = kv.atomic();
      for (let i = 0; i < 10 && offset < bytes.byteLength; i++, offset += BLOB_CHUNK_BYTES) {
        op.set(vaultBlobKey(hash, part + i), bytes.slice(offset, offset + BLOB_CHUNK_BYTES));
      }
      await op.commit();
    }
    return hash;
  }

  async function getNodes(ids: NodeId[]): Promise<Uint8Array[]> {
    // KV's getMany takes at most 10 keys; the slices are read concurrently.
    const slices: NodeId[][] = [];
    for (let i = 0; i < ids.length; i += 10) slices.push(ids.slice(i, i + 10));
    const pages = await Promise.all(
      slices.map((slice) =>
        kv.getMany<unknown[]>(
          slice.map((n) => n.level === 0 ? vaultEntryKey(n.index) : vaultNodeKey(n.level, n.index)),
        )
      ),
    );
    const out: Uint8Array[] = [];
    pages.forEach((page, p) =>
      page.forEach((e, j) => {
        const value = slices[p][j].level === 0 ? decodeEntryRecord(e.value)?.leaf : e.value;
        if (!(value instanceof Uint8Array)) {
          const n = slices[p][j];
          throw new VaultCorruptionError(
            `Cannot build proof: node (level ${n.level}, index ${n.index}) is missing`,
          );
        }
        out.push(value);
      })
    );
    return out;
  }
  const source = { getNodes };

  async function requireSize(size: number, what: string): Promise<void> {
    const { head } = await readHead();
    if (size > head.size) {
      throw new RangeError(`Cannot build ${what}: tree size ${size} exceeds log size ${head.size}`);
    }
  }

  return {
    origin,
    async append(fields, appendOptions = {}) {
      if ("index" in fields || "prev" in fields) {
        throw new TypeError("Cannot seal entry: index and prev are assigned by the vault");
      }
      const entry: Record<string, unknown> = { time: new Date().toISOString(), ...fields };
      if (appendOptions.body !== undefined) {
        const text = canonicalString(appendOptions.body, { name: "body", numbers: "jcs" });
        const bytes = new TextEncoder().encode(text);
        if (bytes.byteLength <= INLINE_BODY_BYTES) {
          entry.body = text;
        } else {
          entry.body_sha256 = await storeBlob(bytes);
          entry.body_bytes = bytes.byteLength;
        }
      }
      // Encoding happens once, here, so a bad entry fails alone and never a whole batch.
      const prepared = prepareEntry(entry);
      const size = textEncoder.encode(renderEntry(prepared, Number.MAX_SAFE_INTEGER, GENESIS_PREV))
        .byteLength;
      if (size > MAX_ENTRY_BYTES) {
        throw new RangeError(
          `Cannot seal entry: ${size} bytes, over the ${MAX_ENTRY_BYTES}-byte limit; pass large content as a body`,
        );
      }
      const receipt = new Promise<SealReceipt>((resolve, reject) => {
        queue.push({ entry: prepared, resolve, reject });
      });
      kick();
      return await receipt;
    },
    async head() {
      return (await readHead()).head;
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
        const data = decodeEntryRecord(e.value)?.data ?? new Uint8Array();
        yield { index, bytes: data, leafHash: toHex(hashLeaf(data)) };
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
      const { head } = await readHead();
      if (head.size === 0) return null;
      if (head.size === lastSignedSize) return await this.latestCheckpoint();
      const note = await signCheckpointNote(
        { origin, size: head.size, root: fromBase64(head.root) },
        signer,
      );
      const key = vaultCheckpointKey(head.size);
      // Another process may have signed this size already: keep the first.
      await kv.atomic().check({ key, versionstamp: null }).set(key, note).commit();
      lastSignedSize = head.size;
      return await this.latestCheckpoint();
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
    async blob(hash) {
      if (!/^[0-9a-f]{64}$/.test(hash)) return null;
      const parts: Uint8Array[] = [];
      for await (const e of kv.list<Uint8Array>({ prefix: vaultBlobPrefix(hash) })) {
        parts.push(e.value);
      }
      if (parts.length === 0) return null;
      const total = parts.reduce((n, p) => n + p.byteLength, 0);
      const out = new Uint8Array(total);
      let offset = 0;
      for (const p of parts) {
        out.set(p, offset);
        offset += p.byteLength;
      }
      return toHex(sha256(out)) === hash ? out : null;
    },
    async verifyHead() {
      const { head } = await readHead();
      try {
        const range = CompactRange.fromJSON(head.range);
        if (range.size !== head.size) {
          return { ok: false, size: head.size, reason: "range size differs" };
        }
        if (toBase64(range.root()) !== head.root) {
          return { ok: false, size: head.size, reason: "root does not match the compact range" };
        }
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
    async flush() {
      while (running) await running;
    },
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
    for await (const e of ledger.entries(0, head.size, { skipGaps: true })) yield e.bytes;
  }
  const written = await writeBundle({
    header: { origin: ledger.origin, vkey: options.vkey, size: head.size },
    checkpoints: notes,
    entries: entries(),
    blob: (hash) => ledger.blob(hash),
  }, options.write);
  return { ...written, size: head.size };
}
