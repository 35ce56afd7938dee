/**
 * The one code path every tool call takes, whether it arrives as MCP
 * `tools/call`, REST `POST /invoke` or stdio: look up, validate, and hand the
 * call to the governance pipeline, which decides whether the handler runs.
 * Execution itself is contained here: a deadline, and any exception becomes
 * an error result instead of reaching the server.
 */
import { z } from "zod";
import { type DeadlineScheduler, digestJson, type Logger, sha256HexOfText } from "../lib/mod.ts";
import {
  type Execution,
  type GovernedResult,
  type OnHold,
  shownName,
  type ToolFacts,
} from "../governance/mod.ts";
import type { UpstreamToolEntry } from "../gateway/mod.ts";
import { currentRequest } from "../identity/mod.ts";
import type { TraceCarrier } from "../usage/mod.ts";
import { buildEnvelope, type Envelope, envelopeSchema } from "./envelope.ts";
import {
  type ClientBridge,
  InputRequiredError,
  type NestedOutcome,
  type ToolContext,
  type ToolDefinition,
  ToolError,
  type ToolServices,
} from "./tool.ts";

/** A tool as listed to clients: JSON Schemas instead of zod objects. */
export interface ToolDescriptor {
  readonly name: string;
  /** Always set for own tools; an upstream tool keeps its own (possibly absent) title. */
  readonly title?: string;
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

/** The set of tools one server exposes. */
export interface ToolRegistry {
  /** Every tool, or with `principal` only those its roles let it call. */
  list(principal?: string): readonly ToolDescriptor[];
  get(name: string): ToolDefinition | undefined;
  /** Whether `name` is a tool this server serves: its own, or an upstream's `<server>__<tool>`. */
  has(name: string): boolean;
  call(name: string, args: unknown, ctx: CallContext): Promise<CallOutcome>;
  /** Governance facts for a call, without running anything (POST /judge, apex_judge). */
  facts(name: string, args: unknown, ctx: CallContext): ReturnType<typeof governedRequest>;
}

/**
 * The gateway's side of the catalogue: upstream tools re-exposed beside the
 * own tools and governed by the same call path.
 */
export interface UpstreamCatalogue {
  list(): readonly ToolDescriptor[];
  get(name: string): UpstreamToolEntry | undefined;
}

/** Services the registry is given; it adds callTool and toolNames itself. */
export type RegistryServices = Omit<ToolServices, "callTool" | "toolNames" | "judgeTool">;

function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`);
}

const encoder = new TextEncoder();

function clientIpOf(ctx: CallContext): { clientIp?: string } {
  const clientIp = ctx.clientIp ?? currentRequest()?.clientIp;
  return clientIp !== undefined ? { clientIp } : {};
}

/** Builds the governance view of a call (shared by call, judge and apex_judge). */
function governedRequest(
  def: ToolDefinition | undefined,
  input: {
    name: string;
    args: unknown;
    ctx: CallContext;
    definitionHash?: string;
    services: RegistryServices;
    /** Facts from the tool's async `review`. */
    reviewed?: Record<string, unknown>;
  },
) {
  const { name, args, ctx } = input;
  const parsed = def ? def.inputSchema.safeParse(args ?? {}) : undefined;
  const schemaIssues = parsed && !parsed.success ? describeIssues(parsed.error) : [];
  const data = parsed?.success ? parsed.data : undefined;
  const annotations = def
    ? {
      ...def.annotations,
      ...(data && def.assess ? def.assess(data, input.services.policy) : {}),
      ...input.reviewed,
    }
    : undefined;
  const refusal = data && def?.refusal ? def.refusal(data, input.services, ctx.client) : undefined;
  const tool: ToolFacts = {
    name,
    registered: def !== undefined,
    ...(annotations ? { annotations } : {}),
    ...(refusal !== undefined ? { refusal } : {}),
    ...(input.definitionHash
      ? { definitionHash: input.definitionHash, pinnedHash: input.definitionHash }
      : {}),
    hasOutputSchema: def?.outputSchema !== undefined,
    ...(def ? { description: def.description } : {}),
  };
  let argumentBytes = 0;
  try {
    argumentBytes = encoder.encode(JSON.stringify(args ?? {})).byteLength;
  } catch {
    argumentBytes = Number.MAX_SAFE_INTEGER; // unserialisable arguments: F4 refuses them
  }
  return {
    parsed: data,
    request: {
      tool,
      call: {
        tool: name,
        arguments: args ?? {},
        principal: ctx.principal,
        sessionId: ctx.sessionId,
        actor: ctx.actor,
        transport: ctx.transport ?? "unknown",
        argumentBytes,
        schemaIssues,
        ...(data && def?.claims ? { claims: def.claims(data) } : {}),
        ...(data && def?.recordArguments ? { recorded: def.recordArguments(data) } : {}),
        ...(ctx.holdId !== undefined ? { holdId: ctx.holdId } : {}),
        ...clientIpOf(ctx),
      },
    },
  };
}

/**
 * Builds a registry over a fixed list of tools. Names must be unique and match
 * MCP's tool-name rules; JSON Schemas and definition hashes (for F10) are
 * computed once here, not per request.
 *
 * @example
 * ```ts
 * const registry = createToolRegistry(utilityTools, { logger, timeoutMs: 25_000, deadlines, services });
 * const outcome = await registry.call("calculate", { expression: "1+1" }, { principal: "anonymous" });
 * ```
 */
export function createToolRegistry(
  tools: readonly ToolDefinition[],
  options: {
    logger: Logger;
    timeoutMs: number;
    deadlines: DeadlineScheduler;
    services: RegistryServices;
    /** Upstream tools (the gateway); own tools take precedence and names never collide. */
    upstreams?: UpstreamCatalogue;
  },
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
  const envelopes = new Map<string, z.ZodType>();
  const descriptors: ToolDescriptor[] = [];
  const hashes = new Map<string, string>();
  for (const t of byName.values()) {
    const envelope = envelopeSchema(t.outputSchema);
    envelopes.set(t.name, envelope);
    const descriptor: ToolDescriptor = {
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: jsonSchemaOf(t.inputSchema, "input"),
      outputSchema: jsonSchemaOf(envelope, "output"),
      annotations: { title: t.title, ...t.annotations },
    };
    descriptors.push(descriptor);
    hashes.set(t.name, digestJson(descriptor));
  }
  const log = options.logger;
  const names = [...byName.keys()];
  const services: ToolServices = {
    ...options.services,
    toolNames: () => names,
    callTool: async (name, args, ctx): Promise<NestedOutcome> => {
      const outcome = await call(name, args, {
        sessionId: ctx.sessionId,
        principal: ctx.principal,
        transport: "nested",
        signal: ctx.signal,
        client: ctx.client,
      });
      return {
        tool: name,
        isError: outcome.isError,
        text: outcome.text,
        envelope: outcome.envelope,
      };
    },
    judgeTool: async (name, args, ctx) => {
      const { request } = governedRequest(byName.get(name), {
        name,
        args,
        ctx: { principal: ctx.principal, sessionId: ctx.sessionId, transport: "dry-run" },
        definitionHash: hashes.get(name),
        services: options.services,
      });
      const j = await options.services.governance.judge(request);
      return { verdict: j.verdict.verdict, reasons: j.verdict.reasons };
    },
  };

  async function execute(
    tool: ToolDefinition,
    args: unknown,
    ctx: CallContext,
    extra: { outcome?: string; nextTool?: string | null } = {},
  ): Promise<Execution> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(ctx.signal?.reason);
    ctx.signal?.addEventListener("abort", onAbort, { once: true });
    let cancelDeadline = () => {};
    const deadline = new Promise<"timeout">((resolve) => {
      cancelDeadline = options.deadlines.after(options.timeoutMs, () => resolve("timeout"));
    });
    const toolCtx: ToolContext = {
      sessionId: ctx.sessionId,
      principal: ctx.principal,
      signal: controller.signal,
      client: ctx.client,
      services,
      debug: ctx.debug,
      ...(ctx.holdId !== undefined ? { approvedHold: ctx.holdId } : {}),
    };
    try {
      const pending = Promise.resolve().then(() => tool.handler(args as never, toolCtx));
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
          const issues = describeIssues(checked.error);
          log.error("tool returned output that does not match its schema", {
            tool: tool.name,
            issues,
          });
          return {
            isError: true,
            errorKind: "invalid_output",
            text: `Tool ${tool.name} produced output that does not match its output schema`,
            outputSchemaIssues: issues,
          };
        }
      }
      if (result.outcome !== undefined) extra.outcome = result.outcome;
      if (result.nextTool !== undefined) extra.nextTool = result.nextTool;
      return {
        isError: false,
        text: result.text,
        data: result.data as Record<string, unknown>,
        // The summary text may quote what was read: the vault gets its digest instead.
        ...(tool.recordResult
          ? {
            recorded: {
              data: tool.recordResult(result.data as never),
              text: `sha256:${sha256HexOfText(result.text)}`,
            },
          }
          : {}),
        ...(result.content ? { content: result.content } : {}),
        ...(tool.outputSchema ? { outputSchemaIssues: [] } : {}),
      };
    } catch (e) {
      if (e instanceof ToolError) {
        return { isError: true, errorKind: "tool_error", text: e.message };
      }
      if (e instanceof InputRequiredError) {
        return { isError: true, errorKind: "input_required", text: e.message };
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

  function onHoldFor(ctx: CallContext): OnHold | undefined {
    const client = ctx.client;
    if (!client || !("elicitation" in client.capabilities)) return undefined;
    // The human is asked where the client can ask; an operator's signature still releases the call.
    return async (hold) => {
      const answer = await client.request("elicitation/create", {
        message:
          `Warden is holding a call to "${hold.tool}" for operator approval (hold ${hold.id}). ` +
          `Reasons: ${
            hold.reasons.join("; ")
          }. Confirm that you want it to run; an operator must still ` +
          `sign the approval (warden approve ${hold.id}). Declining denies it.`,
        requestedSchema: {
          type: "object",
          properties: {
            confirm: { type: "boolean", title: "I want this call to run", default: false },
          },
          required: ["confirm"],
        },
      });
      const confirmed = (answer.content as { confirm?: boolean } | undefined)?.confirm === true;
      return answer.action === "accept" && confirmed
        ? "accept"
        : String(answer.action ?? "decline");
    };
  }

  /** Every governed step of the metabolic chain is remembered in its session, for apex_judge. */
  async function recordStep(
    def: ToolDefinition,
    sessionId: string,
    governed: GovernedResult,
    ctx: CallContext,
  ): Promise<void> {
    const floors: Record<string, number> = {};
    for (const f of governed.floors) floors[f.id] = Math.round(f.score * 1000);
    try {
      await options.services.sessions.update(sessionId, ctx.principal, (s) => ({
        ...s,
        steps: [...s.steps, {
          tool: def.name,
          stage: def.stage!,
          verdict: governed.verdict.verdict,
          floors,
          outcome: governed.execution
            ? (governed.execution.isError ? governed.execution.errorKind ?? "tool_error" : "ok")
            : "not_executed",
          at: new Date().toISOString(),
          ...(governed.vault ? { vaultIndex: governed.vault.index } : {}),
        }],
      }));
    } catch {
      // An unknown session id was already reported by the tool itself.
    }
  }

  async function call(name: string, args: unknown, ctx: CallContext): Promise<CallOutcome> {
    const def = byName.get(name);
    if (!def) {
      const upstream = options.upstreams?.get(name);
      if (upstream) return await callUpstream(upstream, args, ctx);
    }
    let reviewed: Record<string, unknown> | undefined;
    if (def?.review) {
      const pre = def.inputSchema.safeParse(args ?? {});
      if (pre.success) {
        reviewed = await def.review(pre.data, { principal: ctx.principal, services });
      }
    }
    const { parsed, request } = governedRequest(def, {
      name,
      args,
      ctx,
      definitionHash: hashes.get(name),
      services: options.services,
      reviewed,
    });
    const extra: { outcome?: string; nextTool?: string | null } = {};
    const governed: GovernedResult = await options.services.governance.run(
      request,
      () =>
        def && parsed !== undefined ? execute(def, parsed, ctx, extra) : Promise.resolve({
          isError: true,
          errorKind: "invalid_arguments",
          text: "not executable",
        }),
      { onHold: onHoldFor(ctx) },
    );
    const govSession =
      typeof (parsed as { session_id?: unknown } | undefined)?.session_id === "string"
        ? (parsed as { session_id: string }).session_id
        : typeof governed.execution?.data?.session_id === "string"
        ? governed.execution.data.session_id as string
        : undefined;
    if (def?.stage && govSession) await recordStep(def, govSession, governed, ctx);
    const sessionId = govSession ?? ctx.sessionId ?? "";
    const envelope = def
      ? buildEnvelope({
        tool: name,
        stage: def.stage ?? "222",
        nextTool: extra.nextTool !== undefined ? extra.nextTool : def.nextTool ?? null,
        sessionId,
        result: governed,
        policyHash: options.services.governance.policyHash,
        debug: ctx.debug || (parsed as { debug?: unknown } | undefined)?.debug === true,
      })
      : undefined;
    const status = envelope?.status;
    const execution = governed.execution;
    const errorKind: CallErrorKind | undefined = !def
      ? "unknown_tool"
      : status === "PENDING"
      ? "held"
      : status === "BLOCKED"
      ? (request.call.schemaIssues.length > 0 ? "invalid_arguments" : "blocked")
      : execution?.isError
      ? (execution.errorKind as CallErrorKind | undefined) ?? "tool_error"
      : undefined;
    return {
      tool: name,
      isError: errorKind !== undefined,
      ...(errorKind ? { errorKind } : {}),
      // The first word is the real outcome: a tool error is ERROR, a hold a human declined is
      // DENIED, a tool may name its own (apex_judge's session verdict); else the verdict.
      text: envelope
        ? `${
          status === "ERROR"
            ? "ERROR"
            : status === "PENDING" && governed.hold?.status === "denied"
            ? "DENIED"
            : status === "OK" && extra.outcome
            ? extra.outcome
            : envelope.policy_verdict
        } · ${envelope.message}`
        : `Unknown tool: ${shownName(name)}`,
      ...(envelope ? { envelope } : {}),
      ...(status === "OK" && execution?.content ? { content: execution.content } : {}),
      latencyMs: governed.latencyMs,
      ...(governed.vault ? { vault: governed.vault } : {}),
      verdict: governed.verdict.verdict,
    };
  }

  /** An upstream call, governed exactly like an own tool; its result is passed back untouched. */
  async function callUpstream(
    entry: UpstreamToolEntry,
    args: unknown,
    ctx: CallContext,
  ): Promise<CallOutcome> {
    const { request } = upstreamRequest(entry, args, ctx);
    let raw: Record<string, unknown> | undefined;
    const governed = await options.services.governance.run(request, async () => {
      const controller = new AbortController();
      const onAbort = () => controller.abort(ctx.signal?.reason);
      ctx.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const outcome = await entry.call(args as Record<string, unknown>, {
          signal: controller.signal,
        });
        if (!outcome.ok) {
          return {
            isError: true,
            errorKind: outcome.kind === "unavailable" ? "fault" : outcome.kind,
            text: outcome.message,
          };
        }
        raw = outcome.result as Record<string, unknown>;
        const blocks = Array.isArray(raw.content) ? raw.content as Record<string, unknown>[] : [];
        const text = blocks.filter((b) => b.type === "text").map((b) => String(b.text)).join("\n");
        const structured = raw.structuredContent;
        return {
          isError: raw.isError === true,
          ...(raw.isError === true ? { errorKind: "tool_error" } : {}),
          text,
          ...(structured && typeof structured === "object"
            ? { data: structured as Record<string, unknown> }
            : {}),
        };
      } finally {
        ctx.signal?.removeEventListener("abort", onAbort);
      }
    }, { onHold: onHoldFor(ctx) });
    const envelope = buildEnvelope({
      tool: entry.descriptor.name,
      stage: "222",
      nextTool: null,
      sessionId: ctx.sessionId ?? "",
      result: governed,
      policyHash: options.services.governance.policyHash,
      debug: ctx.debug,
    });
    const status = envelope.status;
    const passed = governed.verdict.verdict === "SEAL" || governed.verdict.verdict === "PARTIAL";
    const errorKind: CallErrorKind | undefined = status === "PENDING"
      ? "held"
      : status === "BLOCKED"
      ? (request.call.schemaIssues.length > 0 ? "invalid_arguments" : "blocked")
      : governed.execution?.isError
      ? (governed.execution.errorKind as CallErrorKind | undefined) ?? "tool_error"
      : undefined;
    return {
      tool: entry.descriptor.name,
      isError: errorKind !== undefined,
      ...(errorKind ? { errorKind } : {}),
      text: `${envelope.policy_verdict} · ${envelope.message}`,
      envelope,
      ...(passed && raw ? { upstreamResult: raw } : {}),
      latencyMs: governed.latencyMs,
      ...(governed.vault ? { vault: governed.vault } : {}),
      verdict: governed.verdict.verdict,
    };
  }

  function upstreamRequest(entry: UpstreamToolEntry, args: unknown, ctx: CallContext) {
    const isObject = args === undefined ||
      (typeof args === "object" && args !== null && !Array.isArray(args));
    const tool: ToolFacts = {
      name: entry.descriptor.name,
      registered: true,
      annotations: entry.descriptor.annotations,
      definitionHash: entry.definitionHash,
      pinnedHash: entry.pinnedHash,
      hasOutputSchema: entry.descriptor.outputSchema !== undefined,
      upstream: entry.upstream,
      ...(entry.upstreamVersion ? { upstreamVersion: entry.upstreamVersion } : {}),
      upstreamCredential: entry.credential(),
      description: entry.descriptor.description,
    };
    let argumentBytes = 0;
    try {
      argumentBytes = encoder.encode(JSON.stringify(args ?? {})).byteLength;
    } catch {
      argumentBytes = Number.MAX_SAFE_INTEGER;
    }
    return {
      request: {
        tool,
        circuit: entry.circuit(),
        call: {
          tool: entry.descriptor.name,
          arguments: args ?? {},
          principal: ctx.principal,
          sessionId: ctx.sessionId,
          actor: ctx.actor,
          transport: ctx.transport ?? "unknown",
          argumentBytes,
          // The upstream validates against its own schema; Warden checks the shape only.
          schemaIssues: isObject ? [] : ["(root): expected an object of arguments"],
          ...(ctx.holdId !== undefined ? { holdId: ctx.holdId } : {}),
        },
      },
    };
  }

  return {
    list: (principal) => {
      const up = options.upstreams?.list() ?? [];
      const all = up.length === 0 ? descriptors : [...descriptors, ...up];
      if (principal === undefined) return all;
      const { governance } = options.services;
      return all.filter((t) => governance.permits(principal, t.name));
    },
    get: (name) => byName.get(name),
    has: (name) => byName.has(name) || options.upstreams?.get(name) !== undefined,
    call,
    facts: (name, args, ctx) => {
      const upstream = byName.has(name) ? undefined : options.upstreams?.get(name);
      if (upstream) return { parsed: undefined, ...upstreamRequest(upstream, args, ctx) };
      return governedRequest(byName.get(name), {
        name,
        args,
        ctx,
        definitionHash: hashes.get(name),
        services: options.services,
      });
    },
  };
}
