import assert from "node:assert/strict";
import { Client, dataOf, StreamableHTTPClientTransport } from "../_helpers/client.ts";
import { spawnServer } from "../_helpers/server.ts";
import { rpc } from "../_helpers/raw.ts";

async function calc(client: Client, expression: string): Promise<number> {
  const r = await client.callTool({ name: "calculate", arguments: { expression } });
  assert.equal(r.isError, undefined, JSON.stringify(r));
  return (dataOf(r) as { result: number }).result;
}

Deno.test("session survives a restart of the process on the same KV file", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/warden.db`;
  let server = await spawnServer(["--kv", kvPath]);
  const port = new URL(server.url).port;
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
  const client = new Client({ name: "restart", version: "1" });
  try {
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    assert.equal(await calc(client, "1+1"), 2);
    const status = await server.stop("SIGTERM");
    assert.equal(status.code, 0);

    server = await spawnServer(["--kv", kvPath, "--port", port]);
    // Same client object, same session id, no re-initialize.
    assert.equal(await calc(client, "20+22"), 42);
    assert.equal(transport.sessionId, sessionId);
    assert.ok(
      server.logs.some((l) => l.includes("session restored") && l.includes(sessionId)),
      "the new process rebuilt the session from KV",
    );
    assert.ok(!server.logs.some((l) => l.includes("session created")), "no new session was made");
  } finally {
    await client.close().catch(() => {});
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two processes sharing one KV file serve the same session", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/warden.db`;
  const a = await spawnServer(["--kv", kvPath]);
  const b = await spawnServer(["--kv", kvPath]);
  const ta = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`));
  const ca = new Client({ name: "proc-a", version: "1" });
  let cb: Client | undefined;
  try {
    await ca.connect(ta);
    const sessionId = ta.sessionId!;
    // A client that talks to the other process with its session id carries on without initializing.
    const tb = new StreamableHTTPClientTransport(new URL(`${b.url}/mcp`), { sessionId });
    cb = new Client({ name: "proc-b", version: "1" });
    await cb.connect(tb);
    for (let i = 0; i < 5; i++) {
      assert.equal(await calc(ca, `${i}*2`), i * 2);
      assert.equal(await calc(cb, `${i}*3`), i * 3);
    }
    assert.ok(b.logs.some((l) => l.includes("session restored") && l.includes(sessionId)));

    // Ending the session on B ends it everywhere (A re-reads KV within a second).
    await tb.terminateSession();
    assert.equal((await rpc(b.url, sessionId, "tools/list", {})).status, 404);
    // Wall time on purpose: the bound under test is A's once-a-second re-read of KV.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await rpc(a.url, sessionId, "tools/list", {})).status, 404);
  } finally {
    await ca.close().catch(() => {});
    await cb?.close().catch(() => {});
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a log level set through one process holds when another process rebuilds the session", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/warden.db`;
  const a = await spawnServer(["--kv", kvPath, "--conformance-fixtures"]);
  const b = await spawnServer(["--kv", kvPath, "--conformance-fixtures"]);
  const clients: Client[] = [];
  /** Calls the logging fixture through `base` on `sessionId`; returns the log levels received. */
  async function logsVia(base: string, sessionId: string): Promise<string[]> {
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { sessionId });
    const client = new Client({ name: "logs", version: "1" });
    clients.push(client);
    const levels: string[] = [];
    client.fallbackNotificationHandler = (n) => {
      if (n.method === "notifications/message") levels.push(String(n.params?.level));
      return Promise.resolve();
    };
    await client.connect(transport);
    const r = await client.callTool({ name: "test_tool_with_logging", arguments: {} });
    assert.equal(r.isError, undefined, JSON.stringify(r));
    return levels;
  }
  try {
    // Two sessions made on A: one sets "error", one leaves the default.
    const quiet = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`));
    const quietClient = new Client({ name: "quiet", version: "1" });
    clients.push(quietClient);
    await quietClient.connect(quiet);
    await quietClient.setLoggingLevel("error");
    const chatty = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`));
    const chattyClient = new Client({ name: "chatty", version: "1" });
    clients.push(chattyClient);
    await chattyClient.connect(chatty);

    // B has never seen either session: it rebuilds both from KV.
    assert.deepEqual(await logsVia(b.url, chatty.sessionId!), ["info", "info", "info"]);
    assert.deepEqual(await logsVia(b.url, quiet.sessionId!), [], "info is below the level set");
    assert.ok(b.logs.some((l) => l.includes("session restored") && l.includes(quiet.sessionId!)));
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
