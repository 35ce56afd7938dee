// deno-lint-ignore-file no-explicit-any -- vault entries and JSON answers are probed field by field
/**
 * Login federation (issue 12 §3, `--oidc-client-id`): a person signs in at
 * Warden's /login through an external OpenID provider — the real
 * `oidc-provider` on loopback, with its own password form — and Warden's
 * consent and code issuance continue as for a local user. The v2 SDK client
 * runs Warden's OAuth flow; its token names `<issuer>#<sub>` with the roles
 * the ID token's groups map to; the vault names that principal. Then every
 * way the callback can be wrong — state, browser, replay, `iss`, a code of
 * another client, a tampered or wrong-nonce ID token, a provider that declines
 * or does not answer — is refused with nothing issued.
 */
import assert from "node:assert/strict";
import { auth, Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { authorizeUrl, memoryOAuthProvider, redeemCode, REDIRECT } from "../_helpers/oauth_flow.ts";
import { decodeJwt, SignJWT } from "jose";
import { envelopeOf } from "../_helpers/client.ts";
import { type OidcProvider, startOidcProvider } from "../_helpers/oidc_provider.ts";
import { sealedEntries, startServer, type TestServer } from "../_helpers/server.ts";
import { freePort } from "../_helpers/upstreams.ts";
import { browse, pkce } from "./_browser.ts";
import { FederatedBrowser } from "./_federated_browser.ts";

const POLICY = {
  roles: { ops: { tools: ["calculate"] } },
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
};
const PEOPLE = {
  alice: { password: "alice-at-the-provider", groups: ["idp-ops", "unmapped"] },
  bob: { password: "bob-at-the-provider", groups: [] },
};
const ALICE = { login: "alice", password: PEOPLE.alice.password };
const WARDEN_AT_IDP = { client_id: "warden", client_secret: "warden-secret-at-idp-0123456789" };
const LOCAL = { username: "carol", password: "carol local password" };
const verifyPassword = (name: string, pw: string) =>
  Promise.resolve(name === LOCAL.username && pw === LOCAL.password);

function federationArgs(issuer: string, extra: string[] = []): string[] {
  return [
    "--auth",
    "oauth",
    "--oidc-issuer",
    issuer,
    "--oidc-allow-hosts",
    new URL(issuer).host,
    "--oidc-roles-claim",
    "groups",
    "--oidc-role-map",
    "idp-ops=ops",
    "--oidc-client-id",
    WARDEN_AT_IDP.client_id,
    "--oidc-scopes",
    "openid,groups",
    ...extra,
  ];
}

/** Warden with login federation to `idp`, registered there with its exact callback URL. */
async function wardenFor(
  idp: OidcProvider,
  oidcFetch?: typeof fetch,
  logs?: string[],
): Promise<TestServer> {
  const s = await startServer({
    args: federationArgs(idp.issuer),
    // The secret from the environment, as the README advises.
    env: { WARDEN_OIDC_CLIENT_SECRET: WARDEN_AT_IDP.client_secret },
    policy: POLICY,
    verifyPassword,
    ...(oidcFetch ? { oidcFetch } : {}),
    ...(logs ? { logLines: (line: string) => logs.push(line) } : {}),
  });
  idp.addClient({ ...WARDEN_AT_IDP, redirect_uris: [`${s.url}/login/oidc/callback`] });
  return s;
}

async function register(s: TestServer, name = "Test Client"): Promise<string> {
  const res = await fetch(`${s.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
    }),
  });
  assert.equal(res.status, 201);
  return (await res.json()).client_id;
}

async function clientAuthorizeUrl(s: TestServer, clientId: string) {
  const { url, verifier } = await authorizeUrl(s, clientId, { state: "client-state" });
  return { url: url.toString(), verifier };
}

async function redeem(s: TestServer, clientId: string, code: string, verifier: string) {
  const res = await redeemCode(s, { code, verifier, clientId });
  return { status: res.status, body: await res.json() };
}

/** Codes, refresh tokens and signed-in requests in Warden's KV: what "nothing issued" counts. */
async function issued(s: TestServer) {
  let codes = 0;
  let refresh = 0;
  let signedIn = 0;
  for await (const e of s.kv.list({ prefix: ["oauth"] })) {
    if (e.key[1] === "code") codes++;
    if (e.key[1] === "refresh") refresh++;
    if (e.key[1] === "pending" && (e.value as { user?: string }).user !== undefined) signedIn++;
  }
  return { codes, refresh, signedIn };
}

Deno.test("login federation: the SDK client's flow, signed in at a real OpenID provider, calls a tool as <issuer>#alice", async () => {
  await using idp = await startOidcProvider({ people: PEOPLE });
  const logs: string[] = [];
  await using s = await wardenFor(idp, undefined, logs);
  const callbackPrefix = `${s.url}/login/oidc/callback`;
  const { provider, state } = memoryOAuthProvider("SDK Federated Client");

  // The SDK discovers Warden from the 401, registers, and asks the person to authorize.
  const first = new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
    authProvider: provider,
  });
  await assert.rejects(() => new Client({ name: "fed", version: "1.0.0" }).connect(first));
  assert(state.authUrl, "the SDK asked the person to authorize");

  const b = new FederatedBrowser();
  const atProvider = await b.startAtWarden(state.authUrl.toString());
  assert(b.lastHtml.includes(`Sign in with ${new URL(idp.issuer).host}`));
  assert(b.lastHtml.includes(`name="password"`), "the local password form is still there");
  // What Warden asked the provider for: its exact callback, PKCE S256, state and nonce.
  assert.equal(atProvider.origin, idp.issuer);
  assert.equal(atProvider.searchParams.get("redirect_uri"), callbackPrefix);
  assert.equal(atProvider.searchParams.get("code_challenge_method"), "S256");
  assert.equal(atProvider.searchParams.get("scope"), "openid groups");
  assert.match(atProvider.searchParams.get("state") ?? "", /^[A-Za-z0-9_-]{32,}$/);
  assert.match(atProvider.searchParams.get("nonce") ?? "", /^[A-Za-z0-9_-]{32,}$/);
  assert.equal(atProvider.searchParams.get("client_secret"), null);

  const callback = await b.signInAtProvider(atProvider, ALICE, "allow", callbackPrefix);
  assert.equal(callback.searchParams.get("iss"), idp.issuer, "the provider sent RFC 9207 iss");
  const answer = await b.callback(callback);
  const { location, html } = await b.consent(answer, s.url);
  assert.match(html, new RegExp(`Signed in as <strong>${idp.issuer}#alice</strong>`));
  assert.equal(location.searchParams.get("iss"), s.url);
  assert.equal(location.searchParams.get("state"), state.authUrl.searchParams.get("state"));

  // The SDK redeems Warden's code; its token names the external subject with the mapped role.
  await first.finishAuth(location.searchParams);
  const claims = decodeJwt(state.tokens!.access_token);
  assert.equal(claims.sub, `${idp.issuer}#alice`);
  assert.equal(claims.idp, idp.issuer);
  assert.deepEqual(claims.roles, ["ops"], "idp-ops maps to ops; unmapped grants nothing");

  const client = new Client({ name: "fed", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), { authProvider: provider }),
  );
  try {
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.deepEqual(names, ["calculate"], "role ops grants calculate only");
    const r = await client.callTool({ name: "calculate", arguments: { expression: "6*7" } });
    assert.equal(envelopeOf(r as any).policy_verdict, "SEAL", JSON.stringify(r));
  } finally {
    await client.close();
  }
  const calls = (await sealedEntries(s)).filter((e) => e.tool === "calculate");
  assert.equal(calls.length, 1);
  assert.deepEqual(
    [calls[0].principal, calls[0].principal_kind, calls[0].client_id],
    [`${idp.issuer}#alice`, "oauth", state.client!.client_id],
    "the vault names the external principal and the OAuth client",
  );

  // A refresh keeps the identity and roles of the sign-in.
  const before = state.tokens!.access_token;
  assert.equal(await auth(provider, { serverUrl: `${s.url}/mcp` }), "AUTHORIZED");
  assert.notEqual(state.tokens!.access_token, before);
  const refreshed = decodeJwt(state.tokens!.access_token);
  assert.deepEqual([refreshed.sub, refreshed.roles], [`${idp.issuer}#alice`, ["ops"]]);

  // The callback again (a copied URL, the back button): refused, nothing more issued.
  const was = await issued(s);
  const replay = await b.callback(callback);
  assert.equal(replay.status, 400);
  assert.match(await replay.text(), /this sign-in was already completed/);
  assert.deepEqual(await issued(s), was);

  // The log says who signed in and why the replay was refused; the client secret is nowhere in
  // the log or in Warden's KV.
  const logged = (msg: string) => logs.map((l) => JSON.parse(l)).filter((l) => l.msg === msg);
  assert.deepEqual(logged("federated sign-in").map((l) => l.principal), [`${idp.issuer}#alice`]);
  assert.match(logged("federated sign-in refused")[0]?.reason ?? "", /already completed/);
  assert(!logs.join("\n").includes(WARDEN_AT_IDP.client_secret));
  for await (const e of s.kv.list({ prefix: [] })) {
    const text = JSON.stringify(e.value, (_k, v) => typeof v === "bigint" ? String(v) : v);
    assert(!text.includes(WARDEN_AT_IDP.client_secret), String(e.key));
  }
});

