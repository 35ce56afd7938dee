/**
 * Who is calling: the one shape every authentication path produces and the
 * governance pipeline consumes. `id` is the name governance, rate buckets and
 * the vault record; `roles` feed F11; `client_id` names the OAuth client when
 * the caller came through one.
 *
 * @module
 */

/** How a principal authenticated. */
export type PrincipalKind = "token" | "user" | "oauth" | "static" | "anonymous";

/** An authenticated (or anonymous) caller. */
export interface Principal {
  /** The name governance, rate buckets and vault entries record. */
  readonly id: string;
  readonly kind: PrincipalKind;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  /** The OAuth client the caller came through, if any. */
  readonly client_id?: string;
}

/** Names of principals and users: what `warden token create --name` and `user add` accept. */
export const PRINCIPAL_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/** The id the static `--token` resolves to (the bootstrap admin). */
export const STATIC_PRINCIPAL_ID = "bearer";

/** Role the static token carries besides any policy roles: everything a bootstrap admin needs. */
export const ADMIN_ROLE = "admin";

/** The unauthenticated caller, with the policy's default roles. */
export function anonymousPrincipal(defaultRoles: readonly string[]): Principal {
  return { id: "anonymous", kind: "anonymous", roles: [...defaultRoles], scopes: [] };
}
