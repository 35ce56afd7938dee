/**
 * `--auth oauth` over real HTTP: metadata, dynamic registration, the code
 * flow with PKCE through the login and consent pages, refresh rotation and
 * reuse detection, revocation, audience binding, and hostile input to every
 * endpoint answered with the right OAuth error and nothing issued.
 */
import assert from "node:assert/strict";

const assertEquals = (a: unknown, b: unknown, m?: string) => assert.deepStrictEqual(a, b, m);
const assertMatch = (s: string, r: RegExp) => assert.match(s, r);
import { startServer, type TestServer } from "../_helpers/server.ts";
import { browse, pkce } from "./_browser.ts";
import { freePort } from "../_helpers/upstreams.ts";

const USER = { username: "alice", password: "correct horse battery staple" };
const verifyPassword = (name: string, pw: string) =>
  Promise.resolve(name === USER.username && pw === USER.password);
const REDIRECT = "http://127.0.0.1:9/callback";

async function withServer(fn: (s: TestServer) => Promise<void>, args: string[] = []) {
  await using s = await startServer({ args: ["--auth", "oauth", ...args], verifyPassword });
  await fn(s);
}

async function json(res: Response) {
  return { status: res.status, body: await res.json() };
}

async function register(s: TestServer, meta: Record<string, unknown> = {}) {
  return await json(
    await fetch(`${s.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "Test Client",
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "none",
        ...meta,
      }),
    }),
  );
}

function authorizeUrl(s: TestServer, p: Record<string, string>) {
  const u = new URL(`${s.url}/authorize`);
  for (const [k, v] of Object.entries(p)) u.searchParams.append(k, v);
  return u.toString();
}

async function token(s: TestServer, form: Record<string, string> | URLSearchParams) {
  return await json(
    await fetch(`${s.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form instanceof URLSearchParams ? form : new URLSearchParams(form),
    }),
  );
}

async function codeFor(s: TestServer, clientId: string, extra: Record<string, string> = {}) {
  const { verifier, challenge } = await pkce();
  const { location } = await browse(
    authorizeUrl(s, {
      response_type: "code",
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "st-1",
      resource: `${s.url}/mcp`,
      scope: "mcp",
      ...extra,
    }),
    USER,
  );
  return { location, verifier };
}