Deno.test("login federation: a wrong state, another browser, a wrong iss, a provider's refusal — each refused, nothing issued", async () => {
  await using idp = await startOidcProvider({ people: PEOPLE });
  await using s = await wardenFor(idp);
  const callbackPrefix = `${s.url}/login/oidc/callback`;
  const clientId = await register(s);

  // Local users still sign in with their password beside the provider's button.
  const local = await clientAuthorizeUrl(s, clientId);
  const { location: localBack } = await browse(local.url, LOCAL);
  const localToken = await redeem(s, clientId, localBack.searchParams.get("code")!, local.verifier);
  assert.equal(localToken.status, 200);
  assert.equal(decodeJwt(localToken.body.access_token).sub, "carol");
  assert.equal(decodeJwt(localToken.body.access_token).idp, undefined);

  const b = new FederatedBrowser();
  const { url, verifier } = await clientAuthorizeUrl(s, clientId);
  const callback = await b.signInAtProvider(
    await b.startAtWarden(url),
    ALICE,
    "allow",
    callbackPrefix,
  );
  const none = await issued(s);

  const tampered = (name: string, value: string) => {
    const u = new URL(callback);
    u.searchParams.set(name, value);
    return u;
  };
  let r = await b.callback(tampered("state", "x".repeat(43)));
  assert.equal(r.status, 400);
  assert.match(await r.text(), /this sign-in is unknown or has expired \(state\)/);
  assert.deepEqual(await issued(s), none);

  // The right URL in another browser (a link sent to a victim): not its sign-in — even when that
  // browser holds the pending request's cookie (its value is the request id /login's URL shows).
  const other = new FederatedBrowser();
  r = await other.callback(callback);
  assert.equal(r.status, 403);
  assert.match(await r.text(), /started in another browser/);
  const wardenUrl = new URL(s.url);
  other.jar.set(wardenUrl, "warden_oauth", b.jar.get(wardenUrl, "warden_oauth")!);
  r = await other.callback(callback);
  assert.equal(r.status, 403);
  assert.match(await r.text(), /started in another browser/);
  assert.deepEqual(await issued(s), none);

  // The real browser still finishes (the refusals above did not use it up).
  const { location } = await b.consent(await b.callback(callback), s.url);
  const code = location.searchParams.get("code")!;

  // Warden's code, minted for this client, is refused to another client.
  const intruder = await register(s, "Intruder");
  const stolen = await redeem(s, intruder, code, verifier);
  assert.equal(stolen.status, 400);
  assert.equal(stolen.body.error, "invalid_grant");
  assert.equal(
    (await issued(s)).refresh,
    none.refresh,
    "nothing issued to the other client",
  );

  // RFC 9207: a response naming another issuer (a mix-up) is refused.
  const b2 = new FederatedBrowser();
  const cb2 = await b2.signInAtProvider(
    await b2.startAtWarden((await clientAuthorizeUrl(s, clientId)).url),
    ALICE,
    "allow",
    callbackPrefix,
  );
  const before2 = await issued(s);
  const mixUp = new URL(cb2);
  mixUp.searchParams.set("iss", "https://attacker.example");
  r = await b2.callback(mixUp);
  assert.equal(r.status, 502);
  assert.match(await r.text(), /unexpected &quot;iss&quot;/);
  assert.deepEqual(await issued(s), before2);
  assert.equal((await b2.get(`${s.url}/consent?request=${b2.request}`)).status, 400);

  // The person declines at the provider: its error is shown, with a way back; nothing issued.
  const b3 = new FederatedBrowser();
  const cb3 = await b3.signInAtProvider(
    await b3.startAtWarden((await clientAuthorizeUrl(s, clientId)).url),
    ALICE,
    "deny",
    callbackPrefix,
  );
  assert.equal(cb3.searchParams.get("error"), "access_denied");
  r = await b3.callback(cb3);
  assert.equal(r.status, 400);
  const page = await r.text();
  assert.match(page, /the provider answered access_denied: the person declined at the provider/);
  assert.match(page, new RegExp(`href="/login\\?request=${b3.request}"`));
  assert.deepEqual(await issued(s), before2);
});

