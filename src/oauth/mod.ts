/**
 * The built-in OAuth 2.1 authorization server (`--auth oauth`) and federation
 * to an external OpenID provider (`--oidc-issuer`).
 *
 * @module
 */
export { createOAuthServer, createProtectedResource } from "./server.ts";
export type {
  AccessClaims,
  OAuthOptions,
  OAuthServer,
  PasswordVerifier,
  ProtectedResource,
} from "./server.ts";
export { createOidcVerifier, DEFAULT_OIDC_ALGORITHMS } from "./federation.ts";
export type { OidcClaims, OidcOptions, OidcRefusal, OidcVerifier } from "./federation.ts";
