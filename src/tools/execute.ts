/**
 * `secure_execute` (SPEC §5 "Evidence chain"): a governed execution of
 * untrusted code — a thin adapter over the code sandbox in
 * `src/execution/code.ts`. The vault records digests and sizes of the code
 * and of what it printed, never the text itself. Above `standard` an
 * evidence entry is sealed and a receipt naming it is signed by the vault's
 * key (`src/vault/receipt.ts`).
 *
 * @module
 */
import { z } from "zod";
import {
  type ChatCompletion,
  ChatEndpointError,
  type ChatService,
  type ChatSettings,
  type CodeResult,
  CodeSandboxBusyError,
  CodeSandboxUnavailableError,
  type CodeService,
} from "../execution/mod.ts";
import { type Policy, redactText } from "../governance/mod.ts";
import type { ExecutionStore } from "../store/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import { digestJson, sha256HexOfText } from "../lib/mod.ts";
import { createEvidenceChainTools, type EvidenceChainServices } from "./evidence_chain.ts";
import {
  type ClientBridge,
  defineTool,
  InputRequiredError,
  sampledUsage,
  type ToolContext,
  type ToolDefinition,
  ToolError,
} from "../calls/mod.ts";
import { type ReceiptSigner, toolFamily } from "./_services.ts";

const MAX_CODE_CHARS = 1_048_576;

/** The digest of what a run produced: what receipts and evidence name. */
export function outputDigest(r: CodeResult): string {
  return digestJson({
    exit_code: r.exitCode,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
  });
}

const inputSchema = z.object({
  kind: z.enum(["code", "prompt"]).optional().describe(
    "What to execute: `code` (JavaScript/TypeScript in the sandbox) or `prompt`. " +
      "Inferred from which of code/prompt is given.",
  ),
  code: z.string().min(1).max(MAX_CODE_CHARS).optional().describe(
    "The program (kind code), run with `deno run` and no permissions: no files, network, " +
      "environment or subprocesses; at most policy execution.code.max_code_bytes.",
  ),
  language: z.enum(["typescript", "javascript"]).default("typescript"),
  prompt: z.string().min(1).max(100_000).optional().describe(
    "The prompt (kind prompt), sent to the configured OpenAI-compatible chat endpoint with PII " +
      "and secrets redacted first.",
  ),
  model: z.string().min(1).max(200).optional().describe(
    "kind prompt: the model; default policy execution.prompt.model. Must be in " +
      "execution.prompt.models when that is set, and always at fortress.",
  ),
  max_tokens: z.number().int().min(1).optional().describe(
    "kind prompt: at most this many tokens back (capped by execution.prompt.max_tokens).",
  ),
  security_level: z.enum(["standard", "verified", "fortress"]).default("standard").describe(
    "standard: governed like any tool call. verified: also an evidence entry in the vault and " +
      "an Ed25519-signed receipt (input and output digests, runtime, limits, vault index). " +
      "fortress: also PII and secrets redacted from what comes back, and an operator hold " +
      "(888_HOLD) when `irreversible` is declared.",
  ),
  irreversible: z.boolean().default(false).describe(
    "Declare that what the output is used for cannot be undone; at fortress the call then " +
      "waits for an operator's approval.",
  ),
  create_evidence: z.boolean().default(false).describe(
    "At standard, seal an evidence entry too (verified and fortress always do).",
  ),
  label: z.string().max(200).optional().describe("A label recorded with the execution."),
  case_id: z.string().min(1).max(200).optional().describe(
    "A case the execution belongs to (evidence_package can bundle a case).",
  ),
}).refine((a) => (a.code === undefined) !== (a.prompt === undefined), {
  message: "give exactly one of code or prompt",
}).refine((a) => a.kind === undefined || (a.kind === "code") === (a.code !== undefined), {
  message: "kind code takes `code`, kind prompt takes `prompt`",
});

