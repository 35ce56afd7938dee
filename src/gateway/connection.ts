/**
 * One pooled MCP client connection to one upstream, built on the v2 SDK
 * client (`@modelcontextprotocol/client`), which negotiates the protocol era
 * per upstream: `server/discover` first, the 2025 `initialize` handshake when
 * the upstream is older. Connecting is lazy and coalesced; a lost connection
 * is re-established on the next use, with exponential backoff between failed
 * attempts so a dead upstream costs callers milliseconds, not a connect
 * timeout each.
 *
 * @module
 */
import {
  type CallToolResult,
  Client,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  specTypeSchemas,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type Tool,
  type Transport,
} from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { type Logger, VERSION } from "../lib/mod.ts";
import { traceMeta } from "../usage/mod.ts";
import type { UpstreamConfig } from "./manifest.ts";
import { sandboxedCommand } from "./sandbox.ts";
import { boundedMessages, MAX_UPSTREAM_MESSAGE_BYTES } from "./message_bound.ts";
import { answerAsJson } from "./sse_answer.ts";

/** The upstream cannot be reached now; `retryAfterS` says when to try again. */
export class UpstreamUnavailableError extends Error {
  override name = "UpstreamUnavailableError";
  constructor(message: string, readonly retryAfterS: number) {
    super(message);
  }
}

/** What the pool reports about a connection. */
export interface ConnectionState {
  readonly connected: boolean;
  readonly protocolVersion?: string;
  readonly serverName?: string;
  readonly serverVersion?: string;
  readonly lastError?: string;
  readonly failures: number;
}

/** The resources and prompts requests Warden passes through to an upstream. */
export type ContentMethod =
  | "resources/list"
  | "resources/templates/list"
  | "resources/read"
  | "resources/subscribe"
  | "resources/unsubscribe"
  | "prompts/list"
  | "prompts/get";

/** A connection to one upstream. */
export interface UpstreamConnection {
  readonly name: string;
  state(): ConnectionState;
  listTools(timeoutMs: number): Promise<Tool[]>;
  callTool(
    name: string,
    args: Record<string, unknown>,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<CallToolResult>;
  ping(timeoutMs: number): Promise<void>;
  /**
   * Sends a resources or prompts request; `null` when the upstream did not
   * declare that capability (nothing is sent then).
   */
  content(
    method: ContentMethod,
    params: Record<string, unknown> | undefined,
    timeoutMs: number,
  ): Promise<Record<string, unknown> | null>;
  /** Called when the upstream says its tool list changed. */
  onToolsChanged?: () => void;
  /** Called when the upstream says its prompt list changed. */
  onPromptsChanged?: () => void;
  /** Called when the upstream says its resource list changed. */
  onResourcesChanged?: () => void;
  /** Called with the upstream's own URI when a subscribed resource changed. */
  onResourceUpdated?: (uri: string) => void;
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

/** What an HTTP upstream is sent besides the manifest's headers, asked for at every request. */
export interface CredentialSource {
  /** The headers to present now (a stored credential or an OAuth access token). */
  headers(): Promise<Readonly<Record<string, string>> | undefined>;
  /** The upstream answered 401 to them: drop any cached token before the one retry. */
  rejected?(): void;
}

/**
 * A fetch that adds the credential's headers to every request the transport
 * makes (the stored credential wins over a same-named manifest header), so a
 * rotated credential or a renewed token applies from the next request, not
 * the next connection. A 401 is retried once with fresh headers.
 */
function credentialedFetch(source: CredentialSource, base: typeof fetch): typeof fetch {
  const send = async (input: RequestInfo | URL, init: RequestInit | undefined) => {
    const extra = await source.headers();
    if (!extra) return await base(input, init);
    const headers = new Headers(init?.headers);
    for (const [k, v] of Object.entries(extra)) headers.set(k, v);
    return await base(input, { ...init, headers });
  };
  return async (input, init) => {
    const res = await send(input, init);
    // A body stream cannot be sent twice; the transports send strings.
    const replayable = init?.body === undefined || typeof init.body === "string";
    if (res.status !== 401 || !source.rejected || !replayable) return res;
    source.rejected();
    await res.body?.cancel();
    return await send(input, init);
  };
}

function transportFor(
  config: UpstreamConfig,
  options: { logger: Logger; sandbox: boolean },
  credential?: CredentialSource,
): Transport {
  // Every answer is bounded per message before the SDK reads it (message_bound.ts).
  const base = boundedMessages(fetch, `upstream ${config.name}`, {
    sseGets: config.transport !== "streamable-http",
  });
  const httpFetch = credential ? credentialedFetch(credential, base) : base;
  const transportOptions = {
    ...(config.headers ? { requestInit: { headers: { ...config.headers } } } : {}),
    fetch: httpFetch,
  };
  if (config.transport === "streamable-http") {
    return new StreamableHTTPClientTransport(new URL(config.url!), {
      ...transportOptions,
      fetch: answerAsJson(httpFetch),
    });
  }
  if (config.transport === "sse") {
    return new SSEClientTransport(new URL(config.url!), transportOptions);
  }
  const sandboxed = options.sandbox && config.sandbox?.enabled !== false;
  const { command, args, env } = sandboxed
    ? sandboxedCommand(config)
    : { command: config.command!, args: [...(config.args ?? [])], env: { ...(config.env ?? {}) } };
  const transport = new StdioClientTransport({
    command,
    args,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: "/tmp", ...env },
    stderr: "pipe",
    // The same per-message bound as HTTP answers: a longer line closes the transport (the call
    // in flight fails as the upstream's fault; the next one starts it again).
    maxBufferSize: MAX_UPSTREAM_MESSAGE_BYTES,
  });
  // The upstream's stderr goes to Warden's log under its name, one line per entry.
  const stderr = transport.stderr as unknown as
    | { on(event: "data", fn: (chunk: Uint8Array) => void): void }
    | null;
  let pending = "";
  const decoder = new TextDecoder();
  stderr?.on("data", (chunk) => {
    pending += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).slice(0, 2000);
      pending = pending.slice(nl + 1);
      if (line.trim()) options.logger.info("upstream stderr", { upstream: config.name, line });
    }
    if (pending.length > 8192) pending = pending.slice(-8192);
  });
  return transport;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message.slice(0, 300) : String(e).slice(0, 300);
}

