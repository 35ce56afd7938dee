/**
 * Identity: principals, minted tokens, users, and the auth resolver.
 *
 * @module
 */
export * from "./principal.ts";
export * from "./tokens.ts";
export * from "./users.ts";
export * from "./resolver.ts";
