/**
 * Login federation (`--oidc-client-id`): a person signs in at Warden's
 * `/login` through the external OpenID provider of `--oidc-issuer`, Warden
 * being an OpenID Connect relying party — authorization code with PKCE S256,
 * `state` and `nonce`, the RFC 9207 `iss` of the response checked, the ID
 * token's claims (`iss`, `aud`, `azp`, `exp`, `iat`, `nonce`) and signature
 * checked. Every protocol step is `oauth4webapi`'s (panva's OpenID-certified
 * relying-party library, no dependencies, WebCrypto and `fetch` only, so it
 * runs under Deno and on Deploy); this module only routes its every request
 * through the SSRF guard with a size and a time limit, and maps the verified
 * subject and roles to a principal as the resource-server federation does
 * (`<issuer>#<sub>`, {@link rolesFromClaims}).
 *
 * What a login attempt must remember between the redirect and the callback
 * ({@link OidcAttempt}) is returned to the caller, which keeps it in KV; the
 * client secret stays in this closure and is never part of it.
 *
 * @module
 */
import * as oauth from "oauth4webapi";
import { decodeProtectedHeader } from "jose";
import {
  checkUrl,
  createUrlGuard,
  FetchFailedError,
  FetchRefusedError,
  readCapped,
} from "../net/mod.ts";
import { MAX_SUB_CHARS, rolesFromClaims } from "./federation.ts";

const MAX_RESPONSE_BYTES = 64 * 1024;
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;

export interface OidcLoginOptions {
  /** The provider's issuer identifier (`--oidc-issuer`). */
  readonly issuer: string;
  readonly clientId: string;
  /** Absent: a public client (PKCE only, `token_endpoint_auth_method` none). */
  readonly clientSecret?: string;
  /** Warden's callback URL, registered at the provider exactly; read per request. */
  readonly redirectUri: () => string;
  /** Scopes asked for; `openid` is always among them. */
  readonly scopes: readonly string[];
  /** JWS algorithms the ID token may be signed with (asymmetric only). */
  readonly algorithms: readonly string[];
  readonly rolesClaim: string;
  readonly roleMap?: ReadonlyMap<string, string>;
  /** Hosts the provider may live on although private or plain http (tests only). */
  readonly allowHosts: readonly string[];
  /** Time limit of one request to the provider (metadata, token, keys). */
  readonly timeoutMs: number;
  readonly fetch?: typeof fetch;
}

