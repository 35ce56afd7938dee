/**
 * The v2 SDK client's own OAuth support against `--auth oauth`, over real
 * HTTP: it discovers Warden from the 401, registers (dynamic registration, or
 * a client ID metadata document the test serves), runs the code flow with
 * PKCE while the test plays the browser, calls a tool and refreshes.
 */
import assert from "node:assert/strict";
import { auth, Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { OAuthClientProvider } from "@modelcontextprotocol/client";
import { memoryOAuthProvider, REDIRECT } from "../_helpers/oauth_flow.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { browse } from "./_browser.ts";
import { selfSignedCert } from "../_helpers/tls.ts";

const USER = { username: "alice", password: "correct horse battery staple" };
const verifyPassword = (name: string, pw: string) =>
  Promise.resolve(name === USER.username && pw === USER.password);

async function connectWithLogin(s: TestServer, provider: OAuthClientProvider, state: {
  authUrl?: URL;
}) {
  const first = new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
    authProvider: provider,
  });
  const c1 = new Client({ name: "sdk-oauth", version: "1.0.0" });
  await assert.rejects(() => c1.connect(first));
  assert(state.authUrl, "the SDK asked the user to authorize");
  assert.equal(state.authUrl.searchParams.get("code_challenge_method"), "S256");
  assert.equal(state.authUrl.searchParams.get("resource"), `${s.url}/mcp`);
  const { location } = await browse(state.authUrl.toString(), USER);
  await first.finishAuth(location.searchParams);
  const transport = new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
    authProvider: provider,
  });
  const client = new Client({ name: "sdk-oauth", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

Deno.test("oauth sdk: DCR, code flow, tool call, refresh, reuse revokes the family", async () => {
  await using s = await startServer({ args: ["--auth", "oauth"], verifyPassword });
  const { provider, state } = memoryOAuthProvider("SDK Test Client");
  const client = await connectWithLogin(s, provider, state);
  assert.equal(typeof (state.client as { client_id?: string }).client_id, "string");
  const tools = await client.listTools();
  assert(tools.tools.some((t) => t.name === "calculate"));
  const res = await client.callTool({ name: "calculate", arguments: { expression: "6*7" } });
  assert.notEqual(res.isError, true);
  assert.match(JSON.stringify(res.content), /42/);
  await client.close();

  // Refresh through the SDK: auth() with stored tokens rotates them.
  const before = state.tokens!;
  const result = await auth(provider, { serverUrl: `${s.url}/mcp` });
  assert.equal(result, "AUTHORIZED");
  assert.notEqual(state.tokens!.refresh_token, before.refresh_token);
  assert.notEqual(state.tokens!.access_token, before.access_token);
  const fresh = state.tokens!.access_token;
  const ok = await fetch(`${s.url}/tools`, { headers: { authorization: `Bearer ${fresh}` } });
  await ok.body?.cancel();
  assert.equal(ok.status, 200);

  // An attacker replays the first refresh token: refused, and the whole family dies.
  const reuse = await fetch(`${s.url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: before.refresh_token!,
      client_id: (state.client as { client_id: string }).client_id,
    }),
  });
  assert.equal((await reuse.json()).error, "invalid_grant");
  const dead = await fetch(`${s.url}/tools`, { headers: { authorization: `Bearer ${fresh}` } });
  await dead.body?.cancel();
  assert.equal(dead.status, 401);
});

Deno.test("oauth sdk: registers by client ID metadata document served on loopback HTTPS", async () => {
  const { cert, key } = await selfSignedCert();
  let docUrl = "";
  let fetched = 0;
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const docServer = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    cert,
    key,
    signal: ac.signal,
    onListen: ({ port }) => resolve(port),
  }, () => {
    fetched++;
    return Response.json({
      client_id: docUrl,
      client_name: "CIMD Test Client",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
  });
  const port = await listening;
  docUrl = `https://127.0.0.1:${port}/oauth/client.json`;
  const httpClient = Deno.createHttpClient({ caCerts: [cert] });
  const s = await startServer({
    args: ["--auth", "oauth", "--oauth-cimd-allow-hosts", `127.0.0.1:${port}`],
    verifyPassword,
    oauthFetch: (input, init) => fetch(input, { ...init, client: httpClient }),
  });
  try {
    const { provider, state } = memoryOAuthProvider("SDK Test Client", docUrl);
    const client = await connectWithLogin(s, provider, state);
    assert.equal((state.client as { client_id: string }).client_id, docUrl);
    assert(fetched >= 1, "Warden fetched the metadata document");
    const res = await client.callTool({ name: "calculate", arguments: { expression: "2+3" } });
    assert.match(JSON.stringify(res.content), /5/);
    await client.close();
    const result = await auth(provider, { serverUrl: `${s.url}/mcp` });
    assert.equal(result, "AUTHORIZED");
  } finally {
    await s.close();
    httpClient.close();
    ac.abort();
    await docServer.finished;
  }
});
