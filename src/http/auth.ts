/**
 * The authentication middleware: resolves every request's bearer token (or, where allowed, a
 * dashboard session) to a principal, refuses a missing or invalid one with 401 and an OAuth
 * token without the `mcp` scope with 403 (each with its `WWW-Authenticate` challenge), and runs
 * the rest of the request inside a request context carrying the principal, the client IP and,
 * for an OAuth caller, its bearer token.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../lib/mod.ts";
import {
  anonymousPrincipal,
  type AuthResolver,
  clientIpOf,
  isAuthFailure,
  type Principal,
  withRequestContext,
} from "../identity/mod.ts";
import type { ProtectedResource } from "../oauth/mod.ts";
import { HttpError } from "./errors.ts";

type Env = { Variables: { principal: string } };

/** Options of {@link auth}. */
export interface AuthOptions {
  /** Maps `Authorization: Bearer` to a principal or a failure. */
  readonly resolver: AuthResolver;
  /** The roles of the anonymous principal, read per request (they follow the policy). */
  readonly defaultRoles: () => readonly string[];
  /** Where refusals are logged. */
  readonly logger: Pick<Logger, "warn">;
  /**
   * Under OAuth (`--auth oauth` or `--oidc-issuer`): the challenge points at its
   * protected-resource metadata (RFC 9728 §5.1) and a token must carry the `mcp` scope.
   */
  readonly resourceServer?: Pick<ProtectedResource, "resourceMetadataUrl">;
  /** Peers whose X-Forwarded-For is believed. */
  readonly trustedProxies?: readonly string[];
  /** Requests that pass as the anonymous principal whatever credentials they carry. */
  readonly exempt?: (req: Request, path: string) => boolean;
  /**
   * A principal from elsewhere than the bearer token (a dashboard session) for a request that is
   * not exempt; undefined falls back to the resolver.
   */
  readonly session?: (req: Request, path: string) => Promise<Principal | undefined> | undefined;
  /** Requests whose failed authentication still passes as the anonymous principal. */
  readonly anonymousOnFailure?: (req: Request, path: string) => boolean;
}

/**
 * The `WWW-Authenticate` challenge of a 401/403. Under OAuth it points at the protected-resource
 * metadata (RFC 9728 §5.1) so a client can discover the authorization server.
 */
