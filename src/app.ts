/**
 * Composition root: wires configuration, KV, the vault, governance, tools,
 * MCP surfaces and the HTTP app together. It opens nothing itself — main.ts
 * (or a test) passes in the KV handle, logger and policy — so tests can build
 * the whole server on `:memory:`.
 */
import { type Config, ConfigError, defaultAllowedHosts } from "./config.ts";
import {
  openChat,
  openCodeSandbox,
  openShell,
  SandboxUnavailableError,
  type ShellService,
} from "./execution/mod.ts";
import { FileRootError, type FileRoots, resolveFileRoots } from "./fs/mod.ts";
import {
  createDeadlineScheduler,
  type Logger,
  utf8ByteLength,
  VERSION,
  withRedaction,
} from "./lib/mod.ts";
import {
  createExpiryWatch,
  createGovernance,
  createHoldStore,
  createTokenService,
  DEFAULT_POLICY,
  elicitationAction,
  type Governance,
  type Policy,
  policyHash,
  redact,
} from "./governance/mod.ts";
import {
  createCredentialStore,
  createGateway,
  CredentialError,
  type Gateway,
  type GatewayDeps,
  loadCredentialKey,
  type UpstreamConfig,
} from "./gateway/mod.ts";
import { createHttpApp, statusOf } from "./http/mod.ts";
import { createVitals } from "./health/mod.ts";
import {
  type AuthResolver,
  createAuthResolver,
  currentRequest,
  userRoles,
  verifyPassword,
} from "./identity/mod.ts";
import {
  createOAuthServer,
  createOidcLogin,
  createOidcVerifier,
  createProtectedResource,
  type PasswordVerifier,
} from "./oauth/mod.ts";
import { createDashboard } from "./dashboard/mod.ts";
import {
  conformanceExtension,
  createLegacySseManager,
  createListenSubscriptions,
  createMcpServer,
  createModernHandler,
  createSessionStore,
  createStatelessToolCall,
  createStreamableManager,
  createSubscriptionHub,
  createTaskEngine,
  createWebSocketManager,
  type HoldPromptDeps,
  type LegacySseManager,
  loadRequestStateKey,
  modernConformanceExtension,
  type ModernHandler,
  registryTaskBody,
  SERVER_NAME,
  SERVER_TITLE,
  type ServerExtension,
  type SessionBinding,
  type SessionStore,
  type StreamableManager,
  type SubscriptionHub,
  touchIntervalMs,
  upstreamContentExtension,
  wardenExtension,
  type WebSocketManager,
} from "./mcp/mod.ts";
import {
  type Accounting,
  addCost,
  type CallTracer,
  createAccounting,
  createCallTracer,
  createDailySummary,
  createKvLimiter,
  createMetrics,
  createSessionGauges,
  type DailySummary,
  type Metrics,
} from "./usage/mod.ts";
import {
  createBatchWriter,
  createEvidenceStore,
  createExecutionStore,
  createGovSessionStore,
  holdExpiredSealKey,
} from "./store/mod.ts";
import {
  conformanceTools,
  createBusTools,
  createCanonicalTools,
  createContextTools,
  createExecutionTools,
  createFileTools,
  createMemoryTools,
  utilityTools,
} from "./tools/mod.ts";
import {
  type CallOutcome,
  createToolRegistry,
  type RegistryServices,
  type ToolDefinition,
  type ToolRegistry,
} from "./calls/mod.ts";
import {
  createBusService,
  createContextService,
  createFileService,
  createMemoryService,
  openEmbeddings,
  openEventBus,
} from "./services/mod.ts";
import {
  type AppendOptions,
  createFileMirror,
  createLedger,
  EntryExistsError,
  type Ledger,
  loadVaultIdentity,
  signReceipt,
  type VaultIdentity,
} from "./vault/mod.ts";
import { createEvidenceResolver, type EvidenceResolver } from "./chain/mod.ts";

function byteLength(value: unknown): number {
  try {
    return utf8ByteLength(typeof value === "string" ? value : JSON.stringify(value ?? {}));
  } catch {
    return 0;
  }
}

