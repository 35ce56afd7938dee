/**
 * `/ws/mcp`: MCP JSON-RPC over a WebSocket (one JSON-RPC message or batch per
 * text frame, subprotocol `mcp`). One socket is one session: its own
 * McpServer, bound to the principal the upgrade request authenticated as, and
 * living as long as the socket (like a legacy SSE stream it cannot move to
 * another process). Every frame is sized, the socket is closed when idle, a
 * revoked token ends it, and sockets are capped in total and per caller.
 *
 * @module
 */
import { screenBody } from "./screen.ts";
import type {
  JSONRPCMessage,
  McpServer,
  MessageExtraInfo,
  Transport,
} from "@modelcontextprotocol/server";
import { JSONRPCMessageSchema } from "@modelcontextprotocol/core";
import type { Logger } from "../lib/mod.ts";
import { currentRequest, type RequestContext, withRequestContext } from "../identity/mod.ts";

/** The WebSocket subprotocol of MCP (what the SDK's WebSocket client asks for). */
export const WS_SUBPROTOCOL = "mcp";

/** Close codes (RFC 6455 §7.4.1). */
export const WS_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  policy: 1008,
  tooBig: 1009,
  tryAgainLater: 1013,
} as const;

/** Limits of one socket. */
export interface WebSocketLimits {
  /** Largest text frame accepted, in UTF-8 bytes; a larger one closes the socket with 1009. */
  readonly maxMessageBytes: number;
  /** Closed with 1000 after this long without a client message (while no request is running). */
  readonly idleTimeoutMs: number;
  /** Requests one socket may have running at once; more are answered with an error. */
  readonly maxInFlight: number;
  /** Unsent bytes queued for a client that does not read, before the socket is closed (1008). */
  readonly maxBufferedBytes: number;
  /** How often the token the socket was opened with is checked again (a revoked one closes it). */
  readonly reauthEveryMs: number;
}

const DEFAULT_LIMITS: WebSocketLimits = {
  maxMessageBytes: 1024 * 1024,
  idleTimeoutMs: 300_000,
  maxInFlight: 32,
  maxBufferedBytes: 8 * 1024 * 1024,
  reauthEveryMs: 60_000,
};

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

/** One MCP session over a server-side WebSocket, implementing the SDK's `Transport`. */
export class WebSocketServerTransport implements Transport {
  readonly sessionId: string = crypto.randomUUID();
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;

  readonly #socket: WebSocket;
  readonly #limits: WebSocketLimits;
  readonly #context: RequestContext | undefined;
  readonly #stillAuthorized: (() => Promise<boolean>) | undefined;
  /** Ids of client requests handed to the server and not yet answered. */
  readonly #inFlight = new Set<string | number>();
  #lastActivity = performance.now();
  #lastAuthCheck = performance.now();
  #idleTimer?: ReturnType<typeof setTimeout>;
  /** Frames are handled in order, one at a time (a token re-check may sit between two). */
  #queue: Promise<void> = Promise.resolve();
  #started = false;
  #closed = false;
  /** The id of the initialize request handed to the server and not yet answered. */
  #initializing: string | number | undefined;
  /** The server answered initialize: the socket's session is open. */
  #initialized = false;

  constructor(
    socket: WebSocket,
    options: {
      limits?: Partial<WebSocketLimits>;
      /** The upgrade request's context (client IP, principal), re-entered for every message. */
      context?: RequestContext;
      /** Re-checks the credential the socket was opened with. */
      stillAuthorized?: () => Promise<boolean>;
    } = {},
  ) {
    this.#socket = socket;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#context = options.context;
    this.#stillAuthorized = options.stillAuthorized;
    socket.addEventListener("message", (event) => this.#receive(event.data));
    socket.addEventListener("close", () => this.#ended());
    socket.addEventListener("error", (event) => {
      const message = (event as ErrorEvent).message ?? "WebSocket error";
      this.onerror?.(new Error(message));
    });
  }

  start(): Promise<void> {
    if (this.#started) throw new Error("Cannot start WebSocket transport: already started");
    this.#started = true;
    this.#armIdle(this.#limits.idleTimeoutMs);
    return Promise.resolve();
  }

  #armIdle(ms: number) {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#closed) return;
      const idleFor = performance.now() - this.#lastActivity;
      if (this.#inFlight.size > 0 || idleFor < this.#limits.idleTimeoutMs) {
        // Re-armed lazily rather than on every frame: one timer change per idle period.
        this.#armIdle(Math.max(50, this.#limits.idleTimeoutMs - idleFor));
        return;
      }
      this.#shut(
        WS_CLOSE.normal,
        `idle for ${Math.round(this.#limits.idleTimeoutMs / 1000)} s`,
      );
    }, ms);
    Deno.unrefTimer(this.#idleTimer as unknown as number);
  }

