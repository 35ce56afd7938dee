/**
 * The vault's group commit: appends to the log in Deno KV, many per atomic.
 *
 * Every commit is one `kv.atomic()` that checks the head record (the only contended key), writes
 * the entries and the new head. Each entry's record also carries the hashes of the subtrees that
 * entry completes (the nodes whose rightmost leaf it is), so every node a proof names is one read
 * away and an append costs one mutation per entry, not two. Concurrent appends are
 * group-committed: whatever queued while a commit was in flight goes into the next atomic, up to
 * KV's limits of 1,000 mutations and 800 KiB. A failed check (another process appended) or
 * SQLite's "database is locked" re-reads the head and rebuilds the batch. An append is
 * acknowledged only after its commit succeeded. Versionstamps are never used as indices and the
 * head is always read strongly.
 * @module
 */
import {
  type CommitCarrier,
  type CommitRider,
  isTransientKvError,
  KV_MAX_ATOMIC_BYTES,
  KV_MAX_MUTATIONS,
  type Ride,
  vaultEntryKey,
  vaultHeadKey,
} from "../store/mod.ts";
import { toHex } from "../lib/mod.ts";
import { type CompactRange, hashLeaf } from "../merkle/mod.ts";
import {
  decodeHead,
  EMPTY_STATE,
  encodeEntryRecord,
  encodeHead,
  type HeadState,
  type PreparedEntry,
  renderEntry,
} from "./record_codec.ts";

/** What an append returns once the entry is committed. */
export interface SealReceipt {
  readonly index: number;
  /** Hex leaf hash. */
  readonly leafHash: string;
}

/** An append naming a `once` key another entry already holds; `index` is that entry's. */
export class EntryExistsError extends Error {
  override name = "EntryExistsError";
  constructor(readonly key: Deno.KvKey, readonly index: number) {
    super(`Cannot seal entry: entry ${index} already holds ${JSON.stringify(key)}`);
  }
}

/** The committed head as read from KV, with the versionstamp the next commit checks. */
export interface CommittedHead {
  readonly state: HeadState;
  readonly versionstamp: string | null;
}

/**
 * Reads the committed head (strong read); an empty vault reads as the empty state with a null
 * versionstamp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCommittedHead } from "./group_commit.ts";
 * const kv = await Deno.openKv(":memory:");
 * const { state, versionstamp } = await readCommittedHead(kv);
 * assert.equal(state.range.size, 0);
 * assert.equal(versionstamp, null);
 * kv.close();
 * ```
 */
export async function readCommittedHead(kv: Deno.Kv): Promise<CommittedHead> {
  const e = await kv.get<Uint8Array>(vaultHeadKey(), { consistency: "strong" });
  return {
    state: e.value === null ? EMPTY_STATE : decodeHead(e.value),
    versionstamp: e.versionstamp,
  };
}

/** What `createGroupCommit` takes besides the KV. */
export interface GroupCommitOptions {
  /** At most this many entries per commit (default 500). */
  readonly maxBatch?: number;
  /** Reads the committed head; default {@link readCommittedHead} over the same KV. */
  readonly readHead?: () => Promise<CommittedHead>;
  /** Told the log's size after each commit of ours succeeded. */
  readonly committed?: (size: number) => void;
}

/**
 * Appends prepared entries, group-committed. Its commits also carry riders' unconditional
 * mutations (`carry`): the limiter's releases ride along the seal of the call they end.
 */
/** What this process's group commit has done since it started (for metrics and benchmarks). */
export interface CommitStats {
  /** Atomics that committed. */
  commits: number;
  /** Atomics that failed because the head had moved (another writer) or SQLite was busy. */
  conflicts: number;
  /** Entries committed. */
  entries: number;
}

export interface GroupCommit extends CommitCarrier {
  /**
   * Appends one prepared entry (its index and `prev` are filled in when it is placed); with
   * `once`, the commit also checks that key absent and sets it to the entry's index, and an
   * entry whose key another entry holds is refused with {@link EntryExistsError}. Resolves only
   * after the entry is committed; a commit that fails for good rejects every entry it held.
   */
  append(entry: PreparedEntry, once?: Deno.KvKey): Promise<SealReceipt>;
  /** Resolves once every queued append has committed or failed. */
  flush(): Promise<void>;
  /** Counts since creation. */
  stats(): CommitStats;
}

/** At most this many entries with a `once` key join one commit (each adds a check). */
const MAX_ONCE_PER_BATCH = 8;

/** At most this many riders' mutations join one commit. */
const RIDER_MUTATIONS = 64;
/** Room left for them in an atomic's bytes (64 counters with keys of a few hundred bytes). */
const RIDER_BYTES = 32 * 1024;

const textEncoder = new TextEncoder();

/** A KV key as comparable text. */
function keyText(key: Deno.KvKey): string {
  return JSON.stringify(key, (_, v) => typeof v === "bigint" ? `${v}n` : v);
}

function trailingOnes(n: number): number {
  let count = 0;
  while (n % 2 === 1) {
    count++;
    n = (n - 1) / 2;
  }
  return count;
}

