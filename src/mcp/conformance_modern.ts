/**
 * TEST-ONLY 2026-07-28 fixtures for `@modelcontextprotocol/conformance`
 * (`server --requirements 2026-07-28`), registered with
 * `--conformance-fixtures` only: the multi-round-trip (`input_required`)
 * tools and prompt, and the stateless diagnostics (`test_missing_capability`,
 * `test_streaming_elicitation`, `test_logging_tool`).
 *
 * The `requestState` these fixtures mint is sealed with the SDK's HMAC-SHA256
 * codec (`createRequestStateCodec`, WebCrypto underneath) bound to the method
 * and principal, and verified before any round is trusted: a tampered,
 * expired or re-bound state is refused with `-32602`.
 */
import {
  acceptedContent,
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  createRequestStateCodec,
  inputRequired,
  inputResponse,
  type JSONRPCRequest,
  type McpServer,
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  type Result,
  type ServerContext,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import {
  createTaskResult,
  declaredCapabilities,
  declaresTasks,
  type TaskBody,
  type TaskEngine,
  tasksRequired,
} from "./tasks.ts";
import { principalFromAuth } from "./modern.ts";

// One key per process: the fixtures' flows are answered by the process that began them.
const codec = createRequestStateCodec<{ fixture: string; round: number; name?: string }>({
  key: crypto.getRandomValues(new Uint8Array(32)),
  ttlSeconds: 300,
  bind: (ctx) => `${ctx.mcpReq.method}\0${ctx.http?.authInfo?.clientId ?? ""}`,
});

async function verifiedState(
  ctx: ServerContext,
  fixture: string,
): Promise<{ round: number; name?: string } | undefined> {
  const raw = ctx.mcpReq.requestState();
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, "bad state");
  }
  try {
    const state = await codec.verify(raw, ctx);
    if (state.fixture !== fixture) throw new Error("fixture");
    return state;
  } catch {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, "Invalid or expired requestState");
  }
}

function capabilities(ctx: ServerContext): Record<string, unknown> {
  const env = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const caps = env?.[CLIENT_CAPABILITIES_META_KEY];
  return caps && typeof caps === "object" ? caps as Record<string, unknown> : {};
}

const nameSchema = z.object({ name: z.string() });
const askName = (message = "What is your name?") =>
  inputRequired.elicit({
    message,
    requestedSchema: {
      type: "object",
      properties: { name: { type: "string" } },
      required: ["name"],
    },
  });

function text(value: string) {
  return { content: [{ type: "text" as const, text: value }] };
}

function samplingText(responses: Record<string, unknown> | undefined, key: string): string {
  const view = inputResponse(responses, key);
  if (view.kind !== "sampling") return "";
  const content = view.result.content as unknown;
  const blocks = Array.isArray(content) ? content : [content];
  return blocks.map((b) => (b && typeof b === "object" && "text" in b ? String(b.text) : ""))
    .join("");
}

type FixtureResult = CallToolResult | ReturnType<typeof inputRequired>;
type Fixture = (
  ctx: ServerContext,
  args: Record<string, unknown>,
) => FixtureResult | Promise<FixtureResult>;
type RawHandler = (request: JSONRPCRequest, ctx: ServerContext) => Promise<Result>;

/**
 * The requestState fixtures: asks for a confirmation with a freshly minted state, and answers
 * `done` once the retry carries both the confirmation and a state this fixture minted (a state
 * that does not verify is refused as invalid params).
 */
function confirmWithState(fixture: string, done: string): Fixture {
  return async (ctx) => {
    const state = await verifiedState(ctx, fixture);
    const ok = acceptedContent(ctx.mcpReq.inputResponses, "confirm");
    if (state && ok) return text(done);
    return inputRequired({
      inputRequests: {
        confirm: inputRequired.elicit({
          message: "Please confirm",
          requestedSchema: {
            type: "object",
            properties: { ok: { type: "boolean" } },
            required: ["ok"],
          },
        }),
      },
      requestState: await codec.mint({ fixture, round: 1 }, ctx),
    });
  };
}

/**
 * Registers the 2026-07-28 fixtures on one server. Warden's own `tools/list`
 * and `tools/call` handlers (over the registry) stay in front: the fixture
 * tools are added to the list, and a call for one of them is answered here,
 * every other call goes to Warden's handler unchanged. Returns the fixture tools' names (the
 * direct tools/call path leaves them to this handler).
 */
