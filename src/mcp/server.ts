/**
 * The per-session McpServer. Tools are not registered one by one with the SDK:
 * `tools/list` and `tools/call` are answered from the Warden registry, so MCP
 * and REST share a single call path (validation, containment, governance).
 */
import {
  type AuthInfo,
  type CacheHint,
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  type ServerContext,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/server";
import { MODERN_PROTOCOL_VERSIONS, principalFromAuth } from "./modern.ts";
import {
  askAboutHold,
  askForSampling,
  canElicit,
  createHoldPrompts,
  HOLD_INPUT_KEY,
  holdAnswerOf,
  holdConfirmRequest,
  type HoldPromptDeps,
  type HoldPrompts,
  readPromptState,
  recordHoldAnswer,
  samplingAnswer,
} from "./hold_prompt.ts";
import {
  createTaskResult,
  declaredCapabilities,
  declaresTasks,
  registerTaskHandlers,
  type TaskEngine,
  type TaskRun,
  TASKS_EXTENSION,
  type TaskStep,
} from "./tasks.ts";
import { z } from "zod";
import {
  type CallOutcome,
  type ClientBridge,
  InputRequiredError,
  type ToolRegistry,
} from "../calls/mod.ts";
import { traceCarrierOf } from "../usage/mod.ts";
import { installFastGuards } from "./sdk_guards.ts";

// Every message the SDK handles asks its guards; see sdk_guards.ts.
installFastGuards();

/** Server identity reported at initialize. */
export const SERVER_NAME = "warden";
/** Server title reported with the name. */
export const SERVER_TITLE = "Warden";

/**
 * The principal a request is served for: the one its authentication carries
 * (the stateless 2026-07-28 path), else the session's.
 */
export type CallerOf = (ctx: { http?: { authInfo?: AuthInfo } } | undefined) => string;

/**
 * Extra registrations (resources, prompts) applied to every session's server;
 * `caller` names the principal of the request a handler serves, `binding` says
 * which server this is (a 2025 session's, or a pooled 2026-07-28 one).
 */
export type ServerExtension = (
  server: McpServer,
  caller: CallerOf,
  binding: SessionBinding,
) => void;

/** What the factory needs. */
export interface McpServerDeps {
  readonly registry: ToolRegistry;
  readonly version: string;
  readonly extensions?: readonly ServerExtension[];
  readonly instructions?: string;
  /** Asks about 888_HOLD in-band on 2026-07-28 requests (input_required); none: holds only. */
  readonly holdPrompts?: HoldPromptDeps;
  /**
   * The `io.modelcontextprotocol/tasks` extension on 2026-07-28 servers: held calls, and calls
   * still running after {@link taskAfterMs}, become tasks for clients that declare it.
   */
  readonly tasks?: TaskEngine;
  /** How long a call of a task-declaring client runs before it is answered with a task. */
  readonly taskAfterMs?: number;
}

/** How long a call runs before it becomes a task, unless configured. */
export const DEFAULT_TASK_AFTER_MS = 1000;

/**
 * How a registry outcome ends a task's run: a new open hold keeps the task waiting on the
 * operator; anything else is the call's result (an unknown tool fails the task).
 */
export function taskStepOf(outcome: CallOutcome, tool: string, ask = false): TaskStep {
  const hold = outcome.envelope?._constitutional.hold;
  if (outcome.verdict === "888_HOLD" && hold?.status === "open") {
    return {
      kind: "held",
      hold: hold.id,
      message: heldMessage(hold.id),
      expiresAtMs: Date.parse(hold.expires_at),
      // A client that can ask its human: the task asks (input_required) while it waits.
      ...(ask
        ? {
          inputRequests: {
            [HOLD_INPUT_KEY]: holdConfirmRequest(
              { id: hold.id, reasons: outcome.envelope?._constitutional.reasons },
              tool,
            ),
          },
        }
        : {}),
    };
  }
  return { kind: "result", result: toCallToolResult(outcome) };
}

const heldMessage = (id: string) =>
  `held for operator approval (hold ${id}); the task runs the call once an operator signs ` +
  `(warden approve ${id}), or ends with the denial`;

/**
 * The task body of one of Warden's registry tools: the same governed call (floors, limits,
 * sealing), as the task's principal, with no client to talk to (the task has outlived its
 * request); repeated under the hold id once an operator decided.
 */
export function registryTaskBody(registry: ToolRegistry, tool: string, holds?: HoldPromptDeps) {
  return async (run: TaskRun): Promise<TaskStep> => {
    let holdId = run.holdId;
    if (holdId === undefined && run.heldBy !== undefined) {
      // The client answered the hold's confirmation: recorded (a decline denies the hold). The
      // call runs only once the hold is decided; until then the task waits for the operator.
      const hold = holds ? await holds.getHold(run.heldBy) : null;
      const action = holdAnswerOf(run.inputResponses);
      if (hold !== null && holds && action !== undefined && hold.principal === run.principal) {
        if (hold.status === "open") await holds.answer(hold, action, "tasks/update");
      }
      const now = hold ? await holds!.getHold(run.heldBy) : null;
      if (now !== null && now.status === "open") {
        return { kind: "held", hold: run.heldBy, message: heldMessage(run.heldBy) };
      }
      holdId = run.heldBy;
    }
    return taskStepOf(
      await registry.call(tool, run.args, {
        sessionId: undefined,
        principal: run.principal,
        transport: "mcp",
        signal: run.signal,
        client: {
          capabilities: withoutPushCapabilities(run.capabilities),
          log: () => Promise.resolve(),
          progress: () => Promise.resolve(),
          request: (method) => Promise.reject(noServerRequests(method)),
        },
        ...(holdId !== undefined ? { holdId } : {}),
        debug: false,
      }),
      tool,
    );
  };
}

/** Per-session facts the factory binds into the server. */
export interface SessionBinding {
  readonly principal: string;
  /** Recorded in the vault with each call: "mcp" (HTTP transports) or "stdio". */
  readonly transport?: string;
  /** The level a client set earlier (a session rebuilt from KV starts from it). */
  readonly logLevel?: string;
  /** Called when the client sets a level, so it can be kept with the session. */
  readonly onLogLevel?: (level: string) => Promise<void>;
  /**
   * Also speak 2026-07-28: `server/discover`, per-request envelopes, caching hints. Set for the
   * pooled servers of the stateless path (the principal then comes with each request) and for
   * stdio, which negotiates either era.
   */
  readonly modern?: boolean;
}

/**
 * Caching hints on 2026-07-28 list results. Every list is `private`: what a principal may see
 * will depend on who asks (RBAC filtering is coming), so no shared cache may keep one for
 * another. Ten seconds, so a changed policy or catalogue is seen within that.
 */
export const LIST_CACHE_HINT: CacheHint = { ttlMs: 10_000, cacheScope: "private" };

const AnyResult = z.looseObject({});

/** RFC 5424 severities in ascending order, as MCP's logging/setLevel uses them. */
const LOG_LEVELS = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
];