interface Pending {
  readonly entry: PreparedEntry;
  readonly once?: Deno.KvKey;
  resolve(receipt: SealReceipt): void;
  reject(error: unknown): void;
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

/** Whether an entry of `size` bytes (with `once`, if any) can join the open `batch`. */
function joins(batch: Batch, size: number, once: Deno.KvKey | undefined, maxBatch: number) {
  return batch.head === null && batch.pendings.length < maxBatch &&
    batch.mutations.length + batch.once.length + 3 <= KV_MAX_MUTATIONS &&
    batch.bytes + size <= KV_MAX_ATOMIC_BYTES &&
    // Two entries naming one key never share a commit (both checks would pass): the second
    // goes in the next, whose check fails once the first is committed.
    !(once !== undefined &&
      (batch.once.length >= MAX_ONCE_PER_BATCH ||
        batch.once.some(([k]) => keyText(k) === keyText(once))));
}

/**
 * Builds the closed `batch`'s atomic on the head at `versionstamp`, with what the riders add in
 * the room the batch leaves, and commits it. A synchronous refusal (a closed KV, say) is a
 * rejected commit, so it fails the batch instead of stranding it.
 */
function commitBatch(
  kv: Deno.Kv,
  batch: Batch,
  versionstamp: string | null,
  riders: readonly CommitRider[],
): { commit: Promise<Deno.KvCommitResult | Deno.KvCommitError>; rides: Ride[] } {
  const rides: Ride[] = [];
  try {
    const op = kv.atomic().check({ key: vaultHeadKey(), versionstamp });
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
    return { commit: op.commit(), rides };
  } catch (e) {
    return { commit: Promise.reject(e), rides };
  }
}

/** The entry indices held by the `once` keys of `pendings` (by JSON of the key). */
async function readOnceKeys(
  kv: Deno.Kv,
  pendings: readonly Pending[],
): Promise<Map<string, number>> {
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

/** Calls `fn` for each rider; a rider's bookkeeping never fails the vault. */
function tellRiders<T>(items: readonly T[], fn: (item: T) => void): void {
  for (const item of items) {
    try {
      fn(item);
    } catch {
      // A rider's bookkeeping never fails the vault.
    }
  }
}

/**
 * Creates the group commit over `kv`'s vault keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createGroupCommit } from "./group_commit.ts";
 * import { prepareEntry } from "./record_codec.ts";
 * const kv = await Deno.openKv(":memory:");
 * const log = createGroupCommit(kv);
 * // Appended together, the three entries are committed in order, in one atomic.
 * const receipts = await Promise.all(["a", "b", "c"].map((text) => log.append(prepareEntry({ text }))));
 * assert.deepEqual(receipts.map((r) => r.index), [0, 1, 2]);
 * await log.flush();
 * assert.equal(log.pending(), false);
 * kv.close();
 * ```
 */
// Kept whole: the commit engine is one state machine over shared mutable state (the tip, the
// queue of batches, the backlog, the one commit in flight, the retry timer); its invariants (at
// most one atomic in flight, no batch resting on a stale tip) read top to bottom here, and split
// into closures they would be spread over functions that all write the same variables.
export function createGroupCommit(kv: Deno.Kv, options: GroupCommitOptions = {}): GroupCommit {
  const maxBatch = options.maxBatch ?? 500;
  const readHead = options.readHead ?? (() => readCommittedHead(kv));
  const committed = options.committed ?? (() => {});

  // Entries are built (encoded, hashed, placed in the tree) the moment they arrive, on `tip`:
  // the head as it will be once every batch before them has committed. So hashing overlaps the
  // commit in flight, and every entry that arrives during a commit joins the next one. At most
  // one atomic is in flight: the next must check the versionstamp the previous one produces.
  // When a commit fails (another writer moved the head, or SQLite was busy), every uncommitted
  // entry is rebuilt, in order, on the head actually in KV.
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
  const counts: CommitStats = { commits: 0, conflicts: 0, entries: 0 };

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
    if (!batch || !joins(batch, size, p.once, maxBatch)) {
      if (batch) closeBatch(batch);
      batch = { pendings: [], receipts: [], mutations: [], once: [], bytes: 4096, head: null };
      batches.push(batch);
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
    const { commit, rides } = commitBatch(kv, batch, committedVersionstamp, riders);
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
    tellRiders(rides, (ride) => ride.settle(ok));
    if (ok) {
      counts.commits++;
      counts.entries += batch.pendings.length;
      attempt = 0;
      committedVersionstamp = (outcome as Deno.KvCommitResult).versionstamp;
      committed(batch.receipts[batch.receipts.length - 1].index + 1);
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
    if (!fatal) counts.conflicts++;
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
    Promise.all([readHead(), readOnceKeys(kv, backlog)]).then(([read, held]) => {
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
    tellRiders(riders, (rider) => rider.idle?.());
    const waiters = idle;
    idle = [];
    for (const w of waiters) w();
  }

  return {
    append(entry, once) {
      return new Promise<SealReceipt>((resolve, reject) => {
        enqueue({ entry, ...(once !== undefined ? { once } : {}), resolve, reject });
      });
    },
    flush() {
      return busy() ? new Promise<void>((resolve) => idle.push(resolve)) : Promise.resolve();
    },
    carry(rider) {
      if (!riders.includes(rider)) riders.push(rider);
    },
    pending: busy,
    stats: () => ({ ...counts }),
  };
}
