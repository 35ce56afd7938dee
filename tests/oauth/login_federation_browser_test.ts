/**
 * Login federation in a real browser (issue 12 §3): headless Chromium with
 * JavaScript off goes from Warden's /authorize to /login, presses "Sign in
 * with …", signs in on the real `oidc-provider`'s own form, comes back through
 * Warden's callback to its consent page and allows — so the forms work
 * without scripts and the pages' CSP (`form-action`, which Chromium also
 * applies to where a submission redirects) lets the button reach the provider
 * and the consent reach the client. (Before, the consent page allowed only
 * 'self', and Chromium aborted every Allow: the redirect to the client is
 * another origin. Only HTTP-driven tests had run the consent form.)
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { chromiumMissing, launchChromium } from "../_helpers/browser.ts";
import { startOidcProvider } from "../_helpers/oidc_provider.ts";
import { startServer } from "../_helpers/server.ts";
import { authorizeUrl, redeemCode, registerPublicClient } from "../_helpers/oauth_flow.ts";

const missing = chromiumMissing();
// CI installs chromium (.ci/run), so there its absence fails the test instead of skipping it.
const skip = missing !== undefined && !Deno.env.get("CI");
if (skip) console.warn(`SKIPPED the login federation browser test: ${missing}`);

Deno.test({
  name: "login federation in Chromium without JavaScript: provider sign-in, consent, code",
  ignore: skip,
  // playwright keeps its connection's timers and pipes until the browser process is gone
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    if (missing) throw new Error(missing);
    await using idp = await startOidcProvider({
      people: { alice: { password: "alice-at-the-provider", groups: ["idp-ops"] } },
    });
    // The client's redirect target: records what it is sent.
    const received: URL[] = [];
    const ac = new AbortController();
    const { promise: listening, resolve } = Promise.withResolvers<number>();
    const receiver = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: ({ port }) => resolve(port) },
      (req) => {
        received.push(new URL(req.url));
        return new Response("<!doctype html><title>done</title>done", {
          headers: { "content-type": "text/html" },
        });
      },
    );
    const redirect = `http://127.0.0.1:${await listening}/callback`;
    const s = await startServer({
      args: [
        "--auth",
        "oauth",
        "--oidc-issuer",
        idp.issuer,
        "--oidc-allow-hosts",
        new URL(idp.issuer).host,
        "--oidc-roles-claim",
        "groups",
        "--oidc-role-map",
        "idp-ops=ops",
        "--oidc-client-id",
        "warden",
        "--oidc-scopes",
        "openid,groups",
      ],
      env: { WARDEN_OIDC_CLIENT_SECRET: "warden-secret-at-idp-0123456789" },
      policy: { roles: { ops: { tools: ["calculate"] } } },
    });
    idp.addClient({
      client_id: "warden",
      client_secret: "warden-secret-at-idp-0123456789",
      redirect_uris: [`${s.url}/login/oidc/callback`],
    });
    const browser = await launchChromium({ javaScriptEnabled: false });
    try {
      const reg = await registerPublicClient(s, { name: "Browser Client", redirect });
      const { url: authorize, verifier } = await authorizeUrl(s, reg.client_id, {
        redirect,
        state: "browser-state",
      });

      const ctx = browser.context;
      ctx.setDefaultTimeout(15_000);
      const page = ctx.pages()[0] ?? await ctx.newPage();
      const problems: string[] = [];
      page.on("console", (m) => {
        // Chromium asks each host for /favicon.ico, which none of these serves.
        if (m.type() === "error" && !m.location().url.endsWith("/favicon.ico")) {
          problems.push(`${m.text()} (${m.location().url})`);
        }
      });
      await page.goto(authorize.toString());
      assert.equal(new URL(page.url()).pathname, "/login");
      const button = page.getByRole("button", {
        name: `Sign in with ${new URL(idp.issuer).host}`,
      });
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(`${idp.issuer}/interaction/`)),
        button.click(),
      ]);
      await page.fill('input[name="login"]', "alice");
      await page.fill('input[name="password"]', "alice-at-the-provider");
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(`${s.url}/consent`)),
        page.click('button[value="allow"]'),
      ]);
      assert.match(await page.content(), new RegExp(`Signed in as <strong>${idp.issuer}#alice`));
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(redirect)),
        page.click('button[value="allow"]'),
      ]).catch((e) => {
        throw new Error(`${e.message}; page errors: ${problems.join(" | ")}`);
      });
      assert.deepEqual(problems, [], "no CSP violation or other page error");
      // (Chromium may also ask the receiver for /favicon.ico.)
      const back = received.find((u) => u.pathname === "/callback")!;
      assert.equal(back.searchParams.get("state"), "browser-state");
      assert.equal(back.searchParams.get("iss"), s.url);
      const token = await (await redeemCode(s, {
        code: back.searchParams.get("code")!,
        verifier,
        clientId: reg.client_id,
        redirect,
      })).json();
      const claims = decodeJwt(token.access_token);
      assert.deepEqual([claims.sub, claims.roles], [`${idp.issuer}#alice`, ["ops"]]);
      // The sign-in cookie was HttpOnly, scoped to the callback, and is gone once used.
      const cookies = await ctx.cookies(s.url);
      assert.equal(cookies.find((c) => c.name === "warden_oidc"), undefined);
    } finally {
      await browser.close();
      await s.close();
      ac.abort();
      await receiver.finished;
    }
  },
});
