/**
 * Composition step: the core every later step is built over — the redacting logger, the vault,
 * the policy, metrics and usage accounts, the published session gauges, the stores, governance
 * and the shared deadline timer.
 * @module
 */
import type { Config } from "../config.ts";
import {
  createDeadlineScheduler,
  type DeadlineScheduler,
  type Logger,
  withRedaction,
} from "../lib/mod.ts";
import {
  DEFAULT_POLICY,
  type ExpiryWatch,
  type Governance,
  type Policy,
  redact,
} from "../governance/mod.ts";
import {
  type Accounting,
  createAccounting,
  createMetrics,
  createSessionGauges,
  type KvLimiter,
  type Metrics,
  type SessionGauges,
} from "../usage/mod.ts";
import type { Ledger, VaultIdentity } from "../vault/mod.ts";
import { buildGovernance } from "./governance.ts";
import { openStores, type Stores } from "./stores.ts";
import { openVault, type VaultStep } from "./vault.ts";

/** What {@link openCore} needs besides configuration (createApp's deps). */
export interface CoreDeps {
  readonly kv: Deno.Kv;
  readonly logger: Logger;
  readonly policy?: Policy;
  readonly policySource?: string;
  readonly identity?: VaultIdentity;
  readonly defaultOrigin?: string;
  readonly clock?: () => number;
}

/** The core the later steps are built over (each takes the fields it declares). */
export interface Core {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  /** Redacted with the vault's detectors. */
  readonly logger: Logger;
  readonly startedAtMs: number;
  readonly vault: VaultStep;
  readonly identity: VaultIdentity;
  readonly ledger: Ledger;
  readonly policy: Policy;
  /** How often sessions are reaped and counts published. */
  readonly reaperMs: number;
  readonly sessionGauges: SessionGauges;
  readonly metrics: Metrics;
  readonly accounting: Accounting;
  readonly stores: Stores;
  readonly governance: Governance;
  readonly limiter: KvLimiter;
  readonly holdExpiries: ExpiryWatch;
  readonly deadlines: DeadlineScheduler;
}

/** Opens the vault and stores and builds governance over them. */
export async function openCore(config: Readonly<Config>, deps: CoreDeps): Promise<Core> {
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
  const metrics = createMetrics();
  // Session rows expire as a session does: one idle timeout after its last call.
  const accounting = createAccounting(kv, { policy, sessionTtlMs: config.sessionTtlMs });
  const stores = await openStores({ kv, config, policy, ledger });
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
  return {
    kv,
    config,
    logger,
    startedAtMs,
    vault,
    identity,
    ledger,
    policy,
    reaperMs,
    sessionGauges,
    metrics,
    accounting,
    stores,
    governance,
    limiter,
    holdExpiries,
    deadlines,
  };
}
