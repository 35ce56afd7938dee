/**
 * `secure_execute` (SPEC §5 "Evidence chain"): a governed execution of
 * untrusted code — a thin adapter over the code sandbox in
 * `src/execution/code.ts`. The vault records digests and sizes of the code
 * and of what it printed, never the text itself.
 *
 * @module
 */
import { z } from "zod";
import {
  type CodeResult,
  CodeSandboxBusyError,
  CodeSandboxUnavailableError,
} from "../execution/mod.ts";
import { digestJson, sha256HexOfText } from "../vault/mod.ts";
import { defineTool, ToolError } from "./tool.ts";

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
  prompt: z.string().min(1).max(100_000).optional().describe("The prompt (kind prompt)."),
  security_level: z.enum(["standard"]).default("standard").describe(
    "standard: governed like any tool call.",
  ),
  label: z.string().max(200).optional().describe("A label recorded with the execution."),
  case_id: z.string().max(200).optional().describe("A case the execution belongs to."),
}).refine((a) => (a.code === undefined) !== (a.prompt === undefined), {
  message: "give exactly one of code or prompt",
}).refine((a) => a.kind === undefined || (a.kind === "code") === (a.code !== undefined), {
  message: "kind code takes `code`, kind prompt takes `prompt`",
});

const outputSchema = z.object({
  execution_id: z.string(),
  kind: z.enum(["code", "prompt"]),
  security_level: z.string(),
  status: z.enum(["OK", "ERROR"]).describe("OK when the program exited 0."),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  timed_out: z.boolean(),
  output_truncated: z.boolean(),
  duration_ms: z.number(),
  failure: z.string().nullable().describe("Why the program did not finish normally."),
  input_sha256: z.string().describe("SHA-256 of the code as UTF-8."),
  output_sha256: z.string().describe(
    "SHA-256 of the canonical JSON of {exit_code, signal, stdout, stderr}.",
  ),
  runtime: z.record(z.string(), z.string()),
  limits: z.record(z.string(), z.number()),
});

type Input = z.infer<typeof inputSchema>;
type Output = z.infer<typeof outputSchema>;

function kindOf(args: Input): "code" | "prompt" {
  return args.code !== undefined ? "code" : "prompt";
}

/** The `secure_execute` tool. */
export const secureExecuteTool = defineTool({
  name: "secure_execute",
  title: "Secure execute",
  description: "Run untrusted JavaScript or TypeScript (kind code) in a separate Deno process " +
    "with no permissions — no files (not even by import), network, environment, subprocesses " +
    "or FFI — under a V8 heap limit, a process memory limit, CPU and wall-clock limits and an " +
    "output cap; returns what it printed, its exit status and why it failed. Governed like any " +
    "tool call; the vault records digests of the code and the output, not their text.",
  inputSchema,
  outputSchema,
  annotations: {
    readOnlyHint: false,
    // Nothing the program does outlives its process: it has no permission to change anything.
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: false,
  },
  refusal(args, services) {
    if (kindOf(args) === "prompt") {
      return "secure_execute kind prompt refused: no chat endpoint is configured on this server";
    }
    return services.code.available ? undefined : `secure_execute refused: ${services.code.reason}`;
  },
  recordArguments: (args) => ({
    kind: kindOf(args),
    security_level: args.security_level,
    ...(args.code !== undefined
      ? {
        language: args.language,
        code_sha256: sha256HexOfText(args.code),
        code_bytes: new TextEncoder().encode(args.code).byteLength,
      }
      : {}),
    ...(args.label !== undefined ? { label: args.label } : {}),
    ...(args.case_id !== undefined ? { case_id: args.case_id } : {}),
  }),
  recordResult: (data) => {
    const { stdout, stderr, ...rest } = data;
    return {
      ...rest,
      stdout_bytes: new TextEncoder().encode(stdout).byteLength,
      stderr_bytes: new TextEncoder().encode(stderr).byteLength,
    };
  },
  async handler(args, ctx) {
    const code = ctx.services.code;
    if (!code.available) throw new ToolError(`Cannot run the code: ${code.reason}`);
    let run: CodeResult;
    try {
      run = await code.sandbox.run(args.code!, { language: args.language, signal: ctx.signal });
    } catch (e) {
      if (
        e instanceof CodeSandboxBusyError || e instanceof CodeSandboxUnavailableError ||
        e instanceof RangeError
      ) {
        throw new ToolError(`Cannot run the code: ${e.message}`);
      }
      throw e;
    }
    const data: Output = {
      execution_id: crypto.randomUUID(),
      kind: "code",
      security_level: args.security_level,
      status: run.exitCode === 0 ? "OK" : "ERROR",
      exit_code: run.exitCode,
      signal: run.signal,
      stdout: run.stdout,
      stderr: run.stderr,
      timed_out: run.timedOut,
      output_truncated: run.outputTruncated,
      duration_ms: run.durationMs,
      failure: run.failure,
      input_sha256: sha256HexOfText(args.code!),
      output_sha256: outputDigest(run),
      runtime: { ...code.sandbox.runtime },
      limits: {
        timeout_ms: code.sandbox.limits.timeoutMs,
        cpu_seconds: code.sandbox.limits.cpuSeconds,
        heap_mb: code.sandbox.limits.heapMb,
        memory_mb: code.sandbox.limits.memoryMb,
        max_output_bytes: code.sandbox.limits.maxOutputBytes,
      },
    };
    return {
      data,
      text: run.failure === null
        ? `Program exited 0 in ${run.durationMs} ms: ${run.stdout.slice(0, 500)}`
        : `Program failed: ${run.failure}`,
    };
  },
});

/** The evidence-chain tools. */
export const executionTools = [secureExecuteTool];
