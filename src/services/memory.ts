/**
 * The memory service: JSON values under string keys, per principal, each
 * with a TTL. KV holds them (`["memory", principal, key]`, `expireIn` = the
 * TTL), so every instance sharing the KV sees the same memory, and a
 * principal's keys live under a prefix no other principal's list can reach.
 *
 * KV's `expireIn` deletes a value some time after it expires, not at that
 * instant, so every record also carries its own `expires_at_ms` and a read
 * past it answers "not found" (and deletes the record).
 *
 * Text search goes through a BM25 index of the same kind as the context
 * service's (`memidx_*` keys, document id = memory key): a store indexes the
 * key and the first 16 KiB of the value's JSON, an expire removes it, and a
 * search reads the statistics, one counter and a bounded number of postings
 * per query term and then only the records of the best candidates — never
 * every value. A value that lapsed by its TTL leaves the index when a search
 * or a store meets it (its postings point at a record that is gone), so the
 * index's statistics can count lapsed values until then.
 *
 * @module
 */
import { memoryCountKey, memoryKey, memoryPrefix } from "../store/mod.ts";
import { encodeJsonValue } from "./_json_value.ts";
import { ContextError, createContextService } from "./context/mod.ts";

/** The part of Deno.Kv the service uses (tests wrap it to count reads). */
export type MemoryKv = Pick<Deno.Kv, "get" | "getMany" | "list" | "atomic">;

/** Bytes of a value's key and JSON text that memory_search's index reads (the rest is not indexed). */
export const MEMORY_INDEX_BYTES = 16_384;

/** Limits of the memory service (the policy's `memory` section). */
export interface MemoryLimits {
  /** Largest value, as UTF-8 JSON text. */
  readonly maxValueBytes: number;
  /** TTL when a store names none, in seconds. */
  readonly defaultTtlSeconds: number;
  /** Longest TTL a store may ask for, in seconds. */
  readonly maxTtlSeconds: number;
  /** Most keys one principal may hold at once. */
  readonly maxKeysPerPrincipal: number;
}

/** The defaults the policy starts from. */
export const DEFAULT_MEMORY_LIMITS: MemoryLimits = Object.freeze({
  maxValueBytes: 32_768,
  defaultTtlSeconds: 3600,
  maxTtlSeconds: 30 * 86_400,
  maxKeysPerPrincipal: 1000,
});

/** Longest key, in characters. */
export const MAX_MEMORY_KEY_CHARS = 256;

/** Why a memory operation was refused; `code` lets adapters map it (REST status, MCP text). */
export class MemoryError extends Error {
  override name = "MemoryError";
  readonly code: "bad_key" | "bad_value" | "too_large" | "bad_ttl" | "full";
  constructor(code: MemoryError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

interface StoredRecord {
  /** The value as JSON text (what was measured against the size limit). */
  json: string;
  sha256: string;
  bytes: number;
  stored_at_ms: number;
  expires_at_ms: number;
}

/** What a store reports. */
export interface StoreResult {
  readonly key: string;
  readonly ttl_s: number;
  readonly expires_at: string;
  readonly value_sha256: string;
  readonly bytes: number;
  /** Whether a live value was replaced. */
  readonly replaced: boolean;
  /** Whether the text index holds it (false: stored, but memory_search by text will not find it). */
  readonly indexed: boolean;
}

/** One live value. */
export interface MemoryEntry {
  readonly key: string;
  readonly value: unknown;
  readonly value_sha256: string;
  readonly bytes: number;
  readonly stored_at: string;
  readonly expires_at: string;
  readonly ttl_remaining_s: number;
}

/** One search hit: the value's first characters, not the whole value. */
export interface MemoryHit {
  readonly key: string;
  readonly preview: string;
  readonly value_sha256: string;
  readonly bytes: number;
  readonly expires_at: string;
  /** The BM25 score (text searches only; hits are then best first). */
  readonly score?: number;
}

/** What a search reports. */
export interface SearchResult {
  readonly hits: MemoryHit[];
  /** Value records read (a text search reads only its best candidates'). */
  readonly scanned: number;
  /** More values matched than `limit`. */
  readonly truncated: boolean;
}

/** The memory of every principal, over one KV. */
export interface MemoryService {
  readonly limits: MemoryLimits;
  store(
    principal: string,
    input: { key: string; value: unknown; ttl?: number },
  ): Promise<StoreResult>;
  /** The live value, or undefined when there is none (never an expired one). */
  retrieve(principal: string, key: string): Promise<MemoryEntry | undefined>;
  /**
   * Keys starting with `prefix`, in key order; with `query`, those whose key or value holds its
   * terms, best BM25 score first (through the index, not a scan).
   */
  search(
    principal: string,
    input: { prefix?: string; query?: string; limit?: number },
  ): Promise<SearchResult>;
  /** Ends a value now (`ttl` absent or 0) or moves its expiry to `ttl` seconds from now. */
  expire(
    principal: string,
    input: { key: string; ttl?: number },
  ): Promise<{ key: string; found: boolean; expires_at?: string }>;
}

const utf8 = new TextEncoder();
const PREVIEW_CHARS = 200;
// Keys sort as UTF-8 in KV; this character bounds a prefix range, so keys may not hold it.
const RANGE_END = "\u{10FFFF}";
// Every store of one principal checks its count key; under contention one writer wins a round.
const MAX_ATTEMPTS = 64;

function backoff(attempt: number): Promise<void> {
  return attempt === 0
    ? Promise.resolve()
    : new Promise((ok) => setTimeout(ok, Math.random() * Math.min(50, 2 * attempt)));
}

/** Checks a key: 1–256 characters, no control characters; throws MemoryError otherwise. */
export function checkMemoryKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) {
    throw new MemoryError("bad_key", "Cannot use an empty memory key");
  }
  if (key.length > MAX_MEMORY_KEY_CHARS) {
    throw new MemoryError(
      "bad_key",
      `Cannot use a memory key of ${key.length} characters: at most ${MAX_MEMORY_KEY_CHARS}`,
    );
  }
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f\u{10FFFF}]/u.test(key)) {
    throw new MemoryError("bad_key", "Cannot use a memory key holding control characters");
  }
}

