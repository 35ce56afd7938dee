/**
 * The code sandbox behind `secure_execute` kind `code`: untrusted JavaScript
 * or TypeScript runs in its own `deno run` process, never in Warden's, with
 *
 * - no `--allow-*` flag and `--no-prompt`: every file, network, environment,
 *   subprocess, FFI and system call Deno guards fails with `NotCapable`;
 * - an import map sending every `file:` URL to an unreachable remote host, and
 *   `--no-remote --no-npm`: Deno loads local modules (even JSON and text
 *   imports, static or dynamic, from workers too) without read permission,
 *   so without the map `import x from "/etc/passwd" with { type: "text" }`
 *   would read any file Warden can read;
 * - `--no-config --no-lock`, cwd `/` and a cleared environment, so nothing of
 *   Warden's checkout, configuration or secrets is found or named;
 * - a V8 heap limit (`--max-old-space-size`), and `prlimit` setting
 *   RLIMIT_DATA (what ArrayBuffers outside the heap count against), RLIMIT_CPU
 *   and no core files;
 * - a wall-clock deadline after which the process is killed, and stdout and
 *   stderr each read into a fixed buffer: a process that writes more is killed.
 *
 * The source goes in on stdin (`deno run -`), so no file is written for it.
 * Deno Deploy has no subprocesses; there, and wherever Warden may not start
 * the runtime or prlimit, the sandbox is unavailable with the reason.
 *
 * @module
 */

import { type ProcessResult, watchChild } from "./_child.ts";

/** The limits one program runs under. */
export interface CodeLimits {
  /** Wall-clock time before the process is killed. */
  readonly timeoutMs: number;
  /** CPU seconds (RLIMIT_CPU). */
  readonly cpuSeconds: number;
  /** V8 old-space heap, in MiB. */
  readonly heapMb: number;
  /** The process's data segment (RLIMIT_DATA: heap, ArrayBuffers, the runtime itself), in MiB. */
  readonly memoryMb: number;
  /** Bytes kept of stdout and of stderr each; more kills the program. */
  readonly maxOutputBytes: number;
  /** Largest source accepted, in bytes. */
  readonly maxCodeBytes: number;
  /** Programs running at once in this process; more are refused. */
  readonly maxConcurrent: number;
}

/** The policy's `execution.code` section, as far as the sandbox reads it. */
export interface CodeSettings {
  readonly enabled: boolean;
  readonly timeout_ms: number;
  readonly cpu_seconds?: number;
  readonly heap_mb: number;
  readonly memory_mb: number;
  readonly max_output_bytes: number;
  readonly max_code_bytes: number;
  readonly max_concurrent: number;
  /** The deno executable; default the one running Warden. */
  readonly deno?: string;
}

/** Source languages the sandbox runs. */
export type CodeLanguage = "typescript" | "javascript";

/** What one program did. */
export interface CodeResult extends ProcessResult {
  /** Why the program did not finish normally, in one sentence; null when it exited 0. */
  readonly failure: string | null;
}

/** What the programs run on: recorded in receipts. */
export interface CodeRuntime {
  readonly deno: string;
  readonly v8: string;
  readonly typescript: string;
  readonly permissions: "none";
}

/** A sandbox ready to run programs. */
export interface CodeSandbox {
  readonly limits: CodeLimits;
  readonly runtime: CodeRuntime;
  /** Runs `code`; never throws for the program's own failure. */
  run(
    code: string,
    options?: { language?: CodeLanguage; signal?: AbortSignal },
  ): Promise<CodeResult>;
  /** Starts the runtime once (first call only) and says whether programs can run. */
  check(): Promise<{ ok: true } | { ok: false; reason: string }>;
}

/** What the tools see: a sandbox, or why programs are refused. */
export type CodeService =
  | { readonly available: true; readonly sandbox: CodeSandbox }
  | { readonly available: false; readonly reason: string };

/** The runtime cannot start here (probe failed): the message says why. */
export class CodeSandboxUnavailableError extends Error {
  override name = "CodeSandboxUnavailableError";
}

/** Too many programs are running already; try again later. */
export class CodeSandboxBusyError extends Error {
  override name = "CodeSandboxBusyError";
}

/**
 * Every `file:` module resolves to a host that can never be reached or
 * allowed: Deno refuses it ("Requires import access"), reading nothing.
 */
const BLOCKED_IMPORT_HOST = "local-files-cannot-be-imported.invalid";
const IMPORT_MAP = "data:application/json;base64," +
  btoa(JSON.stringify({ imports: { "file:///": `https://${BLOCKED_IMPORT_HOST}/` } }));

