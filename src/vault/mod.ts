/**
 * The pure core of the vault: RFC 6962 hashing, the compact range kept in
 * the head, proof plans that name stored nodes, RFC 9162 verification,
 * canonical JSON for entries, C2SP checkpoints and signed notes, and offline
 * bundle verification. Nothing here touches KV or the network; storage
 * passes node hashes in and gets plain data out.
 *
 * @module
 */

export {
  EMPTY_ROOT,
  equalBytes,
  fromBase64,
  fromHex,
  HASH_SIZE,
  hashChildren,
  hashLeaf,
  sha256,
  sha256HexOfText,
  toBase64,
  toHex,
} from "./hasher.ts";
export {
  CompactRange,
  type CompactRangeJson,
  type NodeHash,
  type NodeId,
} from "./compact_range.ts";
export {
  buildConsistencyProof,
  buildInclusionProof,
  buildRoot,
  consistencyNodes,
  type GetNodes,
  inclusionNodes,
  materialize,
  type NodeSource,
  type ProofPlan,
  rangeNodes,
  rootNodes,
} from "./proof.ts";
export {
  type ConsistencyClaim,
  type InclusionClaim,
  ProofError,
  ProofSizeError,
  rootFromInclusionProof,
  RootMismatchError,
  verifyConsistency,
  verifyInclusion,
} from "./verify.ts";
export {
  canonicalize,
  type CanonicalOptions,
  canonicalString,
  digestJson,
  lenientDigestJson,
} from "./canonical_json.ts";
export {
  generateSigner,
  InvalidSignatureError,
  isValidKeyName,
  keyIdOf,
  MalformedNoteError,
  NoteError,
  type OpenedNote,
  openNote,
  type Signer,
  signerFromKeyString,
  signerToKeyString,
  signNote,
  splitNote,
  UnverifiedNoteError,
  type Verifier,
  verifierFromVkey,
} from "./note.ts";
export {
  type Checkpoint,
  formatCheckpoint,
  MalformedCheckpointError,
  openCheckpoint,
  type OpenedCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from "./checkpoint.ts";
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
