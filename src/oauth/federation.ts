/**
 * `--oidc-issuer`: Warden as a resource server for access tokens (JWTs) an
 * external OpenID provider issued. The provider's metadata comes from
 * `<issuer>/.well-known/openid-configuration` and its keys from the
 * `jwks_uri` it names, both read through the SSRF guard with a size and a
 * time limit; the key set is cached and fetched again (at most every
 * {@link REFETCH_COOLDOWN_MS}) when a token names a `kid` it lacks, which is
 * how a provider's key rotation reaches Warden. Every JWT check is `jose`'s:
 * signature with an allow-listed algorithm, `iss`, `aud`, `exp`, `nbf`.
 *
 * @module
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from "jose";
import { readJsonDocument } from "./_document.ts";

/** Algorithms an external provider may sign with by default (no `none`, no shared-secret HS*). */
export const DEFAULT_OIDC_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"] as const;
const MAX_DOC_BYTES = 64 * 1024;
const MAX_KEYS = 50;
const JWKS_MAX_AGE_MS = 10 * 60_000;
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;
/** Tokens naming an unknown `kid` refetch the key set at most this often. */
export const REFETCH_COOLDOWN_MS = 10_000;
const CLOCK_TOLERANCE_S = 30;
/** Longest `sub` an external provider may name (the principal is `<issuer>#<sub>`). */
export const MAX_SUB_CHARS = 255;
const MAX_ROLES = 32;
const ROLE_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

export interface OidcOptions {
  /** The provider's issuer identifier, exactly as its tokens' `iss` (no trailing slash added). */
  readonly issuer: string;
  /** The audience tokens must carry (Warden's resource URL); read per check. */
  readonly audience: () => string;
  readonly algorithms?: readonly string[];
  /** The claim whose string (or array of strings) values become roles. */
  readonly rolesClaim?: string;
  /** Provider value → Warden role; when given, values it does not name grant nothing. */
  readonly roleMap?: ReadonlyMap<string, string>;
  /** Hosts the provider may live on although private or plain http (tests only). */
  readonly allowHosts?: readonly string[];
  /** Time limit of one metadata or key-set fetch. */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  /** Warden's own issuer under `--auth oauth`: its tokens are left to its own verifier's verdict. */
  readonly ownIssuer?: () => string;
}

/** What a verified external token says. */
export interface OidcClaims {
  readonly iss: string;
  readonly sub: string;
  /** `<issuer>#<sub>`: the principal id, unique across providers. */
  readonly principal: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly client_id?: string;
}

/** Why a token of this provider was refused: said in the 401's `error_description`. */
export interface OidcRefusal {
  readonly refused: string;
}

export interface OidcVerifier {
  readonly issuer: string;
  /**
   * Checks `token`: undefined when it is not a JWT at all (another verifier's),
   * a refusal naming why, or the claims.
   */
  verify(token: string): Promise<OidcClaims | OidcRefusal | undefined>;
  /** Reads the provider's metadata and keys now (at start), so a misconfiguration shows early. */
  warm(): Promise<void>;
}

class ProviderError extends Error {}

function exemptHost(u: URL, allow: readonly string[]): boolean {
  return allow.includes(u.host) || allow.includes(u.hostname);
}

