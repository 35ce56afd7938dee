import assert from "node:assert/strict";
import { connectSse, dataOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { pollUntil } from "../_helpers/wait.ts";

Deno.test("legacy SSE: the SDK's SSEClientTransport lists and calls tools", async () => {
  await using server = await startServer();
  const { client } = await connectSse(server.url);
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === "calculate"));
  const r = await client.callTool({ name: "calculate", arguments: { expression: "2^10" } });
  assert.deepEqual(dataOf(r), { expression: "2^10", result: 1024 });
  const err = await client.callTool({ name: "calculate", arguments: { expression: "1/0" } });
  assert.equal(err.isError, true);
  const records = (await server.app.sessions.list()).filter((r) => r.transport === "sse");
  assert.equal(records.length, 1);
  assert.equal(records[0].clientInfo.name, "warden-sse-test");
  assert.equal(server.app.sse.liveCount, 1);
  await client.close();
  // Closing the stream ends the session and drops its record.
  await pollUntil(() => server.app.sse.liveCount, (n) => n === 0, {
    timeoutMs: 1_000,
    intervalMs: 20,
  });
  assert.equal(server.app.sse.liveCount, 0);
  assert.equal(await server.app.sessions.get(records[0].id), null);
});

Deno.test("legacy SSE: the endpoint event names /messages with a session id", async () => {
  await using server = await startServer();
  const ac = new AbortController();
  const res = await fetch(`${server.url}/sse`, { signal: ac.signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  assert.match(value!, /^event: endpoint\ndata: \/messages\?sessionId=[0-9a-f-]{36}\n\n/);
  ac.abort();
  await reader.cancel().catch(() => {});
});

Deno.test("legacy SSE: POST /messages to an unknown or missing session is refused", async () => {
  await using server = await startServer();
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });
  const headers = { "content-type": "application/json" };
  const unknown = await fetch(`${server.url}/messages?sessionId=nope`, {
    method: "POST",
    headers,
    body,
  });
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).error.code, -32001);
  const missing = await fetch(`${server.url}/messages`, { method: "POST", headers, body });
  assert.equal(missing.status, 400);
  await missing.body?.cancel();
});

Deno.test("legacy SSE: negotiates protocol 2024-11-05", async () => {
  await using server = await startServer();
  const ac = new AbortController();
  const res = await fetch(`${server.url}/sse`, { signal: ac.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const first = (await reader.read()).value!;
  const endpoint = /data: (\S+)/.exec(first)![1];
  const post = await fetch(`${server.url}${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2024-11-05",
        capabilities: {},
        clientInfo: { name: "old", version: "1" },
      },
    }),
  });
  assert.equal(post.status, 202);
  await post.body?.cancel();
  let buf = "";
  while (!buf.includes('"result"')) buf += (await reader.read()).value;
  assert.match(buf, /"protocolVersion":"2024-11-05"/);
  ac.abort();
  await reader.cancel().catch(() => {});
});

Deno.test("legacy SSE: an open stream keeps its session record alive past the idle TTL", async () => {
  await using server = await startServer({ args: ["--session-ttl", "2"] });
  const { client } = await connectSse(server.url);
  const [record] = (await server.app.sessions.list()).filter((r) => r.transport === "sse");
  assert.ok(record, "initialize wrote the record");
  // Nothing is posted for twice the TTL; the stream stays open. Wall time on purpose: the session
  // store's idle TTL runs on Date.now (no clock seam), and the open stream must outlive it.
  await new Promise((r) => setTimeout(r, 4500));
  const now = await server.app.sessions.get(record.id);
  assert.ok(now, "the record of an open stream is still there");
  assert.ok(now.lastSeenMs > record.lastSeenMs, "and it was refreshed");
  assert.equal(server.app.sse.liveCount, 1);
  await client.close();
});
