/**
 * What F5 needs from a rate limiter, and nothing about how it counts: the
 * shared, KV-backed implementation lives in `src/usage/` (which may import
 * governance; governance never imports it). A limiter both judges and admits
 * in one step, so that two instances cannot both admit the last call a limit
 * allows.
 */
import type { RateFacts } from "./types.ts";

/** Who is calling what: the keys every limit is counted under. */
export interface RateSubject {
  readonly principal: string;
  readonly tool: string;
  /** The upstream server of a gateway tool (`<upstream>__<tool>`). */
  readonly upstream?: string;
  /** The client's address, for unauthenticated callers (limited per IP). */
  readonly clientIp?: string;
}

/**
 * The outcome of `acquire`: the facts F5 judges, and a release for the
 * concurrency slot (idempotent; also released by `using`).
 */
export interface Admission extends Disposable {
  readonly facts: RateFacts;
  /** True when every limit had room and the call was counted. */
  readonly admitted: boolean;
  /**
   * Frees the slot at once for this instance; resolves when other instances
   * see it too (the KV limiter's release may ride along a later commit, such
   * as the one sealing the call, so a caller need not wait for it).
   */
  release(): Promise<void>;
}

/** Counts calls against the policy's limits and budgets. */
export interface RateLimiter {
  /** The counters as they stand, counting nothing (dry runs: POST /judge, apex_judge). */
  snapshot(subject: RateSubject): Promise<RateFacts>;
  /**
   * Checks every limit and, when all have room, counts the call: one atomic
   * step. A refused call is not counted.
   */
  acquire(subject: RateSubject): Promise<Admission>;
  /** Calls admitted by this instance in the last minute (for check_vital). */
  callsLastMinute(): number;
}

/** A limiter that limits nothing (benchmarks of the floors alone, unit tests). */
export function createNoLimiter(): RateLimiter {
  const facts: RateFacts = {
    principalCallsLastMinute: 0,
    toolCallsLastMinute: 0,
    principalInFlight: 0,
    checks: [],
  };
  const admission: Admission = {
    facts,
    admitted: true,
    release: () => Promise.resolve(),
    [Symbol.dispose]() {},
  };
  return {
    snapshot: () => Promise.resolve(facts),
    acquire: () => Promise.resolve(admission),
    callsLastMinute: () => 0,
  };
}
