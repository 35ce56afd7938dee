/**
 * Group commit for independent KV writes: writes issued while a commit is in
 * flight are collected and committed together as one atomic operation, so
 * throughput scales with concurrency instead of paying one SQLite transaction
 * per write. Each caller's promise settles only after its write is durable.
 */
import { withKvRetry } from "./retry.ts";

/** One queued mutation. */
export type BatchMutation =
  | {
    readonly type: "set";
    readonly key: Deno.KvKey;
    readonly value: unknown;
    readonly expireIn?: number;
    /**
     * The value's size as JSON when the caller already knows it (a stored event is a JSON
     * string it just built): the writer then does not serialise the value again to size it.
     */
    readonly valueBytes?: number;
  }
  | { readonly type: "delete"; readonly key: Deno.KvKey };

/** Deno KV's documented limits for one atomic operation. */
export const KV_MAX_MUTATIONS = 1000;
export const KV_MAX_ATOMIC_BYTES = 800 * 1024;
export const KV_MAX_VALUE_BYTES = 64 * 1024;
/** Deno KV refuses an atomic whose keys add up to more than this ("Total key size too large"). */
export const KV_MAX_ATOMIC_KEY_BYTES = 80 * 1024;

interface Pending {
  readonly mutations: readonly BatchMutation[];
  /** When it was queued (performance.now()). */
  readonly at: number;
  readonly bytes: number;
  readonly keyBytes: number;
  resolve(): void;
  reject(e: unknown): void;
}

/** A group-commit writer over one KV handle. */
export interface BatchWriter {
  /** Queues mutations that must commit together; resolves once they are durable. */
  write(mutations: readonly BatchMutation[]): Promise<void>;
  /** Resolves when everything queued so far is committed. */
  flush(): Promise<void>;
}

/**
 * An upper bound on a key's size in KV's tuple encoding: a tag byte per part, strings and bytes
 * with a terminator (and escaped NULs), numbers as 8 bytes, bigints up to their magnitude.
 */
export function keyByteLength(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") {
      n += 2 + utf8Length(part) + (part.includes("\0") ? part.split("\0").length - 1 : 0);
    } else if (part instanceof Uint8Array) {
      n += 2 + part.length + part.filter((b) => b === 0).length;
    } else if (typeof part === "number") n += 9;
    else if (typeof part === "bigint") n += 2 + Math.ceil(part.toString(16).length / 2);
    else n += 1;
  }
  return n;
}

/** UTF-8 length of `text` without encoding it (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        n += 2; // four bytes for two UTF-16 units
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

function estimateBytes(m: BatchMutation, keyBytes: number): number {
  if (m.type === "delete") return keyBytes;
  // JSON length approximates V8-serialized size well enough to stay under the limit with headroom.
  return keyBytes + (m.valueBytes ?? JSON.stringify(m.value ?? null).length) + 64;
}

/** Options of a group-commit writer. */
export interface BatchWriterOptions {
  /**
   * How long a write arriving at an idle writer waits for company before its commit starts (ms;
   * default 0). For writes nobody waits on (stream events): one caller at a time otherwise costs
   * one durable commit per write, and that commit competes with the vault's for the database.
   */
  readonly lingerMs?: number;
}

/**
 * Creates a group-commit writer. A single `write` must itself fit in one atomic
 * (≤ 1,000 mutations, ≤ 800 KiB, keys ≤ 80 KiB); otherwise it is rejected with a RangeError.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const writer = createBatchWriter(kv);
 * await writer.write([{ type: "set", key: ["a"], value: 1 }]);
 * ```
 */
export function createBatchWriter(kv: Deno.Kv, options: BatchWriterOptions = {}): BatchWriter {
  const queue: Pending[] = [];
  let running: Promise<void> | null = null;
  const lingerMs = options.lingerMs ?? 0;

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      // Each batch starts once its oldest write has waited lingerMs (no longer: a write's
      // durability is delayed by at most the linger and one commit).
      const wait = lingerMs > 0 ? queue[0].at + lingerMs - performance.now() : 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const batch: Pending[] = [];
      let count = 0;
      let bytes = 0;
      let keyBytes = 0;
      while (queue.length > 0) {
        const next = queue[0];
        if (
          batch.length > 0 &&
          (count + next.mutations.length > KV_MAX_MUTATIONS ||
            bytes + next.bytes > KV_MAX_ATOMIC_BYTES ||
            keyBytes + next.keyBytes > KV_MAX_ATOMIC_KEY_BYTES)
        ) break;
        batch.push(queue.shift()!);
        count += next.mutations.length;
        bytes += next.bytes;
        keyBytes += next.keyBytes;
      }
      try {
        await withKvRetry(async () => {
          const op = kv.atomic();
          for (const p of batch) {
            for (const m of p.mutations) {
              if (m.type === "set") {
                op.set(m.key, m.value, m.expireIn ? { expireIn: m.expireIn } : undefined);
              } else op.delete(m.key);
            }
          }
          const res = await op.commit();
          if (!res.ok) throw new Error("Cannot commit batched KV writes: atomic check failed");
        });
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
  }

  function kick(): Promise<void> {
    if (!running) {
      running = drain().finally(() => {
        running = null;
        if (queue.length > 0) kick();
      });
    }
    return running;
  }

  return {
    write(mutations) {
      if (mutations.length === 0) return Promise.resolve();
      if (mutations.length > KV_MAX_MUTATIONS) {
        return Promise.reject(
          new RangeError(`Cannot write ${mutations.length} mutations in one atomic (max 1000)`),
        );
      }
      let bytes = 0;
      let keyBytes = 0;
      for (const m of mutations) {
        const k = keyByteLength(m.key);
        keyBytes += k;
        bytes += estimateBytes(m, k);
      }
      if (bytes > KV_MAX_ATOMIC_BYTES) {
        return Promise.reject(
          new RangeError(`Cannot write ${bytes} bytes in one atomic (max ${KV_MAX_ATOMIC_BYTES})`),
        );
      }
      if (keyBytes > KV_MAX_ATOMIC_KEY_BYTES) {
        return Promise.reject(
          new RangeError(
            `Cannot write keys of ${keyBytes} bytes in one atomic (max ${KV_MAX_ATOMIC_KEY_BYTES})`,
          ),
        );
      }
      const done = new Promise<void>((resolve, reject) => {
        queue.push({ mutations, at: performance.now(), bytes, keyBytes, resolve, reject });
      });
      kick();
      return done;
    },
    async flush() {
      while (running) await running;
    },
  };
}
