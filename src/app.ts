/**
 * Composition root: wires configuration, KV, the vault, governance, tools,
 * MCP surfaces and the HTTP app together, calling the steps of src/app/ in
 * order and handing each what the steps before it built. It opens nothing
 * itself — main.ts (or a test) passes in the KV handle, logger and policy — so
 * tests can build the whole server on `:memory:`.
 */
import type { Config } from "./config.ts";
import type { Logger } from "./lib/mod.ts";
import type { Governance, Policy } from "./governance/mod.ts";
import type { Gateway, GatewayDeps, UpstreamConfig } from "./gateway/mod.ts";
import type { AuthResolver } from "./identity/mod.ts";
import type { PasswordVerifier } from "./oauth/mod.ts";
import {
  createMcpServer,
  createSubscriptionHub,
  type LegacySseManager,
  type ModernHandler,
  type ServerExtension,
  type SessionStore,
  type StreamableManager,
  type SubscriptionHub,
  type WebSocketManager,
} from "./mcp/mod.ts";
import type { DailySummary } from "./usage/mod.ts";
import type { NestedCalls, ToolDefinition, ToolRegistry } from "./calls/mod.ts";
import type { Ledger, VaultIdentity } from "./vault/mod.ts";
import {
  allowFor,
  buildGateway,
  buildHttp,
  buildIdentity,
  buildMcpServers,
  buildTools,
  buildTransports,
  closeApp,
  openCore,
  publicBaseOf,
  startBackground,
} from "./app/mod.ts";

export { secretPaths } from "./app/mod.ts";

