/**
 * Runs published npm clients the way users do: through `npx` when Node is
 * installed, otherwise through Deno's npm support, so the suite works on a
 * machine that has only one of the two.
 */

let npxAvailable: boolean | undefined;

async function hasNpx(): Promise<boolean> {
  if (npxAvailable === undefined) {
    try {
      const out = await new Deno.Command("npx", {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      npxAvailable = out.success;
    } catch {
      npxAvailable = false;
    }
  }
  return npxAvailable;
}

/** The command and arguments that run `pkg`'s binary with `args`. */
export async function npmBinary(
  pkg: string,
  args: string[],
): Promise<{ command: string; args: string[] }> {
  if (await hasNpx()) return { command: "npx", args: ["-y", pkg, ...args] };
  return { command: Deno.execPath(), args: ["run", "-A", "--no-lock", `npm:${pkg}`, ...args] };
}

/** Runs a command to completion with a deadline; returns code and decoded output. */
export async function runWithTimeout(
  cmd: { command: string; args: string[] },
  options: { env?: Record<string, string>; cwd?: string; timeoutMs: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd.command, {
    args: cmd.args,
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }, options.timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
