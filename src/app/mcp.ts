/**
 * Composition steps: the MCP surfaces — the per-session server factory over the registry (with
 * Warden's extensions, hold prompts and the 2026-07-28 task engine), the 2025-era Streamable HTTP
 * sessions, the stateless 2026-07-28 handler, legacy SSE and the WebSocket, and the wiring that
 * tells their clients when the upstream catalogue changes.
 * @module
 */
import type { Config } from "../config.ts";
import { type Logger, VERSION } from "../lib/mod.ts";
import { elicitationAction, type Governance } from "../governance/mod.ts";
import type { Gateway } from "../gateway/mod.ts";
import {
  conformanceExtension,
  createLegacySseManager,
  createListenSubscriptions,
  createMcpServer,
  createModernHandler,
  createStatelessToolCall,
  createStreamableManager,
  createTaskEngine,
  createWebSocketManager,
  type HoldPromptDeps,
  type LegacySseManager,
  loadRequestStateKey,
  type McpServerDeps,
  modernConformanceExtension,
  type ModernHandler,
  registryTaskBody,
  SERVER_NAME,
  SERVER_TITLE,
  type ServerExtension,
  type SessionBinding,
  type StreamableManager,
  type SubscriptionHub,
  type TaskEngine,
  touchIntervalMs,
  upstreamContentExtension,
  wardenExtension,
  type WebSocketManager,
} from "../mcp/mod.ts";
import { type BatchWriter, createBatchWriter } from "../store/mod.ts";
import type { ToolRegistry } from "../calls/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import type { Stores } from "./stores.ts";

/** Builds an McpServer for a principal on a transport. */
export type NewMcpServer = (
  principal: string,
  transport?: string,
  binding?: Partial<SessionBinding>,
) => ReturnType<typeof createMcpServer>;

/** What {@link buildMcpServers} builds the server factory from. */
export interface McpServersDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly registry: ToolRegistry;
  readonly governance: Governance;
  readonly ledger: Ledger;
  readonly gateway: Gateway;
  readonly subscriptions: SubscriptionHub;
  /** The conformance fixtures are on (`--conformance-fixtures`). */
  readonly fixtures: boolean;
  /** Extra server extensions (tests). */
  readonly extensions?: readonly ServerExtension[];
}

/** The server factory and what the transports share with it. */
export interface McpServers {
  readonly writer: BatchWriter;
  readonly tasks: TaskEngine;
  readonly serverDeps: McpServerDeps;
  readonly newMcpServer: NewMcpServer;
  /** Warden's own prompt names (custom extensions' included): an upstream may not shadow them. */
  readonly ownPrompts: readonly string[];
}

/** Builds the per-session server factory, its extensions, hold prompts and task engine. */
export async function buildMcpServers(deps: McpServersDeps): Promise<McpServers> {
  const { kv, config, logger, registry, governance, ledger, gateway, subscriptions, fixtures } =
    deps;
  // Stream events (the only writes this writer takes) are never awaited by a call: they linger
  // 10 ms for company, so one caller at a time costs one durable commit per call (its vault
  // entry), not two racing for the database. A crash loses at most that window; a client
  // resuming past it retries its request, as for any event not yet committed.
  const writer = createBatchWriter(kv, { lingerMs: 10 });
  const extensions = [
    wardenExtension({ registry, governance, ledger }),
    ...(fixtures ? [conformanceExtension] : []),
    ...(deps.extensions ?? []),
    // Last: it wraps the resources and prompts handlers the extensions above installed.
    upstreamContentExtension({
      subscriptions,
      content: () => gateway.content(),
      prompt: (name) => gateway.prompt(name),
      notePrompts: (server, names) => gateway.notePrompts(server, names),
      permits: (principal, name) => governance.permits(principal, name),
      record: (fields) => governance.record(fields),
      logger,
    }),
  ];
  const holdPrompts: HoldPromptDeps = {
    key: await loadRequestStateKey(kv),
    getHold: (id) => governance.holds.get(id),
    answer: async (hold, action, via = "input_required") => {
      const updated = await governance.holds.recordHuman(hold.id, action);
      if (updated) {
        await governance.record({
          type: "hold_human_response",
          hold_id: hold.id,
          action: elicitationAction(action),
          via,
        });
      }
    },
  };
  // 2026-07-28 tasks: records in KV (any instance answers), Warden's tools run as their bodies.
  const tasks = createTaskEngine({
    kv,
    limits: { maxPerPrincipal: config.maxTasksPerPrincipal, ttlMs: config.taskTtlMs },
    fallback: (tool) =>
      registry.get(tool) ? registryTaskBody(registry, tool, holdPrompts) : undefined,
    holdOpen: async (id) => {
      const hold = await governance.holds.get(id);
      return hold !== null && hold.status === "open" && hold.expiresAtMs > Date.now();
    },
    logger,
  });
  const serverDeps = {
    registry,
    version: VERSION,
    extensions,
    holdPrompts,
    tasks,
    taskAfterMs: config.taskAfterMs,
  };
  const newMcpServer = (principal: string, transport = "mcp", binding?: Partial<SessionBinding>) =>
    createMcpServer(serverDeps, { ...binding, principal, transport });
  // What the extensions register (custom ones included) is what an upstream prompt may not shadow.
  const ownPrompts = Object.keys(
    (newMcpServer("anonymous") as unknown as { _registeredPrompts: Record<string, unknown> })
      ._registeredPrompts ?? {},
  );
  return { writer, tasks, serverDeps, newMcpServer, ownPrompts };
}

