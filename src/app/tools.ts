/**
 * Composition step: Warden's own tools and the registry every call goes through — the state
 * services (memory, files, context), the vitals check_vital reports, each tool family given
 * exactly the services it uses, and the registry (with containment, the deadline and the
 * gateway's upstream tools) counted by observeCalls.
 * @module
 */
import type { Config } from "../config.ts";
import { openChat } from "../execution/mod.ts";
import type { DeadlineScheduler, Logger } from "../lib/mod.ts";
import { createTokenService, type Governance, type Policy } from "../governance/mod.ts";
import type { Gateway } from "../gateway/mod.ts";
import { createVitals, type VitalsReader, type VitalsSources } from "../health/mod.ts";
import {
  conformanceTools,
  createBusTools,
  createContextTools,
  createEvidenceTools,
  createExecutionTools,
  createFileTools,
  createMemoryTools,
  createMetabolicTools,
  utilityTools,
} from "../tools/mod.ts";
import {
  createToolRegistry,
  type NestedCalls,
  type ToolDefinition,
  type ToolRegistry,
} from "../calls/mod.ts";
import {
  type ContextService,
  createContextService,
  createFileService,
  createMemoryService,
  type FileService,
  type MemoryService,
  openEmbeddings,
} from "../services/mod.ts";
import { createExecutionStore } from "../store/mod.ts";
import { type Accounting, createCallTracer, type Metrics } from "../usage/mod.ts";
import {
  type ExecutionReceipt,
  type Ledger,
  signReceipt,
  type VaultIdentity,
} from "../vault/mod.ts";
import { observeCalls } from "./observe_calls.ts";
import type { Stores } from "./stores.ts";

/** Extra tools (tests), or what makes them given the registry's nested calls. */
export type ExtraTools =
  | readonly ToolDefinition[]
  | ((nested: NestedCalls) => readonly ToolDefinition[]);

/** What {@link buildTools} builds the tools and registry from. */
export interface ToolsStepDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly policy: Policy;
  readonly identity: VaultIdentity;
  readonly ledger: Ledger;
  readonly governance: Governance;
  readonly stores: Stores;
  readonly gateway: Gateway;
  readonly deadlines: DeadlineScheduler;
  readonly metrics: Metrics;
  readonly accounting: Accounting;
  readonly startedAtMs: number;
  readonly extraTools?: ExtraTools;
  /** The clock memory TTLs and file leases lapse by (tests move it); the real one when absent. */
  readonly clock?: () => number;
  /** This process's live session counts (read once serving). */
  readonly liveSessions: VitalsSources["liveSessions"];
  /** Every instance's published session counts. */
  readonly publishedSessions: VitalsSources["publishedSessions"];
}

/** The registry and what the MCP surfaces need to know about the tools. */
export interface ToolsStep {
  readonly registry: ToolRegistry;
  /** Warden's own tools, once the registry has made them (names an upstream may not take). */
  tools(): readonly ToolDefinition[];
  /** The conformance fixtures are on. */
  readonly fixtures: boolean;
  /** The fixture tools' names (the 2025 direct path leaves them to the SDK). */
  readonly fixtureNames: ReadonlySet<string>;
}

/** The per-principal state services (the memory_*, file_*, context_* tools). */
function openStateServices(
  kv: Deno.Kv,
  config: Readonly<Config>,
  policy: Policy,
  now?: () => number,
): { memory: MemoryService; fileStore: FileService; context: ContextService } {
  const clock = now ? { now } : {};
  // Per-principal state services (the memory_*, file_*, context_* and bus_* tools).
  const memory = createMemoryService(kv, {
    ...clock,
    limits: {
      maxValueBytes: policy.memory.max_value_bytes,
      maxTtlSeconds: policy.memory.max_ttl_seconds,
      defaultTtlSeconds: policy.memory.default_ttl_seconds,
      maxKeysPerPrincipal: policy.memory.max_keys_per_principal,
    },
  });
  const fileStore = createFileService(kv, {
    ...clock,
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
  return { memory, fileStore, context };
}

/** The vitals check_vital reports (KV latency, vault head, sessions, calls, upstreams). */
function vitalsOf(deps: ToolsStepDeps): VitalsReader {
  const { kv, ledger, identity, governance, gateway } = deps;
  return createVitals({
    kv,
    ledger,
    origin: identity.origin,
    // Read once the app is serving (the transports are built after the tools).
    liveSessions: deps.liveSessions,
    // Every instance's published live counts, not a scan of every stored record.
    publishedSessions: deps.publishedSessions,
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
  });
}

/** Builds Warden's own tools and the registry over them and the gateway's. */
export function buildTools(deps: ToolsStepDeps): ToolsStep {
  const { kv, config, logger, policy, identity, ledger, governance, gateway, deadlines } = deps;
  const { metrics, accounting, startedAtMs } = deps;
  const { files, shell, code, evidence, govSessions, busService } = deps.stores;
  const { memory, fileStore, context } = openStateServices(kv, config, policy, deps.clock);
  const tokens = createTokenService({
    privateKey: identity.signer.privateKey,
    publicKey: identity.signer.publicKey,
  });
  // What secure_execute and the evidence chain use: the chat endpoint, receipts signed with the
  // vault's key, and the verified executions by id and case.
  const chat = openChat({ settings: policy.execution.prompt, apiKey: config.chatApiKey });
  const receipts = {
    vkey: identity.signer.vkey,
    keySource: identity.source,
    sign: (receipt: ExecutionReceipt) => signReceipt(receipt, identity.signer),
  };
  const executions = createExecutionStore(kv);
  const vitals = vitalsOf(deps);
  const fixtures = config.conformanceFixtures;
  const fixtureNames: ReadonlySet<string> = new Set(
    fixtures ? conformanceTools.map((t) => t.name) : [],
  );
  // Own tools, each family given exactly the services it uses; eureka_forge and apex_judge call
  // and judge other tools through `nested`, the registry's own (set as it is made, below).
  let tools: readonly ToolDefinition[] = [];
  const ownTools = (nested: NestedCalls): readonly ToolDefinition[] => [
    ...createMetabolicTools({
      sessions: govSessions,
      evidence,
      ledger,
      context,
      policy,
      governance,
      tokens,
      shell,
      callTool: nested.callTool,
      judgeTool: nested.judgeTool,
    }),
    ...createEvidenceTools({
      policy,
      evidence,
      files,
      ledger,
      governance,
      vitals,
      startedAtMs,
      sessions: govSessions,
      context,
    }),
    ...utilityTools,
    ...createMemoryTools({ memory }),
    ...createFileTools({ fileStore }),
    ...createExecutionTools({
      code,
      chat,
      policy,
      ledger,
      receipts,
      executions,
      governance,
      shell,
    }),
    ...createContextTools({ context }),
    ...createBusTools({ bus: busService }),
    ...(fixtures ? conformanceTools : []),
    ...(typeof deps.extraTools === "function" ? deps.extraTools(nested) : deps.extraTools ?? []),
  ];
  const registry = observeCalls(
    { metrics, accounting, kv, logger, tracer: createCallTracer() },
    createToolRegistry((nested) => tools = ownTools(nested), {
      logger,
      timeoutMs: config.toolTimeoutMs,
      deadlines,
      upstreams: gateway,
      services: { governance, sessions: govSessions },
    }),
  );
  return { registry, tools: () => tools, fixtures, fixtureNames };
}
