/**
 * Streamable HTTP sessions: one SDK transport and one McpServer per session,
 * the session record in KV, and the rebuild of a session this process does not
 * hold (after a restart, or when another process created it) by replaying the
 * client's stored `initialize` into a fresh transport.
 */
import {
  isInitializeRequest,
  type JSONRPCMessage,
  LATEST_PROTOCOL_VERSION,
  type McpServer,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import { type SessionBinding, sessionToolCall } from "./server.ts";
import { answerDirect, plainSessionCall } from "./session_direct.ts";
import type { Logger } from "../lib/mod.ts";
import { capUnsentResponse } from "../net/mod.ts";
import { type BatchWriter, sharedCapGenKey, sharedCapKey, withKvRetry } from "../store/mod.ts";
import { EventWriteBudget, KvEventStore } from "./event_store.ts";
import {
  MAX_SESSION_RECORD_BYTES,
  type SessionRecord,
  type SessionStore,
  touchIntervalMs,
} from "./session_store.ts";

/** Protocol versions negotiated on `/mcp` (the 2024-11-05 protocol belongs to `/sse`). */
export const STREAMABLE_PROTOCOL_VERSIONS: readonly string[] = [
  "2025-11-25",
  "2025-06-18",
  "2025-03-26",
];

/**
 * The SDK transport with one test hook. SDK 1.32.2 kept a request's `_streamMapping` entry
 * after its JSON-mode response was sent (typescript-sdk#2559, ~2 KB per call) and Warden pruned
 * them here; v2 removes them itself, so only the count the leak test watches remains.
 */
class WardenStreamableTransport extends WebStandardStreamableHTTPServerTransport {
  /**
   * Ids of the client's requests still being answered. A second request reusing one of them
   * would take over the first's stream entry and leave both unanswered, so it is refused.
   */
  readonly inflight = new Set<string>();

  override send(
    message: JSONRPCMessage,
    options?: { relatedRequestId?: string | number },
  ): Promise<void> {
    const m = message as { id?: unknown; result?: unknown; error?: unknown };
    if (("result" in m || "error" in m) && m.id !== undefined && m.id !== null) {
      this.inflight.delete(idKey(m.id));
    }
    return super.send(message, options);
  }

  /** Number of JSON-mode request entries held (the leak test watches this; open GET streams are not counted). */
  get heldStreams(): number {
    let n = 0;
    for (
      const entry of (this["_streamMapping"] as Map<string, { resolveJson?: unknown }>).values()
    ) {
      if (entry.resolveJson) n++;
    }
    return n;
  }
}

interface LiveSession {
  readonly transport: WardenStreamableTransport;
  readonly server: McpServer;
  readonly events?: KvEventStore;
  record: SessionRecord;
  lastSeenMs: number;
  checkedMs: number;
  /** The client IP that opened (or rebuilt) the session here, for the per-IP cap. */
  readonly clientIp?: string;
  /** Opened here (not rebuilt from KV): this process counts it in the shared caps. */
  readonly opened?: boolean;
  /** Direct-path calls in progress, by request id key (cancelled by the client or the end). */
  direct?: Map<string, AbortController>;
}

/** Caps on the sessions one process holds. */
export interface SessionCaps {
  readonly total: number;
  /** Per authenticated principal (anonymous callers are bounded per IP). */
  readonly perPrincipal: number;
  readonly perIp: number;
  /**
   * How long this process's published counts outlive it (a crashed process's sessions stop
   * counting then); at least twice the interval `reap` is called at. Default 120 s.
   */
  readonly sharedStaleMs?: number;
}

/** Dependencies of the Streamable HTTP session manager. */
export interface StreamableOptions {
  readonly kv: Deno.Kv;
  readonly sessions: SessionStore;
  readonly writer: BatchWriter;
  readonly createServer: (binding: SessionBinding) => McpServer;
  readonly responseMode: "sse" | "json";
  readonly maxEventsPerSession: number;
  /** Bytes of events kept per session (the oldest dropped first); unbounded when absent. */
  readonly maxEventBytesPerSession?: number;
  readonly logger: Logger;
  /** Session caps; unbounded when absent (tests that build the manager alone). */
  readonly caps?: SessionCaps;
  /** How stale this process's view of a session may get before KV is read again. */
  readonly recheckMs?: number;
  /** Minimum interval between last-seen writes for one session. */
  readonly touchEveryMs?: number;
  /**
   * The direct path for a plain `tools/call` (see session_direct.ts): `serves` names the tools
   * it may answer (Warden's own, not fixtures or upstream tools). Absent: all goes to the SDK.
   */
  readonly direct?: { readonly serves: (name: string) => boolean };
}

/**
 * A GET stream (the session's standalone stream, or a `Last-Event-ID` replay) lives as long as
 * its client holds it, and the SDK queues every event for it whether the client reads or not:
 * past 8 MiB unsent it is dropped (its connection closed; the session lives on, its events stay
 * in the store for a `Last-Event-ID` resumption, and a new GET may open).
 */
function capStandaloneStream(res: Response, sessionId: string, log: Logger): Response {
  if (!res.body || !(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    return res;
  }
  return capUnsentResponse(res, {
    onDrop: (unsentBytes) =>
      log.warn("GET stream dropped: the client is not reading", {
        session: sessionId,
        unsentBytes,
      }),
  });
}

/** What a request brings besides itself. */
export interface StreamableRequestContext {
  readonly parsedBody?: unknown;
  readonly principal: string;
  readonly clientIp?: string;
}

/** Handles `/mcp` requests for every session of this process. */
export interface StreamableManager {
  handle(req: Request, ctx: StreamableRequestContext): Promise<Response>;
  /** Sessions held in memory by this process. */
  readonly liveCount: number;
  /** Closes idle sessions; returns how many were closed. */
  reap(nowMs?: number): Promise<number>;
  /** `tools/call` requests answered on the direct path (without the SDK's dispatch). */
  readonly directCalls: number;
  /** Test hook: per-request stream entries held by one session's transport. */
  heldStreams(sessionId: string): number | undefined;
  close(): Promise<void>;
}

function jsonRpcError(status: number, code: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** A request id as a set key: 42 and "42" are different ids. */
function idKey(id: unknown): string {
  return `${typeof id}:${String(id)}`;
}

/** Most requests of one session in flight at once. */
const MAX_INFLIGHT = 1000;

/**
 * Refuses a POST whose requests reuse an id still in flight in the session (or repeat one
 * within the batch); otherwise marks the ids in flight until their responses are sent.
 */
function claimIds(
  transport: WardenStreamableTransport,
  body: unknown,
  onCancelled?: (key: string) => void,
): Response | string[] {
  const messages = Array.isArray(body) ? body : [body];
  const keys: string[] = [];
  for (const m of messages) {
    const msg = m as { id?: unknown; method?: unknown; params?: unknown } | null;
    if (msg === null || typeof msg !== "object" || typeof msg.method !== "string") continue;
    // A cancelled request gets no response: its id is free again.
    const cancelled = (msg.params as { requestId?: unknown } | undefined)?.requestId;
    if (msg.method === "notifications/cancelled" && cancelled !== undefined) {
      transport.inflight.delete(idKey(cancelled));
      onCancelled?.(idKey(cancelled));
    }
    if (typeof msg.id !== "string" && typeof msg.id !== "number") continue;
    const key = idKey(msg.id);
    if (transport.inflight.has(key) || keys.includes(key)) {
      return new Response(
        JSON.stringify({
          jsonrpc: "2.0",
          error: {
            code: -32600,
            message: `Invalid Request: id ${
              JSON.stringify(msg.id).slice(0, 80)
            } is already used by a request in progress in this session; use a new id`,
          },
          id: null,
        }),
        { status: 400, headers: { "content-type": "application/json" } },
      );
    }
    keys.push(key);
  }
  if (transport.inflight.size + keys.length > MAX_INFLIGHT) {
    return jsonRpcError(
      429,
      -32000,
      `Too many requests in progress in this session (at most ${MAX_INFLIGHT}); wait for answers`,
    );
  }
  for (const key of keys) transport.inflight.add(key);
  return keys;
}

const SESSION_ID = /^[A-Za-z0-9-]{8,64}$/;
/** Reservation attempts of one initialize while other processes reserve at the same time. */
const MAX_RESERVE_ATTEMPTS = 50;

/** An initialize in progress: its cap keys, and whether it holds a place in the shared caps. */
interface OpeningSlot {
  readonly sessionId: string;
  readonly principal: string;
  readonly clientIp?: string;
  reserved?: boolean;
}
const processTag = crypto.randomUUID().slice(0, 8);

/**
 * Creates the manager. Sessions are created on `initialize`, recorded in KV,
 * touched on use, and rebuilt from KV when a request names a session this
 * process does not hold.
 */
// Kept whole: its closures share the live-session map and the restoring/opening/publishing sets
// that keep a session from being rebuilt twice; split, that state would have to be exported.
export function createStreamableManager(options: StreamableOptions): StreamableManager {
  const live = new Map<string, LiveSession>();
  const restoring = new Map<string, Promise<LiveSession | null>>();
  /** Sessions between their cap check and their record (an initialize in progress). */
  const opening: OpeningSlot[] = [];
  const recheckMs = options.recheckMs ?? 1000;
  const touchEveryMs = options.touchEveryMs ?? touchIntervalMs(options.sessions.ttlMs);
  const log = options.logger;
  const jsonMode = options.responseMode === "json";
  const eventBudget = new EventWriteBudget();

  function newTransport(
    sessionId: string,
    onInitialized: (id: string) => Promise<void> | void,
  ): { transport: WardenStreamableTransport; events?: KvEventStore } {
    const events = jsonMode ? undefined : new KvEventStore(options.kv, {
      sessionId,
      writer: options.writer,
      maxEvents: options.maxEventsPerSession,
      ...(options.maxEventBytesPerSession !== undefined
        ? { maxBytes: options.maxEventBytesPerSession }
        : {}),
      ttlMs: options.sessions.ttlMs,
      processTag,
      budget: eventBudget,
    });
    const transport = new WardenStreamableTransport({
      sessionIdGenerator: () => sessionId,
      enableJsonResponse: jsonMode,
      eventStore: events,
      onsessioninitialized: onInitialized,
      onsessionclosed: async (id: string) => {
        const opened = live.get(id)?.opened;
        live.delete(id);
        // Published before DELETE is answered: a client that ends a session here and opens one
        // at another process at once must find its place free there.
        if (opened) await publishCounts();
        await options.sessions.delete(id);
        log.info("session ended", { session: id });
      },
    });
    transport.onerror = (e: Error) => log.debug("transport error", { error: e.message });
    return { transport, events };
  }

  // ---- Caps shared by every process on the KV. Each process publishes how many sessions it
  // opened (or has reserved a place for), in total and per principal and IP, under its own
  // instance id (expiring, so a dead process stops counting). A new session reserves its place
  // before it is created: one commit raises this process's counts and changes a generation key
  // per cap, checked against the generation read before the others' counts were summed — so two
  // processes reserving at once cannot both pass on the same sum (the second's commit fails and
  // it sums again). A count goes up only through a reservation; a publication only lowers or
  // refreshes counts. Sessions rebuilt from KV are counted by their opener only.
  const instance = crypto.randomUUID();
  const sharedStaleMs = options.caps?.sharedStaleMs ?? 120_000;
  let published = new Map<string, number>();
  let publishing: Promise<void> | undefined;
  let republish = false;
  /** Reservations and publications of this process's counts, one at a time. */
  let capQueue: Promise<unknown> = Promise.resolve();

  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = capQueue.then(fn, fn);
    capQueue = run.catch(() => {});
    return run;
  }

  /** The cap keys one session of `principal` from `clientIp` counts under. */
  function capKeysOf(principal: string, clientIp: string | undefined): unknown[][] {
    const keys: unknown[][] = [["total"]];
    if (principal !== "anonymous") keys.push(["principal", principal]);
    if (clientIp !== undefined) keys.push(["ip", clientIp]);
    return keys;
  }

  /**
   * This process's counts of the sessions it opened and those it reserved a place for that are
   * not live yet, keyed as published.
   */
  function ownCounts(): Map<string, number> {
    const counts = new Map<string, number>([[JSON.stringify(["total"]), 0]]);
    const add = (principal: string, clientIp: string | undefined) => {
      for (const key of capKeysOf(principal, clientIp)) {
        const k = JSON.stringify(key);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    };
    for (const s of live.values()) if (s.opened) add(s.record.principal, s.clientIp);
    for (const o of opening) {
      if (o.reserved && !live.get(o.sessionId)?.opened) add(o.principal, o.clientIp);
    }
    return counts;
  }

  /**
   * Publishes this process's counts after a change, in the background: at once when no
   * publication is in flight, else once right after it (a burst costs one write per commit).
   */
  function schedulePublish(): void {
    publishCounts();
  }

  /** Publishes the counts that changed (all of them with `refresh`), coalescing callers. */
  function publishCounts(refresh = false): Promise<void> {
    if (!options.caps) return Promise.resolve();
    if (publishing) {
      republish = true;
      return publishing;
    }
    publishing = serialized(async () => {
      do {
        republish = false;
        const next = ownCounts();
        const ops: [Deno.KvKey, number | null][] = [];
        for (const [k, n] of next) {
          if (refresh || published.get(k) !== n) {
            ops.push([[...sharedCapKey(JSON.parse(k)), instance], n]);
          }
        }
        for (const k of published.keys()) {
          if (!next.has(k)) ops.push([[...sharedCapKey(JSON.parse(k)), instance], null]);
        }
        for (let i = 0; i < ops.length; i += 500) {
          const atomic = options.kv.atomic();
          for (const [key, n] of ops.slice(i, i + 500)) {
            if (n === null || n === 0) atomic.delete(key);
            else atomic.set(key, n, { expireIn: sharedStaleMs });
          }
          await withKvRetry(() => atomic.commit());
        }
        published = next;
        refresh = false;
      } while (republish);
    }).catch((e) => log.warn("cannot publish session counts for the shared caps", { error: e }))
      .finally(() => publishing = undefined);
    return publishing;
  }

  /** Sessions the other processes opened under `key` (their published counts). */
  async function othersCount(key: unknown[]): Promise<number> {
    let n = 0;
    for await (
      const e of options.kv.list<number>({ prefix: sharedCapKey(key) }, { limit: 1000 })
    ) {
      if (e.key[e.key.length - 1] !== instance && typeof e.value === "number") n += e.value;
    }
    return n;
  }

  function attach(
    sessionId: string,
    transport: WardenStreamableTransport,
    server: McpServer,
    record: SessionRecord,
    events?: KvEventStore,
    clientIp?: string,
    opened = false,
  ): LiveSession {
    const session: LiveSession = {
      ...(clientIp !== undefined ? { clientIp } : {}),
      ...(opened ? { opened } : {}),
      transport,
      server,
      events,
      record,
      lastSeenMs: Date.now(),
      checkedMs: Date.now(),
    };
    live.set(sessionId, session);
    if (opened) schedulePublish();
    // Chained: the server connected first, and its own close hook (which ends the session's
    // server — its upstream subscriptions, its place in the list_changed set) must still run.
    const connected = transport.onclose;
    transport.onclose = () => {
      // The session's direct calls end with it, as the SDK's protocol aborts its handlers.
      for (const abort of session.direct?.values() ?? []) abort.abort();
      if (live.get(sessionId)?.transport === transport) {
        live.delete(sessionId);
        if (opened) schedulePublish();
      }
      connected?.();
    };
    return session;
  }

  async function initialize(
    req: Request,
    message: JSONRPCMessage & { params: Record<string, unknown> },
    ctx: StreamableRequestContext,
  ): Promise<Response> {
    const requested = String(message.params.protocolVersion ?? "");
    // A version we do not speak on /mcp is answered with our latest, as the spec requires.
    const protocolVersion = STREAMABLE_PROTOCOL_VERSIONS.includes(requested)
      ? requested
      : LATEST_PROTOCOL_VERSION;
    const params: Record<string, unknown> = { ...message.params, protocolVersion };
    const sessionId = crypto.randomUUID();
    const now = Date.now();
    const record: SessionRecord = {
      id: sessionId,
      transport: "streamable-http",
      protocolVersion,
      clientInfo: (params.clientInfo ?? {}) as SessionRecord["clientInfo"],
      capabilities: (params.capabilities ?? {}) as Record<string, unknown>,
      initializeParams: params,
      principal: ctx.principal,
      stage: "000",
      createdAt: new Date(now).toISOString(),
      lastSeenMs: now,
    };
    const size = new TextEncoder().encode(JSON.stringify(record)).length;
    if (size > MAX_SESSION_RECORD_BYTES) {
      return jsonRpcError(
        400,
        -32600,
        `Invalid Request: initialize params are too large to keep (${size} bytes)`,
      );
    }
    // The local check and the slot are taken before anything is awaited, so concurrent
    // initializes in this process see each other; the shared check then reserves a place.
    const local = overCap(ctx.principal, ctx.clientIp);
    if (local) return local;
    const slot: OpeningSlot = {
      sessionId,
      principal: ctx.principal,
      ...(ctx.clientIp ? { clientIp: ctx.clientIp } : {}),
    };
    opening.push(slot);
    const leave = () => {
      opening.splice(opening.indexOf(slot), 1);
      // A place reserved for a session that did not open is given back.
      if (slot.reserved && !live.get(sessionId)?.opened) schedulePublish();
    };
    let shared: Response | undefined;
    try {
      shared = await reserveShared(slot);
    } catch (e) {
      leave();
      throw e;
    }
    if (shared) {
      leave();
      return shared;
    }
    const server = options.createServer({
      principal: ctx.principal,
      onLogLevel: (level) => keepLogLevel(sessionId, level),
    });
    const { transport, events } = newTransport(sessionId, async () => {
      await options.sessions.create(record);
      attach(sessionId, transport, server, record, events, ctx.clientIp, true);
      log.info("session created", {
        session: sessionId,
        protocol: protocolVersion,
        client: record.clientInfo.name,
      });
    });
    try {
      await server.connect(transport);
      return await transport.handleRequest(req, { parsedBody: { ...message, params } });
    } finally {
      leave();
    }
  }

  /**
   * The refusal of a new session past a cap (503 for the process total, 429 with
   * Retry-After per principal or IP), or undefined. Sessions still being initialized count.
   */
  function overCap(principal: string, clientIp?: string): Response | undefined {
    const caps = options.caps;
    if (!caps) return undefined;
    const refuse = (status: number, message: string) =>
      new Response(
        JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }),
        {
          status,
          headers: { "content-type": "application/json", "retry-after": "60" },
        },
      );
    const held = live.size + restoring.size + opening.length;
    if (held >= caps.total) {
      log.warn("session refused: process cap", { cap: caps.total });
      return refuse(
        503,
        `Service Unavailable: this server holds its maximum of ${caps.total} sessions (--max-sessions); retry later`,
      );
    }
    let byPrincipal = 0;
    let byIp = 0;
    for (const s of [...live.values(), ...opening]) {
      const owner = "record" in s ? s.record.principal : s.principal;
      if (owner === principal) byPrincipal++;
      if (clientIp !== undefined && s.clientIp === clientIp) byIp++;
    }
    if (principal !== "anonymous" && byPrincipal >= caps.perPrincipal) {
      return refuse(
        429,
        `Too Many Sessions: principal ${principal} holds ${byPrincipal} sessions, the maximum (--max-sessions-per-principal); end one with DELETE /mcp or let idle ones expire`,
      );
    }
    if (clientIp !== undefined && byIp >= caps.perIp) {
      return refuse(
        429,
        `Too Many Sessions: client ${clientIp} holds ${byIp} sessions, the maximum (--max-sessions-per-ip); end one with DELETE /mcp or let idle ones expire`,
      );
    }
    return undefined;
  }

  /**
   * The same caps over every process on the KV, with a place reserved for `slot` when they
   * hold: the others' published counts plus this process's own (live and reserved), summed and
   * committed under the caps' generation keys (see above), retried while other processes
   * reserve at the same time. Undefined when the place is reserved, else the refusal.
   */
  function reserveShared(slot: OpeningSlot): Promise<Response | undefined> {
    const caps = options.caps;
    if (!caps) return Promise.resolve(undefined);
    const { principal, clientIp } = slot;
    const refuse = (status: number, message: string) =>
      new Response(
        JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }),
        { status, headers: { "content-type": "application/json", "retry-after": "60" } },
      );
    const keys = capKeysOf(principal, clientIp);
    return serialized(async () => {
      for (let attempt = 0; attempt < MAX_RESERVE_ATTEMPTS; attempt++) {
        // The generations first: a reservation committed after this read changes one of them,
        // so the commit below fails rather than trusting a sum that missed it.
        const gens = await options.kv.getMany(keys.map((k) => sharedCapGenKey(k)));
        const [allOthers, principalOthers, ipOthers] = await Promise.all([
          othersCount(["total"]),
          principal !== "anonymous" ? othersCount(["principal", principal]) : Promise.resolve(0),
          clientIp !== undefined ? othersCount(["ip", clientIp]) : Promise.resolve(0),
        ]);
        const mine = ownCounts();
        const own = (key: unknown[]) => mine.get(JSON.stringify(key)) ?? 0;
        const shared = allOthers + own(["total"]);
        if (shared >= caps.total) {
          log.warn("session refused: shared cap", { cap: caps.total });
          return refuse(
            503,
            `Service Unavailable: the servers sharing this KV hold their maximum of ${caps.total} sessions (--max-sessions); retry later`,
          );
        }
        const sharedPrincipal = principalOthers + own(["principal", principal]);
        if (principal !== "anonymous" && sharedPrincipal >= caps.perPrincipal) {
          return refuse(
            429,
            `Too Many Sessions: principal ${principal} holds ${sharedPrincipal} sessions across the servers sharing this KV, the maximum (--max-sessions-per-principal); end one with DELETE /mcp or let idle ones expire`,
          );
        }
        const sharedIp = ipOthers + (clientIp !== undefined ? own(["ip", clientIp]) : 0);
        if (clientIp !== undefined && sharedIp >= caps.perIp) {
          return refuse(
            429,
            `Too Many Sessions: client ${clientIp} holds ${sharedIp} sessions across the servers sharing this KV, the maximum (--max-sessions-per-ip); end one with DELETE /mcp or let idle ones expire`,
          );
        }
        const op = options.kv.atomic();
        const raised = new Map<string, number>();
        for (const [i, key] of keys.entries()) {
          const k = JSON.stringify(key);
          const value = own(key) + 1;
          raised.set(k, value);
          op.check(gens[i])
            .set([...sharedCapKey(key), instance], value, { expireIn: sharedStaleMs })
            .set(sharedCapGenKey(key), instance, { expireIn: sharedStaleMs });
        }
        const res = await withKvRetry(() => op.commit());
        if (res.ok) {
          slot.reserved = true;
          for (const [k, v] of raised) published.set(k, v);
          return undefined;
        }
      }
      return refuse(
        503,
        "Service Unavailable: too many sessions are being opened at once across the servers sharing this KV; retry later",
      );
    });
  }

  /** Rebuilds a session held in KV but not in this process. */
  async function restore(sessionId: string): Promise<LiveSession | null> {
    const record = await options.sessions.get(sessionId);
    if (!record || record.transport !== "streamable-http") return null;
    const server = options.createServer({
      principal: record.principal,
      ...(record.logLevel ? { logLevel: record.logLevel } : {}),
      onLogLevel: (level) => keepLogLevel(sessionId, level),
    });
    const { transport, events } = newTransport(sessionId, () => {});
    await server.connect(transport);
    events?.suspend(true);
    try {
      const headers = {
        accept: "application/json, text/event-stream",
        "content-type": "application/json",
      };
      const init = await transport.handleRequest(
        new Request("http://warden.internal/mcp", { method: "POST", headers, body: "{}" }),
        {
          parsedBody: {
            jsonrpc: "2.0",
            id: `warden-restore-${sessionId}`,
            method: "initialize",
            params: record.initializeParams,
          },
        },
      );
      // Drain the reply (an SSE stream or JSON body) so the transport settles it.
      await init.text();
      const initialized = await transport.handleRequest(
        new Request("http://warden.internal/mcp", {
          method: "POST",
          headers: {
            ...headers,
            "mcp-session-id": sessionId,
            "mcp-protocol-version": record.protocolVersion,
          },
          body: "{}",
        }),
        { parsedBody: { jsonrpc: "2.0", method: "notifications/initialized" } },
      );
      await initialized.body?.cancel();
    } finally {
      events?.suspend(false);
    }
    log.info("session restored", { session: sessionId, protocol: record.protocolVersion });
    return attach(sessionId, transport, server, record, events);
  }

  async function lookup(sessionId: string): Promise<LiveSession | null> {
    const now = Date.now();
    const held = live.get(sessionId);
    if (held) {
      if (now - held.checkedMs > recheckMs || now - held.lastSeenMs > options.sessions.ttlMs) {
        // Another process may have used or ended the session; KV is the source of truth.
        const record = await options.sessions.get(sessionId, now);
        if (!record) {
          live.delete(sessionId);
          if (held.opened) schedulePublish();
          await held.transport.close();
          log.info("session gone", { session: sessionId });
          return null;
        }
        held.checkedMs = now;
        held.record = record;
      }
      return held;
    }
    let pending = restoring.get(sessionId);
    if (!pending) {
      pending = restore(sessionId).finally(() => restoring.delete(sessionId));
      restoring.set(sessionId, pending);
    }
    return await pending;
  }

  /** Keeps the client's logging level with the session, for processes that rebuild it. */
  async function keepLogLevel(sessionId: string, level: string): Promise<void> {
    try {
      await options.sessions.setLogLevel(sessionId, level);
    } catch (e) {
      log.warn("cannot record the session's log level", { session: sessionId, error: e });
    }
  }

  function touch(sessionId: string, session: LiveSession): void {
    const now = Date.now();
    session.lastSeenMs = now;
    if (now - session.record.lastSeenMs >= touchEveryMs) {
      const before = session.record;
      session.record = { ...before, lastSeenMs: now };
      options.sessions.touch(before, now).catch((e) =>
        log.warn("cannot refresh session last-seen", { session: sessionId, error: e })
      );
    }
  }

  let directCalls = 0;
  /** A plain tools/call answered on the direct path, or undefined (the SDK answers it). */
  function answerPlain(
    req: Request,
    body: unknown,
    sessionId: string,
    session: LiveSession,
    claimed: string[],
  ): Promise<Response> | undefined {
    const serves = options.direct?.serves;
    const run = serves ? sessionToolCall(session.server) : undefined;
    if (!run || (session.transport as unknown as { _closed: boolean })._closed) return undefined;
    const call = plainSessionCall(req, body, session.record.capabilities, serves!);
    if (!call) return undefined;
    const key = claimed[0];
    directCalls++;
    const abort = new AbortController();
    const calls = session.direct ??= new Map();
    calls.set(key, abort);
    return answerDirect({
      transport: session.transport,
      call,
      run,
      sessionId,
      signal: abort.signal,
      done: () => {
        if (calls.get(key) !== abort) return;
        calls.delete(key);
        // A cancelled id was freed by the cancellation (and may be in use again).
        if (!abort.signal.aborted) session.transport.inflight.delete(key);
      },
      jsonMode,
      protocolVersion: req.headers.get("mcp-protocol-version"),
    });
  }

  return {
    get liveCount() {
      return live.size;
    },
    get directCalls() {
      return directCalls;
    },
    heldStreams(sessionId) {
      return live.get(sessionId)?.transport.heldStreams;
    },
    async handle(req, ctx) {
      const body = ctx.parsedBody;
      if (req.method === "POST") {
        const messages = Array.isArray(body) ? body : [body];
        // Cheap shape check first: the SDK guard is a full zod parse, too costly per request.
        const init = messages.find((m) =>
          (m as { method?: unknown })?.method === "initialize" && isInitializeRequest(m)
        );
        if (init) {
          if (messages.length > 1) {
            return jsonRpcError(
              400,
              -32600,
              "Invalid Request: Only one initialization request is allowed",
            );
          }
          return await initialize(req, init as never, ctx);
        }
      }
      const sessionId = req.headers.get("mcp-session-id");
      if (!sessionId) {
        return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
      }
      if (!SESSION_ID.test(sessionId)) return jsonRpcError(404, -32001, "Session not found");
      const version = req.headers.get("mcp-protocol-version");
      if (version !== null && !STREAMABLE_PROTOCOL_VERSIONS.includes(version)) {
        return jsonRpcError(
          400,
          -32000,
          `Bad Request: Unsupported protocol version: ${version} (supported versions: ${
            STREAMABLE_PROTOCOL_VERSIONS.join(", ")
          })`,
        );
      }
      const caps = options.caps;
      if (caps && !live.has(sessionId) && live.size + restoring.size >= caps.total) {
        // Rebuilding a session this process does not hold would pass the process cap.
        return new Response(
          JSON.stringify({
            jsonrpc: "2.0",
            error: {
              code: -32000,
              message:
                `Service Unavailable: this server holds its maximum of ${caps.total} sessions (--max-sessions); retry later`,
            },
            id: null,
          }),
          {
            status: 503,
            headers: { "content-type": "application/json", "retry-after": "60" },
          },
        );
      }
      const session = await lookup(sessionId);
      if (!session) return jsonRpcError(404, -32001, "Session not found");
      if (session.record.principal !== ctx.principal) {
        // A session belongs to whoever opened it; another credential cannot ride on it.
        return jsonRpcError(404, -32001, "Session not found");
      }
      touch(sessionId, session);
      if (req.method === "POST") {
        const claimed = claimIds(
          session.transport,
          body,
          (key) => session.direct?.get(key)?.abort(),
        );
        if (claimed instanceof Response) return claimed;
        const direct = answerPlain(req, body, sessionId, session, claimed);
        if (direct) return await direct;
        const res = await session.transport.handleRequest(req, { parsedBody: body });
        // Refused by the transport: none of its requests will be answered.
        if (res.status >= 400) {
          for (const key of claimed) session.transport.inflight.delete(key);
        }
        return res;
      }
      const res = await session.transport.handleRequest(req, { parsedBody: body });
      return req.method === "GET" ? capStandaloneStream(res, sessionId, log) : res;
    },
    async reap(nowMs = Date.now()) {
      // Each tick re-publishes this process's shared counts, so they outlive it only briefly.
      await publishCounts(true);
      let closed = 0;
      for (const [id, session] of live) {
        if (nowMs - session.lastSeenMs > options.sessions.ttlMs) {
          // Only this process's copy is idle; the KV record decides whether the session lives on.
          const record = await options.sessions.get(id, nowMs);
          live.delete(id);
          await session.transport.close();
          if (!record) log.info("session expired", { session: id });
          closed++;
        }
      }
      if (closed > 0) await publishCounts();
      return closed;
    },
    async close() {
      const sessions = [...live.values()];
      live.clear();
      await publishCounts(); // this process's sessions stop counting at once
      await Promise.allSettled(sessions.map((s) => s.transport.close()));
      await options.writer.flush();
    },
  };
}
