/**
 * `/ws/mcp`: MCP JSON-RPC over a real WebSocket (Deno's client) against a real
 * server: initialize, tools/list, a governed tools/call whose vault entry is
 * read back; refused without a token or from a foreign Origin; an oversize
 * frame, a binary frame and an idle socket close cleanly with a code; a
 * revoked token ends the socket; sockets are capped per caller; the SDK's own
 * WebSocket client (v1) works against it.
 */
import assert from "node:assert/strict";
import { createToken, revokeToken } from "../../src/identity/mod.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { createWebSocketManager } from "../../src/mcp/mod.ts";
import { Client } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { sleepTool } from "../_helpers/tools.ts";
// @ts-types="@modelcontextprotocol/sdk/client/websocket"
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import { pollUntil } from "../_helpers/wait.ts";

const STATIC = "static-token-0123456789";

/** A minimal JSON-RPC client over Deno's WebSocket. */
class WsClient {
  readonly socket: WebSocket;
  readonly closed: Promise<CloseEvent>;
  readonly #pending = new Map<number, (m: Record<string, unknown>) => void>();
  readonly notifications: Record<string, unknown>[] = [];
  #next = 1;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.addEventListener("message", (e) => {
      const m = JSON.parse(e.data as string);
      const waiter = this.#pending.get(m.id);
      if (waiter) {
        this.#pending.delete(m.id);
        waiter(m);
      } else this.notifications.push(m);
    });
  }

  static async open(server: TestServer, headers: Record<string, string>): Promise<WsClient> {
    const socket = new WebSocket(
      `${server.url.replace("http", "ws")}/ws/mcp`,
      { protocols: ["mcp"], headers } as unknown as string[],
    );
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    socket.onopen = () => resolve();
    socket.onerror = (e) => reject(new Error((e as ErrorEvent).message));
    await promise;
    assert.equal(socket.protocol, "mcp");
    return new WsClient(socket);
  }

  request(method: string, params: Record<string, unknown> = {}) {
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<Record<string, unknown>>();
    this.#pending.set(id, resolve);
    this.socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return promise;
  }

  notify(method: string) {
    this.socket.send(JSON.stringify({ jsonrpc: "2.0", method }));
  }

  async initialize() {
    const init = await this.request("initialize", {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "ws-test", version: "1.0.0" },
    });
    this.notify("notifications/initialized");
    return init;
  }
}

/** An upgrade refused before it happens: the HTTP status and JSON-RPC body. */
async function refusedUpgrade(server: TestServer, headers: Record<string, string>) {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const res = await fetch(`${server.url}/ws/mcp`, {
    headers: {
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": key,
      ...headers,
    },
  });
  return { status: res.status, body: await res.json() };
}

Deno.test("websocket: initialize, tools/list and a sealed tools/call over /ws/mcp", async () => {
  await using server = await startServer({ args: ["--token", STATIC] });
  const alice = await createToken(server.kv, { name: "alice" });
  const ws = await WsClient.open(server, { authorization: `Bearer ${alice.secret}` });
  const init = await ws.initialize();
  const result = init.result as Record<string, unknown>;
  assert.equal(result.protocolVersion, "2025-11-25");
  assert.equal((result.serverInfo as { name: string }).name, "warden");

  const listed = await ws.request("tools/list");
  const names = (listed.result as { tools: { name: string }[] }).tools.map((t) => t.name);
  assert.ok(names.includes("memory_store"), names.join(","));

  const called = await ws.request("tools/call", {
    name: "memory_store",
    arguments: { key: "ws_key", value: { via: "websocket" } },
  });
  const call = called.result as {
    isError?: boolean;
    structuredContent: { policy_verdict: string };
    _meta: { "warden/vault": { index: number } };
  };
  assert.notEqual(call.isError, true, JSON.stringify(called));
  assert.equal(call.structuredContent.policy_verdict, "SEAL");
  const index = call._meta["warden/vault"].index;
  assert.equal(typeof index, "number");
  // The sealed entry names the caller and the transport.
  const entry = await (await fetch(`${server.url}/vault/entries/${index}`, {
    headers: { authorization: `Bearer ${STATIC}` },
  })).json();
  const sealed = JSON.parse(new TextDecoder().decode(
    Uint8Array.from(atob(entry.data), (ch) => ch.charCodeAt(0)),
  ));
  const text = JSON.stringify(sealed);
  assert.match(text, /"memory_store"/);
  assert.match(text, /"alice"/);
  assert.match(text, /"websocket"/);
  assert.doesNotMatch(text, /"via"/, "the value itself is not sealed, only its digest");

  // The same principal over REST sees what the socket stored: one governed namespace.
  const got = await fetch(`${server.url}/api/mcp/memory/retrieve`, {
    method: "POST",
    headers: { authorization: `Bearer ${alice.secret}`, "content-type": "application/json" },
    body: JSON.stringify({ key: "ws_key" }),
  }).then((r) => r.json());
  assert.deepEqual(got.data.value, { via: "websocket" });

  // Malformed frames get JSON-RPC errors and the socket stays usable.
  ws.socket.send("{not json");
  ws.socket.send(JSON.stringify({ jsonrpc: "2.0", id: 99, nope: true }));
  const ping = await ws.request("ping");
  assert.deepEqual(ping.result, {});
  const errors = ws.notifications.map((m) => (m.error as { code: number } | undefined)?.code);
  assert.deepEqual(errors, [-32700, -32600]);

  assert.equal(server.app.websocket.liveCount, 1);
  ws.socket.close(1000);
  await ws.closed;
  await pollUntil(() => server.app.websocket.liveCount, (n) => n === 0, {
    timeoutMs: 1_000,
    intervalMs: 20,
  });
  assert.equal(server.app.websocket.liveCount, 0, "the session ends with the socket");
});

