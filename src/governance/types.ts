/**
 * The plain data governance works on: what a floor returns, and the facts
 * the pipeline gathers about a call, its tool, the rates and the result.
 * Floors read only these values (and the policy), never a store or a clock.
 *
 * @module
 */

/** The thirteen floors, in evaluation and reporting order. */
export const FLOOR_IDS = [
  "F1",
  "F2",
  "F3",
  "F4",
  "F5",
  "F6",
  "F7",
  "F8",
  "F9",
  "F10",
  "F11",
  "F12",
  "F13",
] as const;

/** A floor identifier, "F1" … "F13". */
export type FloorId = typeof FLOOR_IDS[number];

/** Human-readable floor names, as reported in results and the audit view. */
export const FLOOR_NAMES: Readonly<Record<FloorId, string>> = Object.freeze({
  F1: "Amanah (reversibility)",
  F2: "Truth (evidence)",
  F3: "Tri-Witness",
  F4: "Clarity (ΔS)",
  F5: "Peace² (stability)",
  F6: "Empathy (κr)",
  F7: "Humility (Ω0)",
  F8: "Genius (G)",
  F9: "Anti-Hantu",
  F10: "Ontology",
  F11: "Command authority",
  F12: "Injection defense",
  F13: "Sovereign",
});

/**
 * What a failed floor means for the verdict: `void` refuses, `hold` waits
 * for an operator, `sabar` asks the caller to fix and retry, `partial`
 * proceeds with a warning.
 */
export type FailureAction = "void" | "hold" | "sabar" | "partial";

/** The outcome of one floor for one call. */
export interface FloorResult {
  id: FloorId;
  /** e.g. "Amanah (reversibility)". */
  name: string;
  /** In [0, 1], rounded to 3 decimals. */
  score: number;
  pass: boolean;
  /**
   * False when the floor had nothing it could check (this feeds F7) or is
   * off by policy.
   */
  evaluated: boolean;
  /** False when the floor does not apply to this call, or is off by policy. */
  applicable: boolean;
  /** Deterministic, human-readable; never contains a detected secret. */
  reason: string;
  /** Only when `pass` is false; already adjusted for the floor's mode. */
  action?: FailureAction;
  /**
   * Evidence for the decision: schema issues, PII kinds and counts (never
   * the matched text), `retry_after_s`, `quarantine: true`, `fixes`.
   */
  details?: Record<string, unknown>;
}

/** MCP tool annotations as far as governance reads them. */
export interface ToolHints {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

/** What the registry knows about the tool being called. */
export interface ToolFacts {
  name: string;
  registered: boolean;
  annotations?: ToolHints;
  /** Hash of the tool's current definition (F10). */
  definitionHash?: string;
  /** Hash an operator pinned; a difference means the definition changed (F10). */
  pinnedHash?: string;
  hasOutputSchema: boolean;
  /** Upstream server name for gateway tools. */
  upstream?: string;
  /** The version the upstream reported (sealed with each call). */
  upstreamVersion?: string;
  /** How Warden authenticated to the upstream: a kind such as "bearer", never a value. */
  upstreamCredential?: string;
  /** Scanned for injection patterns by F12. */
  description?: string;
  /**
   * Why this call can never run as given under the current policy and host
   * (e.g. a shell command while the shell is disabled): F11 refuses it (VOID),
   * before any floor could hold it.
   */
  refusal?: string;
}

/** One claim a judgement rests on, with the evidence ids it cites (F2). */
export interface Claim {
  text: string;
  evidence: string[];
  /** The tool argument that holds `evidence`, named in F2's fix (e.g. "grounding"). */
  argument?: string;
}

/** A released hold for exactly this call. */
export interface ApprovalFacts {
  valid: boolean;
  signers: number;
}

/** The call being governed. */
export interface CallFacts {
  tool: string;
  arguments: unknown;
  principal: string;
  roles: string[];
  sessionId?: string;
  actor?: "human" | "ai" | "unknown";
  /** Size of the arguments as received, in bytes. */
  argumentBytes: number;
  /** Messages from validating the arguments against the input schema. */
  schemaIssues: string[];
  /** F2 inputs (reason_mind grounding etc.). */
  claims?: Claim[];
  /** Whether an evidence id exists (vault index, content hash). */
  knownEvidence?: (id: string) => boolean;
  /** What a known evidence id says, when the index knows (F2 checks it is about the claim). */
  evidenceText?: (id: string) => string | undefined;
  approval?: ApprovalFacts;
}

/** Counters the rate limiter keeps; counts exclude the call being judged. */
export interface RateFacts {
  principalCallsLastMinute: number;
  toolCallsLastMinute: number;
  principalInFlight: number;
  circuitOpen?: boolean;
  /** Seconds until the limiting window frees; 60 when not given. */
  retryAfterS?: number;
  /**
   * Every limit that applies to this call, as counted by the shared limiter;
   * when present F5 judges these instead of the three counters above.
   */
  checks?: RateCheck[];
}

/** One limit as F5 sees it: `count` (excluding this call) against `limit`. */
export interface RateCheck {
  count: number;
  limit: number;
  /** e.g. "principal alice made 5 calls in the last minute". */
  what: string;
}

/** The executed call's result, for the post-floors. */
export interface ResultFacts {
  isError: boolean;
  text: string;
  data?: unknown;
  /** Issues from validating against the output schema; undefined = no schema to check. */
  outputSchemaIssues?: string[];
  wellFormed: boolean;
}
