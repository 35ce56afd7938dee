/** Waiting for a condition, with a bound, instead of sleeping for a guessed time. */

/**
 * Calls `read` until `done(value)` holds or `timeoutMs` has passed, `intervalMs` apart, and
 * returns the last value read: the caller asserts on it, so a condition never met fails there
 * with the value in hand.
 */
export async function pollUntil<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

/** Waits until `cond()` is true; throws naming `what` if it is not within `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  if (!await pollUntil(cond, (ok) => ok, { ...options, timeoutMs })) {
    throw new Error(`${what}: not within ${timeoutMs} ms`);
  }
}