Deno.test("login federation: a code of another client, a tampered ID token, a wrong nonce — refused by the RP checks", async () => {
  await using idp = await startOidcProvider({ people: PEOPLE });
  // A man in the middle of Warden's token requests (the test's, on the real provider's answers).
  let rewrite: ((idToken: string) => Promise<string>) | undefined;
  const oidcFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!rewrite || url.pathname !== "/token") return res;
    const body = await res.json();
    if (typeof body.id_token === "string") body.id_token = await rewrite(body.id_token);
    return Response.json(body, { status: res.status });
  };
  await using s = await wardenFor(idp, oidcFetch);
  const callbackPrefix = `${s.url}/login/oidc/callback`;
  const other = { client_id: "other-rp", client_secret: "other-rp-secret-0123456789" };
  idp.addClient({ ...other, redirect_uris: ["http://127.0.0.1:9/other"] });
  const clientId = await register(s);
  const none = await issued(s);

  const attempt = async () => {
    const b = new FederatedBrowser();
    const atProvider = await b.startAtWarden((await clientAuthorizeUrl(s, clientId)).url);
    return { b, atProvider };
  };

  // A code the provider issued to another of its clients, pasted into Warden's callback.
  const meta = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  const foreign = new URL(meta.authorization_endpoint);
  const { challenge } = await pkce();
  for (
    const [k, v] of Object.entries({
      response_type: "code",
      client_id: other.client_id,
      redirect_uri: "http://127.0.0.1:9/other",
      scope: "openid",
      state: "s",
      code_challenge: challenge,
      code_challenge_method: "S256",
    })
  ) foreign.searchParams.set(k, v);
  const thief = new FederatedBrowser();
  const foreignBack = await thief.signInAtProvider(
    foreign,
    ALICE,
    "allow",
    "http://127.0.0.1:9/other",
  );
  const foreignCode = foreignBack.searchParams.get("code")!;
  assert(foreignCode);
  {
    const { b, atProvider } = await attempt();
    const cb = new URL(callbackPrefix);
    cb.searchParams.set("code", foreignCode);
    cb.searchParams.set("state", atProvider.searchParams.get("state")!);
    cb.searchParams.set("iss", idp.issuer);
    const r = await b.callback(cb);
    assert.equal(r.status, 400);
    assert.match(await r.text(), /the provider refused the code: invalid_grant/);
    assert.deepEqual(await issued(s), none);
  }

  // The ID token altered in transit (another sub, same signature).
  rewrite = (jwt) => {
    const [h, p, sig] = jwt.split(".");
    const claims = JSON.parse(new TextDecoder().decode(decodeB64u(p)));
    const forged = b64u(new TextEncoder().encode(JSON.stringify({ ...claims, sub: "mallory" })));
    return Promise.resolve(`${h}.${forged}.${sig}`);
  };
  {
    const { b, atProvider } = await attempt();
    const r = await b.callback(
      await b.signInAtProvider(atProvider, ALICE, "allow", callbackPrefix),
    );
    assert.equal(r.status, 502);
    assert.match(await r.text(), /JWT signature verification failed/);
    assert.deepEqual(await issued(s), none);
  }

  // Properly signed by the provider's key, but for another sign-in (its nonce is not ours).
  rewrite = async (jwt) => {
    const claims = decodeJwt(jwt);
    return await new SignJWT({ ...claims, nonce: "the-nonce-of-another-sign-in" })
      .setProtectedHeader({ alg: "ES256", kid: idp.kid })
      .sign(idp.keys[0].privateKey);
  };
  {
    const { b, atProvider } = await attempt();
    const r = await b.callback(
      await b.signInAtProvider(atProvider, ALICE, "allow", callbackPrefix),
    );
    assert.equal(r.status, 502);
    assert.match(await r.text(), /unexpected ID Token &quot;nonce&quot; claim value/);
    assert.deepEqual(await issued(s), none);
  }

  // Untouched again: the same path signs alice in (the checks above were not always-fail).
  rewrite = undefined;
  {
    const { b, atProvider } = await attempt();
    const r = await b.callback(
      await b.signInAtProvider(atProvider, ALICE, "allow", callbackPrefix),
    );
    assert.equal(r.status, 303);
    await r.body?.cancel();
    assert.equal((await issued(s)).signedIn, none.signedIn + 1);
  }
});

