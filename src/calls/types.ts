/**
 * The call path's own types: who is calling, what a call yields, the facts
 * governance judges, and the registry every adapter calls through.
 *
 * @module
 */
import type { UpstreamToolDescriptor } from "../gateway/mod.ts";
import type { GovernedRequest } from "../governance/mod.ts";
import type { TraceCarrier } from "../usage/mod.ts";
import type { Envelope } from "./envelope.ts";
import type { ClientBridge, ToolDefinition } from "./tool.ts";

/**
 * A tool as listed to clients: JSON Schemas instead of zod objects. Own tools and upstream tools
 * are listed alike, so this is the gateway's descriptor (an own tool always sets `title`; an
 * upstream tool keeps its own, possibly absent, title).
 */
export type ToolDescriptor = UpstreamToolDescriptor;

/** Why a call did not produce a normal result. */
export type CallErrorKind =
  | "unknown_tool"
  | "invalid_arguments"
  | "tool_error"
  | "fault"
  | "timeout"
  | "invalid_output"
  | "blocked"
  | "held"
  | "input_required";

/** The transport-neutral result of one call. */
export interface CallOutcome {
  readonly tool: string;
  readonly isError: boolean;
  readonly errorKind?: CallErrorKind;
  /** One-line human summary. */
  readonly text: string;
  /** The UnifiedResponse (absent only for an unknown tool). */
  readonly envelope?: Envelope;
  /** Raw content blocks the tool chose to send (only when it ran and succeeded). */
  readonly content?: readonly Record<string, unknown>[];
  readonly latencyMs: number;
  /**
   * An upstream tool's own result, untouched (only when it ran and the verdict let it through);
   * adapters return it with the envelope minus `data` in `_meta["warden/governance"]`.
   */
  readonly upstreamResult?: Record<string, unknown>;
  /**
   * The tool declares an outputSchema of its own (an upstream tool's), which Warden's envelope
   * does not conform to: when Warden answers for it (no upstreamResult), adapters put the
   * envelope minus `data` in `_meta["warden/governance"]`, never in structuredContent (the v1
   * SDK client checks structuredContent against the tool's schema even on an error).
   */
  readonly governanceInMeta?: true;
  /** Where the decision was sealed in the vault (absent when sealing is off). */
  readonly vault?: { readonly index: number; readonly leafHash: string };
  readonly verdict: string;
}

/** Who is calling and over what. */
export interface CallContext {
  readonly sessionId?: string;
  readonly principal: string;
  /** "mcp", "rest", "stdio" — recorded in the vault. */
  readonly transport?: string;
  readonly signal?: AbortSignal;
  readonly client?: ClientBridge;
  /** A hold id presented to release an approved call. */
  readonly holdId?: string;
  readonly debug?: boolean;
  readonly actor?: "human" | "ai" | "unknown";
  /** The client's address; the HTTP request being served when absent. */
  readonly clientIp?: string;
  /** W3C trace context the client sent in the request's `_meta` (SEP-414). */
  readonly trace?: TraceCarrier;
}

/**
 * The governance view of one call, without running anything: the request the
 * pipeline judges, and the arguments as the tool's schema parsed them
 * (undefined for an unknown tool, arguments that do not parse, or an upstream
 * tool, whose own schema the upstream applies).
 */
export interface CallFacts {
  readonly parsed: unknown;
  readonly request: GovernedRequest;
}

/** The set of tools one server exposes. */
export interface ToolRegistry {
  /** Every tool, or with `principal` only those its roles let it call. */
  list(principal?: string): readonly ToolDescriptor[];
  get(name: string): ToolDefinition | undefined;
  /** Whether `name` is a tool this server serves: its own, or an upstream's `<server>__<tool>`. */
  has(name: string): boolean;
  call(name: string, args: unknown, ctx: CallContext): Promise<CallOutcome>;
  /** Governance facts for a call, without running anything (POST /judge, apex_judge). */
  facts(name: string, args: unknown, ctx: CallContext): CallFacts;
}