export function modernConformanceExtension(
  server: McpServer,
  notify: { toolsChanged(): void; promptsChanged(): void },
  tasks?: TaskEngine,
): ReadonlySet<string> {
  const fixtures = new Map<string, { description: string; run: Fixture }>();
  const tool = (name: string, meta: { description: string }, run: Fixture) =>
    fixtures.set(name, { description: meta.description, run });
  registerFixtures(server, tool);
  for (const [name, f] of TASK_FIXTURES) {
    tasks?.register(name, f.body);
    tool(name, f, (ctx, args) => callTaskFixture(ctx, args, name, f, tasks));
  }
  tool("test_trigger_tool_change", {
    description: "Publishes tools/list_changed to listening clients (conformance fixture).",
  }, () => {
    notify.toolsChanged();
    return text("tools list change published");
  });
  tool("test_trigger_prompt_change", {
    description: "Publishes prompts/list_changed to listening clients (conformance fixture).",
  }, () => {
    notify.promptsChanged();
    return text("prompts list change published");
  });
  const low = server.server as unknown as {
    _getRequestHandler(method: string): RawHandler | undefined;
  };
  const wardenList = low._getRequestHandler("tools/list");
  const wardenCall = low._getRequestHandler("tools/call");
  if (!wardenList || !wardenCall) throw new Error("Warden's tools handlers are not installed");
  const raw = (ctx: ServerContext, method: string, params: unknown): JSONRPCRequest => ({
    jsonrpc: "2.0",
    id: ctx.mcpReq.id,
    method,
    ...(params !== undefined ? { params: params as Record<string, unknown> } : {}),
  });
  server.server.setRequestHandler("tools/list", async (request, ctx) => {
    const listed = await wardenList(raw(ctx, "tools/list", request.params), ctx) as {
      tools: unknown[];
    };
    return {
      ...listed,
      tools: [
        ...listed.tools,
        ...[...fixtures].map(([name, f]) => ({
          name,
          description: f.description,
          inputSchema: { type: "object" as const, properties: {} },
        })),
      ],
    } as never;
  });
  server.server.setRequestHandler("tools/call", (request, ctx) => {
    const fixture = fixtures.get(request.params.name);
    if (!fixture) return wardenCall(raw(ctx, "tools/call", request.params), ctx) as never;
    return Promise.resolve(fixture.run(ctx, request.params.arguments ?? {})) as never;
  });
  return new Set(fixtures.keys());
}

