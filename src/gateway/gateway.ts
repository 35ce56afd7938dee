/**
 * The gateway: the upstream registry (KV), one pooled connection per
 * upstream, the catalogue of re-exposed tools with their pinned definition
 * hashes (F10) and registration-time poisoning scan (F12), and a circuit
 * breaker per upstream. It never runs a tool call on its own: the tool
 * registry asks it for catalogue entries and routes every call through the
 * governance pipeline, exactly like an own tool.
 *
 * @module
 */
import {
  type CallToolResult,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  type Tool,
} from "@modelcontextprotocol/client";
import { findInjections, type Operator, verifyOperatorSignature } from "../governance/mod.ts";
import { digestJson, type Logger } from "../lib/mod.ts";
import { hostAllowed, isPrivateAddress } from "../net/mod.ts";
import { upstreamKey, upstreamPinKey, upstreamPrefix } from "../store/mod.ts";
import type { EventBus, InstanceEvent } from "../services/mod.ts";
import { createBreaker } from "./breaker.ts";
import {
  type ConnectionState,
  type ContentMethod,
  createConnection,
  type CredentialSource,
  type UpstreamConnection,
  UpstreamUnavailableError,
} from "./connection.ts";
import { exposedName, ManifestError, toolAllowed, type UpstreamConfig } from "./manifest.ts";
import type { CredentialStore } from "./credentials.ts";
import { createUpstreamTokens, UpstreamOAuthError, type UpstreamTokens } from "./upstream_oauth.ts";
import { createUserAuthorizations, type UserAuthorizations } from "./user_authorization.ts";
import { currentBearer, currentRequest } from "../identity/mod.ts";
import { namespaceResultUris } from "./upstream_uri.ts";
import {
  type OutputCheck,
  outputCheck,
  OutputSchemaError,
  outputValidatorProvider,
} from "./output_check.ts";

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env for it
  }
}

/** A re-exposed tool as listed to clients. */
export interface UpstreamToolDescriptor {
  readonly name: string;
  readonly title?: string;
  readonly description: string;
  readonly inputSchema: Record<string, unknown>;
  readonly outputSchema?: Record<string, unknown>;
  readonly annotations: Record<string, unknown>;
}

/** How an upstream call ended when it produced no result. */
export type UpstreamFailure = {
  readonly ok: false;
  /**
   * `authorization_required`: the caller must authorize Warden at the upstream (the message says
   * where). `invalid_output`: the upstream answered, but not as its pinned `outputSchema` says.
   */
  readonly kind: "timeout" | "unavailable" | "fault" | "authorization_required" | "invalid_output";
  /** `invalid_output`: how the result misses the schema. */
  readonly issues?: readonly string[];
  /** `authorization_required`: the caller's link (also in `message`), for a URL-mode elicitation. */
  readonly authorizationUrl?: string;
  readonly message: string;
  readonly retryAfterS?: number;
};

/** One catalogue entry: what the tool registry needs to govern and route a call. */
export interface UpstreamToolEntry {
  readonly descriptor: UpstreamToolDescriptor;
  readonly upstream: string;
  readonly upstreamTool: string;
  readonly upstreamVersion?: string;
  /** How the connection authenticated to the upstream (kind only, sealed with each call). */
  credential(): string;
  readonly definitionHash: string;
  /** The pinned hash; differs from definitionHash when the upstream changed the tool. */
  readonly pinnedHash: string;
  /**
   * Poisoned description found at registration (F12), or an `outputSchema` that does not compile:
   * hidden from lists, refused on call.
   */
  readonly quarantined: boolean;
  /** Why an `outputSchema` quarantined it (shown in its upstream's status). */
  readonly quarantineReason?: string;
  readonly timeoutMs: number;
  circuit(): { open: boolean; retryAfterS?: number };
  call(
    args: Record<string, unknown>,
    options: { signal?: AbortSignal },
  ): Promise<{ readonly ok: true; readonly result: CallToolResult } | UpstreamFailure>;
}

/**
 * One upstream's resources and prompts, requested on demand (never cached:
 * they are the upstream's to change). A request while its breaker is open
 * fails at once; one that fails or times out counts against the breaker.
 */
export interface UpstreamContent {
  readonly server: string;
  /** The prefix its tools and prompts are exposed under (`<name>__` unless configured). */
  readonly prefix: string;
  /** The upstream's answer, or `null` when it has no such capability. */
  request(
    method: ContentMethod,
    params: Record<string, unknown> | undefined,
  ): Promise<Record<string, unknown> | null>;
}

/**
 * Why the gateway refused a registration, removal or definition approval: the request is invalid,
 * names no such upstream or tool, conflicts with what is there, or carries a signature that does
 * not verify. src/http/ chooses the HTTP status for each.
 */
export type RegistrationErrorCode = "invalid" | "not_found" | "conflict" | "bad_signature";

/** A registration or removal the gateway refuses; `field` names the input at fault. */
export class RegistrationError extends Error {
  override name = "RegistrationError";
  constructor(message: string, readonly code: RegistrationErrorCode, readonly field?: string) {
    super(message);
  }
}

/**
 * How long a stored credential read from KV answers an upstream's requests before KV is read
 * again (a 401 from the upstream reads it at once).
 */
export const CREDENTIAL_MAX_AGE_MS = 5_000;

/** The kind of credential Warden presents an upstream (sealed and shown; never a value). */
export type PresentedCredential =
  | "bearer"
  | "headers"
  | "manifest_headers"
  | "none"
  | "oauth_client_credentials"
  | "oauth_token_exchange"
  | "oauth_authorization_code";

/** What `GET /api/servers` shows for one upstream. */
export interface UpstreamStatus {
  readonly name: string;
  readonly transport: string;
  readonly url?: string;
  readonly version?: string;
  readonly source: "file" | "api";
  readonly registered_at: string;
  /** What Warden presented on its connection (HTTP upstreams): the kind, never a value. */
  readonly credential?: PresentedCredential;
  readonly connection: ConnectionState;
  readonly circuit: ReturnType<ReturnType<typeof createBreaker>["snapshot"]>;
  readonly tools: readonly {
    name: string;
    upstream_tool: string;
    definition_sha256: string;
    pinned_sha256: string;
    state: "ok" | "changed" | "quarantined";
    /** Why it is quarantined, when its `outputSchema` does not compile. */
    reason?: string;
  }[];
  readonly refused?: readonly string[];
}

/** Which list changed: tools and prompts (the catalogue) or an upstream's resources. */
export type CatalogueKind = "tools" | "prompts" | "resources";