/** What {@link buildTransports} builds the MCP transports from. */
export interface TransportsDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly registry: ToolRegistry;
  readonly governance: Governance;
  readonly gateway: Gateway;
  readonly subscriptions: SubscriptionHub;
  readonly stores: Pick<Stores, "sessions" | "busService">;
  readonly servers: McpServers;
  readonly fixtures: boolean;
  /** Names the 2025 direct path leaves to the SDK (the conformance fixtures). */
  readonly fixtureNames: ReadonlySet<string>;
  readonly reaperMs: number;
  /** Bounds of bus topics on listen streams (tests shorten them). */
  readonly busListen?: { readonly maxQueuedBytes?: number; readonly idleMs?: number };
}

/** The MCP transports the HTTP app serves. */
export interface Transports {
  readonly streamable: StreamableManager;
  readonly modern: ModernHandler;
  readonly sse: LegacySseManager;
  readonly websocket: WebSocketManager;
}

/**
 * Builds the transports, and tells their clients when the upstream catalogue changes: 2025
 * sessions by notification, 2026 listeners by stream.
 */
export function buildTransports(deps: TransportsDeps): Transports {
  const { kv, config, logger, registry, gateway, fixtureNames, reaperMs } = deps;
  const { sessions } = deps.stores;
  const { writer, newMcpServer } = deps.servers;
  // 2025-era session servers, told when the upstream catalogue changes (2026 listeners via modern).
  const sessionServers = new Set<ReturnType<typeof createMcpServer>>();
  const newSessionServer = (
    principal: string,
    transport = "mcp",
    binding?: Partial<SessionBinding>,
  ) => {
    const server = newMcpServer(principal, transport, binding);
    if (sessionServers.size < 100_000) sessionServers.add(server);
    const previous = server.server.onclose;
    server.server.onclose = () => {
      sessionServers.delete(server);
      previous?.();
    };
    return server;
  };
  const streamable = createStreamableManager({
    kv,
    sessions,
    writer,
    createServer: (binding) => newSessionServer(binding.principal, "mcp", binding),
    responseMode: config.responseMode,
    // A plain tools/call of one of Warden's own tools or an upstream's skips the SDK's
    // per-request dispatch (the conformance fixtures ask the client things: the SDK's path).
    direct: { serves: (name) => registry.has(name) && !fixtureNames.has(name) },
    maxEventsPerSession: config.maxEventsPerSession,
    maxEventBytesPerSession: config.maxEventBytesPerSession,
    caps: {
      total: config.maxSessions,
      perPrincipal: config.maxSessionsPerPrincipal,
      perIp: config.maxSessionsPerIp,
      // Published counts are refreshed every reaper tick and outlive a dead process by ~2 ticks.
      sharedStaleMs: 2 * reaperMs + 1000,
    },
    logger,
  });
  const modern = buildModern(deps);
  const sse = createLegacySseManager({
    sessions,
    createServer: ({ principal }) => newSessionServer(principal),
    logger,
    messagesPath: "/messages",
    maxSessions: config.maxSessions,
    maxPerClient: config.maxSsePerClient,
  });
  // /ws/mcp: one session per socket; a frame is capped like a request body, idle like a session.
  const websocket = createWebSocketManager({
    createServer: ({ principal }) => newSessionServer(principal, "websocket"),
    logger,
    limits: {
      maxMessageBytes: config.maxBodyBytes,
      idleTimeoutMs: config.sessionTtlMs,
      // The token is checked again as often as a session record is refreshed.
      reauthEveryMs: touchIntervalMs(config.sessionTtlMs),
    },
  });
  // An upstream's list_changed (or a registration, removal, re-approval) re-lists its tools;
  // Warden's own clients are then told: 2025 sessions by notification, 2026 listeners by stream.
  gateway.onChange = (kind) => {
    for (const server of sessionServers) {
      if (!server.isConnected()) continue;
      const sent = kind === "tools"
        ? server.sendToolListChanged()
        : kind === "prompts"
        ? server.sendPromptListChanged()
        : server.sendResourceListChanged();
      Promise.resolve(sent).catch((e) =>
        logger.debug(`cannot send ${kind}/list_changed`, { error: e })
      );
    }
    if (kind === "tools") modern.toolsChanged();
    else if (kind === "prompts") modern.promptsChanged();
    else modern.resourcesChanged();
  };
  return { streamable, modern, sse, websocket };
}

