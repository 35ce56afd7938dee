/**
 * What governance reads about the caller of the call it judges: the roles the
 * request's principal holds (its token or user record plus the policy) and the
 * fields a vault entry records about it. The principal comes from the request
 * context the HTTP edge set (src/identity/), since the MCP SDK's transports
 * pass none of ours through.
 *
 * @module
 */
import { currentPrincipal } from "../identity/mod.ts";
import { type Policy, rolesOf } from "./policy.ts";

/**
 * The roles principal `id` holds: those its token or user record grants plus
 * its `principals` entry in the policy; when that is nothing, `default_roles`.
 */
export function rolesFor(policy: Policy, id: string): string[] {
  const granted = currentPrincipal(id)?.roles ?? [];
  const entry = Object.hasOwn(policy.principals, id) ? policy.principals[id].roles : [];
  const roles = [...new Set([...granted, ...entry])];
  return roles.length > 0 ? roles : rolesOf(policy, id);
}

/**
 * What a vault entry records about the caller besides its name: how it
 * authenticated and, when there is one, the OAuth client. Never a secret.
 */
export function principalFields(id: string): Record<string, string> {
  const p = currentPrincipal(id);
  if (!p) return {};
  return {
    principal_kind: p.kind,
    ...(p.client_id !== undefined ? { client_id: p.client_id } : {}),
  };
}