Deno.test("login federation: a provider that hangs, floods, redirects or is down is an error page; nothing issued", async () => {
  const released = new Set<() => void>();
  const ac = new AbortController();
  let issuer = "";
  let tokenRequests = 0;
  let mode: "hang" | "flood" | "redirect" = "hang";
  const slow = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req): Promise<Response> => {
      const path = new URL(req.url).pathname;
      if (path === "/.well-known/openid-configuration") {
        return Response.json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          authorization_response_iss_parameter_supported: true,
        });
      }
      if (path === "/token" && mode === "flood") {
        await req.body?.cancel();
        return Response.json({ access_token: "x".repeat(70_000), token_type: "bearer" });
      }
      if (path === "/token" && mode === "redirect") {
        await req.body?.cancel();
        return new Response(null, { status: 307, headers: { location: "http://10.0.0.1/token" } });
      }
      if (path === "/token") {
        tokenRequests++;
        await req.body?.cancel();
        await new Promise<void>((r) => {
          const id = setTimeout(r, 5000);
          released.add(() => {
            clearTimeout(id);
            r();
          });
        });
      }
      return Response.json({ error: "server_error" }, { status: 500 });
    },
  );
  issuer = `http://127.0.0.1:${slow.addr.port}`;
  try {
    await using s = await startServer({
      args: federationArgs(issuer, ["--oidc-fetch-timeout", "500"]),
      env: { WARDEN_OIDC_CLIENT_SECRET: WARDEN_AT_IDP.client_secret },
      policy: POLICY,
      verifyPassword,
    });
    const clientId = await register(s);
    const none = await issued(s);
    // The provider "sends the person back" with a code; Warden redeems it at its token endpoint.
    const comeBack = async () => {
      const b = new FederatedBrowser();
      const atProvider = await b.startAtWarden((await clientAuthorizeUrl(s, clientId)).url);
      assert.equal(atProvider.origin + atProvider.pathname, `${issuer}/auth`);
      const cb = new URL(`${s.url}/login/oidc/callback`);
      cb.searchParams.set("code", "some-code");
      cb.searchParams.set("state", atProvider.searchParams.get("state")!);
      cb.searchParams.set("iss", issuer);
      const r = await b.callback(cb);
      return { status: r.status, text: await r.text() };
    };
    const started = Date.now();
    let r = await comeBack();
    assert.equal(r.status, 502);
    assert.match(r.text, /the provider did not answer in time \(.*\/token, 500 ms\)/);
    assert(Date.now() - started < 3000, "the token request gave up at its time limit");
    assert.equal(tokenRequests, 1);
    assert.deepEqual(await issued(s), none);

    mode = "flood";
    r = await comeBack();
    assert.equal(r.status, 502);
    assert.match(r.text, /\/token answered more than 65536 bytes/);
    assert.deepEqual(await issued(s), none);

    mode = "redirect";
    r = await comeBack();
    assert.equal(r.status, 502);
    assert.match(r.text, /\/token redirected; redirects are not followed/);
    assert.deepEqual(await issued(s), none);
  } finally {
    for (const release of released) release();
    ac.abort();
    await slow.finished;
  }

  // Nobody listening at the issuer: the button's press answers the login page with the reason.
  const gone = `http://127.0.0.1:${freePort()}`;
  await using s = await startServer({
    args: federationArgs(gone),
    policy: POLICY,
    verifyPassword,
  });
  const clientId = await register(s);
  const b = new FederatedBrowser();
  const { url } = await clientAuthorizeUrl(s, clientId);
  await assert.rejects(
    () => b.startAtWarden(url),
    /\/login\/oidc answered 502: .*Signing in with 127\.0\.0\.1:\d+ failed: the provider could not be reached/s,
  );
  assert.deepEqual((await issued(s)).signedIn, 0);
});

