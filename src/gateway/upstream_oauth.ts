/**
 * OAuth to an upstream as a client (issue 12): an upstream entry's `oauth`
 * says how Warden gets the access token it presents — client credentials
 * (Warden's own identity) or RFC 8693 token exchange of the caller's access
 * token for one with the upstream's audience (the caller's identity, never
 * the caller's token itself). Protocol by `oauth4webapi`: RFC 8414 discovery
 * (issuer checked), client authentication, token responses. Tokens are kept
 * in memory until shortly before they expire; the client secret comes from an
 * environment variable and, like every token, is never logged or sealed.
 *
 * @module
 */
import * as oauth from "oauth4webapi";
import { readCapped } from "../net/mod.ts";
import { sha256HexOfText } from "../lib/mod.ts";

/** RFC 8693. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** An upstream's `oauth` entry, validated by the manifest schema. */
export type UpstreamOAuthConfig = UpstreamGrantConfig | UpstreamAuthorizationCodeConfig;

/**
 * Each principal authorizes Warden at the upstream's authorization server
 * (the authorization-code flow); see `user_authorization.ts`.
 */
export interface UpstreamAuthorizationCodeConfig {
  readonly mode: "authorization_code";
  /** The scope asked for; default what the upstream's protected-resource metadata lists. */
  readonly scope?: string;
}

/** Warden's own token (client credentials) or the caller's exchanged (RFC 8693). */
export interface UpstreamGrantConfig {
  readonly mode?: undefined;
  readonly grant: "client_credentials" | "token_exchange";
  /** The authorization server's issuer identifier (RFC 8414 metadata is read from it). */
  readonly issuer: string;
  readonly client_id: string;
  /** The environment variable holding the client secret. */
  readonly client_secret_env: string;
  /** The resource (RFC 8707) the token is asked for; default the upstream's URL. */
  readonly resource?: string;
  readonly scope?: string;
}

/** A token endpoint or metadata failure, said without any secret. */
export class UpstreamOAuthError extends Error {
  override name = "UpstreamOAuthError";
}

export interface UpstreamTokens {
  /** Warden's own token (client credentials): listing, health, and calls of that grant. */
  service(): Promise<string>;
  /** The caller's token exchanged for one for this upstream (token_exchange only). */
  exchange(subjectToken: string): Promise<string>;
  /** The upstream refused a token: forget it (and the exchanged one for `subjectToken`). */
  forget(subjectToken?: string): void;
}

const MAX_BODY_BYTES = 64 * 1024;
const TIMEOUT_MS = 10_000;
const MAX_EXCHANGED = 1000;

function isLoopback(u: URL): boolean {
  return u.hostname === "127.0.0.1" || u.hostname === "localhost" || u.hostname === "[::1]";
}

/** A fetch whose answers are read at most {@link MAX_BODY_BYTES} (then refused). */
export async function cappedFetch(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, { ...init, redirect: "manual" });
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) {
    await res.body?.cancel();
    throw new UpstreamOAuthError(
      `the authorization server answered more than ${MAX_BODY_BYTES} bytes`,
    );
  }
  const body = res.body ? await readCapped(res.body, MAX_BODY_BYTES) : new Uint8Array();
  if (body === undefined) {
    throw new UpstreamOAuthError(
      `the authorization server answered more than ${MAX_BODY_BYTES} bytes`,
    );
  }
  return new Response(res.status === 204 ? null : body as BufferSource, {
    status: res.status,
    headers: res.headers,
  });
}

function explain(e: unknown, upstream: string): UpstreamOAuthError {
  if (e instanceof UpstreamOAuthError) return e;
  if (e instanceof oauth.ResponseBodyError) {
    return new UpstreamOAuthError(
      `upstream ${upstream}: the authorization server refused the token request: ${e.error}${
        e.error_description ? ` (${e.error_description.slice(0, 200)})` : ""
      }`,
    );
  }
  const why = e instanceof Error ? e.message.slice(0, 200) : "unknown error";
  return new UpstreamOAuthError(`upstream ${upstream}: cannot get an OAuth token: ${why}`);
}

/**
 * The token source of one upstream. `env` reads the client secret (at each
 * token request, so a rotated secret applies to the next token).
 */
