/**
 * The HTTP surface: MCP over Streamable HTTP (`/mcp`) and legacy SSE
 * (`/sse`, `/messages`), and the REST routes for non-MCP callers. The only
 * importer of Hono. This file composes the middleware and route files; each
 * is its own concern.
 */
import { Hono } from "hono";
import type { DeadlineScheduler, Logger } from "../lib/mod.ts";
import type {
  LegacySseManager,
  ModernHandler,
  StreamableManager,
  WebSocketManager,
} from "../mcp/mod.ts";
import type { ToolRegistry } from "../calls/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import type { Governance } from "../governance/mod.ts";
import { type AuthResolver, createAuthResolver } from "../identity/mod.ts";
import type { Accounting, Metrics } from "../usage/mod.ts";
import type { Gateway } from "../gateway/mod.ts";
import type { OAuthServer, ProtectedResource } from "../oauth/mod.ts";
import type { Dashboard } from "../dashboard/mod.ts";
import { HttpError } from "./errors.ts";
import { auth, type AuthOptions } from "./auth.ts";
import { bodyLimit } from "./body_limit.ts";
import { hostOrigin } from "./host_origin.ts";
import { createGatewayRoutes } from "./gateway_routes.ts";
import { createGovernanceRoutes } from "./governance_routes.ts";
import { createMcpRoutes } from "./mcp_routes.ts";
import { createRestRoutes } from "./rest_routes.ts";
import { createStatusRoutes } from "./status_routes.ts";
import { createUpstreamAuthRoutes, UPSTREAM_AUTH_OPEN } from "./upstream_auth_routes.ts";
import { createUsageRoutes } from "./usage_routes.ts";
import { createVaultRoutes } from "./vault_routes.ts";

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

/** Renders a refusal as JSON-RPC on MCP paths and as `{error}` elsewhere. */
function errorResponse(path: string, error: HttpError): Response {
  const body = MCP_PATHS.has(path)
    ? { jsonrpc: "2.0", error: { code: error.rpcCode, message: error.message }, id: null }
    : { error: { status: error.status, message: error.message } };
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { "content-type": "application/json", ...error.headers },
  });
}

/**
 * Which requests the auth middleware lets through without a token, which may come with a
 * dashboard session, and which stay anonymous when their token fails.
 */
function authExemptions(
  deps: HttpDeps,
  resourceServer: ProtectedResource | undefined,
): Pick<AuthOptions, "exempt" | "session" | "anonymousOnFailure"> {
  // Registration carries its own bearer token (checked by the gateway routes), not --token.
  const registrationPath = (req: Request, path: string) =>
    (req.method === "POST" && path === "/api/servers/register") ||
    (req.method === "DELETE" && path.startsWith("/api/servers/"));
  // With no --token the registration routes answer for themselves (403 when registration is
  // off), whatever bearer token the caller sent for them.
  const registrationRoute = (req: Request, path: string) =>
    registrationPath(req, path) &&
    (deps.registrationToken !== undefined || deps.token === undefined);
  const dashboard = deps.dashboard;
  return {
    // The OAuth endpoints are how a caller gets a token: open without one.
    // The dashboard checks its own session cookie (and CSRF tokens) on its routes.
    exempt: (req, path) =>
      path === "/health" || registrationRoute(req, path) ||
      (deps.oauth !== undefined && OAUTH_OPEN.test(path)) ||
      (deps.gateway?.authorizations !== undefined && UPSTREAM_AUTH_OPEN.test(path)) ||
      (deps.protectedResource !== undefined && path.startsWith("/.well-known/")) ||
      dashboard?.owns(req, path) === true,
    // A dashboard session may read the vault (the feed links entries and proofs) without a token.
    ...(dashboard
      ? {
        session: (req: Request, path: string) =>
          req.method === "GET" && path.startsWith("/vault/") &&
            req.headers.get("authorization") === null
            ? dashboard.principalOf(req)
            : undefined,
      }
      : {}),
    // A peer Warden checks its registration with the registration token, which is no principal's:
    // on a server open to anonymous callers that stays anonymous rather than a 401.
    anonymousOnFailure: (_req, path) =>
      deps.token === undefined && resourceServer === undefined &&
      deps.registrationToken !== undefined && path.startsWith("/api/servers/"),
  };
}

/**
 * Builds the Hono app. Every route sits behind the Host/Origin allowlist and,
 * when a token is configured, bearer authentication (except `/health`, which
 * container health checks call without credentials and which reveals nothing).
 */
export function createHttpApp(deps: HttpDeps): Hono<Env> {
  const app = new Hono<Env>();
  const log = deps.logger;
  const resolver = deps.auth ?? createAuthResolver({
    kv: deps.kv,
    ...(deps.token !== undefined ? { staticToken: deps.token } : {}),
    required: deps.token !== undefined,
    defaultRoles: () => deps.governance.policy.default_roles,
  });
  const resourceServer: ProtectedResource | undefined = deps.oauth ?? deps.protectedResource;
  const body = bodyLimit({
    maxBytes: deps.maxBodyBytes,
    timeoutMs: deps.requestTimeoutMs,
    deadlines: deps.deadlines,
  });

  app.onError((err, c) => {
    if (err instanceof HttpError) return errorResponse(c.req.path, err);
    log.error("unhandled error in HTTP route", { path: c.req.path, error: err });
    return errorResponse(
      c.req.path,
      new HttpError(500, "Internal Server Error", { rpcCode: -32603 }),
    );
  });
  app.notFound((c) => errorResponse(c.req.path, new HttpError(404, "Not Found")));

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
  app.use(
    "*",
    auth({
      resolver,
      defaultRoles: () => deps.governance.policy.default_roles,
      logger: log,
      ...(resourceServer ? { resourceServer } : {}),
      ...(deps.trustedProxies ? { trustedProxies: deps.trustedProxies } : {}),
      ...authExemptions(deps, resourceServer),
    }),
  );

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
  app.route("/", createRestRoutes({ registry: deps.registry, body }));
  app.route(
    "/",
    createMcpRoutes({
      streamable: deps.streamable,
      ...(deps.modern ? { modern: deps.modern } : {}),
      sse: deps.sse,
      ...(deps.websocket ? { websocket: deps.websocket } : {}),
      resolver,
      body,
      requestTimeoutMs: deps.requestTimeoutMs,
      deadlines: deps.deadlines,
    }),
  );
  app.route("/vault", createVaultRoutes(deps.ledger, deps.vkey));
  app.route(
    "/",
    createGovernanceRoutes({
      governance: deps.governance,
      registry: deps.registry,
      body: body.json,
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
        body: body.json,
        registrationToken: deps.registrationToken,
      }),
    );
  }

  return app;
}
