/**
 * `serve --workers N`: N processes on one port and one KV file. The first
 * process binds the port with `SO_REUSEPORT` and starts N−1 copies of itself
 * on the bound port (Linux then spreads connections across them); each is a
 * whole Warden over the same KV, so sessions, holds, rate limits, governed
 * sessions and the vault stay consistent between them exactly as between
 * separate instances. The first process supervises the others: one that dies
 * is restarted with backoff; on SIGTERM/SIGINT they are stopped with it.
 *
 * Refused where it cannot work: with `:memory:` KV (not shared between
 * processes) and on Deno Deploy (no subprocesses).
 *
 * @module
 */
import type { Logger } from "../lib/mod.ts";

/** The environment variable that marks a worker started by the first process (its index). */
export const WORKER_INDEX_ENV = "WARDEN_WORKER_INDEX";

/** Why `--workers N` cannot run with this configuration, or undefined. */
export function workersRefusal(
  config: { workers: number; kvPath: string | undefined; onDeploy: boolean },
): string | undefined {
  if (config.workers <= 1) return undefined;
  if (config.onDeploy) {
    return "--workers: Deno Deploy runs no subprocesses; it scales by instances on its own";
  }
  if (config.kvPath === undefined || config.kvPath === ":memory:") {
    return "--workers needs a KV file (--kv FILE): a :memory: KV is not shared between processes";
  }
  return undefined;
}

/**
 * The command that starts this program again: the compiled binary itself, or
 * `deno run` with the permissions this process holds (never more), the
 * config file and the same main module.
 */
export async function selfCommand(): Promise<{ command: string; prefix: string[] }> {
  const exec = Deno.execPath();
  const main = Deno.mainModule;
  // A compiled binary's main module lives inside the binary.
  if (!main.startsWith("file:") || /deno-compile-/.test(main)) return { command: exec, prefix: [] };
  const flags: string[] = ["--no-prompt"];
  const granted = async (d: Deno.PermissionDescriptor) =>
    (await Deno.permissions.query(d)).state === "granted";
  for (const name of ["net", "read", "write", "env", "sys", "ffi"] as const) {
    if (await granted({ name } as Deno.PermissionDescriptor)) flags.push(`--allow-${name}`);
  }
  if (await granted({ name: "run" })) flags.push("--allow-run");
  else if (await granted({ name: "run", command: "bwrap" })) flags.push("--allow-run=bwrap");
  flags.push("--unstable-kv", "--unstable-net");
  return { command: exec, prefix: ["run", ...flags, new URL(main).pathname] };
}

/** `argv` with `--port` set to `port` (every spelling of an earlier --port removed). */
export function withPort(argv: readonly string[], port: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") {
      i++;
      continue;
    }
    if (a.startsWith("--port=")) continue;
    out.push(a);
  }
  return [...out, "--port", String(port)];
}

/** The supervised workers of the first process. */
export interface Workers {
  /** Process ids of the running workers (not the first process). */
  pids(): number[];
  /** Stops every worker (SIGTERM, then SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts workers 1…count−1 of `argv` on `port`, restarting any that exits
 * while not stopping (backoff 0.5 s doubling to 30 s; reset after a minute up).
 */
export async function startWorkers(options: {
  count: number;
  argv: readonly string[];
  port: number;
  logger: Logger;
}): Promise<Workers> {
  const { command, prefix } = await selfCommand();
  const args = [...prefix, ...withPort(options.argv, options.port)];
  const running = new Map<number, Deno.ChildProcess>();
  let stopping = false;

  function spawn(index: number, backoffMs: number): void {
    if (stopping) return;
    const startedAt = Date.now();
    const child = new Deno.Command(command, {
      args,
      env: { [WORKER_INDEX_ENV]: String(index) },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    running.set(index, child);
    child.status.then((status) => {
      if (running.get(index) === child) running.delete(index);
      if (stopping) return;
      const next = Date.now() - startedAt > 60_000 ? 500 : Math.min(backoffMs * 2, 30_000);
      options.logger.error("worker exited; restarting it", {
        worker: index,
        pid: child.pid,
        code: status.code,
        signal: status.signal,
        restart_in_ms: backoffMs,
      });
      setTimeout(() => spawn(index, next), backoffMs);
    });
  }
  for (let i = 1; i < options.count; i++) spawn(i, 500);
  return {
    pids: () => [...running.values()].map((c) => c.pid),
    async stop(graceMs = 10_000) {
      stopping = true;
      const children = [...running.values()];
      for (const c of children) {
        try {
          c.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      await Promise.all(children.map(async (c) => {
        const timer = setTimeout(() => {
          try {
            c.kill("SIGKILL");
          } catch { /* already gone */ }
        }, graceMs);
        await c.status;
        clearTimeout(timer);
      }));
    },
  };
}