/** What the callback must match: kept server-side (KV) between redirect and callback. */
export interface OidcAttempt {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** Who signed in, from a verified ID token. */
export interface OidcIdentity {
  readonly sub: string;
  /** `<issuer>#<sub>`, the same principal the provider's access tokens map to. */
  readonly principal: string;
  readonly roles: readonly string[];
}

/**
 * A login that cannot finish: the provider said no (`providerError` is its
 * `error` code), could not be reached, or answered something that fails a
 * check. The message is safe to show the person (no secret in it).
 */
export class OidcLoginError extends Error {
  override name = "OidcLoginError";
  constructor(message: string, readonly providerError?: string) {
    super(message);
  }
}

export interface OidcLogin {
  readonly issuer: string;
  /** A label for the sign-in button: the provider's host. */
  readonly label: string;
  /** The origin of the provider's authorization endpoint, once known (for the login page's CSP). */
  authorizationOrigin(): Promise<string | undefined>;
  /** Starts an attempt: the provider URL to send the browser to, and what to remember. */
  begin(): Promise<{ url: string; attempt: OidcAttempt }>;
  /** Finishes an attempt with the callback's query; throws {@link OidcLoginError}. */
  finish(callback: URLSearchParams, attempt: OidcAttempt): Promise<OidcIdentity>;
}

function exempt(u: URL, allow: readonly string[]): boolean {
  return allow.includes(u.host) || allow.includes(u.hostname);
}

/**
 * oauth4webapi's fetch: the SSRF guard on the URL, https unless the host is
 * allow-listed, no redirects, the body read whole under a byte cap, and one
 * time limit for all of it.
 */
function createGuardedFetch(opts: Pick<OidcLoginOptions, "allowHosts" | "timeoutMs" | "fetch">) {
  const doFetch = opts.fetch ?? globalThis.fetch;
  return async function guardedFetch(
    url: string,
    init: oauth.CustomFetchOptions<string, unknown>,
  ): Promise<Response> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new OidcLoginError("the provider named an endpoint that is not a URL");
    }
    const allowed = exempt(u, opts.allowHosts);
    if (u.protocol !== "https:" && !(u.protocol === "http:" && allowed)) {
      throw new OidcLoginError(`the provider's endpoint ${u.origin} is not https`);
    }
    const signal = AbortSignal.timeout(opts.timeoutMs);
    const what = u.origin + u.pathname;
    try {
      await checkUrl(u, createUrlGuard({ allowHosts: allowed ? [u.hostname] : [], signal }), null);
      const res = await doFetch(u, {
        method: init.method,
        headers: init.headers,
        body: init.body as BodyInit | undefined,
        redirect: "manual",
        signal,
      });
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        throw new OidcLoginError(`the provider's ${what} redirected; redirects are not followed`);
      }
      const body = res.body ? await readCapped(res.body, MAX_RESPONSE_BYTES) : new Uint8Array();
      if (body === undefined) {
        throw new OidcLoginError(
          `the provider's ${what} answered more than ${MAX_RESPONSE_BYTES} bytes`,
        );
      }
      const headers = new Headers(res.headers);
      headers.delete("content-length");
      headers.delete("content-encoding");
      return new Response(body as Uint8Array<ArrayBuffer>, { status: res.status, headers });
    } catch (e) {
      if (e instanceof OidcLoginError) throw e;
      if (signal.aborted) {
        throw new OidcLoginError(
          `the provider did not answer in time (${what}, ${opts.timeoutMs} ms)`,
        );
      }
      if (e instanceof FetchRefusedError || e instanceof FetchFailedError) {
        throw new OidcLoginError(`the provider could not be reached: ${e.message}`);
      }
      throw new OidcLoginError(`the provider could not be reached (${what})`);
    }
  };
}

