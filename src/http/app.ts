/**
 * The HTTP surface: MCP over Streamable HTTP (`/mcp`) and legacy SSE
 * (`/sse`, `/messages`), and the REST routes for non-MCP callers. The only
 * importer of Hono.
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { DeadlineScheduler, Logger } from "../lib/mod.ts";
import {
  type LegacySseManager,
  type ModernHandler,
  refusalResponse,
  screenBody,
  type StreamableManager,
  type WebSocketManager,
} from "../mcp/mod.ts";
import type { CallOutcome, ToolRegistry } from "../calls/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import { createVaultRoutes } from "./vault_routes.ts";
import { createGovernanceRoutes } from "./governance_routes.ts";
import type { Governance } from "../governance/mod.ts";
import {
  anonymousPrincipal,
  type AuthResolver,
  clientIpOf,
  createAuthResolver,
  currentRequest,
  isAuthFailure,
  withRequestContext,
} from "../identity/mod.ts";
import type { Accounting, Metrics } from "../usage/mod.ts";
import { createGatewayRoutes } from "./gateway_routes.ts";
import { createUpstreamAuthRoutes, UPSTREAM_AUTH_OPEN } from "./upstream_auth_routes.ts";
import type { Gateway } from "../gateway/mod.ts";
import type { OAuthServer, ProtectedResource } from "../oauth/mod.ts";
import type { Dashboard } from "../dashboard/mod.ts";
import { HttpError } from "./errors.ts";
import { parseJson, readBody, requireJsonContentType } from "./guards.ts";
import { hostOrigin } from "./host_origin.ts";
import { createStatusRoutes } from "./status_routes.ts";
import { createUsageRoutes } from "./usage_routes.ts";

/** Everything the HTTP app needs, already opened and wired by app.ts. */
export interface HttpDeps {
  readonly registry: ToolRegistry;
  readonly streamable: StreamableManager;
  /** The stateless 2026-07-28 path on /mcp, beside the 2025-era sessions. */
  readonly modern?: ModernHandler;
  readonly sse: LegacySseManager;
  /** MCP over a WebSocket at /ws/mcp (404 when absent). */
  readonly websocket?: WebSocketManager;
  readonly kv: Deno.Kv;
  readonly logger: Logger;
  readonly version: string;
  readonly startedAtMs: number;
  /** Under `--workers N`: which process answers (shown by GET /health). */
  readonly worker?: { readonly index: number; readonly pid: number };
  readonly token?: string;
  /**
   * Maps `Authorization: Bearer` to a principal (src/identity/). Built from
   * `token` and `kv` when absent; the OAuth server plugs its verifier in here.
   */
  readonly auth?: AuthResolver;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly deadlines: DeadlineScheduler;
  readonly ledger: Ledger;
  readonly governance: Governance;
  /** The verifier key of the checkpoint signing key. */
  readonly vkey: string;
  /** Queried at GET /api/usage when present. */
  readonly accounting?: Accounting;
  /** Served at GET /metrics when present. */
  readonly metrics?: Metrics;
  /** Peers whose X-Forwarded-For is believed (config --trusted-proxies). */
  readonly trustedProxies?: readonly string[];
  /** The gateway (upstream registry routes); absent in tests that build the app without one. */
  readonly gateway?: Gateway;
  /** Bearer token of runtime registration (POST /api/servers/register, DELETE /api/servers/:name). */
  readonly registrationToken?: string;
  /** Read per request: the bound port is only known after listening. */
  readonly allow: () => { hosts: readonly string[]; origins: readonly string[] };
  /** `--auth oauth`: the authorization server's routes and its access-token verifier. */
  readonly oauth?: OAuthServer;
  /**
   * `--oidc-issuer` without `--auth oauth`: the protected-resource metadata
   * naming the external provider (with `--auth oauth`, `oauth` serves it).
   */
  readonly protectedResource?: ProtectedResource;
  /** The audit dashboard (`/dashboard`, `/login`): it authenticates its own requests with a session. */
  readonly dashboard?: Dashboard;
}

type Env = { Variables: { principal: string } };