  #receive(data: unknown) {
    if (this.#closed) return;
    this.#lastActivity = performance.now();
    if (typeof data !== "string") {
      this.#shut(WS_CLOSE.unsupportedData, "binary frames are not MCP: send JSON-RPC as text");
      return;
    }
    const max = this.#limits.maxMessageBytes;
    // A UTF-16 code unit is 1 to 3 UTF-8 bytes: encode only when the length cannot decide.
    if (data.length > max || (data.length * 3 > max && utf8Length(data) > max)) {
      this.#shut(WS_CLOSE.tooBig, `message over ${max} bytes`);
      return;
    }
    this.#queue = this.#queue.then(() => this.#handle(data)).catch((e) =>
      this.onerror?.(e instanceof Error ? e : new Error(String(e)))
    );
  }

  async #handle(text: string) {
    if (this.#closed) return;
    if (
      this.#stillAuthorized &&
      performance.now() - this.#lastAuthCheck >= this.#limits.reauthEveryMs
    ) {
      this.#lastAuthCheck = performance.now();
      if (!(await this.#stillAuthorized())) {
        this.#shut(WS_CLOSE.policy, "the credential is no longer valid");
        return;
      }
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      this.#reply(null, -32700, "Parse error: a frame must hold one JSON-RPC message or batch");
      return;
    }
    // The same screening as POST /mcp: too deep or too wide, or params that do not fit a known
    // method, is answered -32602 before the SDK (and zod) walks it.
    const screened = screenBody(body);
    if (screened) {
      this.#reply(screened.id, screened.code, screened.message);
      return;
    }
    const raw = Array.isArray(body) ? body : [body];
    if (raw.length === 0 || raw.length > 100) {
      this.#reply(null, -32600, "Invalid Request: a batch must hold 1 to 100 messages");
      return;
    }
    const messages: JSONRPCMessage[] = [];
    for (const m of raw) {
      const parsed = JSONRPCMessageSchema.safeParse(m);
      if (!parsed.success) {
        const id = (m as { id?: unknown } | null)?.id;
        this.#reply(
          typeof id === "string" || typeof id === "number" ? id : null,
          -32600,
          "Invalid Request: not a JSON-RPC 2.0 message",
        );
        return;
      }
      messages.push(parsed.data);
    }
    for (const message of messages) {
      // A cancelled request gets no response (MCP cancellation): its slot is freed here.
      if ("method" in message && message.method === "notifications/cancelled") {
        const cancelled = (message.params as { requestId?: unknown } | undefined)?.requestId;
        if (typeof cancelled === "string" || typeof cancelled === "number") {
          this.#inFlight.delete(cancelled);
        }
      }
      const method = "method" in message ? message.method : undefined;
      const id = method !== undefined && "id" in message ? message.id : undefined;
      if (id !== undefined) {
        const refused = this.#lifecycleRefusal(method!);
        if (refused !== undefined) {
          this.#reply(id, -32600, refused);
          continue;
        }
        if (this.#inFlight.has(id)) {
          // Two live requests with one id could not be told apart: the second is refused.
          this.#reply(id, -32600, `Invalid Request: id ${JSON.stringify(id)} is already in use`);
          continue;
        }
        if (this.#inFlight.size >= this.#limits.maxInFlight) {
          this.#reply(
            id,
            -32000,
            `Too many requests in flight on this socket (limit ${this.#limits.maxInFlight})`,
          );
          continue;
        }
        this.#inFlight.add(id);
        if (method === "initialize") this.#initializing = id;
      }
      const deliver = () => this.onmessage?.(message);
      if (this.#context) withRequestContext(this.#context, deliver);
      else deliver();
    }
  }

  /**
   * Why a request may not be sent now, as on a legacy SSE session: before initialize only ping
   * (no tool runs on a session never opened), and initialize only once (the socket keeps the
   * version and capabilities it negotiated).
   */
  #lifecycleRefusal(method: string): string | undefined {
    if (method === "initialize") {
      return this.#initialized || this.#initializing !== undefined
        ? "Invalid Request: this WebSocket session is already initialized"
        : undefined;
    }
    if (this.#initialized || method === "ping") return undefined;
    return "Invalid Request: send initialize on this WebSocket before any other request";
  }

  #reply(id: string | number | null, code: number, message: string) {
    this.#write(JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } }));
  }

  #write(text: string): boolean {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return false;
    if (this.#socket.bufferedAmount > this.#limits.maxBufferedBytes) {
      this.#shut(WS_CLOSE.policy, "the client is not reading its messages");
      return false;
    }
    this.#socket.send(text);
    return true;
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Cannot send: the WebSocket is closed"));
    if (("result" in message || "error" in message) && "id" in message) {
      this.#inFlight.delete(message.id as string | number);
      if (message.id === this.#initializing) {
        // Open once the server accepted it; a refused initialize may be sent again.
        this.#initialized = "result" in message;
        this.#initializing = undefined;
      }
    }
    if (!this.#write(JSON.stringify(message))) {
      return Promise.reject(new Error("Cannot send: the WebSocket is closed"));
    }
    return Promise.resolve();
  }

  /** Closes the socket with a code and reason the client sees, then ends the session. */
  #shut(code: number, reason: string) {
    try {
      if (
        this.#socket.readyState === WebSocket.OPEN ||
        this.#socket.readyState === WebSocket.CONNECTING
      ) {
        // A close reason is at most 123 bytes.
        this.#socket.close(code, reason.slice(0, 120));
      }
    } catch {
      // Already closing.
    }
    this.#ended();
  }

  #ended() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#inFlight.clear();
    this.onclose?.();
  }

  close(): Promise<void> {
    this.#shut(WS_CLOSE.goingAway, "server closing the session");
    return Promise.resolve();
  }
}

