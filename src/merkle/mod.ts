/**
 * Pure Merkle-tree code, apart from any storage: RFC 6962 hashing, the
 * compact range kept in a log's head, proof plans that name the nodes a
 * proof needs, RFC 9162 inclusion and consistency verification, C2SP signed
 * notes and checkpoints. Storage passes node hashes in and gets plain data
 * out, so one verifier serves the server, the CLI and an outside auditor.
 *
 * @module
 */

export { EMPTY_ROOT, HASH_SIZE, hashChildren, hashLeaf } from "./hasher.ts";
/** Set bits of a tree size: how many perfect subtrees (compact-range nodes) it has. */
export { popCount } from "./_bits.ts";
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
