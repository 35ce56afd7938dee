/**
 * The legacy HTTP+SSE transport (protocol 2024-11-05) on web-standard
 * Request/Response: `GET /sse` opens the stream and announces the endpoint,
 * `POST /messages?sessionId=…` delivers client messages, replies go down the
 * stream. The SDK only ships a Node version of this transport.
 */
import {
  isInitializeRequest,
  type JSONRPCMessage,
  type McpServer,
  type MessageExtraInfo,
  type Transport,
} from "@modelcontextprotocol/server";
import { JSONRPCMessageSchema } from "@modelcontextprotocol/core";
import type { Logger } from "../lib/mod.ts";
import { capUnsent } from "../net/mod.ts";
import { type SessionRecord, type SessionStore, touchIntervalMs } from "./session_store.ts";

/** Protocol versions a client may negotiate over `/sse`. */
export const SSE_PROTOCOL_VERSIONS: readonly string[] = [
  "2025-11-25",
  "2025-06-18",
  "2025-03-26",
  "2024-11-05",
];

const encoder = new TextEncoder();

/** One legacy SSE connection implementing the SDK's `Transport` interface. */
export class WebStandardSSEServerTransport implements Transport {
  readonly sessionId: string;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;

  readonly #endpoint: string;
  readonly #keepAliveMs: number;
  readonly #unsent: { maxUnsentBytes?: number; onDrop?: (unsentBytes: number) => void };
  #controller?: ReadableStreamDefaultController<Uint8Array>;
  #keepAlive?: ReturnType<typeof setInterval>;
  #started = false;
  #closed = false;

  constructor(
    endpoint: string,
    options: {
      sessionId?: string;
      keepAliveMs?: number;
      /** Bytes held for a client that is not reading before its stream is dropped. */
      maxUnsentBytes?: number;
      /** Told when the stream is dropped for that. */
      onDrop?: (unsentBytes: number) => void;
    } = {},
  ) {
    this.sessionId = options.sessionId ?? crypto.randomUUID();
    this.#endpoint = endpoint;
    this.#keepAliveMs = options.keepAliveMs ?? 15_000;
    this.#unsent = {
      ...(options.maxUnsentBytes !== undefined ? { maxUnsentBytes: options.maxUnsentBytes } : {}),
      ...(options.onDrop ? { onDrop: options.onDrop } : {}),
    };
  }

  start(): Promise<void> {
    if (this.#started) throw new Error("Cannot start SSE transport: already started");
    this.#started = true;
    return Promise.resolve();
  }

  /**
   * The streaming response for `GET /sse`; its first event names the POST endpoint. A client
   * that stops reading is dropped once more than `maxUnsentBytes` (8 MiB) wait for it: the
   * stream ends, its connection closes and the session closes with it.
   */
  response(): Response {
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        const sep = this.#endpoint.includes("?") ? "&" : "?";
        controller.enqueue(
          encoder.encode(
            `event: endpoint\ndata: ${this.#endpoint}${sep}sessionId=${this.sessionId}\n\n`,
          ),
        );
        this.#keepAlive = setInterval(() => this.#write(": keepalive\n\n"), this.#keepAliveMs);
      },
      cancel: () => {
        void this.close();
      },
    });
    return new Response(capUnsent(stream, this.#unsent), {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      },
    });
  }

  #write(chunk: string): boolean {
    if (this.#closed || !this.#controller) return false;
    try {
      this.#controller.enqueue(encoder.encode(chunk));
      return true;
    } catch {
      void this.close();
      return false;
    }
  }

  /**
   * Delivers one POSTed body (a message or a batch). Returns 202 once the
   * messages are handed to the server; invalid messages get a JSON-RPC error.
   */
  handlePost(body: unknown, extra?: MessageExtraInfo): Response {
    if (this.#closed) return rpcError(404, -32001, "Session not found");
    const raw = Array.isArray(body) ? body : [body];
    if (raw.length === 0 || raw.length > 100) {
      return rpcError(400, -32600, "Invalid Request: a batch must hold 1 to 100 messages");
    }
    const messages: JSONRPCMessage[] = [];
    for (const m of raw) {
      const parsed = JSONRPCMessageSchema.safeParse(m);
      if (!parsed.success) {
        return rpcError(400, -32600, "Invalid Request: not a JSON-RPC 2.0 message");
      }
      messages.push(parsed.data);
    }
    for (const message of messages) this.onmessage?.(message, extra);
    return new Response("Accepted", { status: 202 });
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Cannot send: SSE stream is closed"));
    this.#write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#keepAlive);
    try {
      this.#controller?.close();
    } catch {
      // The client already went away.
    }
    this.onclose?.();
    return Promise.resolve();
  }
}

