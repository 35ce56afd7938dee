/**
 * The built-in OAuth 2.1 authorization server (`--auth oauth`), as the MCP
 * authorization spec asks: RFC 8414 metadata (and the OpenID alias), RFC 9728
 * protected-resource metadata, RFC 7591 registration and Client ID Metadata
 * Documents, authorization code with PKCE S256 only, RFC 8707 audience
 * binding, RFC 9207 `iss`, refresh rotation with reuse detection, RFC 7009
 * revocation. Access tokens are short-lived ES256 JWTs signed and verified by
 * `jose`; everything else is opaque, random and stored hashed in KV.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { Context } from "hono";
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from "jose";
import type { CryptoKey, JWK } from "jose";
import {
  type ClientRecord,
  digest,
  type Grant,
  OAuthStore,
  type PendingRequest,
  randomToken,
} from "./store.ts";
import { readJsonDocument } from "./_document.ts";
import { consentPage, errorPage, loginPage } from "./pages.ts";
import { DEFAULT_BODY_TIMEOUT_MS, readWithin } from "../net/mod.ts";
import { type OidcLogin, OidcLoginError } from "./relying_party.ts";
import type { Logger } from "../lib/mod.ts";

/** Checks a person's password; identity's user store provides it. */
export type PasswordVerifier = (name: string, password: string) => Promise<boolean>;

export interface OAuthOptions {
  readonly kv: Deno.Kv;
  /** The issuer URL (no trailing slash); read per request since the port is known late. */
  readonly issuer: () => string;
  readonly verifyPassword: PasswordVerifier;
  /** Scopes the server knows; the first is the default. */
  readonly scopes?: readonly string[];
  readonly accessTtlS?: number;
  readonly refreshTtlS?: number;
  /** Hosts a CIMD URL may name although private or plain http (tests only). */
  readonly cimdAllowHosts?: readonly string[];
  readonly maxBodyBytes?: number;
  /** How long a request body may take to arrive (--request-timeout); default 30 s. */
  readonly bodyTimeoutMs?: number;
  /** The fetch CIMD documents are read with (tests pass one trusting their own CA). */
  readonly fetch?: typeof fetch;
  /**
   * Resources (other servers' URLs) this server may issue client-credentials
   * and token-exchange tokens for (`--oauth-exchange-audiences`); none: both refused.
   */
  readonly exchangeAudiences?: readonly string[];
  /** Lifetime of an exchanged or client-credentials token; default 60 s. */
  readonly exchangeTtlS?: number;
  /** More authorization servers the protected-resource metadata names (`--oidc-issuer`). */
  readonly federatedIssuers?: readonly string[];
  /** Login federation (`--oidc-client-id`): people may sign in at the external provider. */
  readonly oidcLogin?: OidcLogin;
  /** Where refused sign-ins at the external provider are logged (the reason, never a secret). */
  readonly logger?: Logger;
}

/** What a verified access token says. */
export interface AccessClaims {
  readonly sub: string;
  readonly client_id: string;
  readonly scope: string;
  /** The external provider the person signed in at; absent for a local user. */
  readonly idp?: string;
  /** With `idp`: the roles its ID token mapped to (a local user's come from their record). */
  readonly roles?: readonly string[];
}

/** What serves RFC 9728 protected-resource metadata and names it in every challenge. */
export interface ProtectedResource {
  readonly routes: Hono;
  /** The protected-resource metadata URL advertised in WWW-Authenticate. */
  resourceMetadataUrl(): string;
}

export interface OAuthServer extends ProtectedResource {
  /** The resource URL tokens must be minted for (`<issuer>/mcp`). */
  resource(): string;
  /** Verifies a bearer access token for this resource; null when invalid, expired or revoked. */
  verify(token: string): Promise<AccessClaims | null>;
  /** Stops renewing this process's published verification key. */
  close(): void;
}

const CODE_TTL_MS = 60_000;
/** How long a sign-in at the external provider may take, redirect to callback. */
const OIDC_ATTEMPT_TTL_MS = 10 * 60_000;
const MAX_TOKEN_ROLES = 32;
const PENDING_TTL_MS = 10 * 60_000;
const CLIENT_TTL_MS = 30 * 86_400_000;
const CIMD_TTL_MS = 5 * 60_000;
const CIMD_MAX_BYTES = 5 * 1024;
const CIMD_TIMEOUT_MS = 5_000;
const MAX_META_BYTES = 16 * 1024;

class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string, readonly status = 400) {
    super(description);
  }
}

function oauthJson(e: OAuthError): Response {
  return new Response(JSON.stringify({ error: e.error, error_description: e.description }), {
    status: e.status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      ...(e.error === "invalid_client" && e.status === 401
        ? { "www-authenticate": 'Basic realm="warden"' }
        : {}),
      // A body refused as too large or too slow: the rest of it is not worth reading.
      ...(e.status === 408 || e.status === 413 ? { connection: "close" } : {}),
    },
  });
}

/** One value of a form/query parameter; duplicated parameters are invalid_request (RFC 6749 §3.1). */
function single(params: URLSearchParams, name: string, required = false): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new OAuthError("invalid_request", `parameter ${name} is repeated`);
  const v = all[0];
  if (v === undefined || v === "") {
    if (required) throw new OAuthError("invalid_request", `parameter ${name} is required`);
    return undefined;
  }
  if (v.length > 2048) throw new OAuthError("invalid_request", `parameter ${name} is too long`);
  return v;
}

function isLoopbackHostname(h: string): boolean {
  return h === "localhost" || h === "127.0.0.1" || h === "[::1]";
}