const PROBE = 'console.log("sandbox-ok")';

function validateLimits(limits: CodeLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`code limit ${name} must be a positive integer, got ${value}`);
    }
  }
}

function granted(command: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "run", command }).state === "granted";
  } catch {
    return false;
  }
}

/** Limits from the policy section. */
export function codeLimitsOf(settings: CodeSettings): CodeLimits {
  return {
    timeoutMs: settings.timeout_ms,
    cpuSeconds: settings.cpu_seconds ?? Math.max(1, Math.ceil(settings.timeout_ms / 1000)),
    heapMb: settings.heap_mb,
    memoryMb: settings.memory_mb,
    maxOutputBytes: settings.max_output_bytes,
    maxCodeBytes: settings.max_code_bytes,
    maxConcurrent: settings.max_concurrent,
  };
}

/**
 * Opens the code service. Disabled by policy, on Deno Deploy, in a compiled
 * binary without `execution.code.deno`, off Linux (no prlimit), or without
 * permission to start the runtime or prlimit → unavailable with the reason.
 * Otherwise a sandbox whose runtime is started once, on first use, to prove
 * it works under the limits.
 *
 * @example
 * ```ts
 * import { openCodeSandbox } from "./code.ts";
 * const code = openCodeSandbox({ settings: { enabled: true, timeout_ms: 5000, heap_mb: 128,
 *   memory_mb: 1024, max_output_bytes: 65536, max_code_bytes: 65536, max_concurrent: 2 } });
 * if (code.available) {
 *   const result = await code.sandbox.run("console.log(6 * 7)");
 *   result.stdout; // "42\n"
 * }
 * ```
 */
export function openCodeSandbox(options: {
  readonly settings: CodeSettings;
  readonly onDeploy?: boolean;
  readonly prlimit?: string;
}): CodeService {
  const { settings } = options;
  if (!settings.enabled) {
    return {
      available: false,
      reason: "code execution is disabled by policy (execution.code.enabled is false)",
    };
  }
  if (options.onDeploy) {
    return {
      available: false,
      reason: "code cannot run on Deno Deploy (it has no subprocesses to isolate a program in)",
    };
  }
  if (Deno.build.os !== "linux") {
    return {
      available: false,
      reason:
        `code execution needs Linux (prlimit sets its memory and CPU limits); this is ${Deno.build.os}`,
    };
  }
  const standalone = (Deno.build as { standalone?: boolean }).standalone === true;
  if (standalone && settings.deno === undefined) {
    return {
      available: false,
      reason: "a compiled warden binary has no deno runtime to run code with; " +
        "set policy execution.code.deno to a deno executable",
    };
  }
  const deno = settings.deno ?? Deno.execPath();
  const prlimit = options.prlimit ?? "prlimit";
  for (const command of [deno, prlimit]) {
    if (!granted(command)) {
      return {
        available: false,
        reason: `Warden may not start ${command}: run it with --allow-run=${prlimit},${deno} ` +
          "(the program itself still gets no permissions)",
      };
    }
  }
  return {
    available: true,
    sandbox: createCodeSandbox({ limits: codeLimitsOf(settings), deno, prlimit }),
  };
}