/** Token counts a model-backed tool reports as `data.usage.{input,output}_tokens`. */
function tokensOf(data: unknown): { inputTokens?: number; outputTokens?: number } {
  const usage = (data as { usage?: Record<string, unknown> } | null)?.usage;
  const n = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
  const inputTokens = n(usage?.input_tokens);
  const outputTokens = n(usage?.output_tokens);
  return {
    ...(inputTokens !== undefined ? { inputTokens } : {}),
    ...(outputTokens !== undefined ? { outputTokens } : {}),
  };
}

/** The floors a verdict names in its reasons ("F6 …"), in order, once each. */
function floorsFailedOf(outcome: CallOutcome): string[] {
  const reasons = outcome.envelope?._constitutional.reasons ?? [];
  const out = new Set<string>();
  for (const r of reasons) {
    const m = /^(F\d{1,2})\b/.exec(r);
    if (m) out.add(m[1]);
  }
  return [...out];
}

/**
 * Counts every call made through the registry (MCP, REST, stdio) in the
 * metrics and the usage accounts, and charges its cost to the caller's budget.
 */
function observeCalls(
  usage: {
    metrics: Metrics;
    accounting: Accounting;
    kv: Deno.Kv;
    logger: Logger;
    tracer?: CallTracer;
  },
  registry: ToolRegistry,
): ToolRegistry {
  const upstreamOf = (name: string) => {
    const split = name.indexOf("__");
    return split > 0 ? name.slice(0, split) : undefined;
  };
  const tracer = usage.tracer;
  const traced: ToolRegistry["call"] = tracer
    ? (name, args, ctx) => {
      // Span names are bounded like metric labels: an unregistered name is caller-chosen.
      const known = registry.has(name);
      return tracer.traceCall(known ? name : "unknown", ctx.trace, () =>
        registry.call(name, args, ctx), (outcome) => ({
          verdict: outcome.verdict,
          floorsFailed: floorsFailedOf(outcome),
          principal: ctx.principal,
          isError: outcome.isError,
          ...(outcome.errorKind ? { errorKind: outcome.errorKind } : {}),
          ...(outcome.vault ? { vaultIndex: outcome.vault.index } : {}),
          ...(known && upstreamOf(name) ? { upstream: upstreamOf(name) } : {}),
        }));
    }
    : registry.call;
  return {
    ...registry,
    async call(name, args, ctx) {
      const outcome = await traced(name, args, ctx);
      // Upstream tools count under their own names; only names nobody serves are "unknown".
      const registered = registry.has(name);
      const upstream = registered && registry.get(name) === undefined
        ? upstreamOf(name)
        : undefined;
      usage.metrics.observeCall({
        tool: name,
        registered,
        ...(upstream ? { upstream } : {}),
        principal: ctx.principal,
        verdict: outcome.verdict,
        latencyMs: outcome.latencyMs,
      });
      // Unregistered names are caller-chosen: accounted under one name, like the metrics.
      const tokens = tokensOf(outcome.envelope?.data);
      // A 2026-07-28 round that only asked the client's model is half of one call: its retry pays.
      const billable = (outcome.verdict === "SEAL" || outcome.verdict === "PARTIAL") &&
        outcome.errorKind !== "input_required";
      const cost = usage.accounting.record({
        principal: ctx.principal,
        tool: registered ? name : "unknown",
        ...(registered && upstream ? { upstream } : {}),
        ...(ctx.sessionId ? { session: ctx.sessionId } : {}),
        verdict: outcome.verdict,
        latencyMs: outcome.latencyMs,
        bytesIn: byteLength(args),
        bytesOut: byteLength(outcome.text),
        ...tokens,
        // Only a call the verdict let run is charged.
        billable,
      });
      const spent = billable ? (tokens.inputTokens ?? 0) + (tokens.outputTokens ?? 0) : 0;
      if (cost > 0 || spent > 0) {
        const clientIp = ctx.clientIp ?? currentRequest()?.clientIp;
        await addCost(usage.kv, {
          principal: ctx.principal,
          ...(clientIp !== undefined ? { clientIp } : {}),
          units: cost,
          tokens: spent,
        }).catch((e) => usage.logger.warn("cannot charge a call's cost", { error: e }));
      }
      return outcome;
    },
  };
}

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

