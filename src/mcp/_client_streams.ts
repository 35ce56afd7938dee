/**
 * Places for long-lived streams, counted per client IP and per authenticated principal: what
 * keeps one client from holding every stream a process serves.
 *
 * @module
 */

/** A place taken; `release` gives it back (once, however often it is called). */
export interface StreamPlace {
  release(): void;
}

/** The counter {@link createClientStreams} makes. */
export interface ClientStreams {
  /**
   * Takes a place for a stream of `principal` from `clientIp`, or says why not: the client IP,
   * or the principal unless anonymous, already holds `maxPerClient` streams.
   */
  take(principal: string, clientIp?: string): StreamPlace | string;
  /** Streams open now. */
  readonly open: number;
}

/**
 * Creates the counter; `what` names the streams and the flag in a refusal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createClientStreams } from "./_client_streams.ts";
 * const streams = createClientStreams(1, "listen streams (--max-sse-per-client)");
 * const first = streams.take("alice", "10.0.0.1");
 * assert.equal(typeof first, "object");
 * assert.match(String(streams.take("alice", "10.0.0.2")), /holds 1 open listen streams/);
 * assert.equal(typeof streams.take("bob", "10.0.0.2"), "object");
 * (first as { release(): void }).release();
 * assert.equal(typeof streams.take("alice", "10.0.0.1"), "object");
 * ```
 */
export function createClientStreams(maxPerClient: number, what: string): ClientStreams {
  if (!(maxPerClient >= 1)) {
    throw new RangeError(`Cannot count ${what}: the maximum per client must be at least 1`);
  }
  const byIp = new Map<string, number>();
  const byPrincipal = new Map<string, number>();
  let open = 0;
  const add = (map: Map<string, number>, key: string, n: number) => {
    const next = (map.get(key) ?? 0) + n;
    if (next > 0) map.set(key, next);
    else map.delete(key);
  };
  return {
    get open() {
      return open;
    },
    take(principal, clientIp) {
      const ip = clientIp === undefined ? 0 : byIp.get(clientIp) ?? 0;
      const own = principal === "anonymous" ? 0 : byPrincipal.get(principal) ?? 0;
      if (ip >= maxPerClient || own >= maxPerClient) {
        return `this client holds ${Math.max(ip, own)} open ${what}, the maximum; close one first`;
      }
      if (clientIp !== undefined) add(byIp, clientIp, 1);
      if (principal !== "anonymous") add(byPrincipal, principal, 1);
      open++;
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          if (clientIp !== undefined) add(byIp, clientIp, -1);
          if (principal !== "anonymous") add(byPrincipal, principal, -1);
          open--;
        },
      };
    },
  };
}