/** Builds the relying party for one provider. */
export function createOidcLogin(opts: OidcLoginOptions): OidcLogin {
  const issuerUrl = new URL(opts.issuer);
  const insecure = issuerUrl.protocol === "http:" && exempt(issuerUrl, opts.allowHosts);
  const scopes = [...new Set(["openid", ...opts.scopes])];
  const client: oauth.Client = { client_id: opts.clientId };

  const guardedFetch = createGuardedFetch(opts);
  const requestOptions = {
    [oauth.customFetch]: guardedFetch,
    ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
  };

  let cached: { as: oauth.AuthorizationServer; until: number } | undefined;
  async function metadata(): Promise<oauth.AuthorizationServer> {
    if (cached && cached.until > Date.now()) return cached.as;
    const as = await protocol(async () =>
      await oauth.processDiscoveryResponse(
        issuerUrl,
        await oauth.discoveryRequest(issuerUrl, { algorithm: "oidc", ...requestOptions }),
      )
    );
    if (typeof as.authorization_endpoint !== "string" || typeof as.token_endpoint !== "string") {
      throw new OidcLoginError("the provider's metadata lacks an authorization or token endpoint");
    }
    const auth = new URL(as.authorization_endpoint);
    if (auth.protocol !== "https:" && !(auth.protocol === "http:" && insecure)) {
      throw new OidcLoginError("the provider's authorization endpoint is not https");
    }
    cached = { as, until: Date.now() + DISCOVERY_MAX_AGE_MS };
    return as;
  }

  return {
    issuer: opts.issuer,
    label: issuerUrl.host,
    async authorizationOrigin() {
      try {
        return new URL((await metadata()).authorization_endpoint!).origin;
      } catch {
        return undefined;
      }
    },
    async begin() {
      const as = await metadata();
      const attempt: OidcAttempt = {
        state: oauth.generateRandomState(),
        nonce: oauth.generateRandomNonce(),
        codeVerifier: oauth.generateRandomCodeVerifier(),
      };
      const url = new URL(as.authorization_endpoint!);
      url.searchParams.set("response_type", "code");
      url.searchParams.set("client_id", opts.clientId);
      url.searchParams.set("redirect_uri", opts.redirectUri());
      url.searchParams.set("scope", scopes.join(" "));
      url.searchParams.set("state", attempt.state);
      url.searchParams.set("nonce", attempt.nonce);
      url.searchParams.set(
        "code_challenge",
        await oauth.calculatePKCECodeChallenge(attempt.codeVerifier),
      );
      url.searchParams.set("code_challenge_method", "S256");
      return { url: url.toString(), attempt };
    },
    async finish(callback, attempt) {
      const as = await metadata();
      return await protocol(async () => {
        // state, RFC 9207 iss (required when the provider advertises it), error responses.
        const params = oauth.validateAuthResponse(as, client, callback, attempt.state);
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          clientAuthFor(as, opts.clientSecret),
          params,
          opts.redirectUri(),
          attempt.codeVerifier,
          requestOptions,
        );
        const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
          expectedNonce: attempt.nonce,
          requireIdToken: true,
        });
        const alg = decodeProtectedHeader(result.id_token!).alg;
        if (typeof alg !== "string" || !opts.algorithms.includes(alg)) {
          throw new OidcLoginError(
            `the ID token's algorithm ${String(alg).slice(0, 16)} is not allowed ` +
              `(${opts.algorithms.join(", ")})`,
          );
        }
        // The signature, against the keys of the provider's jwks_uri (fetched through the guard).
        await oauth.validateApplicationLevelSignature(as, response, requestOptions);
        const claims = oauth.getValidatedIdTokenClaims(result)!;
        if (claims.sub.length > MAX_SUB_CHARS) {
          throw new OidcLoginError("the ID token's sub is too long");
        }
        return {
          sub: claims.sub,
          principal: `${opts.issuer}#${claims.sub}`,
          roles: rolesFromClaims(claims, opts.rolesClaim, opts.roleMap),
        };
      });
    },
  };
}

/** How Warden authenticates at the token endpoint: by what the provider's metadata lists. */
function clientAuthFor(
  as: oauth.AuthorizationServer,
  secret: string | undefined,
): oauth.ClientAuth {
  if (secret === undefined) return oauth.None();
  const methods = as.token_endpoint_auth_methods_supported;
  // RFC 8414: absent means client_secret_basic.
  if (methods === undefined || methods.includes("client_secret_basic")) {
    return oauth.ClientSecretBasic(secret);
  }
  return oauth.ClientSecretPost(secret);
}

/** Runs oauth4webapi steps, turning their errors into {@link OidcLoginError}s a person can read. */
async function protocol<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof OidcLoginError) throw e;
    if (e instanceof oauth.AuthorizationResponseError) {
      throw new OidcLoginError(
        `the provider answered ${e.error}` +
          (e.error_description ? `: ${e.error_description.slice(0, 300)}` : ""),
        e.error,
      );
    }
    if (e instanceof oauth.ResponseBodyError) {
      throw new OidcLoginError(
        `the provider refused the code: ${e.error}` +
          (e.error_description ? `: ${e.error_description.slice(0, 300)}` : ""),
        e.error,
      );
    }
    if (
      e instanceof oauth.OperationProcessingError || e instanceof oauth.UnsupportedOperationError
    ) {
      throw new OidcLoginError(`the provider's answer was refused: ${e.message}`);
    }
    // oauth4webapi's own TypeErrors carry a code (ERR_INVALID_ARG_*): malformed provider input.
    if (e instanceof TypeError && typeof (e as { code?: unknown }).code === "string") {
      throw new OidcLoginError(`the provider's answer was refused: ${e.message.slice(0, 200)}`);
    }
    throw e;
  }
}
