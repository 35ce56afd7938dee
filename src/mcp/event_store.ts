/**
 * SSE resumability backed by Deno KV: every event sent on a session's streams
 * is kept (bounded per session, expiring with the session) so a client that
 * reconnects with `Last-Event-ID` — to this process or another sharing the KV —
 * receives what it missed.
 *
 * Events are written behind the response, never in front of it: `storeEvent`
 * queues the write on the group-commit writer and returns at once, so a call
 * waits for no event commit (a sealed call waits only for its vault entry).
 * The asymmetry is deliberate: an event lost in a crash costs the client one
 * retry of its request, an entry lost would cost the audit. What is queued and
 * not yet committed is bounded in bytes per process (`EventWriteBudget`); past
 * the bound an event is not stored at all (counted in `dropped`) rather than
 * making anyone wait. A replay from this process first waits for this
 * session's queued writes, so it sees every event this process sent.
 *
 * An event written to a stream that is still connected need not be stored at
 * all (`sent`): it is kept in memory, bounded per process, and written to KV
 * only if its stream breaks before it ends (`streamBroken`). A call whose
 * answer reached its connection then costs no redaction, no serialisation
 * and no KV write for its event; a replay from this process still finds it,
 * and a stream cut off mid-call is stored as before, for any process to
 * replay.
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server";
import { redacted } from "../governance/mod.ts";
import {
  type BatchMutation,
  type BatchWriter,
  eventKey,
  eventSessionPrefix,
  KV_MAX_VALUE_BYTES,
} from "../store/mod.ts";

interface StoredEvent {
  /** Stream id the event belongs to. */
  readonly s: string;
  /** The JSON-RPC message, serialized (chunked when larger than one KV value). */
  readonly m?: string;
  /** Number of chunks when the message did not fit in one value. */
  readonly parts?: number;
}

/** Event ids are `<streamId>~<seq>`; both parts are restricted so a header cannot smuggle anything. */
const EVENT_ID = /^([A-Za-z0-9_-]{1,64})~(\d{15}-\d{9}-[a-z0-9]{1,12})$/;
const CHUNK_CHARS = 16 * 1024; // UTF-16 chars; ≤ 48 KiB UTF-8 even for 3-byte characters.

/** The SDK's priming event: an empty message, sent first on a response stream for its id. */
function isPriming(message: JSONRPCMessage): boolean {
  for (const _ in message) return false;
  return true;
}

/** Default bound on event bytes queued and not yet committed, per process. */
export const DEFAULT_EVENT_QUEUE_BYTES = 8 * 1024 * 1024;
/** Default bound on the bytes of events kept in memory only, per process. */
const DEFAULT_RECENT_BYTES = 8 * 1024 * 1024;
/** And on their number (many tiny answers hold objects, not only bytes). */
const MAX_RECENT_EVENTS = 4096;
/** A same-process replay finds an event kept in memory for this long after it was sent. */
const RECENT_MAX_AGE_MS = 5 * 60_000;

/**
 * A first-in first-out list whose `shift` is O(1): `Array#shift` moves every item, and the
 * events kept in memory are shifted once a call (thousands of items).
 */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  /** The item `i` places from the front. */
  at(i: number): T {
    return this.#items[this.#head + i];
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
  /** Keeps only the items `keep` accepts, in order. */
  retain(keep: (item: T) => boolean): void {
    this.#items = this.#items.slice(this.#head).filter(keep);
    this.#head = 0;
  }
  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i];
  }
}

/** The process-wide bound on event bytes queued behind responses, shared by every session's store. */
export class EventWriteBudget {
  readonly maxBytes: number;
  /** Bytes queued and not yet committed (or failed). */
  pendingBytes = 0;
  /** Events not stored because the queue was full. */
  dropped = 0;
  /** Event writes whose commit failed (the events are lost; a client resuming past them retries). */
  failed = 0;

  constructor(maxBytes = DEFAULT_EVENT_QUEUE_BYTES) {
    this.maxBytes = maxBytes;
  }

  /** Reserves `bytes` if they fit under the bound. */
  take(bytes: number): boolean {
    if (this.pendingBytes + bytes > this.maxBytes) {
      this.dropped++;
      return false;
    }
    this.pendingBytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.pendingBytes -= bytes;
  }