/** Builds the verifier for one external provider. */
// Kept whole: the OIDC verifier's closures share the discovery document, the key set, the fetches
// in flight and the key-refetch throttle.
export function createOidcVerifier(opts: OidcOptions): OidcVerifier {
  const issuer = opts.issuer;
  const allow = opts.allowHosts ?? [];
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const algorithms = [...(opts.algorithms ?? DEFAULT_OIDC_ALGORITHMS)];
  const rolesClaim = opts.rolesClaim ?? "roles";

  async function getJson(url: string, what: string): Promise<unknown> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new ProviderError(`the provider's ${what} URL is not a URL`);
    }
    const allowed = exemptHost(u, allow);
    if (u.protocol !== "https:" && !(u.protocol === "http:" && allowed)) {
      throw new ProviderError(`the provider's ${what} URL must be https`);
    }
    return await readJsonDocument(url, {
      allowed,
      maxBytes: MAX_DOC_BYTES,
      timeoutMs,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    }, {
      unreadable: (why) => new ProviderError(`the provider's ${what} was not read: ${why}`),
      status: (status) => new ProviderError(`the provider's ${what} answered HTTP ${status}`),
      tooLarge: () =>
        new ProviderError(`the provider's ${what} is larger than ${MAX_DOC_BYTES} bytes`),
      notJson: () => new ProviderError(`the provider's ${what} is not JSON`),
    });
  }

  let discovery: { jwksUri: string; until: number } | undefined;
  async function jwksUri(): Promise<string> {
    if (discovery && discovery.until > Date.now()) return discovery.jwksUri;
    const meta = await getJson(
      `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`,
      "metadata",
    ) as Record<string, unknown> | null;
    if (typeof meta !== "object" || meta === null) {
      throw new ProviderError("the provider's metadata is not an object");
    }
    // OpenID Connect Discovery §4.3: the issuer in the document must be the one configured.
    if (meta.issuer !== issuer) {
      throw new ProviderError(
        `the provider's metadata names issuer ${JSON.stringify(meta.issuer)}, not ${issuer}`,
      );
    }
    if (typeof meta.jwks_uri !== "string") {
      throw new ProviderError("the provider's metadata has no jwks_uri");
    }
    discovery = { jwksUri: meta.jwks_uri, until: Date.now() + DISCOVERY_MAX_AGE_MS };
    return meta.jwks_uri;
  }

  let keys: { set: JWTVerifyGetKey; kids: Set<string>; fetchedAt: number } | undefined;
  let inflight: Promise<void> | undefined;
  let lastKidRefetch = -Infinity;
  async function refresh(): Promise<void> {
    inflight ??= (async () => {
      try {
        const raw = await getJson(await jwksUri(), "key set") as JSONWebKeySet;
        if (
          typeof raw !== "object" || raw === null || !Array.isArray(raw.keys) ||
          raw.keys.length > MAX_KEYS
        ) {
          throw new ProviderError(`the provider's key set must list 1 to ${MAX_KEYS} keys`);
        }
        // Only public signing keys; a symmetric or private key in a JWKS is a provider's error.
        const usable = raw.keys.filter((k) =>
          typeof k === "object" && k !== null && k.kty !== "oct" && k.d === undefined &&
          (k.use === undefined || k.use === "sig")
        );
        const kids = new Set(
          usable.map((k) => k.kid).filter((k): k is string => typeof k === "string"),
        );
        keys = { set: createLocalJWKSet({ keys: usable }), kids, fetchedAt: Date.now() };
      } finally {
        inflight = undefined;
      }
    })();
    await inflight;
  }

  async function keySet(kid: string | undefined): Promise<JWTVerifyGetKey> {
    const now = Date.now();
    const stale = !keys || now - keys.fetchedAt > JWKS_MAX_AGE_MS;
    // A rotated key is fetched as soon as a token names it; random kids cost one fetch a cooldown.
    const unknownKid = keys !== undefined && kid !== undefined && !keys.kids.has(kid) &&
      now - lastKidRefetch > REFETCH_COOLDOWN_MS;
    if (unknownKid) lastKidRefetch = now;
    if (stale || unknownKid) {
      try {
        await refresh();
      } catch (e) {
        // A provider briefly unreachable keeps its cached keys; without any, the token is refused.
        if (!keys) throw e;
      }
    }
    return keys!.set;
  }

  const rolesOf = (payload: JWTPayload) => rolesFromClaims(payload, rolesClaim, opts.roleMap);

  function scopesOf(payload: JWTPayload): string[] {
    const s = payload.scope ?? payload.scp;
    const list = typeof s === "string" ? s.split(" ") : Array.isArray(s) ? s : [];
    return list.filter((x): x is string => typeof x === "string" && x !== "").slice(0, 64);
  }

  return {
    issuer,
    async warm() {
      await refresh();
    },
    async verify(token) {
      let header;
      try {
        header = decodeProtectedHeader(token);
        // Unverified, only to tell Warden's own tokens (refused by their own verifier) apart.
        if (opts.ownIssuer && decodeJwt(token).iss === opts.ownIssuer()) return undefined;
      } catch {
        return undefined;
      }
      if (typeof header.alg !== "string" || !algorithms.includes(header.alg)) {
        return {
          refused: `token algorithm ${
            typeof header.alg === "string" ? header.alg.slice(0, 16) : "(none given)"
          } is not allowed (${algorithms.join(", ")})`,
        };
      }
      let set: JWTVerifyGetKey;
      try {
        set = await keySet(typeof header.kid === "string" ? header.kid : undefined);
      } catch (e) {
        const why = e instanceof ProviderError ? e.message : "the provider's keys are unavailable";
        return { refused: why };
      }
      try {
        const { payload } = await jwtVerify(token, set, {
          issuer,
          audience: opts.audience(),
          algorithms,
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ["exp", "sub"],
        });
        const sub = payload.sub!;
        if (sub.length > MAX_SUB_CHARS) return { refused: "token sub is too long" };
        const clientId = typeof payload.client_id === "string"
          ? payload.client_id
          : typeof payload.azp === "string"
          ? payload.azp
          : undefined;
        return {
          iss: issuer,
          sub,
          principal: `${issuer}#${sub}`,
          roles: rolesOf(payload),
          scopes: scopesOf(payload),
          ...(clientId !== undefined && clientId.length <= 255 ? { client_id: clientId } : {}),
        };
      } catch (e) {
        return { refused: describe(e) };
      }
    },
  };
}

/**
 * The Warden roles a provider's claims grant: the string (space-separated) or
 * array values of `claim`, through `roleMap` when given (values it does not
 * name grant nothing), kept only when they are role names, at most 32. One
 * mapping for access tokens (resource server) and ID tokens (login).
 */
export function rolesFromClaims(
  payload: Readonly<Record<string, unknown>>,
  claim: string,
  roleMap?: ReadonlyMap<string, string>,
): string[] {
  const raw = payload[claim];
  const values = typeof raw === "string" ? raw.split(" ") : Array.isArray(raw) ? raw : [];
  const out = new Set<string>();
  for (const v of values) {
    if (typeof v !== "string") continue;
    const role = roleMap ? roleMap.get(v) : v;
    if (role !== undefined && ROLE_NAME.test(role)) out.add(role);
    if (out.size >= MAX_ROLES) break;
  }
  return [...out];
}

/** A jose refusal in words a caller can act on. */
function describe(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "token has expired";
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "iss") return "token issuer is not the accepted provider";
    if (e.claim === "aud") return "token audience is not this server";
    if (e.claim === "nbf") return "token is not yet valid";
    return `token claim ${e.claim} is invalid`;
  }
  if (e instanceof errors.JWKSNoMatchingKey) return "token key id is not in the provider's key set";
  if (e instanceof errors.JWKSMultipleMatchingKeys) return "token key id is ambiguous";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (e instanceof errors.JOSEAlgNotAllowed) return "token algorithm is not allowed";
  return "token is malformed";
}