const outputSchema = z.object({
  execution_id: z.string(),
  kind: z.enum(["code", "prompt"]),
  security_level: z.string(),
  status: z.enum(["OK", "ERROR"]).describe("OK when the program exited 0 (or the model answered)."),
  exit_code: z.number().int().nullable().optional(),
  signal: z.string().nullable().optional(),
  stdout: z.string().optional(),
  stderr: z.string().optional(),
  timed_out: z.boolean().optional(),
  output_truncated: z.boolean().optional(),
  duration_ms: z.number(),
  failure: z.string().nullable().describe("Why the program did not finish normally."),
  input_sha256: z.string().describe("SHA-256 of the code, or of the prompt as sent (UTF-8)."),
  output_sha256: z.string().describe(
    "SHA-256 of the canonical JSON of {exit_code, signal, stdout, stderr}, or of {model, response}.",
  ),
  response: z.string().optional().describe("kind prompt: the model's answer."),
  model: z.string().optional().describe("kind prompt: the model that answered."),
  usage: z.object({ input_tokens: z.number().int(), output_tokens: z.number().int() }).optional(),
  finish_reason: z.string().nullable().optional(),
  prompt_redactions: z.record(z.string(), z.number()).optional().describe(
    "kind prompt: PII and secret findings replaced before the prompt left, by kind.",
  ),
  runtime: z.record(z.string(), z.string()),
  limits: z.record(z.string(), z.number()),
  redactions: z.record(z.string(), z.number()).optional().describe(
    "fortress: PII and secret findings replaced in what came back, by kind.",
  ),
  evidence_id: z.string().optional().describe("The evidence entry, as `vault:<index>`."),
  receipt: z.object({
    note: z.string().describe("The signed receipt (a C2SP signed note by the vault's key)."),
    vault_index: z.number().int(),
    vault_leaf_hash: z.string(),
  }).optional(),
});

type Input = z.infer<typeof inputSchema>;
type Output = z.infer<typeof outputSchema>;

function kindOf(args: Input): "code" | "prompt" {
  return args.code !== undefined ? "code" : "prompt";
}

/** The `secure_execute` tool. */
function secureExecuteTool(services: SecureExecuteServices) {
  return defineTool({
    name: "secure_execute",
    title: "Secure execute",
    description: "Run untrusted JavaScript or TypeScript (kind code) in a separate Deno process " +
      "with no permissions — no files (not even by import), network, environment, subprocesses " +
      "or FFI — under a V8 heap limit, a process memory limit, CPU and wall-clock limits and an " +
      "output cap; returns what it printed, its exit status and why it failed. Or send a prompt " +
      "(kind prompt) to the configured OpenAI-compatible chat endpoint, PII and secrets redacted " +
      "before it leaves; tokens are counted in usage. Governed like any tool call; the vault " +
      "records digests of the code, prompt and output, not their text.",
    inputSchema,
    outputSchema,
    annotations: {
      readOnlyHint: false,
      // Nothing the program does outlives its process: it has no permission to change anything.
      destructiveHint: false,
      idempotentHint: false,
      openWorldHint: false,
    },
    refusal: (args, client) => refusalOf(services, args, client),
    assess: (args) => ({
      // A prompt leaves for the chat endpoint.
      ...(kindOf(args) === "prompt" ? { openWorldHint: true } : {}),
      // The one hold left to a person: a fortress execution whose use cannot be undone.
      ...(args.security_level === "fortress" && args.irreversible ? { destructiveHint: true } : {}),
    }),
    recordArguments: (args) => ({
      kind: kindOf(args),
      security_level: args.security_level,
      ...(args.irreversible ? { irreversible: true } : {}),
      ...(args.code !== undefined
        ? {
          language: args.language,
          code_sha256: sha256HexOfText(args.code),
          code_bytes: new TextEncoder().encode(args.code).byteLength,
        }
        : {}),
      ...(args.prompt !== undefined
        ? {
          // Of the prompt as sent: a digest of the unredacted text would let PII be guessed back.
          prompt_sha256: sha256HexOfText(redactText(args.prompt).text),
          prompt_bytes: new TextEncoder().encode(args.prompt).byteLength,
          ...(args.model !== undefined ? { model: args.model } : {}),
        }
        : {}),
      ...(args.label !== undefined ? { label: args.label } : {}),
      ...(args.case_id !== undefined ? { case_id: args.case_id } : {}),
    }),
    recordResult: (data) => {
      const { stdout, stderr, response, ...rest } = data;
      const bytes = (t: string | undefined) =>
        t === undefined ? {} : { bytes: new TextEncoder().encode(t).byteLength };
      return {
        ...rest,
        ...(stdout !== undefined ? { stdout_bytes: bytes(stdout).bytes } : {}),
        ...(stderr !== undefined ? { stderr_bytes: bytes(stderr).bytes } : {}),
        ...(response !== undefined ? { response_bytes: bytes(response).bytes } : {}),
      };
    },
    expectedErrors: [
      { error: CodeSandboxBusyError, prefix: "Cannot run the code: " },
      { error: CodeSandboxUnavailableError, prefix: "Cannot run the code: " },
      { error: ChatEndpointError, prefix: "Cannot complete the prompt: " },
    ],
    async handler(args, ctx) {
      return kindOf(args) === "prompt"
        ? await runPrompt(services, args, ctx)
        : await runCode(services, args, ctx);
    },
  });
}

