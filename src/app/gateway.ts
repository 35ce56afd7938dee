/**
 * Composition step: the gateway — the upstream credential store (its key loaded, or created
 * beside the KV, only when a credential is first stored or read), the instances' event bus
 * (registry changes every instance sharing the KV acts on) and the gateway over both.
 * @module
 */
import type { Config } from "../config.ts";
import type { Logger } from "../lib/mod.ts";
import type { Governance, Policy } from "../governance/mod.ts";
import {
  createCredentialStore,
  createGateway,
  CredentialError,
  type Gateway,
  type GatewayDeps,
  loadCredentialKey,
  type UpstreamConfig,
} from "../gateway/mod.ts";
import { type EventBus, openEventBus } from "../services/mod.ts";

/** What {@link buildGateway} wires the gateway from. */
export interface GatewayStepDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly policy: Policy;
  readonly logger: Logger;
  readonly governance: Governance;
  /** Upstreams from the --upstreams file. */
  readonly upstreams?: readonly UpstreamConfig[];
  /** Names an upstream may not take: Warden's own tools and prompts (read when it registers). */
  readonly reservedNames: () => readonly string[];
  readonly reservedPrompts: () => readonly string[];
  /** This server's public base URL, read when an upstream is authorized (after binding). */
  readonly publicBase: () => string;
  readonly clock?: () => number;
  /** Gateway tuning (tests shorten the breaker's cool-down and the probe period). */
  readonly gatewayOptions?: Pick<GatewayDeps, "breaker" | "healthIntervalMs" | "sandbox" | "env">;
}

/** The gateway and the event bus it listens on (closed with the app). */
export interface GatewayStep {
  readonly gateway: Gateway;
  readonly events: EventBus;
}

/** Opens the event bus and builds the gateway (not started: that waits for the MCP surfaces). */
export async function buildGateway(deps: GatewayStepDeps): Promise<GatewayStep> {
  const { kv, config, logger, governance } = deps;
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
    reservedNames: deps.reservedNames,
    reservedPrompts: deps.reservedPrompts,
    toolTimeoutMs: config.toolTimeoutMs,
    onDeploy: config.onDeploy,
    operators: () => deps.policy.operators,
    allowHosts: config.registryAllowHosts,
    publicBase: deps.publicBase,
    ...(deps.clock ? { now: deps.clock } : {}),
    ...deps.gatewayOptions,
  });
  return { gateway, events };
}