/**
 * Turns a registry outcome into an MCP `CallToolResult`: the envelope as
 * `structuredContent`, a one-line summary (and the tool's data as JSON text,
 * for clients that ignore structured content) in `content`.
 */
export function toCallToolResult(outcome: CallOutcome): CallToolResult {
  if (outcome.errorKind === "unknown_tool") {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, outcome.text);
  }
  if (outcome.upstreamResult) return upstreamCallToolResult(outcome);
  // An upstream tool with its own outputSchema: the envelope cannot be its structuredContent.
  const { data: _data, ...governance } = outcome.governanceInMeta ? outcome.envelope ?? {} : {};
  const inMeta = outcome.governanceInMeta && outcome.envelope !== undefined;
  const meta = outcome.vault || inMeta
    ? {
      _meta: {
        ...(inMeta ? { "warden/governance": governance } : {}),
        ...(outcome.vault
          ? { "warden/vault": { index: outcome.vault.index, leaf_hash: outcome.vault.leafHash } }
          : {}),
      },
    }
    : {};
  // The summary and the tool's own data as JSON: clients that only pass `content` to
  // the model still give it the result; the full envelope is in structuredContent.
  const data = outcome.envelope?.data;
  const content = outcome.content ?? [
    { type: "text", text: outcome.text },
    ...(data !== undefined && data !== null ? [{ type: "text", text: JSON.stringify(data) }] : []),
  ];
  return {
    content: content as CallToolResult["content"],
    ...(outcome.envelope && !inMeta ? { structuredContent: outcome.envelope } : {}),
    ...(outcome.isError ? { isError: true } : {}),
    ...meta,
  };
}