Deno.test("websocket: refused without a token, with a bad one, from a foreign Origin, or not an upgrade", async () => {
  await using server = await startServer({ args: ["--token", STATIC] });
  const anon = await refusedUpgrade(server, {});
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error.code, -32001);
  const bad = await refusedUpgrade(server, { authorization: "Bearer wdn_not_a_token" });
  assert.equal(bad.status, 401);
  const foreign = await refusedUpgrade(server, {
    authorization: `Bearer ${STATIC}`,
    origin: "https://evil.example",
  });
  assert.equal(foreign.status, 403, JSON.stringify(foreign.body));
  const proto = await refusedUpgrade(server, {
    authorization: `Bearer ${STATIC}`,
    "sec-websocket-protocol": "graphql-ws",
  });
  assert.equal(proto.status, 400);
  assert.match(proto.body.error.message, /subprotocol must be "mcp"/);
  const plain = await fetch(`${server.url}/ws/mcp`, {
    headers: { authorization: `Bearer ${STATIC}` },
  });
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
  // Deno's client sees the refusal as a failed connection, never an open socket.
  const socket = new WebSocket(`${server.url.replace("http", "ws")}/ws/mcp`);
  const outcome = await new Promise<string>((resolve) => {
    socket.onopen = () => resolve("open");
    socket.onerror = () => resolve("error");
  });
  assert.equal(outcome, "error");
  assert.equal(server.app.websocket.liveCount, 0);
});

Deno.test("websocket: oversize and binary frames close with 1009 and 1003; the server stays up", async () => {
  await using server = await startServer({ args: ["--token", STATIC, "--max-body", "4096"] });
  const auth = { authorization: `Bearer ${STATIC}` };
  const big = await WsClient.open(server, auth);
  await big.initialize();
  big.socket.send(
    JSON.stringify({ jsonrpc: "2.0", id: 7, method: "ping", pad: "x".repeat(5000) }),
  );
  const closed = await big.closed;
  assert.equal(closed.code, 1009);
  assert.match(closed.reason, /over 4096 bytes/);
  // Multi-byte text is measured in UTF-8 bytes, not characters.
  const wide = await WsClient.open(server, auth);
  wide.socket.send(
    JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", p: "é".repeat(2100) }),
  );
  assert.equal((await wide.closed).code, 1009);

  const bin = await WsClient.open(server, auth);
  bin.socket.send(new Uint8Array([1, 2, 3]));
  const binClosed = await bin.closed;
  assert.equal(binClosed.code, 1003);

  const after = await WsClient.open(server, auth);
  await after.initialize();
  assert.deepEqual((await after.request("ping")).result, {});
  after.socket.close();
  await after.closed;
});

Deno.test("websocket: an idle socket is closed; a revoked token ends the socket", async () => {
  // --session-ttl 1: idle after 1 s, the token re-checked every 100 ms.
  await using server = await startServer({ args: ["--token", STATIC, "--session-ttl", "1"] });
  const idle = await WsClient.open(server, { authorization: `Bearer ${STATIC}` });
  await idle.initialize();
  const started = performance.now();
  const idleClosed = await idle.closed;
  assert.equal(idleClosed.code, 1000);
  assert.match(idleClosed.reason, /idle/);
  assert.ok(performance.now() - started >= 900, "not before the idle time");

  const bob = await createToken(server.kv, { name: "bob" });
  const ws = await WsClient.open(server, { authorization: `Bearer ${bob.secret}` });
  await ws.initialize();
  assert.deepEqual((await ws.request("ping")).result, {});
  assert.equal(await revokeToken(server.kv, "bob"), 1);
  await new Promise((r) => setTimeout(r, 150));
  ws.socket.send(JSON.stringify({ jsonrpc: "2.0", id: 50, method: "tools/list" }));
  const revoked = await ws.closed;
  assert.equal(revoked.code, 1008);
  assert.match(revoked.reason, /no longer valid/);
  assert.equal(ws.notifications.length, 0, "nothing answered after revocation");
});

