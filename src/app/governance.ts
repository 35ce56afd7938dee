/**
 * Composition step: governance — the shared rate limiter, the holds store with its expiry watch
 * (an expired hold sealed once across processes), the pipeline, and the `policy_loaded` entry.
 * @module
 */
import type { Config } from "../config.ts";
import type { Logger } from "../lib/mod.ts";
import {
  createExpiryWatch,
  createGovernance,
  createHoldStore,
  type ExpiryWatch,
  type Governance,
  type GovernanceDeps,
  type Policy,
  policyHash,
} from "../governance/mod.ts";
import { createKvLimiter, type KvLimiter, type Metrics } from "../usage/mod.ts";
import { holdExpiredSealKey } from "../store/mod.ts";
import { EntryExistsError } from "../vault/mod.ts";
import type { VaultStep } from "./vault.ts";

/** What {@link buildGovernance} wires governance from. */
export interface GovernanceStepDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly policy: Policy;
  /** Where the policy came from, recorded with its hash in the vault. */
  readonly policySource?: string;
  readonly logger: Logger;
  readonly vault: VaultStep;
  readonly metrics: Metrics;
  /** Which evidence ids exist and what each says (resolved once the stores are made). */
  readonly knownEvidence: GovernanceDeps["knownEvidence"];
  /** The clock holds expire by, in epoch ms. */
  readonly clock?: () => number;
}

/** Governance, and the parts of it the lifecycle sweeps and closes. */
export interface GovernanceStep {
  readonly governance: Governance;
  readonly limiter: KvLimiter;
  readonly holdExpiries: ExpiryWatch;
}

/** Builds governance and seals the `policy_loaded` entry. */
export async function buildGovernance(deps: GovernanceStepDeps): Promise<GovernanceStep> {
  const { kv, config, policy, logger, vault } = deps;
  const limiter = createKvLimiter(kv, {
    policy,
    // An in-flight count outlives a crashed instance by at most this long.
    leaseMs: config.toolTimeoutMs + config.requestTimeoutMs,
    observer: deps.metrics.limiter,
    // A call's release rides along the vault's commit of its entry: one limiter commit per call.
    ...(config.sealing ? { carrier: vault.ledger } : {}),
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
          await vault.append({ ...fields, policy_sha256: governance.policyHash }, {
            once: holdExpiredSealKey(hold.id),
          });
        } catch (e) {
          if (!(e instanceof EntryExistsError)) throw e;
        }
      },
    }),
    rates: limiter,
    // Sealing "off" exists only to measure its cost; governance events are still recorded.
    ...(config.sealing ? { seal: vault.append } : {}),
    // vault:N, content hashes, fetched URLs and the caller's own sessions, with what each says.
    knownEvidence: deps.knownEvidence,
    logger,
  });
  await vault.append({
    type: "policy_loaded",
    policy_sha256: governance.policyHash,
    source: deps.policySource ?? "built-in default",
  });
  return { governance, limiter, holdExpiries };
}
