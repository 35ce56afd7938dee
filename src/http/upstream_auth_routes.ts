/**
 * Warden as an OAuth client of its upstreams, over HTTP: its client ID
 * metadata document, the link a principal opens to authorize Warden at an
 * authorization-code upstream, and the redirect URI the upstream's
 * authorization server sends the browser back to. All three are reached
 * without a Warden token (a browser has none); the link is sealed to one
 * principal and the callback to the browser that opened it.
 */
import { Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { AuthorizationFlowError, type UserAuthorizations } from "../gateway/mod.ts";

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function page(title: string, message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;` +
    `margin:3rem auto;padding:0 1rem}</style></head><body><h1>${esc(title)}</h1><p>${
      esc(message)
    }</p></body></html>`;
}

/** The paths these routes own (the HTTP edge lets them through without a token). */
export const UPSTREAM_AUTH_OPEN =
  /^\/oauth\/(?:client-metadata\.json|upstream\/(?:start|callback))$/;

/** Routes over `authorizations` (cookies are Secure when Warden's public URL is https). */
export function createUpstreamAuthRoutes(deps: { authorizations: UserAuthorizations }): Hono {
  const app = new Hono();
  const { authorizations } = deps;
  const secure = () => authorizations.clientMetadata().client_id.startsWith("https:");
  // The callback's path as the browser sees it: behind a proxy serving Warden under a path
  // prefix (--public-url https://host/warden) the cookie must name that prefix, or the browser
  // never sends it back and every callback is refused.
  const cookiePath = () => new URL(authorizations.clientMetadata().redirect_uris[0]).pathname;
  const refused = (e: unknown) => {
    if (!(e instanceof AuthorizationFlowError)) throw e;
    return new Response(page("Authorization refused", e.message), {
      status: e.status,
      headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
    });
  };

  app.get("/oauth/client-metadata.json", (c) => {
    c.header("cache-control", "public, max-age=300");
    return c.json(authorizations.clientMetadata());
  });

  app.get("/oauth/upstream/start", async (c) => {
    const tickets = c.req.queries("ticket") ?? [];
    if (tickets.length !== 1) {
      return c.html(page("Authorization refused", "The link carries no single ticket"), 400);
    }
    try {
      const { location, cookie } = await authorizations.start(tickets[0]);
      setCookie(c, cookie.name, cookie.value, {
        path: cookiePath(),
        httpOnly: true,
        // Lax: the authorization server's redirect back is a top-level GET navigation.
        sameSite: "Lax",
        secure: secure(),
        maxAge: cookie.maxAgeS,
      });
      c.header("cache-control", "no-store");
      return c.redirect(location, 302);
    } catch (e) {
      return refused(e);
    }
  });

  app.get("/oauth/upstream/callback", async (c) => {
    const params = new URL(c.req.url).searchParams;
    c.header("cache-control", "no-store");
    try {
      const { upstream } = await authorizations.callback(params, (name) => getCookie(c, name));
      const state = params.get("state");
      if (state) {
        setCookie(c, authorizations.cookieName(state), "", { path: cookiePath(), maxAge: 0 });
      }
      return c.html(
        page(
          "Warden is authorized",
          `Warden can now use upstream ${upstream} as you. Return to your client and call again.`,
        ),
        200,
      );
    } catch (e) {
      return refused(e);
    }
  });
  return app;
}
