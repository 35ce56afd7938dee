/**
 * The built-in OAuth 2.1 authorization server (`--auth oauth`) and federation
 * to an external OpenID provider (`--oidc-issuer`): its access tokens accepted,
 * and (`--oidc-client-id`) people signing in at `/login` through it.
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
export { createOidcLogin, OidcLoginError } from "./relying_party.ts";
export type { OidcAttempt, OidcIdentity, OidcLogin, OidcLoginOptions } from "./relying_party.ts";
