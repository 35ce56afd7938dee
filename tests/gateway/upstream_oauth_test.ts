// deno-lint-ignore-file no-explicit-any -- vault entries and results are probed field by field
/**
 * OAuth to upstreams as a client (issue 12), Warden → Warden over real HTTP:
 * - token exchange: a front Warden (its own OAuth server) exchanges each
 *   caller's access token (RFC 8693) for one bound to the upstream Warden,
 *   which accepts it by `--oidc-issuer <front>` and seals the call under the
 *   caller — never seeing the caller's own token, which it would refuse;
 * - client credentials: the front gets its own token from a real OpenID
 *   provider (`oidc-provider` on loopback) and the upstream Warden accepts it.
 */
import assert from "node:assert/strict";
import { digest, OAuthStore } from "../../src/oauth/store.ts";
import { addUser } from "../../src/identity/mod.ts";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { connectV1As } from "../_helpers/client.ts";
import { startOidcProvider } from "../_helpers/oidc_provider.ts";
import { sealedEntries, startServer, type TestServer } from "../_helpers/server.ts";
import { freePort } from "../_helpers/upstreams.ts";
import { startAuthUpstream } from "../_helpers/auth_upstream_process.ts";
import { TOKEN_EXCHANGE, userToken } from "../_helpers/oauth_flow.ts";

const OPEN = { rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 } };
const FRONT_SECRET = "front-gateway-secret-0123456789";
const ADMIN = "admin-token-0123456789abcdef";

async function waitForTool(s: TestServer, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (s.app.gateway.list().some((t) => t.name === name)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} never appeared`);
}

Deno.test("upstream oauth: a front Warden exchanges each caller's token for one the upstream Warden accepts", async () => {
  const frontPort = freePort();
  const front = `http://127.0.0.1:${frontPort}`;
  // The upstream Warden accepts tokens the front's authorization server issues for it.
  await using back = await startServer({
    args: ["--oidc-issuer", front, "--oidc-allow-hosts", `127.0.0.1:${frontPort}`],
    policy: OPEN,
  });
  const kv = await Deno.openKv(":memory:");
  await addUser(kv, { name: "carol", password: "carol's long password", roles: [] });
  // The front's own confidential client at its own server, as DCR would have registered it.
  await new OAuthStore(kv).putClient({
    client_id: "front-gateway",
    client_name: "front gateway",
    redirect_uris: [],
    application_type: "web",
    token_endpoint_auth_method: "client_secret_basic",
    grant_types: [TOKEN_EXCHANGE, "client_credentials"],
    secretHash: digest(FRONT_SECRET),
    client_id_issued_at: Math.floor(Date.now() / 1000),
  }, 3_600_000);
  const s = await startServer({
    kv,
    args: [
      "--port",
      String(frontPort),
      "--auth",
      "oauth",
      "--token",
      ADMIN,
      "--oauth-exchange-audiences",
      `${back.url}/mcp`,
    ],
    policy: OPEN,
    upstreams: parseUpstreams(JSON.stringify([{
      name: "back",
      transport: "streamable-http",
      url: `${back.url}/mcp`,
      oauth: {
        grant: "token_exchange",
        issuer: front,
        client_id: "front-gateway",
        client_secret_env: "FRONT_GATEWAY_SECRET",
      },
    }])),
    gatewayOptions: {
      // Probes fail until the front itself listens (its own server issues the listing token):
      // keep the breaker from opening meanwhile, however slow the start.
      breaker: { failures: 10_000 },
      healthIntervalMs: 200,
      env: (n) => n === "FRONT_GATEWAY_SECRET" ? FRONT_SECRET : undefined,
    },
  });
  try {
    // The catalogue is listed with the front's own client-credentials token.
    await waitForTool(s, "back__calculate");
    const { access } = await userToken(s, "carol", "carol's long password");
    const client = await connectV1As(s.url, access);
    try {
      const r: any = await client.callTool({
        name: "back__calculate",
        arguments: { expression: "6*7" },
      });
      assert.match(JSON.stringify(r.content), /42/);
      // A second call reuses the caller's upstream session and cached exchanged token.
      await client.callTool({ name: "back__calculate", arguments: { expression: "1+1" } });
    } finally {
      await client.close();
    }
    const frontCall = (await sealedEntries(s)).find((e) => e.tool === "back__calculate");
    assert.equal(frontCall.principal, "carol");
    assert.equal(frontCall.upstream_credential, "oauth_token_exchange");
    const backCalls = (await sealedEntries(back)).filter((e) => e.tool === "calculate");
    assert.equal(backCalls.length, 2);
    for (const e of backCalls) {
      assert.equal(e.principal, `${front}#carol`, "the upstream sees the caller, not the front");
      assert.equal(e.client_id, "front-gateway");
    }
    // The caller's own token is for the front: the upstream refuses it (never passed through).
    const direct = await fetch(`${back.url}/tools`, {
      headers: { authorization: `Bearer ${access}` },
    });
    await direct.body?.cancel();
    assert.equal(direct.status, 401);
    assert.match(direct.headers.get("www-authenticate")!, /audience is not this server/);
    // A caller without an OAuth token (the static admin token) cannot be acted for.
    const admin = await connectV1As(s.url, ADMIN);
    try {
      const r: any = await admin.callTool({
        name: "back__calculate",
        arguments: { expression: "1" },
      });
      assert.equal(r.isError, true);
      assert.match(JSON.stringify(r), /OAuth token exchange/);
    } finally {
      await admin.close();
    }
    // Secrets stay out of the vault and the registry API.
    const everything = JSON.stringify([await sealedEntries(s), await sealedEntries(back)]);
    assert.ok(!everything.includes(FRONT_SECRET) && !everything.includes(access));
  } finally {
    await s.close();
    kv.close();
  }
});

