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
import { isPlainObject, onlyKeys, toolCallShape } from "./_tool_call_shape.ts";
import {
  type AuthInfo,
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  createMcpHandler,
  isJsonContentType,
  isLegacyRequest,
  type McpServer,
  PROTOCOL_VERSION_META_KEY,
  type Server,
  SERVER_INFO_META_KEY,
} from "@modelcontextprotocol/server";
import type { Logger } from "../lib/mod.ts";
import { createListenBus, type ListenBus } from "./listen_bus.ts";
import { type ClientStreams, createClientStreams } from "./_client_streams.ts";
import { capUnsentResponse } from "../net/mod.ts";
import type { StatelessToolCall } from "./server.ts";

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
  /**
   * The direct path for a plain `tools/call` (see {@link plainToolCall}): served without the
   * SDK's per-request dispatch. Absent: every request goes through the SDK.
   */
  readonly direct?: DirectToolCalls;
  /**
   * Opens what a `subscriptions/listen` stream's `resourceSubscriptions` need (upstream
   * subscriptions) and says which URIs are honored; the stream is acknowledged only those, and
   * `release` is called when it ends. Absent: the filter goes to the SDK as sent.
   */
  readonly listen?: (uris: readonly string[], principal: string) => Promise<{
    readonly honored: readonly string[];
    release(): void;
  }>;
  /**
   * Bus topics on `subscriptions/listen`: `warden://bus/<topic>` URIs of the filter are the
   * caller's topics, each message a `notifications/resources/updated` of that URI carrying it in
   * `_meta["warden/bus"]`, on that stream only. Absent: such URIs are not honored.
   */
  readonly bus?: ListenBus;
  /**
   * `subscriptions/listen` streams open at once per client IP and per authenticated principal
   * (`--max-sse-per-client`), else 429; unbounded when absent (the SDK's process-wide 1024 only).
   */
  readonly maxListenPerClient?: number;
  /** The identity stamped on a graceful end of a bus stream (as the SDK stamps its own). */
  readonly serverInfo?: {
    readonly name: string;
    readonly title?: string;
    readonly version: string;
  };
}

/** What the direct `tools/call` path needs. */
export interface DirectToolCalls {
  /** Whether `name` is one of Warden's own tools, answered by `call` (not a fixture or upstream). */
  readonly serves: (name: string) => boolean;
  /** The governed call: the same one the SDK-dispatched `tools/call` handler makes. */
  readonly call: StatelessToolCall;
  /** Stamped into each result's `_meta` as the SDK does (`io.modelcontextprotocol/serverInfo`). */
  readonly serverInfo: { readonly name: string; readonly title?: string; readonly version: string };
}

/** A `tools/call` the direct path may answer. */
interface PlainToolCall {
  readonly id: string | number;
  readonly name: string;
  readonly args: Record<string, unknown> | undefined;
  readonly capabilities: Record<string, unknown>;
}

const META_KEYS = new Set([
  PROTOCOL_VERSION_META_KEY,
  CLIENT_INFO_META_KEY,
  CLIENT_CAPABILITIES_META_KEY,
]);
const CLIENT_INFO_KEYS = new Set(["name", "version", "title"]);
/** Tool names whose `Mcp-Name` header is the name itself (no encoding the SDK would decode). */
const PLAIN_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * A request the direct path answers exactly as the SDK's modern path would: a single 2026-07-28
 * `tools/call` POST with a JSON content type, the three standard headers equal to the body's
 * revision, method and tool name, a complete envelope (revision, client info, capabilities) and
 * nothing else in `_meta` — no log level (so tool logging is off), no progress token, no trace
 * context, no `warden/*` keys — no request state or input responses, and capabilities without
 * sampling, elicitation or anything else than `roots`. Anything else — malformed, unusual, or a
 * multi-round-trip — is left to the SDK, which owns every error answer of the validation ladder.
 */
export function plainToolCall(req: Request, body: unknown): PlainToolCall | undefined {
  const shape = req.method === "POST" ? toolCallShape(body) : undefined;
  if (!shape || !PLAIN_NAME.test(shape.name)) return;
  const { id, name, args, meta } = shape;
  if (!isPlainObject(meta) || !onlyKeys(meta, META_KEYS)) return;
  if (meta[PROTOCOL_VERSION_META_KEY] !== "2026-07-28") return;
  const info = meta[CLIENT_INFO_META_KEY];
  if (
    !isPlainObject(info) || !onlyKeys(info, CLIENT_INFO_KEYS) ||
    typeof info.name !== "string" || typeof info.version !== "string" ||
    (info.title !== undefined && typeof info.title !== "string")
  ) return;
  const capabilities = meta[CLIENT_CAPABILITIES_META_KEY];
  if (!isPlainObject(capabilities)) return;
  for (const k in capabilities) {
    const roots = capabilities[k];
    if (k !== "roots" || !isPlainObject(roots)) return;
    for (const r in roots) if (r !== "listChanged" || typeof roots[r] !== "boolean") return;
  }
  const h = req.headers;
  if (
    h.get("mcp-protocol-version") !== "2026-07-28" || h.get("mcp-method") !== "tools/call" ||
    h.get("mcp-name") !== name || !isJsonContentType(h.get("content-type"))
  ) return;
  return { id, name, args, capabilities };
}