// Kept whole: the conformance fixtures are a flat list of small registrations, one per fixture the
// suite names.
function registerFixtures(
  server: McpServer,
  tool: (name: string, meta: { description: string }, run: Fixture) => void,
): void {
  tool("test_input_required_result_elicitation", {
    description: "Asks the user's name via an input_required elicitation (conformance fixture).",
  }, (ctx) => {
    const got = acceptedContent(ctx.mcpReq.inputResponses, "user_name", nameSchema);
    if (!got) return inputRequired({ inputRequests: { user_name: askName() } });
    return text(`Hello, ${got.name}!`);
  });

  tool("test_input_required_result_sampling", {
    description: "Asks the client's model via an input_required sampling (conformance fixture).",
  }, (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, "capital_question");
    if (view.kind !== "sampling") {
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({
            messages: [{
              role: "user",
              content: { type: "text", text: "What is the capital of France?" },
            }],
            maxTokens: 100,
          }),
        },
      });
    }
    return text(`Sampling said: ${samplingText(ctx.mcpReq.inputResponses, "capital_question")}`);
  });

  tool("test_input_required_result_list_roots", {
    description: "Asks for the client's roots via input_required (conformance fixture).",
  }, (ctx) => {
    const view = inputResponse(ctx.mcpReq.inputResponses, "client_roots");
    if (view.kind !== "roots") {
      return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    }
    return text(`Roots: ${view.roots.map((r) => r.uri).join(", ") || "(none)"}`);
  });

  tool("test_input_required_result_request_state", {
    description: "Round-trips a signed requestState (conformance fixture).",
  }, confirmWithState("request_state", "state-ok: confirmed"));

  tool("test_input_required_result_tampered_state", {
    description: "Refuses a tampered requestState (conformance fixture).",
  }, confirmWithState("tampered_state", "state-ok"));

  tool("test_input_required_result_multiple_inputs", {
    description: "Asks for elicitation, sampling and roots at once (conformance fixture).",
  }, async (ctx) => {
    const state = await verifiedState(ctx, "multiple_inputs");
    const responses = ctx.mcpReq.inputResponses;
    const name = acceptedContent(responses, "user_name", nameSchema);
    const greeting = inputResponse(responses, "greeting");
    const roots = inputResponse(responses, "client_roots");
    if (!state || !name || greeting.kind !== "sampling" || roots.kind !== "roots") {
      return inputRequired({
        inputRequests: {
          user_name: askName(),
          greeting: inputRequired.createMessage({
            messages: [{ role: "user", content: { type: "text", text: "Generate a greeting" } }],
            maxTokens: 50,
          }),
          client_roots: inputRequired.listRoots(),
        },
        requestState: await codec.mint({ fixture: "multiple_inputs", round: 1 }, ctx),
      });
    }
    return text(
      `${samplingText(responses, "greeting")} ${name.name} (${roots.roots.length} roots)`,
    );
  });

  tool("test_input_required_result_multi_round", {
    description: "Two elicitation rounds with evolving requestState (conformance fixture).",
  }, async (ctx) => {
    const state = await verifiedState(ctx, "multi_round");
    const responses = ctx.mcpReq.inputResponses;
    if (state?.round === 2 && state.name) {
      const color = acceptedContent(responses, "step2", z.object({ color: z.string() }));
      if (color) return text(`${state.name} likes ${color.color}`);
    }
    const step1 = acceptedContent(responses, "step1", nameSchema);
    if (state?.round === 1 && step1) {
      return inputRequired({
        inputRequests: {
          step2: inputRequired.elicit({
            message: "Step 2: What is your favorite color?",
            requestedSchema: {
              type: "object",
              properties: { color: { type: "string" } },
              required: ["color"],
            },
          }),
        },
        requestState: await codec.mint(
          { fixture: "multi_round", round: 2, name: step1.name.slice(0, 200) },
          ctx,
        ),
      });
    }
    return inputRequired({
      inputRequests: { step1: askName("Step 1: What is your name?") },
      requestState: await codec.mint({ fixture: "multi_round", round: 1 }, ctx),
    });
  });

  tool("test_input_required_result_capabilities", {
    description: "Asks only for what the client declared it supports (conformance fixture).",
  }, (ctx) => {
    const caps = capabilities(ctx);
    const responses = ctx.mcpReq.inputResponses;
    if (responses && Object.keys(responses).length > 0) return text("capabilities-ok");
    const requests: Record<string, ReturnType<typeof inputRequired.listRoots>> = {};
    if (caps.elicitation) requests.user_name = askName();
    if (caps.sampling) {
      requests.greeting = inputRequired.createMessage({
        messages: [{ role: "user", content: { type: "text", text: "Generate a greeting" } }],
        maxTokens: 50,
      });
    }
    if (caps.roots) requests.client_roots = inputRequired.listRoots();
    if (Object.keys(requests).length === 0) return text("no client capabilities to ask with");
    return inputRequired({ inputRequests: requests });
  });

  server.registerPrompt("test_input_required_result_prompt", {
    description: "A prompt that asks the user for context first (conformance fixture).",
  }, (ctx) => {
    const got = acceptedContent(
      ctx.mcpReq.inputResponses,
      "user_context",
      z.object({ context: z.string() }),
    );
    if (!got) {
      return inputRequired({
        inputRequests: {
          user_context: inputRequired.elicit({
            message: "What context should the prompt use?",
            requestedSchema: {
              type: "object",
              properties: { context: { type: "string" } },
              required: ["context"],
            },
          }),
        },
      });
    }
    return {
      messages: [{ role: "user", content: { type: "text", text: `Context: ${got.context}` } }],
    };
  });

  tool("test_missing_capability", {
    description: "Needs the client's sampling capability (conformance fixture).",
  }, (ctx) => {
    if (!capabilities(ctx).sampling) {
      throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } });
    }
    return text("sampling declared");
  });

  tool("test_streaming_elicitation", {
    description: "Asks via input_required, never a server-to-client request (conformance fixture).",
  }, (ctx) => {
    const got = acceptedContent(ctx.mcpReq.inputResponses, "user_name", nameSchema);
    if (!got) return inputRequired({ inputRequests: { user_name: askName() } });
    return text(`Hello, ${got.name}!`);
  });

  tool("test_logging_tool", {
    description: "Logs only at the level the request asked for (conformance fixture).",
  }, async (ctx) => {
    await ctx.mcpReq.log("info", "logging tool ran");
    return text("logged");
  });
}

/** How a task fixture takes a client that did not declare the tasks extension. */
type TaskSupport = "never" | "optional" | "required";

interface TaskFixture {
  readonly description: string;
  readonly support: TaskSupport;
  readonly body: TaskBody;
}

