/**
 * Composition step: the HTTP app over everything built before it — the MCP surfaces, the
 * registry, the vault, governance, the gateway, usage, the audit dashboard, and the OAuth server
 * or the protected-resource metadata naming an external provider.
 * @module
 */
import type { Config } from "../config.ts";
import { type DeadlineScheduler, type Logger, VERSION } from "../lib/mod.ts";
import type { Governance } from "../governance/mod.ts";
import type { Gateway } from "../gateway/mod.ts";
import { createHttpApp, statusOf } from "../http/mod.ts";
import type {
  LegacySseManager,
  ModernHandler,
  StreamableManager,
  WebSocketManager,
} from "../mcp/mod.ts";
import { createProtectedResource } from "../oauth/mod.ts";
import { createDashboard } from "../dashboard/mod.ts";
import type { Accounting, Metrics } from "../usage/mod.ts";
import type { ToolRegistry } from "../calls/mod.ts";
import type { IdentityStep } from "./identity.ts";
import type { VaultStep } from "./vault.ts";

/** What {@link buildHttp} serves. */
export interface HttpStepDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly startedAtMs: number;
  readonly identity: IdentityStep;
  readonly vault: VaultStep;
  readonly governance: Governance;
  readonly gateway: Gateway;
  readonly registry: ToolRegistry;
  readonly streamable: StreamableManager;
  readonly modern: ModernHandler;
  readonly sse: LegacySseManager;
  readonly websocket: WebSocketManager;
  readonly deadlines: DeadlineScheduler;
  readonly metrics: Metrics;
  readonly accounting: Accounting;
  /** The Host/Origin allowlists, read per request. */
  readonly allow: () => { hosts: readonly string[]; origins: readonly string[] };
  readonly publicBase: () => string;
}

/** Builds the Hono app (src/http/) with the dashboard and the OAuth routes it mounts. */
export function buildHttp(deps: HttpStepDeps): ReturnType<typeof createHttpApp> {
  const { kv, config, logger, vault, governance, gateway, accounting } = deps;
  const { ledger } = vault;
  const vkey = vault.identity.signer.vkey;
  const { oauth, oidc } = deps.identity;
  return createHttpApp({
    auth: deps.identity.auth,
    registry: deps.registry,
    streamable: deps.streamable,
    modern: deps.modern,
    sse: deps.sse,
    websocket: deps.websocket,
    kv,
    logger,
    version: VERSION,
    startedAtMs: deps.startedAtMs,
    ...(config.workers > 1 ? { worker: { index: config.workerIndex, pid: Deno.pid } } : {}),
    token: config.token,
    maxBodyBytes: config.maxBodyBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    deadlines: deps.deadlines,
    allow: deps.allow,
    ledger,
    governance,
    gateway,
    registrationToken: config.registrationToken,
    vkey,
    trustedProxies: config.trustedProxies,
    metrics: deps.metrics,
    accounting,
    oauth,
    ...(oidc && !oauth
      ? {
        protectedResource: createProtectedResource({
          resource: () => `${deps.publicBase()}/mcp`,
          issuers: [oidc.issuer],
        }),
      }
      : {}),
    dashboard: createDashboard({
      kv,
      ledger,
      governance,
      vkey,
      logger,
      verifyPassword: deps.identity.checkPassword,
      gateway,
      accounting,
      checkpointAgeMs: () => {
        const last = vault.lastCheckpointMs();
        return last === undefined ? undefined : Date.now() - last;
      },
      signCheckpoint: () => vault.signCheckpoint(),
      oauthLogin: oauth !== undefined,
      secureCookies: () => config.publicUrl?.startsWith("https:") === true,
      bodyTimeoutMs: config.requestTimeoutMs,
      statusOf,
    }),
  });
}
