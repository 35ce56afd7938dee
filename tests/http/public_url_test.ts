/** --public-url (issue 9 §7): a server behind a real hostname accepts that Host and Origin. */
import assert from "node:assert/strict";
import { startServer } from "../_helpers/server.ts";
import { spawnServer } from "../_helpers/server.ts";
import { ACCEPT_BOTH } from "../_helpers/raw.ts";
import { selfSignedCert } from "../_helpers/tls.ts";
import { checkHostAndOrigin } from "../../src/http/guards.ts";

const listTools = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" });

/** fetch() will not send a foreign Host header, so this speaks HTTP/1.1 over a socket. */
async function statusWith(port: number, host: string, origin?: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = [
    "POST /mcp HTTP/1.1",
    `Host: ${host}`,
    ...(origin ? [`Origin: ${origin}`] : []),
    `Accept: ${ACCEPT_BOTH}`,
    "Content-Type: application/json",
    `Content-Length: ${listTools.length}`,
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(head + listTools));
  const raw = await new Response(conn.readable).text();
  return Number(raw.split(" ")[1]);
}

Deno.test("public url: its host is an allowed Host and its origin an allowed Origin", async () => {
  await using server = await startServer({ args: ["--public-url", "https://warden.example.com"] });
  // Not 403: the Host/Origin check let it through (400 = no session, as for loopback).
  const ok = await statusWith(server.port, "warden.example.com", "https://warden.example.com");
  assert.notEqual(ok, 403);
  assert.equal(ok, await statusWith(server.port, `127.0.0.1:${server.port}`));
  assert.equal(await statusWith(server.port, "evil.example.com"), 403);
  assert.equal(
    await statusWith(server.port, "warden.example.com", "https://evil.example.com"),
    403,
  );
  // Loopback stays allowed.
  assert.notEqual(await statusWith(server.port, `localhost:${server.port}`), 403);
});

Deno.test("public url: WARDEN_PUBLIC_URL works too, with a port, and is advertised", async () => {
  const server = await spawnServer(["--kv", ":memory:"], {
    WARDEN_PUBLIC_URL: "http://mcp.internal:8443",
  });
  try {
    const port = Number(new URL(server.url).port);
    assert.notEqual(await statusWith(port, "mcp.internal:8443", "http://mcp.internal:8443"), 403);
    assert.equal(await statusWith(port, "mcp.internal"), 403);
    const line = JSON.parse(server.logs.find((l) => l.includes('"listening"'))!);
    assert.equal(line.public_url, "http://mcp.internal:8443/mcp");
  } finally {
    await server.stop();
  }
});

Deno.test("public url: over HTTP/2 (TLS) the request's authority is the Host checked", async () => {
  const { cert, key } = await selfSignedCert();
  const httpClient = Deno.createHttpClient({ caCerts: [cert], http2: true, http1: false });
  await using server = await startServer({ tls: { cert, key } });
  try {
    // HTTP/2 sends no Host header: before, every such request was refused as "Host null".
    const ok = await fetch(`${server.url}/health`, { client: httpClient });
    await ok.body?.cancel();
    assert.equal(ok.status, 200);
    const tools = await fetch(`${server.url}/tools`, { client: httpClient });
    await tools.body?.cancel();
    assert.equal(tools.status, 200);
    // A foreign authority is still refused (a request without Host names it only in its URL).
    const allow = { hosts: [`127.0.0.1:${server.port}`], origins: [] };
    assert.equal(checkHostAndOrigin(new Request(`${server.url}/tools`), allow), undefined);
    assert.equal(checkHostAndOrigin(new Request("https://evil.example/tools"), allow)?.status, 403);
  } finally {
    httpClient.close();
  }
});