Deno.test("login federation: configuration needs --auth oauth and an issuer; the secret needs a client id", async () => {
  const { loadConfig, ConfigError } = await import("../../src/config.ts");
  const load = (args: string[], env: Record<string, string> = {}) => () =>
    loadConfig(["serve", ...args], (k) => env[k]);
  const idp = ["--oidc-issuer", "https://idp.example"];
  assert.throws(load([...idp, "--oidc-client-id", "w"]), /needs --auth oauth/);
  assert.throws(load(["--auth", "oauth", "--oidc-client-id", "w"]), /needs --oidc-issuer/);
  assert.throws(
    load(["--auth", "oauth", ...idp], { WARDEN_OIDC_CLIENT_SECRET: "s" }),
    /needs --oidc-client-id/,
  );
  assert.throws(
    load(["--auth", "oauth", ...idp, "--oidc-client-id", "w", "--oidc-scopes", 'a"b']),
    ConfigError,
  );
  const ok = loadConfig(
    ["serve", "--auth", "oauth", ...idp, "--oidc-client-id", "w", "--oidc-scopes", "groups"],
    (k) => ({ WARDEN_OIDC_CLIENT_SECRET: "from-env" } as Record<string, string>)[k],
  );
  assert.deepEqual(ok.oidc?.login, {
    clientId: "w",
    clientSecret: "from-env",
    scopes: ["openid", "groups"],
  });
});

