/**
 * Composition root: wires configuration, KV, tools, MCP surfaces and the HTTP
 * app together. It opens nothing itself — main.ts (or a test) passes in the
 * KV handle and logger — so tests can build the whole server on `:memory:`.
 */
import type { Config } from "./config.ts";
import { defaultAllowedHosts } from "./config.ts";
import { createDeadlineScheduler } from "./deadline.ts";
import { createHttpApp } from "./http/mod.ts";
import type { Logger } from "./log.ts";
import { createLedger, type Ledger, loadVaultIdentity, type VaultIdentity } from "./vault/mod.ts";
import {
  conformanceExtension,
  createLegacySseManager,
  createMcpServer,
  createSessionStore,
  createStreamableManager,
  type LegacySseManager,
  type ServerExtension,
  type SessionStore,
  type StreamableManager,
} from "./mcp/mod.ts";
import { createBatchWriter } from "./store/mod.ts";
import {
  conformanceTools,
  createToolRegistry,
  type Sealer,
  type ToolDefinition,
  type ToolRegistry,
  utilityTools,
} from "./tools/mod.ts";
import { VERSION } from "./version.ts";

/** A wired server, ready to be handed to `Deno.serve`. */
export interface App {
  readonly fetch: (req: Request) => Response | Promise<Response>;
  readonly registry: ToolRegistry;
  readonly sessions: SessionStore;
  readonly streamable: StreamableManager;
  readonly sse: LegacySseManager;
  readonly ledger: Ledger;
  readonly identity: VaultIdentity;
  /** Tells the app which port it is bound to (for the default Host allowlist). */
  setBoundPort(port: number): void;
  /** Builds a fresh McpServer (used by stdio, which has a single session). */
  newMcpServer(principal: string, transport?: string): ReturnType<typeof createMcpServer>;
  close(): Promise<void>;
}

/** What createApp needs besides configuration. */
export interface AppDeps {
  readonly kv: Deno.Kv;
  readonly logger: Logger;
  /** Extra tools (tests register a deliberately crashing one here). */
  readonly extraTools?: readonly ToolDefinition[];
  readonly extensions?: readonly ServerExtension[];
  /** The log's identity; loaded from (or created in) KV when absent. */
  readonly identity?: VaultIdentity;
  /** Fallback origin when neither config nor KV names one (main.ts passes warden/<hostname>). */
  readonly defaultOrigin?: string;
}

/**
 * Wires a Warden server from configuration and opened resources.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const app = await createApp(loadConfig([], () => undefined), { kv, logger: silentLogger });
 * const res = await app.fetch(new Request("http://127.0.0.1:8000/health"));
 * ```
 */
export async function createApp(config: Readonly<Config>, deps: AppDeps): Promise<App> {
  const { kv, logger } = deps;
  const identity = deps.identity ?? await loadVaultIdentity(kv, {
    origin: config.origin,
    defaultOrigin: deps.defaultOrigin ?? "warden/localhost",
    keyString: config.signingKey,
  });
  const ledger = createLedger(kv, { origin: identity.origin, signer: identity.signer });
  let unsigned = false;
  const seal: Sealer | undefined = config.sealing
    ? async (record) => {
      const receipt = await ledger.append({ ...record });
      unsigned = true;
      return receipt;
    }
    : undefined;
  async function checkpointIfNeeded(): Promise<void> {
    if (!unsigned) return;
    unsigned = false;
    await ledger.signCheckpoint();
  }
  const fixtures = config.conformanceFixtures;
  const tools: ToolDefinition[] = [
    ...utilityTools,
    ...(fixtures ? conformanceTools : []),
    ...(deps.extraTools ?? []),
  ];
  const extensions = [...(fixtures ? [conformanceExtension] : []), ...(deps.extensions ?? [])];
  const deadlines = createDeadlineScheduler();
  const registry = createToolRegistry(tools, {
    logger,
    timeoutMs: config.toolTimeoutMs,
    deadlines,
    seal,
  });
  const sessions = createSessionStore(kv, { ttlMs: config.sessionTtlMs });
  const writer = createBatchWriter(kv);
  const serverDeps = { registry, version: VERSION, extensions };
  const newMcpServer = (principal: string, transport = "mcp") =>
    createMcpServer(serverDeps, { principal, transport });
  const streamable = createStreamableManager({
    kv,
    sessions,
    writer,
    createServer: ({ principal }) => newMcpServer(principal),
    responseMode: config.responseMode,
    maxEventsPerSession: config.maxEventsPerSession,
    logger,
  });
  const sse = createLegacySseManager({
    sessions,
    createServer: ({ principal }) => newMcpServer(principal),
    logger,
    messagesPath: "/messages",
  });
  function allowFor(port: number) {
    const hosts = config.allowedHosts.length > 0
      ? config.allowedHosts.map((h) => h.toLowerCase())
      : defaultAllowedHosts(port);
    const origins = config.allowedOrigins.length > 0
      ? config.allowedOrigins.map((o) => o.toLowerCase())
      : hosts.flatMap((h) => [`http://${h}`, `https://${h}`]);
    return { hosts, origins };
  }
  // Recomputed only when the bound port becomes known, not per request.
  let allowed = allowFor(config.port);
  const allow = () => allowed;
  const http = createHttpApp({
    registry,
    streamable,
    sse,
    kv,
    logger,
    version: VERSION,
    startedAtMs: Date.now(),
    token: config.token,
    maxBodyBytes: config.maxBodyBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    deadlines,
    allow,
    ledger,
    vkey: identity.signer.vkey,
  });
  const reaper = setInterval(() => {
    streamable.reap().catch((e) => logger.warn("session reaper failed", { error: e }));
  }, Math.max(1000, Math.min(60_000, config.sessionTtlMs / 4)));
  const checkpointer = setInterval(() => {
    checkpointIfNeeded().catch((e) => {
      unsigned = true;
      logger.error("cannot sign checkpoint", { error: e });
    });
  }, config.checkpointIntervalMs);
  return {
    fetch: (req) => http.fetch(req),
    registry,
    sessions,
    streamable,
    sse,
    setBoundPort(port) {
      allowed = allowFor(port);
    },
    newMcpServer,
    ledger,
    identity,
    async close() {
      clearInterval(reaper);
      clearInterval(checkpointer);
      await sse.close();
      await streamable.close();
      await writer.flush();
      await ledger.flush();
      // Every acknowledged entry is covered by a signed checkpoint before exit.
      await ledger.signCheckpoint();
      deadlines.close();
    },
  };
}