/** What a 2026-07-28 tool is told when it tries a server-to-client request it cannot have. */
function noServerRequests(method: string): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCode.InternalError,
    `Cannot send ${method} to the client: protocol 2026-07-28 has no server-to-client requests`,
  );
}

/** A governed call on the stateless path, for a request the SDK's dispatch is not needed for. */
export type StatelessToolCall = (call: {
  readonly name: string;
  readonly args: Record<string, unknown> | undefined;
  readonly principal: string;
  readonly signal: AbortSignal;
  /** The envelope's `clientCapabilities` (without sampling or elicitation: those take the SDK path). */
  readonly capabilities: Record<string, unknown>;
}) => Promise<CallToolResult>;

/**
 * The `tools/call` of a 2026-07-28 request that carries nothing but the envelope (no log level,
 * progress token, request state, input responses, hold id or trace context) from a client that
 * declared neither sampling nor elicitation: exactly what the SDK-dispatched handler below does
 * for such a request — the same registry call (validation, floors, limits, sealing), the same
 * client bridge (logging is off without a log level, progress without a token, and there are no
 * server-to-client requests) — without the per-request protocol machinery around it.
 */
export function createStatelessToolCall(deps: McpServerDeps): StatelessToolCall {
  return async ({ name, args, principal, signal, capabilities }) => {
    const outcome = await deps.registry.call(name, args, {
      sessionId: undefined,
      principal,
      transport: "mcp",
      signal,
      client: {
        capabilities: withoutPushCapabilities(capabilities),
        log: () => Promise.resolve(),
        progress: () => Promise.resolve(),
        request: (method) => Promise.reject(noServerRequests(method)),
      },
      debug: false,
    });
    return toCallToolResult(outcome);
  };
}

function withoutPushCapabilities(declared: unknown): Record<string, unknown> {
  const { sampling: _s, elicitation: _e, roots: _r, ...rest } = (declared ?? {}) as Record<
    string,
    unknown
  >;
  return rest;
}

/**
 * A plain `tools/call` of a 2025-era session, answered without the SDK's protocol dispatch (see
 * `session_direct.ts`): the same registry call the session's `tools/call` handler makes for a
 * request without `_meta` beyond a progress token, from a client that declared neither sampling
 * nor elicitation — its log and progress go to `notify`, on the request's own stream.
 */
export type SessionToolCall = (call: {
  readonly name: string;
  readonly args: Record<string, unknown> | undefined;
  readonly sessionId: string;
  readonly progressToken?: string | number;
  readonly signal: AbortSignal;
  /** Sends a notification related to the request. */
  readonly notify: (notification: {
    readonly method: string;
    readonly params: Record<string, unknown>;
  }) => Promise<void>;
}) => Promise<CallToolResult>;

const sessionCalls = new WeakMap<McpServer, SessionToolCall>();

/** The direct `tools/call` of a 2025-era session's server (undefined for pooled 2026 servers). */
export function sessionToolCall(server: McpServer): SessionToolCall | undefined {
  return sessionCalls.get(server);
}

/**
 * An upstream tool's result goes back untouched; Warden's envelope minus
 * `data` (the upstream's own structuredContent already carries it) rides in
 * `_meta["warden/governance"]`.
 */
function upstreamCallToolResult(outcome: CallOutcome): CallToolResult {
  const raw = outcome.upstreamResult!;
  const { data: _data, ...governance } = outcome.envelope ?? {};
  const rawMeta = raw._meta && typeof raw._meta === "object" ? raw._meta : {};
  return {
    ...raw,
    _meta: {
      ...rawMeta,
      "warden/governance": governance,
      ...(outcome.vault
        ? { "warden/vault": { index: outcome.vault.index, leaf_hash: outcome.vault.leafHash } }
        : {}),
    },
  } as unknown as CallToolResult;
}

