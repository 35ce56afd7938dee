/**
 * Retrying KV operations that fail for reasons that go away: SQLite's
 * "database is locked" when another process holds the write lock.
 */

/** True for errors worth retrying after a short pause. */
export function isTransientKvError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /database is locked|SQLITE_BUSY|busy/i.test(message);
}

/** How long transient KV errors are retried in all, by default. */
export const KV_RETRY_BUDGET_MS = 3_000;
/** The longest pause between two attempts: a lock is held for milliseconds, not seconds. */
const MAX_RETRY_DELAY_MS = 100;

/**
 * Runs `fn`, retrying transient KV errors with jittered exponential backoff (from `baseDelayMs`,
 * at most 100 ms apart) for up to `budgetMs` in all, then throwing the last. A time budget, not a
 * count: processes sharing one KV file under load can meet the write lock a dozen times in a row
 * (eight attempts, the earlier bound, was about 0.6 s and too few).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withKvRetry } from "./retry.ts";
 * const kv = await Deno.openKv(":memory:");
 * let tries = 0;
 * const value = await withKvRetry(() => {
 *   if (++tries < 3) throw new Error("database is locked");
 *   return kv.set(["a"], 1);
 * });
 * assert.equal(value.ok, true);
 * assert.equal(tries, 3);
 * kv.close();
 * ```
 */
export async function withKvRetry<T>(
  fn: () => Promise<T>,
  options: { budgetMs?: number; baseDelayMs?: number } = {},
): Promise<T> {
  const deadline = performance.now() + (options.budgetMs ?? KV_RETRY_BUDGET_MS);
  const base = options.baseDelayMs ?? 5;
  for (let i = 1;; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!isTransientKvError(e)) throw e;
      const delay = Math.min(MAX_RETRY_DELAY_MS, base * 2 ** Math.min(i - 1, 10)) *
        (0.5 + Math.random());
      if (performance.now() + delay > deadline) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
