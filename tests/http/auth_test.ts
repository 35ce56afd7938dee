/**
 * The auth middleware factory (issue 8 §1), in-process with app.request(): options checked up
 * front; a missing or invalid token refused 401 with its challenge (RFC 9728 metadata under
 * OAuth), an OAuth token without the mcp scope 403; exempt requests, dashboard sessions and the
 * anonymous fallback honoured; the request context carries the principal, client IP and bearer.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { auth, type AuthOptions } from "../../src/http/auth.ts";
import { HttpError } from "../../src/http/mod.ts";
import {
  type AuthResolver,
  createAuthResolver,
  currentRequest,
  type Principal,
} from "../../src/identity/mod.ts";

const TOKEN = "s3cret-token";
const resourceServer = { resourceMetadataUrl: () => "https://w.example/.well-known/prm" };

/** An OAuth principal for `Bearer oauth-<scopes>` (the resolver's own verifier hook). */
function oauthVerifier(secret: string): Promise<Principal | undefined> {
  if (!secret.startsWith("oauth-")) return Promise.resolve(undefined);
  const scopes = secret.slice(6).split("+").filter((s) => s !== "");
  return Promise.resolve({ id: "ann", kind: "oauth", roles: [], scopes });
}

async function withApp(
  options: Partial<AuthOptions>,
  fn: (app: Hono<{ Variables: { principal: string } }>, warned: string[]) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    const resolver: AuthResolver = createAuthResolver({
      kv,
      staticToken: TOKEN,
      required: true,
      defaultRoles: () => ["reader"],
      verifiers: [oauthVerifier],
    });
    const warned: string[] = [];
    const app = new Hono<{ Variables: { principal: string } }>();
    app.onError((e) =>
      e instanceof HttpError
        ? Response.json({ message: e.message, rpc: e.rpcCode }, {
          status: e.status,
          headers: e.headers,
        })
        : new Response("fault", { status: 500 })
    );
    app.use(
      "*",
      auth({
        resolver,
        defaultRoles: () => ["reader"],
        logger: { warn: (m, f) => void warned.push(`${m} ${f?.status} ${f?.path}`) },
        ...options,
      }),
    );
    app.get("*", (c) => {
      const r = currentRequest();
      return c.json({
        principal: c.get("principal"),
        context: r?.principal?.id,
        roles: r?.principal?.roles,
        clientIp: r?.clientIp ?? null,
        bearer: r?.bearer ?? null,
      });
    });
    await fn(app, warned);
  } finally {
    kv.close();
  }
}