function challengeOf(
  resourceServer: AuthOptions["resourceServer"],
  error?: string,
  description?: string,
): string {
  const base = resourceServer
    ? `Bearer resource_metadata="${resourceServer.resourceMetadataUrl()}", scope="mcp"`
    : 'Bearer realm="warden"';
  if (!error) return base;
  // A quoted-string (RFC 7235): no quote, backslash or control character inside.
  const said = (description ?? "").replace(/[^ -~]|["\\]/g, "'").slice(0, 200);
  return resourceServer
    ? `${base}, error="${error}", error_description="${said}"`
    : `${base}, error="${error}"`;
}

function requireFunction(name: string, value: unknown, optional: boolean): void {
  if (optional && value === undefined) return;
  if (typeof value !== "function") {
    throw new TypeError(`Cannot create auth middleware: ${name} must be a function`);
  }
}

/**
 * Creates the middleware. A refusal is thrown as an HttpError for the app's error handler to
 * render (JSON-RPC on MCP paths, a JSON error elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hono } from "hono";
 * import { createAuthResolver } from "../identity/mod.ts";
 * import { auth } from "./auth.ts";
 * import { HttpError } from "./errors.ts";
 * const kv = await Deno.openKv(":memory:");
 * const resolver = createAuthResolver({
 *   kv,
 *   staticToken: "s3cret",
 *   required: true,
 *   defaultRoles: () => [],
 * });
 * const app = new Hono<{ Variables: { principal: string } }>();
 * app.onError((e) =>
 *   e instanceof HttpError
 *     ? new Response(e.message, { status: e.status, headers: e.headers })
 *     : new Response("fault", { status: 500 })
 * );
 * app.use("*", auth({ resolver, defaultRoles: () => [], logger: { warn() {} } }));
 * app.get("/", (c) => c.text(c.get("principal")));
 * const refused = await app.request("/");
 * assert.equal(refused.status, 401);
 * assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="warden"');
 * const ok = await app.request("/", { headers: { authorization: "Bearer s3cret" } });
 * assert.equal(ok.status, 200);
 * kv.close();
 * ```
 */
export function auth(options: AuthOptions): MiddlewareHandler<Env> {
  const { resolver, defaultRoles, logger, resourceServer, exempt, session } = options;
  if (typeof resolver?.resolve !== "function") {
    throw new TypeError("Cannot create auth middleware: resolver.resolve must be a function");
  }
  requireFunction("defaultRoles", defaultRoles, false);
  if (typeof logger?.warn !== "function") {
    throw new TypeError("Cannot create auth middleware: logger.warn must be a function");
  }
  if (
    resourceServer !== undefined && typeof resourceServer.resourceMetadataUrl !== "function"
  ) {
    throw new TypeError(
      "Cannot create auth middleware: resourceServer.resourceMetadataUrl must be a function",
    );
  }
  requireFunction("exempt", exempt, true);
  requireFunction("session", session, true);
  requireFunction("anonymousOnFailure", options.anonymousOnFailure, true);
  const trustedProxies = options.trustedProxies ?? [];
  // The client IP reaches the call path (per-IP limits for unauthenticated callers) through
  // the request context; `c.env` is Deno.serve's handler info when served over a socket.
  const clientIpOfContext = (c: Context<Env>) =>
    clientIpOf({
      remote: (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname,
      forwardedFor: c.req.header("x-forwarded-for") ?? null,
      trustedProxies,
    });

  /** Throws the 401 or 403 a resolution earns, or returns the principal it found. */
  function admit(c: Context<Env>, resolved: Awaited<ReturnType<AuthResolver["resolve"]>>) {
    if (isAuthFailure(resolved)) {
      const message = resourceServer && resolved.error === "missing"
        ? "Unauthorized: an OAuth access token is required"
        : resolved.message;
      const denied = new HttpError(401, message, {
        rpcCode: -32001,
        headers: {
          "www-authenticate": resolved.error === "invalid"
            ? challengeOf(
              resourceServer,
              "invalid_token",
              resolved.description ?? "the access token is invalid or expired",
            )
            : challengeOf(resourceServer),
        },
      });
      logger.warn("request refused", { status: 401, path: c.req.path, reason: denied.message });
      throw denied;
    }
    // Step-up (RFC 6750 §3.1): an OAuth token without the mcp scope is refused with 403.
    if (resourceServer && resolved.kind === "oauth" && !resolved.scopes.includes("mcp")) {
      const denied = new HttpError(403, "Forbidden: the token lacks the mcp scope", {
        rpcCode: -32001,
        headers: {
          "www-authenticate": challengeOf(
            resourceServer,
            "insufficient_scope",
            "the token lacks the mcp scope",
          ),
        },
      });
      logger.warn("request refused", { status: 403, path: c.req.path, reason: denied.message });
      throw denied;
    }
    return resolved;
  }

  // One request context per request, set once the principal is known (nothing before reads it).
  return async (c, next) => {
    const req = c.req.raw;
    const path = c.req.path;
    const exempted = exempt?.(req, path) === true;
    const fromSession = exempted ? undefined : await session?.(req, path);
    let resolved = exempted
      ? anonymousPrincipal(defaultRoles())
      : fromSession ?? await resolver.resolve(req);
    if (isAuthFailure(resolved) && options.anonymousOnFailure?.(req, path) === true) {
      resolved = anonymousPrincipal(defaultRoles());
    }
    const principal = admit(c, resolved);
    c.set("principal", principal.id);
    const clientIp = clientIpOfContext(c);
    // An OAuth caller's token stays in the request context for upstream token exchange only.
    const bearer = principal.kind === "oauth"
      ? /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1]
      : undefined;
    return await withRequestContext(
      {
        ...(clientIp !== undefined ? { clientIp } : {}),
        principal,
        ...(bearer ? { bearer } : {}),
      },
      next,
    );
  };
}