Deno.test("oauth: metadata, 401 discovery, DCR, code flow, refresh rotation and reuse", async () => {
  await withServer(async (s) => {
    // 401 names the protected-resource metadata; that names the authorization server.
    const unauth = await fetch(`${s.url}/tools`);
    await unauth.body?.cancel();
    assertEquals(unauth.status, 401);
    const www = unauth.headers.get("www-authenticate") ?? "";
    const prUrl = /resource_metadata="([^"]+)"/.exec(www)?.[1];
    assertEquals(prUrl, `${s.url}/.well-known/oauth-protected-resource/mcp`);
    const pr = await json(await fetch(prUrl!));
    assertEquals(pr.body.resource, `${s.url}/mcp`);
    assertEquals(pr.body.authorization_servers, [s.url]);
    const as = await json(await fetch(`${s.url}/.well-known/oauth-authorization-server`));
    assertEquals(as.body.issuer, s.url);
    assertEquals(as.body.code_challenge_methods_supported, ["S256"]);
    assertEquals(as.body.authorization_response_iss_parameter_supported, true);
    assertEquals(as.body.client_id_metadata_document_supported, true);
    const oidc = await json(await fetch(`${s.url}/.well-known/openid-configuration`));
    assertEquals(oidc.body.token_endpoint, as.body.token_endpoint);

    const reg = await register(s);
    assertEquals(reg.status, 201);
    const clientId = reg.body.client_id as string;
    assertEquals(reg.body.client_secret, undefined);

    const { location, verifier } = await codeFor(s, clientId);
    assertEquals(location.origin + location.pathname, REDIRECT);
    assertEquals(location.searchParams.get("state"), "st-1");
    assertEquals(location.searchParams.get("iss"), s.url);
    const code = location.searchParams.get("code")!;
    assert(code);

    const t = await token(s, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: clientId,
      resource: `${s.url}/mcp`,
    });
    assertEquals(t.status, 200, JSON.stringify(t.body));
    assertEquals(t.body.token_type, "Bearer");
    assert(t.body.expires_in <= 300);
    const tools = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${t.body.access_token}` },
    });
    assertEquals(tools.status, 200);
    assert(Array.isArray((await tools.json()).tools));

    // Code replay: refused, and the grant it produced is revoked.
    const replay = await token(s, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: clientId,
    });
    assertEquals(replay.status, 400);
    assertEquals(replay.body.error, "invalid_grant");
    const afterReplay = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${t.body.access_token}` },
    });
    await afterReplay.body?.cancel();
    assertEquals(afterReplay.status, 401);

    // A fresh grant: refresh rotates; reusing the old refresh token revokes the family.
    const second = await codeFor(s, clientId);
    const t2 = await token(s, {
      grant_type: "authorization_code",
      code: second.location.searchParams.get("code")!,
      code_verifier: second.verifier,
      redirect_uri: REDIRECT,
      client_id: clientId,
    });
    assertEquals(t2.status, 200);
    const r1 = await token(s, {
      grant_type: "refresh_token",
      refresh_token: t2.body.refresh_token,
      client_id: clientId,
    });
    assertEquals(r1.status, 200);
    assert(r1.body.refresh_token !== t2.body.refresh_token);
    const ok = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${r1.body.access_token}` },
    });
    await ok.body?.cancel();
    assertEquals(ok.status, 200);
    const reuse = await token(s, {
      grant_type: "refresh_token",
      refresh_token: t2.body.refresh_token,
      client_id: clientId,
    });
    assertEquals(reuse.body.error, "invalid_grant");
    const dead = await token(s, {
      grant_type: "refresh_token",
      refresh_token: r1.body.refresh_token,
      client_id: clientId,
    });
    assertEquals(dead.body.error, "invalid_grant");
    const revokedAccess = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${r1.body.access_token}` },
    });
    await revokedAccess.body?.cancel();
    assertEquals(revokedAccess.status, 401);

    // RFC 7009 revocation of a live grant.
    const third = await codeFor(s, clientId);
    const t3 = await token(s, {
      grant_type: "authorization_code",
      code: third.location.searchParams.get("code")!,
      code_verifier: third.verifier,
      client_id: clientId,
    });
    const rev = await fetch(`${s.url}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: t3.body.refresh_token, client_id: clientId }),
    });
    await rev.body?.cancel();
    assertEquals(rev.status, 200);
    const afterRevoke = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${t3.body.access_token}` },
    });
    await afterRevoke.body?.cancel();
    assertEquals(afterRevoke.status, 401);
  });
});

Deno.test("oauth: a token minted for another resource is refused", async () => {
  // Two Warden servers: a token from one is not accepted by the other, and
  // neither issues a token for a resource it is not.
  await withServer(async (a) => {
    await withServer(async (b) => {
      const reg = await register(a);
      const { location, verifier } = await codeFor(a, reg.body.client_id);
      const t = await token(a, {
        grant_type: "authorization_code",
        code: location.searchParams.get("code")!,
        code_verifier: verifier,
        client_id: reg.body.client_id,
      });
      assertEquals(t.status, 200);
      const res = await fetch(`${b.url}/tools`, {
        headers: { authorization: `Bearer ${t.body.access_token}` },
      });
      await res.body?.cancel();
      assertEquals(res.status, 401);
      assertMatch(res.headers.get("www-authenticate") ?? "", /error="invalid_token"/);

      const other = await codeFor(a, reg.body.client_id, { resource: `${b.url}/mcp` });
      assertEquals(other.location.searchParams.get("error"), "invalid_target");
      assertEquals(other.location.searchParams.get("code"), null);
    });
  });
});

