/**
 * The upstream-authorization routes in-process (`app.request`): the cookie
 * binding a flow to its browser names the callback path the browser sees,
 * under --public-url's path prefix too.
 */
import assert from "node:assert/strict";
import { createUpstreamAuthRoutes } from "../../src/http/upstream_auth_routes.ts";
import type { UserAuthorizations } from "../../src/gateway/mod.ts";

function authorizations(base: string): UserAuthorizations {
  return {
    clientMetadata: () => ({
      client_id: `${base}/oauth/client-metadata.json`,
      redirect_uris: [`${base}/oauth/upstream/callback`],
    }),
    authorizationUrl: () => Promise.resolve(`${base}/oauth/upstream/start?ticket=t`),
    start: () =>
      Promise.resolve({
        location: "https://as.example/authorize?x=1",
        cookie: { name: "warden_upauth_0123456789abcdef", value: "nonce", maxAgeS: 600 },
      }),
    callback: () => Promise.resolve({ upstream: "up", principal: "ann" }),
    accessToken: () => Promise.resolve(undefined),
    has: () => Promise.resolve(false),
    anyPrincipal: () => Promise.resolve(undefined),
    cookieName: () => "warden_upauth_0123456789abcdef",
  };
}

Deno.test("upstream auth routes: the flow cookie names the callback path under the public URL's prefix", async () => {
  for (
    const [base, path, secure] of [
      ["https://gw.example/warden", "/warden/oauth/upstream/callback", true],
      ["http://127.0.0.1:8000", "/oauth/upstream/callback", false],
    ] as const
  ) {
    const app = createUpstreamAuthRoutes({ authorizations: authorizations(base) });
    const res = await app.request("/oauth/upstream/start?ticket=abc");
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "https://as.example/authorize?x=1");
    const cookie = res.headers.get("set-cookie") ?? "";
    assert.match(cookie, new RegExp(`Path=${path.replaceAll("/", "\\/")}(;|$)`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.equal(/Secure/.test(cookie), secure);
    // Two tickets: refused before anything starts.
    const twice = await app.request("/oauth/upstream/start?ticket=a&ticket=b");
    assert.equal(twice.status, 400);
  }
});
