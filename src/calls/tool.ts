/**
 * The shape of a Warden tool, independent of any transport. MCP (`src/mcp/`) and
 * REST (`src/http/`) both reach tools only through the registry, which runs every
 * call through one code path.
 */
import type { z } from "zod";
import type { Claim } from "../governance/mod.ts";

/** MCP tool annotations (hints to clients; governance reads them too). */
export interface ToolAnnotations {
  readonly title?: string;
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

/** MCP logging levels (RFC 5424 names). */
export type LogLevelName =
  | "debug"
  | "info"
  | "notice"
  | "warning"
  | "error"
  | "critical"
  | "alert"
  | "emergency";

/**
 * What a tool may ask of the MCP client behind the call, when there is one
 * (absent for REST). Kept free of SDK types so tools stay transport-neutral.
 */
export interface ClientBridge {
  /** Capabilities the client declared at initialize. */
  readonly capabilities: Readonly<Record<string, unknown>>;
  /** Sends a `notifications/message` log entry to the client. */
  log(level: LogLevelName, data: unknown): Promise<void>;
  /** Sends `notifications/progress` when the caller supplied a progress token. */
  progress(progress: number, options?: { total?: number; message?: string }): Promise<void>;
  /** Sends a server→client request (sampling, elicitation, roots) and returns its result. */
  request(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** What a handler may learn about, and do with, the call it serves. */
export interface ToolContext {
  /** MCP session id, or undefined for REST and stdio-less calls. */
  readonly sessionId?: string;
  /** Who is calling: a token's principal, or "anonymous". */
  readonly principal: string;
  /** Aborted when the request is cancelled or times out. */
  readonly signal: AbortSignal;
  /** The MCP client behind this call, if any. */
  readonly client?: ClientBridge;
  /** Ask for the `_debug` block in the envelope. */
  readonly debug?: boolean;
  /**
   * The hold id this call was released with. The pipeline runs a call that
   * presents a hold only when an operator approved that hold for exactly this
   * call, so its presence means "approved".
   */
  readonly approvedHold?: string;
}

/** What a nested governed call returns (eureka_forge runs other tools through the gates). */
export interface NestedOutcome {
  readonly tool: string;
  readonly isError: boolean;
  readonly text: string;
  readonly envelope?: Record<string, unknown>;
}

/**
 * The calls a tool may make on the registry that serves it (eureka_forge runs an action,
 * apex_judge dry-runs one): the registry hands them to the tool factories it is given.
 */
export interface NestedCalls {
  /** Runs another tool through the full pipeline, as the same caller. */
  callTool(name: string, args: unknown, ctx: ToolContext): Promise<NestedOutcome>;
  /** The pre-floor verdict for a proposed call, without running it (apex_judge's dry run). */
  judgeTool(
    name: string,
    args: unknown,
    ctx: ToolContext,
  ): Promise<{ verdict: string; reasons: string[] }>;
}

/** What a handler returns: structured data plus a one-line text summary. */
export interface ToolOutput<T = Record<string, unknown>> {
  readonly data: T;
  readonly text: string;
  /**
   * Raw MCP content blocks (images, audio, embedded resources) to send instead
   * of the default text blocks; `data` still becomes `structuredContent`.
   */
  readonly content?: readonly Record<string, unknown>[];
  /**
   * The real outcome when it is not the call's governance verdict (apex_judge's
   * session verdict): the first word of the text summary.
   */
  readonly outcome?: string;
  /** The tool to call next when it depends on the result (overrides `nextTool`). */
  readonly nextTool?: string | null;
}

/**
 * A failure the tool reports to its caller (bad input it could not reject by
 * schema, a domain error such as division by zero). It becomes a result with
 * `isError: true` and this message; any other exception is contained the same
 * way but logged as a fault.
 */
/**
 * Thrown by a `ClientBridge` on a 2026-07-28 request when a tool asks the
 * client something (sampling) that protocol answers only by a retried request
 * (`input_required`). Tools that catch errors from `ctx.client.request` must
 * rethrow it; the call then ends with `errorKind: "input_required"` (sealed as
 * such) and the adapter answers `input_required`; the retry runs the tool again
 * with the answer.
 */
export class InputRequiredError extends Error {
  override name = "InputRequiredError";
}

export class ToolError extends Error {
  override name = "ToolError";
}

/** A class of error a handler may throw (any Error subclass, abstract ones included). */
// deno-lint-ignore no-explicit-any -- constructor parameters differ per error class
export type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * A domain error a tool reports to its caller as a tool error (its message,
 * after `prefix` when given) instead of a fault: `BusError` for the bus
 * tools, `{ error: ChatEndpointError, prefix: "Cannot complete the prompt: " }`.
 */
export type ExpectedError = ErrorClass | { readonly error: ErrorClass; readonly prefix: string };

/**
 * The caller-facing text for `error` when `expected` lists its class, else
 * undefined (the first match wins).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedErrorText } from "./tool.ts";
 * class QuotaError extends Error {}
 * const expected = [{ error: QuotaError, prefix: "Cannot store: " }, RangeError];
 * assert.equal(expectedErrorText(expected, new QuotaError("quota full")), "Cannot store: quota full");
 * assert.equal(expectedErrorText(expected, new RangeError("too big")), "too big");
 * assert.equal(expectedErrorText(expected, new TypeError("x is null")), undefined); // a fault
 * ```
 */
export function expectedErrorText(
  expected: readonly ExpectedError[] | undefined,
  error: unknown,
): string | undefined {
  for (const entry of expected ?? []) {
    const [type, prefix] = typeof entry === "function" ? [entry, ""] : [entry.error, entry.prefix];
    if (error instanceof type) return prefix + error.message;
  }
  return undefined;
}

/** One tool: schema, annotations and a thin handler over domain code. */
export interface ToolDefinition<
  I extends z.ZodObject = z.ZodObject,
  O extends z.ZodObject = z.ZodObject,
> {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: I;
  readonly outputSchema?: O;
  readonly annotations: ToolAnnotations;
  /** Stage reported in the envelope: "000"…"999" for the metabolic chain. */
  readonly stage?: string;
  /** The tool a client should call next (metabolic chain), or null. */
  readonly nextTool?: string | null;
  /** Claims the call rests on, judged by F2 (e.g. reason_mind's grounding). */
  claims?(args: z.infer<I>): Claim[];
  /** Per-call facts that change the governance of this call (e.g. a prompt leaving for an endpoint). */
  assess?(args: z.infer<I>): Partial<ToolAnnotations>;
  /**
   * Why this call can never run as given here (e.g. a shell command while
   * the shell is unavailable); F11 refuses it (VOID) before anything could
   * hold it. Undefined when the call may run.
   */
  refusal?(
    args: z.infer<I>,
    /** The MCP client behind the call, when there is one (what it offers can matter). */
    client?: Pick<ClientBridge, "capabilities">,
  ): string | undefined;
  /**
   * Like `assess`, for facts that need stored state (apex_judge holds a
   * session whose impact needs an operator). Runs before the call is governed.
   */
  review?(
    args: z.infer<I>,
    ctx: { readonly principal: string },
  ): Promise<Partial<ToolAnnotations>>;
  /**
   * What the vault records of these arguments instead of the arguments
   * themselves: a stored value's digest and size, not the value. The floors
   * still judge the real arguments.
   */
  recordArguments?(args: z.infer<I>): Record<string, unknown>;
  /**
   * What the vault records of the result's data instead of it (a read's
   * digest, not its content); the summary text is then recorded as its digest.
   */
  recordResult?(data: z.infer<O>): Record<string, unknown>;
  /**
   * The domain errors the handler lets through as the caller's answer: each
   * becomes a tool error (`errorKind: "tool_error"`) with its message, applied
   * once by the call path. Anything else the handler throws (a TypeError from
   * a bug) is a fault: contained, logged, and answered without its message.
   * `ToolError` and `InputRequiredError` need not be listed.
   */
  readonly expectedErrors?: readonly ExpectedError[];
  handler(args: z.infer<I>, ctx: ToolContext):
    | Promise<ToolOutput<z.infer<O>>>
    | ToolOutput<
      z.infer<O>
    >;
}

/** Helper that keeps the handler's argument type tied to its schema. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(
  def: ToolDefinition<I, O>,
): ToolDefinition<I, O> {
  return def;
}

/** What a client reported about a sampling answer: the model, and tokens when it counted them. */
export interface SampledUsage {
  readonly model: string;
  readonly input_tokens: number;
  readonly output_tokens: number;
  /** False when the client reported no token counts (both are then 0). */
  readonly reported: boolean;
}

/** Token counts above this are not believed (a client's report is input like any other). */
const MAX_REPORTED_TOKENS = 100_000_000;

/**
 * The model and token counts a client's `sampling/createMessage` result
 * reports. MCP's result names the model but has no token field, so Warden
 * reads `usage` on the result or in its `_meta` — `inputTokens`/`outputTokens`
 * or `input_tokens`/`output_tokens` — taking only whole numbers in range.
 *
 * @example
 * ```ts
 * sampledUsage({ model: "m", usage: { inputTokens: 12, outputTokens: 30 } });
 * // { model: "m", input_tokens: 12, output_tokens: 30, reported: true }
 * ```
 */
export function sampledUsage(reply: Record<string, unknown>): SampledUsage {
  const model = typeof reply.model === "string" && reply.model !== ""
    ? reply.model.slice(0, 200)
    : "unknown";
  const meta = reply._meta as Record<string, unknown> | undefined;
  const usage = [reply.usage, meta?.usage].find((u) => typeof u === "object" && u !== null) as
    | Record<string, unknown>
    | undefined;
  const count = (...values: unknown[]) => {
    const v = values.find((x) => x !== undefined);
    return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_REPORTED_TOKENS
      ? v
      : undefined;
  };
  const input = count(usage?.inputTokens, usage?.input_tokens);
  const output = count(usage?.outputTokens, usage?.output_tokens);
  const reported = input !== undefined || output !== undefined;
  return { model, input_tokens: input ?? 0, output_tokens: output ?? 0, reported };
}