Deno.test("oauth: a token without the mcp scope gets 403 insufficient_scope", async () => {
  await withServer(async (s) => {
    const reg = await register(s);
    const { location, verifier } = await codeFor(s, reg.body.client_id, { scope: "profile" });
    const t = await token(s, {
      grant_type: "authorization_code",
      code: location.searchParams.get("code")!,
      code_verifier: verifier,
      client_id: reg.body.client_id,
    });
    const res = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${t.body.access_token}` },
    });
    await res.body?.cancel();
    assertEquals(res.status, 403);
    assertMatch(res.headers.get("www-authenticate") ?? "", /error="insufficient_scope"/);
  });
});

Deno.test("oauth: hostile input is refused with the right error and nothing issued", async () => {
  await withServer(async (s) => {
    // Registration.
    for (
      const [meta, error] of [
        [{ redirect_uris: ["http://evil.example/cb"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["https://ok.example/cb#frag"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["com.example.app:/cb"] }, "invalid_redirect_uri"],
        [{ redirect_uris: [] }, "invalid_redirect_uri"],
        [{ application_type: "tv" }, "invalid_client_metadata"],
        [{ grant_types: ["password"] }, "invalid_client_metadata"],
        [{ response_types: ["token"] }, "invalid_client_metadata"],
        [{ token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
      ] as const
    ) {
      const r = await register(s, meta);
      assertEquals([r.status, r.body.error], [400, error], JSON.stringify(meta));
      assertEquals(r.body.client_id, undefined);
    }
    // A native app may register a private-use scheme.
    const native = await register(s, {
      application_type: "native",
      redirect_uris: ["com.example.app:/cb"],
    });
    assertEquals(native.status, 201);
    const big = await fetch(`${s.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: "x".repeat(20_000) }),
    });
    assertEquals((await big.json()).error, "invalid_client_metadata");
    assertEquals(big.status, 413);

    const reg = await register(s);
    const clientId = reg.body.client_id as string;
    const { challenge, verifier } = await pkce();
    const base = {
      response_type: "code",
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "s",
    };
    // Bad redirect URI or client: an error page, never a redirect.
    for (
      const p of [
        { ...base, redirect_uri: "http://127.0.0.1:9/callback/other" },
        { ...base, redirect_uri: "http://127.0.0.1:9/CALLBACK" },
        { ...base, client_id: "nope" },
      ]
    ) {
      const r = await fetch(authorizeUrl(s, p), { redirect: "manual" });
      await r.body?.cancel();
      assertEquals(r.status, 400);
      assertEquals(r.headers.get("location"), null);
    }
    const dup = await fetch(authorizeUrl(s, base) + "&client_id=" + clientId, {
      redirect: "manual",
    });
    await dup.body?.cancel();
    assertEquals(dup.status, 400);
    assertEquals(dup.headers.get("location"), null);
    // Valid client and redirect: errors go back to the client, with iss.
    for (
      const [p, error] of [
        [{ ...base, code_challenge_method: "plain" }, "invalid_request"],
        [{ ...base, code_challenge_method: "" }, "invalid_request"],
        [{ ...base, code_challenge: "" }, "invalid_request"],
        [{ ...base, code_challenge: "short" }, "invalid_request"],
        [{ ...base, response_type: "token" }, "unsupported_response_type"],
        [{ ...base, scope: "admin" }, "invalid_scope"],
        [{ ...base, resource: "https://elsewhere.example/mcp" }, "invalid_target"],
      ] as const
    ) {
      const r = await fetch(authorizeUrl(s, p as Record<string, string>), { redirect: "manual" });
      await r.body?.cancel();
      assertEquals(r.status, 302, JSON.stringify(p));
      const loc = new URL(r.headers.get("location")!);
      assertEquals(loc.origin + loc.pathname, REDIRECT);
      assertEquals(loc.searchParams.get("error"), error, JSON.stringify(p));
      assertEquals(loc.searchParams.get("iss"), s.url);
      assertEquals(loc.searchParams.get("code"), null);
    }
    const dupScope = await fetch(authorizeUrl(s, base) + "&state=again", { redirect: "manual" });
    await dupScope.body?.cancel();
    assertEquals(dupScope.status, 400);

    // Login: wrong password issues nothing; a forged CSRF field is refused.
    await assertRejects(() => browse(authorizeUrl(s, base), { ...USER, password: "wrong" }));
    const denied = await browse(authorizeUrl(s, base), USER, "deny");
    assertEquals(denied.location.searchParams.get("error"), "access_denied");
    assertEquals(denied.location.searchParams.get("code"), null);
    const a = await fetch(authorizeUrl(s, base), { redirect: "manual" });
    await a.body?.cancel();
    const cookie = (a.headers.get("set-cookie") ?? "").split(";")[0];
    const request = new URL(a.headers.get("location")!, s.url).searchParams.get("request")!;
    const forged = await fetch(`${s.url}/login`, {
      method: "POST",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ request, csrf: "forged", ...USER }),
    });
    await forged.body?.cancel();
    assertEquals(forged.status, 403);
    const noCookie = await fetch(`${s.url}/login?request=${request}`);
    await noCookie.body?.cancel();
    assertEquals(noCookie.status, 400);

    // Token endpoint: PKCE downgrade/mismatch, wrong redirect, wrong client, duplicates.
    const good = await browse(authorizeUrl(s, base), USER);
    const code = good.location.searchParams.get("code")!;
    assertMatch(good.consentHtml, /Test Client/);
    assertMatch(good.consentHtml, /127\.0\.0\.1:9/);
    assertMatch(good.consentHtml, /<li>mcp<\/li>/);
    const other = await register(s);
    for (
      const [form, error] of [
        [{ grant_type: "authorization_code", code, client_id: clientId }, "invalid_request"],
        [{
          grant_type: "authorization_code",
          code,
          client_id: clientId,
          code_verifier: challenge,
        }, "invalid_grant"],
        [{ grant_type: "password", client_id: clientId }, "unsupported_grant_type"],
        [{ grant_type: "authorization_code", code, code_verifier: verifier }, "invalid_client"],
        [{ grant_type: "refresh_token", refresh_token: "x", client_id: clientId }, "invalid_grant"],
      ] as const
    ) {
      const r = await token(s, form as Record<string, string>);
      assertEquals(r.body.error, error, JSON.stringify(form));
      assertEquals(r.body.access_token, undefined);
    }
    // The mismatched verifier above consumed the code: a later correct one is a replay.
    const late = await token(s, {
      grant_type: "authorization_code",
      code,
      client_id: clientId,
      code_verifier: verifier,
    });
    assertEquals(late.body.error, "invalid_grant");
    // Another client cannot redeem a code; duplicated parameters are invalid_request.
    const g2 = await browse(authorizeUrl(s, base), USER);
    const code2 = g2.location.searchParams.get("code")!;
    const stolen = await token(s, {
      grant_type: "authorization_code",
      code: code2,
      client_id: other.body.client_id,
      code_verifier: verifier,
    });
    assertEquals(stolen.body.error, "invalid_grant");
    const g3 = await browse(authorizeUrl(s, base), USER);
    const dupForm = new URLSearchParams({
      grant_type: "authorization_code",
      code: g3.location.searchParams.get("code")!,
      client_id: clientId,
      code_verifier: verifier,
    });
    dupForm.append("code", "again");
    const d = await token(s, dupForm);
    assertEquals(d.body.error, "invalid_request");
    const wrongRedirect = await token(s, {
      grant_type: "authorization_code",
      code: g3.location.searchParams.get("code")!,
      client_id: clientId,
      code_verifier: verifier,
      redirect_uri: "http://127.0.0.1:9/other",
    });
    assertEquals(wrongRedirect.body.error, "invalid_grant");
    const json = await fetch(`${s.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "authorization_code" }),
    });
    assertEquals((await json.json()).error, "invalid_request");
  });
});

async function assertRejects(fn: () => Promise<unknown>) {
  let threw = false;
  try {
    await fn();
  } catch {
    threw = true;
  }
  assert(threw, "expected a rejection");
}

Deno.test("oauth: --auth oauth satisfies the non-loopback-bind requirement", async () => {
  const { checkExposure, loadConfig } = await import("../../src/config.ts");
  const cfg = (args: string[]) => loadConfig(["serve", ...args], () => undefined);
  assert(checkExposure(cfg(["--host", "0.0.0.0"])) !== undefined);
  assertEquals(checkExposure(cfg(["--host", "0.0.0.0", "--auth", "oauth"])), undefined);
  assert.throws(() => cfg(["--auth", "basic"]));
});

Deno.test("oauth: client ID metadata documents in private ranges, oversized or lying are refused", async () => {
  let body = "";
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const docServer = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen: ({ port }) => resolve(port) },
    () => new Response(body, { headers: { "content-type": "application/json" } }),
  );
  const port = await listening;
  const allowed = `http://127.0.0.1:${port}/client.json`;
  const { challenge } = await pkce();
  try {
    await withServer(async (s) => {
      const attempt = async (clientId: string) => {
        const r = await fetch(
          authorizeUrl(s, {
            response_type: "code",
            client_id: clientId,
            redirect_uri: REDIRECT,
            code_challenge: challenge,
            code_challenge_method: "S256",
          }),
          { redirect: "manual" },
        );
        const html = await r.text();
        return { status: r.status, location: r.headers.get("location"), html };
      };
      // Private, loopback and metadata-service addresses, and plain http, without the allow-list.
      for (
        const url of [
          "https://10.0.0.1/client.json",
          "https://169.254.169.254/latest/meta-data",
          "https://[::1]/client.json",
          "https://127.0.0.1:1/client.json",
          "http://example.com/client.json",
          "https://example.com/",
        ]
      ) {
        const r = await attempt(url);
        assert.equal(r.status, 400, url);
        assert.equal(r.location, null);
        assert.match(r.html, /invalid_client/);
      }
      // The allow-listed loopback host: a document over 5 KiB, or naming another client_id.
      body = JSON.stringify({
        client_id: allowed,
        redirect_uris: [REDIRECT],
        client_name: "x".repeat(6000),
      });
      const big = await attempt(allowed);
      assert.equal(big.status, 400);
      assert.match(big.html, /too large/);
      body = JSON.stringify({
        client_id: "https://other.example/c.json",
        redirect_uris: [REDIRECT],
      });
      const lying = await attempt(allowed);
      assert.equal(lying.status, 400);
      assert.match(lying.html, /another client_id/);
      body = JSON.stringify({ client_id: allowed, redirect_uris: ["http://evil.example/cb"] });
      const badRedirect = await attempt(allowed);
      assert.equal(badRedirect.status, 400);
      // A good document is accepted (redirect to /login).
      body = JSON.stringify({ client_id: allowed, redirect_uris: [REDIRECT], client_name: "Doc" });
      const good = await attempt(allowed);
      assert.equal(good.status, 302);
      assert.match(good.location ?? "", /\/login\?request=/);
    }, ["--oauth-cimd-allow-hosts", `127.0.0.1:${port}`]);
  } finally {
    ac.abort();
    await docServer.finished;
  }
});