/** The SDK's encoding of a thrown error's code on 2026-07-28 (`-32002` is `-32602` there). */
const wireErrorCode = (code: number) => code === -32002 ? -32602 : code;

function isListen(body: unknown): boolean {
  return isPlainObject(body) && body.method === "subscriptions/listen";
}

/**
 * A listen request served in a place of its client's: refused (429) when the client holds its
 * maximum, else the place is held for as long as the stream lasts, and given back at once when
 * the answer is no stream (a refusal). The stream is also dropped past 8 MiB unsent.
 */
async function placedListen(
  streams: ClientStreams,
  ctx: { parsedBody?: unknown; principal: string; clientIp?: string },
  serve: () => Promise<Response>,
): Promise<Response> {
  const place = streams.take(ctx.principal, ctx.clientIp);
  if (typeof place === "string") {
    const id = (ctx.parsedBody as { id?: unknown }).id ?? null;
    return new Response(
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        error: { code: -32603, message: `Too Many Streams: ${place}` },
      }),
      { status: 429, headers: { "content-type": "application/json", "retry-after": "30" } },
    );
  }
  let res: Response;
  try {
    res = await serve();
  } catch (e) {
    place.release();
    throw e;
  }
  if (res.body === null || !res.headers.get("content-type")?.includes("event-stream")) {
    place.release();
    return res;
  }
  return capUnsentResponse(res, { onEnd: place.release });
}

/** The 2026-07-28 handler for `/mcp`. */
export interface ModernHandler {
  /** Whether a request belongs to the 2025-era sessionful path (SDK's own classification). */
  isLegacy(req: Request, parsedBody: unknown): Promise<boolean>;
  handle(
    req: Request,
    ctx: { parsedBody?: unknown; principal: string; clientIp?: string },
  ): Promise<Response>;
  /** Servers built so far (the bench and a test watch this stay at peak concurrency, not requests). */
  readonly built: number;
  /** Servers serving an exchange right now. */
  readonly busy: number;
  /** `tools/call` requests answered on the direct path (without the SDK's dispatch). */
  readonly directCalls: number;
  /** Publishes `notifications/tools/list_changed` to open `subscriptions/listen` streams. */
  toolsChanged(): void;
  /** Publishes `notifications/prompts/list_changed` to open `subscriptions/listen` streams. */
  promptsChanged(): void;
  /** Publishes `notifications/resources/list_changed` to open `subscriptions/listen` streams. */
  resourcesChanged(): void;
  /** Publishes `notifications/resources/updated` to the open streams whose filter names `uri`. */
  resourceUpdated(uri: string): void;
  close(): Promise<void>;
}

/**
 * Creates the modern handler.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { McpServer } from "@modelcontextprotocol/server";
 * import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
 * import { z } from "zod";
 * import { createModernHandler } from "./modern.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * function createServer() {
 *   const server = new McpServer({ name: "demo", version: "1.0.0" });
 *   server.registerTool("echo", { inputSchema: z.object({ text: z.string() }) }, ({ text }) => ({
 *     content: [{ type: "text", text }],
 *   }));
 *   return server;
 * }
 * const modern = createModernHandler({ createServer, logger: silentLogger });
 * // What /mcp does with each request, here the client's fetch (no socket): 2026-era requests
 * // are the handler's, for the principal the request authenticated as.
 * const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
 *   const req = new Request(input, init);
 *   const body = req.method === "POST" ? await req.clone().json() : undefined;
 *   assert.equal(await modern.isLegacy(req, body), false);
 *   return await modern.handle(req, { parsedBody: body, principal: "alice" });
 * };
 * const client = new Client({ name: "example", version: "1" }, {
 *   versionNegotiation: { mode: { pin: "2026-07-28" } },
 * });
 * await client.connect(new StreamableHTTPClientTransport(new URL("http://warden.test/mcp"), { fetch }));
 * const result = await client.callTool({ name: "echo", arguments: { text: "hi" } });
 * assert.deepEqual(result.content, [{ type: "text", text: "hi" }]);
 * await client.close();
 * await modern.close();
 * ```
 */