/** Runs kind `code` in the sandbox; at fortress its output comes back redacted. */
async function runCode(services: SecureExecuteServices, args: Input, ctx: ToolContext) {
  const { code } = services;
  if (!code.available) throw new ToolError(`Cannot run the code: ${code.reason}`);
  let run: CodeResult;
  try {
    run = await code.sandbox.run(args.code!, { language: args.language, signal: ctx.signal });
  } catch (e) {
    // The sandbox's size limit (policy execution.code.max_code_bytes) is a RangeError.
    if (e instanceof RangeError) throw new ToolError(`Cannot run the code: ${e.message}`);
    throw e;
  }
  const fortress = args.security_level === "fortress";
  const redactions: Record<string, number> = {};
  const scrub = (text: string) => {
    if (!fortress) return text;
    const out = redactText(text);
    for (const [kind, n] of Object.entries(out.counts)) {
      redactions[kind] = (redactions[kind] ?? 0) + (n ?? 0);
    }
    return out.text;
  };
  const shown: CodeResult = { ...run, stdout: scrub(run.stdout), stderr: scrub(run.stderr) };
  const limits = code.sandbox.limits;
  let data: Output = {
    execution_id: crypto.randomUUID(),
    kind: "code",
    security_level: args.security_level,
    status: run.exitCode === 0 ? "OK" : "ERROR",
    exit_code: run.exitCode,
    signal: run.signal,
    stdout: shown.stdout,
    stderr: shown.stderr,
    timed_out: run.timedOut,
    output_truncated: run.outputTruncated,
    duration_ms: run.durationMs,
    failure: run.failure,
    input_sha256: sha256HexOfText(args.code!),
    // Of what the caller gets: at fortress, the redacted output.
    output_sha256: outputDigest(shown),
    runtime: { ...code.sandbox.runtime },
    limits: {
      timeout_ms: limits.timeoutMs,
      cpu_seconds: limits.cpuSeconds,
      heap_mb: limits.heapMb,
      memory_mb: limits.memoryMb,
      max_output_bytes: limits.maxOutputBytes,
    },
    ...(fortress ? { redactions } : {}),
  };
  if (args.security_level !== "standard" || args.create_evidence) {
    data = await withEvidence(services, data, args, ctx);
  }
  return {
    data,
    text: run.failure === null
      ? `Program exited 0 in ${run.durationMs} ms: ${shown.stdout.slice(0, 500)}`
      : `Program failed: ${run.failure}`,
  };
}

/** Why secure_execute cannot run `args` here (no sandbox, no endpoint and no sampling, a model). */
function refusalOf(
  services: Pick<SecureExecuteServices, "code" | "chat" | "policy">,
  args: Input,
  client: Pick<ClientBridge, "capabilities"> | undefined,
): string | undefined {
  if (kindOf(args) === "prompt") {
    if (!services.chat.available) {
      // Without an endpoint, the prompt may go to the caller's own model (MCP sampling).
      if (client === undefined || !("sampling" in client.capabilities)) {
        return `secure_execute kind prompt refused: ${services.chat.reason}, and the client ` +
          "offers no MCP sampling";
      }
      const problem = samplingModelProblem(args, services.policy.execution.prompt);
      return problem !== undefined ? `secure_execute refused: ${problem}` : undefined;
    }
    const model = modelProblem(args, services.chat.client.settings);
    return model.problem !== undefined ? `secure_execute refused: ${model.problem}` : undefined;
  }
  return services.code.available ? undefined : `secure_execute refused: ${services.code.reason}`;
}

/**
 * Through sampling the client picks the model: a named one must be allowed, and fortress needs
 * an allowlist (the model that answered is checked against it afterwards).
 */
function samplingModelProblem(args: Input, settings: ChatSettings): string | undefined {
  if (args.security_level === "fortress" && settings.models.length === 0) {
    return "fortress prompts go only to allowlisted models, and policy execution.prompt.models " +
      "is empty";
  }
  if (
    args.model !== undefined && settings.models.length > 0 && !settings.models.includes(args.model)
  ) {
    return `model ${JSON.stringify(args.model.slice(0, 100))} is not in policy ` +
      "execution.prompt.models";
  }
  return undefined;
}

