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
  type CodeResult,
  CodeSandboxBusyError,
  CodeSandboxUnavailableError,
} from "../execution/mod.ts";
import { redactText } from "../governance/mod.ts";
import { digestJson, sha256HexOfText } from "../vault/mod.ts";
import { evidenceChainTools } from "./evidence_chain.ts";
import { defineTool, type ToolContext, ToolError } from "./tool.ts";

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
  redactions: z.record(z.string(), z.number()).optional().describe(
    "fortress: PII and secret findings replaced in stdout/stderr, by kind.",
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
  assess: (args) =>
    // The one hold the sandbox leaves to a person: a fortress execution whose use cannot be undone.
    args.security_level === "fortress" && args.irreversible ? { destructiveHint: true } : {},
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
      data = await withEvidence(data, args, ctx);
    }
    return {
      data,
      text: run.failure === null
        ? `Program exited 0 in ${run.durationMs} ms: ${data.stdout.slice(0, 500)}`
        : `Program failed: ${run.failure}`,
    };
  },
});

/**
 * Seals the execution's evidence entry and, above standard, signs a receipt
 * naming that entry and indexes it for evidence_package.
 */
async function withEvidence(data: Output, args: Input, ctx: ToolContext): Promise<Output> {
  const { ledger, receipts, executions } = ctx.services;
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
    exit_code: data.exit_code,
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

/** The evidence-chain tools. */
export const executionTools = [secureExecuteTool, ...evidenceChainTools];
