/**
 * Rate and concurrency accounting for F5, per process: two one-minute
 * buckets give a sliding-window estimate without touching KV on the hot path.
 * (Limits are per instance; shared accounting across instances belongs to the
 * usage store of the access-and-accounting work.)
 */
import type { RateFacts } from "./types.ts";

interface Window {
  start: number;
  current: number;
  previous: number;
}

/** Counts calls per principal and per tool, and calls in flight per principal. */
export interface RateLimiter {
  /** The counters as they stand before this call (what F5 judges). */
  snapshot(principal: string, tool: string): RateFacts;
  /** Marks a call as admitted; call the returned function when it finishes. */
  admit(principal: string, tool: string): () => void;
  /** Calls admitted in the last minute, all principals (for check_vital). */
  callsLastMinute(): number;
}

const MINUTE = 60_000;

/**
 * Creates a limiter. `now` is injectable for tests.
 *
 * @example
 * ```ts
 * const rates = createRateLimiter();
 * const done = rates.admit("alice", "calculate");
 * rates.snapshot("alice", "calculate").principalInFlight; // 1
 * done();
 * ```
 */
export function createRateLimiter(options: { now?: () => number } = {}): RateLimiter {
  const now = options.now ?? Date.now;
  const principals = new Map<string, Window>();
  const tools = new Map<string, Window>();
  const global: Window = { start: 0, current: 0, previous: 0 };
  const inFlight = new Map<string, number>();

  function roll(w: Window, t: number): Window {
    const bucket = Math.floor(t / MINUTE) * MINUTE;
    if (bucket !== w.start) {
      w.previous = bucket - w.start === MINUTE ? w.current : 0;
      w.current = 0;
      w.start = bucket;
    }
    return w;
  }

  function estimate(w: Window | undefined, t: number): number {
    if (!w) return 0;
    roll(w, t);
    // Weight the previous minute by how much of it still lies in the window.
    const overlap = 1 - (t - w.start) / MINUTE;
    return Math.floor(w.current + w.previous * overlap);
  }

  function secondsToRelief(t: number): number {
    return Math.max(1, Math.ceil((MINUTE - (t % MINUTE)) / 1000));
  }

  function window(map: Map<string, Window>, key: string): Window {
    let w = map.get(key);
    if (!w) {
      w = { start: 0, current: 0, previous: 0 };
      map.set(key, w);
      // Bound memory: forget the oldest keys when a flood of principals/tools appears.
      if (map.size > 100_000) map.delete(map.keys().next().value!);
    }
    return w;
  }

  return {
    snapshot(principal, tool) {
      const t = now();
      return {
        principalCallsLastMinute: estimate(principals.get(principal), t),
        toolCallsLastMinute: estimate(tools.get(tool), t),
        principalInFlight: inFlight.get(principal) ?? 0,
        retryAfterS: secondsToRelief(t),
      };
    },
    admit(principal, tool) {
      const t = now();
      roll(window(principals, principal), t).current++;
      roll(window(tools, tool), t).current++;
      roll(global, t).current++;
      inFlight.set(principal, (inFlight.get(principal) ?? 0) + 1);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const n = (inFlight.get(principal) ?? 1) - 1;
        if (n <= 0) inFlight.delete(principal);
        else inFlight.set(principal, n);
      };
    },
    callsLastMinute() {
      return estimate(global, now());
    },
  };
}
