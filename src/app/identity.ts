/**
 * Composition step: who a caller is — the password check people log in with, the built-in
 * OAuth server (`--auth oauth`), the external provider's verifier (`--oidc-issuer`) and its
 * sign-in, and the auth resolver every request goes through, with their verifiers plugged in.
 * @module
 */
import type { Config } from "../config.ts";
import type { Logger } from "../lib/mod.ts";
import type { Governance } from "../governance/mod.ts";
import {
  type AuthResolver,
  createAuthResolver,
  userRoles,
  verifyPassword,
} from "../identity/mod.ts";
import {
  createOAuthServer,
  createOidcLogin,
  createOidcVerifier,
  type OAuthServer,
  type OidcVerifier,
  type PasswordVerifier,
} from "../oauth/mod.ts";

/** What {@link buildIdentity} wires authentication from. */
export interface IdentityStepDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly governance: Governance;
  /** This server's public base URL: the OAuth issuer, and `<base>/mcp` the resource. */
  readonly publicBase: () => string;
  /** Checks a person's password; the users in KV (`warden user add`) when absent. */
  readonly verifyPassword?: PasswordVerifier;
  /** The fetch client ID metadata documents are read with. */
  readonly oauthFetch?: typeof fetch;
  /** The fetch every request to the `--oidc-issuer` provider is made with. */
  readonly oidcFetch?: typeof fetch;
}

/** The resolver and the servers behind it. */
export interface IdentityStep {
  readonly auth: AuthResolver;
  readonly oauth?: OAuthServer;
  readonly oidc?: OidcVerifier;
  readonly checkPassword: PasswordVerifier;
}

/** Builds the OAuth server and OIDC verifier the configuration asks for, and the resolver. */
export async function buildIdentity(deps: IdentityStepDeps): Promise<IdentityStep> {
  const { kv, config, logger, governance, publicBase } = deps;
  // People log in (OAuth /login, the dashboard) with the users `warden user add` created (scrypt, in KV).
  const checkPassword: PasswordVerifier = deps.verifyPassword ??
    (async (name, password) => (await verifyPassword(kv, name, password)) !== undefined);
  // What the sign-in and the access-token verifier both take from the provider's settings.
  const oidcShared = config.oidc
    ? {
      algorithms: config.oidc.algorithms,
      rolesClaim: config.oidc.rolesClaim,
      ...(config.oidc.roleMap ? { roleMap: config.oidc.roleMap } : {}),
      allowHosts: config.oidc.allowHosts,
      timeoutMs: config.oidc.fetchTimeoutMs,
      ...(deps.oidcFetch ? { fetch: deps.oidcFetch } : {}),
    }
    : undefined;
  const oidcLogin = config.oidc?.login
    ? createOidcLogin({
      issuer: config.oidc.issuer,
      clientId: config.oidc.login.clientId,
      ...(config.oidc.login.clientSecret !== undefined
        ? { clientSecret: config.oidc.login.clientSecret }
        : {}),
      redirectUri: () => `${publicBase()}/login/oidc/callback`,
      scopes: config.oidc.login.scopes,
      ...oidcShared!,
    })
    : undefined;
  const oauth = config.auth === "oauth"
    ? await createOAuthServer({
      kv,
      issuer: publicBase,
      verifyPassword: checkPassword,
      scopes: ["mcp", "profile"],
      cimdAllowHosts: config.oauthCimdAllowHosts,
      ...(deps.oauthFetch ? { fetch: deps.oauthFetch } : {}),
      ...(config.oidc ? { federatedIssuers: [config.oidc.issuer] } : {}),
      exchangeAudiences: config.oauthExchangeAudiences,
      bodyTimeoutMs: config.requestTimeoutMs,
      ...(oidcLogin ? { oidcLogin, logger } : {}),
    })
    : undefined;
  const oidc = config.oidc
    ? createOidcVerifier({
      issuer: config.oidc.issuer,
      audience: () => config.oidc!.audience ?? `${publicBase()}/mcp`,
      ...oidcShared!,
      ...(config.auth === "oauth" ? { ownIssuer: publicBase } : {}),
    })
    : undefined;
  const auth = createAuthResolver({
    kv,
    ...(config.token !== undefined ? { staticToken: config.token } : {}),
    required: config.token !== undefined || oauth !== undefined || oidc !== undefined,
    defaultRoles: () => governance.policy.default_roles,
  });
  if (oauth) addOAuthVerifier(auth, oauth, kv, governance);
  if (oidc) addOidcVerifier(auth, oidc, logger);
  return {
    auth,
    ...(oauth ? { oauth } : {}),
    ...(oidc ? { oidc } : {}),
    checkPassword,
  };
}

/**
 * An OAuth access token names the user it was issued to; a local user's roles come from their
 * record, and a person who signed in at the external provider has the roles its ID token mapped
 * to (the token says which: only Warden signs `idp`, so no user record can pose as one).
 */
function addOAuthVerifier(
  auth: AuthResolver,
  oauth: OAuthServer,
  kv: Deno.Kv,
  governance: Governance,
): void {
  auth.addVerifier(async (secret) => {
    if (!/^[A-Za-z0-9._~+/=-]{1,4096}$/.test(secret)) return undefined;
    const claims = await oauth.verify(secret);
    if (!claims) return undefined;
    const roles = claims.idp !== undefined ? claims.roles : await userRoles(kv, claims.sub);
    return {
      id: claims.sub,
      kind: "oauth",
      roles: roles ?? governance.policy.default_roles,
      scopes: claims.scope.split(" ").filter(Boolean),
      client_id: claims.client_id,
    };
  });
}

/**
 * An external provider's token: the principal is <issuer>#<sub>, with the roles its claim maps
 * to (the policy's `principals` entry adds to them, as for every principal).
 */
function addOidcVerifier(auth: AuthResolver, oidc: OidcVerifier, logger: Logger): void {
  auth.addVerifier(async (secret) => {
    if (!/^[A-Za-z0-9._~+/=-]{1,4096}$/.test(secret)) return undefined;
    const r = await oidc.verify(secret);
    if (r === undefined) return undefined;
    if ("refused" in r) {
      logger.info("external token refused", { issuer: oidc.issuer, reason: r.refused });
      return {
        error: "invalid",
        message: `Unauthorized: ${r.refused}`,
        description: r.refused,
      };
    }
    return {
      id: r.principal,
      kind: "oauth",
      roles: r.roles,
      scopes: r.scopes,
      ...(r.client_id !== undefined ? { client_id: r.client_id } : {}),
    };
  });
  // Read the provider now so a misconfiguration shows in the log at start; tokens retry.
  oidc.warm().catch((e) =>
    logger.warn("cannot read the OpenID provider yet", {
      issuer: oidc.issuer,
      error: (e as Error).message,
    })
  );
}