/** Resolves after `ms`, or rejects when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal.removeEventListener("abort", stop);
      resolve();
    }
    function stop() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener("abort", stop, { once: true });
  });
}

const askConfirm = (message: string) =>
  inputRequired.elicit({
    message,
    requestedSchema: {
      type: "object",
      properties: { confirm: { type: "boolean" } },
      required: ["confirm"],
    },
  });

const accepted = (responses: Record<string, unknown>, key: string) => {
  const view = inputResponse(responses as never, key);
  return view.kind === "elicit" && view.action === "accept" ? view.content ?? {} : undefined;
};

const stringArg = (args: Record<string, unknown>, key: string, fallback: string) =>
  typeof args[key] === "string" ? (args[key] as string).slice(0, 200) : fallback;

/** The SEP-2663 fixtures the tasks scenarios call, as task bodies. */
const TASK_FIXTURES: ReadonlyMap<string, TaskFixture> = new Map<string, TaskFixture>([
  ["greet", {
    description: "Sync-only greeting (tasks conformance fixture).",
    support: "never",
    body: (run) =>
      Promise.resolve({
        kind: "result",
        result: text(`Hello, ${stringArg(run.args, "name", "World")}!`),
      }),
  }],
  ["slow_compute", {
    description: "Sleeps `seconds` then answers; a task when the client declares tasks (fixture).",
    support: "optional",
    body: async (run) => {
      const seconds = Math.min(120, Math.max(0, Number(run.args.seconds) || 0));
      await sleep(seconds * 1000, run.signal);
      return {
        kind: "result",
        result: text(`Computed ${stringArg(run.args, "label", "")} after ${seconds}s`),
      };
    },
  }],
  ["failing_job", {
    description: "A task-only job that ends with a tool error after ~1 s (fixture).",
    support: "required",
    body: async (run) => {
      await sleep(1000, run.signal);
      return {
        kind: "result",
        result: { content: [{ type: "text", text: "the job failed" }], isError: true },
      };
    },
  }],
  ["protocol_error_job", {
    description: "A task whose run fails with a protocol error (fixture).",
    support: "optional",
    body: async (run) => {
      await sleep(100, run.signal);
      throw new ProtocolError(ProtocolErrorCode.InternalError, "the job crashed");
    },
  }],
  ["confirm_delete", {
    description: "A task that asks the client to confirm, then answers (fixture).",
    support: "optional",
    body: (run) => {
      const filename = stringArg(run.args, "filename", "file");
      const answer = accepted(run.inputResponses, "confirm");
      if (run.inputResponses.confirm === undefined) {
        return Promise.resolve({
          kind: "input",
          inputRequests: { confirm: askConfirm(`Delete ${filename}?`) },
        });
      }
      return Promise.resolve({
        kind: "result",
        result: text(answer?.confirm === true ? `Deleted ${filename}` : `Kept ${filename}`),
      });
    },
  }],
  ["multi_input", {
    description: "A task that asks two questions at once (fixture).",
    support: "optional",
    body: (run) => {
      const got = run.inputResponses;
      if (got.name === undefined || got.confirm === undefined) {
        return Promise.resolve({
          kind: "input",
          inputRequests: { name: askName(), confirm: askConfirm("Go ahead?") },
        });
      }
      const name = accepted(got, "name")?.name;
      return Promise.resolve({
        kind: "result",
        result: text(`Hello, ${typeof name === "string" ? name.slice(0, 200) : "?"}; confirmed`),
      });
    },
  }],
  ["test_tool_with_task", {
    description: "Asks a name by input_required, then answers as a task (fixture).",
    support: "required",
    body: (run) =>
      Promise.resolve({
        kind: "result",
        result: text(`Hello, ${stringArg(run.args, "user_name", "?")}, from a task`),
      }),
  }],
]);

/** A task fixture's tools/call: a task for a client that declared tasks, else as support says. */
async function callTaskFixture(
  ctx: ServerContext,
  args: Record<string, unknown>,
  name: string,
  fixture: TaskFixture,
  tasks: TaskEngine | undefined,
): Promise<FixtureResult> {
  const principal = principalFromAuth(ctx.http?.authInfo) ?? "anonymous";
  const capabilities = declaredCapabilities(ctx);
  let run = args;
  if (name === "test_tool_with_task") {
    // Round 1 gathers the name in-band (input_required); round 2 escalates to a task.
    if (!declaresTasks(ctx)) throw tasksRequired();
    const got = acceptedContent(ctx.mcpReq.inputResponses, "user_name", nameSchema);
    if (!got) return inputRequired({ inputRequests: { user_name: askName() } });
    run = { user_name: got.name.slice(0, 200) };
  }
  if (fixture.support !== "never" && tasks && declaresTasks(ctx)) {
    const record = await tasks.start({ tool: name, principal, args: run, capabilities });
    if (!record) {
      throw new ProtocolError(ProtocolErrorCode.InternalError, "No room for another task");
    }
    return createTaskResult(record, tasks.limits) as unknown as CallToolResult;
  }
  if (fixture.support === "required") throw tasksRequired();
  const step = await fixture.body({
    taskId: "",
    args: run,
    principal,
    capabilities,
    inputResponses: (ctx.mcpReq.inputResponses ?? {}) as Record<string, unknown>,
    signal: ctx.mcpReq.signal,
  });
  if (step.kind === "result") return step.result;
  if (step.kind === "input") return inputRequired({ inputRequests: step.inputRequests as never });
  throw new ProtocolError(ProtocolErrorCode.InternalError, "held without a task");
}
