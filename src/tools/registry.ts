/**
 * The one code path every tool call takes, whether it arrives as MCP
 * `tools/call`, REST `POST /invoke` or stdio: look up, validate arguments,
 * run with a deadline and fault containment, validate the output.
 */
import { z } from "zod";
import type { DeadlineScheduler } from "../deadline.ts";
import type { Logger } from "../log.ts";
import { digestJson, sha256, toHex } from "../vault/mod.ts";
import { type ClientBridge, type ToolDefinition, ToolError } from "./tool.ts";

/** A tool as listed to clients: JSON Schemas instead of zod objects. */
export interface ToolDescriptor {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: Record<string, unknown>;
  readonly outputSchema?: Record<string, unknown>;
  readonly annotations: Record<string, unknown>;
}

/** Why a call did not produce a normal result. */
export type CallErrorKind =
  | "unknown_tool"
  | "invalid_arguments"
  | "tool_error"
  | "fault"
  | "timeout"
  | "invalid_output";

/** The transport-neutral result of one call. */
export interface CallOutcome {
  readonly tool: string;
  readonly isError: boolean;
  readonly errorKind?: CallErrorKind;
  /** One-line human summary (or the error message). */
  readonly text: string;
  /** Structured result (absent on error). */
  readonly data?: Record<string, unknown>;
  /** Raw content blocks the tool chose to send (absent on error). */
  readonly content?: readonly Record<string, unknown>[];
  readonly latencyMs: number;
  /** Where the call was sealed in the vault (absent when sealing is off). */
  readonly vault?: { readonly index: number; readonly leafHash: string };
}

/** What the vault records about one call: digests, never the arguments or results themselves. */
export interface CallRecord {
  readonly type: "tool_call";
  readonly session: string | null;
  readonly principal: string;
  readonly transport: string;
  readonly tool: string;
  readonly args_sha256: string;
  readonly result_sha256: string;
  readonly outcome: "ok" | CallErrorKind;
  readonly latency_us: number;
}

/** Seals one record and returns its place in the log; resolves only once committed. */
export type Sealer = (record: CallRecord) => Promise<{ index: number; leafHash: string }>;

/** Who is calling and over what. */
export interface CallContext {
  readonly sessionId?: string;
  readonly principal: string;
  /** "mcp", "rest", "stdio" — recorded in the vault. */
  readonly transport?: string;
  readonly signal?: AbortSignal;
  readonly client?: ClientBridge;
}

/** The set of tools one server exposes. */
export interface ToolRegistry {
  list(): readonly ToolDescriptor[];
  get(name: string): ToolDefinition | undefined;
  call(name: string, args: unknown, ctx: CallContext): Promise<CallOutcome>;
}

function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

/**
 * RFC 8785 digest of a value; JSON that canonical form refuses (a lone
 * surrogate escape in a string) falls back to the digest of its JSON text, so
 * a hostile argument can never stop a call from being sealed.
 */
