/**
 * The bubblewrap argv a stdio upstream runs under: every namespace unshared
 * (no network unless the upstream's `sandbox.network` grants it), the system
 * directories read-only, a private work dir of `sandbox.work_mb` MiB as HOME
 * and cwd, a /tmp and /dev/shm of `sandbox.tmp_mb` MiB each (all in memory,
 * gone with the process), and only the extra paths the configuration names.
 * Warden's KV, keys and home are not mounted, so an untrusted server cannot
 * read them.
 *
 * A minimal builder kept in the gateway until `src/execution/` offers one
 * shared with the shell sandbox.
 *
 * @module
 */
import type { UpstreamConfig } from "./manifest.ts";

/** MiB of the private /tmp (and of /dev/shm) unless the upstream's `sandbox.tmp_mb` says. */
export const DEFAULT_SANDBOX_TMP_MB = 64;
/** MiB of the work dir (HOME, cwd) unless the upstream's `sandbox.work_mb` says. */
export const DEFAULT_SANDBOX_WORK_MB = 128;
/** The work dir inside the sandbox. */
export const SANDBOX_WORK_DIR = "/work";

const SYSTEM_RO = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc/alternatives"];
const SYSTEM_FILES = ["/etc/ssl", "/etc/ca-certificates", "/etc/resolv.conf", "/etc/hosts"];

function resolveCommand(command: string, path: string): string {
  if (command.includes("/")) return Deno.realPathSync(command);
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const candidate = `${dir}/${command}`;
      if (Deno.statSync(candidate).isFile) return Deno.realPathSync(candidate);
    } catch {
      // not in this directory
    }
  }
  throw new TypeError(`Cannot sandbox stdio upstream: command "${command}" is not on PATH`);
}

/**
 * Returns the command, arguments and environment that run the upstream's
 * command inside bubblewrap.
 */
export function sandboxedCommand(
  config: UpstreamConfig,
): { command: string; args: string[]; env: Record<string, string> } {
  const path = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  const real = resolveCommand(config.command!, path);
  const sb = config.sandbox ?? {};
  const argv = ["--die-with-parent", "--new-session", "--unshare-all"];
  if (sb.network) argv.push("--share-net");
  for (const dir of SYSTEM_RO) argv.push("--ro-bind-try", dir, dir);
  for (const file of SYSTEM_FILES) argv.push("--ro-bind-try", file, file);
  // A tmpfs lives in memory and, unsized, may grow to half of it: /tmp and the /dev/shm of --dev
  // get a bound each, and /dev is made read-only (its device nodes stay usable).
  const tmpBytes = String((sb.tmp_mb ?? DEFAULT_SANDBOX_TMP_MB) * 1024 * 1024);
  argv.push("--proc", "/proc", "--dev", "/dev");
  argv.push("--size", tmpBytes, "--tmpfs", "/dev/shm", "--remount-ro", "/dev");
  argv.push("--size", tmpBytes, "--tmpfs", "/tmp");
  // The binary itself may live outside the system directories (an npx-installed deno).
  const binDir = real.slice(0, real.lastIndexOf("/")) || "/";
  argv.push("--ro-bind", binDir, binDir);
  for (const p of sb.read ?? []) argv.push("--ro-bind-try", p, p);
  for (const p of sb.write ?? []) argv.push("--bind-try", p, p);
  // The work dir (HOME and cwd) is a bounded tmpfs too. It was a host directory made per
  // connection: unbounded on the disk the KV may share, and never removed.
  const workBytes = String((sb.work_mb ?? DEFAULT_SANDBOX_WORK_MB) * 1024 * 1024);
  argv.push("--size", workBytes, "--tmpfs", SANDBOX_WORK_DIR, "--chdir", SANDBOX_WORK_DIR);
  argv.push("--", real, ...(config.args ?? []));
  return {
    command: "bwrap",
    args: argv,
    env: { ...(config.env ?? {}), HOME: SANDBOX_WORK_DIR },
  };
}
