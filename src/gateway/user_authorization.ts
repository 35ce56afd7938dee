/**
 * Per-principal OAuth to an upstream (issue 12 §4): an upstream whose
 * authorization server needs the user to consent (`oauth: {mode:
 * "authorization_code"}`) gets, from each principal, that principal's own
 * token — never the caller's Warden token.
 *
 * The protocol is the v2 SDK client's `auth()`: discovery from the upstream's
 * 401 and RFC 9728 metadata, registration by Warden's own client ID metadata
 * document (when Warden's public URL is https and the authorization server
 * supports CIMD) or else dynamically, PKCE S256, RFC 8707 `resource`, RFC
 * 9207 `iss` check, refresh. What Warden adds around it:
 *
 * - a **link** for the principal: a sealed, single-use ticket naming the
 *   principal and upstream, valid ten minutes, that opens `/oauth/upstream/start`;
 * - `start` binds the browser (a random cookie whose hash the flow keeps),
 *   stores the flow under the hash of a random `state` (PKCE verifier sealed),
 *   and redirects to the authorization server;
 * - `callback` takes the flow once (atomically deleted: a replay finds
 *   nothing), only from the browser that started it (another principal's
 *   browser is refused), and stores the principal's tokens sealed with the
 *   credential key (AES-256-GCM, bound to upstream and principal);
 * - tokens are refreshed when Warden's clock says they expired or the upstream
 *   refused them; a refresh that fails deletes them, and the principal gets a
 *   new link.
 *
 * Nothing here logs or seals a token, verifier, state or ticket.
 *
 * @module
 */
import {
  auth,
  AuthorizationServerMismatchError,
  extractWWWAuthenticateParams,
  IssuerMismatchError,
  type OAuthClientMetadata,
  type OAuthDiscoveryState,
} from "@modelcontextprotocol/client";
import { timingSafeEqual } from "node:crypto";
import { sha256HexOfText } from "../lib/mod.ts";
import {
  upstreamAuthStateKey,
  upstreamAuthTicketUsedKey,
  upstreamUserTokenPrefix,
} from "../store/mod.ts";
import { CredentialError, type CredentialStore, UndecryptableError } from "./credentials.ts";
import type { SealedBox } from "./credentials.ts";
import { cappedFetch } from "./upstream_oauth.ts";
import { createTokenVault, type Flow, type TokenRecord, type TokenVault } from "./_user_tokens.ts";

/** Where Warden serves its client ID metadata document. */
export const CLIENT_METADATA_PATH = "/oauth/client-metadata.json";
/** The link a principal opens to authorize Warden at an upstream. */
export const START_PATH = "/oauth/upstream/start";
/** The redirect URI the upstream's authorization server sends the browser back to. */
export const CALLBACK_PATH = "/oauth/upstream/callback";

/** How long a link and a started flow stay usable. */
const FLOW_TTL_MS = 10 * 60_000;
const TIMEOUT_MS = 10_000;
const RANDOM = /^[A-Za-z0-9_-]{43}$/;
/** How long a principal's tokens read from KV answer without reading again. */
const TOKEN_MAX_AGE_MS = 5_000;

/** A link, start or callback Warden refuses; `status` is the HTTP answer. */
export class AuthorizationFlowError extends Error {
  override name = "AuthorizationFlowError";
  constructor(message: string, readonly status: 400 | 403 | 404 | 502) {
    super(message);
  }
}

/** What the store needs to know of an authorization-code upstream. */
export interface AuthorizationCodeUpstream {
  /** The MCP endpoint: the protected resource. */
  readonly url: string;
  readonly scope?: string;
}