/** What the `/ws/mcp` manager needs. */
export interface WebSocketManagerOptions {
  readonly createServer: (binding: { principal: string }) => McpServer;
  readonly logger: Logger;
  readonly limits?: Partial<WebSocketLimits>;
  /** Sockets open at once in this process. */
  readonly maxConnections?: number;
  /** Sockets open at once for one principal (for anonymous callers: per client IP). */
  readonly maxPerCaller?: number;
}

/** Upgrades `/ws/mcp` requests and keeps this process's sockets. */
export interface WebSocketManager {
  /**
   * Answers the upgrade: 101 with the session running, or a JSON-RPC refusal
   * (426 not a WebSocket upgrade, 400 a subprotocol other than `mcp`, 503 at the cap).
   * Call it inside the request's context: the principal's roles are taken from there.
   */
  upgrade(
    req: Request,
    principal: string,
    stillAuthorized?: () => Promise<boolean>,
  ): Promise<Response>;
  readonly liveCount: number;
  close(): Promise<void>;
}

function refusal(status: number, message: string, headers: Record<string, string> = {}) {
  return new Response(
    JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }),
    { status, headers: { "content-type": "application/json", ...headers } },
  );
}

/** Creates the manager. */
export function createWebSocketManager(options: WebSocketManagerOptions): WebSocketManager {
  const log = options.logger;
  const maxConnections = options.maxConnections ?? 1000;
  const maxPerCaller = options.maxPerCaller ?? 32;
  const live = new Map<string, { transport: WebSocketServerTransport; caller: string }>();
  const perCaller = new Map<string, number>();

  return {
    get liveCount() {
      return live.size;
    },
    async upgrade(req, principal, stillAuthorized) {
      if (
        req.method !== "GET" || (req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket"
      ) {
        return refusal(426, "Upgrade Required: /ws/mcp speaks MCP over a WebSocket", {
          upgrade: "websocket",
        });
      }
      const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",")
        .map((p) => p.trim()).filter((p) => p.length > 0);
      if (offered.length > 0 && !offered.includes(WS_SUBPROTOCOL)) {
        return refusal(400, `Bad Request: the WebSocket subprotocol must be "${WS_SUBPROTOCOL}"`);
      }
      const context = currentRequest();
      const caller = principal === "anonymous" && context?.clientIp
        ? `ip:${context.clientIp}`
        : principal;
      if (live.size >= maxConnections) {
        return refusal(503, "Too many open WebSocket sessions; try again later", {
          "retry-after": "5",
        });
      }
      if ((perCaller.get(caller) ?? 0) >= maxPerCaller) {
        return refusal(
          503,
          `Too many open WebSocket sessions for this caller (limit ${maxPerCaller})`,
          { "retry-after": "5" },
        );
      }
      // Request headers cannot be read once the request is upgraded: everything is taken above.
      const { socket, response } = Deno.upgradeWebSocket(req, {
        ...(offered.length > 0 ? { protocol: WS_SUBPROTOCOL } : {}),
      });
      const transport = new WebSocketServerTransport(socket, {
        limits: options.limits,
        ...(context ? { context } : {}),
        ...(stillAuthorized ? { stillAuthorized } : {}),
      });
      const id = transport.sessionId;
      live.set(id, { transport, caller });
      perCaller.set(caller, (perCaller.get(caller) ?? 0) + 1);
      const server = options.createServer({ principal });
      transport.onclose = () => {
        if (!live.delete(id)) return;
        const n = (perCaller.get(caller) ?? 1) - 1;
        if (n <= 0) perCaller.delete(caller);
        else perCaller.set(caller, n);
        log.info("websocket session closed", { session: id });
      };
      transport.onerror = (e) => log.debug("websocket transport error", { error: e.message });
      socket.addEventListener("open", () => log.info("websocket session opened", { session: id }), {
        once: true,
      });
      await server.connect(transport);
      return response;
    },
    async close() {
      await Promise.allSettled([...live.values()].map((s) => s.transport.close()));
    },
  };
}