// Kept whole: the 2026 handler's closures share the idle timer, the waiters and the built-server
// cache of one handler.
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

  const listenStreams = options.maxListenPerClient === undefined
    ? undefined
    : createClientStreams(options.maxListenPerClient, "listen streams (--max-sse-per-client)");
  const listenBus = createListenBus({
    ...(options.bus ? { bus: options.bus } : {}),
    ...(options.serverInfo ? { serverInfo: options.serverInfo } : {}),
    logger: log,
  });
  const handler = createMcpHandler(() => acquire(), {
    // 2025-era traffic never reaches this handler: /mcp routes it to the sessionful path.
    legacy: "reject",
    bus: listenBus.events,
    onerror: (e) => log.debug("modern MCP request refused or failed", { error: e.message }),
  });

  const direct = options.direct;
  let directCalls = 0;
  /** The direct path: the governed call, encoded as the SDK encodes a handler's result. */
  async function serveDirect(call: PlainToolCall, principal: string, signal: AbortSignal) {
    let message: Record<string, unknown>;
    try {
      const result = await direct!.call({
        name: call.name,
        args: call.args,
        principal,
        signal,
        capabilities: call.capabilities,
      }) as Record<string, unknown>;
      // The SDK's 2026-07-28 encode contract for tools/call: `resultType` stamped when absent,
      // then the server's identity into `_meta` unless the handler put one there.
      const typed = result.resultType === undefined
        ? { ...result, resultType: "complete" }
        : result;
      const meta = typed._meta;
      const encoded = meta === undefined
        ? { ...typed, _meta: { [SERVER_INFO_META_KEY]: direct!.serverInfo } }
        : isPlainObject(meta) && meta[SERVER_INFO_META_KEY] === undefined
        ? { ...typed, _meta: { ...meta, [SERVER_INFO_META_KEY]: direct!.serverInfo } }
        : typed;
      message = { result: encoded, jsonrpc: "2.0", id: call.id };
    } catch (e) {
      // A handler's error, answered as the SDK answers one (HTTP 200, JSON-RPC error).
      const err = e as { code?: unknown; message?: string; data?: unknown };
      const code = Number.isSafeInteger(err?.code) ? err.code as number : -32603;
      message = {
        jsonrpc: "2.0",
        id: call.id,
        error: {
          code: wireErrorCode(code),
          message: err?.message ?? "Internal error",
          ...(err?.data !== undefined ? { data: err.data } : {}),
        },
      };
    }
    return Response.json(message, { status: 200, headers: { "Content-Type": "application/json" } });
  }
  /**
   * A single 2025-era request or notification, decided without the SDK's classifier (a zod
   * parse of the whole message on every call of a session): a JSON-RPC message with a method,
   * no envelope claim in `params._meta`, and no 2026 `MCP-Protocol-Version` header is legacy
   * by the SDK's own rules. Anything else (batches, responses, claims) goes to the SDK.
   */
  const plainLegacy = (req: Request, body: unknown): boolean => {
    if (req.method !== "POST" || body === null || typeof body !== "object" || Array.isArray(body)) {
      return false;
    }
    const m = body as { jsonrpc?: unknown; method?: unknown; params?: unknown };
    if (m.jsonrpc !== "2.0" || typeof m.method !== "string") return false;
    const header = req.headers.get("mcp-protocol-version")?.trim();
    if (header !== undefined && !(header < "2026-07-28")) return false;
    const params = m.params;
    if (params === undefined) return true;
    if (params === null || typeof params !== "object" || Array.isArray(params)) return false;
    const meta = (params as { _meta?: unknown })._meta;
    if (meta === undefined) return true;
    if (meta === null || typeof meta !== "object" || Array.isArray(meta)) return false;
    return !(PROTOCOL_VERSION_META_KEY in meta);
  };
  /** The `resourceSubscriptions` of a `subscriptions/listen` request, when a hook wants them. */
  const listenUris = (body: unknown): string[] | undefined => {
    if (options.listen === undefined && options.bus === undefined) return undefined;
    if (!isPlainObject(body)) return undefined;
    if (body.method !== "subscriptions/listen" || !isPlainObject(body.params)) return undefined;
    const filter = body.params.notifications;
    if (!isPlainObject(filter) || !Array.isArray(filter.resourceSubscriptions)) return undefined;
    const uris = filter.resourceSubscriptions;
    return uris.every((u) => typeof u === "string") ? uris as string[] : undefined;
  };
  /**
   * The SDK's refusal of a listen request, asked before anything is opened for it: the request
   * is served once with its `resourceSubscriptions` emptied (so it names nothing upstream or on
   * the bus) and, if the SDK accepts it, that stream is cancelled at once. Undefined when the SDK
   * accepts the request. One more SDK dispatch per listen that names resources, so that one the
   * SDK refuses (its filter, headers, envelope, version) costs the upstreams nothing.
   */
  async function listenRefusal(
    req: Request,
    body: Record<string, unknown>,
    authInfo: AuthInfo,
  ): Promise<Response | undefined> {
    const params = body.params as Record<string, unknown>;
    const filter = params.notifications as Record<string, unknown>;
    const probe = {
      ...body,
      params: { ...params, notifications: { ...filter, resourceSubscriptions: [] } },
    };
    const response = await handler.fetch(req, { authInfo, parsedBody: probe });
    if (response.body !== null && response.headers.get("content-type")?.includes("event-stream")) {
      await response.body.cancel().catch(() => {});
      return undefined;
    }
    return response;
  }
  /**
   * A listen stream naming resources: once the SDK has accepted the request (see
   * {@link listenRefusal}), the hook opens their subscriptions, the SDK's listen router serves
   * the stream with only the honored URIs in its filter, and the subscriptions are released when
   * the stream ends (closed by the server, cancelled, or the client gone) — or at once, should
   * the SDK refuse the request after all (its subscription limit reached in between).
   */
  async function serveListen(
    req: Request,
    body: Record<string, unknown>,
    uris: readonly string[],
    authInfo: AuthInfo,
    principal: string,
  ): Promise<Response> {
    const busUris = listenBus.busUris(uris);
    const others = uris.filter((u) => !busUris.includes(u));
    const opens = busUris.length > 0 || (options.listen !== undefined && others.length > 0);
    const refused = opens ? await listenRefusal(req, body, authInfo) : undefined;
    if (refused !== undefined) return refused;
    const feed = busUris.length > 0 ? await listenBus.open(body.id, principal, busUris) : undefined;
    if (feed instanceof Response) return feed;
    let held: { readonly honored: readonly string[]; release(): void };
    try {
      held = options.listen !== undefined && others.length > 0
        ? await options.listen(others, principal)
        : { honored: [], release() {} };
    } catch (e) {
      feed?.stop.abort();
      throw e;
    }
    let released = false;
    // The end of the stream (closed, or cancelled when the client goes) releases the
    // subscriptions; Deno cancels a response body whose client has gone.
    const release = () => {
      if (released) return;
      released = true;
      held.release();
      feed?.stop.abort();
    };
    const params = body.params as Record<string, unknown>;
    const filter = params.notifications as Record<string, unknown>;
    const narrowed = {
      ...body,
      params: {
        ...params,
        notifications: {
          ...filter,
          resourceSubscriptions: [...held.honored, ...(feed?.uris ?? [])],
        },
      },
    };
    let response: Response;
    try {
      response = await listenBus.run(
        feed,
        () => handler.fetch(req, { authInfo, parsedBody: narrowed }),
      );
    } catch (e) {
      release();
      throw e;
    }
    if (response.body === null || !response.headers.get("content-type")?.includes("event-stream")) {
      release();
      return response;
    }
    return listenBus.wrap(response, feed, release);
  }
  const directCall = (req: Request, body: unknown) => {
    if (direct === undefined || body === undefined) return undefined;
    const call = plainToolCall(req, body);
    return call && direct.serves(call.name) ? call : undefined;
  };

  return {
    // A plain 2026-07-28 tools/call carries the envelope claim: modern, as the SDK would say.
    isLegacy: (req, parsedBody) => {
      if (plainLegacy(req, parsedBody)) return Promise.resolve(true);
      return directCall(req, parsedBody) !== undefined
        ? Promise.resolve(false)
        : isLegacyRequest(req, parsedBody);
    },
    handle(req, ctx) {
      const call = directCall(req, ctx.parsedBody);
      if (call !== undefined) {
        directCalls++;
        return serveDirect(call, ctx.principal, req.signal);
      }
      const authInfo: AuthInfo = {
        token: "",
        clientId: ctx.principal,
        scopes: [],
        extra: { [PRINCIPAL_AUTH_KEY]: ctx.principal },
      };
      const serve = () => {
        const uris = listenUris(ctx.parsedBody);
        if (uris !== undefined) {
          return serveListen(
            req,
            ctx.parsedBody as Record<string, unknown>,
            uris,
            authInfo,
            ctx.principal,
          );
        }
        return handler.fetch(req, {
          authInfo,
          ...(ctx.parsedBody !== undefined ? { parsedBody: ctx.parsedBody } : {}),
        });
      };
      return listenStreams !== undefined && isListen(ctx.parsedBody)
        ? placedListen(listenStreams, ctx, serve)
        : serve();
    },
    get built() {
      return built;
    },
    get busy() {
      return out.size;
    },
    get directCalls() {
      return directCalls;
    },
    toolsChanged() {
      handler.notify.toolsChanged();
    },
    promptsChanged() {
      handler.notify.promptsChanged();
    },
    resourcesChanged() {
      handler.notify.resourcesChanged();
    },
    resourceUpdated(uri) {
      handler.notify.resourceUpdated(uri);
    },
    async close() {
      await handler.close();
      for (const w of waiters.splice(0)) void w;
    },
  };
}