const bearer = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` } });

Deno.test("auth(): a missing or invalid token is 401 with the realm challenge, and logged", async () => {
  await withApp({}, async (app, warned) => {
    const missing = await app.request("/x");
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="warden"');
    assert.deepEqual(await missing.json(), {
      message: "Unauthorized: missing bearer token",
      rpc: -32001,
    });
    const invalid = await app.request("/x", bearer("wrong"));
    assert.equal(invalid.status, 401);
    assert.equal(
      invalid.headers.get("www-authenticate"),
      'Bearer realm="warden", error="invalid_token"',
    );
    assert.deepEqual(warned, ["request refused 401 /x", "request refused 401 /x"]);
    const ok = await app.request("/x", bearer(TOKEN));
    assert.equal(ok.status, 200);
    const body = await ok.json();
    assert.equal(body.principal, body.context, "c.var and the request context agree");
    assert.equal(body.bearer, null, "only an OAuth caller's token is kept");
  });
});

Deno.test("auth(): under OAuth the challenge names the metadata; a token without mcp is 403", async () => {
  await withApp({ resourceServer }, async (app) => {
    const missing = await app.request("/x");
    assert.equal(missing.status, 401);
    assert.equal(
      (await missing.json()).message,
      "Unauthorized: an OAuth access token is required",
    );
    assert.equal(
      missing.headers.get("www-authenticate"),
      'Bearer resource_metadata="https://w.example/.well-known/prm", scope="mcp"',
    );
    const invalid = await app.request("/x", bearer("wrong"));
    assert.equal(
      invalid.headers.get("www-authenticate"),
      'Bearer resource_metadata="https://w.example/.well-known/prm", scope="mcp", ' +
        'error="invalid_token", error_description="the access token is invalid or expired"',
    );
    const unscoped = await app.request("/x", bearer("oauth-read"));
    assert.equal(unscoped.status, 403);
    assert.match(unscoped.headers.get("www-authenticate") ?? "", /error="insufficient_scope"/);
    const scoped = await app.request("/x", bearer("oauth-read+mcp"));
    assert.equal(scoped.status, 200);
    const body = await scoped.json();
    assert.equal(body.principal, "ann");
    assert.equal(body.bearer, "oauth-read+mcp", "kept for token exchange");
  });
  // Without a resource server the scope is not asked for.
  await withApp({}, async (app) => {
    assert.equal((await app.request("/x", bearer("oauth-read"))).status, 200);
  });
});

Deno.test("auth(): exempt requests, dashboard sessions and the anonymous fallback", async () => {
  const sessions: string[] = [];
  await withApp({
    exempt: (_req, path) => path === "/open",
    session: (req, path) => {
      sessions.push(path);
      return path === "/vault/x" && req.headers.get("cookie") === "s=1"
        ? Promise.resolve({ id: "dash", kind: "user", roles: [], scopes: [] })
        : undefined;
    },
    anonymousOnFailure: (_req, path) => path.startsWith("/api/servers/"),
  }, async (app) => {
    const open = await (await app.request("/open", bearer("wrong"))).json();
    assert.equal(open.principal, "anonymous");
    assert.deepEqual(open.roles, ["reader"], "the anonymous principal has the default roles");
    assert.equal(
      (await (await app.request("/vault/x", { headers: { cookie: "s=1" } })).json()).principal,
      "dash",
    );
    assert.equal((await app.request("/vault/y", { headers: { cookie: "s=1" } })).status, 401);
    assert.deepEqual(sessions, ["/vault/x", "/vault/y"], "not asked for an exempt request");
    assert.equal(
      (await (await app.request("/api/servers/a", bearer("wrong"))).json()).principal,
      "anonymous",
    );
    assert.equal((await app.request("/api/other", bearer("wrong"))).status, 401);
  });
});

Deno.test("auth(): the client IP is the peer's, or X-Forwarded-For from a trusted proxy", async () => {
  await withApp({ trustedProxies: ["10.0.0.1"] }, async (app) => {
    const via = (remote: string) =>
      app.request(
        "/x",
        { headers: { authorization: `Bearer ${TOKEN}`, "x-forwarded-for": "203.0.113.9" } },
        { remoteAddr: { hostname: remote } },
      );
    assert.equal((await (await via("10.0.0.1")).json()).clientIp, "203.0.113.9");
    assert.equal((await (await via("10.0.0.2")).json()).clientIp, "10.0.0.2");
  });
});

Deno.test("auth(): bad options are a TypeError when the middleware is made", () => {
  const kv = {} as Deno.Kv;
  const resolver = createAuthResolver({ kv, required: false, defaultRoles: () => [] });
  const good: AuthOptions = { resolver, defaultRoles: () => [], logger: { warn() {} } };
  const bad: [Partial<Record<keyof AuthOptions, unknown>>, RegExp][] = [
    [{ resolver: undefined }, /resolver\.resolve must be a function/],
    [{ defaultRoles: ["reader"] }, /defaultRoles must be a function/],
    [{ logger: console.log }, /logger\.warn must be a function/],
    [{ resourceServer: {} }, /resourceServer\.resourceMetadataUrl must be a function/],
    [{ exempt: true }, /exempt must be a function/],
    [{ session: "cookie" }, /session must be a function/],
    [{ anonymousOnFailure: 1 }, /anonymousOnFailure must be a function/],
  ];
  for (const [change, message] of bad) {
    assert.throws(() => auth({ ...good, ...change } as AuthOptions), (e) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, message);
      return true;
    });
  }
  auth(good);
});