/** Per-principal authorization at authorization-code upstreams. */
export interface UserAuthorizations {
  /** Warden's client ID metadata document (its `client_id` is the URL it is served at). */
  clientMetadata(): OAuthClientMetadata & { client_id: string };
  /** A fresh link at which `principal` authorizes Warden at `upstream` (single use, 10 minutes). */
  authorizationUrl(upstream: string, principal: string): Promise<string>;
  /**
   * Opens a link: returns where to send the browser (the authorization
   * server) and the cookie that binds the flow to this browser.
   */
  start(
    ticket: string,
  ): Promise<{ location: string; cookie: { name: string; value: string; maxAgeS: number } }>;
  /** The authorization server's redirect back; stores the principal's tokens. */
  callback(
    params: URLSearchParams,
    cookie: (name: string) => string | undefined,
  ): Promise<{ upstream: string; principal: string }>;
  /**
   * The principal's access token for `upstream`, refreshed first when it has
   * expired or `stale` (the upstream refused it); undefined when the principal
   * must authorize (again).
   */
  accessToken(
    upstream: string,
    principal: string,
    options?: { stale?: boolean },
  ): Promise<string | undefined>;
  /** Whether the principal holds tokens for `upstream`. */
  has(upstream: string, principal: string): Promise<boolean>;
  /** A principal holding tokens for `upstream` (the gateway lists its tools as them). */
  anyPrincipal(upstream: string): Promise<string | undefined>;
  /** The cookie name a callback for `state` reads. */
  cookieName(state: string): string;
}

interface FlowRecord {
  readonly v: 1;
  readonly upstream: string;
  readonly principal: string;
  readonly nonce_sha256: string;
  readonly expires_at: number;
  /** `{verifier, discovery}` sealed. */
  readonly box: SealedBox;
}

function randomToken(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function sameHex(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function one(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) {
    throw new AuthorizationFlowError(`The callback carries "${name}" more than once`, 400);
  }
  return all[0];
}

function describe(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/[^ -~]/g, "?").slice(0, 200);
}

/** A fetch for the authorization server: answers capped at 64 KiB, each request timed out. */
function oauthFetch(timeoutMs: number): typeof fetch {
  return (input, init) =>
    cappedFetch(String(input instanceof Request ? input.url : input), {
      ...init,
      signal: init?.signal ?? AbortSignal.timeout(timeoutMs),
    });
}

/** What the flow functions share. */
interface Context {
  readonly kv: Deno.Kv;
  readonly credentials: CredentialStore;
  readonly vault: TokenVault;
  readonly now: () => number;
  readonly fetchFn: typeof fetch;
  readonly timeoutMs: number;
  readonly configured: (upstream: string) => AuthorizationCodeUpstream;
  readonly onAuthorized?: (upstream: string, principal: string) => Promise<void>;
}

const TICKET_CONTEXT = "upstream-auth-ticket";
const flowContext = (u: string, p: string) => `upstream-auth-flow\n${u}\n${p}`;

/** `<iv>.<ciphertext>` (base64url) of the principal, upstream and expiry, sealed. */
async function sealTicket(
  credentials: CredentialStore,
  claims: { u: string; p: string; exp: number },
): Promise<string> {
  const box = await credentials.seal(TICKET_CONTEXT, claims);
  return `${b64url(Uint8Array.fromBase64(box.iv))}.${b64url(Uint8Array.fromBase64(box.ct))}`;
}

async function openTicket(
  credentials: CredentialStore,
  ticket: string,
): Promise<{ u: string; p: string; exp: number }> {
  const m = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{20,2000})$/.exec(ticket);
  if (!m) throw new AuthorizationFlowError("This authorization link is not valid", 400);
  try {
    const bytes = (s: string) => Uint8Array.fromBase64(s, { alphabet: "base64url" });
    return await credentials.open(TICKET_CONTEXT, {
      iv: bytes(m[1]).toBase64(),
      ct: bytes(m[2]).toBase64(),
    });
  } catch (e) {
    if (e instanceof UndecryptableError || e instanceof SyntaxError) {
      throw new AuthorizationFlowError("This authorization link is not valid", 400);
    }
    throw e;
  }
}