/** The 2026-07-28 path: servers built once into a pool, the principal passed per request. */
function buildModern(deps: TransportsDeps): ModernHandler {
  const { logger, registry, governance, gateway, subscriptions, fixtures } = deps;
  const { busService } = deps.stores;
  const { tasks, serverDeps, newMcpServer } = deps.servers;
  // Names the 2026-07-28 conformance fixtures answer themselves (not the direct path).
  let fixtureTools: ReadonlySet<string> = new Set();
  const modern: ModernHandler = createModernHandler({
    createServer: () => {
      const server = newMcpServer("anonymous", "mcp", { modern: true });
      // The fixtures' list-change triggers publish through this handler's listen router.
      if (fixtures) {
        fixtureTools = modernConformanceExtension(server, {
          toolsChanged: () => modern.toolsChanged(),
          promptsChanged: () => modern.promptsChanged(),
        }, tasks);
      }
      return server;
    },
    // A listen stream's resourceSubscriptions open upstream subscriptions on the same hub as the
    // 2025 sessions'; an update is published once to the streams naming it.
    // warden://bus/<topic> on a listen stream: the caller's topic, on that stream only.
    bus: {
      heads: (principal, topics) => busService.heads(principal, topics),
      follow: (principal, topics, onMessage, signal, after) =>
        busService.follow(principal, topics, onMessage, signal, after),
      maxQueuedBytes: deps.busListen?.maxQueuedBytes ?? 1_048_576,
      idleMs: deps.busListen?.idleMs ?? 600_000,
    },
    serverInfo: { name: SERVER_NAME, title: SERVER_TITLE, version: VERSION },
    // Listen streams per client, as legacy SSE streams: one client cannot hold them all.
    maxListenPerClient: deps.config.maxSsePerClient,
    listen: createListenSubscriptions({
      content: () => gateway.content(),
      permits: (principal, name) => governance.permits(principal, name),
      subscriptions,
      publish: (uri) => modern.resourceUpdated(uri),
      logger,
    }),
    // A plain tools/call of one of Warden's own tools skips the SDK's per-request dispatch:
    // the same governed registry call, encoded as the SDK would.
    direct: {
      serves: (name) => registry.get(name) !== undefined && !fixtureTools.has(name),
      call: createStatelessToolCall(serverDeps),
      serverInfo: { name: SERVER_NAME, title: SERVER_TITLE, version: VERSION },
    },
    logger,
  });
  return modern;
}
