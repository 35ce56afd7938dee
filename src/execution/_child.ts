/**
 * Watching a sandboxed child process to its end, the same way for the shell
 * and the code sandbox: a wall-clock deadline, the caller's signal, output
 * read into fixed buffers (a process that writes without end costs at most
 * `maxOutputBytes` here and is killed), and one `SIGKILL` for whichever of
 * those comes first.
 */

/** What one sandboxed process did (a shell command, a program). */
export interface ProcessResult {
  /** Exit code, or null when killed by a signal. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The wall-clock deadline killed it. */
  readonly timedOut: boolean;
  /** It wrote more than `maxOutputBytes` to stdout or stderr and was killed. */
  readonly outputTruncated: boolean;
  readonly durationMs: number;
}

/** How a watched process ended. */
export interface ChildOutcome extends ProcessResult {
  /** The caller's signal, not the deadline, killed it. */
  readonly cancelled: boolean;
}

/**
 * Waits for `child` (spawned with stdout and stderr piped, and stdin piped
 * when `input` is given) to end, killing it with `SIGKILL` at `timeoutMs`,
 * when `signal` aborts, or once it writes more than `maxOutputBytes` to
 * either stream. `started` is when the caller began (its `durationMs` counts
 * from there). Spawn `child` so that killing it ends the whole sandbox (bwrap
 * with --die-with-parent; prlimit, which execs the program).
 */
export async function watchChild(
  child: Deno.ChildProcess,
  options: {
    readonly timeoutMs: number;
    readonly maxOutputBytes: number;
    readonly started: number;
    readonly signal?: AbortSignal;
    /** Written to the child's stdin, which is then closed. */
    readonly input?: Uint8Array;
  },
): Promise<ChildOutcome> {
  const { signal, maxOutputBytes } = options;
  let killed = false;
  let timedOut = false;
  let cancelled = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  const onAbort = () => {
    cancelled = !timedOut;
    kill();
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    let fed: Promise<void> | undefined;
    if (options.input !== undefined) {
      const writer = child.stdin.getWriter();
      fed = writer.write(options.input).then(() => writer.close()).catch(() => {});
    }
    const [stdout, stderr, status] = await Promise.all([
      collect(child.stdout, maxOutputBytes, kill),
      collect(child.stderr, maxOutputBytes, kill),
      child.status,
      fed,
    ]);
    const decoder = new TextDecoder();
    return {
      exitCode: status.signal === null && !killed ? status.code : null,
      signal: status.signal ?? (killed ? "SIGKILL" : null),
      stdout: decoder.decode(stdout.bytes),
      stderr: decoder.decode(stderr.bytes),
      timedOut,
      outputTruncated: stdout.overflow || stderr.overflow,
      durationMs: Math.round(performance.now() - options.started),
      cancelled,
    };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Reads a stream into at most `max` bytes; calls `onOverflow` once when more arrives. */
export async function collect(
  stream: ReadableStream<Uint8Array>,
  max: number,
  onOverflow: () => void,
): Promise<{ bytes: Uint8Array; overflow: boolean }> {
  const out = new Uint8Array(max);
  let filled = 0;
  let overflow = false;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, max - filled);
      out.set(value.subarray(0, take), filled);
      filled += take;
      if (take < value.byteLength && !overflow) {
        overflow = true;
        onOverflow();
      }
    }
  } catch {
    // The process was killed mid-write; what was read stands.
  } finally {
    reader.releaseLock();
  }
  return { bytes: out.subarray(0, filled), overflow };
}