/** The prompt through the client's own model (MCP sampling; on 2026-07-28 as input_required). */
async function sampleCompletion(
  args: Input,
  ctx: ToolContext,
  prompt: string,
  settings: ChatSettings,
): Promise<ChatCompletion> {
  const maxTokens = Math.min(args.max_tokens ?? settings.max_tokens, settings.max_tokens);
  let reply: Record<string, unknown>;
  try {
    reply = await ctx.client!.request("sampling/createMessage", {
      messages: [{ role: "user", content: { type: "text", text: prompt } }],
      maxTokens,
      ...(args.model !== undefined ? { modelPreferences: { hints: [{ name: args.model }] } } : {}),
    });
  } catch (e) {
    if (e instanceof InputRequiredError) throw e;
    throw new ToolError(
      `Cannot complete the prompt through the client's model: ${
        String((e as Error)?.message ?? e).slice(0, 300)
      }`,
    );
  }
  const content = reply.content as { type?: string; text?: unknown } | undefined;
  if (content?.type !== "text" || typeof content.text !== "string") {
    throw new ToolError("The client's model answered something other than text");
  }
  const { model, input_tokens, output_tokens } = sampledUsage(reply);
  if (settings.models.length > 0 && !settings.models.includes(model)) {
    throw new ToolError(
      `The client's model ${JSON.stringify(model)} is not in policy execution.prompt.models`,
    );
  }
  const bytes = new TextEncoder().encode(content.text);
  const text = bytes.byteLength > settings.max_response_bytes
    ? new TextDecoder().decode(bytes.subarray(0, settings.max_response_bytes))
    : content.text;
  return {
    text,
    model,
    // What the client reports (0 when it reports nothing: MCP's result has no token field).
    inputTokens: input_tokens,
    outputTokens: output_tokens,
    finishReason: typeof reply.stopReason === "string" ? reply.stopReason : null,
  };
}

/** The model a prompt goes to, or why it may not. */
function modelProblem(
  args: Input,
  settings: ChatSettings,
): { model: string; problem?: undefined } | { model?: undefined; problem: string } {
  const model = args.model ?? settings.model;
  if (model === undefined) {
    return { problem: "no model named and no policy execution.prompt.model" };
  }
  if (args.security_level === "fortress" && settings.models.length === 0) {
    return {
      problem: "fortress prompts go only to allowlisted models, and policy " +
        "execution.prompt.models is empty",
    };
  }
  if (settings.models.length > 0 && !settings.models.includes(model)) {
    return {
      problem: `model ${JSON.stringify(model.slice(0, 100))} is not in policy ` +
        "execution.prompt.models",
    };
  }
  return { model };
}

/** Counts the findings of one redaction into `into`. */
function countInto(into: Record<string, number>, counts: Record<string, number | undefined>) {
  for (const [kind, n] of Object.entries(counts)) into[kind] = (into[kind] ?? 0) + (n ?? 0);
}