/** Paths no file tool or shell command may ever see: the KV file, keys. */
export function secretPaths(config: Readonly<Config>): string[] {
  const out: string[] = [];
  if (config.kvPath !== undefined && config.kvPath !== ":memory:" && config.kvPath !== "") {
    // SQLite keeps recent writes in -wal and -shm files beside the database.
    out.push(config.kvPath, `${config.kvPath}-wal`, `${config.kvPath}-shm`);
    out.push(`${config.kvPath}.credential-key`);
  }
  if (config.credentialKeyFile !== undefined) out.push(config.credentialKeyFile);
  if (config.signingKeyFile !== undefined) out.push(config.signingKeyFile);
  if (config.keyDir !== undefined) out.push(config.keyDir);
  return out;
}

/** File roots and the shell sandbox; a root or sandbox that cannot be safe stops start-up. */
async function openLocalAccess(
  config: Readonly<Config>,
  policy: Policy,
): Promise<{ files: FileRoots; shell: ShellService }> {
  const secrets = secretPaths(config);
  try {
    const files = await resolveFileRoots({
      configured: policy.files.roots,
      kvPath: config.kvPath,
      onDeploy: config.onDeploy,
      protectedPaths: secrets,
      allowHardlinks: policy.files.allow_hardlinks,
    });
    const shell = await openShell({
      settings: policy.shell,
      onDeploy: config.onDeploy,
      protectedPaths: secrets,
    });
    return { files, shell };
  } catch (e) {
    if (e instanceof SandboxUnavailableError || e instanceof FileRootError) {
      throw new ConfigError(e.message);
    }
    throw e;
  }
}

