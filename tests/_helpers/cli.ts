/** Runs the real CLI (`deno run -A main.ts …`) to completion. */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Exit code and decoded output of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts` with `args`; stdin is closed so a command can never wait on it. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Like `runCli`, but kills the process after `ms` (a start-up refusal that
 * regresses into a server that keeps serving must fail the test, not hang it).
 */
export async function runCliWithin(
  args: string[],
  env: Record<string, string>,
  ms: number,
): Promise<CliResult & { killed: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, ms);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      killed,
    };
  } finally {
    clearTimeout(timer);
  }
}
