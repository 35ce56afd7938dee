/**
 * The principal of the request being served, carried beside the client IP in
 * the request context (the MCP SDK's transports pass none of ours through), so
 * governance can read roles and the OAuth client for the call it judges.
 *
 * @module
 */
import { rolesOf } from "../governance/policy.ts";
import type { Policy } from "../governance/policy.ts";
import { currentRequest } from "../usage/request_context.ts";
import type { Principal } from "./principal.ts";

/** The request's principal when it is `id` (a call made under another name gets none). */
export function currentPrincipal(id: string): Principal | undefined {
  const p = currentRequest()?.principal;
  return p !== undefined && p.id === id ? p : undefined;
}

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
