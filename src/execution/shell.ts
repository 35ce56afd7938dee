/**
 * The shell sandbox behind `eureka_forge`'s `command`: every command runs in
 * bubblewrap (`bwrap`) with
 *
 * - a read-only root that holds nothing but the system's `/usr` (and the
 *   `/bin`, `/lib*`, `/sbin` links or directories beside it) — no `/etc`, no
 *   home, no KV, no keys, no file roots — plus the read-only `mounts` policy
 *   names;
 * - a private, size-capped, writable `/work` (tmpfs, the command's cwd and
 *   HOME) and `/tmp`, both gone when the command ends;
 * - new user, PID, network, IPC, UTS and cgroup namespaces: it runs as
 *   `nobody`, sees only its own processes, and has no network but its own
 *   loopback;
 * - a cleared environment (PATH, HOME, TMPDIR, LANG only);
 * - CPU, address-space, file-size, open-file and process limits set with
 *   `prlimit` inside the sandbox, and a wall-clock deadline after which the
 *   whole sandbox is killed (the PID namespace dies with its first process,
 *   so nothing the command started survives it);
 * - stdout and stderr each capped; a command that writes more is killed.
 *
 * Pattern matching on the command text is advisory only; this sandbox is the
 * boundary.
 *
 * @module
 */

import { isAbsolute, resolve, sep as SEPARATOR } from "node:path";
import { type ProcessResult, watchChild } from "./_child.ts";

/** The limits one command runs under. */
export interface ShellLimits {
  /** Wall-clock time before the sandbox is killed. */
  readonly timeoutMs: number;
  /** CPU seconds (RLIMIT_CPU). */
  readonly cpuSeconds: number;
  /** Bytes kept of stdout and of stderr each; more kills the command. */
  readonly maxOutputBytes: number;
  /** Address space per process (RLIMIT_AS). */
  readonly memoryBytes: number;
  /** Size of the writable /work (and the largest file, RLIMIT_FSIZE). */
  readonly workDirBytes: number;
  /** Processes (RLIMIT_NPROC; not enforced by the kernel when Warden runs as root). */
  readonly maxProcesses: number;
}

/** What the sandbox is built from. */
export interface ShellSandboxOptions {
  readonly limits: ShellLimits;
  /** Host directories or files made visible read-only, at the same path. */
  readonly mounts?: readonly string[];
  /** Host paths that must never be visible (KV file, keys, file roots not mounted). */
  readonly protectedPaths?: readonly string[];
  /** The bwrap executable; default "bwrap" on PATH. */
  readonly bwrap?: string;
}

/** What one command did. */
export type ShellResult = ProcessResult;

/** A sandbox ready to run commands. */
export interface ShellSandbox {
  /** The limits every command runs under. */
  readonly limits: ShellLimits;
  /** Runs `command` with `/bin/sh -c` inside the sandbox. Never throws for the command's own failure. */
  run(command: string, options?: { signal?: AbortSignal }): Promise<ShellResult>;
}

/**
 * The sandbox cannot be set up here: bwrap is missing or cannot create its
 * namespaces, or a mount would expose a protected path. The message says
 * what to install or change.
 */
export class SandboxUnavailableError extends Error {
  override name = "SandboxUnavailableError";
}

const INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install -y bubblewrap; " +
  "Fedora: dnf install bubblewrap; Alpine: apk add bubblewrap)";

/** Directories of the host's system that the sandbox sees, read-only. */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

function isInside(path: string, dir: string): boolean {
  if (path === dir) return true;
  const prefix = dir.endsWith(SEPARATOR) ? dir : dir + SEPARATOR;
  return path.startsWith(prefix);
}

async function realOrResolved(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return resolve(path);
  }
}

/** `--ro-bind` or `--symlink` arguments for the system directories that exist. */
async function systemArgs(): Promise<{ args: string[]; visible: string[] }> {
  const args: string[] = [];
  const visible: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(dir);
    } catch {
      continue;
    }
    if (info.isSymlink) {
      // Merged /usr: /bin -> usr/bin. Recreate the link; its target is bound already.
      args.push("--symlink", await Deno.readLink(dir), dir);
    } else if (info.isDirectory) {
      args.push("--ro-bind", dir, dir);
      visible.push(await realOrResolved(dir));
    }
  }
  return { args, visible };
}

/**
 * Refuses mounts that would expose a protected path: a protected path inside
 * a visible directory, or a mount inside a protected directory.
 */
function checkExposure(visible: readonly string[], protectedPaths: readonly string[]): void {
  for (const secret of protectedPaths) {
    for (const dir of visible) {
      if (isInside(secret, dir) || isInside(dir, secret)) {
        throw new SandboxUnavailableError(
          `Cannot enable the shell: the sandbox would expose ${secret} (through ${dir}); ` +
            `move it out of ${dir} or drop the mount from policy shell.mounts`,
        );
      }
    }
  }
}

function validateLimits(limits: ShellLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`shell limit ${name} must be a positive integer, got ${value}`);
    }
  }
}

/**
 * Builds the sandbox and proves it works by running a probe command in it.
 * Throws `SandboxUnavailableError` naming what to install when bwrap is
 * missing or cannot create namespaces here (e.g. a container whose seccomp
 * profile forbids them), and when a mount would expose a protected path.
 *
 * @example
 * ```ts
 * import { createShellSandbox } from "./shell.ts";
 * const sandbox = await createShellSandbox({
 *   limits: { timeoutMs: 5000, cpuSeconds: 5, maxOutputBytes: 65536, memoryBytes: 512 << 20,
 *     workDirBytes: 64 << 20, maxProcesses: 64 },
 * });
 * const result = await sandbox.run("echo hi > f && cat f");
 * result.stdout; // "hi\n"
 * ```
 */
