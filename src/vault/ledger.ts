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
import { canonicalize, canonicalString } from "./canonical_json.ts";
import { formatCheckpoint, signCheckpoint as signCheckpointNote } from "./checkpoint.ts";
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

interface Pending {
  readonly fields: Record<string, unknown>;
  resolve(receipt: SealReceipt): void;
  reject(error: unknown): void;
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
    const e = await kv.get<VaultHead>(vaultHeadKey(), { consistency: "strong" });
    return { head: e.value ?? EMPTY_HEAD, versionstamp: e.versionstamp };
  }

  /** Builds and commits as much of `batch` as fits in one atomic; returns receipts for that prefix. */
  async function commitPrefix(batch: readonly Pending[]): Promise<SealReceipt[]> {
    for (let attempt = 1;; attempt++) {
      const current = cached ?? await readHead();
      const range = CompactRange.fromJSON(current.head.range);
      const op = kv.atomic().check({ key: vaultHeadKey(), versionstamp: current.versionstamp });
      let mutations = 2; // the check is free; the head set and a margin
      let bytes = 1024;
      let prev = current.head.last;
      const receipts: SealReceipt[] = [];
      for (const p of batch) {
        const nodeCount = 1 + trailingOnes(range.size);
        const entry = { ...p.fields, index: range.size, prev };
        const data = canonicalize(entry, { name: "entry" });
        const cost = 1 + nodeCount;
        const size = data.byteLength + 64 + nodeCount * 64;
        if (
          receipts.length > 0 &&
          (mutations + cost > KV_MAX_MUTATIONS || bytes + size > KV_MAX_ATOMIC_BYTES)
        ) break;
        const leaf = hashLeaf(data);
        const index = range.size;
        op.set(vaultEntryKey(index), data);
        for (const node of range.append(leaf)) {
          op.set(vaultNodeKey(node.level, node.index), node.hash);
        }
        mutations += cost;
        bytes += size;
        prev = toHex(leaf);
        receipts.push({ index, leafHash: prev });
      }
      const head: VaultHead = {
        size: range.size,
        root: toBase64(range.root()),
        range: range.toJSON(),
        last: prev,
      };
      op.set(vaultHeadKey(), head);
      let result: Deno.KvCommitResult | Deno.KvCommitError;
      try {
        result = await op.commit();
      } catch (e) {
        if (!isTransientKvError(e) || attempt >= 50) throw e;
        cached = null;
        await backoff(attempt);
        continue;
      }
      if (result.ok) {
        cached = { head, versionstamp: result.versionstamp };
        return receipts;
      }
      // Another writer moved the head: rebuild the batch on the new head.
      cached = null;
      if (attempt >= 200) {
        throw new Error(`Cannot append to the vault: head kept changing (${attempt} attempts)`);
      }
      await backoff(attempt);
    }
  }

  function backoff(attempt: number): Promise<void> {
    const ms = Math.min(50, attempt) * (0.5 + Math.random());
    return new Promise((r) => setTimeout(r, ms));
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      try {
        const receipts = await commitPrefix(batch);
        const done = queue.splice(0, receipts.length);
        done.forEach((p, i) => p.resolve(receipts[i]));
      } catch (e) {
        const failed = queue.splice(0, batch.length);
        for (const p of failed) p.reject(e);
      }
    }
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
    const out: Uint8Array[] = [];
    for (let i = 0; i < ids.length; i += 10) {
      const slice = ids.slice(i, i + 10);
      const got = await kv.getMany<Uint8Array[]>(slice.map((n) => vaultNodeKey(n.level, n.index)));
      got.forEach((e, j) => {
        if (!(e.value instanceof Uint8Array)) {
          throw new VaultCorruptionError(
            `Cannot build proof: node (level ${slice[j].level}, index ${
              slice[j].index
            }) is missing`,
          );
        }
        out.push(e.value);
      });
    }
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
      // Validate encodability and size now, so one bad entry cannot fail a whole batch.
      const probe = canonicalize({ ...entry, index: Number.MAX_SAFE_INTEGER, prev: GENESIS_PREV }, {
        name: "entry",
      });
      if (probe.byteLength > MAX_ENTRY_BYTES) {
        throw new RangeError(
          `Cannot seal entry: ${probe.byteLength} bytes, over the ${MAX_ENTRY_BYTES}-byte limit; pass large content as a body`,
        );
      }
      const receipt = new Promise<SealReceipt>((resolve, reject) => {
        queue.push({ fields: entry, resolve, reject });
      });
      kick();
      return await receipt;
    },
    async head() {
      return (await readHead()).head;
    },
    async entry(index) {
      if (!Number.isSafeInteger(index) || index < 0) return null;
      const [e, n] = await kv.getMany<[Uint8Array, Uint8Array]>([
        vaultEntryKey(index),
        vaultNodeKey(0, index),
      ]);
      if (!(e.value instanceof Uint8Array) || !(n.value instanceof Uint8Array)) return null;
      return { index, bytes: e.value, leafHash: toHex(n.value) };
    },
    async *entries(start, end, entryOptions = {}) {
      const iter = kv.list<Uint8Array>({ start: vaultEntryKey(start), end: vaultEntryKey(end) }, {
        batchSize: 500,
      });
      let expected = start;
      for await (const e of iter) {
        const index = e.key[2] as number;
        if (index !== expected && !entryOptions.skipGaps) {
          throw new VaultCorruptionError(`Cannot read entries: entry ${expected} is missing`);
        }
        expected = index + 1;
        yield { index, bytes: e.value, leafHash: toHex(hashLeaf(e.value)) };
      }
      if (expected < end && !entryOptions.skipGaps) {
        throw new VaultCorruptionError(`Cannot read entries: entry ${expected} is missing`);
      }
    },
    nodes: getNodes,
    async inclusionProof(index, size) {
      await requireSize(size, "inclusion proof");
      return await buildInclusionProof(index, size, source);
    },
    async consistencyProof(size1, size2) {
      await requireSize(size2, "consistency proof");
      return await buildConsistencyProof(size1, size2, source);
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
          const last = await kv.get<Uint8Array>(vaultNodeKey(0, head.size - 1));
          if (!(last.value instanceof Uint8Array) || toHex(last.value) !== head.last) {
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

/** The checkpoint text (unsigned) for a head: used by tests and the export. */
export function headCheckpointText(origin: string, head: VaultHead): string {
  return formatCheckpoint({ origin, size: head.size, root: fromBase64(head.root) });
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