/** The authorization server's own routes, open to callers without a token. */
const OAUTH_OPEN =
  /^\/(?:\.well-known\/.*|authorize|token|register|revoke|login|login\/oidc|login\/oidc\/callback|consent)$/;

const MCP_PATHS = new Set(["/mcp", "/sse", "/messages", "/ws/mcp"]);

function rpcErrorBody(code: number, message: string) {
  return { jsonrpc: "2.0", error: { code, message }, id: null };
}

/** Renders a refusal as JSON-RPC on MCP paths and as `{error}` elsewhere. */
function errorResponse(path: string, error: HttpError): Response {
  const body = MCP_PATHS.has(path)
    ? rpcErrorBody(error.rpcCode, error.message)
    : { error: { status: error.status, message: error.message } };
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { "content-type": "application/json", ...error.headers },
  });
}

const InvokeBody = z.object({
  // Any name: an unknown one (empty, 100 KB, lone surrogates) is refused by the call path and
  // sealed there, bounded, like on /mcp — never a 400 that leaves no record.
  tool: z.string(),
  arguments: z.record(z.string(), z.unknown()).optional(),
  hold_id: z.string().max(64).optional(),
  debug: z.boolean().optional(),
}).strict();

/** HTTP status for a call outcome: what a REST client can act on without reading the body. */
function statusFor(outcome: CallOutcome): number {
  switch (outcome.errorKind) {
    case undefined:
      return 200;
    case "held":
      return 202;
    case "unknown_tool":
      return 404;
    case "invalid_arguments":
    case "tool_error":
      return 422;
    case "blocked":
      // SABAR is "fix and retry": a rate limit (with retry-after) is 429, anything else 422.
      if (outcome.verdict !== "SABAR") return 403;
      return outcome.envelope?._constitutional.retry_after_s !== undefined ? 429 : 422;
    case "timeout":
      return 504;
    default:
      return 500;
  }
}

/** The REST body: the envelope, plus the tool name, ok flag and one-line summary. */
function invokeResponse(outcome: CallOutcome) {
  return {
    tool: outcome.tool,
    ok: !outcome.isError,
    ...(outcome.errorKind ? { error_kind: outcome.errorKind } : {}),
    text: outcome.text,
    ...(outcome.envelope ?? {}),
    // An upstream tool's own result, untouched.
    ...(outcome.upstreamResult ? { result: outcome.upstreamResult } : {}),
  };
}

/**
 * Builds the Hono app. Every route sits behind the Host/Origin allowlist and,
 * when a token is configured, bearer authentication (except `/health`, which
 * container health checks call without credentials and which reveals nothing).
 */
