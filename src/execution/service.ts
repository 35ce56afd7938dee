/**
 * The shell as a service: either a working sandbox, or the reason there is
 * none (disabled by policy, Deno Deploy). A missing or broken bwrap with the
 * shell enabled is a start-up error, never a silent fallback to an
 * unsandboxed shell.
 *
 * @module
 */

import { createShellSandbox, type ShellSandbox } from "./shell.ts";

/** What the tools see: a sandbox, or why commands are refused. */
export type ShellService =
  | { readonly available: true; readonly sandbox: ShellSandbox }
  | { readonly available: false; readonly reason: string };

/** The policy's `shell` section, as far as the sandbox reads it. */
export interface ShellSettings {
  readonly enabled: boolean;
  readonly timeout_ms: number;
  readonly cpu_seconds?: number;
  readonly max_output_bytes: number;
  readonly memory_mb: number;
  readonly work_dir_mb: number;
  readonly max_processes: number;
  readonly mounts: readonly string[];
}

/**
 * Opens the shell service. Disabled → unavailable with a reason naming
 * `shell.enabled`; on Deno Deploy → unavailable (no subprocesses there);
 * enabled → the sandbox is built and probed, and `SandboxUnavailableError`
 * (saying what to install) propagates to stop start-up.
 *
 * @example
 * ```ts
 * import { openShell } from "./service.ts";
 * const shell = await openShell({ settings: { enabled: false, timeout_ms: 10000,
 *   max_output_bytes: 65536, memory_mb: 512, work_dir_mb: 64, max_processes: 64, mounts: [] } });
 * shell.available; // false
 * ```
 */
export async function openShell(options: {
  readonly settings: ShellSettings;
  readonly onDeploy?: boolean;
  readonly protectedPaths?: readonly string[];
  readonly bwrap?: string;
}): Promise<ShellService> {
  const { settings } = options;
  if (!settings.enabled) {
    return {
      available: false,
      reason: "shell commands are disabled by policy (shell.enabled is false)",
    };
  }
  if (options.onDeploy) {
    return {
      available: false,
      reason: "shell commands cannot run on Deno Deploy (it has no subprocesses); " +
        "policy shell.enabled is ignored there",
    };
  }
  const sandbox = await createShellSandbox({
    limits: {
      timeoutMs: settings.timeout_ms,
      cpuSeconds: settings.cpu_seconds ?? Math.max(1, Math.ceil(settings.timeout_ms / 1000)),
      maxOutputBytes: settings.max_output_bytes,
      memoryBytes: settings.memory_mb * 1024 * 1024,
      workDirBytes: settings.work_dir_mb * 1024 * 1024,
      maxProcesses: settings.max_processes,
    },
    mounts: settings.mounts,
    protectedPaths: options.protectedPaths,
    ...(options.bwrap ? { bwrap: options.bwrap } : {}),
  });
  return { available: true, sandbox };
}