/**
 * The server forgot our session (it restarted) and says so before processing
 * the request: re-initialise and send it again. The spec answers 404; the
 * reference servers (server-everything 2026.8.31) answer 400 "No valid
 * session ID provided".
 */
function sessionLost(e: unknown): boolean {
  if (!(e instanceof SdkHttpError)) return false;
  return e.status === 404 || (e.status === 400 && /session/i.test(e.message));
}

/** SDK errors that say nothing about the connection: a slow call, or a request the SDK itself
 * refused to send on this connection's era or capabilities. */
const CONNECTION_FINE: ReadonlySet<string> = new Set([
  SdkErrorCode.RequestTimeout,
  SdkErrorCode.MethodNotSupportedByProtocolVersion,
  SdkErrorCode.CapabilityNotSupported,
]);

/**
 * Whether the connection itself is suspect after this error: anything but a
 * JSON-RPC error from a live server, a slow call or a request the SDK would
 * not send (closing the shared connection for one of those cut every other
 * caller's calls in flight). The next use reconnects.
 */
function connectionBroken(e: unknown): boolean {
  if (e instanceof ProtocolError) return false;
  return !(e instanceof SdkError && CONNECTION_FINE.has(e.code));
}

/**
 * Creates a lazily connecting, self-healing connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createConnection, UpstreamUnavailableError } from "./connection.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * // Port 9 is one fetch never connects to: this upstream is unreachable wherever this runs.
 * const conn = createConnection(
 *   { name: "ev", transport: "streamable-http", url: "http://127.0.0.1:9/mcp" },
 *   { logger: silentLogger, connectTimeoutMs: 5_000, sandbox: false },
 * );
 * assert.deepEqual(conn.state(), { connected: false, failures: 0 }); // connecting is lazy
 * await assert.rejects(conn.listTools(5_000), UpstreamUnavailableError);
 * // Within the backoff the next call fails at once, saying when to try again.
 * await assert.rejects(conn.listTools(5_000), (e: UpstreamUnavailableError) => e.retryAfterS >= 1);
 * assert.equal(conn.state().failures, 1);
 * await conn.close();
 * ```
 */