/** The `resource_metadata` the upstream names in its 401 (RFC 9728 §5.1), if it does. */
async function challenge(url: string, timeoutMs: number): Promise<URL | undefined> {
  try {
    const res = await fetch(url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
    });
    await res.body?.cancel();
    return res.status === 401 ? extractWWWAuthenticateParams(res).resourceMetadataUrl : undefined;
  } catch {
    return undefined; // the well-known locations are tried instead
  }
}

function cookieName(state: string): string {
  return `warden_upauth_${sha256HexOfText(`cookie\n${state}`).slice(0, 16)}`;
}

/**
 * Opens a link: checks the ticket (sealed, unexpired, first use), runs
 * `auth()` to its redirect and keeps the flow under the hash of `state`.
 */
async function startFlow(ctx: Context, ticket: string) {
  const claims = await openTicket(ctx.credentials, ticket);
  if (claims.exp <= ctx.now()) {
    throw new AuthorizationFlowError(
      "This authorization link has expired: call the tool again for a new one",
      400,
    );
  }
  const up = ctx.configured(claims.u);
  // Each link works once: a copy that leaked cannot start a second flow for the principal.
  const used = upstreamAuthTicketUsedKey(sha256HexOfText(ticket));
  const first = await ctx.kv.atomic().check({ key: used, versionstamp: null })
    .set(used, { at: ctx.now() }, { expireIn: FLOW_TTL_MS }).commit();
  if (!first.ok) {
    throw new AuthorizationFlowError(
      "This authorization link was used already: call the tool again for a new one",
      400,
    );
  }
  const state = randomToken();
  const nonce = randomToken();
  const flow: Flow = { state };
  let result;
  try {
    const resourceMetadataUrl = await challenge(up.url, ctx.timeoutMs);
    result = await auth(ctx.vault.provider(claims.u, claims.p, flow), {
      serverUrl: up.url,
      fetchFn: ctx.fetchFn,
      ...(up.scope ? { scope: up.scope } : {}),
      ...(resourceMetadataUrl ? { resourceMetadataUrl } : {}),
    });
  } catch (e) {
    throw new AuthorizationFlowError(
      `Cannot start authorization at upstream ${claims.u}'s authorization server: ${describe(e)}`,
      502,
    );
  }
  if (result !== "REDIRECT" || !flow.authorizationUrl || flow.verifier === undefined) {
    throw new AuthorizationFlowError(
      `Upstream ${claims.u}'s authorization server offered no authorization step`,
      502,
    );
  }
  const record: FlowRecord = {
    v: 1,
    upstream: claims.u,
    principal: claims.p,
    nonce_sha256: sha256HexOfText(nonce),
    expires_at: ctx.now() + FLOW_TTL_MS,
    box: await ctx.credentials.seal(flowContext(claims.u, claims.p), {
      verifier: flow.verifier,
      discovery: flow.discovery ?? null,
    }),
  };
  await ctx.kv.set(upstreamAuthStateKey(sha256HexOfText(state)), record, {
    expireIn: FLOW_TTL_MS,
  });
  return {
    location: flow.authorizationUrl.href,
    cookie: { name: cookieName(state), value: nonce, maxAgeS: FLOW_TTL_MS / 1000 },
  };
}

/** Takes a started flow once, from the browser that started it. */
async function takeFlow(
  ctx: Context,
  state: string | undefined,
  cookie: (name: string) => string | undefined,
): Promise<FlowRecord> {
  if (state === undefined || !RANDOM.test(state)) {
    throw new AuthorizationFlowError("The callback carries no valid state", 400);
  }
  const key = upstreamAuthStateKey(sha256HexOfText(state));
  const entry = await ctx.kv.get<FlowRecord>(key);
  const rec = entry.value;
  if (rec === null) {
    throw new AuthorizationFlowError(
      "Unknown, expired or already used authorization: call the tool again for a new link",
      400,
    );
  }
  if (rec.expires_at <= ctx.now()) {
    await ctx.kv.delete(key);
    throw new AuthorizationFlowError(
      "This authorization expired: call the tool again for a new link",
      400,
    );
  }
  // Only the browser that opened the link may finish it: a callback carried to another
  // browser (another principal's) would otherwise store one user's upstream token for another.
  const nonce = cookie(cookieName(state));
  if (nonce === undefined || !sameHex(sha256HexOfText(nonce), rec.nonce_sha256)) {
    throw new AuthorizationFlowError(
      "This authorization was started in another browser: open the link you were given " +
        "in the browser you use, and finish it there",
      403,
    );
  }
  // Taken once: a replayed callback finds nothing.
  const taken = await ctx.kv.atomic().check(entry).delete(key).commit();
  if (!taken.ok) throw new AuthorizationFlowError("This authorization was used already", 400);
  return rec;
}

