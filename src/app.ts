/**
 * Composition root: wires configuration, KV, the vault, governance, tools,
 * MCP surfaces and the HTTP app together. It opens nothing itself — main.ts
 * (or a test) passes in the KV handle, logger and policy — so tests can build
 * the whole server on `:memory:`.
 */
import { type Config } from "./config.ts";
import { createDeadlineScheduler, type Logger, withRedaction } from "./lib/mod.ts";
import { DEFAULT_POLICY, type Governance, type Policy, redact } from "./governance/mod.ts";
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
import {
  createAccounting,
  createMetrics,
  createSessionGauges,
  type DailySummary,
} from "./usage/mod.ts";
import {} from "./tools/mod.ts";
import { type NestedCalls, type ToolDefinition, type ToolRegistry } from "./calls/mod.ts";
import {} from "./services/mod.ts";
import { type Ledger, type VaultIdentity } from "./vault/mod.ts";
import {
  allowFor,
  buildGateway,
  buildGovernance,
  buildHttp,
  buildIdentity,
  buildMcpServers,
  buildTools,
  buildTransports,
  closeApp,
  openStores,
  openVault,
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
  /** The clock holds expire by, in epoch ms (tests move it instead of waiting). */
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
// Kept whole for now: the vault, governance, gateway, identity, MCP, HTTP and lifecycle steps are
// in src/app/; the tool services, tool list and registry are still wired here (issue 8).
export async function createApp(config: Readonly<Config>, deps: AppDeps): Promise<App> {
  const { kv } = deps;
  // Log lines are redacted with the vault's detectors: what an upstream prints on stderr, or an
  // error a client sends back, is attacker-chosen text and may hold a key.
  const logger = withRedaction(deps.logger, (v) => redact(v).value);
  const startedAtMs = Date.now();
  const vault = await openVault(kv, config, deps);
  const { identity, ledger } = vault;

  const policy = deps.policy ?? DEFAULT_POLICY;
  const reaperMs = Math.max(1000, Math.min(60_000, config.sessionTtlMs / 4));
  // Live sessions per instance, in KV, so check_vital sums instances instead of scanning records.
  const sessionGauges = createSessionGauges(kv, {
    instanceId: crypto.randomUUID(),
    staleMs: 2 * reaperMs,
  });
  const publishSessions = () =>
    sessionGauges.publish({ streamable: streamable.liveCount, sse: sse.liveCount });
  const metrics = createMetrics();
  // Session rows expire as a session does: one idle timeout after its last call.
  const accounting = createAccounting(kv, { policy, sessionTtlMs: config.sessionTtlMs });
  const stores = await openStores({ kv, config, policy, ledger });
  const { sessions, busService } = stores;
  const { governance, limiter, holdExpiries } = await buildGovernance({
    kv,
    config,
    policy,
    policySource: deps.policySource,
    logger,
    vault,
    metrics,
    knownEvidence: stores.resolveEvidence,
    clock: deps.clock,
  });

  const deadlines = createDeadlineScheduler();
  const { gateway, events } = await buildGateway({
    kv,
    config,
    policy,
    logger,
    governance,
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
    kv,
    config,
    logger,
    policy,
    identity,
    ledger,
    governance,
    stores,
    gateway,
    deadlines,
    metrics,
    accounting,
    startedAtMs,
    extraTools: deps.extraTools,
    // Declared below; vitals only runs once the app is serving.
    liveSessions: () => ({ live_streamable: streamable.liveCount, live_sse: sse.liveCount }),
    publishedSessions: () => publishSessions().then(() => sessionGauges.total()),
  });
  const servers = await buildMcpServers({
    kv,
    config,
    logger,
    registry,
    governance,
    ledger,
    gateway,
    subscriptions,
    fixtures,
    extensions: deps.extensions,
  });
  const { writer, tasks, newMcpServer } = servers;
  ownPrompts = servers.ownPrompts;
  await gateway.start();
  const { streamable, modern, sse, websocket } = buildTransports({
    kv,
    config,
    logger,
    registry,
    governance,
    gateway,
    subscriptions,
    sessions,
    busService,
    servers,
    fixtures,
    fixtureNames,
    reaperMs,
    busListen: deps.busListen,
  });
  // Recomputed only when the bound port becomes known, not per request.
  let allowed = allowFor(config, config.port);
  const allow = () => allowed;
  let boundPort = config.port;
  // This server's public base URL: the OAuth issuer, and `<base>/mcp` the resource tokens name.
  const publicBase = () => publicBaseOf(config, boundPort);
  const access = await buildIdentity({
    kv,
    config,
    logger,
    governance,
    publicBase,
    verifyPassword: deps.verifyPassword,
    oauthFetch: deps.oauthFetch,
    oidcFetch: deps.oidcFetch,
  });
  const { auth, oauth } = access;
  const http = buildHttp({
    kv,
    config,
    logger,
    startedAtMs,
    identity: access,
    vault,
    governance,
    gateway,
    registry,
    streamable,
    modern,
    sse,
    websocket,
    deadlines,
    metrics,
    accounting,
    allow,
    publicBase,
  });
  const background = startBackground({
    kv,
    config,
    logger,
    startedAtMs,
    vault,
    governance,
    limiter,
    accounting,
    metrics,
    streamable,
    sse,
    publishSessions,
    reaperMs,
  });
  return {
    fetch: (req, info) => http.fetch(req, info),
    auth,
    registry,
    sessions,
    streamable,
    modern,
    sse,
    websocket,
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
    newMcpServer,
    close: () =>
      closeApp({
        background,
        holdExpiries,
        oauth,
        events,
        gateway,
        sse,
        websocket,
        streamable,
        modern,
        tasks,
        writer,
        accounting,
        vault,
        limiter,
        deadlines,
        logger,
      }),
  };
}