  /** Bound on the bytes of events kept in memory only (see `KvEventStore.sent`). */
  readonly maxRecentBytes = DEFAULT_RECENT_BYTES;
  /** Bytes of the events kept in memory only, every session's. */
  recentBytes = 0;
  /** Those events, oldest first, across sessions: the oldest give way past the bound. */
  readonly #recent = new Fifo<Unstored>();

  /** Keeps `event` in memory, forgetting the oldest kept events past the bound. */
  keep(event: Unstored): void {
    this.#recent.push(event);
    this.recentBytes += event.bytes;
    while (this.recentBytes > this.maxRecentBytes || this.#recent.length > MAX_RECENT_EVENTS) {
      this.forget(this.#recent.shift()!);
    }
  }

  /** Drops `event` from memory (forgotten, stored, or past its age). */
  forget(event: Unstored): void {
    if (event.gone) return;
    event.gone = true;
    this.recentBytes -= event.bytes;
  }
}

/**
 * An event sent on a live stream and kept in memory only. `gone` once forgotten or stored. It is
 * kept as the JSON text the stream was sent, not as the message: the message is an object graph
 * several times the size of its text (and often the whole call's result), and thousands are kept.
 */
interface Unstored {
  readonly streamId: string;
  readonly seq: string;
  readonly json: string;
  readonly bytes: number;
  readonly at: number;
  gone: boolean;
}

/** Options of the KV event store. */
export interface KvEventStoreOptions {
  readonly writer: BatchWriter;
  readonly maxEvents: number;
  /**
   * Bytes of stored events one session keeps (issue 9 §6): past it the oldest events are
   * deleted, chunks and all; an event larger than the whole bound is not stored. Unbounded
   * when absent.
   */
  readonly maxBytes?: number;
  readonly ttlMs: number;
  readonly processTag: string;
  /** Shared bound on queued event bytes; a private default-sized one when absent. */
  readonly budget?: EventWriteBudget;
}

/** An EventStore for one session. `suspend()` is used while replaying `initialize` on restore. */
export class KvEventStore implements EventStore {
  #kv: Deno.Kv;
  #sessionId: string;
  #options: KvEventStoreOptions;
  #counter = 0;
  #sincePrune = 0;
  #suspended = false;
  #budget: EventWriteBudget;
  /** Events this store wrote, oldest first (≤ maxEvents, ≤ maxBytes): each new one retires the oldest. */
  #written: { key: Deno.KvKey; bytes: number; parts: number }[] = [];
  /** Bytes of the events in #written. */
  #writtenBytes = 0;
  /** Events not stored because one alone is larger than the session's byte bound. */
  oversized = 0;
  /** Writes queued and not yet settled. */
  #pending = new Set<Promise<void>>();
  /** This session's events kept in memory only, oldest first (see `sent`). */
  #unstored = new Fifo<Unstored>();

  constructor(kv: Deno.Kv, options: KvEventStoreOptions & { sessionId: string }) {
    this.#kv = kv;
    this.#sessionId = options.sessionId;
    this.#options = options;
    this.#budget = options.budget ?? new EventWriteBudget();
  }

  /** Resolves once every event write this store queued so far has settled. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #track(write: Promise<void>, bytes: number): void {
    const settled = write.then(
      () => {},
      () => {
        this.#budget.failed++;
      },
    ).finally(() => {
      this.#budget.give(bytes);
      this.#pending.delete(settled);
    });
    this.#pending.add(settled);
  }

  /** Deletions (head and chunks) keeping this store's own events within both bounds once `key` is added. */
  #retire(key: Deno.KvKey, bytes: number, parts: number): BatchMutation[] {
    this.#written.push({ key, bytes, parts });
    this.#writtenBytes += bytes;
    const maxBytes = this.#options.maxBytes ?? Infinity;
    const out: BatchMutation[] = [];
    while (
      this.#written.length > this.#options.maxEvents ||
      (this.#writtenBytes > maxBytes && this.#written.length > 1)
    ) {
      const old = this.#written.shift()!;
      this.#writtenBytes -= old.bytes;
      out.push({ type: "delete", key: old.key });
      for (let i = 0; i < old.parts; i++) out.push({ type: "delete", key: [...old.key, i] });
    }
    return out;
  }

