/**
 * The pure governance core: the policy (validated, hashed), the thirteen
 * floors, and the synthesis of their results into one verdict. Nothing here
 * touches KV, HTTP, the MCP SDK, the network or the clock; the pipeline
 * gathers the facts (`CallFacts`, `ToolFacts`, `RateFacts`, `ResultFacts`)
 * and passes them in.
 *
 * @module
 */

export {
  type ApprovalFacts,
  type CallFacts,
  type Claim,
  type FailureAction,
  FLOOR_IDS,
  FLOOR_NAMES,
  type FloorId,
  type FloorResult,
  type RateCheck,
  type RateFacts,
  type ResultFacts,
  type ToolFacts,
  type ToolHints,
} from "./types.ts";
export {
  canonicalPolicy,
  DEFAULT_POLICY,
  type FloorMode,
  floorMode,
  floorThreshold,
  parsePolicy,
  type Policy,
  PolicyError,
  policyHash,
  type PolicyIssue,
  PolicySchema,
  rolesOf,
  toolGlobMatches,
  type ToolPermission,
  toolPermission,
} from "./policy.ts";
export {
  amanah,
  antiHantu,
  APPROVAL_TOOL,
  clarity,
  commandAuthority,
  empathy,
  evaluatePost,
  evaluatePre,
  genius,
  humility,
  injectionDefense,
  omega0,
  ontology,
  peace,
  type PostInput,
  type PreInput,
  round3,
  shownName,
  sovereign,
  triWitness,
  truth,
} from "./floors.ts";
export { principalFields, rolesFor } from "./roles.ts";
export {
  type Finding,
  findPii,
  ibanValid,
  luhnValid,
  PII_KINDS,
  type PiiKind,
  placeholder,
  redact,
  redacted,
  redactText,
} from "./pii.ts";
export { findInjections, INJECTION_PATTERNS } from "./injection.ts";
export { contentTerms, sharedTerms } from "./relevance.ts";
export { findSentienceClaims, SENTIENCE_PATTERNS } from "./anti_hantu.ts";
export type { NamedPattern, PatternMatch } from "./_walk.ts";
export {
  floorScores,
  synthesize,
  type Telemetry,
  telemetry,
  type Verdict,
  type VerdictName,
} from "./verdict.ts";
export {
  createExpiryWatch,
  createHoldStore,
  decisionMessage,
  elicitationAction,
  type ExpiryWatch,
  type HoldDecision,
  holdDigest,
  HoldError,
  type HoldErrorCode,
  type HoldRecord,
  type HoldStatus,
  type HoldStore,
  type Operator,
  verifyOperatorSignature,
} from "./holds.ts";
export { type Admission, createNoLimiter, type RateLimiter, type RateSubject } from "./rates.ts";
export {
  createGovernance,
  type Execution,
  type Governance,
  type GovernanceDeps,
  type GovernedRequest,
  type GovernedResult,
  type OnHold,
  type SealFn,
} from "./pipeline.ts";
export { decideHold } from "./decide_hold.ts";
export { createTokenService, TokenError, type TokenPayload, type TokenService } from "./token.ts";
export {
  generateOperatorKey,
  loadOperatorKey,
  type OperatorKey,
  signDecision,
} from "./operator_key.ts";