// Kept whole: one upstream connection's state machine (connecting, failures, backoff,
// subscriptions) in closures over the same variables.
export function createConnection(
  config: UpstreamConfig,
  options: {
    logger: Logger;
    connectTimeoutMs: number;
    /** Run stdio upstreams under bubblewrap. */
    sandbox: boolean;
    /**
     * The credential to present, asked for at every HTTP request (so a rotated
     * one is used from the next call on); HTTP transports only.
     */
    credential?: CredentialSource;
    /**
     * Runs before every connection attempt (the first and each reconnect); a throw fails that
     * attempt like a refused connection. The gateway passes the SSRF guard here, so a
     * registration is judged by the connecting process's allowlist and the host's addresses now.
     */
    beforeConnect?: () => Promise<void>;
  },
): UpstreamConnection {
  const log = options.logger;
  let client: Client | undefined;
  let connecting: Promise<Client> | undefined;
  let failures = 0;
  let nextAttemptAt = 0;
  let lastError: string | undefined;
  let closed = false;
  let everConnected = false;
  /** Upstream URIs this connection is subscribed to (renewed on a new session). */
  const subscribed = new Set<string>();
  const self: UpstreamConnection = {
    name: config.name,
    state,
    listTools,
    callTool,
    content,
    ping,
    close,
  };

  function state(): ConnectionState {
    const info = client?.getServerVersion();
    return {
      connected: client !== undefined,
      ...(client?.getNegotiatedProtocolVersion()
        ? { protocolVersion: client.getNegotiatedProtocolVersion() }
        : {}),
      ...(info ? { serverName: info.name, serverVersion: info.version } : {}),
      ...(lastError ? { lastError } : {}),
      failures,
    };
  }

  async function open(): Promise<Client> {
    await options.beforeConnect?.();
    const c = new Client({ name: "warden-gateway", version: VERSION }, {
      // SSE is the 2024-11 transport: there is no modern era to discover on it.
      versionNegotiation: { mode: config.transport === "sse" ? "legacy" : "auto" },
      listChanged: {
        tools: {
          onChanged: () => self.onToolsChanged?.(),
        },
        // Relayed as a signal only: the gateway lists again itself when it needs to.
        prompts: { autoRefresh: false, onChanged: () => self.onPromptsChanged?.() },
        resources: { autoRefresh: false, onChanged: () => self.onResourcesChanged?.() },
      },
    });
    const credential = config.transport === "stdio" ? undefined : options.credential;
    const transport = transportFor(config, options, credential);
    c.onclose = () => {
      if (client === c) client = undefined;
    };
    c.onerror = (e) => log.debug("upstream transport error", { upstream: config.name, error: e });
    c.setNotificationHandler("notifications/resources/updated", (n) => {
      const uri = n.params?.uri;
      if (typeof uri === "string" && uri.length <= 4096) self.onResourceUpdated?.(uri);
    });
    try {
      await c.connect(transport, { timeout: options.connectTimeoutMs });
    } catch (e) {
      await c.close().catch(() => {});
      throw e;
    }
    return c;
  }

  function ensure(): Promise<Client> {
    if (closed) return Promise.reject(new UpstreamUnavailableError("gateway is closing", 1));
    if (client) return Promise.resolve(client);
    if (connecting) return connecting;
    const now = Date.now();
    if (now < nextAttemptAt) {
      return Promise.reject(
        new UpstreamUnavailableError(
          `upstream ${config.name} is unreachable (${lastError ?? "connect failed"}); ` +
            `next reconnect attempt in ${Math.ceil((nextAttemptAt - now) / 1000)} s`,
          Math.max(1, Math.ceil((nextAttemptAt - now) / 1000)),
        ),
      );
    }
    connecting = open().then((c) => {
      const reconnected = everConnected;
      everConnected = true;
      client = c;
      failures = 0;
      lastError = undefined;
      // A new upstream session knows nothing of the old one's subscriptions: renew them.
      if (reconnected && subscribed.size > 0) resubscribe(c);
      log.info("upstream connected", {
        upstream: config.name,
        protocol: c.getNegotiatedProtocolVersion(),
      });
      return c;
    }, (e) => {
      failures++;
      lastError = describe(e);
      const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures - 1, 10));
      nextAttemptAt = Date.now() + backoff;
      log.warn("cannot connect upstream", { upstream: config.name, error: lastError, backoff });
      throw new UpstreamUnavailableError(
        `upstream ${config.name} is unreachable: ${lastError}`,
        Math.max(1, Math.ceil(backoff / 1000)),
      );
    }).finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  async function withClient<T>(fn: (c: Client) => Promise<T>, retry: boolean): Promise<T> {
    const c = await ensure();
    try {
      return await fn(c);
    } catch (e) {
      const lost = sessionLost(e);
      if (!lost && !connectionBroken(e)) throw e;
      if (client === c) client = undefined;
      await c.close().catch(() => {});
      if (!lost || !retry) throw e;
      // The request never reached a live session: reconnecting and sending it again is safe.
      log.info("upstream session lost; re-initialising", { upstream: config.name });
      return await fn(await ensure());
    }
  }

  async function listTools(timeoutMs: number): Promise<Tool[]> {
    const result = await withClient(
      (c) => c.listTools(undefined, { timeout: timeoutMs, cacheMode: "bypass" }),
      true,
    );
    return result.tools;
  }

  async function callTool(
    name: string,
    args: Record<string, unknown>,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<CallToolResult> {
    // The caller's trace continues upstream (SEP-414: W3C trace context in `_meta`).
    const meta = traceMeta();
    const params = Object.keys(meta).length > 0
      ? { name, arguments: args, _meta: meta }
      : { name, arguments: args };
    const requestOptions = {
      timeout: opts.timeoutMs,
      maxTotalTimeout: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    return await withClient((c) => {
      // A 2025-era upstream: the request with the spec's CallToolResult schema, which is what
      // callTool sends and checks there, without its per-call extras — a probe of the era
      // registry that validates `undefined` and formats the zod error (the largest SDK cost of
      // a routed call in a --cpu-prof), and a look-up of a tools/list cache Warden never fills
      // (its lists bypass it). 2026-07-28 upstreams keep callTool: it mirrors Mcp-Param headers.
      if ((c.getNegotiatedProtocolVersion() ?? "") < "2026") {
        return c.request(
          { method: "tools/call", params },
          specTypeSchemas.CallToolResult,
          requestOptions,
        ) as Promise<CallToolResult>;
      }
      return c.callTool(params, requestOptions) as Promise<CallToolResult>;
    }, true);
  }

  async function content(
    method: ContentMethod,
    params: Record<string, unknown> | undefined,
    timeoutMs: number,
  ): Promise<Record<string, unknown> | null> {
    return await withClient(async (c) => {
      const caps = c.getServerCapabilities() ?? {};
      const wanted = method.startsWith("resources/") ? caps.resources : caps.prompts;
      if (!wanted) return null;
      const opts = { timeout: timeoutMs, maxTotalTimeout: timeoutMs };
      switch (method) {
        case "resources/list":
          return await c.listResources(params as never, opts) as Record<string, unknown>;
        case "resources/templates/list":
          return await c.listResourceTemplates(params as never, opts) as Record<string, unknown>;
        case "resources/subscribe": {
          if (!caps.resources?.subscribe) return null;
          const uri = String(params?.uri);
          const answer = await c.subscribeResource({ uri }, opts) as Record<string, unknown>;
          subscribed.add(uri);
          return answer;
        }
        case "resources/unsubscribe": {
          const uri = String(params?.uri);
          subscribed.delete(uri);
          if (!caps.resources?.subscribe) return null;
          return await c.unsubscribeResource({ uri }, opts) as Record<string, unknown>;
        }
        case "resources/read":
          return await c.readResource(params as never, opts) as Record<string, unknown>;
        case "prompts/list":
          return await c.listPrompts(params as never, opts) as Record<string, unknown>;
        case "prompts/get":
          return await c.getPrompt(params as never, opts) as Record<string, unknown>;
      }
    }, true);
  }

  function resubscribe(c: Client): void {
    for (const uri of subscribed) {
      c.subscribeResource({ uri }, { timeout: options.connectTimeoutMs }).catch((e) =>
        log.warn("cannot renew an upstream resource subscription", {
          upstream: config.name,
          error: describe(e),
        })
      );
    }
  }

  async function ping(timeoutMs: number): Promise<void> {
    await withClient(async (c) => {
      // 2026-07-28 has no ping: there a tools/list is the liveness check (before, every probe of
      // a 2026 upstream failed, so one down at start was never listed once it came up).
      if ((c.getNegotiatedProtocolVersion() ?? "") >= "2026") {
        await c.listTools(undefined, { timeout: timeoutMs });
      } else {
        await c.ping({ timeout: timeoutMs });
      }
    }, false);
  }

  async function close(): Promise<void> {
    closed = true;
    const c = client ?? await connecting?.catch(() => undefined);
    client = undefined;
    await c?.close().catch(() => {});
  }

  return self;
}