  /** Queues `first` with deletions, in commits the KV accepts (≤ 500 mutations each). */
  async #writeWith(first: BatchMutation[], deletions: BatchMutation[]): Promise<void> {
    const room = Math.max(0, 500 - first.length);
    await this.#options.writer.write([...first, ...deletions.slice(0, room)]);
    for (let i = room; i < deletions.length; i += 500) {
      await this.#options.writer.write(deletions.slice(i, i + 500));
    }
  }

  /** While suspended, events are not stored (the restore handshake's replies are discarded). */
  suspend(value: boolean): void {
    this.#suspended = value;
  }

  #nextSeq(): string {
    this.#counter = (this.#counter + 1) % 1_000_000_000;
    return `${String(Date.now()).padStart(15, "0")}-${
      String(this.#counter).padStart(9, "0")
    }-${this.#options.processTag}`;
  }

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const seq = this.#nextSeq();
    const eventId = `${streamId}~${seq}`;
    if (this.#suspended) return Promise.resolve(eventId);
    // A priming event (the SDK's empty message opening every SSE response) is only an id to
    // resume after: the id orders after everything stored before it, a replay lists by order and
    // skips priming events anyway, so it is never written — half the writes of a call.
    if (isPriming(message)) return Promise.resolve(eventId);
    this.#store(streamId, seq, message);
    return Promise.resolve(eventId);
  }

  /**
   * The id of an event about to be written to `streamId` while that stream is connected, `json`
   * its serialised message: the event is kept in memory only (bounded per process, for a replay
   * from this process) and stored in KV only if `streamBroken(streamId)` says the stream was cut
   * off. An event the process had to forget is one a resuming client retries for.
   */
  sent(streamId: string, json: string): string {
    const seq = this.#nextSeq();
    const eventId = `${streamId}~${seq}`;
    if (this.#suspended || json === "{}") return eventId;
    const event: Unstored = {
      streamId,
      seq,
      json,
      bytes: 2 * json.length + 128,
      at: Date.now(),
      gone: false,
    };
    this.#unstored.push(event);
    this.#budget.keep(event);
    this.#trimUnstored();
    return eventId;
  }

  /** `streamId`'s connection ended before the stream did: its events kept in memory are stored. */
  streamBroken(streamId: string): void {
    for (const event of this.#unstored) {
      if (event.gone || event.streamId !== streamId) continue;
      this.#budget.forget(event);
      this.#store(event.streamId, event.seq, JSON.parse(event.json));
    }
    this.#unstored.retain((e) => !e.gone);
  }

  /**
   * Drops, from the front (oldest first), the forgotten, the too old, and what is past the
   * session's own event bound: O(dropped) a call. The process bound forgets the oldest across
   * sessions, so a session's forgotten events are at its front too.
   */
  #trimUnstored(): void {
    const oldest = Date.now() - RECENT_MAX_AGE_MS;
    const u = this.#unstored;
    while (
      u.length > 0 &&
      (u.at(0).gone || u.at(0).at < oldest || u.length > this.#options.maxEvents)
    ) this.#budget.forget(u.shift()!);
  }

  /** Queues `message` as event `seq` of `streamId`: redacted, bounded, behind the response. */
  #store(streamId: string, seq: string, message: JSONRPCMessage): void {
    // A stored event outlives the response it was part of: it is kept redacted with the vault's
    // detectors (a replay after Last-Event-ID gets the redacted copy; the live stream is untouched).
    let kept = redacted(message) as Record<string, unknown>;
    if ("id" in message && kept !== message && kept.id !== message.id) {
      kept = { ...kept, id: message.id }; // the JSON-RPC id is an id, never a secret
    }
    const json = JSON.stringify(kept);
    const bytes = json.length + 128;
    if (bytes > (this.#options.maxBytes ?? Infinity)) {
      this.oversized++;
      return;
    }
    // Past the bound the event is not kept: resuming past it means one retry, never a wait.
    if (!this.#budget.take(bytes)) return;
    const expireIn = this.#options.ttlMs + 60_000;
    const key = eventKey(this.#sessionId, seq);
    const writer = this.#options.writer;
    if (json.length * 3 < KV_MAX_VALUE_BYTES - 512) {
      this.#track(
        this.#writeWith(
          // Sized from the JSON just built (two bytes a unit at most), not by serialising it again.
          [{
            type: "set",
            key,
            value: { s: streamId, m: json },
            expireIn,
            valueBytes: 2 * (json.length + streamId.length) + 16,
          }],
          this.#retire(key, bytes, 0),
        ),
        bytes,
      );
    } else {
      const retire = this.#retire(key, bytes, Math.ceil(json.length / CHUNK_CHARS));
      this.#track(
        (async () => {
          const parts: string[] = [];
          for (let i = 0; i < json.length; i += CHUNK_CHARS) {
            parts.push(json.slice(i, i + CHUNK_CHARS));
          }
          // Chunks are written before the head so a reader never sees a head without its body.
          for (let i = 0; i < parts.length; i += 10) {
            await writer.write(
              parts.slice(i, i + 10).map((p, j) => ({
                type: "set" as const,
                key: [...key, i + j],
                value: p,
                expireIn,
              })),
            );
          }
          await this.#writeWith(
            [{ type: "set", key, value: { s: streamId, parts: parts.length }, expireIn }],
            retire,
          );
        })(),
        bytes,
      );
    }
    // Events other processes wrote for this session (it moved here) are pruned by listing, rarely.
    if (++this.#sincePrune >= Math.max(10, this.#options.maxEvents)) {
      this.#sincePrune = 0;
      this.#track(Promise.allSettled([...this.#pending]).then(() => this.#prune()), 0);
    }
  }

  /** Drops the oldest events beyond the per-session bound. */
  async #prune(): Promise<void> {
    const keys: Deno.KvKey[] = [];
    for await (const e of this.#kv.list({ prefix: eventSessionPrefix(this.#sessionId) })) {
      if (e.key.length === 3) keys.push(e.key);
    }
    const excess = keys.length - this.#options.maxEvents;
    if (excess <= 0) return;
    const deletions = [];
    for (const key of keys.slice(0, excess)) {
      deletions.push({ type: "delete" as const, key });
    }
    for (let i = 0; i < deletions.length; i += 500) {
      await this.#options.writer.write(deletions.slice(i, i + 500));
    }
    // Chunk keys of deleted events expire with the session; they are never read again.
  }

  getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return Promise.resolve(EVENT_ID.exec(eventId)?.[1]);
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const match = EVENT_ID.exec(lastEventId);
    if (!match) throw new RangeError(`Cannot replay events: malformed event id`);
    // Everything this process sent on the session is committed before it is looked for.
    await this.flush();
    const [, streamId, seq] = match;
    this.#trimUnstored();
    // Events kept in memory only, sent in order among the stored ones.
    const kept = [...this.#unstored].filter((e) =>
      !e.gone && e.streamId === streamId && e.seq > seq
    );
    let k = 0;
    const sendKeptBefore = async (until: string | undefined) => {
      while (k < kept.length && (until === undefined || kept[k].seq < until)) {
        const e = kept[k++];
        await send(`${streamId}~${e.seq}`, JSON.parse(e.json));
      }
      // Stored meanwhile (its stream broke during this replay): sent once, from KV.
      if (k < kept.length && kept[k].seq === until) k++;
    };
    const prefix = eventSessionPrefix(this.#sessionId);
    const iter = this.#kv.list<StoredEvent | string>({ prefix, start: [...prefix, seq] });
    for await (const e of iter) {
      if (e.key.length !== 3) continue;
      const eventSeq = e.key[2] as string;
      if (eventSeq <= seq) continue;
      const ev = e.value as StoredEvent;
      if (ev.s !== streamId) continue;
      let json = ev.m;
      if (json === undefined && ev.parts !== undefined) {
        const chunks: string[] = [];
        for await (const c of this.#kv.list<string>({ prefix: e.key })) chunks.push(c.value);
        if (chunks.length !== ev.parts) continue; // pruned mid-way: skip rather than send garbage
        json = chunks.join("");
      }
      if (json === undefined) continue;
      const message = JSON.parse(json);
      // Priming events written before they stopped being stored carry no message.
      if (isPriming(message)) continue;
      await sendKeptBefore(eventSeq);
      await send(`${streamId}~${eventSeq}`, message);
    }
    await sendKeptBefore(undefined);
    return streamId;
  }
}