Deno.test("websocket: sockets per principal are capped with a 503", async () => {
  await using server = await startServer({ args: ["--token", STATIC] });
  const carol = await createToken(server.kv, { name: "carol" });
  const auth = { authorization: `Bearer ${carol.secret}` };
  const open: WsClient[] = [];
  for (let i = 0; i < 32; i++) open.push(await WsClient.open(server, auth));
  const over = await refusedUpgrade(server, auth);
  assert.equal(over.status, 503);
  assert.match(over.body.error.message, /limit 32/);
  // Another principal is not affected by carol's sockets.
  const other = await WsClient.open(server, { authorization: `Bearer ${STATIC}` });
  other.socket.close();
  await other.closed;
  for (const ws of open) ws.socket.close();
  await Promise.all(open.map((ws) => ws.closed));
});

Deno.test({
  name: "websocket: the SDK's own WebSocket client (v1) lists, calls and receives notifications",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The SDK's client cannot send headers (it is the browser API), so this server has no token.
    const server = await startServer({
      policy: { rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 } },
    });
    const client = new Client({ name: "ws-sdk", version: "1" });
    const notes: Record<string, unknown>[] = [];
    client.fallbackNotificationHandler = (n) => {
      if (n.method === "notifications/message") notes.push(n.params as Record<string, unknown>);
      return Promise.resolve();
    };
    try {
      await client.connect(
        new WebSocketClientTransport(new URL(`${server.url.replace("http", "ws")}/ws/mcp`)),
      );
      assert.equal(client.getServerVersion()?.name, "warden");
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === "bus_subscribe"));
      const calc = await client.callTool({ name: "calculate", arguments: { expression: "6*7" } });
      assert.equal((calc.structuredContent as { data: { result: number } }).data.result, 42);

      // A waiting bus_subscribe streams the message over the socket before its result.
      const pending = client.callTool({
        name: "bus_subscribe",
        arguments: { topic: "ws", wait_s: 10 },
      });
      await new Promise((r) => setTimeout(r, 200));
      const pub = await fetch(`${server.url}/api/mcp/bus/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ topic: "ws", message: { hello: "socket" } }),
      });
      assert.equal(pub.status, 200);
      await pub.body?.cancel();
      const got = await pending;
      const data = (got.structuredContent as { data: { messages: { message: unknown }[] } }).data;
      assert.deepEqual(data.messages.map((m) => m.message), [{ hello: "socket" }]);
      const streamed = notes.map((n) => (n.data as { bus?: { message: unknown } }).bus?.message);
      assert.deepEqual(streamed, [{ hello: "socket" }]);
      assert.equal(server.app.websocket.liveCount, 1);
    } finally {
      await client.close();
      await server.close();
    }
  },
});

Deno.test("websocket: requests in flight are capped per socket; a cancelled one frees its slot", async () => {
  const server = await startServer({ args: ["--token", STATIC] });
  // A manager of its own with one request in flight, serving the app's real session servers.
  const manager = createWebSocketManager({
    createServer: ({ principal }) => server.app.newMcpServer(principal, "websocket"),
    logger: silentLogger,
    limits: { maxInFlight: 1 },
  });
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const ws = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen: ({ port }) => resolve(port) },
    (req) => manager.upgrade(req, "alice"),
  );
  try {
    const port = await listening;
    const client = await WsClient.open({ url: `http://127.0.0.1:${port}` } as TestServer, {});
    await client.initialize();
    // id 1 waits on the bus; id 2 finds the one slot taken.
    const slow = { jsonrpc: "2.0", id: 1, method: "tools/call" };
    client.socket.send(JSON.stringify({
      ...slow,
      params: { name: "bus_subscribe", arguments: { topic: "t", wait_s: 10 } },
    }));
    await new Promise((r) => setTimeout(r, 100));
    const refused = await client.request("ping");
    assert.equal((refused.error as { code: number }).code, -32000);
    assert.match((refused.error as { message: string }).message, /in flight/);
    client.socket.send(JSON.stringify({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: 1, reason: "test" },
    }));
    const again = await client.request("ping");
    assert.deepEqual(again.result, {});
    client.socket.close();
    await client.closed;
  } finally {
    await manager.close();
    ac.abort();
    await ws.finished;
    await server.close();
  }
});