/** The gateway service. */
export interface Gateway {
  /** Connects every configured upstream and lists its tools; failures are logged, not fatal. */
  start(): Promise<void>;
  list(): readonly UpstreamToolDescriptor[];
  get(name: string): UpstreamToolEntry | undefined;
  servers(): UpstreamStatus[];
  server(name: string): UpstreamStatus | undefined;
  /**
   * Adds or updates an upstream registered at runtime. Its endpoints are
   * checked against the SSRF guard first (private, loopback and link-local
   * addresses refused unless allowlisted), then it is connected and listed.
   */
  register(config: UpstreamConfig): Promise<UpstreamStatus>;
  remove(name: string): Promise<void>;
  /** Re-lists one upstream's tools (list_changed, health recovery). */
  refresh(name: string): Promise<void>;
  /** Pins an upstream tool's current definition after an operator's signature over it. */
  approveTool(
    input: { server: string; tool: string; sha256: string; operator: string; signature: string },
  ): Promise<{ pinned: string }>;
  /** Every upstream, as a source of resources and prompts (passed through, see `UpstreamContent`). */
  content(): readonly UpstreamContent[];
  /**
   * The upstream that owns an exposed prompt name and the prompt's own name
   * there; undefined when no upstream does (Warden's own or unknown).
   */
  prompt(name: string): { source: UpstreamContent; prompt: string } | undefined;
  /**
   * What an upstream just answered to `prompts/list` (its own names): a
   * prompt added without a list_changed becomes routable once listed.
   */
  notePrompts(server: string, names: readonly string[]): void;
  /**
   * Per-principal authorization at `oauth: {mode: "authorization_code"}`
   * upstreams (the HTTP edge serves its metadata document, link and callback);
   * undefined without a public base URL.
   */
  readonly authorizations?: UserAuthorizations;
  /** Called when a catalogue changed (list_changed to clients). */
  onChange?: (kind: CatalogueKind) => void;
  /** Called when an upstream says a resource it was subscribed to changed (its own URI). */
  onResourceUpdated?: (server: string, uri: string) => void;
  close(): Promise<void>;
}

/** What the gateway needs; resources are passed in. */
export interface GatewayDeps {
  readonly kv: Deno.Kv;
  readonly logger: Logger;
  readonly upstreams: readonly UpstreamConfig[];
  /** Seals a registry event into the vault. */
  readonly record: (fields: Record<string, unknown>) => Promise<unknown>;
  /** Own tool names: an upstream tool may not shadow one. */
  readonly reservedNames: () => readonly string[];
  /** Own prompt names: an upstream prompt may not shadow one. */
  readonly reservedPrompts?: () => readonly string[];
  readonly toolTimeoutMs: number;
  readonly onDeploy: boolean;
  /** Run stdio upstreams under bubblewrap (default true). */
  readonly sandbox?: boolean;
  readonly operators: () => readonly Operator[];
  /** Consecutive failures that open a breaker, and its cool-down. */
  readonly breaker?: { failures?: number; coolDownMs?: number };
  /** Hosts or CIDRs a runtime registration may name although private or loopback. */
  readonly allowHosts?: readonly string[];
  /** Resolves a host name (injectable; Deno.resolveDns by default). */
  readonly resolve?: (host: string) => Promise<string[]>;
  /** Period of the health probe per upstream (0 = no probes). Default 15 s. */
  readonly healthIntervalMs?: number;
  /** Encrypted per-upstream credentials (bearer tokens, headers) presented at connect. */
  readonly credentials?: CredentialStore;
  /** Reads an upstream's OAuth client secret variable; default `Deno.env.get`. */
  readonly env?: (name: string) => string | undefined;
  /**
   * Warden's public base URL (redirect URI and client metadata document of
   * authorization-code upstreams); without it those upstreams are refused.
   */
  readonly publicBase?: () => string;
  /** The clock per-principal upstream tokens and authorization links expire by (epoch ms). */
  readonly now?: () => number;
  /**
   * The instances' event bus: a registration, update, removal or approval here is announced on
   * it, and those of the other instances sharing the KV are applied here (their clients and
   * ours then get list_changed alike).
   */
  readonly events?: EventBus;
}

/** The event type a registry change is announced with on the instances' event bus. */
export const UPSTREAM_EVENT = "upstream";

/** Most per-caller connections one token-exchange upstream keeps open. */
const MAX_CALLER_CONNECTIONS = 100;
/** The first wait before an upstream that did not answer at start is listed again. */
const START_RETRY_MS = 1_000;

/** The exact bytes an operator signs to approve a changed upstream tool definition. */
export function toolApprovalMessage(server: string, tool: string, sha256: string): Uint8Array {
  return new TextEncoder().encode(`warden-tool/v1\napprove\n${server}\n${tool}\n${sha256}\n`);
}

/** Signs a tool approval with an operator key; returns the base64 signature. */
export async function signToolApproval(
  key: { privateKey: CryptoKey },
  server: string,
  tool: string,
  sha256: string,
): Promise<string> {
  const message = toolApprovalMessage(server, tool, sha256);
  const signature = await crypto.subtle.sign(
    "Ed25519",
    key.privateKey,
    message as Uint8Array<ArrayBuffer>,
  );
  return new Uint8Array(signature).toBase64();
}

/** The definition hash F10 pins: name, description, schemas and annotations. */
export function definitionHash(tool: Tool): string {
  return digestJson({
    name: tool.name,
    description: tool.description ?? "",
    inputSchema: tool.inputSchema ?? null,
    outputSchema: tool.outputSchema ?? null,
    annotations: tool.annotations ?? null,
  });
}

interface Upstream {
  config: UpstreamConfig;
  source: "file" | "api";
  registeredAt: string;
  connection: UpstreamConnection;
  breaker: ReturnType<typeof createBreaker>;
  /** Where it ranks when names collide: the upstreams file's order, then registrations by time. */
  rank: readonly [number, string, string];
  /** Every tool it offers that its filter lets through, by exposed name (before collisions). */
  candidates: Map<string, UpstreamToolEntry>;
  /** Its prompts' own names (first page), as last listed. */
  prompts: readonly string[];
  /** What it keeps after collisions are resolved. */
  entries: Map<string, UpstreamToolEntry>;
  /** Refusals of its listing itself (invalid or repeated names). */
  listingRefused: string[];
  refused: string[];
  /** What the current connection presented: a stored credential's kind, manifest headers, or nothing. */
  credential: PresentedCredential;
  /** `oauth`: where its access tokens come from. */
  tokens?: UpstreamTokens;
  /** Token exchange, authorization code: one connection (one upstream session) per caller, by principal id. */
  callers: Map<string, UpstreamConnection>;
  /** Authorization code: the principal whose token lists its tools (none yet: not listed). */
  lister?: string;
}

function publicRecord(u: Upstream) {
  const c = u.config;
  return {
    name: c.name,
    transport: c.transport,
    ...(c.url ? { url: c.url } : {}),
    ...(c.command ? { command: c.command } : {}),
    ...(c.version ? { version: c.version } : {}),
    ...(c.health_check ? { health_check: c.health_check } : {}),
    ...(c.prefix !== undefined ? { prefix: c.prefix } : {}),
    ...(c.timeout_ms !== undefined ? { timeout_ms: c.timeout_ms } : {}),
    ...(c.tools ? { tools: c.tools } : {}),
    // The kind only: header values never leave the connection.
    ...(c.transport !== "stdio" ? { credential: u.credential } : {}),
    source: u.source,
    registered_at: u.registeredAt,
  };
}

function failureOf(e: unknown, name: string, timeoutMs: number): UpstreamFailure {
  if (e instanceof UpstreamUnavailableError) {
    return { ok: false, kind: "unavailable", message: e.message, retryAfterS: e.retryAfterS };
  }
  if (e instanceof SdkError && e.code === SdkErrorCode.RequestTimeout) {
    return {
      ok: false,
      kind: "timeout",
      message: `upstream ${name} timed out after ${timeoutMs} ms`,
    };
  }
  const message = e instanceof Error ? e.message.slice(0, 300) : String(e).slice(0, 300);
  return { ok: false, kind: "fault", message: `upstream ${name} failed: ${message}` };
}