/** A redirect URI a client may register: https, loopback http, or (native) a private scheme. */
function validRedirectUri(uri: string, applicationType: "web" | "native"): boolean {
  if (uri.length > 2048) return false;
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return false;
  }
  if (u.hash !== "" || uri.includes("#")) return false;
  if (u.username !== "" || u.password !== "") return false;
  if (u.protocol === "https:") return true;
  if (u.protocol === "http:") return isLoopbackHostname(u.hostname);
  // Private-use URI schemes (RFC 8252 §7.1) are for native apps only, and need a dot.
  return applicationType === "native" && /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(u.protocol) &&
    !["javascript:", "data:", "file:", "vbscript:"].includes(u.protocol);
}

async function s256(verifier: string): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
  );
  return btoa(String.fromCharCode(...d)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

function timingSafeEqualText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req: Request, max: number, timeoutMs: number): Promise<URLSearchParams> {
  const type = req.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    throw new OAuthError("invalid_request", "expected application/x-www-form-urlencoded");
  }
  const text = await readText(req, max, timeoutMs);
  return new URLSearchParams(text);
}

/** The body, at most `max` bytes (413) within `timeoutMs` (408: a stalled body is cancelled). */
async function readText(req: Request, max: number, timeoutMs: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) throw new OAuthError("invalid_request", "request body too large", 413);
  if (!req.body) return "";
  const bytes = await readWithin(req.body, max, timeoutMs);
  if (bytes === "timeout") {
    throw new OAuthError("invalid_request", "request body not received in time", 408);
  }
  if (bytes === "unreadable") {
    throw new OAuthError("invalid_request", "the request body could not be read");
  }
  if (bytes === "too_large") {
    throw new OAuthError("invalid_request", "request body too large", 413);
  }
  return new TextDecoder().decode(bytes);
}

const APP_TYPES = new Set(["web", "native"]);
const AUTH_METHODS = new Set(["none", "client_secret_post", "client_secret_basic"]);
/** RFC 8693 token exchange. */
export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const GRANTS = new Set([
  "authorization_code",
  "refresh_token",
  "client_credentials",
  TOKEN_EXCHANGE,
]);
/** Grants only a client holding a secret may use. */
const CONFIDENTIAL_GRANTS = new Set(["client_credentials", TOKEN_EXCHANGE]);

/**
 * Validates client metadata (RFC 7591 §2, CIMD). Throws the RFC 7591 errors
 * `invalid_redirect_uri` / `invalid_client_metadata`.
 */
function validateMetadata(
  raw: unknown,
  cimd: boolean,
): Omit<ClientRecord, "client_id" | "client_id_issued_at" | "secretHash"> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new OAuthError("invalid_client_metadata", "client metadata must be a JSON object");
  }
  const m = raw as Record<string, unknown>;
  const appType = m.application_type ?? "web";
  if (typeof appType !== "string" || !APP_TYPES.has(appType)) {
    throw new OAuthError("invalid_client_metadata", "application_type must be web or native");
  }
  const uris = m.redirect_uris ?? [];
  const redirecting = (m.grant_types ?? ["authorization_code"]) as unknown;
  const needsRedirect = !Array.isArray(redirecting) || redirecting.includes("authorization_code");
  if (
    !Array.isArray(uris) || uris.length > 10 || (needsRedirect && uris.length === 0)
  ) {
    throw new OAuthError("invalid_redirect_uri", "redirect_uris must list 1 to 10 URIs");
  }
  for (const u of uris) {
    if (typeof u !== "string" || !validRedirectUri(u, appType as "web" | "native")) {
      throw new OAuthError("invalid_redirect_uri", `redirect URI not allowed: ${String(u)}`);
    }
  }
  const method = m.token_endpoint_auth_method ?? (cimd ? "none" : "client_secret_basic");
  if (typeof method !== "string" || !AUTH_METHODS.has(method)) {
    throw new OAuthError(
      "invalid_client_metadata",
      "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic",
    );
  }
  if (cimd && method !== "none") {
    throw new OAuthError(
      "invalid_client_metadata",
      "a metadata-document client cannot use a shared secret",
    );
  }
  const grants = m.grant_types ?? ["authorization_code", "refresh_token"];
  if (
    !Array.isArray(grants) || grants.some((g) => typeof g !== "string" || !GRANTS.has(g))
  ) {
    throw new OAuthError(
      "invalid_client_metadata",
      `grant_types may hold ${[...GRANTS].join(", ")}`,
    );
  }
  if (method === "none" && grants.some((g: string) => CONFIDENTIAL_GRANTS.has(g))) {
    throw new OAuthError(
      "invalid_client_metadata",
      "client_credentials and token exchange need a client secret",
    );
  }
  const rt = m.response_types ?? (needsRedirect ? ["code"] : []);
  if (!Array.isArray(rt) || rt.some((r) => r !== "code")) {
    throw new OAuthError("invalid_client_metadata", "response_types may only be code");
  }
  const name = m.client_name;
  if (name !== undefined && (typeof name !== "string" || name.length > 200)) {
    throw new OAuthError("invalid_client_metadata", "client_name must be a short string");
  }
  const scope = m.scope;
  if (scope !== undefined && (typeof scope !== "string" || scope.length > 1000)) {
    throw new OAuthError("invalid_client_metadata", "scope must be a string");
  }
  return {
    redirect_uris: uris as string[],
    application_type: appType as "web" | "native",
    token_endpoint_auth_method: method as ClientRecord["token_endpoint_auth_method"],
    grant_types: grants as string[],
    ...(name !== undefined ? { client_name: name as string } : {}),
    ...(scope !== undefined ? { scope: scope as string } : {}),
  };
}

/** The RFC 9728 document for Warden's `/mcp`. */
function protectedResourceMetadata(
  resource: string,
  authorizationServers: readonly string[],
  scopes: readonly string[],
) {
  return {
    resource,
    authorization_servers: authorizationServers,
    scopes_supported: scopes,
    bearer_methods_supported: ["header"],
    resource_name: "Warden",
  };
}