// Kept whole: the sandbox's bubblewrap argument list is built once, in order, from the limits;
// split, the mount order (which decides what is visible) would be spread over helpers.
export async function createShellSandbox(options: ShellSandboxOptions): Promise<ShellSandbox> {
  const { limits } = options;
  validateLimits(limits);
  const bwrap = options.bwrap ?? "bwrap";
  const system = await systemArgs();
  const mountArgs: string[] = [];
  const visible = [...system.visible];
  for (const mount of options.mounts ?? []) {
    if (!isAbsolute(mount)) {
      throw new SandboxUnavailableError(
        `Cannot enable the shell: policy shell.mounts entry ${
          JSON.stringify(mount)
        } is not absolute`,
      );
    }
    let real: string;
    try {
      real = await Deno.realPath(mount);
    } catch {
      throw new SandboxUnavailableError(
        `Cannot enable the shell: policy shell.mounts entry ${mount} does not exist`,
      );
    }
    // Mounted after /tmp's tmpfs, so a mount below /tmp is visible; these would hide the sandbox.
    if (
      real === "/" || real === "/tmp" || ["/work", "/proc", "/dev"].some((d) => isInside(real, d))
    ) {
      throw new SandboxUnavailableError(
        `Cannot enable the shell: policy shell.mounts entry ${mount} would shadow the sandbox's ${real}`,
      );
    }
    mountArgs.push("--ro-bind", real, real);
    visible.push(real);
  }
  const protectedPaths = await Promise.all((options.protectedPaths ?? []).map(realOrResolved));
  checkExposure(visible, protectedPaths);

  const baseArgs = [
    "--unshare-all", // user, pid, net, ipc, uts, cgroup namespaces
    "--unshare-user",
    // No user namespace inside: in one, the command is root over a mount namespace of its own and
    // mounts a tmpfs of any size (host memory), past every size limit below.
    "--disable-userns",
    "--uid",
    "65534",
    "--gid",
    "65534",
    "--hostname",
    "sandbox",
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--setenv",
    "PATH",
    "/usr/local/bin:/usr/bin:/bin",
    "--setenv",
    "HOME",
    "/work",
    "--setenv",
    "TMPDIR",
    "/tmp",
    "--setenv",
    "LANG",
    "C.UTF-8",
    ...system.args,
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    // --dev's /dev is a writable tmpfs of half the host's memory: files written there or in its
    // /dev/shm escaped the work dir's size limit (and filled RAM). /dev/shm gets a bounded tmpfs
    // of its own and /dev itself is made read-only (its device nodes stay usable).
    "--size",
    String(Math.min(limits.workDirBytes, 16 * 1024 * 1024)),
    "--tmpfs",
    "/dev/shm",
    "--remount-ro",
    "/dev",
    "--size",
    String(limits.workDirBytes),
    "--tmpfs",
    "/work",
    "--size",
    String(Math.min(limits.workDirBytes, 16 * 1024 * 1024)),
    "--tmpfs",
    "/tmp",
    ...mountArgs,
    "--remount-ro",
    "/",
    "--chdir",
    "/work",
    "--",
    "prlimit",
    `--cpu=${limits.cpuSeconds}`,
    `--as=${limits.memoryBytes}`,
    `--fsize=${limits.workDirBytes}`,
    "--nofile=256",
    `--nproc=${limits.maxProcesses}`,
    "--core=0",
    "--",
    "/bin/sh",
    "-c",
  ];

  async function run(command: string, runOptions: { signal?: AbortSignal } = {}) {
    if (typeof command !== "string") throw new TypeError("command must be a string");
    const started = performance.now();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(bwrap, {
        args: [...baseArgs, command],
        clearEnv: true,
        env: {},
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new SandboxUnavailableError(
          `Cannot run the shell: ${bwrap} not found; ${INSTALL_HINT}`,
        );
      }
      throw e;
    }
    // SIGKILL to bwrap: --die-with-parent kills the sandbox's first process, and with it the
    // whole PID namespace.
    const { cancelled: _, ...result } = await watchChild(child, {
      timeoutMs: limits.timeoutMs,
      maxOutputBytes: limits.maxOutputBytes,
      started,
      ...(runOptions.signal ? { signal: runOptions.signal } : {}),
    });
    return result;
  }

  // Prove the sandbox can be built here before anyone relies on it.
  let probe: ShellResult;
  try {
    probe = await run("echo sandbox-ok");
  } catch (e) {
    if (e instanceof SandboxUnavailableError) {
      throw new SandboxUnavailableError(
        `Cannot enable the shell (policy shell.enabled): ${bwrap} was not found; ${INSTALL_HINT}`,
      );
    }
    throw e;
  }
  if (probe.exitCode !== 0 || probe.stdout !== "sandbox-ok\n") {
    throw new SandboxUnavailableError(
      `Cannot enable the shell (policy shell.enabled): ${bwrap} cannot create its sandbox here ` +
        `(${probe.stderr.trim().slice(0, 300) || `exit ${probe.exitCode}`}); it needs user ` +
        `namespaces (in Docker: run with --security-opt seccomp=unconfined or a profile allowing ` +
        `clone/unshare of namespaces) and prlimit (util-linux); ${INSTALL_HINT}`,
    );
  }
  return { limits, run };
}
