/**
 * The shape of a Warden tool, independent of any transport. MCP (`src/mcp/`) and
 * REST (`src/http/`) both reach tools only through the registry, which runs every
 * call through one code path.
 */
import type { z } from "zod";

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
}

/**
 * A failure the tool reports to its caller (bad input it could not reject by
 * schema, a domain error such as division by zero). It becomes a result with
 * `isError: true` and this message; any other exception is contained the same
 * way but logged as a fault.
 */
export class ToolError extends Error {
  override name = "ToolError";
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
