/**
 * Identity: principals, minted tokens, users, the auth resolver, and the
 * request context that carries the principal and client IP from the HTTP edge
 * to the call path.
 *
 * @module
 */
export * from "./principal.ts";
export * from "./tokens.ts";
export * from "./users.ts";
export * from "./resolver.ts";
export {
  clientIpOf,
  currentBearer,
  currentPrincipal,
  currentRequest,
  type RequestContext,
  withRequestContext,
} from "./request_context.ts";
