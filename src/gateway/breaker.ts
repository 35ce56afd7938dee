/**
 * A circuit breaker per upstream: `failures` consecutive failures or timeouts
 * open it; after `coolDownMs` one call (or health probe) is let through
 * half-open; its success closes the breaker, its failure opens it again.
 * While open, callers are refused at once with the seconds left (F5 SABAR).
 *
 * @module
 */

/** The breaker's state as reported by `GET /api/servers` and check_vital. */
export interface BreakerSnapshot {
  readonly state: "closed" | "open" | "half_open";
  readonly consecutive_failures: number;
  readonly opened_at?: string;
  readonly retry_after_s?: number;
}

/**
 * Creates a breaker. `now` is injectable for tests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createBreaker } from "./breaker.ts";
 * let now = 0;
 * const breaker = createBreaker({ failures: 2, coolDownMs: 10_000, now: () => now });
 * breaker.begin()(false);
 * assert.equal(breaker.check().open, false);
 * breaker.begin()(false); // the second failure in a row opens it
 * assert.deepEqual(breaker.check(), { open: true, retryAfterS: 10 });
 * now += 10_000; // cooled down: half-open, the next call is the probe
 * assert.equal(breaker.snapshot().state, "half_open");
 * breaker.begin()(true); // the probe succeeded
 * assert.equal(breaker.snapshot().state, "closed");
 * ```
 */
export function createBreaker(
  options: { failures?: number; coolDownMs?: number; now?: () => number } = {},
) {
  const threshold = options.failures ?? 3;
  const coolDownMs = options.coolDownMs ?? 10_000;
  const now = options.now ?? Date.now;
  let failures = 0;
  let openedAt: number | undefined;
  let probing = false;

  function retryAfterS(): number {
    return Math.max(1, Math.ceil(((openedAt ?? now()) + coolDownMs - now()) / 1000));
  }

  return {
    /** Whether a call may go to the upstream now. */
    check(): { open: boolean; retryAfterS?: number } {
      if (openedAt === undefined) return { open: false };
      if (now() - openedAt < coolDownMs || probing) {
        return { open: true, retryAfterS: retryAfterS() };
      }
      return { open: false }; // half-open: the next call is the probe
    },
    /** Marks a call as started; call the returned function with its success. */
    begin(): (ok: boolean) => void {
      const halfOpen = openedAt !== undefined && now() - openedAt >= coolDownMs;
      if (halfOpen) probing = true;
      return (ok) => {
        if (halfOpen) probing = false;
        if (ok) {
          failures = 0;
          openedAt = undefined;
          return;
        }
        failures++;
        if (halfOpen || failures >= threshold) openedAt = now();
      };
    },
    snapshot(): BreakerSnapshot {
      const state = openedAt === undefined
        ? "closed"
        : now() - openedAt >= coolDownMs && !probing
        ? "half_open"
        : "open";
      return {
        state,
        consecutive_failures: failures,
        ...(openedAt !== undefined
          ? { opened_at: new Date(openedAt).toISOString(), retry_after_s: retryAfterS() }
          : {}),
      };
    },
  };
}
