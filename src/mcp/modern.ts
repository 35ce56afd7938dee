/**
 * The MCP 2026-07-28 path on `/mcp`: stateless, per-request `_meta` envelope,
 * `server/discover`, `Mcp-Method`/`Mcp-Name` header validation and caching
 * hints, served by the SDK's `createMcpHandler` (its validation ladder,
 * capability checks, listen router and era codec) — but without a whole-server
 * construction per request. The SDK calls its factory for every exchange; ours
 * hands out an idle server from a pool built up front and grown only to the
 * peak concurrency (capped), and takes it back when the exchange closes. The
 * catalogue (the registry's tool list, resources, prompts) is built once per
 * pooled server and shared by every request it serves.
 *
 * Nothing here is per-client state: the principal arrives with each request
 * (from auth, via `authInfo`), so any process sharing the KV answers any
 * request.
 */
import {
  type AuthInfo,
  createMcpHandler,
  isLegacyRequest,
  type McpServer,
  type Server,
} from "@modelcontextprotocol/server";
import type { Logger } from "../lib/mod.ts";

/** The modern revisions served on `/mcp`. */
export const MODERN_PROTOCOL_VERSIONS: readonly string[] = ["2026-07-28"];

/** `authInfo.extra` key carrying Warden's principal to the tool handlers. */
export const PRINCIPAL_AUTH_KEY = "warden/principal";

/** Reads the principal the modern path attached to a request, if any. */
export function principalFromAuth(authInfo: AuthInfo | undefined): string | undefined {
  const value = authInfo?.extra?.[PRINCIPAL_AUTH_KEY];
  return typeof value === "string" ? value : undefined;
}

/** Options of the modern handler. */
export interface ModernOptions {
  /** Builds one pooled server (called only to grow the pool, never per request). */
  readonly createServer: () => McpServer;
  readonly logger: Logger;
  /** Servers built before the first request. */
  readonly initialServers?: number;
  /** Most servers the pool holds; requests beyond wait for a free one. */
  readonly maxServers?: number;
  /** How long a request waits for a free server before it is refused. */
  readonly acquireTimeoutMs?: number;
}

/** The 2026-07-28 handler for `/mcp`. */
export interface ModernHandler {
  /** Whether a request belongs to the 2025-era sessionful path (SDK's own classification). */
  isLegacy(req: Request, parsedBody: unknown): Promise<boolean>;
  handle(req: Request, ctx: { parsedBody?: unknown; principal: string }): Promise<Response>;
  /** Servers built so far (the bench and a test watch this stay at peak concurrency, not requests). */
  readonly built: number;
  /** Servers serving an exchange right now. */
  readonly busy: number;
  /** Publishes `notifications/tools/list_changed` to open `subscriptions/listen` streams. */
  toolsChanged(): void;
  /** Publishes `notifications/prompts/list_changed` to open `subscriptions/listen` streams. */
  promptsChanged(): void;
  close(): Promise<void>;
}

/**
 * Creates the modern handler.
 *
 * @example
 * ```ts
 * const modern = createModernHandler({ createServer: () => newModernServer(), logger });
 * if (!(await modern.isLegacy(req, body))) return modern.handle(req, { parsedBody: body, principal });
 * ```
 */
export function createModernHandler(options: ModernOptions): ModernHandler {
  const maxServers = options.maxServers ?? 256;
  const acquireTimeoutMs = options.acquireTimeoutMs ?? 30_000;
  const log = options.logger;
  const idle: McpServer[] = [];
  const waiters: ((server: McpServer) => void)[] = [];
  const owner = new WeakMap<Server, McpServer>();
  const out = new Set<McpServer>();
  let built = 0;

  function build(): McpServer {
    const server = options.createServer();
    built++;
    owner.set(server.server, server);
    // Back to the pool when the SDK closes the exchange's transport. The SDK wraps this
    // callback for the exchange and restores it afterwards.
    server.server.onclose = () => release(server);
    // Some SDK paths (subscriptions/listen, early rejections) close a server that was
    // never connected: no transport, so no onclose. Give it back in that case too.
    const close = server.close.bind(server);
    server.close = async () => {
      const connected = server.server.transport !== undefined;
      await close();
      if (!connected) release(server);
    };
    return server;
  }

  function release(server: McpServer): void {
    if (!out.delete(server)) return;
    const next = waiters.shift();
    if (next) {
      out.add(server);
      next(server);
    } else idle.push(server);
  }

  function acquire(): Promise<McpServer> {
    const ready = idle.pop() ?? (built < maxServers ? build() : undefined);
    if (ready) {
      out.add(ready);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = waiters.indexOf(take);
        if (at >= 0) waiters.splice(at, 1);
        reject(new Error(`Cannot serve the request: all ${maxServers} MCP servers are busy`));
      }, acquireTimeoutMs);
      const take = (server: McpServer) => {
        clearTimeout(timer);
        resolve(server);
      };
      waiters.push(take);
    });
  }

  for (let i = 0; i < (options.initialServers ?? 4); i++) idle.push(build());

  const handler = createMcpHandler(() => acquire(), {
    // 2025-era traffic never reaches this handler: /mcp routes it to the sessionful path.
    legacy: "reject",
    onerror: (e) => log.debug("modern MCP request refused or failed", { error: e.message }),
  });

  return {
    isLegacy: (req, parsedBody) => isLegacyRequest(req, parsedBody),
    handle(req, ctx) {
      const authInfo: AuthInfo = {
        token: "",
        clientId: ctx.principal,
        scopes: [],
        extra: { [PRINCIPAL_AUTH_KEY]: ctx.principal },
      };
      return handler.fetch(req, {
        authInfo,
        ...(ctx.parsedBody !== undefined ? { parsedBody: ctx.parsedBody } : {}),
      });
    },
    get built() {
      return built;
    },
    get busy() {
      return out.size;
    },
    toolsChanged() {
      handler.notify.toolsChanged();
    },
    promptsChanged() {
      handler.notify.promptsChanged();
    },
    async close() {
      await handler.close();
      for (const w of waiters.splice(0)) void w;
    },
  };
}