/** A wired server, ready to be handed to `Deno.serve`. */
export interface App {
  readonly fetch: (req: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  readonly registry: ToolRegistry;
  readonly sessions: SessionStore;
  readonly streamable: StreamableManager;
  readonly modern: ModernHandler;
  readonly sse: LegacySseManager;
  readonly websocket: WebSocketManager;
  readonly ledger: Ledger;
  readonly identity: VaultIdentity;
  readonly governance: Governance;
  readonly gateway: Gateway;
  /** Upstream resource subscriptions held for this process's 2025 sessions and 2026 listen streams. */
  readonly upstreamSubscriptions: SubscriptionHub;
  /** The vault's daily usage summary (sealed once per UTC day across instances). */
  readonly usageSummary: DailySummary;
  /** Maps each request's bearer token to a principal; OAuth plugs its verifier in with `addVerifier`. */
  readonly auth: AuthResolver;
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
  /** The active policy (main.ts loads --policy); the built-in default otherwise. */
  readonly policy?: Policy;
  /** Where the policy came from, recorded with its hash in the vault. */
  readonly policySource?: string;
  /**
   * Extra tools (tests register a deliberately crashing one here), or what makes them given the
   * registry's nested calls.
   */
  readonly extraTools?:
    | readonly ToolDefinition[]
    | ((nested: NestedCalls) => readonly ToolDefinition[]);
  readonly extensions?: readonly ServerExtension[];
  /** The log's identity; loaded from (or created in) KV when absent. */
  readonly identity?: VaultIdentity;
  /** Fallback origin when neither config nor KV names one (main.ts passes warden/<hostname>). */
  readonly defaultOrigin?: string;
  /** Upstreams from the --upstreams file (main.ts reads and validates it). */
  readonly upstreams?: readonly UpstreamConfig[];
  /** Bounds of bus topics on listen streams (tests shorten them); defaults 1 MiB and 10 minutes. */
  readonly busListen?: { readonly maxQueuedBytes?: number; readonly idleMs?: number };
  /** Gateway tuning (tests shorten the breaker's cool-down and the probe period). */
  readonly gatewayOptions?: Pick<GatewayDeps, "breaker" | "healthIntervalMs" | "sandbox" | "env">;
  /** Checks a person's password at /login (`--auth oauth`); none means nobody can log in. */
  readonly verifyPassword?: PasswordVerifier;
  /** The fetch client ID metadata documents are read with (tests trust their own CA). */
  readonly oauthFetch?: typeof fetch;
  /**
   * The fetch every request to the `--oidc-issuer` provider is made with, under
   * the SSRF guard (tests pass one that tampers with the provider's answers).
   */
  readonly oidcFetch?: typeof fetch;
  /**
   * The clock holds expire by, and memory TTLs and file leases, in epoch ms (tests move it
   * instead of waiting).
   */
  readonly clock?: () => number;
}

/**
 * Wires a Warden server from configuration and opened resources.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createApp } from "./app.ts";
 * import { loadConfig } from "./config.ts";
 * import { silentLogger } from "./lib/mod.ts";
 * const kv = await Deno.openKv(":memory:");
 * const config = loadConfig(["--kv", ":memory:"], () => undefined);
 * const app = await createApp(config, { kv, logger: silentLogger });
 * // In-process, no socket: `Deno.serve(app.fetch)` serves the same handler.
 * const res = await app.fetch(new Request("http://127.0.0.1:8000/health"));
 * assert.equal(res.status, 200);
 * assert.equal((await res.json()).status, "ok");
 * await app.close();
 * kv.close();
 * ```
 */
export async function createApp(config: Readonly<Config>, deps: AppDeps): Promise<App> {
  const core = await openCore(config, deps);
  const { logger, identity, ledger, governance, sessionGauges, stores } = core;
  const publishSessions = () =>
    sessionGauges.publish({ streamable: streamable.liveCount, sse: sse.liveCount });
  const { gateway, events } = await buildGateway({
    ...core,
    upstreams: deps.upstreams,
    reservedNames: () => tools().map((t) => t.name),
    reservedPrompts: () => ownPrompts,
    // Read when an upstream is authorized, after the port is bound (declared further down).
    publicBase: () => publicBase(),
    clock: deps.clock,
    gatewayOptions: deps.gatewayOptions,
  });
  // Upstream resource subscriptions of every 2025 session and 2026 listen stream in this process.
  const subscriptions = createSubscriptionHub({ logger });
  gateway.onResourceUpdated = (server, uri) => subscriptions.updated(server, uri);
  // Warden's own prompt names, known once the extensions are (before the gateway starts).
  let ownPrompts: readonly string[] = [];
  const { registry, tools, fixtures, fixtureNames } = buildTools({
    ...core,
    gateway,
    extraTools: deps.extraTools,
    clock: deps.clock,
    // Declared below; vitals only runs once the app is serving.
    liveSessions: () => ({ live_streamable: streamable.liveCount, live_sse: sse.liveCount }),
    publishedSessions: () => publishSessions().then(() => sessionGauges.total()),
  });
  const servers = await buildMcpServers({
    ...core,
    registry,
    gateway,
    subscriptions,
    fixtures,
    extensions: deps.extensions,
  });
  ownPrompts = servers.ownPrompts;
  await gateway.start();
  const transports = buildTransports({
    ...core,
    registry,
    gateway,
    subscriptions,
    servers,
    fixtures,
    fixtureNames,
    busListen: deps.busListen,
  });
  const { streamable, sse } = transports;
  // Recomputed only when the bound port becomes known, not per request.
  let allowed = allowFor(config, config.port);
  const allow = () => allowed;
  let boundPort = config.port;
  // This server's public base URL: the OAuth issuer, and `<base>/mcp` the resource tokens name.
  const publicBase = () => publicBaseOf(config, boundPort);
  const access = await buildIdentity({
    ...core,
    publicBase,
    verifyPassword: deps.verifyPassword,
    oauthFetch: deps.oauthFetch,
    oidcFetch: deps.oidcFetch,
  });
  const http = buildHttp({
    ...core,
    ...transports,
    identity: access,
    gateway,
    registry,
    allow,
    publicBase,
  });
  const background = startBackground({ ...core, streamable, sse, publishSessions });
  return {
    fetch: (req, info) => http.fetch(req, info),
    auth: access.auth,
    registry,
    sessions: stores.sessions,
    ...transports,
    ledger,
    identity,
    governance,
    gateway,
    upstreamSubscriptions: subscriptions,
    usageSummary: background.usageSummary,
    setBoundPort(port) {
      allowed = allowFor(config, port);
      boundPort = port;
    },
    newMcpServer: servers.newMcpServer,
    close: () =>
      closeApp({
        ...core,
        ...servers,
        ...transports,
        background,
        oauth: access.oauth,
        events,
        gateway,
      }),
  };
}