function safeDigest(value: unknown): string {
  try {
    return digestJson(value);
  } catch {
    return toHex(sha256(new TextEncoder().encode(JSON.stringify(value) ?? "null")));
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}

/**
 * Builds a registry over a fixed list of tools. Names must be unique and match
 * MCP's tool-name rules; JSON Schemas are computed once here, not per request.
 *
 * @example
 * ```ts
 * const registry = createToolRegistry([], {
 *   logger: silentLogger,
 *   timeoutMs: 1000,
 *   deadlines: createDeadlineScheduler(),
 * });
 * console.log(registry.list().length); // 0
 * ```
 */
export function createToolRegistry(
  tools: readonly ToolDefinition[],
  options: { logger: Logger; timeoutMs: number; deadlines: DeadlineScheduler; seal?: Sealer },
): ToolRegistry {
  const byName = new Map<string, ToolDefinition>();
  for (const tool of tools) {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(tool.name)) {
      throw new TypeError(`Cannot register tool "${tool.name}": invalid tool name`);
    }
    if (byName.has(tool.name)) {
      throw new TypeError(`Cannot register tool "${tool.name}": name already registered`);
    }
    byName.set(tool.name, tool as ToolDefinition);
  }
  const descriptors: ToolDescriptor[] = [...byName.values()].map((t) => ({
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: jsonSchemaOf(t.inputSchema, "input"),
    ...(t.outputSchema ? { outputSchema: jsonSchemaOf(t.outputSchema, "output") } : {}),
    annotations: { title: t.title, ...t.annotations },
  }));
  const log = options.logger;

  async function run(
    tool: ToolDefinition,
    args: unknown,
    ctx: CallContext,
  ): Promise<Omit<CallOutcome, "tool" | "latencyMs">> {
    const parsed = tool.inputSchema.safeParse(args ?? {});
    if (!parsed.success) {
      return {
        isError: true,
        errorKind: "invalid_arguments",
        text: `Invalid arguments for tool ${tool.name}: ${describeIssues(parsed.error)}`,
      };
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort(ctx.signal?.reason);
    ctx.signal?.addEventListener("abort", onAbort, { once: true });
    let cancelDeadline = () => {};
    const deadline = new Promise<"timeout">((resolve) => {
      cancelDeadline = options.deadlines.after(options.timeoutMs, () => resolve("timeout"));
    });
    try {
      const pending = Promise.resolve().then(() =>
        tool.handler(parsed.data, {
          sessionId: ctx.sessionId,
          principal: ctx.principal,
          signal: controller.signal,
          client: ctx.client,
        })
      );
      // A handler that loses the race keeps running; its eventual rejection must not go unhandled.
      pending.catch(() => {});
      const result = await Promise.race([pending, deadline]);
      if (result === "timeout") {
        controller.abort(new DOMException("tool call timed out", "TimeoutError"));
        log.warn("tool timed out", { tool: tool.name, timeout_ms: options.timeoutMs });
        return {
          isError: true,
          errorKind: "timeout",
          text: `Tool ${tool.name} timed out after ${options.timeoutMs} ms`,
        };
      }
      if (tool.outputSchema) {
        const checked = tool.outputSchema.safeParse(result.data);
        if (!checked.success) {
          log.error("tool returned output that does not match its schema", {
            tool: tool.name,
            issues: describeIssues(checked.error),
          });
          return {
            isError: true,
            errorKind: "invalid_output",
            text: `Tool ${tool.name} produced output that does not match its output schema`,
          };
        }
      }
      return {
        isError: false,
        text: result.text,
        data: result.data as Record<string, unknown>,
        ...(result.content ? { content: result.content } : {}),
      };
    } catch (e) {
      if (e instanceof ToolError) {
        return { isError: true, errorKind: "tool_error", text: e.message };
      }
      // Fault containment: any other exception stays inside this call.
      log.error("tool fault contained", { tool: tool.name, error: e });
      return {
        isError: true,
        errorKind: "fault",
        text: `Tool ${tool.name} failed with an internal error; other tools are unaffected`,
      };
    } finally {
      cancelDeadline();
      ctx.signal?.removeEventListener("abort", onAbort);
    }
  }

  return {
    list: () => descriptors,
    get: (name) => byName.get(name),
    async call(name, args, ctx) {
      const started = performance.now();
      const tool = byName.get(name);
      const outcome: Omit<CallOutcome, "tool" | "latencyMs"> = tool ? await run(tool, args, ctx) : {
        isError: true,
        errorKind: "unknown_tool",
        text: `Unknown tool: ${name}`,
      };
      const latencyMs = performance.now() - started;
      if (!options.seal) return { tool: name, ...outcome, latencyMs };
      const vault = await options.seal({
        type: "tool_call",
        session: ctx.sessionId ?? null,
        principal: ctx.principal,
        transport: ctx.transport ?? "unknown",
        tool: name,
        args_sha256: safeDigest(args ?? {}),
        result_sha256: safeDigest({
          is_error: outcome.isError,
          text: outcome.text,
          data: outcome.data ?? null,
        }),
        outcome: outcome.errorKind ?? "ok",
        latency_us: Math.round(latencyMs * 1000),
      });
      return { tool: name, ...outcome, latencyMs, vault };
    },
  };
}
