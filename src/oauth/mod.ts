/**
 * The built-in OAuth 2.1 authorization server (`--auth oauth`).
 *
 * @module
 */
export { createOAuthServer } from "./server.ts";
export type { AccessClaims, OAuthOptions, OAuthServer, PasswordVerifier } from "./server.ts";
