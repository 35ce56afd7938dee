/**
 * Composition step: the vault — the log's identity (origin and signing key), the ledger over KV,
 * and the bookkeeping of what is not yet covered by a signed checkpoint.
 * @module
 */
import type { Config } from "../config.ts";
import {
  type AppendOptions,
  createFileMirror,
  createLedger,
  type Ledger,
  loadVaultIdentity,
  type SealReceipt,
  type VaultIdentity,
} from "../vault/mod.ts";

/** The opened vault and its checkpoint bookkeeping. */
export interface VaultStep {
  readonly identity: VaultIdentity;
  readonly ledger: Ledger;
  /** Appends an entry and notes that a checkpoint is due. */
  append(fields: Record<string, unknown>, options?: AppendOptions): Promise<SealReceipt>;
  /** Signs a checkpoint if anything was appended since the last; due again when signing fails. */
  checkpointIfNeeded(): Promise<void>;
  /** Signs a checkpoint now (the dashboard's button). */
  signCheckpoint(): Promise<void>;
  /** When this process last signed a checkpoint (epoch ms), if it has. */
  lastCheckpointMs(): number | undefined;
}

/** Loads (or creates) the log's identity and opens the ledger over `kv`. */
export async function openVault(
  kv: Deno.Kv,
  config: Readonly<Config>,
  options: { identity?: VaultIdentity; defaultOrigin?: string },
): Promise<VaultStep> {
  const identity = options.identity ?? await loadVaultIdentity(kv, {
    origin: config.origin,
    defaultOrigin: options.defaultOrigin ?? "warden/localhost",
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
  return {
    identity,
    ledger,
    async append(fields, appendOptions) {
      const receipt = await ledger.append(fields, appendOptions);
      unsigned = true;
      return receipt;
    },
    async checkpointIfNeeded() {
      if (!unsigned) return;
      unsigned = false;
      try {
        await ledger.signCheckpoint();
      } catch (e) {
        unsigned = true;
        throw e;
      }
      lastCheckpointMs = Date.now();
    },
    async signCheckpoint() {
      await ledger.signCheckpoint();
      lastCheckpointMs = Date.now();
    },
    lastCheckpointMs: () => lastCheckpointMs,
  };
}