/** The authorization server's redirect back: redeems the code for the principal's tokens. */
async function finishFlow(
  ctx: Context,
  params: URLSearchParams,
  cookie: (name: string) => string | undefined,
): Promise<{ upstream: string; principal: string }> {
  const rec = await takeFlow(ctx, one(params, "state"), cookie);
  const error = one(params, "error");
  if (error !== undefined) {
    const code = /^[a-z_]{1,64}$/.test(error) ? error : "an error";
    throw new AuthorizationFlowError(
      `Upstream ${rec.upstream}'s authorization server answered ${code}; nothing was stored`,
      400,
    );
  }
  const code = one(params, "code");
  if (code === undefined || code.length === 0 || code.length > 4096) {
    throw new AuthorizationFlowError("The callback carries no authorization code", 400);
  }
  const up = ctx.configured(rec.upstream);
  const sealed = await ctx.credentials.open<
    { verifier: string; discovery: OAuthDiscoveryState | null }
  >(flowContext(rec.upstream, rec.principal), rec.box);
  const flow: Flow = {
    verifier: sealed.verifier,
    ...(sealed.discovery ? { discovery: sealed.discovery } : {}),
  };
  const iss = one(params, "iss");
  try {
    const result = await auth(ctx.vault.provider(rec.upstream, rec.principal, flow), {
      serverUrl: up.url,
      authorizationCode: code,
      ...(iss !== undefined ? { iss } : {}),
      ...(up.scope ? { scope: up.scope } : {}),
      fetchFn: ctx.fetchFn,
    });
    if (result !== "AUTHORIZED" || !flow.saved) throw new Error("no tokens were issued");
  } catch (e) {
    // A mix-up (RFC 9207): the values in it are the attacker's, so none is shown.
    if (e instanceof IssuerMismatchError || e instanceof AuthorizationServerMismatchError) {
      throw new AuthorizationFlowError(
        `The answer did not come from upstream ${rec.upstream}'s authorization server ` +
          `(issuer mismatch); nothing was stored`,
        400,
      );
    }
    throw new AuthorizationFlowError(
      `Upstream ${rec.upstream}'s authorization server did not issue tokens: ${describe(e)}`,
      502,
    );
  }
  await ctx.onAuthorized?.(rec.upstream, rec.principal);
  return { upstream: rec.upstream, principal: rec.principal };
}

/** Refreshes a principal's tokens; undefined (and the tokens deleted) when refused. */
async function refreshTokens(
  ctx: Context,
  upstream: string,
  principal: string,
): Promise<string | undefined> {
  const loaded = await ctx.vault.loadTokens(upstream, principal);
  if (!loaded) return undefined;
  const up = ctx.configured(upstream);
  const known = ctx.vault.discovery.get(upstream);
  const flow: Flow = { tokens: loaded.tokens, ...(known ? { discovery: known } : {}) };
  let result;
  try {
    result = await auth(ctx.vault.provider(upstream, principal, flow), {
      serverUrl: up.url,
      fetchFn: ctx.fetchFn,
      ...(up.scope ? { scope: up.scope } : {}),
    });
  } catch (e) {
    throw new CredentialError(`Cannot refresh the token for upstream ${upstream}: ${describe(e)}`);
  }
  if (result === "AUTHORIZED" && flow.saved) return flow.saved.access_token;
  // No refresh token, or it was refused: the principal authorizes again.
  await ctx.vault.dropTokens(upstream, principal);
  return undefined;
}

