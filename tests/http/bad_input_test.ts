import assert from "node:assert/strict";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { ACCEPT_BOTH, initializeRaw } from "../_helpers/raw.ts";

const TOKEN = "s3cret-token-for-tests-0123456789";

interface Case {
  name: string;
  request(server: TestServer, sessionId: string): Promise<Response>;
  status: number;
  rpcCode?: number;
  header?: [string, RegExp];
}

function post(server: TestServer, body: BodyInit, headers: Record<string, string> = {}) {
  return fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: {
      accept: ACCEPT_BOTH,
      "content-type": "application/json",
      authorization: `Bearer ${TOKEN}`,
      ...headers,
    },
    body,
  });
}

/** fetch() will not send a foreign Host header, so this speaks HTTP/1.1 over a socket. */
async function rawPost(port: number, host: string, body: string): Promise<Response> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = [
    "POST /mcp HTTP/1.1",
    `Host: ${host}`,
    `Authorization: Bearer ${TOKEN}`,
    `Accept: ${ACCEPT_BOTH}`,
    "Content-Type: application/json",
    `Content-Length: ${new TextEncoder().encode(body).length}`,
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(head + body));
  const raw = await new Response(conn.readable).text();
  const [headPart, ...rest] = raw.split("\r\n\r\n");
  const status = Number(headPart.split(" ")[1]);
  return new Response(rest.join("\r\n\r\n"), { status });
}

const listTools = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" });

const cases: Case[] = [
  {
    name: "Host not in the allowlist (DNS rebinding)",
    request: (s) => rawPost(s.port, "evil.example", listTools),
    status: 403,
  },
  {
    name: "Origin not in the allowlist",
    request: (s) => post(s, listTools, { origin: "http://evil.example" }),
    status: 403,
  },
  {
    name: "missing bearer token",
    request: (s) =>
      fetch(`${s.url}/mcp`, {
        method: "POST",
        headers: { accept: ACCEPT_BOTH, "content-type": "application/json" },
        body: listTools,
      }),
    status: 401,
    header: ["www-authenticate", /^Bearer realm="warden"$/],
  },
  {
    name: "wrong bearer token",
    request: (s) => post(s, listTools, { authorization: "Bearer wrong-token-wrong-token" }),
    status: 401,
    header: ["www-authenticate", /error="invalid_token"/],
  },
  {
    name: "body over the limit (declared)",
    request: (s) => post(s, "x".repeat(5000)),
    status: 413,
  },
  {
    name: "body over the limit (streamed, no length)",
    request: (s) =>
      post(
        s,
        new ReadableStream({
          start(c) {
            for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode("y".repeat(1000)));
            c.close();
          },
        }),
      ),
    status: 413,
  },
  {
    name: "malformed JSON",
    request: (s, id) => post(s, "{not json", { "mcp-session-id": id }),
    status: 400,
    rpcCode: -32700,
  },
  {
    name: "truncated body",
    request: (s, id) => post(s, listTools.slice(0, 20), { "mcp-session-id": id }),
    status: 400,
    rpcCode: -32700,
  },
  {
    name: "not a JSON-RPC message",
    request: (s, id) => post(s, JSON.stringify({ hello: "world" }), { "mcp-session-id": id }),
    status: 400,
  },
  {
    name: "unknown method",
    request: (s, id) =>
      post(s, JSON.stringify({ jsonrpc: "2.0", id: 9, method: "warden/no_such_method" }), {
        "mcp-session-id": id,
      }),
    status: 200,
    rpcCode: -32601,
  },
  {
    name: "wrong Accept on POST",
    request: (s, id) => post(s, listTools, { accept: "text/html", "mcp-session-id": id }),
    status: 406,
  },
  {
    name: "wrong Accept on GET",
    request: (s, id) =>
      fetch(`${s.url}/mcp`, {
        headers: {
          accept: "application/json",
          authorization: `Bearer ${TOKEN}`,
          "mcp-session-id": id,
        },
      }),
    status: 406,
  },
  {
    name: "unknown session",
    request: (s) =>
      post(s, listTools, { "mcp-session-id": "00000000-0000-4000-8000-000000000000" }),
    status: 404,
    rpcCode: -32001,
  },
  {
    name: "missing session header",
    request: (s) => post(s, listTools),
    status: 400,
  },
  {
    name: "bad protocol version header",
    request: (s, id) =>
      post(s, listTools, { "mcp-session-id": id, "mcp-protocol-version": "1999-01-01" }),
    status: 400,
  },
  {
    name: "unsupported HTTP method",
    request: (s, id) =>
      fetch(`${s.url}/mcp`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "mcp-session-id": id },
        body: listTools,
      }),
    status: 405,
  },
  {
    name: "body that never finishes (request timeout)",
    request: (s, id) =>
      post(
        s,
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('{"jsonrpc":'));
            // never closes: the server must give up at --request-timeout
          },
        }),
        { "mcp-session-id": id },
      ),
    status: 408,
  },
  {
    name: "REST invoke with a malformed body",
    request: (s) =>
      fetch(`${s.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ tool: 5 }),
      }),
    status: 400,
  },
];

Deno.test("bad input: every case gets the right status and error, and /health still answers", async (t) => {
  await using server = await startServer({
    args: ["--token", TOKEN, "--max-body", "4096", "--request-timeout", "300"],
  });
  const { sessionId } = await initializeRaw(server.url, "2025-11-25", {
    authorization: `Bearer ${TOKEN}`,
  });
  for (const c of cases) {
    await t.step(c.name, async () => {
      const res = await c.request(server, sessionId);
      const text = await res.text();
      assert.equal(res.status, c.status, `${c.name}: ${text}`);
      if (c.rpcCode !== undefined) {
        const body = text.startsWith("event:") || text.startsWith("id:")
          ? JSON.parse(/data: (\{.*\})/.exec(text)![1])
          : JSON.parse(text);
        assert.equal(body.error?.code, c.rpcCode, text);
      }
      if (c.header) assert.match(res.headers.get(c.header[0]) ?? "", c.header[1]);
      if (res.status >= 400 && res.status !== 405) {
        assert.ok(text.length > 0 && JSON.parse(text), "errors carry a JSON body");
      }
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).status, "ok");
    });
  }
});

Deno.test("bad input: logs never contain the bearer token", async () => {
  const lines: string[] = [];
  const { createApp } = await import("../../src/app.ts");
  const { loadConfig } = await import("../../src/config.ts");
  const { createLogger } = await import("../../src/lib/log.ts");
  const kv = await Deno.openKv(":memory:");
  const app = await createApp(
    loadConfig(["--token", TOKEN, "--port", "8000", "--kv", ":memory:"], () => undefined),
    {
      kv,
      logger: createLogger({ level: "debug", write: (l) => lines.push(l) }),
    },
  );
  try {
    const req = (auth: string) =>
      app.fetch(
        new Request("http://127.0.0.1:8000/mcp", {
          method: "POST",
          headers: { authorization: auth, accept: ACCEPT_BOTH, "content-type": "application/json" },
          body: listTools,
        }),
      );
    await (await req(`Bearer ${TOKEN}x`)).text();
    await (await req(`Bearer ${TOKEN}`)).text();
    assert.ok(lines.length > 0);
    for (const line of lines) assert.ok(!line.includes(TOKEN), line);
  } finally {
    await app.close();
    kv.close();
  }
});