/** What createApp needs besides configuration. */
export interface AppDeps {
  readonly kv: Deno.Kv;
  readonly logger: Logger;
  /** The active policy (main.ts loads --policy); the built-in default otherwise. */
  readonly policy?: Policy;
  /** Where the policy came from, recorded with its hash in the vault. */
  readonly policySource?: string;
  /** Extra tools (tests register a deliberately crashing one here). */
  readonly extraTools?: readonly ToolDefinition[];
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
 * const kv = await Deno.openKv(":memory:");
 * const app = await createApp(loadConfig(["--kv", ":memory:"], () => undefined), { kv, logger: silentLogger });
 * const res = await app.fetch(new Request("http://127.0.0.1:8000/health"));
 * ```
 */
// Kept whole for now: the composition root wires every service in the order each needs the last;
// splitting it into per-feature wiring files is open (issue 8).
export async function createApp(config: Readonly<Config>, deps: AppDeps): Promise<App> {
  const { kv } = deps;
  // Log lines are redacted with the vault's detectors: what an upstream prints on stderr, or an
  // error a client sends back, is attacker-chosen text and may hold a key.
  const logger = withRedaction(deps.logger, (v) => redact(v).value);
  const startedAtMs = Date.now();
  const identity = deps.identity ?? await loadVaultIdentity(kv, {
    origin: config.origin,
    defaultOrigin: deps.defaultOrigin ?? "warden/localhost",
    keyString: config.signingKey,
  });
  const ledger = createLedger(kv, {
    origin: identity.origin,
    signer: identity.signer,
    ...(config.checkpointMirror !== undefined
      ? { mirror: createFileMirror(config.checkpointMirror) }
      : {}),
  });
  let unsigned = false;
  let lastCheckpointMs: number | undefined;
  const appendAndMark = async (fields: Record<string, unknown>, options?: AppendOptions) => {
    const receipt = await ledger.append(fields, options);
    unsigned = true;
    return receipt;
  };
  async function checkpointIfNeeded(): Promise<void> {
    if (!unsigned) return;
    unsigned = false;
    await ledger.signCheckpoint();
    lastCheckpointMs = Date.now();
  }

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
  const { files, shell } = await openLocalAccess(config, policy);
  // Probed lazily (first use, security_audit): a server that never runs code starts no runtime.
  const code = openCodeSandbox({ settings: policy.execution.code, onDeploy: config.onDeploy });
  // Text kept for retrieval is redacted with the vault's own detectors before it is written.
  const redactRetained = <T>(value: T): T => redact(value).value as T;
  const evidence = createEvidenceStore(kv, { redact: redactRetained });
  // Declared before the governance that uses it; the session store it reads is made below.
  let resolveEvidence: EvidenceResolver = () => Promise.resolve(new Map());
  const limiter = createKvLimiter(kv, {
    policy,
    // An in-flight count outlives a crashed instance by at most this long.
    leaseMs: config.toolTimeoutMs + config.requestTimeoutMs,
    observer: metrics.limiter,
    // A call's release rides along the vault's commit of its entry: one limiter commit per call.
    ...(config.sealing ? { carrier: ledger } : {}),
  });
  // Every waiting hold this process knows of has its expiry sealed within a second of it, not at
  // the next reaper tick; looking at the hold (get) seals it once across processes.
  const holdExpiries = createExpiryWatch({
    now: deps.clock ?? Date.now,
    onDue: async (id) => {
      await governance.holds.get(id);
    },
    onError: (error, id) => logger.warn("cannot seal a hold's expiry", { hold: id, error }),
  });
  const governance = createGovernance({
    policy,
    policyHash: policyHash(policy),
    holds: createHoldStore(kv, {
      ...(deps.clock ? { now: deps.clock } : {}),
      onWaiting: (hold) => holdExpiries.watch(hold.id, hold.expiresAtMs),
      // Sealed once, by whichever process first finds the hold's time ran out.
      // Told again by a sweep when a process died before sealing: the entry's once key keeps
      // it one entry whoever seals it.
      onExpired: async (hold) => {
        const fields = {
          type: "hold_expired",
          hold_id: hold.id,
          digest: hold.digest,
          tool: hold.tool,
          principal: hold.principal,
          expires_at_ms: hold.expiresAtMs,
          approvals: hold.approvals.length,
        };
        if (!config.sealing) {
          await governance.record(fields);
          return;
        }
        try {
          await appendAndMark({ ...fields, policy_sha256: governance.policyHash }, {
            once: holdExpiredSealKey(hold.id),
          });
        } catch (e) {
          if (!(e instanceof EntryExistsError)) throw e;
        }
      },
    }),
    rates: limiter,
    // Sealing "off" exists only to measure its cost; governance events are still recorded.
    ...(config.sealing ? { seal: appendAndMark } : {}),
    // vault:N, content hashes, fetched URLs and the caller's own sessions, with what each says.
    knownEvidence: (ids, principal) => resolveEvidence(ids, principal),
    logger,
  });
  await appendAndMark({
    type: "policy_loaded",
    policy_sha256: governance.policyHash,
    source: deps.policySource ?? "built-in default",
  });

  const deadlines = createDeadlineScheduler();
  const sessions = createSessionStore(kv, { ttlMs: config.sessionTtlMs });
  const govSessions = createGovSessionStore(kv, {
    ttlMs: Math.max(config.sessionTtlMs, 86_400_000),
    redact: redactRetained,
  });
  resolveEvidence = createEvidenceResolver({ ledger, evidence, sessions: govSessions });
  // Deno Deploy without WARDEN_CREDENTIAL_KEY has no key; elsewhere the key (file) is
  // loaded, or created beside the KV, only when a credential is first stored or read.
  const credentialKeyMissing = config.onDeploy && !config.credentialKey
    ? "no credential key on Deno Deploy: set WARDEN_CREDENTIAL_KEY (`warden upstream credential keygen` prints one)"
    : undefined;
  const credentials = createCredentialStore(
    kv,
    credentialKeyMissing !== undefined ? undefined : async () => {
      const loaded = await loadCredentialKey({
        keyString: config.credentialKey,
        file: config.credentialKeyFile,
        kvPath: config.kvPath,
        onDeploy: config.onDeploy,
      });
      if (loaded.created) {
        logger.info("created the upstream credential key", { file: loaded.file });
      }
      if (loaded.key === undefined) throw new CredentialError(loaded.unavailable ?? "no key");
      return loaded.key;
    },
    credentialKeyMissing,
  );
  // Per-principal bus topics: the bus_* tools, and 2026-07-28 listen streams naming them.
  // Watched in this process; on Deno Deploy the watch sees every isolate, so nothing polls there.
  const busService = createBusService(kv, { limits: { pollMs: config.onDeploy ? 0 : 250 } });
  // What one instance does that the others sharing the KV must act on (registry changes).
  const events = await openEventBus(kv, {
    origin: crypto.randomUUID(),
    limits: { pollMs: config.onDeploy ? 0 : 500 },
    onError: (e) => logger.warn("instance event bus", { error: e }),
  });
  const gateway = createGateway({
    kv,
    logger,
    events,
    credentials,
    upstreams: deps.upstreams ?? [],
    record: (fields) => governance.record(fields),
    reservedNames: () => tools.map((t) => t.name),
    reservedPrompts: () => ownPrompts,
    toolTimeoutMs: config.toolTimeoutMs,
    onDeploy: config.onDeploy,
    operators: () => policy.operators,
    allowHosts: config.registryAllowHosts,
    // Read when an upstream is authorized, after the port is bound (declared further down).
    publicBase: () => publicBase(),
    ...(deps.clock ? { now: deps.clock } : {}),
    ...deps.gatewayOptions,
  });
  // Upstream resource subscriptions of every 2025 session and 2026 listen stream in this process.
  const subscriptions = createSubscriptionHub({ logger });
  gateway.onResourceUpdated = (server, uri) => subscriptions.updated(server, uri);
  // Warden's own prompt names, known once the extensions are (before the gateway starts).
  let ownPrompts: readonly string[] = [];
  // Per-principal state services (the memory_*, file_*, context_* and bus_* tools).
  const memory = createMemoryService(kv, {
    limits: {
      maxValueBytes: policy.memory.max_value_bytes,
      maxTtlSeconds: policy.memory.max_ttl_seconds,
      defaultTtlSeconds: policy.memory.default_ttl_seconds,
      maxKeysPerPrincipal: policy.memory.max_keys_per_principal,
    },
  });
  const fileStore = createFileService(kv, {
    limits: {
      maxFileBytes: policy.files.max_file_bytes,
      maxVersions: policy.files.max_versions,
      maxFiles: policy.files.max_files,
      leaseSeconds: Math.min(policy.files.lease_seconds, policy.files.max_lease_seconds),
      maxLeaseSeconds: policy.files.max_lease_seconds,
    },
  });
  const context = createContextService(kv, {
    embeddings: openEmbeddings({
      settings: policy.context.embeddings,
      apiKey: config.embeddingsApiKey,
    }),
  });
  const toolServices: RegistryServices = {
    policy,
    governance,
    ledger,
    sessions: govSessions,
    evidence,
    shell,
    code,
    chat: openChat({ settings: policy.execution.prompt, apiKey: config.chatApiKey }),
    receipts: {
      vkey: identity.signer.vkey,
      keySource: identity.source,
      sign: (receipt) => signReceipt(receipt, identity.signer),
    },
    executions: createExecutionStore(kv),
    files,
    context,
    tokens: createTokenService({
      privateKey: identity.signer.privateKey,
      publicKey: identity.signer.publicKey,
    }),
    startedAtMs,
    vitals: createVitals({
      kv,
      ledger,
      origin: identity.origin,
      // Declared below; vitals only runs once the app is serving.
      liveSessions: () => ({ live_streamable: streamable.liveCount, live_sse: sse.liveCount }),
      // Every instance's published live counts, not a scan of every stored record.
      publishedSessions: () => publishSessions().then(() => sessionGauges.total()),
      callsLastMinute: () => governance.rates.callsLastMinute(),
      upstreams: () =>
        gateway.servers().map((s) => ({
          name: s.name,
          connected: s.connection.connected,
          circuit: s.circuit.state,
          ...(s.circuit.retry_after_s !== undefined
            ? { retry_after_s: s.circuit.retry_after_s }
            : {}),
          tools: s.tools.length,
        })),
    }),
  };
  const fixtures = config.conformanceFixtures;
  const fixtureNames: ReadonlySet<string> = new Set(
    fixtures ? conformanceTools.map((t) => t.name) : [],
  );
  const tools: ToolDefinition[] = [
    ...createCanonicalTools(toolServices),
    ...utilityTools,
    ...createMemoryTools({ memory }),
    ...createFileTools({ fileStore }),
    ...createExecutionTools(toolServices),
    ...createContextTools({ context }),
    ...createBusTools({ bus: busService }),
    ...(fixtures ? conformanceTools : []),
    ...(deps.extraTools ?? []),
  ];
  const registry = observeCalls(
    { metrics, accounting, kv, logger, tracer: createCallTracer() },
    createToolRegistry(tools, {
      logger,
      timeoutMs: config.toolTimeoutMs,
      deadlines,
      upstreams: gateway,
      services: toolServices,
    }),
  );
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
  ownPrompts = Object.keys(
    (newMcpServer("anonymous") as unknown as { _registeredPrompts: Record<string, unknown> })
      ._registeredPrompts ?? {},
  );
  await gateway.start();
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
  // The 2026-07-28 path: servers built once into a pool, the principal passed per request.
  // Names the 2026-07-28 conformance fixtures answer themselves (not the direct path).
  let fixtureTools: ReadonlySet<string> = new Set();
  const modern = createModernHandler({
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
  function allowFor(port: number) {
    const hosts = config.allowedHosts.length > 0
      ? config.allowedHosts.map((h) => h.toLowerCase())
      : defaultAllowedHosts(port);
    // Browsers always send the port in Origin unless it is the scheme's default, so by default
    // only pages served from this very port may call: not every local web app on localhost.
    const originHosts = config.allowedHosts.length > 0
      ? hosts
      : hosts.filter((h) => h.endsWith(`:${port}`));
    const origins = config.allowedOrigins.length > 0
      ? config.allowedOrigins.map((o) => o.toLowerCase())
      : originHosts.flatMap((h) => [`http://${h}`, `https://${h}`]);
    if (config.publicUrl !== undefined) {
      // The name clients use behind a proxy or a real hostname is allowed as well.
      const pub = new URL(config.publicUrl);
      hosts.push(pub.host.toLowerCase());
      origins.push(pub.origin.toLowerCase());
    }
    return { hosts, origins };
  }
  // Recomputed only when the bound port becomes known, not per request.
  let allowed = allowFor(config.port);
  const allow = () => allowed;
  let boundPort = config.port;
  // People log in (OAuth /login, the dashboard) with the users `warden user add` created (scrypt, in KV).
  const checkPassword: PasswordVerifier = deps.verifyPassword ??
    (async (name, password) => (await verifyPassword(kv, name, password)) !== undefined);
  // This server's public base URL: the OAuth issuer, and `<base>/mcp` the resource tokens name.
  const publicBase = () => {
    if (config.issuer) return config.issuer;
    if (config.publicUrl) return config.publicUrl.replace(/\/+$/, "");
    const h = config.host.includes(":") ? `[${config.host}]` : config.host;
    return `http://${h === "0.0.0.0" || h === "[::]" ? "127.0.0.1" : h}:${boundPort}`;
  };
  const oidcLogin = config.oidc?.login
    ? createOidcLogin({
      issuer: config.oidc.issuer,
      clientId: config.oidc.login.clientId,
      ...(config.oidc.login.clientSecret !== undefined
        ? { clientSecret: config.oidc.login.clientSecret }
        : {}),
      redirectUri: () => `${publicBase()}/login/oidc/callback`,
      scopes: config.oidc.login.scopes,
      algorithms: config.oidc.algorithms,
      rolesClaim: config.oidc.rolesClaim,
      ...(config.oidc.roleMap ? { roleMap: config.oidc.roleMap } : {}),
      allowHosts: config.oidc.allowHosts,
      timeoutMs: config.oidc.fetchTimeoutMs,
      ...(deps.oidcFetch ? { fetch: deps.oidcFetch } : {}),
    })
    : undefined;
  const oauth = config.auth === "oauth"
    ? await createOAuthServer({
      kv,
      issuer: publicBase,
      verifyPassword: checkPassword,
      scopes: ["mcp", "profile"],
      cimdAllowHosts: config.oauthCimdAllowHosts,
      ...(deps.oauthFetch ? { fetch: deps.oauthFetch } : {}),
      ...(config.oidc ? { federatedIssuers: [config.oidc.issuer] } : {}),
      exchangeAudiences: config.oauthExchangeAudiences,
      ...(oidcLogin ? { oidcLogin, logger } : {}),
    })
    : undefined;
  const oidc = config.oidc
    ? createOidcVerifier({
      issuer: config.oidc.issuer,
      audience: () => config.oidc!.audience ?? `${publicBase()}/mcp`,
      algorithms: config.oidc.algorithms,
      rolesClaim: config.oidc.rolesClaim,
      ...(config.oidc.roleMap ? { roleMap: config.oidc.roleMap } : {}),
      allowHosts: config.oidc.allowHosts,
      timeoutMs: config.oidc.fetchTimeoutMs,
      ...(deps.oidcFetch ? { fetch: deps.oidcFetch } : {}),
      ...(config.auth === "oauth" ? { ownIssuer: publicBase } : {}),
    })
    : undefined;
  const auth = createAuthResolver({
    kv,
    ...(config.token !== undefined ? { staticToken: config.token } : {}),
    required: config.token !== undefined || oauth !== undefined || oidc !== undefined,
    defaultRoles: () => governance.policy.default_roles,
  });
  if (oauth) {
    // An OAuth access token names the user it was issued to; a local user's roles come from their
    // record, and a person who signed in at the external provider has the roles its ID token mapped
    // to (the token says which: only Warden signs `idp`, so no user record can pose as one).
    auth.addVerifier(async (secret) => {
      if (!/^[A-Za-z0-9._~+/=-]{1,4096}$/.test(secret)) return undefined;
      const claims = await oauth.verify(secret);
      if (!claims) return undefined;
      const roles = claims.idp !== undefined ? claims.roles : await userRoles(kv, claims.sub);
      return {
        id: claims.sub,
        kind: "oauth",
        roles: roles ?? governance.policy.default_roles,
        scopes: claims.scope.split(" ").filter(Boolean),
        client_id: claims.client_id,
      };
    });
  }
  if (oidc) {
    // An external provider's token: the principal is <issuer>#<sub>, with the roles its claim maps
    // to (the policy's `principals` entry adds to them, as for every principal).
    auth.addVerifier(async (secret) => {
      if (!/^[A-Za-z0-9._~+/=-]{1,4096}$/.test(secret)) return undefined;
      const r = await oidc.verify(secret);
      if (r === undefined) return undefined;
      if ("refused" in r) {
        logger.info("external token refused", { issuer: oidc.issuer, reason: r.refused });
        return {
          error: "invalid",
          message: `Unauthorized: ${r.refused}`,
          description: r.refused,
        };
      }
      return {
        id: r.principal,
        kind: "oauth",
        roles: r.roles,
        scopes: r.scopes,
        ...(r.client_id !== undefined ? { client_id: r.client_id } : {}),
      };
    });
    // Read the provider now so a misconfiguration shows in the log at start; tokens retry.
    oidc.warm().catch((e) =>
      logger.warn("cannot read the OpenID provider yet", {
        issuer: oidc.issuer,
        error: (e as Error).message,
      })
    );
  }
  const http = createHttpApp({
    auth,
    registry,
    streamable,
    modern,
    sse,
    websocket,
    kv,
    logger,
    version: VERSION,
    startedAtMs,
    ...(config.workers > 1 ? { worker: { index: config.workerIndex, pid: Deno.pid } } : {}),
    token: config.token,
    maxBodyBytes: config.maxBodyBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    deadlines,
    allow,
    ledger,
    governance,
    gateway,
    registrationToken: config.registrationToken,
    vkey: identity.signer.vkey,
    trustedProxies: config.trustedProxies,
    metrics,
    accounting,
    oauth,
    ...(oidc && !oauth
      ? {
        protectedResource: createProtectedResource({
          resource: () => `${publicBase()}/mcp`,
          issuers: [oidc.issuer],
        }),
      }
      : {}),
    dashboard: createDashboard({
      kv,
      ledger,
      governance,
      vkey: identity.signer.vkey,
      logger,
      verifyPassword: checkPassword,
      gateway,
      accounting,
      checkpointAgeMs: () =>
        lastCheckpointMs === undefined ? undefined : Date.now() - lastCheckpointMs,
      signCheckpoint: async () => {
        await ledger.signCheckpoint();
        lastCheckpointMs = Date.now();
      },
      oauthLogin: oauth !== undefined,
      secureCookies: () => config.publicUrl?.startsWith("https:") === true,
      statusOf,
    }),
  });
  metrics.setSources({
    vaultSize: async () => (await ledger.head()).size,
    checkpointAgeMs: () => Date.now() - (lastCheckpointMs ?? startedAtMs),
    holdsOpen: async () => (await governance.holds.listOpen(1000)).length,
    sessions: () => ({ streamable: streamable.liveCount, sse: sse.liveCount }),
  });
  const usageSummary = createDailySummary({ kv, accounting, append: appendAndMark, logger });
  usageSummary.start();
  publishSessions().catch((e) => logger.warn("cannot publish session counts", { error: e }));
  const reaper = setInterval(() => {
    streamable.reap().catch((e) => logger.warn("session reaper failed", { error: e }));
    sse.refresh().catch((e) => logger.warn("cannot refresh SSE session records", { error: e }));
    publishSessions().catch((e) => logger.warn("cannot publish session counts", { error: e }));
    // A hold nobody looks at again still has its expiry sealed.
    governance.holds.sweepExpired().catch((e) =>
      logger.warn("cannot sweep expired holds", { error: e })
    );
    limiter.sweep().catch((e) => logger.warn("cannot sweep lapsed in-flight counts", { error: e }));
  }, reaperMs);
  // A refusal repeats every tick until an operator acts: logged once a minute, not every tick.
  let lastSignErrorLogMs = -Infinity;
  const checkpointer = setInterval(() => {
    checkpointIfNeeded().catch((e) => {
      unsigned = true;
      const now = Date.now();
      if (now - lastSignErrorLogMs < 60_000) return;
      lastSignErrorLogMs = now;
      logger.error("cannot sign checkpoint", { error: e });
    });
  }, config.checkpointIntervalMs);
  if (config.checkpointMirror !== undefined) {
    ledger.checkMirror().then((m) => {
      if (!m.ok) {
        logger.error("the log does not match its checkpoint mirror: no checkpoint will be signed", {
          reason: m.reason,
        });
      }
    }).catch((e) => logger.error("cannot check the checkpoint mirror", { error: e }));
  }
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
    usageSummary,
    setBoundPort(port) {
      allowed = allowFor(port);
      boundPort = port;
    },
    newMcpServer,
    async close() {
      clearInterval(reaper);
      holdExpiries.close();
      oauth?.close();
      clearInterval(checkpointer);
      usageSummary.close();
      await events.close();
      await gateway.close();
      await sse.close();
      await websocket.close();
      await streamable.close();
      await modern.close();
      await tasks.close();
      await writer.flush();
      await accounting.close();
      await ledger.flush();
      await limiter.flush().catch((e) => logger.warn("cannot commit releases", { error: e }));
      // Every acknowledged entry is covered by a signed checkpoint before exit,
      // unless signing is refused (a log behind or forked from its mirror): then
      // the refusal is logged and shutdown goes on rather than hang.
      try {
        await ledger.signCheckpoint();
      } catch (e) {
        logger.error("cannot sign the final checkpoint", { error: e });
      } finally {
        deadlines.close();
      }
    },
  };
}