/**
 * Creates the McpServer for one session.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InMemoryTransport } from "@modelcontextprotocol/server";
 * import { Client } from "@modelcontextprotocol/client";
 * import type { ToolRegistry } from "../calls/mod.ts";
 * import { createMcpServer } from "./server.ts";
 * // The server answers from a registry (the one call path, calls/); this one has a single tool
 * // and no governance, to show what the server makes of it.
 * const ping = {
 *   name: "ping",
 *   description: "Answers pong.",
 *   inputSchema: { type: "object", properties: {} },
 *   annotations: { readOnlyHint: true },
 * };
 * const registry: ToolRegistry = {
 *   list: () => [ping],
 *   get: () => undefined,
 *   has: (name) => name === "ping",
 *   call: (tool) =>
 *     Promise.resolve({
 *       tool,
 *       isError: false,
 *       text: "pong",
 *       content: [{ type: "text", text: "pong" }],
 *       latencyMs: 0,
 *       verdict: "SEAL",
 *     }),
 *   facts: () => {
 *     throw new Error("not judged here");
 *   },
 * };
 * const server = createMcpServer({ registry, version: "0.1.0" }, { principal: "anonymous" });
 * const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
 * await server.connect(serverSide);
 * const client = new Client({ name: "example", version: "1" });
 * await client.connect(clientSide);
 * assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ["ping"]);
 * const result = await client.callTool({ name: "ping", arguments: {} });
 * assert.deepEqual(result.content, [{ type: "text", text: "pong" }]);
 * await client.close();
 * ```
 */