/**
 * Creates the gateway over the configured upstreams and those registered at
 * runtime (kept in KV, so every instance sharing the KV serves them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createGateway, RegistrationError } from "./gateway.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * const kv = await Deno.openKv(":memory:");
 * const sealed: Record<string, unknown>[] = [];
 * const gateway = createGateway({
 *   kv,
 *   logger: silentLogger,
 *   upstreams: [], // the --upstreams file's; more are registered at runtime
 *   record: (fields) => Promise.resolve(sealed.push(fields)),
 *   reservedNames: () => ["seal_vault"],
 *   toolTimeoutMs: 25_000,
 *   onDeploy: false,
 *   operators: () => [],
 *   healthIntervalMs: 0,
 * });
 * await gateway.start();
 * assert.deepEqual(gateway.list(), []);
 * // A runtime registration naming a loopback endpoint is refused before any connection.
 * await assert.rejects(
 *   gateway.register({ name: "ev", transport: "streamable-http", url: "http://127.0.0.1:3001/mcp" }),
 *   (e: RegistrationError) => e.code === "invalid" && /loopback/.test(e.message),
 * );
 * assert.deepEqual(gateway.servers(), []);
 * await gateway.close();
 * kv.close();
 * ```
 */
// Kept whole for now: its 33 closures share the upstream table and the routing maps (upstreams,
// byTool, byPrompt) and the prober; the split into registry, router and health files
// (ARCHITECTURE.md) is left to the gateway work in progress (issue 11) so its rebases stay easy.
export function createGateway(deps: GatewayDeps): Gateway {
  const { kv, logger: log } = deps;
  const upstreams = new Map<string, Upstream>();
  const byTool = new Map<string, UpstreamToolEntry>();
  const byPrompt = new Map<string, { upstream: Upstream; prompt: string }>();
  let closed = false;
  let prober: ReturnType<typeof setInterval> | undefined;
  /** Timers of {@link listAgainSoon}, cleared on close. */
  const startRetries = new Set<ReturnType<typeof setTimeout>>();
  const authorizations = deps.publicBase && deps.credentials
    ? createUserAuthorizations({
      kv,
      credentials: deps.credentials,
      publicBase: deps.publicBase,
      ...(deps.now ? { now: deps.now } : {}),
      upstream: (name) => {
        const c = upstreams.get(name)?.config;
        return c?.oauth?.mode === "authorization_code"
          ? { url: c.url!, ...(c.oauth.scope ? { scope: c.oauth.scope } : {}) }
          : undefined;
      },
      onAuthorized: async (name, principal) => {
        // Who authorized Warden where is sealed; the kind of credential, never a value.
        await deps.record({
          type: "upstream_authorized",
          upstream: name,
          principal,
          credential: "oauth_authorization_code",
        });
        const u = upstreams.get(name);
        if (!u || u.lister !== undefined) return;
        // The first principal to authorize lists the upstream's tools for everyone.
        u.lister = principal;
        await refresh(name).catch((e) =>
          log.warn("cannot list upstream tools", { upstream: name, error: e })
        );
      },
    })
    : undefined;

  const gateway: Gateway = {
    start,
    list: () => [...byTool.values()].filter((e) => !e.quarantined).map((e) => e.descriptor),
    get: (name) => byTool.get(name),
    content: () => [...upstreams.values()].map(contentOf),
    prompt: (name) => {
      const owner = byPrompt.get(name);
      return owner ? { source: contentOf(owner.upstream), prompt: owner.prompt } : undefined;
    },
    notePrompts,
    servers: () => [...upstreams.values()].map(statusOf),
    server: (name) => {
      const u = upstreams.get(name);
      return u ? statusOf(u) : undefined;
    },
    register,
    remove,
    refresh,
    approveTool,
    close,
    ...(authorizations ? { authorizations } : {}),
  };

  function contentOf(u: Upstream): UpstreamContent {
    const config = u.config;
    const timeoutMs = Math.min(config.timeout_ms ?? deps.toolTimeoutMs, 15_000);
    return {
      server: config.name,
      prefix: exposedName(config, ""),
      async request(method, params) {
        const circuit = u.breaker.check();
        if (circuit.open) {
          throw new UpstreamUnavailableError(
            `upstream ${config.name} is failing (circuit open)`,
            circuit.retryAfterS ?? 1,
          );
        }
        let conn = u.connection;
        if (config.oauth?.mode === "authorization_code") {
          // The caller's own session: what one user may read, another may not.
          const c = await userConnection(u);
          if ("ok" in c) {
            if (method.endsWith("/list")) return null; // nothing of theirs to list yet
            throw new UpstreamOAuthError(
              `upstream ${config.name} acts as you: call its tool ${
                exposedName(config, "authorize")
              } (or any of its tools) for your authorization link first`,
            );
          }
          conn = c;
        }
        const done = u.breaker.begin();
        try {
          const result = await conn.content(method, params, timeoutMs);
          done(true);
          return result;
        } catch (e) {
          // An upstream's own error answer (unknown URI, bad prompt arguments) is not a failure
          // of the upstream; a timeout or a broken connection is.
          done(e instanceof ProtocolError);
          throw e;
        }
      },
    };
  }

  function statusOf(u: Upstream): UpstreamStatus {
    return {
      ...publicRecord(u),
      connection: u.connection.state(),
      circuit: u.breaker.snapshot(),
      tools: [...u.entries.values()].map((e) => ({
        name: e.descriptor.name,
        upstream_tool: e.upstreamTool,
        definition_sha256: e.definitionHash,
        pinned_sha256: e.pinnedHash,
        state: e.quarantined ? "quarantined" : e.pinnedHash !== e.definitionHash ? "changed" : "ok",
        ...(e.quarantineReason !== undefined ? { reason: e.quarantineReason } : {}),
      })),
      ...(u.refused.length ? { refused: u.refused } : {}),
    } as UpstreamStatus;
  }

  function create(
    config: UpstreamConfig,
    source: "file" | "api",
    registeredAt: string,
    fileIndex = 0,
  ): Upstream {
    if (config.transport === "stdio" && deps.onDeploy) {
      throw new RegistrationError(
        `Cannot run stdio upstream "${config.name}" on Deno Deploy: subprocesses are not ` +
          `available there; use a streamable-http or sse upstream`,
        "invalid",
        "transport",
      );
    }
    let tokens: UpstreamTokens | undefined;
    const userAuth = config.oauth?.mode === "authorization_code";
    if (userAuth && !authorizations) {
      throw new RegistrationError(
        `upstream ${config.name}: oauth mode "authorization_code" needs Warden's public URL ` +
          `and a credential key`,
        "invalid",
        "oauth",
      );
    }
    if (config.oauth && config.oauth.mode === undefined) {
      try {
        tokens = createUpstreamTokens(config.name, config.oauth, {
          resource: config.url!,
          env: deps.env ?? readEnv,
          timeoutMs: Math.min(config.timeout_ms ?? 10_000, 10_000),
        });
      } catch (e) {
        throw new RegistrationError((e as Error).message, "invalid", "oauth");
      }
    }
    const connection = createConnection(config, {
      logger: log,
      connectTimeoutMs: Math.min(config.timeout_ms ?? 10_000, 10_000),
      sandbox: deps.sandbox ?? true,
      ...connectGuard(config, source),
      credential: userAuth
        ? userCredential(config.name, () => u.lister, () => {
          u.lister = undefined;
        })
        : tokens
        ? serviceCredential(tokens)
        : storedCredential(config, (kind) => {
          u.credential = kind;
        }),
    });
    const u: Upstream = {
      config,
      source,
      registeredAt,
      connection,
      breaker: createBreaker(deps.breaker),
      rank: source === "file"
        ? [0, String(fileIndex).padStart(6, "0"), config.name]
        : [1, registeredAt, config.name],
      candidates: new Map(),
      prompts: [],
      entries: new Map(),
      listingRefused: [],
      refused: [],
      credential: userAuth
        ? "oauth_authorization_code"
        : config.oauth?.mode === undefined && config.oauth?.grant === "token_exchange"
        ? "oauth_token_exchange"
        : config.oauth
        ? "oauth_client_credentials"
        : "none",
      ...(tokens ? { tokens } : {}),
      callers: new Map(),
    };
    connection.onToolsChanged = () => {
      refresh(config.name).catch((e) =>
        log.warn("cannot re-list upstream tools", { upstream: config.name, error: e })
      );
    };
    connection.onPromptsChanged = () => {
      if (closed || upstreams.get(config.name) !== u) return;
      listPrompts(u, Math.min(config.timeout_ms ?? deps.toolTimeoutMs, 15_000)).then((names) => {
        u.prompts = names;
        rebuild();
        // Told even when the names stayed: a prompt's arguments or text may have changed.
        gateway.onChange?.("prompts");
      }).catch((e) =>
        log.warn("cannot re-list upstream prompts", { upstream: config.name, error: e })
      );
    };
    connection.onResourcesChanged = () => {
      if (!closed && upstreams.get(config.name) === u) gateway.onChange?.("resources");
    };
    connection.onResourceUpdated = (uri) => {
      if (!closed && upstreams.get(config.name) === u) {
        gateway.onResourceUpdated?.(config.name, uri);
      }
    };
    return u;
  }

  /**
   * The stored credential, asked for at every request but read from KV at most every
   * {@link CREDENTIAL_MAX_AGE_MS} (one read per request was the largest CPU cost of a routed
   * call): a credential set or rotated by another process applies within that, and from the next
   * request when the upstream refuses the old one (a 401 reads KV again before the one retry).
   */
  function storedCredential(
    config: UpstreamConfig,
    presented: (kind: PresentedCredential) => void,
  ): CredentialSource {
    let fresh = false;
    return {
      headers: async () => {
        const maxAgeMs = fresh ? 0 : CREDENTIAL_MAX_AGE_MS;
        fresh = false;
        const stored = await deps.credentials?.get(config.name, { maxAgeMs });
        presented(
          stored?.kind ??
            (config.headers && Object.keys(config.headers).length > 0
              ? "manifest_headers"
              : "none"),
        );
        return stored?.headers;
      },
      rejected: () => {
        fresh = true;
      },
    };
  }

  /** Client credentials: Warden's own token, asked for at every request (cached until near expiry). */
  function serviceCredential(tokens: UpstreamTokens): CredentialSource {
    return {
      headers: async () => ({ authorization: `Bearer ${await tokens.service()}` }),
      rejected: () => tokens.forget(),
    };
  }

  /**
   * Authorization code: the principal's own access token, asked for at every
   * request (refreshed when expired, or when the upstream refused it once).
   * No token (never authorized, or a refresh refused): the request fails and
   * the caller is given a link (see `userConnection`).
   */
  function userCredential(
    upstream: string,
    principal: () => string | undefined,
    lost: () => void,
  ): CredentialSource {
    let stale = false;
    return {
      headers: async () => {
        const who = principal();
        if (who === undefined) {
          throw new UpstreamOAuthError(`upstream ${upstream}: no principal has authorized Warden`);
        }
        const token = await authorizations!.accessToken(upstream, who, { stale });
        stale = false;
        if (token === undefined) {
          lost();
          throw new UpstreamOAuthError(
            `upstream ${upstream}: the authorization of ${who} lapsed; authorize again`,
          );
        }
        return { authorization: `Bearer ${token}` };
      },
      rejected: () => {
        stale = true;
      },
    };
  }

  /** The answer to a caller who must authorize Warden at `u` first: a link of their own. */
  async function authorizationRequired(u: Upstream, principal: string): Promise<UpstreamFailure> {
    const url = await authorizations!.authorizationUrl(u.config.name, principal);
    return {
      ok: false,
      kind: "authorization_required",
      authorizationUrl: url,
      message: `Upstream ${u.config.name} acts as you: authorize Warden there first. Open ` +
        `${url} in your browser, sign in and allow access, then call again (the link is for ` +
        `you alone, works once and expires in 10 minutes).`,
    };
  }

  /**
   * Authorization code: the caller's own connection (one upstream session per
   * principal, capped, least recently used evicted), or the failure to answer
   * with when the caller cannot use the upstream yet.
   */
  async function userConnection(u: Upstream): Promise<UpstreamConnection | UpstreamFailure> {
    const principal = currentRequest()?.principal;
    if (!principal || principal.kind === "anonymous") {
      return {
        ok: false,
        kind: "fault",
        message: `upstream ${u.config.name} acts as each caller: call with your own token ` +
          `(anonymous callers share one name and cannot authorize it)`,
      };
    }
    if (!(await authorizations!.has(u.config.name, principal.id))) {
      return await authorizationRequired(u, principal.id);
    }
    const id = principal.id;
    return callerFor(u, id, () => userCredential(u.config.name, () => id, () => {}));
  }

  /**
   * The principal's own connection to `u`: the open one, moved to most recently used (so the
   * oldest is evicted first), or a new one (no sandbox, connecting within 10 s) presenting
   * `credential()`, closing the least recently used one when the pool is full.
   */
  function callerFor(
    u: Upstream,
    principal: string,
    credential: () => CredentialSource,
  ): UpstreamConnection {
    const existing = u.callers.get(principal);
    if (existing) {
      u.callers.delete(principal);
      u.callers.set(principal, existing);
      return existing;
    }
    const conn = createConnection(u.config, {
      logger: log,
      connectTimeoutMs: Math.min(u.config.timeout_ms ?? 10_000, 10_000),
      sandbox: false,
      ...connectGuard(u.config, u.source),
      credential: credential(),
    });
    if (u.callers.size >= MAX_CALLER_CONNECTIONS) {
      const [oldest, c] = u.callers.entries().next().value!;
      u.callers.delete(oldest);
      c.close().catch(() => {});
    }
    u.callers.set(principal, conn);
    return conn;
  }

  /** Drops a principal's connection (its authorization lapsed: the next one starts clean). */
  function dropCaller(u: Upstream, principal: string): void {
    const c = u.callers.get(principal);
    if (!c) return;
    u.callers.delete(principal);
    c.close().catch(() => {});
  }

  /**
   * The connection a call goes out on. Token exchange: the caller's own
   * (one upstream session per principal, since the upstream sees a user per
   * session), presenting the caller's token exchanged for the upstream's
   * audience — never the caller's token. A caller without an OAuth token is
   * refused (a string says why).
   */
  function callerConnection(u: Upstream): UpstreamConnection | string {
    if (
      u.config.oauth?.mode !== undefined || u.config.oauth?.grant !== "token_exchange" || !u.tokens
    ) return u.connection;
    const principal = currentRequest()?.principal;
    let bearer = currentBearer();
    if (!principal || bearer === undefined) {
      return `upstream ${u.config.name} acts for the caller by OAuth token exchange: ` +
        `call with an OAuth access token (this caller has none)`;
    }
    const tokens = u.tokens;
    return callerFor(u, principal.id, () => ({
      headers: async () => {
        // The caller's newest token while a request of theirs is in flight (it may be refreshed).
        const now = currentRequest()?.principal?.id === principal.id ? currentBearer() : undefined;
        if (now !== undefined) bearer = now;
        return { authorization: `Bearer ${await tokens.exchange(bearer!)}` };
      },
      rejected: () => tokens.forget(bearer),
    }));
  }

  /** Closes an upstream's connection and every per-caller one. */
  async function closeConnections(u: Upstream): Promise<void> {
    const callers = [...u.callers.values()];
    u.callers.clear();
    await Promise.all([u.connection.close(), ...callers.map((c) => c.close())]);
  }

  async function pinFor(
    u: Upstream,
    tool: Tool,
    hash: string,
  ): Promise<string> {
    const key = upstreamPinKey(u.config.name, tool.name);
    const configured = u.config.pin?.[tool.name];
    const existing = await kv.get<{ sha256: string }>(key);
    if (existing.value) return existing.value.sha256;
    const pinned = configured ?? hash;
    // First sight pins the definition; a concurrent instance pinning first wins.
    const res = await kv.atomic().check(existing).set(key, {
      sha256: pinned,
      pinned_at: new Date().toISOString(),
      by: configured ? "upstreams file" : "first registration",
    }).commit();
    if (!res.ok) return (await kv.get<{ sha256: string }>(key)).value?.sha256 ?? pinned;
    await deps.record({
      type: "upstream_tool_pinned",
      upstream: u.config.name,
      tool: tool.name,
      definition_sha256: pinned,
    });
    return pinned;
  }

  /** Upstreams in the order that decides collisions: the file's order, then registration time. */
  function ranked(): Upstream[] {
    const key = (u: Upstream) => u.rank.join("\u0000");
    return [...upstreams.values()].sort((x, y) => key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0);
  }

  /** The names already taken, before `except`'s: Warden's own, then each upstream's kept ones. */
  function taken() {
    const tools = new Map<string, string>();
    for (const n of deps.reservedNames()) tools.set(n, `Warden's own tool "${n}"`);
    const prompts = new Map<string, string>();
    for (const n of deps.reservedPrompts?.() ?? []) prompts.set(n, `Warden's own prompt "${n}"`);
    return { tools, prompts };
  }

  /**
   * Resolves one upstream's names against those taken: returns what it keeps
   * and a message per name it is refused, naming both sides; marks its kept
   * names taken.
   */
  function claim(u: Upstream, names: ReturnType<typeof taken>) {
    const name = u.config.name;
    const tools = new Map<string, UpstreamToolEntry>();
    const prompts = new Map<string, string>();
    const refused: string[] = [];
    for (const [exposed, entry] of u.candidates) {
      const owner = names.tools.get(exposed);
      if (owner) {
        refused.push(`tool "${exposed}" from upstream ${name} collides with ${owner}`);
        continue;
      }
      names.tools.set(exposed, `"${entry.upstreamTool}" from upstream ${name}`);
      tools.set(exposed, entry);
    }
    for (const prompt of u.prompts) {
      const exposed = exposedName(u.config, prompt);
      const owner = names.prompts.get(exposed);
      if (owner) {
        refused.push(`prompt "${exposed}" from upstream ${name} collides with ${owner}`);
        continue;
      }
      names.prompts.set(exposed, `prompt "${prompt}" from upstream ${name}`);
      prompts.set(exposed, prompt);
    }
    return { tools, prompts, refused };
  }

  /**
   * Rebuilds the whole catalogue from every upstream's candidates, in rank
   * order, so which side keeps a contested name never depends on which
   * upstream answered first. Returns whether the prompt names changed.
   */
  function rebuild(): { prompts: boolean } {
    const before = [...byPrompt.entries()].map(([k, v]) => `${k}\u0000${v.upstream.config.name}`)
      .join("\n");
    const names = taken();
    byTool.clear();
    byPrompt.clear();
    for (const u of ranked()) {
      const kept = claim(u, names);
      const refused = [...u.listingRefused, ...kept.refused];
      for (const r of refused) {
        if (!u.refused.includes(r)) {
          log.error("upstream name refused", { upstream: u.config.name, reason: r });
        }
      }
      u.entries = kept.tools;
      u.refused = refused;
      for (const [exposed, entry] of kept.tools) byTool.set(exposed, entry);
      for (const [exposed, prompt] of kept.prompts) byPrompt.set(exposed, { upstream: u, prompt });
    }
    const after = [...byPrompt.entries()].map(([k, v]) => `${k}\u0000${v.upstream.config.name}`)
      .join("\n");
    return { prompts: before !== after };
  }

  /** The first name `u` would be refused against the catalogue without `u`'s own current names. */
  function firstCollision(u: Upstream): string | undefined {
    const names = taken();
    for (const other of ranked()) {
      if (other.config.name !== u.config.name) claim(other, names);
    }
    const mine = claim(u, names);
    return [...u.listingRefused, ...mine.refused][0];
  }

  function notePrompts(server: string, names: readonly string[]): void {
    const u = upstreams.get(server);
    if (!u || closed) return;
    const listed = promptNames(names);
    if (listed.join("\n") === u.prompts.join("\n")) return;
    u.prompts = listed;
    if (rebuild().prompts) gateway.onChange?.("prompts");
  }

  function promptNames(names: readonly unknown[]): string[] {
    const out = new Set<string>();
    for (const n of names.slice(0, 1000)) {
      if (typeof n === "string" && n.length > 0 && n.length <= 200) out.add(n);
    }
    return [...out];
  }

  /** The upstream's prompt names, or its previous ones when it cannot list them now. */
  async function listPrompts(u: Upstream, timeoutMs: number): Promise<readonly string[]> {
    try {
      const answer = await u.connection.content("prompts/list", undefined, timeoutMs);
      const prompts = (answer?.prompts ?? []) as { name?: unknown }[];
      return promptNames(Array.isArray(prompts) ? prompts.map((p) => p?.name) : []);
    } catch (e) {
      log.warn("cannot list upstream prompts", { upstream: u.config.name, error: e });
      return u.prompts;
    }
  }

  /**
   * Lists an upstream's tools and prompts, pins and scans the tools, and
   * rebuilds the catalogue. With `strictCollisions` (a runtime registration)
   * a name that another upstream or Warden itself holds refuses the whole
   * upstream (409) and nothing changes.
   */
  // Kept whole: one upstream's load is one transaction — list, check every name against the others
  // and Warden's own, then swap the routing entries — and reads top to bottom.
  async function load(
    u: Upstream,
    options: { strictCollisions: boolean; install?: boolean },
  ): Promise<void> {
    const config = u.config;
    const timeoutMs = config.timeout_ms ?? deps.toolTimeoutMs;
    if (config.oauth?.mode === "authorization_code" && u.lister === undefined) {
      u.lister = await authorizations!.anyPrincipal(config.name);
      if (u.lister === undefined) {
        // Nobody has authorized Warden there yet: its tools cannot be listed, so it offers
        // one tool that hands the caller a link; the first authorization lists the rest.
        const entry = authorizeEntry(u);
        u.candidates = new Map([[entry.descriptor.name, entry]]);
        u.prompts = [];
        u.listingRefused = [];
        if (options.install === false) return;
        const changed = rebuild();
        gateway.onChange?.("tools");
        if (changed.prompts) gateway.onChange?.("prompts");
        return;
      }
    }
    const tools = await u.connection.listTools(Math.min(timeoutMs, 15_000));
    const prompts = await listPrompts(u, Math.min(timeoutMs, 15_000));
    const server = u.connection.state();
    const version = config.version ?? server.serverVersion;
    const candidates = new Map<string, { tool: Tool; name: string }>();
    const listingRefused: string[] = [];
    for (const tool of tools.slice(0, 1000)) {
      if (!toolAllowed(config, tool.name)) continue;
      const name = exposedName(config, tool.name);
      const problem = !/^[A-Za-z0-9_.-]{1,128}$/.test(name)
        ? `tool "${name}" from upstream ${config.name} is not a valid tool name`
        : candidates.has(name)
        ? `tool "${name}" is listed twice by upstream ${config.name}`
        : undefined;
      if (problem) listingRefused.push(problem);
      else candidates.set(name, { tool, name });
    }
    if (options.strictCollisions) {
      // Checked before anything is pinned or recorded: a refused registration leaves no trace.
      const probe: Upstream = {
        ...u,
        candidates: new Map(
          [...candidates].map(([n, c]) => [n, { upstreamTool: c.tool.name } as UpstreamToolEntry]),
        ),
        prompts,
        listingRefused,
      };
      const collision = firstCollision(probe);
      if (collision) {
        throw new RegistrationError(
          `Cannot register upstream ${config.name}: ${collision}; set a different "prefix"`,
          "conflict",
          "prefix",
        );
      }
    }
    const entries = new Map<string, UpstreamToolEntry>();
    // One validator provider per listing: a schema's `$id` resolves within this upstream only.
    const validators = outputValidatorProvider();
    for (const { tool, name } of candidates.values()) {
      const hash = definitionHash(tool);
      const pinned = await pinFor(u, tool, hash);
      const description = tool.description ?? "";
      const poison = findInjections(
        { description, title: tool.title ?? "", schema: JSON.stringify(tool.inputSchema ?? {}) },
        "description",
      );
      const previous = u.candidates.get(name);
      if (poison.length > 0 && (!previous?.quarantined || previous.definitionHash !== hash)) {
        log.warn("upstream tool quarantined: injection patterns in its definition", {
          upstream: config.name,
          tool: tool.name,
        });
        await deps.record({
          type: "upstream_tool_quarantined",
          upstream: config.name,
          tool: tool.name,
          definition_sha256: hash,
          patterns: [...new Set(poison.map((p) => p.pattern))],
        });
      }
      // Compiled once, here, and reused by its calls. Listed, a schema the SDK's client cannot
      // compile would make its listTools throw on the whole listing: it is quarantined instead.
      let output: OutputCheck | undefined;
      let unchecked: string | undefined;
      try {
        output = outputCheck(tool.outputSchema as Record<string, unknown> | undefined, validators);
      } catch (e) {
        if (!(e instanceof OutputSchemaError)) throw e;
        unchecked = e.message;
      }
      if (
        unchecked !== undefined &&
        (previous?.quarantineReason === undefined || previous.definitionHash !== hash)
      ) {
        log.warn("upstream tool quarantined: its outputSchema does not compile", {
          upstream: config.name,
          tool: tool.name,
          reason: unchecked,
        });
        await deps.record({
          type: "upstream_tool_quarantined",
          upstream: config.name,
          tool: tool.name,
          definition_sha256: hash,
          reason: unchecked,
        });
      }
      if (pinned !== hash && previous?.definitionHash !== hash) {
        log.warn("upstream tool definition changed; held until an operator re-approves it", {
          upstream: config.name,
          tool: tool.name,
        });
        await deps.record({
          type: "upstream_tool_changed",
          upstream: config.name,
          tool: tool.name,
          pinned_sha256: pinned,
          definition_sha256: hash,
        });
      }
      const upstreamTool = tool.name;
      entries.set(name, {
        descriptor: {
          name,
          ...(tool.title ? { title: tool.title } : {}),
          description,
          inputSchema: tool.inputSchema as Record<string, unknown>,
          ...(tool.outputSchema
            ? { outputSchema: tool.outputSchema as Record<string, unknown> }
            : {}),
          annotations: { ...(tool.annotations ?? {}) },
        },
        upstream: config.name,
        upstreamTool,
        ...(version ? { upstreamVersion: version } : {}),
        credential: () => u.credential,
        definitionHash: hash,
        pinnedHash: pinned,
        quarantined: poison.length > 0 || unchecked !== undefined,
        ...(unchecked !== undefined ? { quarantineReason: unchecked } : {}),
        timeoutMs,
        circuit: () => u.breaker.check(),
        call: async (args, opts) => {
          if (unchecked !== undefined) {
            // As the SDK's client: a schema that cannot be checked is refused before the call.
            const message = `upstream ${config.name}'s tool ${upstreamTool} is quarantined: ` +
              unchecked;
            return { ok: false, kind: "fault", message };
          }
          let conn: UpstreamConnection;
          let principal: string | undefined;
          if (config.oauth?.mode === "authorization_code") {
            const c = await userConnection(u);
            if ("ok" in c) return c;
            conn = c;
            principal = currentRequest()!.principal!.id;
          } else {
            const c = callerConnection(u);
            if (typeof c === "string") return { ok: false, kind: "fault", message: c };
            conn = c;
          }
          const done = u.breaker.begin();
          try {
            const result = await conn.callTool(upstreamTool, args, {
              timeoutMs,
              ...(opts.signal ? { signal: opts.signal } : {}),
            });
            done(true);
            const issues = output?.(result) ?? [];
            if (issues.length > 0) {
              log.warn("upstream tool result does not match its outputSchema", {
                upstream: config.name,
                tool: upstreamTool,
                issues,
              });
              return {
                ok: false,
                kind: "invalid_output",
                message: `upstream ${config.name}'s tool ${upstreamTool} answered a result that ` +
                  `does not match its pinned outputSchema: ${issues.join("; ")}`,
                issues,
              };
            }
            // Its resource links name Warden's URIs, which read back through Warden.
            return { ok: true, result: namespaceResultUris(result, config.name) };
          } catch (e) {
            if (principal !== undefined && !(await authorizations!.has(config.name, principal))) {
              // The caller's authorization lapsed (refresh refused): not the upstream's failure.
              done(true);
              dropCaller(u, principal);
              return await authorizationRequired(u, principal);
            }
            const failure = failureOf(e, config.name, timeoutMs);
            done(false);
            if (failure.kind !== "unavailable" || !failure.retryAfterS) {
              return { ...failure, retryAfterS: u.breaker.snapshot().retry_after_s ?? 1 };
            }
            return failure;
          }
        },
      });
    }
    u.candidates = entries;
    u.prompts = prompts;
    u.listingRefused = listingRefused;
    // A registration is installed by `register` once it is accepted; everything else now.
    if (options.install === false) return;
    const changed = rebuild();
    gateway.onChange?.("tools");
    if (changed.prompts) gateway.onChange?.("prompts");
  }

  /** The one tool of an authorization-code upstream nobody has authorized yet. */
  function authorizeEntry(u: Upstream): UpstreamToolEntry {
    const name = exposedName(u.config, "authorize");
    const descriptor: UpstreamToolDescriptor = {
      name,
      title: `Authorize Warden at ${u.config.name}`,
      description: `Upstream ${u.config.name} acts as each caller, so each caller authorizes ` +
        `Warden there once. Answers with your own link to do so; the upstream's tools are ` +
        `listed once someone has.`,
      inputSchema: { type: "object", properties: {}, additionalProperties: false },
      annotations: { readOnlyHint: true, openWorldHint: true },
    };
    const hash = digestJson(descriptor);
    return {
      descriptor,
      upstream: u.config.name,
      upstreamTool: "authorize",
      credential: () => u.credential,
      definitionHash: hash,
      pinnedHash: hash,
      quarantined: false,
      timeoutMs: 10_000,
      circuit: () => ({ open: false }),
      call: async () => {
        const c = await userConnection(u);
        if ("ok" in c) return c;
        return {
          ok: true,
          result: {
            content: [{
              type: "text",
              text: `Warden is authorized at upstream ${u.config.name} for you already.`,
            }],
          },
        };
      },
    };
  }

  async function persist(u: Upstream): Promise<void> {
    let config = u.config;
    if (u.source === "api" && config.headers !== undefined) {
      // A registration's headers are secrets: they go to the encrypted store, never into
      // the registry record (`register` refused them already when there is no key).
      const { headers, ...rest } = config;
      await deps.credentials!.set(config.name, { kind: "headers", headers });
      config = u.config = rest;
    }
    await kv.set(upstreamKey(u.config.name), {
      ...publicRecord(u),
      // Only runtime registrations are replayed from KV; file upstreams come from the file.
      ...(u.source === "api" ? { config } : {}),
      tool_names: [...u.entries.keys()],
    });
  }

  async function start(): Promise<void> {
    const now = new Date().toISOString();
    for (const [i, config] of deps.upstreams.entries()) {
      try {
        upstreams.set(config.name, create(config, "file", now, i));
      } catch (e) {
        log.error("upstream refused", { upstream: config.name, error: e });
      }
    }
    // Upstreams registered at runtime by any instance sharing this KV.
    for await (
      const rec of kv.list<{ source: string; config?: UpstreamConfig; registered_at: string }>({
        prefix: upstreamPrefix(),
      })
    ) {
      const v = rec.value;
      if (v.source !== "api" || !v.config || upstreams.has(v.config.name)) continue;
      try {
        upstreams.set(v.config.name, create(v.config, "api", v.registered_at));
      } catch (e) {
        log.error("upstream refused", { upstream: v.config.name, error: e });
      }
    }
    await Promise.all([...upstreams.values()].map(async (u) => {
      try {
        await load(u, { strictCollisions: false });
      } catch (e) {
        log.warn("upstream not available at start; its tools appear once it answers", {
          upstream: u.config.name,
          error: e,
        });
        listAgainSoon(u, START_RETRY_MS);
      }
      await persist(u).catch((e) => log.warn("cannot record upstream", { error: e }));
      await deps.record({
        type: "upstream_loaded",
        upstream: u.config.name,
        transport: u.config.transport,
        source: u.source,
        version: u.config.version ?? u.connection.state().serverVersion ?? null,
        tools: u.entries.size,
      });
    }));
    startProbes();
  }

  async function resolveHost(host: string): Promise<string[]> {
    if (deps.resolve) return await deps.resolve(host);
    const settled = await Promise.allSettled([
      Deno.resolveDns(host, "A", { signal: AbortSignal.timeout(5_000) }),
      Deno.resolveDns(host, "AAAA", { signal: AbortSignal.timeout(5_000) }),
    ]);
    return settled.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  }

  /**
   * A runtime registration's endpoint passes the guard before every connection attempt, not only
   * when it is registered: a registration read from KV (at start, or adopted from another
   * instance) meets this process's `--registry-allow-hosts`, and a name is judged by what it
   * resolves to now. File upstreams are the operator's own and are not guarded.
   */
  function connectGuard(
    config: UpstreamConfig,
    source: "file" | "api",
  ): { beforeConnect?: () => Promise<void> } {
    return source === "api" ? { beforeConnect: () => guard("endpoint", config.url!) } : {};
  }

  /** The SSRF guard for a registered endpoint; throws naming the field. */
  async function guard(field: string, url: string): Promise<void> {
    const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
    const literal = isPrivateAddress(host) !== "not a valid IP address";
    const local = /^localhost\.?$|\.localhost\.?$/i.test(host);
    const addresses = literal ? [host] : local ? ["127.0.0.1"] : await resolveHost(host);
    if (addresses.length === 0) {
      throw new RegistrationError(`${field}: cannot resolve host "${host}"`, "invalid", field);
    }
    const why = addresses.map((a) => isPrivateAddress(a)).find((r) => r !== null);
    if (why && !hostAllowed(host, addresses, deps.allowHosts ?? [])) {
      throw new RegistrationError(
        `${field}: "${host}" is a ${why}; Warden does not connect to private, loopback or ` +
          `link-local endpoints unless --registry-allow-hosts names them`,
        "invalid",
        field,
      );
    }
  }

  async function register(config: UpstreamConfig): Promise<UpstreamStatus> {
    if (config.headers !== undefined && deps.credentials?.available !== true) {
      throw new RegistrationError(
        `Cannot register "${config.name}" with headers: they are kept encrypted, and this Warden ` +
          `has no credential key (set WARDEN_CREDENTIAL_KEY or --credential-key FILE)`,
        "invalid",
        "headers",
      );
    }
    await guard("endpoint", config.url!);
    if (config.health_check) await guard("health_check", config.health_check);
    const existing = upstreams.get(config.name);
    if (existing?.source === "file") {
      throw new RegistrationError(
        `Cannot register "${config.name}": an upstream of that name is configured in the upstreams file`,
        "conflict",
        "server_name",
      );
    }
    const u = create(config, "api", existing?.registeredAt ?? new Date().toISOString());
    try {
      await load(u, { strictCollisions: true, install: false });
    } catch (e) {
      await closeConnections(u);
      if (e instanceof RegistrationError || e instanceof ManifestError) throw e;
      throw new RegistrationError(
        `Cannot register "${config.name}": cannot list its tools at ${config.url}: ${
          e instanceof Error ? e.message.slice(0, 200) : String(e)
        }`,
        "invalid",
        "endpoint",
      );
    }
    upstreams.set(config.name, u);
    rebuild();
    if (existing) await closeConnections(existing);
    await persist(u);
    await deps.record({
      type: existing ? "upstream_updated" : "upstream_registered",
      upstream: config.name,
      endpoint: config.url ?? null,
      transport: config.transport,
      version: config.version ?? null,
      previous_version: existing?.config.version ?? null,
      tools: [...u.entries.values()].map((e) => e.descriptor.name),
    });
    for (const kind of ["tools", "prompts", "resources"] as const) gateway.onChange?.(kind);
    await announce(config.name, existing ? "updated" : "registered");
    return statusOf(u);
  }

  async function remove(name: string): Promise<void> {
    const u = upstreams.get(name);
    if (!u) throw new RegistrationError(`No upstream named "${name}"`, "not_found", "name");
    if (u.source === "file") {
      throw new RegistrationError(
        `Cannot remove "${name}": it is configured in the upstreams file`,
        "conflict",
        "name",
      );
    }
    upstreams.delete(name);
    // Names it held may now go to the next upstream in rank.
    rebuild();
    await closeConnections(u);
    await kv.delete(upstreamKey(name));
    await deps.credentials?.remove(name);
    await deps.record({ type: "upstream_removed", upstream: name });
    for (const kind of ["tools", "prompts", "resources"] as const) gateway.onChange?.(kind);
    await announce(name, "removed");
  }

  /** Tells the other instances sharing the KV; a failure is logged (they resync on their next event). */
  async function announce(name: string, op: "registered" | "updated" | "removed" | "approved") {
    await deps.events?.publish(UPSTREAM_EVENT, { name, op }).catch((e) =>
      log.warn("cannot announce an upstream change to the other instances", {
        upstream: name,
        error: e,
      })
    );
  }

  /** One change at a time per upstream name, in the order the events came. */
  const applying = new Map<string, Promise<void>>();
  function applyRemote(name: string): Promise<void> {
    const next = (applying.get(name) ?? Promise.resolve()).then(() => adopt(name)).catch((e) =>
      log.warn("cannot apply another instance's upstream change", { upstream: name, error: e })
    );
    applying.set(name, next);
    next.finally(() => {
      if (applying.get(name) === next) applying.delete(name);
    });
    return next;
  }

  /**
   * Makes this instance hold what KV holds for `name` after another instance registered,
   * updated, removed or approved it: a runtime registration is (re)connected and listed from its
   * record, a removed one is dropped, an approved tool is re-listed with its new pin. Nothing is
   * written or sealed here: the instance that made the change did both.
   */
  async function adopt(name: string): Promise<void> {
    if (closed) return;
    const local = upstreams.get(name);
    const rec = await kv.get<{ source: string; config?: UpstreamConfig; registered_at: string }>(
      upstreamKey(name),
    );
    const v = rec.value;
    if (local?.source === "file") {
      // Only a pin can have changed for a file upstream: re-list it.
      await load(local, { strictCollisions: false });
      return;
    }
    if (v === null || v.source !== "api" || !v.config) {
      if (!local) return;
      upstreams.delete(name);
      rebuild();
      await closeConnections(local);
      for (const kind of ["tools", "prompts", "resources"] as const) gateway.onChange?.(kind);
      return;
    }
    if (local && JSON.stringify(local.config) === JSON.stringify(v.config)) {
      // The same registration (an approval, or an update that kept the manifest): re-list it.
      await load(local, { strictCollisions: false });
      return;
    }
    const u = create(v.config, "api", v.registered_at);
    try {
      await load(u, { strictCollisions: false, install: false });
    } catch (e) {
      log.warn("an upstream another instance registered is not available here yet", {
        upstream: name,
        error: e,
      });
    }
    if (closed) {
      await closeConnections(u);
      return;
    }
    upstreams.set(name, u);
    rebuild();
    if (local) await closeConnections(local);
    for (const kind of ["tools", "prompts", "resources"] as const) gateway.onChange?.(kind);
  }

  /** After missed events: every runtime registration in KV, and every one held here, again. */
  async function resync(): Promise<void> {
    const names = new Set<string>();
    for (const u of upstreams.values()) if (u.source === "api") names.add(u.config.name);
    for await (
      const rec of kv.list<{ source: string; config?: UpstreamConfig }>({
        prefix: upstreamPrefix(),
      })
    ) if (rec.value.source === "api" && rec.value.config) names.add(rec.value.config.name);
    await Promise.all([...names].map(applyRemote));
  }

  const unsubscribe = deps.events?.on((event: InstanceEvent) => {
    if (closed) return;
    if (event.type === "resync") {
      resync().catch((e) => log.warn("cannot resync upstreams", { error: e }));
    } else if (event.type === UPSTREAM_EVENT && typeof event.data.name === "string") {
      void applyRemote(event.data.name);
    }
  });

  async function refresh(name: string): Promise<void> {
    const u = upstreams.get(name);
    if (!u || closed) return;
    await load(u, { strictCollisions: false });
    await persist(u);
  }

  async function approveTool(
    input: { server: string; tool: string; sha256: string; operator: string; signature: string },
  ): Promise<{ pinned: string }> {
    const u = upstreams.get(input.server);
    if (!u) {
      throw new RegistrationError(`No upstream named "${input.server}"`, "not_found", "server");
    }
    const entry = [...u.entries.values()].find((e) => e.upstreamTool === input.tool);
    if (!entry) {
      throw new RegistrationError(
        `Upstream ${input.server} has no tool "${input.tool}"`,
        "not_found",
        "tool",
      );
    }
    if (entry.definitionHash !== input.sha256) {
      throw new RegistrationError(
        `The signed definition ${input.sha256} is not the current one (${entry.definitionHash})`,
        "conflict",
        "sha256",
      );
    }
    const operator = deps.operators().find((o) => o.name === input.operator);
    const valid = operator !== undefined && await verifyOperatorSignature(
      operator,
      toolApprovalMessage(input.server, input.tool, input.sha256),
      input.signature,
    );
    if (!valid) {
      throw new RegistrationError(
        `Signature of operator "${input.operator}" does not verify`,
        "bad_signature",
        "signature",
      );
    }
    await kv.set(upstreamPinKey(input.server, input.tool), {
      sha256: input.sha256,
      pinned_at: new Date().toISOString(),
      by: `operator ${input.operator}`,
    });
    await deps.record({
      type: "upstream_tool_approved",
      upstream: input.server,
      tool: input.tool,
      definition_sha256: input.sha256,
      previous_sha256: entry.pinnedHash,
      operator: input.operator,
      signature: input.signature,
    });
    await load(u, { strictCollisions: false });
    await announce(input.server, "approved");
    return { pinned: input.sha256 };
  }

  /**
   * One health probe: the upstream's health_check URL (any status below 500)
   * or an MCP ping. Its outcome feeds the breaker like a call's; an upstream
   * that was down at start is listed once it answers.
   */
  async function probe(u: Upstream): Promise<void> {
    if (u.breaker.check().open) return; // still cooling down: the half-open probe waits
    if (u.config.oauth?.mode === "authorization_code" && u.lister === undefined) {
      // Nobody has authorized yet: there is no token to probe with. Someone may have since,
      // in another process sharing the KV.
      if (await authorizations!.anyPrincipal(u.config.name)) await refresh(u.config.name);
      return;
    }
    const done = u.breaker.begin();
    const timeoutMs = Math.min(u.config.timeout_ms ?? 5_000, 5_000);
    try {
      if (u.config.health_check) {
        if (u.source === "api") await guard("health_check", u.config.health_check);
        const res = await fetch(u.config.health_check, {
          signal: AbortSignal.timeout(timeoutMs),
          redirect: "manual",
        });
        await res.body?.cancel();
        if (res.status >= 500) throw new Error(`health check answered ${res.status}`);
      } else {
        await u.connection.ping(timeoutMs);
      }
      done(true);
      if (u.entries.size === 0) await refresh(u.config.name);
    } catch (e) {
      done(false);
      log.debug("upstream health probe failed", { upstream: u.config.name, error: e });
    }
  }

  /**
   * An upstream that did not answer at start is listed again soon — after `delayMs`, then twice
   * as long each time — until it answers or the wait reaches the probe interval, where the
   * probes take over. Its tools then appear moments after it comes up (an upstream started
   * beside Warden, say), not up to a probe period later; until then its tools are unknown.
   */
  function listAgainSoon(u: Upstream, delayMs: number): void {
    const every = deps.healthIntervalMs ?? 15_000;
    if (closed || every <= 0 || delayMs >= every) return;
    const timer = setTimeout(async () => {
      startRetries.delete(timer);
      if (closed || upstreams.get(u.config.name) !== u || u.entries.size > 0) return;
      try {
        await refresh(u.config.name);
        log.info("upstream listed after a failed start", { upstream: u.config.name });
      } catch {
        listAgainSoon(u, delayMs * 2);
      }
    }, delayMs);
    startRetries.add(timer);
  }

  function startProbes(): void {
    const every = deps.healthIntervalMs ?? 15_000;
    if (every <= 0) return;
    prober = setInterval(() => {
      for (const u of upstreams.values()) {
        probe(u).catch((e) =>
          log.warn("health probe error", { upstream: u.config.name, error: e })
        );
      }
    }, every);
  }

  async function close(): Promise<void> {
    closed = true;
    unsubscribe?.();
    if (prober !== undefined) clearInterval(prober);
    for (const timer of startRetries) clearTimeout(timer);
    startRetries.clear();
    await Promise.all([...applying.values()]);
    await Promise.all([...upstreams.values()].map((u) => closeConnections(u)));
  }

  return gateway;
}