function rpcError(status: number, code: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Dependencies of the legacy SSE manager. */
export interface LegacySseOptions {
  readonly sessions: SessionStore;
  readonly createServer: (binding: { principal: string }) => McpServer;
  readonly logger: Logger;
  /** Path (absolute, same origin) clients POST to. */
  readonly messagesPath: string;
  readonly maxSessions?: number;
  /** Streams open at once per client IP, and per authenticated principal. */
  readonly maxPerClient?: number;
  readonly keepAliveMs?: number;
}

/** Handles `GET /sse` and `POST /messages` for this process's SSE connections. */
export interface LegacySseManager {
  open(principal: string, clientIp?: string): Promise<Response>;
  post(sessionId: string | null, body: unknown, principal: string): Promise<Response>;
  /**
   * Refreshes the KV record of every open stream not refreshed in the last
   * `min(60 s, TTL/10)`: an open stream is a live session, idle or not.
   */
  refresh(nowMs?: number): Promise<number>;
  readonly liveCount: number;
  close(): Promise<void>;
}

/**
 * Creates the manager. An SSE session lives as long as its stream: the record
 * in KV is informational (listing, audit) and is removed when the stream ends,
 * because a legacy stream cannot move to another process.
 */
// Kept whole: the legacy SSE manager's closures share the live-stream map.
export function createLegacySseManager(options: LegacySseOptions): LegacySseManager {
  const live = new Map<string, {
    transport: WebStandardSSEServerTransport;
    principal: string;
    clientIp?: string;
    /** The KV record, written at initialize. */
    record: SessionRecord | null;
    /** When the record was written or last refreshed. */
    recordedMs: number;
  }>();
  const log = options.logger;
  const refreshEveryMs = touchIntervalMs(options.sessions.ttlMs);
  const maxSessions = options.maxSessions ?? 10_000;
  const maxPerClient = options.maxPerClient ?? Infinity;

  return {
    get liveCount() {
      return live.size;
    },
    async open(principal, clientIp) {
      if (live.size >= maxSessions) {
        return rpcError(503, -32000, "Too many open SSE sessions; try again later");
      }
      let byIp = 0;
      let byPrincipal = 0;
      for (const s of live.values()) {
        if (clientIp !== undefined && s.clientIp === clientIp) byIp++;
        if (s.principal === principal) byPrincipal++;
      }
      if (
        (clientIp !== undefined && byIp >= maxPerClient) ||
        (principal !== "anonymous" && byPrincipal >= maxPerClient)
      ) {
        const res = rpcError(
          429,
          -32000,
          `Too Many Streams: this client holds ${
            Math.max(byIp, byPrincipal)
          } open SSE streams, the maximum (--max-sse-per-client); close one first`,
        );
        res.headers.set("retry-after", "30");
        return res;
      }
      const id = crypto.randomUUID();
      const transport = new WebStandardSSEServerTransport(options.messagesPath, {
        sessionId: id,
        keepAliveMs: options.keepAliveMs,
        onDrop: (unsentBytes) =>
          log.warn("sse stream dropped: the client is not reading", { session: id, unsentBytes }),
      });
      const server = options.createServer({ principal });
      transport.onclose = () => {
        live.delete(id);
        options.sessions.delete(id).catch((e) =>
          log.warn("cannot delete SSE session record", { session: id, error: e })
        );
        log.info("sse session closed", { session: id });
      };
      transport.onerror = (e) => log.debug("sse transport error", { error: e.message });
      live.set(id, {
        transport,
        principal,
        ...(clientIp !== undefined ? { clientIp } : {}),
        record: null,
        recordedMs: 0,
      });
      const response = transport.response();
      await server.connect(transport);
      log.info("sse session opened", { session: id });
      return response;
    },
    async post(sessionId, body, principal) {
      if (!sessionId) {
        return rpcError(400, -32000, "Bad Request: sessionId query parameter is required");
      }
      const held = live.get(sessionId);
      if (!held || held.principal !== principal) {
        return rpcError(404, -32001, "Session not found");
      }
      const messages = Array.isArray(body) ? body : [body];
      const init = messages.find((m) => isInitializeRequest(m)) as
        | { params: Record<string, unknown> }
        | undefined;
      if (init && held.record) {
        return rpcError(400, -32600, "Invalid Request: this SSE session is already initialized");
      }
      // Before initialize only ping may be asked: no tool runs on a session never opened.
      const early = !init && !held.record && messages.some((m) => {
        const method = (m as { method?: unknown } | null)?.method;
        return typeof method === "string" && method !== "ping" &&
          (m as { id?: unknown }).id !== undefined;
      });
      if (early) {
        return rpcError(
          400,
          -32600,
          "Invalid Request: send initialize on this SSE session before any other request",
        );
      }
      if (init) {
        const requested = String(init.params.protocolVersion ?? "");
        const protocolVersion = SSE_PROTOCOL_VERSIONS.includes(requested)
          ? requested
          : "2024-11-05";
        init.params = { ...init.params, protocolVersion };
        const now = Date.now();
        const record: SessionRecord = {
          id: sessionId,
          transport: "sse",
          protocolVersion,
          clientInfo: (init.params.clientInfo ?? {}) as Record<string, unknown>,
          capabilities: (init.params.capabilities ?? {}) as Record<string, unknown>,
          initializeParams: init.params,
          principal,
          stage: "000",
          createdAt: new Date(now).toISOString(),
          lastSeenMs: now,
        };
        await options.sessions.create(record);
        held.record = record;
        held.recordedMs = now;
      }
      return held.transport.handlePost(body);
    },
    async refresh(nowMs = Date.now()) {
      let refreshed = 0;
      for (const held of live.values()) {
        if (!held.record || nowMs - held.recordedMs < refreshEveryMs) continue;
        held.recordedMs = nowMs;
        // touch re-reads the stored record and leaves it alone if the session has ended.
        held.record = await options.sessions.touch(held.record, nowMs);
        refreshed++;
      }
      return refreshed;
    },
    async close() {
      const all = [...live.values()];
      await Promise.allSettled(all.map((s) => s.transport.close()));
    },
  };
}