async function runPrompt(
  services: Pick<SecureExecuteServices, "chat" | "policy" | "ledger" | "receipts" | "executions">,
  args: Input,
  ctx: ToolContext,
) {
  const { chat } = services;
  const viaClient = !chat.available && ctx.client !== undefined &&
    "sampling" in ctx.client.capabilities;
  if (!chat.available && !viaClient) {
    throw new ToolError(`Cannot send the prompt: ${chat.reason}`);
  }
  const settings = chat.available ? chat.client.settings : services.policy.execution.prompt;
  // PII and secrets never leave, at any level (not even to the caller's own model).
  const outbound = redactText(args.prompt!);
  const promptRedactions: Record<string, number> = {};
  countInto(promptRedactions, outbound.counts);
  const started = performance.now();
  let completion: ChatCompletion;
  let endpoint: string;
  if (chat.available) {
    const picked = modelProblem(args, settings);
    if (picked.problem !== undefined) {
      throw new ToolError(`Cannot send the prompt: ${picked.problem}`);
    }
    endpoint = chat.client.endpoint;
    completion = await chat.client.complete({
      model: picked.model,
      prompt: outbound.text,
      ...(args.max_tokens !== undefined ? { maxTokens: args.max_tokens } : {}),
      signal: ctx.signal,
    });
  } else {
    const problem = samplingModelProblem(args, settings);
    if (problem !== undefined) throw new ToolError(`Cannot send the prompt: ${problem}`);
    endpoint = "mcp-sampling";
    completion = await sampleCompletion(args, ctx, outbound.text, settings);
  }
  const fortress = args.security_level === "fortress";
  const redactions: Record<string, number> = {};
  let response = completion.text;
  if (fortress) {
    const back = redactText(response);
    countInto(redactions, back.counts);
    response = back.text;
  }
  let data: Output = {
    execution_id: crypto.randomUUID(),
    kind: "prompt",
    security_level: args.security_level,
    status: "OK",
    response,
    model: completion.model,
    usage: { input_tokens: completion.inputTokens, output_tokens: completion.outputTokens },
    finish_reason: completion.finishReason,
    duration_ms: Math.round(performance.now() - started),
    failure: null,
    input_sha256: sha256HexOfText(outbound.text),
    output_sha256: digestJson({ model: completion.model, response }),
    runtime: { endpoint, model: completion.model },
    limits: {
      timeout_ms: settings.timeout_ms,
      max_tokens: Math.min(args.max_tokens ?? settings.max_tokens, settings.max_tokens),
      max_response_bytes: settings.max_response_bytes,
    },
    prompt_redactions: promptRedactions,
    ...(fortress ? { redactions } : {}),
  };
  if (args.security_level !== "standard" || args.create_evidence) {
    data = await withEvidence(services, data, args, ctx);
  }
  return {
    data,
    text: `${completion.model} answered (${completion.inputTokens} + ${completion.outputTokens} ` +
      `tokens): ${response.slice(0, 500)}`,
  };
}

/**
 * Seals the execution's evidence entry and, above standard, signs a receipt
 * naming that entry and indexes it for evidence_package.
 */
async function withEvidence(
  { ledger, receipts, executions }: Pick<
    SecureExecuteServices,
    "ledger" | "receipts" | "executions"
  >,
  data: Output,
  args: Input,
  ctx: ToolContext,
): Promise<Output> {
  const facts = {
    execution_id: data.execution_id,
    kind: data.kind,
    security_level: data.security_level,
    principal: ctx.principal,
    input_sha256: data.input_sha256,
    output_sha256: data.output_sha256,
    runtime: data.runtime,
    limits: data.limits,
  };
  const sealed = await ledger.append({
    type: "execution_evidence",
    ...facts,
    ...(data.exit_code !== undefined ? { exit_code: data.exit_code } : {}),
    ...(data.model !== undefined ? { model: data.model } : {}),
    ...(data.usage !== undefined ? { usage: data.usage } : {}),
    ...(data.prompt_redactions !== undefined ? { prompt_redactions: data.prompt_redactions } : {}),
    failure: data.failure,
    ...(args.label !== undefined ? { label: args.label } : {}),
    ...(args.case_id !== undefined ? { case_id: args.case_id } : {}),
    ...(data.redactions ? { redactions: data.redactions } : {}),
  });
  const evidence = { ...data, evidence_id: `vault:${sealed.index}` };
  if (args.security_level === "standard") return evidence;
  const note = await receipts.sign({
    ...facts,
    vault_index: sealed.index,
    vault_leaf_hash: sealed.leafHash,
    origin: ledger.origin,
    time: new Date().toISOString(),
  });
  await executions.put(ctx.principal, {
    execution_id: data.execution_id,
    vault_index: sealed.index,
    receipt: note,
    ...(args.case_id !== undefined ? { case_id: args.case_id } : {}),
  });
  return {
    ...evidence,
    receipt: { note, vault_index: sealed.index, vault_leaf_hash: sealed.leafHash },
  };
}

/** The services secure_execute uses: the code sandbox, the chat endpoint and its policy, the vault. */
export interface SecureExecuteServices {
  readonly code: CodeService;
  readonly chat: ChatService;
  readonly policy: Pick<Policy, "execution">;
  readonly ledger: Ledger;
  readonly receipts: ReceiptSigner;
  readonly executions: ExecutionStore;
}

/** What the execution family uses: secure_execute's services and the evidence chain's. */
export type ExecutionToolServices = SecureExecuteServices & EvidenceChainServices;

/**
 * secure_execute and the evidence-chain tools, given exactly the services they use (checked
 * here, when the tools are made).
 */
export function createExecutionTools(services: ExecutionToolServices): ToolDefinition[] {
  return [
    ...toolFamily("execution", ["code", "chat", "policy", "ledger", "receipts", "executions"], [
      secureExecuteTool,
    ])(services),
    ...createEvidenceChainTools(services),
  ];
}