// Kept whole: the token source's closures share the server metadata, the service token and the
// exchanges in flight.
export function createUpstreamTokens(
  upstream: string,
  config: UpstreamGrantConfig,
  options: {
    readonly resource: string;
    readonly env: (name: string) => string | undefined;
    /** Time limit of one metadata or token request; default 10 s. */
    readonly timeoutMs?: number;
  },
): UpstreamTokens {
  const issuer = new URL(config.issuer);
  const insecure = issuer.protocol === "http:" && isLoopback(issuer);
  if (issuer.protocol !== "https:" && !insecure) {
    throw new UpstreamOAuthError(
      `upstream ${upstream}: oauth.issuer must be https (or http on loopback)`,
    );
  }
  const resource = config.resource ?? options.resource;
  const client: oauth.Client = { client_id: config.client_id };
  const requestOptions = () => ({
    signal: AbortSignal.timeout(options.timeoutMs ?? TIMEOUT_MS),
    [oauth.customFetch]: cappedFetch,
    ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
  });
  let server: Promise<oauth.AuthorizationServer> | undefined;
  function authorizationServer(): Promise<oauth.AuthorizationServer> {
    server ??= (async () => {
      // RFC 8414 first, then OpenID discovery; the document must name the configured issuer.
      for (const algorithm of ["oauth2", "oidc"] as const) {
        const res = await oauth.discoveryRequest(issuer, { algorithm, ...requestOptions() });
        if (res.status === 404) {
          await res.body?.cancel();
          continue;
        }
        return await oauth.processDiscoveryResponse(issuer, res);
      }
      throw new UpstreamOAuthError(`the authorization server ${issuer.href} has no metadata`);
    })().catch((e) => {
      server = undefined;
      throw explain(e, upstream);
    });
    return server;
  }
  function clientAuth(): oauth.ClientAuth {
    const secret = options.env(config.client_secret_env);
    if (secret === undefined || secret === "") {
      throw new UpstreamOAuthError(
        `upstream ${upstream}: the client secret variable ${config.client_secret_env} is not set`,
      );
    }
    return oauth.ClientSecretBasic(secret);
  }
  /** Kept until shortly before expiry: a quarter of its life, at most 30 s before. */
  const keepUntil = (expiresIn: number | undefined) => {
    const life = Math.max(1, expiresIn ?? 60) * 1000;
    return Date.now() + life - Math.min(30_000, life / 4);
  };
  const params = (extra: Record<string, string>) => ({
    resource,
    ...(config.scope ? { scope: config.scope } : {}),
    ...extra,
  });

  let service: { token: string; until: number } | undefined;
  let serviceInflight: Promise<string> | undefined;
  const exchanged = new Map<string, { token: string; until: number }>();

  return {
    service() {
      if (service && service.until > Date.now()) return Promise.resolve(service.token);
      serviceInflight ??= (async () => {
        try {
          const as = await authorizationServer();
          const res = await oauth.clientCredentialsGrantRequest(
            as,
            client,
            clientAuth(),
            params({}),
            requestOptions(),
          );
          const t = await oauth.processClientCredentialsResponse(as, client, res);
          service = { token: t.access_token, until: keepUntil(t.expires_in) };
          return t.access_token;
        } catch (e) {
          throw explain(e, upstream);
        } finally {
          serviceInflight = undefined;
        }
      })();
      return serviceInflight;
    },
    async exchange(subjectToken) {
      const key = sha256HexOfText(subjectToken);
      const hit = exchanged.get(key);
      if (hit && hit.until > Date.now()) return hit.token;
      try {
        const as = await authorizationServer();
        const res = await oauth.genericTokenEndpointRequest(
          as,
          client,
          clientAuth(),
          TOKEN_EXCHANGE_GRANT,
          params({ subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE }),
          requestOptions(),
        );
        const t = await oauth.processGenericTokenEndpointResponse(as, client, res);
        if (exchanged.size >= MAX_EXCHANGED) {
          const now = Date.now();
          for (const [k, v] of exchanged) if (v.until <= now) exchanged.delete(k);
          if (exchanged.size >= MAX_EXCHANGED) exchanged.delete(exchanged.keys().next().value!);
        }
        exchanged.set(key, { token: t.access_token, until: keepUntil(t.expires_in) });
        return t.access_token;
      } catch (e) {
        throw explain(e, upstream);
      }
    },
    forget(subjectToken) {
      service = undefined;
      if (subjectToken !== undefined) {
        exchanged.delete(sha256HexOfText(subjectToken));
      }
    },
  };
}
