/**
 * The one code path every tool call takes, whether it arrives as MCP
 * `tools/call`, REST `POST /invoke`, stdio, a nested call or the gateway:
 * look the tool up in the catalogue (own or upstream), build the facts
 * governance judges, hand the call to the pipeline (which decides whether it
 * runs), record the metabolic step, and wrap the result in the envelope.
 *
 * @module
 */
import type { DeadlineScheduler, Logger } from "../lib/mod.ts";
import { CHAIN } from "../chain/mod.ts";
import { type Governance, type GovernedResult, shownName } from "../governance/mod.ts";
import type { GovSessionStore } from "../store/mod.ts";
import type { UpstreamToolEntry } from "../gateway/mod.ts";
import { createCatalogue, type UpstreamCatalogue } from "./catalogue.ts";
import { buildEnvelope } from "./envelope.ts";
import { executeOwn, executeUpstream, type HandlerExtra } from "./execute.ts";
import { ownFacts, upstreamFacts } from "./facts.ts";
import { elicitHold } from "./hold_prompt.ts";
import { recordStep } from "./steps.ts";
import type { NestedCalls, NestedOutcome, ToolDefinition } from "./tool.ts";
import type { CallContext, CallErrorKind, CallOutcome, ToolRegistry } from "./types.ts";

/**
 * What the call path itself uses (no tool sees these through it): governance, which judges,
 * runs and seals every call, and the governed sessions a metabolic step is recorded in.
 */
export interface RegistryServices {
  readonly governance: Governance;
  readonly sessions: GovSessionStore;
}

/** Chain steps a session may skip (apex_judge does not require them). */
const OPTIONAL_STEPS: ReadonlySet<string> = new Set(["recall_memory", "eureka_forge"]);

/** Why a governed call did not produce a normal result, from its envelope status and execution. */
function errorKindOf(
  status: string,
  governed: GovernedResult,
  schemaIssues: readonly string[],
): CallErrorKind | undefined {
  return status === "PENDING"
    ? "held"
    : status === "BLOCKED"
    ? (schemaIssues.length > 0 ? "invalid_arguments" : "blocked")
    : governed.execution?.isError
    ? (governed.execution.errorKind as CallErrorKind | undefined) ?? "tool_error"
    : undefined;
}

/**
 * Builds a registry over a fixed list of tools. Names must be unique and match
 * MCP's tool-name rules; JSON Schemas and definition hashes (for F10) are
 * computed once here, not per request.
 *
 * @example
 * ```ts ignore
 * const registry = createToolRegistry(utilityTools, { logger, timeoutMs: 25_000, deadlines, services });
 * const outcome = await registry.call("calculate", { expression: "1+1" }, { principal: "anonymous" });
 * ```
 */
