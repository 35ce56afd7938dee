/**
 * MCP session records in Deno KV. The record keeps the client's original
 * `initialize` params so any process sharing the KV can rebuild the session's
 * server after a restart, without the client re-initializing. What the client
 * sent is kept redacted (F6's detectors), as everything retained is.
 */
import { redact } from "../governance/mod.ts";
import { sessionKey, sessionPrefix, withKvRetry } from "../store/mod.ts";

/** Which surface a session arrived on. */
export type SessionTransportKind = "streamable-http" | "sse" | "stdio";

/** What Warden keeps about one MCP session. */
export interface SessionRecord {
  readonly id: string;
  readonly transport: SessionTransportKind;
  readonly protocolVersion: string;
  readonly clientInfo: { name?: string; version?: string } & Record<string, unknown>;
  readonly capabilities: Record<string, unknown>;
  /** The params of the client's `initialize` request, replayed to rebuild the session. */
  readonly initializeParams: Record<string, unknown>;
  readonly principal: string;
  /** Governance stage the session last reached (000 until the chain starts). */
  readonly stage: string;
  readonly createdAt: string;
  /** Unix ms of the last request seen (refreshed at most every `touchEveryMs`). */
  readonly lastSeenMs: number;
  /** The level the client chose with `logging/setLevel`, kept so a rebuilt session honours it. */
  readonly logLevel?: string;
}

/**
 * How often a live session's stored last-seen is refreshed: often enough to
 * be close to the truth, rarely enough to stay off the per-request path.
 */
export function touchIntervalMs(ttlMs: number): number {
  return Math.min(60_000, Math.max(1, ttlMs / 10));
}

/** KV values are limited to 64 KiB; keep headroom for the rest of the record. */
export const MAX_SESSION_RECORD_BYTES = 60 * 1024;

/** Raised when a client's initialize params would not fit in a session record. */
export class SessionTooLargeError extends Error {
  override name = "SessionTooLargeError";
}

/** Session persistence with idle expiry. */
export interface SessionStore {
  readonly ttlMs: number;
  /** Stores a new session. */
  create(record: SessionRecord): Promise<void>;
  /** The record, or null when unknown, ended or idle past the TTL. */
  get(id: string, nowMs?: number): Promise<SessionRecord | null>;
  /** Refreshes last-seen (and the KV expiry) of a live session. */
  touch(record: SessionRecord, nowMs?: number): Promise<SessionRecord>;
  /** Records the client's logging level on a live session (no-op once it has ended). */
  setLogLevel(id: string, level: string): Promise<void>;
  delete(id: string): Promise<void>;
  list(limit?: number): Promise<SessionRecord[]>;
  count(): Promise<number>;
}

/**
 * Creates the KV-backed session store. Records carry `expireIn` as a backstop;
 * `get` also checks `lastSeenMs` itself because KV deletes expired keys lazily.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSessionStore } from "./session_store.ts";
 * const kv = await Deno.openKv(":memory:");
 * const sessions = createSessionStore(kv, { ttlMs: 60_000 });
 * const now = Date.now();
 * await sessions.create({
 *   id: "s1",
 *   transport: "streamable-http",
 *   protocolVersion: "2025-11-25",
 *   clientInfo: { name: "example" },
 *   capabilities: {},
 *   initializeParams: {},
 *   principal: "alice",
 *   stage: "000",
 *   createdAt: new Date(now).toISOString(),
 *   lastSeenMs: now,
 * });
 * assert.equal((await sessions.get("s1", now))?.principal, "alice");
 * assert.equal(await sessions.get("s1", now + 3_600_000), null); // idle past the TTL
 * assert.equal(await sessions.get("nope"), null);
 * kv.close();
 * ```
 */
export function createSessionStore(kv: Deno.Kv, options: { ttlMs: number }): SessionStore {
  const ttlMs = options.ttlMs;
  // Expiry slack so a record is never dropped by KV before our own idle check says so.
  const expireIn = ttlMs + 60_000;
  // A stored last-seen may lag the real last request by up to one refresh
  // interval; counting that in means a session is never expired early (it may
  // go up to one interval late instead).
  const graceMs = touchIntervalMs(ttlMs);

  function isExpired(record: SessionRecord, nowMs: number): boolean {
    return nowMs - record.lastSeenMs > ttlMs + graceMs;
  }

  return {
    ttlMs,
    async create(given) {
      // The client's info and initialize params are its own text, kept for the session's life:
      // redacted with the vault's detectors like everything else Warden retains.
      const record: SessionRecord = {
        ...given,
        clientInfo: redact(given.clientInfo).value as SessionRecord["clientInfo"],
        initializeParams: redact(given.initializeParams).value as Record<string, unknown>,
      };
      const size = new TextEncoder().encode(JSON.stringify(record)).length;
      if (size > MAX_SESSION_RECORD_BYTES) {
        throw new SessionTooLargeError(
          `Cannot create session: initialize params are ${size} bytes, over the ${MAX_SESSION_RECORD_BYTES}-byte limit`,
        );
      }
      await withKvRetry(() => kv.set(sessionKey(record.id), record, { expireIn }));
    },
    async get(id, nowMs = Date.now()) {
      const entry = await kv.get<SessionRecord>(sessionKey(id));
      if (entry.value === null) return null;
      if (isExpired(entry.value, nowMs)) {
        await withKvRetry(() => kv.delete(sessionKey(id)));
        return null;
      }
      return entry.value;
    },
    async touch(record, nowMs = Date.now()) {
      let next: SessionRecord = { ...record, lastSeenMs: nowMs };
      // Only refresh a record that still exists: a DELETE from another process must win.
      // The stored record is the base, so what another process recorded (a log level) stays.
      const key = sessionKey(record.id);
      await withKvRetry(async () => {
        const current = await kv.get<SessionRecord>(key);
        if (current.value === null) return;
        next = { ...current.value, lastSeenMs: Math.max(nowMs, current.value.lastSeenMs) };
        await kv.atomic().check(current).set(key, next, { expireIn }).commit();
      });
      return next;
    },
    async setLogLevel(id, level) {
      const key = sessionKey(id);
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = await withKvRetry(() => kv.get<SessionRecord>(key));
        if (current.value === null) return;
        const next = { ...current.value, logLevel: level };
        const result = await withKvRetry(() =>
          kv.atomic().check(current).set(key, next, { expireIn }).commit()
        );
        if (result.ok) return;
      }
      throw new Error(`Cannot record the log level of session ${id}: it kept changing`);
    },
    async delete(id) {
      await withKvRetry(() => kv.delete(sessionKey(id)));
    },
    async list(limit = 100) {
      const out: SessionRecord[] = [];
      const now = Date.now();
      for await (const e of kv.list<SessionRecord>({ prefix: sessionPrefix() }, { limit })) {
        if (!isExpired(e.value, now)) out.push(e.value);
      }
      return out;
    },
    async count() {
      let n = 0;
      const now = Date.now();
      for await (const e of kv.list<SessionRecord>({ prefix: sessionPrefix() })) {
        if (!isExpired(e.value, now)) n++;
      }
      return n;
    },
  };
}