/** The sandbox over a given runtime; `openCodeSandbox` is the usual entry. */
// Kept whole: the code sandbox's closures share the running count and the probe result.
export function createCodeSandbox(options: {
  readonly limits: CodeLimits;
  readonly deno: string;
  readonly prlimit?: string;
}): CodeSandbox {
  const { limits, deno } = options;
  validateLimits(limits);
  const prlimit = options.prlimit ?? "prlimit";
  let running = 0;
  let probed: Promise<{ ok: true } | { ok: false; reason: string }> | undefined;
  const encoder = new TextEncoder();

  function args(language: CodeLanguage): string[] {
    return [
      `--data=${limits.memoryMb * 1024 * 1024}`,
      `--cpu=${limits.cpuSeconds}`,
      "--core=0",
      "--",
      deno,
      "run",
      "--no-prompt",
      "--no-remote",
      "--no-npm",
      "--no-config",
      "--no-lock",
      `--import-map=${IMPORT_MAP}`,
      `--ext=${language === "javascript" ? "js" : "ts"}`,
      `--v8-flags=--max-old-space-size=${limits.heapMb}`,
      "-",
    ];
  }

  async function execute(
    code: string,
    language: CodeLanguage,
    signal?: AbortSignal,
  ): Promise<CodeResult> {
    const started = performance.now();
    const child = new Deno.Command(prlimit, {
      args: args(language),
      clearEnv: true,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      cwd: "/",
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // prlimit execs the runtime, so killing the child kills the program's own process.
    const { cancelled, ...result } = await watchChild(child, {
      timeoutMs: limits.timeoutMs,
      maxOutputBytes: limits.maxOutputBytes,
      started,
      ...(signal ? { signal } : {}),
      input: encoder.encode(code),
    });
    return { ...result, failure: describeFailure(result, limits, cancelled) };
  }

  function check(): Promise<{ ok: true } | { ok: false; reason: string }> {
    probed ??= execute(PROBE, "javascript").then((r) =>
      r.exitCode === 0 && r.stdout === "sandbox-ok\n" ? { ok: true as const } : {
        ok: false as const,
        reason: `the code sandbox cannot start its runtime under its limits (${
          (r.failure ?? r.stderr.trim()).slice(0, 300)
        }); raise policy execution.code.memory_mb if the runtime ran out of memory at start`,
      }
    ).catch((e) => ({
      ok: false as const,
      reason: e instanceof Deno.errors.NotFound
        ? `the code sandbox needs ${prlimit} (util-linux) and ${deno}; one was not found`
        : `the code sandbox cannot start: ${(e as Error).message}`,
    }));
    return probed;
  }

  return {
    limits,
    runtime: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      permissions: "none",
    },
    check,
    async run(code, runOptions = {}) {
      if (typeof code !== "string") throw new TypeError("code must be a string");
      const bytes = encoder.encode(code).byteLength;
      if (bytes > limits.maxCodeBytes) {
        throw new RangeError(
          `code is ${bytes} bytes; the limit is ${limits.maxCodeBytes} (policy execution.code.max_code_bytes)`,
        );
      }
      if (running >= limits.maxConcurrent) {
        throw new CodeSandboxBusyError(
          `${running} programs are running already (policy execution.code.max_concurrent); try again shortly`,
        );
      }
      running++;
      try {
        const ready = await check();
        if (!ready.ok) throw new CodeSandboxUnavailableError(ready.reason);
        return await execute(code, runOptions.language ?? "typescript", runOptions.signal);
      } finally {
        running--;
      }
    },
  };
}

const DENIED = /Requires (\w+) access(?: to ("[^"]*"|[^,\s]+))?/;
const OUT_OF_MEMORY = /out of memory|heap limit|Allocation failed - JavaScript heap/i;

/** One sentence naming why a run failed, from its status and what Deno wrote. */
function describeFailure(
  r: Omit<CodeResult, "failure">,
  limits: CodeLimits,
  cancelled: boolean,
): string | null {
  if (r.timedOut) return `killed after the ${limits.timeoutMs} ms wall-clock limit`;
  if (r.outputTruncated) {
    return `killed: it wrote more than ${limits.maxOutputBytes} bytes of output`;
  }
  if (cancelled) return "cancelled: the call was aborted";
  if (r.signal === "SIGXCPU" || (r.signal === "SIGKILL" && !OUT_OF_MEMORY.test(r.stderr))) {
    return `killed: over the ${limits.cpuSeconds} s CPU limit`;
  }
  if (OUT_OF_MEMORY.test(r.stderr)) {
    return `killed: out of memory (heap limit ${limits.heapMb} MiB, process limit ${limits.memoryMb} MiB)`;
  }
  if (
    /Array buffer allocation failed|Invalid typed array length|Array buffer too large/i.test(
      r.stderr,
    )
  ) {
    return `refused memory: the allocation is over the ${limits.memoryMb} MiB process limit`;
  }
  if (/A remote specifier was requested: .*--no-remote|npm specifiers? .*--no-npm/.test(r.stderr)) {
    return "permission denied: a program may not import local files or remote modules";
  }
  const denied = DENIED.exec(r.stderr);
  if (denied) {
    return denied[2]?.includes(BLOCKED_IMPORT_HOST)
      ? "permission denied: a program may not import local files or remote modules"
      : `permission denied: ${denied[1]} access to ${
        denied[2]
      } (the sandbox grants no permissions)`;
  }
  if (r.exitCode === 0) return null;
  if (r.exitCode === null) return `killed by ${r.signal}`;
  const first = r.stderr.split("\n").find((l) => l.trim() !== "")?.trim().slice(0, 300);
  return `exited with code ${r.exitCode}${first ? `: ${first}` : ""}`;
}