function b64u(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

function decodeB64u(s: string): Uint8Array {
  const t = s.replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(t + "=".repeat((4 - t.length % 4) % 4)), (c) => c.charCodeAt(0));
}

Deno.test("login federation: a sign-in begun at one instance finishes at another sharing the KV", async () => {
  await using idp = await startOidcProvider({ people: PEOPLE });
  const kv = await Deno.openKv(":memory:");
  // Both instances answer for one public URL (the first one's address), as behind a load balancer.
  const port = freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const args = federationArgs(idp.issuer, ["--issuer", issuer]);
  const env = { WARDEN_OIDC_CLIENT_SECRET: WARDEN_AT_IDP.client_secret };
  try {
    await using a = await startServer({
      args: [...args, "--port", String(port)],
      env,
      kv,
      policy: POLICY,
    });
    await using b = await startServer({ args, env, kv, policy: POLICY });
    idp.addClient({ ...WARDEN_AT_IDP, redirect_uris: [`${issuer}/login/oidc/callback`] });
    const clientId = await register(a);
    const { url, verifier } = await clientAuthorizeUrl(a, clientId);
    const browser = new FederatedBrowser();
    const callback = await browser.signInAtProvider(
      await browser.startAtWarden(url),
      ALICE,
      "allow",
      `${issuer}/login/oidc/callback`,
    );
    // The balancer sends the callback to the other instance: same cookies, other process.
    const atB = new URL(callback);
    atB.port = String(b.port);
    for (const name of ["warden_oauth", "warden_oidc"]) {
      browser.jar.set(atB, name, browser.jar.get(callback, name)!);
    }
    const answer = await browser.callback(atB);
    assert.equal(answer.status, 303, await answer.clone().text());
    const { location } = await browser.consent(answer, issuer);
    const t = await redeem(b, clientId, location.searchParams.get("code")!, verifier);
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(decodeJwt(t.body.access_token).sub, `${idp.issuer}#alice`);
    const tools = await fetch(`${a.url}/tools`, {
      headers: { authorization: `Bearer ${t.body.access_token}` },
    });
    assert.equal(tools.status, 200);
    assert.deepEqual((await tools.json()).tools.map((x: any) => x.name), ["calculate"]);
    // And the replay at the first instance is refused: the attempt was taken once, in the KV.
    const replay = await browser.callback(callback);
    assert.equal(replay.status, 400);
    await replay.body?.cancel();
  } finally {
    kv.close();
  }
});