/**
 * The store over `kv`, sealing with `credentials`' key. `publicBase` is
 * Warden's public base URL (the redirect URI and metadata document live
 * under it); `now` is the clock flows and tokens expire by.
 */
export function createUserAuthorizations(deps: {
  readonly kv: Deno.Kv;
  readonly credentials: CredentialStore;
  readonly publicBase: () => string;
  readonly upstream: (name: string) => AuthorizationCodeUpstream | undefined;
  readonly now?: () => number;
  readonly timeoutMs?: number;
  /** Called once a principal's tokens are stored (the gateway lists the upstream's tools). */
  readonly onAuthorized?: (upstream: string, principal: string) => Promise<void>;
}): UserAuthorizations {
  const { kv, credentials } = deps;
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? TIMEOUT_MS;
  const base = () => deps.publicBase().replace(/\/+$/, "");
  const clientMetadata = () =>
    ({
      client_id: `${base()}${CLIENT_METADATA_PATH}`,
      client_name: "Warden gateway",
      client_uri: base(),
      redirect_uris: [`${base()}${CALLBACK_PATH}`],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      application_type: "web",
    }) as OAuthClientMetadata & { client_id: string };
  const vault = createTokenVault({
    kv,
    credentials,
    now,
    urls: {
      redirect: () => `${base()}${CALLBACK_PATH}`,
      // CIMD needs an https client_id (the SDK refuses another); else Warden registers dynamically.
      metadata: () => {
        const url = `${base()}${CLIENT_METADATA_PATH}`;
        return url.startsWith("https://") ? url : undefined;
      },
      clientMetadata,
    },
  });
  const ctx: Context = {
    kv,
    credentials,
    vault,
    now,
    timeoutMs,
    fetchFn: oauthFetch(timeoutMs),
    configured: (upstream) => {
      const u = deps.upstream(upstream);
      if (!u) {
        throw new AuthorizationFlowError(
          `No upstream named "${upstream}" authorizes by the authorization-code flow`,
          404,
        );
      }
      return u;
    },
    ...(deps.onAuthorized ? { onAuthorized: deps.onAuthorized } : {}),
  };
  const refreshing = new Map<string, Promise<string | undefined>>();
  return {
    clientMetadata,
    cookieName,
    async authorizationUrl(upstream, principal) {
      ctx.configured(upstream);
      const ticket = await sealTicket(credentials, {
        u: upstream,
        p: principal,
        exp: now() + FLOW_TTL_MS,
      });
      return `${base()}${START_PATH}?ticket=${ticket}`;
    },
    start: (ticket) => startFlow(ctx, ticket),
    callback: (params, cookie) => finishFlow(ctx, params, cookie),
    async accessToken(upstream, principal, options) {
      const stale = options?.stale === true;
      const loaded = await vault.loadTokens(upstream, principal, stale ? 0 : TOKEN_MAX_AGE_MS);
      if (!loaded) return undefined;
      const expired = loaded.record.expires_at !== null && loaded.record.expires_at <= now();
      if (!expired && !stale) return loaded.tokens.access_token;
      // One refresh per principal at a time: a refresh token is single-use (rotation).
      const key = `${upstream}\n${principal}`;
      let pending = refreshing.get(key);
      if (!pending) {
        pending = refreshTokens(ctx, upstream, principal).finally(() => refreshing.delete(key));
        refreshing.set(key, pending);
      }
      return await pending;
    },
    has: async (upstream, principal) =>
      (await vault.loadTokens(upstream, principal, TOKEN_MAX_AGE_MS)) !== undefined,
    async anyPrincipal(upstream) {
      const list = kv.list<TokenRecord>({ prefix: upstreamUserTokenPrefix(upstream) }, {
        limit: 1,
      });
      for await (const e of list) return e.value.principal;
      return undefined;
    },
  };
}
