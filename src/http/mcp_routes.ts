/**
 * MCP over HTTP: Streamable HTTP on `/mcp` (the 2025-era sessions and, beside them, the stateless
 * 2026-07-28 path), the legacy SSE pair (`GET /sse`, `POST /messages`) and the WebSocket at
 * `/ws/mcp`. Mounted at `/` behind the Host/Origin and auth middleware.
 * @module
 */
import { Hono } from "hono";
import type { DeadlineScheduler } from "../lib/mod.ts";
import {
  type LegacySseManager,
  type ModernHandler,
  refusalResponse,
  screenBody,
  type StreamableManager,
  type WebSocketManager,
} from "../mcp/mod.ts";
import { type AuthResolver, currentRequest, isAuthFailure } from "../identity/mod.ts";
import { HttpError } from "./errors.ts";
import type { BodyReader } from "./body_limit.ts";

type Env = { Variables: { principal: string } };

/** What the MCP routes use. */
export interface McpRoutesDeps {
  readonly streamable: StreamableManager;
  /** The stateless 2026-07-28 path on /mcp, beside the 2025-era sessions. */
  readonly modern?: ModernHandler;
  readonly sse: LegacySseManager;
  /** MCP over a WebSocket at /ws/mcp (404 when absent). */
  readonly websocket?: WebSocketManager;
  /** Checks a WebSocket's token again while the socket lives. */
  readonly resolver: AuthResolver;
  readonly body: BodyReader;
  /** How long one /mcp request may take before it is answered 504. */
  readonly requestTimeoutMs: number;
  readonly deadlines: DeadlineScheduler;
}

/** The caller's IP from the request context, for per-IP caps. */
function clientIpOfRequest(): { clientIp?: string } {
  const ip = currentRequest()?.clientIp;
  return ip !== undefined ? { clientIp: ip } : {};
}

/** The /mcp, /ws/mcp, /sse and /messages routes (mounted at `/` by the HTTP app). */
export function createMcpRoutes(deps: McpRoutesDeps): Hono<Env> {
  const app = new Hono<Env>();

  function withDeadline(promise: Promise<Response>): Promise<Response> {
    let cancel = () => {};
    const timeout = new Promise<Response>((resolve) => {
      cancel = deps.deadlines.after(deps.requestTimeoutMs, () =>
        resolve(
          new Response(
            JSON.stringify({
              jsonrpc: "2.0",
              error: { code: -32001, message: "Request timed out" },
              id: null,
            }),
            { status: 504, headers: { "content-type": "application/json" } },
          ),
        ));
    });
    return Promise.race([promise, timeout]).finally(cancel);
  }

  app.on(["POST", "GET", "DELETE"], "/mcp", async (c) => {
    const req = c.req.raw;
    const accept = req.headers.get("accept") ?? "";
    if (req.method === "POST") {
      if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
        throw new HttpError(
          406,
          "Not Acceptable: Client must accept both application/json and text/event-stream",
        );
      }
      const body = await deps.body.jsonOnly(req);
      // Too deep, too wide or ill-typed params: 400 with -32602 before the SDK sees it, on
      // either era (the 2026-07-28 envelope and retry fields are checked for their own types).
      const modern = deps.modern !== undefined && !(await deps.modern.isLegacy(req, body));
      const refusal = screenBody(body, modern ? { era: "2026-07-28" } : {});
      if (refusal) return refusalResponse(refusal);
      // One URL, two eras: a request carrying the 2026-07-28 `_meta` envelope goes to the
      // stateless path, everything else (initialize, Mcp-Session-Id traffic) to the sessions.
      if (deps.modern && modern) {
        return await withDeadline(
          deps.modern.handle(req, {
            parsedBody: body,
            principal: c.get("principal"),
            ...clientIpOfRequest(),
          }),
        );
      }
      return await withDeadline(
        deps.streamable.handle(req, {
          parsedBody: body,
          principal: c.get("principal"),
          ...clientIpOfRequest(),
        }),
      );
    }
    if (req.method === "GET" && !accept.includes("text/event-stream")) {
      throw new HttpError(406, "Not Acceptable: Client must accept text/event-stream");
    }
    return await withDeadline(
      deps.streamable.handle(req, { principal: c.get("principal"), ...clientIpOfRequest() }),
    );
  });
  app.all("/mcp", () => {
    throw new HttpError(405, "Method Not Allowed", { headers: { allow: "GET, POST, DELETE" } });
  });

  // MCP over a WebSocket: authenticated and Host/Origin-checked like /mcp (a browser always
  // sends Origin on a WebSocket, so a page on another site cannot open one).
  app.get("/ws/mcp", async (c) => {
    if (!deps.websocket) throw new HttpError(404, "Not Found");
    const principal = c.get("principal");
    const authorization = c.req.header("authorization");
    // The token the socket was opened with is checked again while it lives: revoked or
    // expired, the socket closes.
    const stillAuthorized = authorization === undefined ? undefined : async () => {
      const again = await deps.resolver.resolve(
        new Request("http://warden.invalid/ws/mcp", { headers: { authorization } }),
      );
      return !isAuthFailure(again) && again.id === principal;
    };
    return await deps.websocket.upgrade(c.req.raw, principal, stillAuthorized);
  });

  app.get("/sse", (c) => deps.sse.open(c.get("principal"), clientIpOfRequest().clientIp));
  app.post("/messages", async (c) => {
    const body = await deps.body.jsonOnly(c.req.raw);
    const refusal = screenBody(body);
    if (refusal) return refusalResponse(refusal);
    return await deps.sse.post(c.req.query("sessionId") ?? null, body, c.get("principal"));
  });

  return app;
}