// Kept whole for now: the Host/Origin middleware (host_origin.ts) and the status, usage, vault,
// governance and gateway routes are their own files; the auth-and-context middleware and the
// MCP/REST routes still share the auth resolver, the challenge and the body reader here, and
// their split is open (issue 8).
export function createHttpApp(deps: HttpDeps): Hono<Env> {
  const app = new Hono<Env>();
  const log = deps.logger;
  const auth = deps.auth ?? createAuthResolver({
    kv: deps.kv,
    ...(deps.token !== undefined ? { staticToken: deps.token } : {}),
    required: deps.token !== undefined,
    defaultRoles: () => deps.governance.policy.default_roles,
  });
  // Registration carries its own bearer token (checked by the gateway routes), not --token.
  const registrationPath = (req: Request, path: string) =>
    (req.method === "POST" && path === "/api/servers/register") ||
    (req.method === "DELETE" && path.startsWith("/api/servers/"));
  // With no --token the registration routes answer for themselves (403 when registration is
  // off), whatever bearer token the caller sent for them.
  const registrationRoute = (req: Request, path: string) =>
    registrationPath(req, path) &&
    (deps.registrationToken !== undefined || deps.token === undefined);

  /** Reads a bounded, timed JSON body; malformed or empty input is -32700. */
  async function jsonFrom(req: Request): Promise<unknown> {
    const text = await readBody(req, {
      maxBytes: deps.maxBodyBytes,
      timeoutMs: deps.requestTimeoutMs,
      deadlines: deps.deadlines,
    });
    if (text.trim() === "") {
      throw new HttpError(400, "Parse error: empty body", { rpcCode: -32700 });
    }
    return parseJson(text);
  }
  /** The body of a JSON-only route (/invoke, /mcp, /messages): Content-Type must say JSON. */
  const jsonBody = (c: Context<Env>) => {
    requireJsonContentType(c.req.raw);
    return jsonFrom(c.req.raw);
  };

  function withDeadline(promise: Promise<Response>): Promise<Response> {
    let cancel = () => {};
    const timeout = new Promise<Response>((resolve) => {
      cancel = deps.deadlines.after(deps.requestTimeoutMs, () =>
        resolve(
          new Response(JSON.stringify(rpcErrorBody(-32001, "Request timed out")), {
            status: 504,
            headers: { "content-type": "application/json" },
          }),
        ));
    });
    return Promise.race([promise, timeout]).finally(cancel);
  }

  app.onError((err, c) => {
    if (err instanceof HttpError) return errorResponse(c.req.path, err);
    log.error("unhandled error in HTTP route", { path: c.req.path, error: err });
    return errorResponse(
      c.req.path,
      new HttpError(500, "Internal Server Error", { rpcCode: -32603 }),
    );
  });
  app.notFound((c) => errorResponse(c.req.path, new HttpError(404, "Not Found")));

  /**
   * The `WWW-Authenticate` challenge of a 401/403. Under `--auth oauth` it
   * points at the protected-resource metadata (RFC 9728 §5.1) so a client can
   * discover the authorization server.
   */
  const resourceServer: ProtectedResource | undefined = deps.oauth ?? deps.protectedResource;
  function challengeOf(error?: string, description?: string): string {
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

  // The client IP reaches the call path (per-IP limits for unauthenticated callers) through
  // the request context; `c.env` is Deno.serve's handler info when served over a socket.
  const trustedProxies = deps.trustedProxies ?? [];
  const clientIpOfContext = (c: Context<Env>) =>
    clientIpOf({
      remote: (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname,
      forwardedFor: c.req.header("x-forwarded-for") ?? null,
      trustedProxies,
    });

  app.use(
    "*",
    hostOrigin({
      allow: deps.allow,
      logger: log,
      // GET /health is exempt from the Host check: `warden health` (a container's HEALTHCHECK)
      // probes loopback whatever --allowed-hosts / --public-url say. It reveals nothing private.
      exempt: (req, path) => path === "/health" && (req.method === "GET" || req.method === "HEAD"),
    }),
  );

  // One request context per request, set once the principal is known (nothing before reads it).
  app.use("*", async (c, next) => {
    // The OAuth endpoints are how a caller gets a token: open without one.
    // The dashboard checks its own session cookie (and CSRF tokens) on its routes.
    const exempt = c.req.path === "/health" || registrationRoute(c.req.raw, c.req.path) ||
      (deps.oauth !== undefined && OAUTH_OPEN.test(c.req.path)) ||
      (deps.gateway?.authorizations !== undefined && UPSTREAM_AUTH_OPEN.test(c.req.path)) ||
      (deps.protectedResource !== undefined && c.req.path.startsWith("/.well-known/")) ||
      deps.dashboard?.owns(c.req.raw, c.req.path) === true;
    // A dashboard session may read the vault (the feed links entries and proofs) without a token.
    const session = !exempt && deps.dashboard && c.req.method === "GET" &&
        c.req.path.startsWith("/vault/") && c.req.header("authorization") === undefined
      ? await deps.dashboard.principalOf(c.req.raw)
      : undefined;
    let resolved = exempt
      ? anonymousPrincipal(deps.governance.policy.default_roles)
      : session ?? await auth.resolve(c.req.raw);
    // A peer Warden checks its registration with the registration token, which is no principal's:
    // on a server open to anonymous callers that stays anonymous rather than a 401.
    if (
      isAuthFailure(resolved) && deps.token === undefined && resourceServer === undefined &&
      deps.registrationToken !== undefined && c.req.path.startsWith("/api/servers/")
    ) {
      resolved = anonymousPrincipal(deps.governance.policy.default_roles);
    }
    if (isAuthFailure(resolved)) {
      const message = resourceServer && resolved.error === "missing"
        ? "Unauthorized: an OAuth access token is required"
        : resolved.message;
      const denied = new HttpError(401, message, {
        rpcCode: -32001,
        headers: {
          "www-authenticate": resolved.error === "invalid"
            ? challengeOf(
              "invalid_token",
              resolved.description ?? "the access token is invalid or expired",
            )
            : challengeOf(),
        },
      });
      log.warn("request refused", { status: 401, path: c.req.path, reason: denied.message });
      return errorResponse(c.req.path, denied);
    }
    // Step-up (RFC 6750 §3.1): an OAuth token without the mcp scope is refused with 403.
    if (resourceServer && resolved.kind === "oauth" && !resolved.scopes.includes("mcp")) {
      const denied = new HttpError(403, "Forbidden: the token lacks the mcp scope", {
        rpcCode: -32001,
        headers: {
          "www-authenticate": challengeOf("insufficient_scope", "the token lacks the mcp scope"),
        },
      });
      log.warn("request refused", { status: 403, path: c.req.path, reason: denied.message });
      return errorResponse(c.req.path, denied);
    }
    c.set("principal", resolved.id);
    const clientIp = clientIpOfContext(c);
    // An OAuth caller's token stays in the request context for upstream token exchange only.
    const bearer = resolved.kind === "oauth"
      ? /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1]
      : undefined;
    return await withRequestContext(
      {
        ...(clientIp !== undefined ? { clientIp } : {}),
        principal: resolved,
        ...(bearer ? { bearer } : {}),
      },
      next,
    );
  });

  // Before the OAuth routes: the dashboard's /login?return_to=… falls through to OAuth's /login otherwise.
  if (deps.dashboard) app.route("/", deps.dashboard.routes);
  if (resourceServer) app.route("/", resourceServer.routes);

  app.route(
    "/",
    createStatusRoutes({
      version: deps.version,
      startedAtMs: deps.startedAtMs,
      ...(deps.worker ? { worker: deps.worker } : {}),
      kv: deps.kv,
      ledger: deps.ledger,
      vkey: deps.vkey,
      logger: log,
      governance: deps.governance,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
    }),
  );
  app.route(
    "/",
    createUsageRoutes({
      governance: deps.governance,
      ...(deps.accounting ? { accounting: deps.accounting } : {}),
    }),
  );

  app.get("/tools", (c) => c.json({ tools: deps.registry.list(c.get("principal")) }));

  app.post("/invoke", async (c) => {
    const parsed = InvokeBody.safeParse(await jsonBody(c));
    if (!parsed.success) {
      throw new HttpError(
        400,
        `Bad Request: expected {"tool": string, "arguments"?: object, "hold_id"?: string}: ${
          parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")
        }`,
      );
    }
    const outcome = await deps.registry.call(parsed.data.tool, parsed.data.arguments ?? {}, {
      principal: c.get("principal"),
      transport: "rest",
      ...(parsed.data.hold_id !== undefined ? { holdId: parsed.data.hold_id } : {}),
      debug: parsed.data.debug === true,
    });
    const retryAfter = outcome.envelope?._constitutional.retry_after_s;
    if (retryAfter !== undefined) c.header("retry-after", String(retryAfter));
    return c.json(invokeResponse(outcome), statusFor(outcome) as 200);
  });

  // The core-service REST shape (`POST /api/mcp/{service}/{action}`, body = the arguments):
  // the same governed call as tools/call of `<prefix>_<action>`.
  const SERVICES: Readonly<Record<string, string>> = {
    memory: "memory_",
    files: "file_",
    context: "context_",
    bus: "bus_",
  };
  app.post("/api/mcp/:service/:action", async (c) => {
    const service = c.req.param("service");
    const action = c.req.param("action");
    const prefix = Object.hasOwn(SERVICES, service) ? SERVICES[service] : undefined;
    if (prefix === undefined) {
      throw new HttpError(
        404,
        `Not Found: unknown service ${JSON.stringify(service.slice(0, 64))}; services are ${
          Object.keys(SERVICES).join(", ")
        }`,
      );
    }
    const tool = prefix + action;
    if (!/^[a-z]{1,32}$/.test(action) || deps.registry.get(tool) === undefined) {
      const actions = deps.registry.list().map((t) => t.name).filter((n) => n.startsWith(prefix))
        .map((n) => n.slice(prefix.length));
      throw new HttpError(
        404,
        `Not Found: service ${service} has no action ${JSON.stringify(action.slice(0, 64))}; ` +
          `actions are ${actions.join(", ")}`,
      );
    }
    const args = await jsonBody(c);
    if (typeof args !== "object" || args === null || Array.isArray(args)) {
      throw new HttpError(400, "Bad Request: the body must be a JSON object of arguments");
    }
    const outcome = await deps.registry.call(tool, args, {
      principal: c.get("principal"),
      transport: "rest",
    });
    const retryAfter = outcome.envelope?._constitutional.retry_after_s;
    if (retryAfter !== undefined) c.header("retry-after", String(retryAfter));
    return c.json(invokeResponse(outcome), statusFor(outcome) as 200);
  });

  /** The caller's IP from the request context, for per-IP caps. */
  const clientIpOfRequest = (): { clientIp?: string } => {
    const ip = currentRequest()?.clientIp;
    return ip !== undefined ? { clientIp: ip } : {};
  };

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
      const body = await jsonBody(c);
      // Too deep, too wide or ill-typed params: 400 with -32602 before the SDK sees it, on
      // either era (the 2026-07-28 envelope and retry fields are checked for their own types).
      const modern = deps.modern !== undefined && !(await deps.modern.isLegacy(req, body));
      const refusal = screenBody(body, modern ? { era: "2026-07-28" } : {});
      if (refusal) return refusalResponse(refusal);
      // One URL, two eras: a request carrying the 2026-07-28 `_meta` envelope goes to the
      // stateless path, everything else (initialize, Mcp-Session-Id traffic) to the sessions.
      if (deps.modern && modern) {
        return await withDeadline(
          deps.modern.handle(req, { parsedBody: body, principal: c.get("principal") }),
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

  app.route("/vault", createVaultRoutes(deps.ledger, deps.vkey));
  app.route(
    "/",
    createGovernanceRoutes({
      governance: deps.governance,
      registry: deps.registry,
      body: jsonFrom,
    }),
  );

  if (deps.gateway?.authorizations) {
    app.route("/", createUpstreamAuthRoutes({ authorizations: deps.gateway.authorizations }));
  }
  if (deps.gateway) {
    app.route(
      "/",
      createGatewayRoutes({
        gateway: deps.gateway,
        body: jsonFrom,
        registrationToken: deps.registrationToken,
      }),
    );
  }

  // MCP over a WebSocket: authenticated and Host/Origin-checked above like /mcp (a browser
  // always sends Origin on a WebSocket, so a page on another site cannot open one).
  app.get("/ws/mcp", async (c) => {
    if (!deps.websocket) throw new HttpError(404, "Not Found");
    const principal = c.get("principal");
    const authorization = c.req.header("authorization");
    // The token the socket was opened with is checked again while it lives: revoked or
    // expired, the socket closes.
    const stillAuthorized = authorization === undefined ? undefined : async () => {
      const again = await auth.resolve(
        new Request("http://warden.invalid/ws/mcp", { headers: { authorization } }),
      );
      return !isAuthFailure(again) && again.id === principal;
    };
    return await deps.websocket.upgrade(c.req.raw, principal, stillAuthorized);
  });

  app.get("/sse", (c) => deps.sse.open(c.get("principal"), clientIpOfRequest().clientIp));
  app.post("/messages", async (c) => {
    const body = await jsonBody(c);
    const refusal = screenBody(body);
    if (refusal) return refusalResponse(refusal);
    return await deps.sse.post(c.req.query("sessionId") ?? null, body, c.get("principal"));
  });

  return app;
}
