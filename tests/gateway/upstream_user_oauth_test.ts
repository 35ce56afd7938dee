// deno-lint-ignore-file no-explicit-any -- vault entries and results are probed field by field
/**
 * Per-principal OAuth to an upstream (issue 12 §4), with real processes: the
 * upstream is a second Warden, its own process, started with `--auth oauth`
 * (its authorization server fetches client ID metadata documents). The
 * gateway Warden serves HTTPS on loopback (a self-signed certificate the
 * upstream process trusts through DENO_CERT), so its own metadata document
 * is its client_id. Each principal of the gateway authorizes the gateway at
 * the upstream as a user of the upstream, in a browser the test plays; the
 * upstream sees that user's token issued to the gateway's client, never the
 * principal's gateway token; links, state and the browser binding are
 * checked against replay and against being finished by another principal.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { addUser, createToken } from "../../src/identity/mod.ts";
import { sealedEntries, spawnServer, startServer, type TestServer } from "../_helpers/server.ts";
import { freePort } from "../_helpers/upstreams.ts";
import { selfSignedCert } from "../_helpers/tls.ts";
import { browse } from "../oauth/_browser.ts";

const UP_ADMIN = "upstream-admin-token-0123456789abcdef";
const ALICE = { username: "alice", password: "alice's long upstream password" };
const BOB = { username: "bob", password: "bob's long upstream password" };
const OPEN = { rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 } };

function textOf(result: any): string {
  return (result.content ?? []).filter((b: any) => b.type === "text").map((b: any) => b.text)
    .join("\n");
}

function linkIn(text: string): URL {
  const m = /(https?:\/\/\S+\/oauth\/upstream\/start\?ticket=[A-Za-z0-9._-]+)/.exec(text);
  assert(m, `no authorization link in: ${text.slice(0, 400)}`);
  return new URL(m[1]);
}

async function waitForTool(s: TestServer, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (s.app.gateway.list().some((t) => t.name === name)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} never appeared`);
}

Deno.test("upstream user oauth: each principal authorizes Warden at the upstream Warden as its own user", async () => {
  const dir = await Deno.makeTempDir();
  const { cert, key } = await selfSignedCert();
  await Deno.writeTextFile(`${dir}/ca.pem`, cert);
  const httpClient = Deno.createHttpClient({ caCerts: [cert] });
  const tlsFetch: typeof fetch = (input, init) => fetch(input, { ...init, client: httpClient });

  // The upstream Warden's users, in its KV file before it starts.
  const upKv = `${dir}/up.kv`;
  const seed = await Deno.openKv(upKv);
  await addUser(seed, { name: ALICE.username, password: ALICE.password, roles: [] });
  await addUser(seed, { name: BOB.username, password: BOB.password, roles: [] });
  seed.close();

  const port = freePort();
  const base = `https://127.0.0.1:${port}`;
  const up = await spawnServer([
    "--auth",
    "oauth",
    "--kv",
    upKv,
    "--token",
    UP_ADMIN,
    "--oauth-cimd-allow-hosts",
    `127.0.0.1:${port}`,
  ], { DENO_CERT: `${dir}/ca.pem` });
  let now = Date.now();
  const kv = await Deno.openKv(":memory:");
  const ann = await createToken(kv, { name: "ann" });
  const ben = await createToken(kv, { name: "ben" });
  const s = await startServer({
    kv,
    tls: { cert, key },
    args: ["--port", String(port), "--public-url", base],
    policy: OPEN,
    clock: () => now,
    upstreams: [{
      name: "up",
      transport: "streamable-http",
      url: `${up.url}/mcp`,
      oauth: { mode: "authorization_code" },
    }],
  });
  const clients: Client[] = [];
  async function connectAs(secret: string): Promise<Client> {
    const client = new Client({ name: "upauth-test", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${secret}` } },
        fetch: tlsFetch,
      }),
    );
    clients.push(client);
    return client;
  }
  /** A browser opening a Warden link: the redirect to the upstream and the cookie it was given. */
  async function open(link: URL) {
    const res = await tlsFetch(link, { redirect: "manual" });
    await res.body?.cancel();
    return {
      status: res.status,
      location: res.headers.get("location") ?? "",
      cookie: (res.headers.get("set-cookie") ?? "").split(";")[0],
    };
  }
  async function callback(url: URL | string, cookie?: string) {
    const res = await tlsFetch(url, { headers: cookie ? { cookie } : {} });
    return { status: res.status, html: await res.text() };
  }
  try {
    // Warden's client ID metadata document, at the URL that is its client_id.
    const docRes = await tlsFetch(`${base}/oauth/client-metadata.json`);
    const doc = await docRes.json();
    assert.equal(doc.client_id, `${base}/oauth/client-metadata.json`);
    assert.deepEqual(doc.redirect_uris, [`${base}/oauth/upstream/callback`]);
    assert.equal(doc.token_endpoint_auth_method, "none");

    // Nobody has authorized yet: the upstream offers only its authorize tool.
    const a = await connectAs(ann.secret);
    const b = await connectAs(ben.secret);
    assert.deepEqual(
      (await a.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith("up__")),
      ["up__authorize"],
    );
    const first = await a.callTool({ name: "up__authorize", arguments: {} });
    assert.equal(first.isError, true);
    const annLink = linkIn(textOf(first));

    // The link starts the code flow at the upstream's authorization server, found from its 401.
    const annStart = await open(annLink);
    assert.equal(annStart.status, 302);
    const authorize = new URL(annStart.location);
    assert.equal(authorize.origin, up.url);
    assert.equal(authorize.searchParams.get("client_id"), doc.client_id);
    assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
    assert.equal(authorize.searchParams.get("resource"), `${up.url}/mcp`);
    assert.equal(authorize.searchParams.get("redirect_uri"), doc.redirect_uris[0]);
    assert.match(annStart.cookie, /^warden_upauth_[0-9a-f]{16}=/);
    // A link works once.
    assert.equal((await open(annLink)).status, 400);

    // Ben gets a link of his own, and opens it in his own browser.
    const benFirst = await b.callTool({ name: "up__authorize", arguments: {} });
    const benLink = linkIn(textOf(benFirst));
    assert.notEqual(benLink.href, annLink.href);
    const benStart = await open(benLink);
    assert.equal(benStart.status, 302);

    // Ann signs in at the upstream as alice and allows; the upstream sends her browser back.
    const { location: back } = await browse(annStart.location, ALICE);
    assert.equal(`${back.origin}${back.pathname}`, doc.redirect_uris[0]);
    assert(back.searchParams.get("code"));

    // Hostile callbacks: a state nobody issued; Ann's callback carried to Ben's browser
    // (Ben's cookie, or none) — refused, and nothing stored for anyone.
    const forged = new URL(back);
    forged.searchParams.set("state", "A".repeat(43));
    assert.equal((await callback(forged, annStart.cookie)).status, 400);
    const stolen = await callback(back, benStart.cookie);
    assert.equal(stolen.status, 403);
    assert.match(stolen.html, /another browser/);
    assert.equal((await callback(back)).status, 403);
    const doubled = new URL(back);
    doubled.searchParams.append("state", back.searchParams.get("state")!);
    assert.equal((await callback(doubled, annStart.cookie)).status, 400);
    assert.equal((await kv.get(["upstream_user_token", "up", "ann"])).value, null);
    assert.equal((await kv.get(["upstream_user_token", "up", "ben"])).value, null);

    // Ann's own browser finishes it: her tokens are stored, sealed; the callback is taken once.
    const done = await callback(back, annStart.cookie);
    assert.equal(done.status, 200, done.html);
    assert.match(done.html, /Warden is authorized/);
    assert.equal((await callback(back, annStart.cookie)).status, 400);
    const stored = (await kv.get<any>(["upstream_user_token", "up", "ann"])).value;
    assert.equal(stored.kind, "oauth_authorization_code");
    assert.deepEqual(Object.keys(stored).sort(), [
      "box",
      "expires_at",
      "kind",
      "obtained_at",
      "principal",
      "upstream",
      "v",
    ]);
    assert.doesNotMatch(JSON.stringify(stored), /access_token|refresh_token/);

    // The first authorization lists the upstream's tools; Ann's call runs as alice upstream.
    await waitForTool(s, "up__calculate");
    const calc = await a.callTool({ name: "up__calculate", arguments: { expression: "6*7" } });
    assert.notEqual(calc.isError, true, textOf(calc));
    assert.match(JSON.stringify(calc), /42/);

    // Ben shares nothing of Ann's: he is still asked to authorize, with a link of his own.
    const benCalc = await b.callTool({ name: "up__calculate", arguments: { expression: "1+1" } });
    assert.equal(benCalc.isError, true);
    assert.notEqual(linkIn(textOf(benCalc)).href, annLink.href);

    // The upstream sealed Ann's call under alice and the gateway's client, not under "ann":
    // it saw the token alice gave the gateway, never Ann's gateway token (which it would refuse).
    const upEntries = async () => {
      const page = await (await fetch(`${up.url}/vault/entries?start=0&limit=500`, {
        headers: { authorization: `Bearer ${UP_ADMIN}` },
      })).json();
      return page.entries.map((e: any) =>
        JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(e.data)))
      );
    };
    const upCalls = (await upEntries()).filter((e: any) =>
      e.type === "tool_call" && e.tool === "calculate"
    );
    assert.equal(upCalls.length, 1);
    assert.equal(upCalls[0].principal, "alice");
    assert.equal(upCalls[0].principal_kind, "oauth");
    assert.equal(upCalls[0].client_id, doc.client_id);

    // The gateway's own vault records the credential kind, never a token, link or code.
    const sealed = await sealedEntries(s);
    const annCall = sealed.find((e) => e.type === "tool_call" && e.tool === "up__calculate");
    assert.equal(annCall.principal, "ann");
    assert.equal(annCall.upstream_credential, "oauth_authorization_code");
    const authorized = sealed.filter((e) => e.type === "upstream_authorized");
    assert.deepEqual(
      authorized.map((e) => [e.upstream, e.principal, e.credential]),
      [["up", "ann", "oauth_authorization_code"]],
    );
    const all = JSON.stringify(sealed);
    assert(!all.includes(annLink.searchParams.get("ticket")!), "the link is not sealed");
    assert(!all.includes(back.searchParams.get("code")!), "the code is not sealed");

    // An hour later by the gateway's clock the token has expired: the next call refreshes it
    // (rotated at the upstream) and goes through.
    const before = (await kv.get<any>(["upstream_user_token", "up", "ann"])).value;
    now += 3_600_000;
    const later = await a.callTool({ name: "up__calculate", arguments: { expression: "2+3" } });
    assert.notEqual(later.isError, true, textOf(later));
    assert.match(JSON.stringify(later), /5/);
    const after = (await kv.get<any>(["upstream_user_token", "up", "ann"])).value;
    assert.equal(after.obtained_at, now);
    assert.notEqual(after.box.ct, before.box.ct);
    const upCalls2 = (await upEntries()).filter((e: any) =>
      e.type === "tool_call" && e.tool === "calculate"
    );
    assert.equal(upCalls2.length, 2);
    assert.equal(upCalls2[1].principal, "alice");

    // A link that has lapsed (more than 10 minutes by the gateway's clock) starts nothing.
    const benAgain = linkIn(textOf(
      await b.callTool({ name: "up__calculate", arguments: { expression: "1+1" } }),
    ));
    now += 11 * 60_000;
    const lapsed = await tlsFetch(benAgain, { redirect: "manual" });
    assert.equal(lapsed.status, 400);
    assert.match(await lapsed.text(), /expired/);
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await s.close();
    kv.close();
    await up.stop();
    httpClient.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream user oauth: dynamic registration over http, URL-mode elicitation, moved and lapsed tokens", async () => {
  const dir = await Deno.makeTempDir();
  const seed = await Deno.openKv(`${dir}/up.kv`);
  await addUser(seed, { name: ALICE.username, password: ALICE.password, roles: [] });
  seed.close();
  const upPort = freePort();
  const upArgs = (kvPath: string) => [
    "--auth",
    "oauth",
    "--kv",
    kvPath,
    "--token",
    UP_ADMIN,
    "--port",
    String(upPort),
  ];
  let up = await spawnServer(upArgs(`${dir}/up.kv`));
  const kv = await Deno.openKv(":memory:");
  const ann = await createToken(kv, { name: "ann" });
  const ben = await createToken(kv, { name: "ben" });
  // Plain http: no metadata document can be the client_id, so Warden registers dynamically.
  const s = await startServer({
    kv,
    policy: OPEN,
    upstreams: [{
      name: "up",
      transport: "streamable-http",
      url: `${up.url}/mcp`,
      oauth: { mode: "authorization_code" },
    }],
  });
  const clients: Client[] = [];
  const elicited: any[] = [];
  async function connect(secret?: string, opensUrls = false): Promise<Client> {
    const client = new Client(
      { name: "upauth-test", version: "1" },
      opensUrls ? { capabilities: { elicitation: { url: {} } } } : {},
    );
    if (opensUrls) {
      client.setRequestHandler(ElicitRequestSchema, (req) => {
        elicited.push(req.params);
        return { action: "accept" };
      });
    }
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
        ...(secret ? { requestInit: { headers: { authorization: `Bearer ${secret}` } } } : {}),
      }),
    );
    clients.push(client);
    return client;
  }
  try {
    // Anonymous callers share one name: they cannot authorize anyone's upstream account.
    const anon = await connect();
    const refused = await anon.callTool({ name: "up__authorize", arguments: {} });
    assert.equal(refused.isError, true);
    assert.match(textOf(refused), /anonymous/);
    assert.doesNotMatch(textOf(refused), /ticket=/);

    // A client that opens URLs is asked to open Ann's link (URL-mode elicitation).
    const a = await connect(ann.secret, true);
    const first = await a.callTool({ name: "up__authorize", arguments: {} });
    assert.equal(first.isError, true);
    assert.match(textOf(first), /in the page your client opened/);
    assert.equal(elicited.length, 1);
    assert.equal(elicited[0].mode, "url");
    const link = new URL(elicited[0].url);
    assert.equal(`${link.origin}${link.pathname}`, `${s.url}/oauth/upstream/start`);

    const start = await fetch(link, { redirect: "manual" });
    await start.body?.cancel();
    assert.equal(start.status, 302);
    const authorize = new URL(start.headers.get("location")!);
    const cookie = (start.headers.get("set-cookie") ?? "").split(";")[0];
    const { location: back } = await browse(authorize.href, ALICE);
    const done = await fetch(back, { headers: { cookie } });
    assert.equal(done.status, 200, await done.text());

    // Registered dynamically: the registration is kept sealed, saying only its kind.
    const reg = (await kv.get<any>(["upstream_oauth_client", "up"])).value;
    assert.equal(reg.client_id_kind, "registered");
    assert.doesNotMatch(JSON.stringify(reg), /client_id"|client_secret/);
    const clientId = authorize.searchParams.get("client_id")!;
    assert.doesNotMatch(clientId, /^https?:/);

    await waitForTool(s, "up__calculate");
    const calc = await a.callTool({ name: "up__calculate", arguments: { expression: "6*7" } });
    assert.notEqual(calc.isError, true, textOf(calc));
    assert.match(JSON.stringify(calc), /42/);

    // Ann's sealed record copied under Ben does not open for him: he is asked to authorize,
    // and the copy is deleted.
    const annRecord = (await kv.get(["upstream_user_token", "up", "ann"])).value;
    await kv.set(["upstream_user_token", "up", "ben"], annRecord);
    const b = await connect(ben.secret);
    const benCalc = await b.callTool({ name: "up__calculate", arguments: { expression: "1+1" } });
    assert.equal(benCalc.isError, true);
    linkIn(textOf(benCalc));
    assert.equal((await kv.get(["upstream_user_token", "up", "ben"])).value, null);

    // The upstream forgets everything (a new KV: new keys, no grants). It refuses Ann's token,
    // the refresh is refused too, so her tokens are deleted and she is asked again.
    await up.stop();
    const seed2 = await Deno.openKv(`${dir}/up2.kv`);
    await addUser(seed2, { name: ALICE.username, password: ALICE.password, roles: [] });
    seed2.close();
    up = await spawnServer(upArgs(`${dir}/up2.kv`));
    const lapsed = await a.callTool({ name: "up__calculate", arguments: { expression: "2+2" } });
    assert.equal(lapsed.isError, true, textOf(lapsed));
    assert.match(textOf(lapsed), /authoriz/);
    assert.equal(elicited.length, 2);
    assert.equal((await kv.get(["upstream_user_token", "up", "ann"])).value, null);

    // Mix-up (RFC 9207): an answer naming another issuer is refused, naming nothing it carried.
    const again = await fetch(new URL(elicited[1].url), { redirect: "manual" });
    await again.body?.cancel();
    assert.equal(again.status, 302);
    const cookie2 = (again.headers.get("set-cookie") ?? "").split(";")[0];
    const { location: back2 } = await browse(again.headers.get("location")!, ALICE);
    assert.equal(back2.searchParams.get("iss"), up.url);
    back2.searchParams.set("iss", "https://evil.example");
    const mixed = await fetch(back2, { headers: { cookie: cookie2 } });
    const mixedHtml = await mixed.text();
    assert.equal(mixed.status, 400, mixedHtml);
    assert.match(mixedHtml, /issuer mismatch/);
    assert.doesNotMatch(mixedHtml, /evil/);
    assert.equal((await kv.get(["upstream_user_token", "up", "ann"])).value, null);
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await s.close();
    kv.close();
    await up.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