Deno.test("websocket: hostile frames are screened like POST /mcp — too deep, too wide, bad params, a reused id — and the socket keeps serving", async () => {
  await using server = await startServer({ args: ["--token", STATIC], extraTools: [sleepTool] });
  const ws = await WsClient.open(server, { authorization: `Bearer ${STATIC}` });
  await ws.initialize();
  const replies: Record<string, unknown>[] = [];
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      const h = (e: MessageEvent) => {
        const m = JSON.parse(e.data as string);
        if (m.id === 900 || m.id === 901 || m.id === 902) {
          ws.socket.removeEventListener("message", h);
          resolve(m);
        }
      };
      ws.socket.addEventListener("message", h);
    });
  let deep = "{}";
  for (let i = 0; i < 10_000; i++) deep = `{"a":${deep}}`;
  const send = (id: number, params: string, method = "tools/list") =>
    ws.socket.send(`{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${params}}`);
  let wait = next();
  send(900, `{"_meta":${deep}}`);
  replies.push(await wait);
  wait = next();
  send(901, `{"cursor":[${Array(10_001).fill(0).join(",")}]}`);
  replies.push(await wait);
  wait = next();
  send(902, `{"uri":42}`, "resources/read");
  replies.push(await wait);
  for (const r of replies) {
    const error = r.error as { code: number; message: string };
    assert.equal(error.code, -32602, JSON.stringify(r).slice(0, 300));
    assert.doesNotMatch(error.message, /stack|ZodError|\[\s*\{/);
  }
  assert.match((replies[0].error as { message: string }).message, /nested more than 64/);
  assert.match((replies[1].error as { message: string }).message, /more than 10000 elements/);
  // A reused id while the first request runs is refused at once; the first still answers.
  const first = new Promise<Record<string, unknown>[]>((resolve) => {
    const got: Record<string, unknown>[] = [];
    const h = (e: MessageEvent) => {
      const m = JSON.parse(e.data as string);
      if (m.id === 77) got.push(m);
      if (got.length === 2) {
        ws.socket.removeEventListener("message", h);
        resolve(got);
      }
    };
    ws.socket.addEventListener("message", h);
  });
  const slow = JSON.stringify({
    jsonrpc: "2.0",
    id: 77,
    method: "tools/call",
    params: { name: "test_sleep", arguments: { ms: 300 } },
  });
  ws.socket.send(slow);
  ws.socket.send(slow);
  const both = await first;
  assert.ok(
    both.some((m) => (m.error as { code?: number } | undefined)?.code === -32600),
    JSON.stringify(both).slice(0, 400),
  );
  assert.ok(both.some((m) => m.result !== undefined));
  assert.deepEqual((await ws.request("ping")).result, {});
  ws.socket.close();
  await ws.closed;
});

Deno.test("websocket: a request before initialize, and a second initialize, are refused with -32600; ping is answered", async () => {
  // As on a legacy SSE session: no tool runs on a session never opened, and one socket keeps
  // the protocol version and capabilities its initialize negotiated.
  await using server = await startServer({ args: ["--token", STATIC] });
  const ws = await WsClient.open(server, { authorization: `Bearer ${STATIC}` });
  try {
    const early = await ws.request("tools/call", { name: "get_time", arguments: {} });
    assert.equal(
      (early.error as { code: number } | undefined)?.code,
      -32600,
      JSON.stringify(early),
    );
    assert.match((early.error as { message: string }).message, /initialize/);
    const listed = await ws.request("tools/list");
    assert.equal((listed.error as { code: number } | undefined)?.code, -32600);
    assert.deepEqual((await ws.request("ping")).result, {});
    const init = await ws.initialize();
    assert.equal((init.result as { protocolVersion: string }).protocolVersion, "2025-11-25");
    const again = await ws.request("initialize", {
      protocolVersion: "2025-06-18",
      capabilities: { sampling: {} },
      clientInfo: { name: "other", version: "1.0.0" },
    });
    assert.equal(
      (again.error as { code: number } | undefined)?.code,
      -32600,
      JSON.stringify(again),
    );
    assert.match((again.error as { message: string }).message, /already initialized/);
    const call = await ws.request("tools/call", { name: "get_time", arguments: {} });
    assert.equal((call.result as { isError?: boolean }).isError, undefined, JSON.stringify(call));
    // Nothing was sealed for the refused call: only the one made after initialize.
    const { size } = await server.app.ledger.head();
    let calls = 0;
    for await (const e of server.app.ledger.entries(0, size)) {
      const v = JSON.parse(new TextDecoder().decode(e.bytes));
      if (v.type === "tool_call" && v.tool === "get_time") calls++;
    }
    assert.equal(calls, 1);
  } finally {
    ws.socket.close();
    await ws.closed;
  }
});