Deno.test("upstream oauth: client credentials from a real OpenID provider, cached until near expiry", async () => {
  await using idp = await startOidcProvider();
  await using back = await startServer({
    args: ["--oidc-issuer", idp.issuer, "--oidc-allow-hosts", new URL(idp.issuer).host],
    policy: OPEN,
  });
  let secretReads = 0;
  await using s = await startServer({
    policy: OPEN,
    upstreams: parseUpstreams(JSON.stringify([{
      name: "back",
      transport: "streamable-http",
      url: `${back.url}/mcp`,
      oauth: {
        grant: "client_credentials",
        issuer: idp.issuer,
        client_id: "svc-client",
        client_secret_env: "SVC_SECRET",
        scope: "mcp",
      },
    }])),
    gatewayOptions: {
      env: (n) => {
        if (n !== "SVC_SECRET") return undefined;
        secretReads++;
        return "svc-client-secret-0123456789";
      },
    },
  });
  await waitForTool(s, "back__calculate");
  const res = await fetch(`${s.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "back__calculate", arguments: { expression: "2*3" } }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  const calls = (await sealedEntries(back)).filter((e) => e.tool === "calculate");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].principal, `${idp.issuer}#svc-client`);
  const sealed = (await sealedEntries(s)).find((e) => e.tool === "back__calculate");
  assert.equal(sealed.upstream_credential, "oauth_client_credentials");
  assert.equal(secretReads, 1, "one token served the listing and the call");
});

Deno.test("upstream oauth: an oversized, lying or slow authorization server, or a missing secret, leaves the upstream unlisted saying why", async () => {
  let mode: "big" | "lying" | "slow" = "big";
  const pending = new Set<() => void>();
  let asUrl = "";
  const ac = new AbortController();
  const as: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req): Promise<Response> => {
      const path = new URL(req.url).pathname;
      if (mode === "slow") {
        await new Promise<void>((r) => {
          const id = setTimeout(r, 5000);
          pending.add(() => {
            clearTimeout(id);
            r();
          });
        });
      }
      if (path === "/.well-known/oauth-authorization-server") {
        return Response.json({
          issuer: mode === "lying" ? "https://evil.example" : asUrl,
          token_endpoint: `${asUrl}/token`,
        });
      }
      if (path === "/token") {
        return Response.json({ access_token: "x".repeat(100_000), token_type: "Bearer" });
      }
      return new Response("not found", { status: 404 });
    },
  );
  asUrl = `http://127.0.0.1:${as.addr.port}`;
  await using back = await startServer({ policy: OPEN });
  const front = (env: (n: string) => string | undefined) =>
    startServer({
      upstreams: parseUpstreams(JSON.stringify([{
        name: "back",
        transport: "streamable-http",
        url: `${back.url}/mcp`,
        timeout_ms: 500,
        oauth: {
          grant: "client_credentials",
          issuer: asUrl,
          client_id: "c",
          client_secret_env: "AS_SECRET",
        },
      }])),
      gatewayOptions: { healthIntervalMs: 0, env },
    });
  const lastError = (s: TestServer) => s.app.gateway.server("back")!.connection.lastError ?? "";
  try {
    {
      await using s = await front(() => "secret");
      assert.match(lastError(s), /more than 65536 bytes/);
      assert.ok(!s.app.gateway.list().some((t) => t.name.startsWith("back__")));
    }
    mode = "lying";
    {
      await using s = await front(() => "secret");
      assert.match(lastError(s), /cannot get an OAuth token: .*issuer/);
    }
    mode = "slow";
    {
      const started = Date.now();
      await using s = await front(() => "secret");
      assert.match(lastError(s), /timed out|cannot get an OAuth token/);
      assert.ok(Date.now() - started < 3000, "the request gave up at the upstream's time limit");
    }
    mode = "big";
    {
      await using s = await front(() => undefined);
      assert.match(lastError(s), /the client secret variable AS_SECRET is not set/);
    }
  } finally {
    for (const release of pending) release();
    ac.abort();
    await as.finished;
  }
});

