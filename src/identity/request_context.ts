/**
 * The HTTP request a tool call arrived on: the client's address and the
 * principal the edge authenticated. The HTTP edge sets it for the duration of
 * a request; the call path (accounting, governance's roles) reads it. Carried in an `AsyncLocalStorage` because a call
 * reaches the registry through the MCP SDK's transports, which pass no
 * per-request context of ours through.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Principal } from "./principal.ts";

/** What the edge knows about the request. */
export interface RequestContext {
  /** The client's IP: the socket's peer, or X-Forwarded-For from a trusted proxy. */
  readonly clientIp?: string;
  /** Who the edge authenticated the request as. */
  readonly principal?: Principal;
  /**
   * The caller's own OAuth access token, only so an upstream configured for
   * RFC 8693 token exchange can exchange it for a token of its own audience.
   * Never forwarded, logged or sealed.
   */
  readonly bearer?: string;
}

/** The caller's OAuth access token, for token exchange (see {@link RequestContext.bearer}). */
export function currentBearer(): string | undefined {
  return storage.getStore()?.bearer;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` with `context` visible to `currentRequest()` in everything it awaits. */
export function withRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The context of the request being served, if any (stdio calls have none). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** The request's principal when it is `id` (a call made under another name gets none). */
export function currentPrincipal(id: string): Principal | undefined {
  const p = currentRequest()?.principal;
  return p !== undefined && p.id === id ? p : undefined;
}

/**
 * The client IP of a request: the socket peer, unless that peer is a trusted
 * proxy, in which case the rightmost X-Forwarded-For address that is not
 * itself a trusted proxy.
 *
 * @example
 * ```ts
 * clientIpOf({ remote: "10.0.0.1", forwardedFor: "203.0.113.7, 10.0.0.2", trustedProxies: ["10.0.0.1", "10.0.0.2"] });
 * // "203.0.113.7"
 * ```
 */
export function clientIpOf(input: {
  remote: string | undefined;
  forwardedFor: string | null;
  trustedProxies: readonly string[];
}): string | undefined {
  const { remote, forwardedFor, trustedProxies } = input;
  if (remote === undefined || forwardedFor === null || !trustedProxies.includes(remote)) {
    return remote;
  }
  const hops = forwardedFor.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trustedProxies.includes(hops[i])) return hops[i].slice(0, 64);
  }
  return remote;
}