// Kept whole for now: the registry's closures share the catalogue and the deadlines; its remaining
// split (issue 8) is open.
export function createToolRegistry(
  /**
   * The own tools, or what makes them given the registry's nested calls (eureka_forge's
   * action, apex_judge's dry run run on this registry).
   */
  tools: readonly ToolDefinition[] | ((nested: NestedCalls) => readonly ToolDefinition[]),
  options: {
    logger: Logger;
    timeoutMs: number;
    deadlines: DeadlineScheduler;
    services: RegistryServices;
    /** Upstream tools (the gateway); own tools take precedence and names never collide. */
    upstreams?: UpstreamCatalogue;
  },
): ToolRegistry {
  const nested: NestedCalls = {
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
      const { request } = ownFacts(catalogue.own(name), {
        name,
        args,
        ctx: { principal: ctx.principal, sessionId: ctx.sessionId, transport: "dry-run" },
        definitionHash: catalogue.hashOf(name),
      });
      const j = await options.services.governance.judge(request);
      return { verdict: j.verdict.verdict, reasons: j.verdict.reasons };
    },
  };
  const catalogue = createCatalogue(
    typeof tools === "function" ? tools(nested) : tools,
    options.upstreams,
  );
  const deps = {
    logger: options.logger,
    timeoutMs: options.timeoutMs,
    deadlines: options.deadlines,
  };

  /**
   * The suggested next tool, unless this caller would be refused it (not served, denied by
   * policy or role, kill-switched); then the next step of the chain that it may call, skipping
   * only optional steps (recall_memory, eureka_forge), else none.
   */
  function nextFor(next: string | null, principal: string): string | null {
    if (next === null) return null;
    const callable = (tool: string) =>
      (catalogue.own(tool) !== undefined || catalogue.upstream(tool) !== undefined) &&
      options.services.governance.refusal(principal, tool) === undefined;
    if (callable(next)) return next;
    const at = (CHAIN as readonly string[]).indexOf(next);
    if (at < 0 || !OPTIONAL_STEPS.has(next)) return null;
    for (const tool of CHAIN.slice(at + 1)) {
      if (callable(tool)) return tool;
      if (!OPTIONAL_STEPS.has(tool)) return null;
    }
    return null;
  }

  async function call(name: string, args: unknown, ctx: CallContext): Promise<CallOutcome> {
    const def = catalogue.own(name);
    if (!def) {
      const upstream = catalogue.upstream(name);
      if (upstream) return await callUpstream(upstream, args, ctx);
    }
    let reviewed: Record<string, unknown> | undefined;
    if (def?.review) {
      const pre = def.inputSchema.safeParse(args ?? {});
      if (pre.success) {
        reviewed = await def.review(pre.data, { principal: ctx.principal });
      }
    }
    const { parsed, request } = ownFacts(def, {
      name,
      args,
      ctx,
      definitionHash: catalogue.hashOf(name),
      reviewed,
    });
    const extra: HandlerExtra = {};
    const governed: GovernedResult = await options.services.governance.run(
      request,
      () =>
        def && parsed !== undefined ? executeOwn(deps, def, parsed, ctx, extra) : Promise.resolve({
          isError: true,
          errorKind: "invalid_arguments",
          text: "not executable",
        }),
      { onHold: elicitHold(ctx.client) },
    );
    const govSession =
      typeof (parsed as { session_id?: unknown } | undefined)?.session_id === "string"
        ? (parsed as { session_id: string }).session_id
        : typeof governed.execution?.data?.session_id === "string"
        ? governed.execution.data.session_id as string
        : undefined;
    if (def?.stage && govSession) {
      await recordStep(options.services.sessions, def, govSession, ctx.principal, governed);
    }
    const sessionId = govSession ?? ctx.sessionId ?? "";
    const envelope = def
      ? buildEnvelope({
        tool: name,
        stage: def.stage ?? "222",
        nextTool: nextFor(
          extra.nextTool !== undefined ? extra.nextTool : def.nextTool ?? null,
          ctx.principal,
        ),
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
      : errorKindOf(status!, governed, request.call.schemaIssues);
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
    const { request } = upstreamFacts(entry, args, ctx);
    let raw: Record<string, unknown> | undefined;
    const governed = await options.services.governance.run(
      request,
      () => executeUpstream(entry, args, ctx, (result) => raw = result),
      { onHold: elicitHold(ctx.client) },
    );
    const envelope = buildEnvelope({
      tool: entry.descriptor.name,
      stage: "222",
      nextTool: null,
      sessionId: ctx.sessionId ?? "",
      result: governed,
      policyHash: options.services.governance.policyHash,
      debug: ctx.debug,
    });
    const passed = governed.verdict.verdict === "SEAL" || governed.verdict.verdict === "PARTIAL";
    const errorKind = errorKindOf(envelope.status, governed, request.call.schemaIssues);
    return {
      tool: entry.descriptor.name,
      isError: errorKind !== undefined,
      ...(errorKind ? { errorKind } : {}),
      text: `${envelope.policy_verdict} · ${envelope.message}`,
      envelope,
      ...(passed && raw ? { upstreamResult: raw } : {}),
      ...(entry.descriptor.outputSchema ? { governanceInMeta: true as const } : {}),
      latencyMs: governed.latencyMs,
      ...(governed.vault ? { vault: governed.vault } : {}),
      verdict: governed.verdict.verdict,
    };
  }

  return {
    list: (principal) => {
      const all = catalogue.list();
      if (principal === undefined) return all;
      const { governance } = options.services;
      return all.filter((t) => governance.permits(principal, t.name));
    },
    get: (name) => catalogue.own(name),
    has: (name) => catalogue.own(name) !== undefined || catalogue.upstream(name) !== undefined,
    call,
    facts: (name, args, ctx) => {
      const upstream = catalogue.upstream(name);
      if (upstream) return upstreamFacts(upstream, args, ctx);
      return ownFacts(catalogue.own(name), {
        name,
        args,
        ctx,
        definitionHash: catalogue.hashOf(name),
      });
    },
  };
}
