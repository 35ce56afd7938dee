/**
 * The Host/Origin middleware (DNS-rebinding defence): every request whose Host header is not an
 * allowed host, or whose Origin (when sent) is not an allowed origin, is refused 403 before any
 * route, authentication or body read.
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../lib/mod.ts";
import { checkHostAndOrigin } from "./guards.ts";

/** Options of {@link hostOrigin}. */
export interface HostOriginOptions {
  /** The allowed hosts and origins, read per request (they follow --public-url and config). */
  readonly allow: () => { hosts: readonly string[]; origins: readonly string[] };
  /** Where refusals are logged. */
  readonly logger: Pick<Logger, "warn">;
  /** Requests the check does not apply to (e.g. the loopback health probe). */
  readonly exempt?: (req: Request, path: string) => boolean;
}

/**
 * Creates the middleware. A refusal is thrown as an HttpError for the app's error handler to
 * render (JSON-RPC on MCP paths, a JSON error elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hono } from "hono";
 * import { hostOrigin } from "./host_origin.ts";
 * import { HttpError } from "./errors.ts";
 * const app = new Hono();
 * app.onError((e) => new Response(e.message, { status: e instanceof HttpError ? e.status : 500 }));
 * app.use("*", hostOrigin({ allow: () => ({ hosts: ["a.example"], origins: [] }), logger: { warn() {} } }));
 * app.get("/", (c) => c.text("ok"));
 * assert.equal((await app.request("http://a.example/")).status, 200);
 * assert.equal((await app.request("http://evil.example/")).status, 403);
 * ```
 */
export function hostOrigin(options: HostOriginOptions): MiddlewareHandler {
  const { allow, logger, exempt } = options;
  if (typeof allow !== "function") {
    throw new TypeError("Cannot create hostOrigin middleware: allow must be a function");
  }
  if (typeof logger?.warn !== "function") {
    throw new TypeError("Cannot create hostOrigin middleware: logger.warn must be a function");
  }
  if (exempt !== undefined && typeof exempt !== "function") {
    throw new TypeError("Cannot create hostOrigin middleware: exempt must be a function");
  }
  return async (c, next) => {
    if (!exempt?.(c.req.raw, c.req.path)) {
      const refusal = checkHostAndOrigin(c.req.raw, allow());
      if (refusal) {
        logger.warn("request refused", { status: 403, path: c.req.path, reason: refusal.message });
        throw refusal;
      }
    }
    await next();
  };
}
