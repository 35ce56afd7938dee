/**
 * A real OpenID provider on loopback for `--oidc-issuer` tests: the npm
 * `oidc-provider` package (OpenID-certified, panva) serving discovery, JWKS
 * and a token endpoint over node:http, which Deno runs. A confidential client
 * gets JWT access tokens by client credentials, for the `resource` it asks
 * (RFC 8707), with a `groups` claim. `rotate()` swaps in a new signing key at
 * the same issuer, as a provider's key rotation does.
 *
 * With `people`, it is also a provider people sign in at (authorization code
 * with PKCE, ID tokens carrying `groups`), with its own password form at
 * `/interaction/:uid` (oidc-provider leaves the login UI to the host) and a
 * "Deny" button that answers `access_denied`; `addClient()` registers a
 * relying party once its redirect URI is known.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { CryptoKey, JWK } from "jose";

export const OIDC_CLIENT = { id: "svc-client", secret: "svc-client-secret-0123456789" };

export interface SigningKey {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function newKey(kid: string): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" } };
}

/** A person who can sign in at the provider. */
export interface ProviderPerson {
  readonly password: string;
  readonly groups: readonly string[];
}

/** A relying party registered at the provider. */
export interface ProviderClient {
  readonly client_id: string;
  /** Absent: a public client. */
  readonly client_secret?: string;
  readonly redirect_uris: readonly string[];
}

export interface OidcProvider extends AsyncDisposable {
  readonly issuer: string;
  /** Client credentials at the provider's token endpoint: a JWT access token for `resource`. */
  token(resource: string, options?: { groups?: string[]; scope?: string }): Promise<string>;
  /** Signs claims with the provider's current key (for a token it would issue, such as expired). */
  sign(claims: Record<string, unknown>, expSecondsFromNow: number): Promise<string>;
  /** A new signing key; the JWKS lists it first and the old one after. */
  rotate(): Promise<void>;
  readonly kid: string;
  /** The keys it signs with, newest first. */
  readonly keys: readonly SigningKey[];
  /** Registers a relying party for the code flow (the provider is rebuilt; keys kept). */
  addClient(client: ProviderClient): void;
  close(): Promise<void>;
}

/**
 * Starts a provider on a free loopback port. `keys`: sign with another
 * provider's keys (its tokens then verify against that one's JWKS, with this
 * issuer: what a wrong-issuer test needs).
 */
export async function startOidcProvider(
  options: { keys?: readonly SigningKey[]; people?: Readonly<Record<string, ProviderPerson>> } = {},
): Promise<OidcProvider> {
  let keys: SigningKey[] = options.keys ? [...options.keys] : [await newKey("k1")];
  const people = options.people ?? {};
  const loginClients: ProviderClient[] = [];
  const groups = new Map<string, string[]>();
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  function build() {
    // deno-lint-ignore no-explicit-any -- oidc-provider ships no types
    const provider: any = new (Provider as any)(issuer, {
      jwks: { keys: keys.map((k) => k.jwk) },
      scopes: ["openid", "mcp", "groups"],
      clients: [
        {
          client_id: OIDC_CLIENT.id,
          client_secret: OIDC_CLIENT.secret,
          grant_types: ["client_credentials"],
          redirect_uris: [],
          response_types: [],
          scope: "openid mcp",
          id_token_signed_response_alg: "ES256",
        },
        ...loginClients.map((c) => ({
          client_id: c.client_id,
          ...(c.client_secret !== undefined
            ? { client_secret: c.client_secret }
            : { token_endpoint_auth_method: "none" }),
          grant_types: ["authorization_code"],
          response_types: ["code"],
          redirect_uris: [...c.redirect_uris],
          scope: "openid groups",
          id_token_signed_response_alg: "ES256",
        })),
      ],
      // The person's groups go in the ID token when the groups scope is granted.
      claims: { openid: ["sub"], groups: ["groups"] },
      conformIdTokenClaims: false,
      findAccount: (_ctx: unknown, id: string) =>
        Object.hasOwn(people, id)
          ? { accountId: id, claims: () => ({ sub: id, groups: [...people[id].groups] }) }
          : undefined,
      interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
      cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
      enabledJWA: { idTokenSigningAlgValues: ["ES256"], requestObjectSigningAlgValues: ["ES256"] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => undefined,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => ({
            scope: "mcp",
            audience: resource,
            accessTokenFormat: "jwt",
            accessTokenTTL: 120,
            jwt: { sign: { alg: "ES256" } },
          }),
        },
      },
      ttl: { ClientCredentials: 120 },
      extraTokenClaims: (ctx: { oidc?: { params?: { resource?: string } } }) => ({
        groups: groups.get(String(ctx.oidc?.params?.resource)) ?? [],
      }),
    });
    return provider;
  }
  // deno-lint-ignore no-explicit-any -- oidc-provider ships no types
  let current: any;
  function mount() {
    current = build();
    const callback = current.callback();
    server.removeAllListeners("request");
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url?.startsWith("/interaction/")) {
        interaction(current, req, res).catch((e) => {
          res.statusCode = 500;
          res.end(String(e));
        });
      } else callback(req, res);
    });
  }
  /** The provider's own login page: a password form; a right password grants what was asked. */
  // deno-lint-ignore no-explicit-any -- oidc-provider ships no types
  async function interaction(provider: any, req: http.IncomingMessage, res: http.ServerResponse) {
    const details = await provider.interactionDetails(req, res);
    if (req.method === "GET") {
      res.setHeader("content-type", "text/html");
      res.end(
        `<form method="post" action="/interaction/${details.uid}">` +
          `<input name="login"><input name="password" type="password">` +
          `<button name="decision" value="allow">Sign in</button>` +
          `<button name="decision" value="deny">Deny</button></form>`,
      );
      return;
    }
    let body = "";
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    if (form.get("decision") === "deny") {
      await provider.interactionFinished(req, res, {
        error: "access_denied",
        error_description: "the person declined at the provider",
      }, { mergeWithLastSubmission: false });
      return;
    }
    const login = form.get("login") ?? "";
    if (!Object.hasOwn(people, login) || people[login].password !== form.get("password")) {
      res.statusCode = 401;
      res.end("wrong login or password");
      return;
    }
    const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope));
    grant.addOIDCClaims(["groups"]);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, {
      login: { accountId: login },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }
  mount();
  const p: OidcProvider = {
    issuer,
    get keys() {
      return keys;
    },
    get kid() {
      return keys[0].jwk.kid!;
    },
    async token(resource: string, opts: { groups?: string[]; scope?: string } = {}) {
      groups.set(resource, opts.groups ?? []);
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${btoa(`${OIDC_CLIENT.id}:${OIDC_CLIENT.secret}`)}`,
        },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          scope: opts.scope ?? "mcp",
          resource,
        }),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(`provider token: ${JSON.stringify(body)}`);
      return body.access_token as string;
    },
    async sign(claims: Record<string, unknown>, expSecondsFromNow: number) {
      const now = Math.floor(Date.now() / 1000);
      return await new SignJWT({ iat: now, exp: now + expSecondsFromNow, ...claims })
        .setProtectedHeader({ alg: "ES256", kid: keys[0].jwk.kid, typ: "at+jwt" })
        .sign(keys[0].privateKey);
    },
    async rotate() {
      keys = [await newKey(`k${keys.length + 1}`), ...keys];
      mount();
    },
    addClient(client: ProviderClient) {
      loginClients.push(client);
      mount();
    },
    async close() {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
    async [Symbol.asyncDispose]() {
      await p.close();
    },
  };
  return p;
}