Deno.test("oauth: a token minted by one instance verifies at another sharing the KV (--workers, scale-out); private keys never in KV", async () => {
  const kv = await Deno.openKv(":memory:");
  // Both instances answer for one issuer (as behind one public URL): the first one's address.
  const port = freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const args = ["--auth", "oauth", "--issuer", issuer];
  const a = await startServer({ args: [...args, "--port", String(port)], kv, verifyPassword });
  const b = await startServer({ args, kv, verifyPassword });
  try {
    const reg = await register(a);
    assertEquals(reg.status, 201);
    const clientId = reg.body.client_id as string;
    const { location, verifier } = await codeFor(a, clientId, { resource: `${issuer}/mcp` });
    const t = await token(a, {
      grant_type: "authorization_code",
      code: location.searchParams.get("code")!,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: clientId,
      resource: `${issuer}/mcp`,
    });
    assertEquals(t.status, 200, JSON.stringify(t.body));
    for (const s of [a, b]) {
      const res = await fetch(`${s.url}/tools`, {
        headers: { authorization: `Bearer ${t.body.access_token}` },
      });
      await res.body?.cancel();
      assertEquals(res.status, 200, s === a ? "the issuing instance" : "the other instance");
    }
    // Each instance's JWKS lists both public keys; KV holds no private key material.
    const jwks = await json(await fetch(`${b.url}/.well-known/jwks.json`));
    assertEquals(jwks.body.keys.length, 2);
    for (const k of jwks.body.keys) assertEquals(k.d, undefined);
    for await (const e of kv.list({ prefix: [] })) {
      const text = JSON.stringify(e.value, (_k, v) => typeof v === "bigint" ? String(v) : v);
      assert(!/"d":"/.test(text ?? ""), `private JWK material under ${JSON.stringify(e.key)}`);
    }
    // A token signed by a key nobody published is refused.
    const [h, p] = t.body.access_token.split(".");
    const forged = `${h.slice(0, -2)}xx.${p}.${"A".repeat(86)}`;
    const bad = await fetch(`${b.url}/tools`, { headers: { authorization: `Bearer ${forged}` } });
    await bad.body?.cancel();
    assertEquals(bad.status, 401);
  } finally {
    await a.close();
    await b.close();
    kv.close();
  }
});
