/**
 * Retrying KV operations that fail for reasons that go away: SQLite's
 * "database is locked" when another process holds the write lock.
 */

/** True for errors worth retrying after a short pause. */
export function isTransientKvError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /database is locked|SQLITE_BUSY|busy/i.test(message);
}

/**
 * Runs `fn`, retrying transient KV errors with jittered exponential backoff.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * await withKvRetry(() => kv.set(["a"], 1));
 * ```
 */
export async function withKvRetry<T>(
  fn: () => Promise<T>,
  options: { attempts?: number; baseDelayMs?: number } = {},
): Promise<T> {
  const attempts = options.attempts ?? 8;
  const base = options.baseDelayMs ?? 5;
  for (let i = 1;; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isTransientKvError(e)) throw e;
      const delay = base * 2 ** (i - 1) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