function isLive(record: StoredRecord | null, now: number): record is StoredRecord {
  return record !== null && record.expires_at_ms > now;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Builds the memory service over `kv`. `now` is the clock expiry is judged
 * by (tests pass their own); KV's own `expireIn` runs on the real clock.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const memory = createMemoryService(kv);
 * await memory.store("alice", { key: "greeting", value: { text: "hi" }, ttl: 60 });
 * (await memory.retrieve("alice", "greeting"))?.value; // { text: "hi" }
 * await memory.retrieve("bob", "greeting"); // undefined: another principal's namespace
 * ```
 */
// Kept whole: a factory of ten small closures over one KV, the memory keys and their BM25 index.
export function createMemoryService(
  kv: MemoryKv,
  options: { limits?: Partial<MemoryLimits>; now?: () => number } = {},
): MemoryService {
  const given: MemoryLimits = { ...DEFAULT_MEMORY_LIMITS, ...options.limits };
  const limits: MemoryLimits = {
    ...given,
    defaultTtlSeconds: Math.min(given.defaultTtlSeconds, given.maxTtlSeconds),
  };
  const now = options.now ?? Date.now;
  // Room for lapsed values not yet met by a search: twice the live keys.
  const index = createContextService(kv, {
    family: "memidx",
    now,
    limits: {
      maxTextBytes: MEMORY_INDEX_BYTES,
      maxDocsPerPrincipal: limits.maxKeysPerPrincipal * 2,
    },
  });

  /** The indexed text of a value: its key and JSON, cut to MEMORY_INDEX_BYTES. */
  function indexText(key: string, json: string): string {
    let text = `${key}\n${json}`;
    while (utf8.encode(text).byteLength > MEMORY_INDEX_BYTES) {
      text = text.slice(0, Math.floor(text.length * 0.9));
    }
    return text;
  }

  /** Removes lapsed values of a principal from the index (bounded by its size). */
  async function sweep(principal: string): Promise<void> {
    const t = now();
    const ids: string[] = [];
    for await (
      const e of kv.list<unknown>({ prefix: ["memidx_doc", principal] }, {
        limit: limits.maxKeysPerPrincipal * 2,
      })
    ) ids.push(e.key[e.key.length - 1] as string);
    for (let i = 0; i < ids.length; i += 10) {
      const part = ids.slice(i, i + 10);
      const records = await kv.getMany<StoredRecord[]>(part.map((k) => memoryKey(principal, k)));
      for (let j = 0; j < part.length; j++) {
        if (!isLive(records[j].value, t)) await index.remove(principal, part[j]);
      }
    }
  }

  async function indexValue(principal: string, key: string, json: string): Promise<boolean> {
    const text = indexText(key, json);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await index.add(principal, { text, id: key, replace: "upsert", extract: false });
        return true;
      } catch (e) {
        if (!(e instanceof ContextError)) throw e;
        if (e.code !== "full" || attempt > 0) return false;
        await sweep(principal);
      }
    }
    return false;
  }

  function ttlOf(ttl: number | undefined): number {
    const seconds = ttl ?? limits.defaultTtlSeconds;
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > limits.maxTtlSeconds) {
      throw new MemoryError(
        "bad_ttl",
        `Cannot keep a value for ${seconds} seconds: ttl must be a whole number from 1 to ${limits.maxTtlSeconds}`,
      );
    }
    return seconds;
  }

  /** Live keys of a principal, counted by listing; expired records found are deleted. */
  async function recount(principal: string): Promise<number> {
    const t = now();
    let live = 0;
    const dead: Deno.KvKey[] = [];
    for await (const e of kv.list<StoredRecord>({ prefix: memoryPrefix(principal) })) {
      if (isLive(e.value, t)) live++;
      else dead.push(e.key);
    }
    for (let i = 0; i < dead.length; i += 100) {
      const op = kv.atomic();
      for (const k of dead.slice(i, i + 100)) op.delete(k);
      await op.commit();
    }
    for (const k of dead) await index.remove(principal, k[k.length - 1] as string);
    return live;
  }

  async function store(
    principal: string,
    input: { key: string; value: unknown; ttl?: number },
  ): Promise<StoreResult> {
    checkMemoryKey(input.key);
    const ttl = ttlOf(input.ttl);
    const { json, bytes, sha256 } = encodeJsonValue(input.value, limits.maxValueBytes, {
      missing: () => new MemoryError("bad_value", "Cannot store a memory without a value"),
      notJson: () => new MemoryError("bad_value", "Cannot store a value that is not JSON"),
      tooLarge: (bytes) =>
        new MemoryError(
          "too_large",
          `Cannot store ${bytes} bytes under "${input.key}": values are at most ${limits.maxValueBytes} bytes of JSON`,
        ),
    });
    const key = memoryKey(principal, input.key);
    const countKey = memoryCountKey(principal);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      await backoff(attempt);
      const [existing, count] = await kv.getMany<[StoredRecord, Deno.KvU64]>([key, countKey]);
      const t = now();
      const replaced = isLive(existing.value, t);
      let held = Number(count.value?.value ?? 0n);
      if (!replaced && held >= limits.maxKeysPerPrincipal) {
        // The count never falls on TTL expiry; before refusing, count what is really live.
        held = await recount(principal);
        if (held >= limits.maxKeysPerPrincipal) {
          throw new MemoryError(
            "full",
            `Cannot store "${input.key}": this principal already holds ${held} keys, the most allowed ` +
              `(${limits.maxKeysPerPrincipal}); expire some (memory_expire) or wait for their TTLs`,
          );
        }
        // Whether or not this correction wins a race, the loop reads the count again.
        await kv.atomic().check(count).set(countKey, new Deno.KvU64(BigInt(held))).commit();
        continue;
      }
      const record: StoredRecord = {
        json,
        sha256,
        bytes,
        stored_at_ms: t,
        expires_at_ms: t + ttl * 1000,
      };
      const op = kv.atomic().check(existing).check(count).set(key, record, {
        expireIn: ttl * 1000,
      });
      if (!replaced) op.set(countKey, new Deno.KvU64(BigInt(held + 1)));
      const res = await op.commit();
      if (res.ok) {
        const indexed = await indexValue(principal, input.key, json);
        return {
          key: input.key,
          ttl_s: ttl,
          expires_at: iso(record.expires_at_ms),
          value_sha256: sha256,
          bytes,
          replaced,
          indexed,
        };
      }
    }
    throw new Error(`Cannot store "${input.key}": the key kept changing under concurrent writes`);
  }

  async function retrieve(principal: string, keyName: string): Promise<MemoryEntry | undefined> {
    checkMemoryKey(keyName);
    const key = memoryKey(principal, keyName);
    const got = await kv.get<StoredRecord>(key);
    const t = now();
    if (got.value === null) return undefined;
    if (!isLive(got.value, t)) {
      // Past its own expiry though KV has not removed it yet: never returned, removed now.
      await kv.atomic().check(got).delete(key).commit();
      await index.remove(principal, keyName);
      return undefined;
    }
    const r = got.value;
    return {
      key: keyName,
      value: JSON.parse(r.json),
      value_sha256: r.sha256,
      bytes: r.bytes,
      stored_at: iso(r.stored_at_ms),
      expires_at: iso(r.expires_at_ms),
      ttl_remaining_s: Math.max(0, Math.ceil((r.expires_at_ms - t) / 1000)),
    };
  }

  async function search(
    principal: string,
    input: { prefix?: string; query?: string; limit?: number },
  ): Promise<SearchResult> {
    const prefix = input.prefix ?? "";
    if (prefix !== "") checkMemoryKey(prefix);
    const limit = Math.max(1, Math.min(100, Math.floor(input.limit ?? 20)));
    const query = input.query ?? "";
    if (query.trim() !== "") return await searchText(principal, prefix, query, limit);
    const base = memoryPrefix(principal);
    const selector: Deno.KvListSelector = prefix === ""
      ? { prefix: base }
      : { start: [...base, prefix], end: [...base, prefix + RANGE_END] };
    const t = now();
    const hits: MemoryHit[] = [];
    let scanned = 0;
    let truncated = false;
    // A principal holds at most maxKeysPerPrincipal live keys; the scan is bounded by that
    // (plus records KV has not yet expired).
    const iter = kv.list<StoredRecord>(selector, { limit: limits.maxKeysPerPrincipal * 2 });
    for await (const e of iter) {
      const name = e.key[e.key.length - 1] as string;
      if (!isLive(e.value, t) || !name.startsWith(prefix)) continue;
      scanned++;
      const r = e.value;
      if (hits.length === limit) {
        truncated = true;
        break;
      }
      hits.push({
        key: name,
        preview: r.json.length > PREVIEW_CHARS ? `${r.json.slice(0, PREVIEW_CHARS)}…` : r.json,
        value_sha256: r.sha256,
        bytes: r.bytes,
        expires_at: iso(r.expires_at_ms),
      });
    }
    return { hits, scanned, truncated };
  }

  /** A text search through the index: candidates best first, their records read in tens. */
  async function searchText(
    principal: string,
    prefix: string,
    query: string,
    limit: number,
  ): Promise<SearchResult> {
    const { ranked } = await index.rank(principal, { query, idPrefix: prefix });
    const t = now();
    const hits: MemoryHit[] = [];
    let scanned = 0;
    let i = 0;
    for (; i < ranked.length && hits.length < limit; i += 10) {
      const part = ranked.slice(i, Math.min(ranked.length, i + 10, i + (limit - hits.length) + 2));
      const records = await kv.getMany<StoredRecord[]>(
        part.map((r) => memoryKey(principal, r.docId)),
      );
      scanned += part.length;
      for (let j = 0; j < part.length; j++) {
        const r = records[j].value;
        if (!isLive(r, t)) {
          // Lapsed by its TTL: it leaves the index now.
          await index.remove(principal, part[j].docId);
          continue;
        }
        if (hits.length === limit) break;
        hits.push({
          key: part[j].docId,
          preview: r.json.length > PREVIEW_CHARS ? `${r.json.slice(0, PREVIEW_CHARS)}…` : r.json,
          value_sha256: r.sha256,
          bytes: r.bytes,
          expires_at: iso(r.expires_at_ms),
          score: Math.round(part[j].score * 1e6) / 1e6,
        });
      }
      i = i - 10 + part.length;
    }
    return { hits, scanned, truncated: hits.length === limit && i < ranked.length };
  }

  async function expire(
    principal: string,
    input: { key: string; ttl?: number },
  ): Promise<{ key: string; found: boolean; expires_at?: string }> {
    checkMemoryKey(input.key);
    const key = memoryKey(principal, input.key);
    const countKey = memoryCountKey(principal);
    const ttl = input.ttl === undefined || input.ttl === 0 ? 0 : ttlOf(input.ttl);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      await backoff(attempt);
      const [existing, count] = await kv.getMany<[StoredRecord, Deno.KvU64]>([key, countKey]);
      const t = now();
      if (!isLive(existing.value, t)) return { key: input.key, found: false };
      const op = kv.atomic().check(existing).check(count);
      let expiresAt: number | undefined;
      if (ttl === 0) {
        op.delete(key);
        const held = Number(count.value?.value ?? 0n);
        op.set(countKey, new Deno.KvU64(BigInt(Math.max(0, held - 1))));
      } else {
        expiresAt = t + ttl * 1000;
        op.set(key, { ...existing.value, expires_at_ms: expiresAt }, { expireIn: ttl * 1000 });
      }
      if ((await op.commit()).ok) {
        if (ttl === 0) await index.remove(principal, input.key);
        return {
          key: input.key,
          found: true,
          ...(expiresAt !== undefined ? { expires_at: iso(expiresAt) } : {}),
        };
      }
    }
    throw new Error(`Cannot expire "${input.key}": the key kept changing under concurrent writes`);
  }

  return { limits, store, retrieve, search, expire };
}