// Kept whole: the server factory registers each MCP method handler on one server, sharing its log
// level and hold prompts.
export function createMcpServer(deps: McpServerDeps, binding: SessionBinding): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, title: SERVER_TITLE, version: deps.version },
    {
      capabilities: {
        tools: { listChanged: true },
        logging: {},
        ...(binding.modern && deps.tasks ? { extensions: { [TASKS_EXTENSION]: {} } } : {}),
      },
      ...(deps.instructions ? { instructions: deps.instructions } : {}),
      ...(binding.modern
        ? {
          supportedProtocolVersions: [...MODERN_PROTOCOL_VERSIONS, ...SUPPORTED_PROTOCOL_VERSIONS],
          cacheHints: {
            "tools/list": LIST_CACHE_HINT,
            "prompts/list": LIST_CACHE_HINT,
            "resources/list": LIST_CACHE_HINT,
            "resources/templates/list": LIST_CACHE_HINT,
            "server/discover": LIST_CACHE_HINT,
          },
        }
        : {}),
    },
  );
  const low = server.server;
  // The client's logging/setLevel choice; until it sets one, every level is sent.
  let minLogLevel = Math.max(0, LOG_LEVELS.indexOf(binding.logLevel as never));
  low.setRequestHandler("logging/setLevel", async (request) => {
    minLogLevel = LOG_LEVELS.indexOf(request.params.level);
    await binding.onLogLevel?.(request.params.level);
    return {};
  });
  const caller: CallerOf = (ctx) => principalFromAuth(ctx?.http?.authInfo) ?? binding.principal;
  let holdPrompts: HoldPrompts | undefined;
  // Listed per request: upstream tools come and go while a session lives, and
  // each caller sees only the tools its roles let it call.
  low.setRequestHandler("tools/list", (_request, ctx) => ({
    tools: deps.registry.list(caller(ctx)) as never,
  }));
  low.setRequestHandler("tools/call", async (request, ctx) => {
    const meta = (ctx.mcpReq._meta ?? request.params._meta ?? {}) as Record<string, unknown>;
    const progressToken = meta.progressToken as string | number | undefined;
    const envelope = ctx.mcpReq.envelope;
    if (envelope && deps.holdPrompts && !holdPrompts) {
      holdPrompts = createHoldPrompts({ ...deps.holdPrompts, principalOf: caller });
    }
    const prompts = envelope ? holdPrompts : undefined;
    // A retried 2026-07-28 request carries the state Warden minted: a hold's confirmation or a
    // tool's sampling answer.
    const state = prompts ? await readPromptState(prompts, ctx, request.params.name) : undefined;
    const sampled = state?.kind === "sampling" ? samplingAnswer(ctx) : undefined;
    const declared = envelope
      ? (envelope as Record<string, unknown>)[CLIENT_CAPABILITIES_META_KEY] as
        | Record<string, unknown>
        | undefined
      : undefined;
    const canSample = prompts !== undefined && declared !== undefined &&
      typeof declared === "object" && "sampling" in declared;
    let pendingSampling: Record<string, unknown> | undefined;
    const client: ClientBridge = envelope
      ? {
        // A 2026-07-28 request: the client's capabilities and log level come with the request.
        // Server→client requests do not exist on this revision (input_required replaces
        // them), so sampling and elicitation are not offered to the tools: they take the
        // path they take for a client without those capabilities.
        // Sampling is offered as input_required (a retried request); elicitation and roots not.
        capabilities: {
          ...withoutPushCapabilities(declared),
          ...(canSample ? { sampling: (declared as Record<string, unknown>).sampling } : {}),
        },
        log: (level, data) => ctx.mcpReq.log(level, data),
        progress: async (progress, opts) => {
          if (progressToken === undefined) return;
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken, progress, ...opts },
          });
        },
        request: (method, params) => {
          if (method === "sampling/createMessage" && canSample) {
            if (sampled !== undefined) return Promise.resolve(sampled);
            pendingSampling = params;
            return Promise.reject(
              new InputRequiredError(
                "the client's model is asked through input_required; the retried request answers",
              ),
            );
          }
          return Promise.reject(noServerRequests(method));
        },
      }
      : {
        get capabilities() {
          return (low.getClientCapabilities() ?? {}) as Record<string, unknown>;
        },
        log: async (level, data) => {
          if (LOG_LEVELS.indexOf(level) < minLogLevel) return;
          await ctx.mcpReq.notify({ method: "notifications/message", params: { level, data } });
        },
        progress: async (progress, opts) => {
          if (progressToken === undefined) return;
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken, progress, ...opts },
          });
        },
        request: (method, params) =>
          ctx.mcpReq.send({ method, params } as never, AnyResult) as Promise<
            Record<string, unknown>
          >,
      };
    const metaHold = meta["warden/hold"];
    const trace = traceCarrierOf(meta);
    // On the stateless path the principal comes with the request (from auth), not a session.
    const principal = caller(ctx);
    // A retried 2026-07-28 request answering the hold's confirmation: the answer is recorded and
    // the call repeated under that hold (it runs only if an operator has signed).
    const answeredHold = prompts && state?.kind === "hold"
      ? await recordHoldAnswer(prompts, ctx, state, principal)
      : undefined;
    const holdId = answeredHold ?? (typeof metaHold === "string" ? metaHold : undefined);
    if (binding.modern && deps.tasks && !holdId && !state && declaresTasks(ctx)) {
      // The tasks extension: a new hold, or a call still running after taskAfterMs, is a task.
      const task = { tool: request.params.name, args: request.params.arguments, principal };
      const answer = await callAsTask(deps.tasks, task, ctx, client, trace, meta);
      if (answer) return answer as never;
    }
    const outcome = await deps.registry.call(request.params.name, request.params.arguments, {
      sessionId: ctx.sessionId,
      principal,
      transport: binding.transport ?? "mcp",
      signal: ctx.mcpReq.signal,
      client,
      ...(holdId !== undefined ? { holdId } : {}),
      debug: meta["warden/debug"] === true,
      ...(trace ? { trace } : {}),
    });
    if (prompts && pendingSampling !== undefined && outcome.errorKind === "input_required") {
      // The tool asked the client's model: this round is sealed as input_required; the retry
      // with the answer runs it again.
      return await askForSampling(prompts, ctx, request.params.name, pendingSampling) as never;
    }
    const hold = outcome.envelope?._constitutional.hold;
    if (
      prompts && holdId === undefined && outcome.verdict === "888_HOLD" &&
      hold?.status === "open" &&
      canElicit(ctx)
    ) {
      // A new hold, and a client that can ask its human: ask in-band.
      return await askAboutHold(prompts, ctx, {
        id: hold.id,
        reasons: outcome.envelope?._constitutional.reasons,
      }, request.params.name) as never;
    }
    return toCallToolResult(outcome);
  });
  if (binding.modern && deps.tasks) registerTaskHandlers(server, deps.tasks, caller);
  for (const extend of deps.extensions ?? []) extend(server, caller, binding);
  if (!binding.modern) {
    // What the handler above does for a 2025 session's plain call (no envelope, no hold id,
    // trace or debug flag, no server-to-client requests offered), minus the SDK's dispatch.
    sessionCalls.set(server, async ({ name, args, sessionId, progressToken, signal, notify }) => {
      const outcome = await deps.registry.call(name, args, {
        sessionId,
        principal: binding.principal,
        transport: binding.transport ?? "mcp",
        signal,
        client: {
          get capabilities() {
            return (low.getClientCapabilities() ?? {}) as Record<string, unknown>;
          },
          log: async (level, data) => {
            if (LOG_LEVELS.indexOf(level) < minLogLevel) return;
            await notify({ method: "notifications/message", params: { level, data } });
          },
          progress: async (progress, opts) => {
            if (progressToken === undefined) return;
            await notify({
              method: "notifications/progress",
              params: { progressToken, progress, ...opts },
            });
          },
          request: (method) =>
            Promise.reject(
              new ProtocolError(
                ProtocolErrorCode.InternalError,
                `Cannot send ${method} to the client: it declared no capability for it`,
              ),
            ),
        },
        debug: false,
      });
      return toCallToolResult(outcome);
    });
  }
  return server;

  /**
   * One governed call for a task-declaring client. Its log and progress reach the request
   * while it is open; after the answer was a task they are dropped (nobody is listening).
   */
  async function callAsTask(
    tasks: TaskEngine,
    what: { tool: string; args: Record<string, unknown> | undefined; principal: string },
    ctx: ServerContext,
    forward: ClientBridge,
    trace: ReturnType<typeof traceCarrierOf>,
    meta: Record<string, unknown>,
  ): Promise<Record<string, unknown> | undefined> {
    // Only Warden's own tools (the fixtures and upstream tools answer for themselves).
    if (deps.registry.get(what.tool) === undefined) return undefined;
    const call = {
      ...what,
      args: (what.args ?? {}) as Record<string, unknown>,
      capabilities: declaredCapabilities(ctx),
      debug: meta["warden/debug"] === true,
      forward,
      trace,
    };
    const abort = new AbortController();
    let detached = false;
    // Until the answer is a task, the request's signal stops the call, as it does any other call.
    ctx.mcpReq.signal.addEventListener("abort", () => detached || abort.abort(), { once: true });
    const running = deps.registry.call(call.tool, call.args, {
      sessionId: undefined,
      principal: call.principal,
      transport: binding.transport ?? "mcp",
      signal: abort.signal,
      client: {
        capabilities: withoutPushCapabilities(call.capabilities),
        log: (level, data) => detached ? Promise.resolve() : call.forward.log(level, data),
        progress: (progress, opts) =>
          detached ? Promise.resolve() : call.forward.progress(progress, opts),
        request: (method) => Promise.reject(noServerRequests(method)),
      },
      debug: call.debug,
      ...(call.trace ? { trace: call.trace } : {}),
    });
    const task = {
      tool: call.tool,
      principal: call.principal,
      args: call.args,
      capabilities: call.capabilities,
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      running.then((outcome) => ({ outcome })),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), deps.taskAfterMs ?? DEFAULT_TASK_AFTER_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    if (first !== undefined) {
      const step = taskStepOf(first.outcome, call.tool, "elicitation" in call.capabilities);
      if (step.kind === "result") return step.result as Record<string, unknown>;
      // A new hold: the task waits for the operator (no task room: the held answer as before).
      const record = await tasks.adopt(task, step);
      return record ? createTaskResult(record, tasks.limits) : toCallToolResult(first.outcome);
    }
    detached = true;
    const record = await tasks.adopt(
      task,
      running.then((o) => taskStepOf(o, call.tool, "elicitation" in call.capabilities)),
      abort,
    );
    if (record) return createTaskResult(record, tasks.limits);
    // No room for a task: the client waits for the call like any other.
    detached = false;
    return toCallToolResult(await running);
  }
}
