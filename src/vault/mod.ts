/**
 * The vault: the append-only ledger over KV (group commit, entry codec, node
 * storage, signed checkpoints), its signing key, the checkpoint mirror and
 * the audit of a running server (KV, files, network), beside the pure parts
 * built on src/merkle/: offline bundle verification and I/O, execution
 * receipts and evidence package verification.
 *
 * @module
 */

export {
  type Bundle,
  type BundleFailure,
  type BundleOptions,
  type BundleResult,
  type BundleSuccess,
  type BundleVerifier,
  createBundleVerifier,
  GENESIS_PREV,
  verifyBundle,
} from "./bundle_verify.ts";
export {
  BUNDLE_FORMAT,
  type BundleFileResult,
  type BundleHeader,
  describeResult,
  verifyBundleStream,
  writeBundle,
} from "./bundle_io.ts";
export {
  type AppendOptions,
  createLedger,
  EntryExistsError,
  entryProblem,
  exportBundle,
  type Ledger,
  MAX_ENTRY_BYTES,
  type SealReceipt,
  type StoredEntry,
  VaultCorruptionError,
  type VaultHead,
} from "./ledger.ts";
export {
  loadDefaultSigningKey,
  loadVaultIdentity,
  type SigningKeySource,
  type VaultIdentity,
  VaultIdentityError,
} from "./signing_key.ts";
export { type AuditResult, auditServer } from "./audit.ts";
export {
  type ExecutionReceipt,
  MalformedReceiptError,
  openReceipt,
  RECEIPT_FORMAT,
  signReceipt,
} from "./receipt.ts";
export {
  buildEvidencePackage,
  EVIDENCE_PACKAGE_FORMAT,
  type EvidencePackage,
  MAX_PACKAGE_ENTRIES,
  type PackagedEntry,
  type PackageResult,
  verifyEvidencePackage,
} from "./evidence_package.ts";
export { type CheckpointMirror, createFileMirror } from "./mirror.ts";
export { ownEntry } from "./own_entry.ts";
export type { CommitStats } from "./group_commit.ts";
