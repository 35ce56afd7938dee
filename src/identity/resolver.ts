/**
 * The one place a request's `Authorization: Bearer` becomes a {@link Principal}.
 * Order: the static `--token` (bootstrap admin), minted tokens in KV, then any
 * plugged-in verifiers (the OAuth access-token check registers one). No header
 * is `anonymous` with the policy's default roles — unless authentication is
 * required, when it is a 401 like an unknown, expired or revoked token.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import {
  ADMIN_ROLE,
  anonymousPrincipal,
  type Principal,
  STATIC_PRINCIPAL_ID,
} from "./principal.ts";
import { verifyToken } from "./tokens.ts";

/**
 * Maps a bearer secret to a principal, or undefined when it is not one of its
 * own (the resolver then tries the next). It must not throw for foreign tokens.
 * A verifier that recognises the token as its kind but refuses it may return
 * an {@link AuthFailure} saying why (an expired external JWT, say).
 */
export type TokenVerifier = (
  secret: string,
  req: Request,
) => Promise<Principal | AuthFailure | undefined>;

/** Why a request was not authenticated; the HTTP edge turns it into a 401. */
export interface AuthFailure {
  readonly error: "missing" | "invalid";
  readonly message: string;
  /** Said in the challenge's `error_description` (what to fix), when a verifier knows. */
  readonly description?: string;
}

/** Resolves a request to a principal or an authentication failure. */
export interface AuthResolver {
  resolve(req: Request): Promise<Principal | AuthFailure>;
  /** Plugs in a verifier (e.g. OAuth access tokens); tried after static and minted tokens. */
  addVerifier(verifier: TokenVerifier): void;
}

/** True when `r` is a failure rather than a principal. */
export function isAuthFailure(r: Principal | AuthFailure): r is AuthFailure {
  return "error" in r;
}

const MAX_TOKEN_CHARS = 4096;

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Builds the resolver. `required` is true when the server must not serve
 * unauthenticated callers (a `--token` is configured or OAuth is on).
 */
export function createAuthResolver(options: {
  kv: Deno.Kv;
  staticToken?: string;
  required: boolean;
  defaultRoles: () => readonly string[];
  verifiers?: readonly TokenVerifier[];
}): AuthResolver {
  const expected = options.staticToken !== undefined ? digest(options.staticToken) : undefined;
  const verifiers: TokenVerifier[] = [...(options.verifiers ?? [])];
  return {
    addVerifier(v) {
      verifiers.push(v);
    },
    async resolve(req) {
      const header = req.headers.get("authorization");
      if (header === null) {
        return options.required
          ? { error: "missing", message: "Unauthorized: missing bearer token" }
          : anonymousPrincipal(options.defaultRoles());
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const invalid: AuthFailure = {
        error: "invalid",
        message: "Unauthorized: invalid bearer token",
      };
      if (!match || match[1].length > MAX_TOKEN_CHARS) return invalid;
      const secret = match[1];
      if (expected !== undefined && timingSafeEqual(digest(secret), expected)) {
        const roles = [ADMIN_ROLE, ...options.defaultRoles().filter((r) => r !== ADMIN_ROLE)];
        return { id: STATIC_PRINCIPAL_ID, kind: "static", roles, scopes: [] };
      }
      const minted = await verifyToken(options.kv, secret);
      if (minted) return minted;
      let refusal: AuthFailure | undefined;
      for (const v of verifiers) {
        const p = await v(secret, req);
        if (p && !isAuthFailure(p)) return p;
        refusal ??= p;
      }
      return refusal ?? invalid;
    },
  };
}