/**
 * Protected-resource metadata alone, for `--oidc-issuer` without `--auth oauth`:
 * it names the external provider as the authorization server.
 */
export function createProtectedResource(opts: {
  readonly resource: () => string;
  readonly issuers: readonly string[];
}): ProtectedResource {
  const app = new Hono();
  const doc = () => protectedResourceMetadata(opts.resource(), opts.issuers, ["mcp"]);
  app.get("/.well-known/oauth-protected-resource/mcp", (c) => c.json(doc()));
  app.get("/.well-known/oauth-protected-resource", (c) => c.json(doc()));
  const metadataUrl = () =>
    opts.resource().replace(/\/mcp$/, "") + "/.well-known/oauth-protected-resource/mcp";
  return { routes: app, resourceMetadataUrl: metadataUrl };
}

/** Builds the authorization server. */
// Kept whole for now: a factory of 35 route closures (longest 80 lines) over one OAuthStore, the
// peer keys and the CIMD cache; moving each endpoint to a file of its own is left to the OAuth work
// in progress (issue 12).
export async function createOAuthServer(opts: OAuthOptions): Promise<OAuthServer> {
  const store = new OAuthStore(opts.kv);
  const scopes = opts.scopes ?? ["mcp"];
  const accessTtl = opts.accessTtlS ?? 300;
  const refreshTtlMs = (opts.refreshTtlS ?? 30 * 86_400) * 1000;
  const maxBody = opts.maxBodyBytes ?? MAX_META_BYTES;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const cimdAllow = opts.cimdAllowHosts ?? [];
  // Each process signs with its own key, which lives in its memory only and
  // never reaches KV or the logs. Its PUBLIC key is published in KV (renewed
  // while the process lives, kept an access token's lifetime after), so a
  // token minted by one instance or worker verifies at every other sharing
  // the KV, and the JWKS lists every live instance's key.
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: false });
  const kid = randomToken(8);
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  const keyTtlMs = (accessTtl + 120) * 1000;
  const publishKey = () =>
    store.putVerificationKey(kid, publicJwk as Record<string, unknown>, keyTtlMs);
  await publishKey();
  const republish = setInterval(() => {
    publishKey().catch(() => {/* retried on the next tick; the key lives keyTtlMs */});
  }, Math.max(1000, Math.floor(keyTtlMs / 3)));
  const peerKeys = new Map<string, CryptoKey>();
  async function keyFor(header: { kid?: string }): Promise<CryptoKey> {
    if (header.kid === kid) return publicKey;
    if (typeof header.kid !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(header.kid)) {
      throw new Error("unknown key");
    }
    const cached = peerKeys.get(header.kid);
    if (cached) return cached;
    const jwk = await store.getVerificationKey(header.kid);
    if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256") throw new Error("unknown key");
    const key = await importJWK(
      { kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string },
      "ES256",
    ) as CryptoKey;
    if (peerKeys.size >= 256) peerKeys.delete(peerKeys.keys().next().value!);
    peerKeys.set(header.kid, key);
    return key;
  }
  const issuer = () => opts.issuer().replace(/\/+$/, "");
  const resource = () => `${issuer()}/mcp`;

  const cimdCache = new Map<string, { rec: ClientRecord; until: number }>();

  async function cimdClient(url: string): Promise<ClientRecord> {
    const hit = cimdCache.get(url);
    if (hit && hit.until > Date.now()) return hit.rec;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new OAuthError("invalid_client", "client_id is not a valid URL");
    }
    const allowed = cimdAllow.includes(u.host) || cimdAllow.includes(u.hostname);
    if (u.protocol !== "https:" && !(u.protocol === "http:" && allowed)) {
      throw new OAuthError("invalid_client", "a client_id URL must be https");
    }
    if (u.pathname === "/" || u.hash !== "" || u.username !== "" || u.password !== "") {
      throw new OAuthError("invalid_client", "a client_id URL needs a path and no fragment");
    }
    const json = await readJsonDocument(url, {
      allowed,
      maxBytes: CIMD_MAX_BYTES,
      timeoutMs: CIMD_TIMEOUT_MS,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    }, {
      unreadable: (why) =>
        new OAuthError("invalid_client", `client metadata document refused: ${why}`),
      status: (status) =>
        new OAuthError("invalid_client", `client metadata document answered ${status}`),
      tooLarge: () => new OAuthError("invalid_client", "client metadata document is too large"),
      notJson: () => new OAuthError("invalid_client", "client metadata document is not JSON"),
    });
    if ((json as { client_id?: unknown })?.client_id !== url) {
      throw new OAuthError("invalid_client", "client metadata document names another client_id");
    }
    let meta;
    try {
      meta = validateMetadata(json, true);
    } catch (e) {
      throw new OAuthError("invalid_client", `client metadata document: ${(e as Error).message}`);
    }
    const rec: ClientRecord = {
      ...meta,
      client_id: url,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      cimd: true,
    };
    if (cimdCache.size > 1000) cimdCache.clear();
    cimdCache.set(url, { rec, until: Date.now() + CIMD_TTL_MS });
    return rec;
  }

  async function findClient(id: string): Promise<ClientRecord> {
    if (id.startsWith("https://") || id.startsWith("http://")) return await cimdClient(id);
    const c = await store.getClient(id);
    if (!c) throw new OAuthError("invalid_client", "unknown client_id", 401);
    return c;
  }

  async function signAccess(g: Grant): Promise<string> {
    return await new SignJWT({
      client_id: g.client_id,
      scope: g.scope,
      fam: g.family,
      ...(g.idp !== undefined ? { idp: g.idp, roles: [...(g.roles ?? [])] } : {}),
    })
      .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
      .setIssuer(issuer())
      .setSubject(g.sub)
      .setAudience(g.resource)
      .setIssuedAt()
      .setExpirationTime(`${accessTtl}s`)
      .setJti(randomToken(12))
      .sign(privateKey as CryptoKey);
  }

  async function issueTokens(rec: Grant) {
    // Only the grant's own fields travel on (a code record also holds its redirect URI and challenge).
    const g: Grant = {
      client_id: rec.client_id,
      sub: rec.sub,
      scope: rec.scope,
      resource: rec.resource,
      family: rec.family,
      ...(rec.idp !== undefined ? { idp: rec.idp, roles: rec.roles ?? [] } : {}),
    };
    const access = await signAccess(g);
    const refresh = randomToken();
    await store.putRefresh(refresh, { ...g, used: false }, refreshTtlMs);
    return {
      access_token: access,
      token_type: "Bearer",
      expires_in: accessTtl,
      refresh_token: refresh,
      scope: g.scope,
    };
  }

  /** Client authentication at the token and revocation endpoints. */
  async function authenticateClient(req: Request, form: URLSearchParams): Promise<ClientRecord> {
    const basic = req.headers.get("authorization");
    let id = single(form, "client_id");
    let secret = single(form, "client_secret");
    let viaBasic = false;
    if (basic?.toLowerCase().startsWith("basic ")) {
      let decoded: string;
      try {
        decoded = atob(basic.slice(6).trim());
      } catch {
        throw new OAuthError("invalid_client", "malformed Basic credentials", 401);
      }
      const i = decoded.indexOf(":");
      if (i < 0) throw new OAuthError("invalid_client", "malformed Basic credentials", 401);
      const bid = decodeURIComponent(decoded.slice(0, i));
      if (id !== undefined && id !== bid) {
        throw new OAuthError("invalid_request", "client_id differs from the Basic credentials");
      }
      if (secret !== undefined) {
        throw new OAuthError("invalid_request", "more than one client authentication method");
      }
      id = bid;
      secret = decodeURIComponent(decoded.slice(i + 1));
      viaBasic = true;
    }
    if (id === undefined) throw new OAuthError("invalid_client", "client_id is required", 401);
    let client: ClientRecord;
    try {
      client = await findClient(id);
    } catch (e) {
      if (e instanceof OAuthError) throw new OAuthError("invalid_client", e.description, 401);
      throw e;
    }
    if (client.token_endpoint_auth_method === "none") {
      if (secret !== undefined && !viaBasic) {
        throw new OAuthError("invalid_client", "this client has no secret", 401);
      }
      return client;
    }
    if (secret === undefined || client.secretHash === undefined) {
      throw new OAuthError("invalid_client", "client authentication failed", 401);
    }
    if (!timingSafeEqualText(digest(secret), client.secretHash)) {
      throw new OAuthError("invalid_client", "client authentication failed", 401);
    }
    return client;
  }

  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof OAuthError) return oauthJson(err);
    console.error(err);
    return c.json({ error: "server_error", error_description: "internal error" }, 500);
  });

  const asMetadata = () => {
    const iss = issuer();
    return {
      issuer: iss,
      authorization_endpoint: `${iss}/authorize`,
      token_endpoint: `${iss}/token`,
      registration_endpoint: `${iss}/register`,
      revocation_endpoint: `${iss}/revoke`,
      jwks_uri: `${iss}/.well-known/jwks.json`,
      scopes_supported: scopes,
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: [...GRANTS],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["none", "client_secret_post", "client_secret_basic"],
      revocation_endpoint_auth_methods_supported: [
        "none",
        "client_secret_post",
        "client_secret_basic",
      ],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["ES256"],
    };
  };
  const prMetadata = () =>
    protectedResourceMetadata(resource(), [issuer(), ...(opts.federatedIssuers ?? [])], scopes);
  app.get("/.well-known/oauth-authorization-server", (c) => c.json(asMetadata()));
  app.get("/.well-known/openid-configuration", (c) => c.json(asMetadata()));
  app.get("/.well-known/oauth-protected-resource/mcp", (c) => c.json(prMetadata()));
  app.get("/.well-known/oauth-protected-resource", (c) => c.json(prMetadata()));
  app.get("/.well-known/jwks.json", async (c) => {
    const published = await store.listVerificationKeys().catch(() => []);
    const others = published.filter((k) => k.kid !== kid);
    return c.json({ keys: [publicJwk, ...others] });
  });

  app.post("/register", async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/json")) {
      throw new OAuthError("invalid_client_metadata", "expected application/json");
    }
    let raw: unknown;
    const text = await readText(c.req.raw, MAX_META_BYTES, bodyTimeoutMs).catch((e) => {
      if (e instanceof OAuthError && e.status === 413) {
        throw new OAuthError("invalid_client_metadata", "client metadata too large", 413);
      }
      throw e;
    });
    try {
      raw = JSON.parse(text);
    } catch {
      throw new OAuthError("invalid_client_metadata", "body is not JSON");
    }
    const meta = validateMetadata(raw, false);
    const client_id = randomToken(16);
    const secret = meta.token_endpoint_auth_method === "none" ? undefined : randomToken();
    const issuedAt = Math.floor(Date.now() / 1000);
    const rec: ClientRecord = {
      ...meta,
      client_id,
      client_id_issued_at: issuedAt,
      ...(secret !== undefined ? { secretHash: digest(secret) } : {}),
    };
    await store.putClient(rec, CLIENT_TTL_MS);
    const { secretHash: _s, ...pub } = rec;
    return c.json(
      {
        ...pub,
        response_types: ["code"],
        ...(secret !== undefined ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
      },
      201,
      { "cache-control": "no-store" },
    );
  });

  function redirectWith(uri: string, params: Record<string, string | undefined>): Response {
    const u = new URL(uri);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
    return new Response(null, { status: 302, headers: { location: u.toString() } });
  }

  const COOKIE = "warden_oauth";
  function cookieValue(c: Context, name: string): string | undefined {
    const h = c.req.header("cookie") ?? "";
    for (const part of h.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === name) return v.join("=");
    }
    return undefined;
  }
  const cookieOf = (c: Context) => cookieValue(c, COOKIE);
  /**
   * An HTML page. `formTargets`: origins a form on it may end up at besides
   * this one (the login form's button redirects to the external provider, and
   * CSP form-action also governs where a submission is redirected).
   */
  function htmlResponse(
    body: string,
    status = 200,
    extra: Record<string, string> = {},
    formTargets: readonly string[] = [],
  ) {
    return new Response(body, {
      status,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; " +
          `form-action ${["'self'", ...formTargets].join(" ")}`,
        ...extra,
      },
    });
  }

  app.get("/authorize", async (c) => {
    const q = new URL(c.req.url).searchParams;
    // Until client and redirect URI are known good, errors are shown, never redirected.
    let client: ClientRecord;
    let redirectUri: string;
    let state: string | undefined;
    try {
      const clientId = single(q, "client_id", true)!;
      client = await findClient(clientId);
      const given = single(q, "redirect_uri");
      if (given === undefined) {
        if (client.redirect_uris.length !== 1) {
          throw new OAuthError("invalid_request", "redirect_uri is required");
        }
        redirectUri = client.redirect_uris[0];
      } else {
        if (!client.redirect_uris.includes(given)) {
          throw new OAuthError("invalid_request", "redirect_uri is not registered for the client");
        }
        redirectUri = given;
      }
      state = single(q, "state");
    } catch (e) {
      if (e instanceof OAuthError) {
        return htmlResponse(errorPage(e.error, e.description), 400);
      }
      throw e;
    }
    const fail = (error: string, description: string) =>
      redirectWith(redirectUri, { error, error_description: description, state, iss: issuer() });
    try {
      const responseType = single(q, "response_type", true);
      if (responseType !== "code") {
        return fail("unsupported_response_type", "only response_type=code is supported");
      }
      const challenge = single(q, "code_challenge");
      const method = single(q, "code_challenge_method");
      if (challenge === undefined) return fail("invalid_request", "code_challenge is required");
      if (method !== "S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
      }
      if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
        return fail("invalid_request", "code_challenge is not a S256 challenge");
      }
      const resourceParam = q.getAll("resource");
      if (resourceParam.length > 1) {
        return fail("invalid_target", "only one resource per request");
      }
      const res = resourceParam[0] ?? resource();
      if (res.replace(/\/+$/, "") !== resource()) {
        return fail("invalid_target", `this server only issues tokens for ${resource()}`);
      }
      const scopeParam = single(q, "scope") ?? scopes[0];
      const asked = scopeParam.split(" ").filter((s) => s !== "");
      if (asked.length === 0 || asked.some((s) => !scopes.includes(s))) {
        return fail("invalid_scope", `scopes supported: ${scopes.join(" ")}`);
      }
      const pending: PendingRequest = {
        id: randomToken(),
        csrf: randomToken(),
        client_id: client.client_id,
        redirect_uri: redirectUri,
        ...(state !== undefined ? { state } : {}),
        scope: asked.join(" "),
        resource: resource(),
        code_challenge: challenge,
      };
      await store.putPending(pending, PENDING_TTL_MS);
      return new Response(null, {
        status: 302,
        headers: {
          location: `${issuer()}/login?request=${encodeURIComponent(pending.id)}`,
          "set-cookie": `${COOKIE}=${pending.id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600`,
        },
      });
    } catch (e) {
      if (e instanceof OAuthError) return fail(e.error, e.description);
      throw e;
    }
  });

  /** The pending request of this browser: the cookie must match, or it is somebody else's. */
  async function pendingOf(c: Context, id: string | undefined): Promise<PendingRequest | null> {
    if (id === undefined) return null;
    const cookie = cookieOf(c);
    if (cookie === undefined || !timingSafeEqualText(cookie, id)) return null;
    return await store.getPending(id);
  }

  /** The login page of a pending request, with the external provider's button when configured. */
  async function loginResponse(
    p: PendingRequest,
    client: ClientRecord,
    error?: string,
    status = 200,
  ): Promise<Response> {
    const fed = opts.oidcLogin;
    const origin = fed ? await fed.authorizationOrigin() : undefined;
    return htmlResponse(
      loginPage({
        request: p.id,
        csrf: p.csrf,
        client: clientLabel(client),
        ...(error !== undefined ? { error } : {}),
        ...(fed ? { federated: fed.label } : {}),
      }),
      status,
      {},
      origin !== undefined ? [origin] : [],
    );
  }

  app.get("/login", async (c) => {
    const p = await pendingOf(c, c.req.query("request"));
    if (!p) {
      return htmlResponse(errorPage("invalid_request", "no authorization request here"), 400);
    }
    return await loginResponse(p, await findClient(p.client_id));
  });

  function clientLabel(c: ClientRecord): string {
    return c.client_name ?? c.client_id;
  }

  app.post("/login", async (c) => {
    const form = await readForm(c.req.raw, 8192, bodyTimeoutMs);
    const p = await pendingOf(c, single(form, "request"));
    if (!p || !timingSafeEqualText(single(form, "csrf") ?? "", p.csrf)) {
      return htmlResponse(errorPage("invalid_request", "the form has expired or is forged"), 403);
    }
    const user = single(form, "username") ?? "";
    const password = form.get("password") ?? "";
    const client = await findClient(p.client_id);
    if (user === "" || !(await opts.verifyPassword(user, password))) {
      return await loginResponse(p, client, "Wrong user name or password.", 401);
    }
    // A fresh CSRF token for the consent form, bound to the logged-in user.
    const { idp: _i, roles: _r, ...local } = p;
    const next: PendingRequest = { ...local, user, csrf: randomToken() };
    await store.putPending(next, PENDING_TTL_MS);
    return consentResponse(next, client);
  });

  /**
   * The consent page. Its form's answer redirects to the client, and Chromium
   * applies CSP form-action to that redirect too, so the client's redirect
   * target is allowed there (its origin, or its private-use scheme).
   */
  function consentResponse(p: PendingRequest, client: ClientRecord): Response {
    const target = new URL(p.redirect_uri);
    const source = target.protocol === "http:" || target.protocol === "https:"
      ? target.origin
      : target.protocol;
    return htmlResponse(consentHtml(p, client), 200, {}, [source]);
  }

  function consentHtml(p: PendingRequest, client: ClientRecord): string {
    return consentPage({
      request: p.id,
      csrf: p.csrf,
      client: clientLabel(client),
      clientId: client.client_id,
      redirectHost: new URL(p.redirect_uri).host || new URL(p.redirect_uri).protocol,
      scopes: p.scope.split(" "),
      user: p.user!,
    });
  }

  // After a sign-in at the external provider the callback redirects here (POST-redirect-GET).
  app.get("/consent", async (c) => {
    const p = await pendingOf(c, c.req.query("request"));
    if (!p || p.user === undefined) {
      return htmlResponse(
        errorPage("invalid_request", "no signed-in authorization request here"),
        400,
      );
    }
    return consentResponse(p, await findClient(p.client_id));
  });

  const OIDC_COOKIE = "warden_oidc";
  const OIDC_CALLBACK = "/login/oidc/callback";
  const secureCookie = () => (issuer().startsWith("https:") ? "; Secure" : "");

  // The "Sign in with <provider>" button: a CSRF-checked form post, answered by a redirect there.
  app.post("/login/oidc", async (c) => {
    const fed = opts.oidcLogin;
    if (!fed) return htmlResponse(errorPage("invalid_request", "no external provider here"), 404);
    const form = await readForm(c.req.raw, 8192, bodyTimeoutMs);
    const p = await pendingOf(c, single(form, "request"));
    if (!p || !timingSafeEqualText(single(form, "csrf") ?? "", p.csrf)) {
      return htmlResponse(errorPage("invalid_request", "the form has expired or is forged"), 403);
    }
    let begun;
    try {
      begun = await fed.begin();
    } catch (e) {
      if (!(e instanceof OidcLoginError)) throw e;
      return await loginResponse(
        p,
        await findClient(p.client_id),
        `Signing in with ${fed.label} failed: ${e.message}`,
        502,
      );
    }
    // The attempt is bound to this browser by a fresh cookie that never appears in a URL.
    const browser = randomToken();
    await store.putOidcAttempt(begun.attempt.state, {
      pending_id: p.id,
      browser: digest(browser),
      nonce: begun.attempt.nonce,
      code_verifier: begun.attempt.codeVerifier,
    }, OIDC_ATTEMPT_TTL_MS);
    return new Response(null, {
      status: 303,
      headers: {
        location: begun.url,
        "set-cookie": `${OIDC_COOKIE}=${browser}; Path=${OIDC_CALLBACK}; HttpOnly; ` +
          `SameSite=Lax; Max-Age=${OIDC_ATTEMPT_TTL_MS / 1000}${secureCookie()}`,
      },
    });
  });

  app.get(OIDC_CALLBACK, async (c) => {
    const fed = opts.oidcLogin;
    if (!fed) return htmlResponse(errorPage("invalid_request", "no external provider here"), 404);
    const q = new URL(c.req.url).searchParams;
    const clear = `${OIDC_COOKIE}=; Path=${OIDC_CALLBACK}; HttpOnly; SameSite=Lax; Max-Age=0` +
      secureCookie();
    // The browser's cookie is cleared only once its own attempt is over: a bogus callback (an
    // unknown state, another browser's) must not spoil the sign-in this browser has in flight.
    const refuse = (description: string, status = 400, back?: string) => {
      opts.logger?.info("federated sign-in refused", { issuer: fed.issuer, reason: description });
      return htmlResponse(errorPage("access_denied", description, back), status);
    };
    const end = (description: string, status = 400, back?: string) => {
      const r = refuse(description, status, back);
      r.headers.set("set-cookie", clear);
      return r;
    };
    let state: string | undefined;
    try {
      state = single(q, "state", true);
    } catch (e) {
      if (e instanceof OAuthError) {
        return refuse(`the provider's answer is invalid: ${e.description}`);
      }
      throw e;
    }
    const found = await store.peekOidcAttempt(state!);
    if (found === "used") return refuse("this sign-in was already completed; start again");
    if (found === "unknown") return refuse("this sign-in is unknown or has expired (state)");
    const { rec, versionstamp } = found;
    // Bound to the browser that began it, and to that browser's pending authorization request.
    const browser = cookieValue(c, OIDC_COOKIE);
    const pendingCookie = cookieValue(c, COOKIE);
    if (
      browser === undefined || !timingSafeEqualText(digest(browser), rec.browser) ||
      pendingCookie === undefined || !timingSafeEqualText(pendingCookie, rec.pending_id)
    ) {
      return refuse("this sign-in was started in another browser", 403);
    }
    if (!(await store.takeOidcAttempt(state!, versionstamp, OIDC_ATTEMPT_TTL_MS))) {
      return refuse("this sign-in was already completed; start again");
    }
    const p = await store.getPending(rec.pending_id);
    if (!p) return end("the authorization request has expired; start again from the app");
    const back = `/login?request=${encodeURIComponent(p.id)}`;
    let who;
    try {
      who = await fed.finish(q, {
        state: state!,
        nonce: rec.nonce,
        codeVerifier: rec.code_verifier,
      });
    } catch (e) {
      if (!(e instanceof OidcLoginError)) throw e;
      return end(
        `Signing in with ${fed.label} failed: ${e.message}`,
        e.providerError !== undefined ? 400 : 502,
        back,
      );
    }
    opts.logger?.info("federated sign-in", { issuer: fed.issuer, principal: who.principal });
    const next: PendingRequest = {
      ...p,
      user: who.principal,
      idp: fed.issuer,
      roles: who.roles,
      csrf: randomToken(),
    };
    await store.putPending(next, PENDING_TTL_MS);
    return new Response(null, {
      status: 303,
      headers: {
        location: `${issuer()}/consent?request=${encodeURIComponent(p.id)}`,
        "set-cookie": clear,
      },
    });
  });

  app.post("/consent", async (c) => {
    const form = await readForm(c.req.raw, 8192, bodyTimeoutMs);
    const p = await pendingOf(c, single(form, "request"));
    if (!p || p.user === undefined || !timingSafeEqualText(single(form, "csrf") ?? "", p.csrf)) {
      return htmlResponse(errorPage("invalid_request", "the form has expired or is forged"), 403);
    }
    await store.deletePending(p.id);
    const clear = `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
    if (single(form, "decision") !== "allow") {
      const r = redirectWith(p.redirect_uri, {
        error: "access_denied",
        error_description: "the user declined",
        state: p.state,
        iss: issuer(),
      });
      r.headers.set("set-cookie", clear);
      return r;
    }
    const code = randomToken();
    const family = randomToken(12);
    await store.putCode(code, {
      client_id: p.client_id,
      sub: p.user,
      scope: p.scope,
      resource: p.resource,
      family,
      redirect_uri: p.redirect_uri,
      code_challenge: p.code_challenge,
      ...(p.idp !== undefined ? { idp: p.idp, roles: p.roles ?? [] } : {}),
    }, CODE_TTL_MS);
    const r = redirectWith(p.redirect_uri, { code, state: p.state, iss: issuer() });
    r.headers.set("set-cookie", clear);
    return r;
  });

  app.post("/token", async (c) => {
    const form = await readForm(c.req.raw, maxBody, bodyTimeoutMs);
    const grant = single(form, "grant_type", true)!;
    if (!GRANTS.has(grant)) {
      throw new OAuthError("unsupported_grant_type", "grant_type not supported");
    }
    const client = await authenticateClient(c.req.raw, form);
    if (!client.grant_types.includes(grant)) {
      throw new OAuthError("unauthorized_client", `client may not use ${grant}`);
    }
    if (CONFIDENTIAL_GRANTS.has(grant)) {
      return c.json(await foreignToken(grant, client, form), 200, {
        "cache-control": "no-store",
        pragma: "no-cache",
      });
    }
    const resParam = form.getAll("resource");
    if (resParam.length > 1) throw new OAuthError("invalid_target", "only one resource");
    if (resParam[0] !== undefined && resParam[0].replace(/\/+$/, "") !== resource()) {
      throw new OAuthError("invalid_target", `tokens are only issued for ${resource()}`);
    }
    const noStore = { "cache-control": "no-store", pragma: "no-cache" };
    if (grant === "authorization_code") {
      const code = single(form, "code", true)!;
      const verifier = single(form, "code_verifier");
      const redirectUri = single(form, "redirect_uri");
      if (verifier === undefined) {
        throw new OAuthError("invalid_request", "code_verifier is required (PKCE)");
      }
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) {
        throw new OAuthError("invalid_grant", "code_verifier is malformed");
      }
      const taken = await store.takeCode(code, CODE_TTL_MS * 10);
      if (!taken.ok) {
        if (taken.replayedFamily) await store.revokeFamily(taken.replayedFamily, refreshTtlMs);
        throw new OAuthError("invalid_grant", "code is invalid, expired or already used");
      }
      const rec = taken.rec;
      if (rec.client_id !== client.client_id) {
        throw new OAuthError("invalid_grant", "code was issued to another client");
      }
      if (redirectUri !== undefined && redirectUri !== rec.redirect_uri) {
        throw new OAuthError("invalid_grant", "redirect_uri does not match");
      }
      if (!timingSafeEqualText(await s256(verifier), rec.code_challenge)) {
        throw new OAuthError("invalid_grant", "code_verifier does not match the challenge");
      }
      await store.openFamily(rec.family, refreshTtlMs);
      return c.json(await issueTokens(rec), 200, noStore);
    }
    const token = single(form, "refresh_token", true)!;
    const rec = await store.useRefresh(token, refreshTtlMs);
    if (!rec || rec.client_id !== client.client_id) {
      throw new OAuthError("invalid_grant", "refresh token is invalid");
    }
    if (rec.used) {
      // Reuse: someone holds a copy. Revoke everything descended from this grant.
      await store.revokeFamily(rec.family, refreshTtlMs);
      throw new OAuthError("invalid_grant", "refresh token was already used; grant revoked");
    }
    if (!(await store.familyLive(rec.family))) {
      throw new OAuthError("invalid_grant", "grant has been revoked");
    }
    let scope = rec.scope;
    const narrowed = single(form, "scope");
    if (narrowed !== undefined) {
      const have = new Set(rec.scope.split(" "));
      const want = narrowed.split(" ").filter((s) => s !== "");
      if (want.length === 0 || want.some((s) => !have.has(s))) {
        throw new OAuthError("invalid_scope", "a refresh may only narrow the scope");
      }
      scope = want.join(" ");
    }
    return c.json(await issueTokens({ ...rec, scope }), 200, noStore);
  });

  /**
   * A token for ANOTHER server (one of `exchangeAudiences`): client credentials
   * (the client itself is the subject) or RFC 8693 token exchange (a caller's
   * access token to this server becomes one for the other, same subject).
   * Audience-bound to that resource, short-lived, scope at most what the
   * subject held, no refresh token; this server never accepts it itself.
   */
  async function foreignToken(grant: string, client: ClientRecord, form: URLSearchParams) {
    if (client.token_endpoint_auth_method === "none") {
      throw new OAuthError("unauthorized_client", `${grant} needs an authenticated client`);
    }
    const targets = [...form.getAll("resource"), ...form.getAll("audience")];
    if (targets.length !== 1) {
      throw new OAuthError("invalid_target", "name exactly one resource (or audience)");
    }
    const target = targets[0].replace(/\/+$/, "");
    const allowed = (opts.exchangeAudiences ?? []).map((a) => a.replace(/\/+$/, ""));
    if (!allowed.includes(target)) {
      throw new OAuthError("invalid_target", "tokens are not issued for that resource");
    }
    let sub = client.client_id;
    let held = scopes;
    let family = randomToken(12);
    let notAfterS = Infinity;
    let actor: string | undefined;
    if (grant === TOKEN_EXCHANGE) {
      const subjectToken = single(form, "subject_token", true)!;
      const type = single(form, "subject_token_type", true);
      if (type !== ACCESS_TOKEN_TYPE) {
        throw new OAuthError("invalid_request", `subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      const requested = single(form, "requested_token_type");
      if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
        throw new OAuthError(
          "invalid_request",
          `requested_token_type may only be ${ACCESS_TOKEN_TYPE}`,
        );
      }
      if (form.has("actor_token")) {
        throw new OAuthError("invalid_request", "actor_token is not supported");
      }
      // Only a live access token this server issued for its own resource is exchanged.
      const claims = await verifyRaw(subjectToken);
      if (!claims || !(await store.familyLive(claims.fam))) {
        throw new OAuthError("invalid_grant", "subject_token is invalid, expired or revoked");
      }
      sub = claims.sub;
      held = claims.scope.split(" ").filter((x) => x !== "");
      family = claims.fam;
      notAfterS = claims.exp;
      actor = client.client_id;
    }
    const asked = single(form, "scope");
    const want = asked === undefined ? held : asked.split(" ").filter((x) => x !== "");
    if (want.length === 0 || want.some((x) => !held.includes(x))) {
      throw new OAuthError("invalid_scope", "scope must be within what the subject holds");
    }
    const nowS = Math.floor(Date.now() / 1000);
    const ttl = Math.min(opts.exchangeTtlS ?? 60, notAfterS - nowS);
    if (ttl < 1) throw new OAuthError("invalid_grant", "subject_token is about to expire");
    const jwt = await new SignJWT({
      client_id: client.client_id,
      scope: want.join(" "),
      fam: family,
      ...(actor !== undefined ? { act: { sub: actor } } : {}),
    })
      .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
      .setIssuer(issuer())
      .setSubject(sub)
      .setAudience(target)
      .setIssuedAt(nowS)
      .setExpirationTime(nowS + ttl)
      .setJti(randomToken(12))
      .sign(privateKey as CryptoKey);
    return {
      access_token: jwt,
      token_type: "Bearer",
      expires_in: ttl,
      scope: want.join(" "),
      ...(grant === TOKEN_EXCHANGE ? { issued_token_type: ACCESS_TOKEN_TYPE } : {}),
    };
  }

  app.post("/revoke", async (c) => {
    const form = await readForm(c.req.raw, maxBody, bodyTimeoutMs);
    const client = await authenticateClient(c.req.raw, form);
    const token = single(form, "token", true)!;
    const hint = single(form, "token_type_hint");
    if (hint !== undefined && hint !== "access_token" && hint !== "refresh_token") {
      throw new OAuthError("unsupported_token_type", "token_type_hint not supported");
    }
    const refresh = await store.peekRefresh(token);
    if (refresh && refresh.client_id === client.client_id) {
      await store.revokeFamily(refresh.family, refreshTtlMs);
    } else {
      const claims = await verifyRaw(token);
      if (claims && claims.client_id === client.client_id) {
        await store.revokeFamily(claims.fam, refreshTtlMs);
      }
    }
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    return c.body(null, 200);
  });

  async function verifyRaw(
    token: string,
  ): Promise<(AccessClaims & { fam: string; exp: number }) | null> {
    try {
      const { payload } = await jwtVerify(token, keyFor, {
        issuer: issuer(),
        audience: resource(),
        algorithms: ["ES256"],
        typ: "at+jwt",
      });
      if (
        typeof payload.sub !== "string" || typeof payload.client_id !== "string" ||
        typeof payload.scope !== "string" || typeof payload.fam !== "string"
      ) return null;
      const idp = payload.idp;
      const roles = payload.roles;
      if (
        idp !== undefined && (typeof idp !== "string" || !Array.isArray(roles) ||
          roles.length > MAX_TOKEN_ROLES || roles.some((r) => typeof r !== "string"))
      ) return null;
      return {
        sub: payload.sub,
        client_id: payload.client_id,
        scope: payload.scope,
        fam: payload.fam,
        exp: payload.exp ?? 0,
        ...(typeof idp === "string" ? { idp, roles: roles as string[] } : {}),
      };
    } catch {
      return null;
    }
  }

  return {
    routes: app,
    close: () => clearInterval(republish),
    resource,
    resourceMetadataUrl: () => `${issuer()}/.well-known/oauth-protected-resource/mcp`,
    async verify(token) {
      const claims = await verifyRaw(token);
      if (!claims) return null;
      if (!(await store.familyLive(claims.fam))) return null;
      return {
        sub: claims.sub,
        client_id: claims.client_id,
        scope: claims.scope,
        ...(claims.idp !== undefined ? { idp: claims.idp, roles: claims.roles ?? [] } : {}),
      };
    },
  };
}