Deno.test({
  name:
    "upstream oauth: a token the upstream refuses (401) is dropped and the request retried once with a new one",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A stand-in authorization server issuing tok-1, tok-2, … (an upstream that revoked one).
    let issued = 0;
    let asUrl = "";
    const ac = new AbortController();
    const as: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req): Response => {
        const path = new URL(req.url).pathname;
        if (path === "/.well-known/oauth-authorization-server") {
          return Response.json({ issuer: asUrl, token_endpoint: `${asUrl}/token` });
        }
        if (path === "/token" && req.method === "POST") {
          issued++;
          return Response.json({
            access_token: `tok-${issued}`,
            token_type: "Bearer",
            expires_in: 3600,
          });
        }
        return new Response("not found", { status: 404 });
      },
    );
    asUrl = `http://127.0.0.1:${as.addr.port}`;
    const upstream = await startAuthUpstream({ EXPECT_BEARER: "tok-1" });
    try {
      await using s = await startServer({
        policy: OPEN,
        upstreams: parseUpstreams(JSON.stringify([{
          name: "back",
          transport: "streamable-http",
          url: upstream.url,
          oauth: {
            grant: "client_credentials",
            issuer: asUrl,
            client_id: "c",
            client_secret_env: "S",
          },
        }])),
        gatewayOptions: { healthIntervalMs: 0, env: () => "secret" },
      });
      const call = async () => {
        const res = await fetch(`${s.url}/invoke`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ tool: "back__whoami", arguments: {} }),
        });
        return { status: res.status, body: await res.text() };
      };
      assert.equal((await call()).status, 200);
      assert.equal(issued, 1, "the cached token served the listing and the call");
      await upstream.expect("tok-2");
      const again = await call();
      assert.equal(again.status, 200, again.body);
      assert.equal(issued, 2, "one new token after the 401");
      const seen = (await upstream.seen()).map((x) => x.authorization);
      assert.deepEqual(seen.slice(-2), ["Bearer tok-1", "Bearer tok-2"]);
    } finally {
      await upstream.stop();
      ac.abort();
      await as.finished;
    }
  },
});
